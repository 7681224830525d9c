/**
 * One container as host processes. Like containerd's shim, a small shell outside the
 * container's cgroup is the kubelet's child and waits for the container; the container
 * is the shim's child, a shell that moves itself into the container's cgroup and then
 * execs `command` + `args`, so the program and everything it forks live in the cgroup
 * from its first instruction, and no container process is a child of this Node process
 * (libuv waits on its own children, which would steal an agent's ptrace stops). Images
 * are ignored: the command must exist on the host.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { containerLogFile } from '../nodefiles.js';
import { cgroupPids, killCgroup, makeContainerCgroup, removeCgroup, signalCgroup } from './cgroup.js';

/** What the kubelet needs from a core/v1 Container. */
export interface ContainerSpec {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
}

/** How a container ended. */
export interface ExitInfo {
  exitCode: number;
  signal?: string;
  finishedAt: string;
}

/** A started container. */
export interface RunningContainer {
  name: string;
  /** 64 hex characters, as containerd's ids. */
  id: string;
  /** The shim's pid (outside the cgroup); the container's processes are in `cgroupDir`. */
  shimPid: number;
  cgroupDir: string;
  startedAt: string;
  /** Resolves when the main process has exited. */
  exited: Promise<ExitInfo>;
}

/** RFC 3339 to the second. */
export function rfc3339(d = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGKILL: 9,
  SIGTERM: 15,
  SIGABRT: 6,
  SIGSEGV: 11,
  SIGPIPE: 13,
};

/**
 * The container's first shell: close every inherited fd above 2 (a container runtime
 * starts a container with stdio only; without this, whatever the Node process inherited
 * — a terminal's pipes, say — would leak into every pod), join the cgroup ($0), then
 * become the command. Needs bash (Essential on Debian) for `exec {fd}>&-`: dash cannot
 * name fds above 9. Without bash the fds are left as they are.
 */
const CLOSE_FDS = 'for f in /proc/self/fd/*; do f=${f##*/}; if [ "$f" -gt 2 ]; then exec {f}>&-; fi; done; ';
const INNER_SHELL = existsSync('/bin/bash') ? '/bin/bash' : '/bin/sh';
const INNER = `${INNER_SHELL === '/bin/bash' ? CLOSE_FDS : ''}echo $$ > "$0" && exec "$@"`;

/**
 * The shim script ($0 = the cgroup's procs file, $@ = the command): run the container in
 * the foreground — a background job would start with SIGINT and SIGQUIT ignored — as
 * {@link INNER}; `exit $?` keeps the shim from exec-ing into it, and passes on its status
 * (128+N when killed by signal N).
 */
const SHIM = `${INNER_SHELL} -c '${INNER}' "$0" "$@"; exit $?`;

/** Starts one container in a fresh cgroup under `podDir`; output goes to `logDir/<name>/N.log`. */
export async function startContainer(
  spec: ContainerSpec,
  podDir: string,
  logDir: string,
  attempt: number,
  /** The container's environment; PATH defaults to the host's. */
  containerEnv: Record<string, string>,
): Promise<RunningContainer> {
  const argv = [...(spec.command ?? []), ...(spec.args ?? [])];
  if (!spec.command?.length) {
    throw new Error(
      `container ${spec.name}: the process kubelet ignores images, so the container needs a command that exists on the host`,
    );
  }
  const id = randomBytes(32).toString('hex');
  const cgroupDir = makeContainerCgroup(podDir, id);
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    ...containerEnv,
  };
  mkdirSync(join(logDir, spec.name), { recursive: true });
  const log = openSync(containerLogFile(logDir, spec.name, attempt), 'a');
  let child: ChildProcess;
  try {
    child = spawn('/bin/sh', ['-c', SHIM, join(cgroupDir, 'cgroup.procs'), ...argv], {
      cwd: spec.workingDir ?? '/',
      env,
      stdio: ['ignore', log, log],
      detached: true,
    });
  } finally {
    closeSync(log);
  }
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('error', () => resolve({ exitCode: 128, finishedAt: rfc3339() }));
    child.once('exit', (code, signal) => {
      const exitCode = code ?? 128 + (signal ? (SIGNALS[signal] ?? 0) : 0);
      resolve({ exitCode, ...(signal ? { signal } : {}), finishedAt: rfc3339() });
    });
  });
  // Started means in its cgroup: until the container has joined, a stop could miss it.
  let ended = false;
  void exited.then(() => (ended = true));
  for (let i = 0; i < 7500 && !ended && cgroupPids(cgroupDir).length === 0; i++) await delay(2);
  return { name: spec.name, id, shimPid: child.pid ?? -1, cgroupDir, startedAt: rfc3339(), exited };
}

/** A pause that does not keep the process alive on its own. */
function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/**
 * Stops a container like a kubelet: SIGTERM to every process of its cgroup, SIGKILL to the
 * whole cgroup after the grace period, then waits for it to empty and removes it.
 */
export async function stopContainer(
  c: RunningContainer,
  graceSeconds: number,
  cgroupRootDir: string,
): Promise<void> {
  signalCgroup(c.cgroupDir, 'SIGTERM');
  const deadline = Date.now() + graceSeconds * 1000;
  const gone = c.exited.then(() => true);
  while (Date.now() < deadline && cgroupPids(c.cgroupDir).length > 0) {
    await Promise.race([gone, delay(50)]);
    if (cgroupPids(c.cgroupDir).length === 0) break;
  }
  killCgroup(c.cgroupDir);
  await removeWhenEmpty(c.cgroupDir, cgroupRootDir);
  await Promise.race([c.exited, delay(2000)]);
}

/**
 * Removes a cgroup once its killed processes are gone; on a loaded machine that can take
 * a while, so keep trying (up to 30 s) rather than leave the directory behind.
 */
export async function removeWhenEmpty(dir: string, cgroupRootDir: string): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    if (cgroupPids(dir).length === 0 && removeCgroup(dir, cgroupRootDir)) return;
    if (i % 50 === 49) killCgroup(dir);
    await delay(20);
  }
}
