/**
 * Every `fdckpt` command's declaration: summary, usage and options. Help is printed
 * from here without loading the command's module (which may load the syscall bindings
 * or the Kubernetes client); the module parses its arguments with the same spec.
 * Types only from command.ts: this file must stay free of heavy imports.
 */
import type { CommandSpec, OptionSpec } from './command.js';

const s = (value: string, description: string, multiple = false): OptionSpec => ({
  type: 'string',
  value,
  description,
  ...(multiple ? { multiple } : {}),
});
const b = (description: string): OptionSpec => ({ type: 'boolean', description });

/** The options that name a pod's cgroup (cgroupTarget.ts), shared by leaks, preflight and capture. */
const TARGET: Record<string, OptionSpec> = {
  cgroup: s('PATH', 'the cgroup (v2 path, or v1 below a hierarchy) whose processes are examined'),
  'pod-uid': s('UID', "the pod's cgroup, found from its uid in the kubelet layouts"),
  container: s('ID', 'with --pod-uid: only this container (the rest of the pod is outside)', true),
  'freeze-journal': s('DIR', 'where freezes are journaled (default /var/lib/fdckpt/freezes)'),
};

const IGNORE_TYPE = s('TYPE', 'record files of this type but never restore them', true);

export const EXIT_NOTES = [
  'exit codes: 0 ok, 1 failed, 2 usage, 3 not checkpointable (the reasons are listed)',
];

export const capture: CommandSpec = {
  name: 'capture',
  summary: "Record processes' fd tables into an image; refuse, naming every fd, what cannot be restored.",
  usage:
    'capture (--pid PID ... [--no-freeze] | --cgroup PATH | --pod-uid UID [--container ID ...]) --output FILE [--json] ' +
    '[--leak-policy fail|warn|ignore] [--leave-frozen | --stop] [--ignore-type TYPE ...] [--ignore-fd PID:FD ...] [--freeze-journal DIR]',
  options: {
    pid: s('PID', 'a process (or thread) to capture', true),
    'no-freeze': b(
      '--pid: do not stop the processes (ptrace) while reading their tables; the table may change under the capture',
    ),
    ...TARGET,
    output: s('FILE', 'the image to write'),
    json: b('print what was captured as JSON (counts, frozenMs, the image written)'),
    'leak-policy': s(
      'POLICY',
      'cgroups: fail (default) refuses on leaks, warn prints them, ignore skips the check',
    ),
    'leave-frozen': b('cgroups: leave the cgroup frozen after capture'),
    stop: b('cgroups: stop (SIGSTOP) the processes after capture, then thaw'),
    'ignore-type': IGNORE_TYPE,
    'ignore-fd': s('PID:FD', 'record this fd but never restore it', true),
  },
  notes: EXIT_NOTES,
};

export const preflight: CommandSpec = {
  name: 'preflight',
  summary: 'Can this pod be checkpointed, and if not, why: every fd classified, no image written.',
  usage:
    'preflight --cgroup PATH | --pod-uid UID [--container ID ...] [--json] [--freeze] [--ignore-type TYPE ...] [--freeze-journal DIR]',
  options: {
    ...TARGET,
    json: b('print the report as JSON'),
    freeze: b('freeze the cgroup while its tables are read (consistent, but stops the pod briefly)'),
    'ignore-type': IGNORE_TYPE,
  },
  notes: ['exit codes: 0 ready, 1 could not check, 2 usage, 3 not checkpointable (listed first)'],
};

export const leaks: CommandSpec = {
  name: 'leaks',
  summary: "List the references that cross a cgroup's boundary (pipes, sockets, shared files...).",
  usage:
    'leaks --cgroup PATH | --pod-uid UID [--container ID ...] [--json] [--freeze] [--freeze-journal DIR]',
  options: {
    ...TARGET,
    json: b('print the report as JSON'),
    freeze: b('freeze the cgroup while its tables are read'),
  },
  notes: ['exit codes: 0 no leak, 1 could not check, 2 usage, 3 leaks (listed)'],
};

export const restore: CommandSpec = {
  name: 'restore',
  summary: "Start a command with a process's saved fd table replayed into it, before it runs.",
  usage:
    'restore --image FILE [--pid PID] [--fds program|inherited|all] [--listen-fds] [--policy FILE] [--dry-run] [--no-batch] [--timeout SECONDS] [-- CMD [ARGS...]]',
  options: {
    image: s('FILE', 'the image to restore from'),
    pid: s('PID', 'the process of the image whose table is replayed (default: its first)'),
    fds: s('MODE', 'program (default), inherited or all: which fds are replayed (docs/replay.md)'),
    'listen-fds': b('hand the saved listening sockets over as socket activation does (LISTEN_FDS)'),
    policy: s('FILE', 'the per-fd restore policy (YAML)'),
    'dry-run': b('only the checks made before anything starts'),
    'no-batch': b('inject one syscall at a time instead of in bulk'),
    timeout: s('SECONDS', 'how long the held CMD waits to be seized before it gives up (default 30)'),
  },
  afterDashes: 'command',
  notes: [
    "CMD defaults to the saved argv of the process (exec'd from its recorded executable, argv[0] kept,",
    'when argv[0] names another file here). Once CMD runs, restore exits with its status',
    '(128+N when killed by signal N); before that: 1 failed, 2 usage, 3 refused by the plan (nothing ran).',
  ],
};

export const inspect: CommandSpec = {
  name: 'inspect',
  summary: 'Show what an image holds: a table per process, or the documented JSON.',
  usage: 'inspect FILE [--json]',
  options: { json: b('print the documented JSON shape') },
};

