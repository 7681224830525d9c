/**
 * The process kubelet: a development stand-in for a node. It registers a Node with a
 * Ready condition and keeps a heartbeat Lease, watches the pods bound to it, runs each
 * container's command as host processes in a per-pod cgroup laid out like a real node's,
 * reports pod status, and stops the processes when the pod is deleted. It talks to the
 * API server through client-node and a kubeconfig, like any other client.
 */
import {
  CoordinationV1Api,
  CoreV1Api,
  ListWatch,
  PatchStrategy,
  V1MicroTime,
  Watch,
  setHeaderOptions,
  type KubeConfig,
  type V1Lease,
  type V1Node,
  type V1NodeStatus,
  type V1Container,
  type V1Pod,
} from '@kubernetes/client-node';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { recordPodEvent } from '../events.js';
import { podLogDir, STORAGE_DIR_ANNOTATION } from '../nodefiles.js';
import { podQosClass } from '../qos.js';
import { cgroupRoot, killCgroup, podCgroupDir, removeCgroup, type QosClass } from './cgroup.js';
import {
  rfc3339,
  startContainer,
  stopContainer,
  removeWhenEmpty,
  type ContainerSpec,
  type RunningContainer,
} from './container.js';
import { containerEnv } from './env.js';
import { podStatus, type ContainerState } from './podstatus.js';
import { startLogServer, type LogServer, type LogSource } from './logserver.js';
import type { PemCert } from '../../tls/x509.js';

/** Options of one process kubelet. */
export interface KubeletOptions {
  nodeName: string;
  kubeConfig: KubeConfig;
  /** The node's own directory (pod logs; the agent's images later). */
  storageDir: string;
  /** Overrides FDCKPT_CGROUP_ROOT and the detected cgroup v2 mount. */
  cgroupRoot?: string;
  /** Distinguishes the fake pod IPs of several nodes (10.244.<index>.x). */
  nodeIndex?: number;
  /** Lease renewal period (default 10 s). */
  leaseRenewSeconds?: number;
  /**
   * Serve the kubelet API (container logs) over HTTPS with this certificate, trusting
   * client certificates of `clientCa`; its port goes into the Node's daemonEndpoints so
   * that the API server can proxy `kubectl logs` to it.
   */
  api?: { tls: PemCert; clientCa: string };
  /** The version this node reports as its kubelet's. */
  kubeletVersion?: string;
  log?: (line: string) => void;
}

interface PodRuntime {
  uid: string;
  namespace: string;
  name: string;
  podDir: string;
  logDir: string;
  qos: QosClass;
  ip: string;
  startTime: string;
  restartPolicy: string;
  specs: V1Container[];
  /** Each container's resolved environment, or why it could not be built. */
  envs: Map<string, Record<string, string> | Error>;
  states: Map<string, ContainerState>;
  running: Map<string, RunningContainer>;
  stopping: boolean;
  restartTimers: Set<NodeJS.Timeout>;
}

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

function errCode(e: unknown): number | undefined {
  const c = (e as { code?: unknown }).code;
  return typeof c === 'number' ? c : undefined;
}

/** One local node. */
export class ProcessKubelet {
  private readonly core: CoreV1Api;
  private readonly coordination: CoordinationV1Api;
  private readonly root: string;
  private readonly pods = new Map<string, PodRuntime>();
  private readonly queues = new Map<string, Promise<void>>();
  private informer?: ListWatch<V1Pod>;
  private leaseTimer?: NodeJS.Timeout;
  private nextIp = 2;
  private stopped = false;
  private logServer?: LogServer;

  constructor(private readonly opts: KubeletOptions) {
    this.core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.coordination = opts.kubeConfig.makeApiClient(CoordinationV1Api);
    this.root = cgroupRoot(opts.cgroupRoot);
  }

  /** The node's name. */
  get nodeName(): string {
    return this.opts.nodeName;
  }

  private log(line: string): void {
    this.opts.log?.(`kubelet ${this.opts.nodeName}: ${line}`);
  }

