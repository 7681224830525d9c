/**
 * `kubectl fdckpt`: the kubectl plugin (bin/kubectl-fdckpt.js, found by kubectl on
 * PATH). It creates the custom resources a user would apply — preflight: a Checkpoint
 * with dryRun; checkpoint: a Checkpoint; migrate: a Migration — waits (bounded by
 * --timeout) until the controller says it is done, and prints the result. Exit codes
 * are fdckpt's (README, "Exit codes"). Help and usage errors load no Kubernetes client.
 */
import {
  type CommandSpec,
  EXIT,
  type OptionSpec,
  type ParsedArgs,
  UsageError,
  commandHelp,
  parseArgs,
  single,
  wantsHelp,
} from '../command.js';

const PROGRAM = 'kubectl fdckpt';

const COMMON: Record<string, OptionSpec> = {
  namespace: {
    type: 'string',
    short: 'n',
    value: 'NS',
    description: "the pod's namespace (default: the current context's, else default)",
  },
  kubeconfig: {
    type: 'string',
    value: 'FILE',
    description: 'the kubeconfig (default: KUBECONFIG, ~/.kube/config)',
  },
  context: {
    type: 'string',
    value: 'NAME',
    description: 'the kubeconfig context (default: its current one)',
  },
  name: {
    type: 'string',
    value: 'NAME',
    description: "the new object's name (default: the pod's, with a suffix)",
  },
  timeout: { type: 'string', value: 'DURATION', description: 'how long to wait: 90s, 5m, 1h (default 5m)' },
  'no-wait': { type: 'boolean', description: 'create the object and exit' },
};
const CONTAINER: OptionSpec = {
  type: 'string',
  multiple: true,
  value: 'NAME',
  description: 'only this container of the pod',
};
const LEAK_POLICY: OptionSpec = {
  type: 'string',
  value: 'POLICY',
  description: 'Fail (default), Warn or Ignore: what a leak across the pod boundary does',
};
const NOTES = [
  'exit codes: 0 ok, 1 failed or timed out, 2 usage, 3 not checkpointable (the reasons are listed)',
];

/** The plugin's subcommands; what they create is resources.ts's. */
export const PLUGIN_SPECS: readonly CommandSpec[] = [
  {
    name: 'preflight',
    program: PROGRAM,
    summary: 'Can the pod be checkpointed? A dry-run Checkpoint: every leak and unrestorable fd listed.',
    usage: 'preflight pod/NAME [-n NS] [--container NAME ...] [--timeout 5m] [--no-wait]',
    options: { ...COMMON, container: CONTAINER },
    notes: NOTES,
  },
  {
    name: 'checkpoint',
    program: PROGRAM,
    summary: "Checkpoint the pod's fd tables on its node (a Checkpoint).",
    usage:
      'checkpoint pod/NAME [-n NS] [--container NAME ...] [--leak-policy Fail|Warn|Ignore] [--timeout 5m] [--no-wait]',
    options: { ...COMMON, container: CONTAINER, 'leak-policy': LEAK_POLICY },
    notes: NOTES,
  },
  {
    name: 'migrate',
    program: PROGRAM,
    summary: 'Move the running pod to another node with its fd tables (a Migration).',
    usage:
      'migrate pod/NAME [--to NODE] [-n NS] [--leak-policy Fail|Warn|Ignore] [--timeout 10m] [--no-wait]',
    options: {
      ...COMMON,
      timeout: { ...COMMON['timeout']!, description: 'how long to wait: 90s, 5m, 1h (default 10m)' },
      to: { type: 'string', value: 'NODE', description: 'the target node (default: any other ready node)' },
      'leak-policy': LEAK_POLICY,
    },
    notes: NOTES,
  },
];

export type PluginAction = 'preflight' | 'checkpoint' | 'migrate';

/** What a subcommand asks for, checked before anything connects. */
export interface PluginRequest {
  action: PluginAction;
  pod: string;
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  name?: string;
  containers: string[];
  leakPolicy?: 'Fail' | 'Warn' | 'Ignore';
  targetNode?: string;
  wait: boolean;
  timeoutMs: number;
}

/** `90s`, `5m`, `1h`, `500ms`, or plain seconds, as kubectl wait takes them. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m?.[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  if (!m || Number(m[1]) === 0)
    throw new UsageError(`--timeout must be a positive duration (90s, 5m, 1h), got ${JSON.stringify(text)}`);
  return Number(m[1]) * unit;
}

/** `pod/NAME`, `pods/NAME`, `po/NAME` or plain `NAME`, as kubectl names a pod. */
export function podName(arg: string): string {
  const m = /^(?:(pods?|po)\/)?([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(arg);
  if (!m) throw new UsageError(`expected pod/NAME, got ${JSON.stringify(arg)}`);
  return m[2]!;
}

function request(spec: CommandSpec, parsed: ParsedArgs): PluginRequest {
  if (parsed.positional.length !== 1) throw new UsageError(`give one pod; usage: ${PROGRAM} ${spec.usage}`);
  const leakPolicy = single(parsed, 'leak-policy');
  if (leakPolicy !== undefined && !['Fail', 'Warn', 'Ignore'].includes(leakPolicy))
    throw new UsageError(`--leak-policy must be Fail, Warn or Ignore, got ${JSON.stringify(leakPolicy)}`);
  const timeout = single(parsed, 'timeout');
  const opt = (name: string): Record<string, string> => {
    const v = single(parsed, name);
    return v === undefined ? {} : { [name === 'to' ? 'targetNode' : name]: v };
  };
  return {
    action: spec.name as PluginAction,
    pod: podName(parsed.positional[0]!),
    ...opt('namespace'),
    ...opt('kubeconfig'),
    ...opt('context'),
    ...opt('name'),
    ...opt('to'),
    containers: parsed.flags.get('container') ?? [],
    ...(leakPolicy ? { leakPolicy: leakPolicy as PluginRequest['leakPolicy'] } : {}),
    wait: !parsed.booleans.has('no-wait'),
    timeoutMs:
      timeout !== undefined ? parseDuration(timeout) : spec.name === 'migrate' ? 10 * 60_000 : 5 * 60_000,
  };
}

function overview(): string {
  return [
    `usage: ${PROGRAM} <command> pod/NAME [options]     (${PROGRAM} <command> --help for its options)`,
    '',
    'commands:',
    ...PLUGIN_SPECS.map((s) => `  ${s.name.padEnd(10)}  ${s.summary}`),
    '',
    ...NOTES,
    '',
  ].join('\n');
}

/** The plugin's entry point: resolves to the exit code. */
export async function pluginMain(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined) {
    process.stderr.write(overview());
    return EXIT.usage;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(overview());
    return EXIT.ok;
  }
  const spec = PLUGIN_SPECS.find((s) => s.name === name);
  if (!spec) {
    process.stderr.write(`${PROGRAM}: unknown command ${JSON.stringify(name)}; see ${PROGRAM} --help\n`);
    return EXIT.usage;
  }
  try {
    if (wantsHelp(args, spec)) {
      process.stdout.write(commandHelp(spec));
      return EXIT.ok;
    }
    const req = request(spec, parseArgs(args, spec));
    // Only now the Kubernetes client: help and usage errors stay fast.
    const { runRequest } = await import('./resources.js');
    return await runRequest(req);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${PROGRAM} ${name}: ${message.split('\n')[0]}\n`);
    return err instanceof UsageError ? EXIT.usage : EXIT.failed;
  }
}