export const diff: CommandSpec = {
  name: 'diff',
  summary: "Compare two images' fd tables, ignoring what a restore legitimately changes.",
  usage: 'diff IMAGE_A IMAGE_B [--json]',
  options: { json: b('print {equal, differences} as JSON') },
  notes: ['exit codes as diff(1): 0 no difference, 1 differences, 2 trouble or usage'],
};

export const demo: CommandSpec = {
  name: 'demo',
  summary: 'fdckpt end to end on this host: the engine, then the operator on the local control plane.',
  usage: 'demo [--engine-only]',
  options: { 'engine-only': b('stop after the engine round trip') },
};

export const local: CommandSpec = {
  name: 'local',
  summary: 'Run the local control plane (etcd, kube-apiserver, ... and process kubelets) until signalled.',
  usage:
    'local --kubeconfig FILE [--nodes N] [--api-only] [--data-dir DIR] [--verbose] [--log-level debug|info|warn|error]',
  options: {
    kubeconfig: s('FILE', 'where to write the admin kubeconfig'),
    nodes: s('N', 'how many process kubelets (default 1)'),
    'api-only': b('no operator: the control plane alone'),
    'data-dir': s('DIR', "the components' data (default: a new temporary directory)"),
    verbose: b("print the components' logs on stderr"),
    'log-level': s('LEVEL', 'debug, info, warn or error (default: FDCKPT_LOG_LEVEL, else info)'),
  },
};

export const controller: CommandSpec = {
  name: 'controller',
  summary: "The operator's controller (a Deployment in a cluster); runs until SIGINT/SIGTERM.",
  usage:
    'controller [--kubeconfig FILE] [--port 8080] [--lease-namespace NS] [--no-leader-elect] [--launcher-image IMAGE] [--launcher-host-path PATH] [--webhook-port 9443] [--webhook-client-ca FILE] [--webhook-client-names CN,...] [--max-drain-migrations 2] [--drain-retries 3] [--drain-backoff-seconds 30] [--drain-max-backoff-seconds 300] [--log-level debug|info|warn|error]',
  options: {
    kubeconfig: s('FILE', 'the kubeconfig (default: KUBECONFIG, ~/.kube/config or in-cluster)'),
    port: s('PORT', 'health and metrics (default 8080)'),
    'lease-namespace': s('NS', "the leader lease's namespace (default POD_NAMESPACE or fdckpt-system)"),
    'no-leader-elect': b('run without leader election'),
    'launcher-image': s('IMAGE', 'the image restored pods get the launcher from (or FDCKPT_IMAGE)'),
    'launcher-host-path': s('PATH', "the launcher on the nodes' file system, instead of an image"),
    'webhook-port': s('PORT', 'serve the pod webhook on this port'),
    'webhook-client-ca': s(
      'FILE',
      "serve the webhook only to callers with a client certificate from this CA (PEM): the API server's",
    ),
    'webhook-client-names': s('CN,...', "and only these subjects' (the API server's webhook client CN)"),
    'max-drain-migrations': s('N', 'most drain migrations at once (default 2)'),
    'drain-retries': s('N', 'retries of a failed drain migration (default 3)'),
    'drain-backoff-seconds': s('S', 'the first wait before a retry, doubled each time (default 30)'),
    'drain-max-backoff-seconds': s('S', 'the longest wait between retries (default 300)'),
    'log-level': s('LEVEL', 'debug, info, warn or error (default: FDCKPT_LOG_LEVEL, else info)'),
  },
};

export const agent: CommandSpec = {
  name: 'agent',
  summary: 'The node agent (a DaemonSet in a cluster): captures and replays what the controller assigns.',
  usage:
    'agent [--kubeconfig FILE] [--node NAME] [--data-dir /var/lib/fdckpt] [--port 8081] [--transfer-port 8082] [--transfer-url URL] [--transfer-attempts 5] [--transfer-backoff-ms 1000] [--transfer-token-file FILE] [--transfer-insecure] [--shared-images DIR] [--log-level debug|info|warn|error]',
  options: {
    kubeconfig: s('FILE', 'the kubeconfig (default: KUBECONFIG, ~/.kube/config or in-cluster)'),
    node: s('NAME', 'this node (default NODE_NAME or the host name)'),
    'data-dir': s('DIR', 'images and journals (default FDCKPT_DATA_DIR or /var/lib/fdckpt)'),
    port: s('PORT', 'health and metrics (default 8081)'),
    'transfer-port': s('PORT', "the image transfer server's port, or off (default 8082)"),
    'transfer-url': s('URL', 'the transfer URL other agents are told (or FDCKPT_TRANSFER_URL)'),
    'transfer-attempts': s('N', 'attempts to fetch an image (default 5)'),
    'transfer-backoff-ms': s('MS', 'the first wait between attempts (default 1000)'),
    'transfer-token-file': s(
      'FILE',
      "this agent's token for audience fdckpt.io/transfer (default /var/run/secrets/fdckpt.io/transfer/token)",
    ),
    'transfer-insecure': b('development only: plain HTTP between agents'),
    'shared-images': s('DIR', 'a directory every node shares: images are not transferred'),
    'log-level': s('LEVEL', 'debug, info, warn or error (default: FDCKPT_LOG_LEVEL, else info)'),
  },
};

/** In the order `fdckpt --help` lists them. */
export const SPECS: readonly CommandSpec[] = [
  capture,
  preflight,
  leaks,
  restore,
  inspect,
  diff,
  demo,
  local,
  controller,
  agent,
];