  /** Registers the node, starts the lease heartbeat and the pod watch. */
  async start(): Promise<void> {
    mkdirSync(join(this.opts.storageDir, 'pods'), { recursive: true });
    if (this.opts.api) this.logServer = await startLogServer({ ...this.opts.api, source: this.logSource() });
    await this.registerNode();
    await this.renewLease();
    this.leaseTimer = setInterval(
      () => void this.renewLease().catch((e: unknown) => this.log(`lease: ${String(e)}`)),
      (this.opts.leaseRenewSeconds ?? 10) * 1000,
    );
    const lw = new ListWatch<V1Pod>(
      '/api/v1/pods',
      new Watch(this.opts.kubeConfig),
      () => this.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${this.opts.nodeName}` }),
      false,
      undefined,
      `spec.nodeName=${this.opts.nodeName}`,
    );
    lw.on('add', (p) => this.enqueue(p));
    lw.on('update', (p) => this.enqueue(p));
    lw.on('delete', (p) => this.enqueue(p, true));
    lw.on('error', (e) => {
      if (this.stopped) return;
      this.log(`watch error, restarting: ${String(e)}`);
      setTimeout(() => void lw.start().catch(() => undefined), 1000);
    });
    this.informer = lw;
    await lw.start();
  }

  /** Stops watching and kills every pod's processes, removing their cgroups. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    await this.informer?.stop();
    await Promise.all([...this.pods.values()].map((rt) => this.killPod(rt, 0)));
    await Promise.all([...this.queues.values()]);
    await this.logServer?.close();
  }

  /** The pods' log files as the kubelet API serves them. */
  private logSource(): LogSource {
    const find = (ns: string, pod: string): PodRuntime | undefined =>
      [...this.pods.values()].find((rt) => rt.namespace === ns && rt.name === pod);
    return {
      podLogDir: (ns, pod) => find(ns, pod)?.logDir,
      currentRun: (ns, pod, container) => {
        const st = find(ns, pod)?.states.get(container);
        return st?.id === undefined ? undefined : st.restartCount;
      },
      running: (ns, pod, container, run) => {
        const rt = find(ns, pod);
        return !!rt && rt.running.has(container) && rt.states.get(container)?.restartCount === run;
      },
    };
  }

  private async registerNode(): Promise<void> {
    const name = this.opts.nodeName;
    const node: V1Node = {
      metadata: {
        name,
        labels: {
          'kubernetes.io/hostname': name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          'local.fdckpt.io/node': 'true',
        },
        annotations: { [STORAGE_DIR_ANNOTATION]: this.opts.storageDir },
      },
      spec: {},
    };
    try {
      await this.core.createNode({ body: node });
    } catch (e) {
      if (errCode(e) !== 409) throw e;
    }
    // A merge patch of status alone: a replace would carry back the spec as read, and
    // NodeRestriction refuses a node that seems to change its own taints (the node
    // lifecycle controller adds and removes them from the moment the Node exists).
    await this.core.patchNodeStatus({ name, body: { status: this.nodeStatus() } }, MERGE_PATCH);
  }

  private nodeStatus(): V1NodeStatus {
    const name = this.opts.nodeName;
    const now = new Date();
    return {
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'KubeletReady',
          message: 'process kubelet is posting ready status',
          lastHeartbeatTime: now,
          lastTransitionTime: now,
        },
      ],
      addresses: [
        { type: 'InternalIP', address: '127.0.0.1' },
        { type: 'Hostname', address: name },
      ],
      ...(this.logServer ? { daemonEndpoints: { kubeletEndpoint: { Port: this.logServer.port } } } : {}),
      capacity: { cpu: '2', memory: '4Gi', pods: '110' },
      allocatable: { cpu: '2', memory: '4Gi', pods: '110' },
      nodeInfo: {
        architecture: 'amd64',
        bootID: '',
        containerRuntimeVersion: 'fdckpt-process://0.1.0',
        kernelVersion: '',
        kubeProxyVersion: '',
        kubeletVersion: this.opts.kubeletVersion ?? 'v1.35.4-fdckpt-process',
        machineID: '',
        operatingSystem: 'linux',
        osImage: 'host processes (fdckpt local control plane)',
        systemUUID: '',
      },
    };
  }

  private async renewLease(): Promise<void> {
    const name = this.opts.nodeName;
    const namespace = 'kube-node-lease';
    const body: V1Lease = {
      metadata: { name, namespace },
      // A MicroTime: the API server refuses a renewTime without six fractional digits.
      spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: new V1MicroTime() },
    };
    try {
      const cur = await this.coordination.readNamespacedLease({ name, namespace });
      cur.spec = body.spec;
      await this.coordination.replaceNamespacedLease({ name, namespace, body: cur });
    } catch (e) {
      if (errCode(e) !== 404) throw e;
      await this.coordination.createNamespacedLease({ namespace, body });
    }
  }

  /** One pod's work at a time, in order. */
  private enqueue(pod: V1Pod, deleted = false): void {
    const uid = pod.metadata?.uid;
    if (!uid || this.stopped) return;
    const prev = this.queues.get(uid) ?? Promise.resolve();
    const next = prev
      .then(() => this.sync(pod, deleted))
      .catch((e: unknown) =>
        this.log(
          `pod ${pod.metadata?.namespace}/${pod.metadata?.name}: ${e instanceof Error ? e.message : String(e)}`,
        ),
      );
    this.queues.set(uid, next);
    void next.then(() => {
      if (this.queues.get(uid) === next) this.queues.delete(uid);
    });
  }

  private async sync(pod: V1Pod, deleted: boolean): Promise<void> {
    const uid = pod.metadata!.uid!;
    const rt = this.pods.get(uid);
    if (deleted) {
      if (rt) await this.killPod(rt, 0);
      return;
    }
    if (pod.metadata?.deletionTimestamp) {
      if (rt) await this.killPod(rt, pod.metadata.deletionGracePeriodSeconds ?? 30);
      await this.core
        .deleteNamespacedPod({
          name: pod.metadata.name!,
          namespace: pod.metadata.namespace!,
          // In the body: kube-apiserver reads no query parameters when a delete has a body.
          body: { gracePeriodSeconds: 0, preconditions: { uid } },
        })
        .catch((e: unknown) => {
          if (errCode(e) !== 404 && errCode(e) !== 409) throw e;
        });
      return;
    }
    const phase = pod.status?.phase;
    if (!rt && phase !== 'Succeeded' && phase !== 'Failed') await this.startPod(pod);
  }

  private async startPod(pod: V1Pod): Promise<void> {
    const m = pod.metadata!;
    const qos = (pod.status?.qosClass ?? podQosClass(pod as Record<string, unknown>)) as QosClass;
    const rt: PodRuntime = {
      uid: m.uid!,
      namespace: m.namespace!,
      name: m.name!,
      podDir: podCgroupDir(this.root, qos, m.uid!),
      logDir: podLogDir(this.opts.storageDir, m.namespace!, m.name!, m.uid!),
      qos,
      ip: `10.244.${this.opts.nodeIndex ?? 0}.${this.nextIp++ % 250}`,
      startTime: rfc3339(),
      restartPolicy: pod.spec?.restartPolicy ?? 'Always',
      specs: pod.spec?.containers ?? [],
      envs: new Map(),
      states: new Map(),
      running: new Map(),
      stopping: false,
      restartTimers: new Set(),
    };
    this.pods.set(rt.uid, rt);
    for (const c of rt.specs) {
      rt.envs.set(
        c.name,
        await containerEnv(this.core, pod, c, rt.ip, '127.0.0.1').catch((e: unknown) =>
          e instanceof Error ? e : new Error(String(e)),
        ),
      );
    }
    for (const spec of rt.specs) {
      rt.states.set(spec.name, { name: spec.name, image: spec.image ?? '', restartCount: 0 });
      await this.runContainer(rt, spec);
    }
    this.log(`started pod ${rt.namespace}/${rt.name} in ${rt.podDir}`);
    await this.writeStatus(rt);
  }

  private async runContainer(rt: PodRuntime, spec: ContainerSpec): Promise<void> {
    const st = rt.states.get(spec.name)!;
    const env = rt.envs.get(spec.name);
    if (env instanceof Error) {
      st.waiting = { reason: 'CreateContainerConfigError', message: env.message };
      this.event(rt, 'Warning', 'Failed', `Error: ${env.message}`);
      return;
    }
    try {
      const c = await startContainer(spec, rt.podDir, rt.logDir, st.restartCount, {
        HOSTNAME: rt.name,
        ...env,
      });
      if (rt.stopping) {
        // The pod was stopped while this container was starting.
        await stopContainer(c, 0, this.root);
        return;
      }
      rt.running.set(spec.name, c);
      if (st.id && st.exit && st.startedAt)
        st.lastExit = { id: st.id, startedAt: st.startedAt, exit: st.exit };
      st.id = c.id;
      st.startedAt = c.startedAt;
      delete st.exit;
      delete st.waiting;
      void c.exited.then((exit) => this.enqueueExit(rt, spec, c, exit));
      this.event(rt, 'Normal', 'Started', `Started container ${spec.name}`);
    } catch (e) {
      st.waiting = { reason: 'CreateContainerError', message: e instanceof Error ? e.message : String(e) };
      this.event(rt, 'Warning', 'Failed', `Error: ${st.waiting.message}`);
    }
  }

  private enqueueExit(
    rt: PodRuntime,
    spec: ContainerSpec,
    c: RunningContainer,
    exit: RunningContainer['exited'] extends Promise<infer T> ? T : never,
  ): void {
    if (rt.stopping || rt.running.get(spec.name) !== c) return;
    // Whatever the main process left behind goes with it, as with a container runtime.
    killCgroup(c.cgroupDir);
    void removeWhenEmpty(c.cgroupDir, this.root);
    rt.running.delete(spec.name);
    const st = rt.states.get(spec.name)!;
    st.exit = exit;
    const restart =
      rt.restartPolicy === 'Always' || (rt.restartPolicy === 'OnFailure' && exit.exitCode !== 0);
    this.log(
      `container ${rt.namespace}/${rt.name}/${spec.name} exited ${exit.exitCode}${restart ? ', restarting' : ''}`,
    );
    if (restart) {
      // Back off like a kubelet (shortened): 1 s, 2 s, 4 s … capped at 10 s.
      const wait = Math.min(10000, 1000 * 2 ** Math.min(st.restartCount, 4));
      if (st.id && st.startedAt) st.lastExit = { id: st.id, startedAt: st.startedAt, exit };
      delete st.exit;
      this.event(
        rt,
        'Warning',
        'BackOff',
        `Back-off restarting failed container ${spec.name} in pod ${rt.name}_${rt.namespace}(${rt.uid})`,
      );
      st.waiting = {
        reason: 'CrashLoopBackOff',
        message: `back-off ${wait / 1000}s restarting failed container=${spec.name} pod=${rt.name}_${rt.namespace}(${rt.uid})`,
      };
      const t = setTimeout(() => {
        rt.restartTimers.delete(t);
        if (rt.stopping) return;
        st.restartCount++;
        void this.runContainer(rt, spec).then(() => this.writeStatus(rt).catch(() => undefined));
      }, wait);
      rt.restartTimers.add(t);
    }
    void this.writeStatus(rt, restart).catch((e: unknown) => this.log(`status: ${String(e)}`));
  }

  private async killPod(rt: PodRuntime, graceSeconds: number): Promise<void> {
    if (rt.stopping) return;
    rt.stopping = true;
    for (const t of rt.restartTimers) clearTimeout(t);
    for (const name of rt.running.keys()) this.event(rt, 'Normal', 'Killing', `Stopping container ${name}`);
    await Promise.all([...rt.running.values()].map((c) => stopContainer(c, graceSeconds, this.root)));
    rt.running.clear();
    removeCgroup(rt.podDir, this.root);
    this.pods.delete(rt.uid);
    this.log(`stopped pod ${rt.namespace}/${rt.name}`);
  }

  private event(rt: PodRuntime, type: 'Normal' | 'Warning', reason: string, message: string): void {
    if (this.stopped) return;
    const pod = { metadata: { name: rt.name, namespace: rt.namespace, uid: rt.uid } };
    void recordPodEvent(this.core, pod, 'kubelet', this.opts.nodeName, type, reason, message, (l) =>
      this.log(l),
    );
  }

  /** Writes the pod's status, re-reading on 409 as a kubelet's status manager does. */
  private async writeStatus(rt: PodRuntime, willRestart = false): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      if (this.stopped) return;
      let pod: V1Pod;
      try {
        pod = await this.core.readNamespacedPod({ name: rt.name, namespace: rt.namespace });
      } catch (e) {
        if (errCode(e) === 404) return;
        throw e;
      }
      if (pod.metadata?.uid !== rt.uid) return;
      pod.status = podStatus({
        containers: rt.specs.map((s) => rt.states.get(s.name)!),
        willRestart: willRestart || rt.restartTimers.size > 0,
        hostIP: '127.0.0.1',
        podIP: rt.ip,
        startTime: rt.startTime,
        qosClass: rt.qos,
        since: rt.startTime,
      });
      try {
        await this.core.replaceNamespacedPodStatus({ name: rt.name, namespace: rt.namespace, body: pod });
        return;
      } catch (e) {
        if (errCode(e) === 404) return;
        if (errCode(e) !== 409) throw e;
      }
    }
  }
}
