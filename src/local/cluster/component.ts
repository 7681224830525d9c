/**
 * One control-plane component as a child process: started under `setpriv --pdeathsig
 * KILL` so that it dies with the process that started it (a crashed test worker leaves no
 * etcd or kube-apiserver behind), its output kept in a log file whose tail goes into
 * every error, and readiness polled over HTTP(S).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';

/** A running component. */
export interface Component {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit description once the process has exited. */
  readonly exited: Promise<string>;
  /** The last lines of its log, for error messages. */
  tail(lines?: number): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Ports handed to components are drawn below the kernel's ephemeral range
 * (net.ipv4.ip_local_port_range, 32768–60999 by default). A port the kernel picks for
 * `listen(0)` comes from that range, and so does the source port of every outgoing
 * connection on the machine: between our close and the component's bind, any client (a
 * parallel test's watch, say) could take it, and kube-apiserver then fails with "address
 * already in use". Below the range only another listener can collide, which
 * `startOnFreePorts` retries. The range is read from the machine, not assumed.
 */
const PORT_LOW = 20000;
const EPHEMERAL_RANGE = '/proc/sys/net/ipv4/ip_local_port_range';

function portHigh(): number {
  const first = Number(readFileSync(EPHEMERAL_RANGE, 'utf8').trim().split(/\s+/)[0]);
  if (!Number.isInteger(first) || first <= PORT_LOW + 1000) {
    throw new Error(`${EPHEMERAL_RANGE} starts at ${first}: no room below it for component ports`);
  }
  return first - 1;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on now, outside the ephemeral range. */
export async function freePort(): Promise<number> {
  const high = portHigh();
  for (let i = 0; i < 200; i++) {
    const port = PORT_LOW + Math.floor(Math.random() * (high - PORT_LOW + 1));
    if (await canBind(port)) return port;
  }
  throw new Error(`no free port between ${PORT_LOW} and ${high} after 200 tries`);
}

/**
 * Starts a component on fresh ports and waits until it is ready; when it exits because a
 * port was taken between `freePort` and its bind, starts it again on other ports (up to
 * three times). `start` gets its ports and returns the component and its probe.
 */
export async function startOnFreePorts<T>(
  count: number,
  start: (ports: number[], attempt: number) => { component: Component; probe: Probe; result: T },
  timeoutMs: number,
): Promise<T & { component: Component }> {
  for (let attempt = 1; ; attempt++) {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) ports.push(await freePort());
    const { component, probe, result } = start(ports, attempt);
    try {
      await waitReady(component, probe, timeoutMs);
      return { ...result, component };
    } catch (e) {
      await component.stop();
      if (attempt >= 3 || !/address already in use/.test(String(e))) throw e;
    }
  }
}

function tailOf(file: string, lines: number): string {
  if (!existsSync(file)) return '';
  const text = readFileSync(file, 'utf8');
  return text
    .split('\n')
    .slice(-lines - 1)
    .join('\n')
    .trim();
}

/**
 * Starts `bin args…`, appending its stdout and stderr to `logFile`. `enter` is a command
 * prefix that runs it elsewhere (a real node's `nsenter --target PID --mount --net --`);
 * the death signal is set before it, so that it survives the prefix's exec.
 */
export function startComponent(
  name: string,
  bin: string,
  args: string[],
  logFile: string,
  enter: readonly string[] = [],
): Component {
  if (!existsSync(bin)) throw new Error(`${name}: ${bin} does not exist (scripts/kube/build.sh builds it)`);
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...enter, bin, ...args], {
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) =>
      resolve(signal ? `killed by ${signal}` : `exited with status ${code}`),
    );
    child.once('error', (e) => resolve(`could not start: ${e.message}`));
  });
  const tail = (lines = 20): string => tailOf(logFile, lines);
  return {
    name,
    pid: child.pid ?? -1,
    logFile,
    exited,
    tail,
    async stop(graceMs = 5000): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** TLS material to reach a component's HTTPS endpoint. */
export interface Probe {
  url: string;
  ca?: string;
  cert?: string;
  key?: string;
}

/** One GET; resolves with the status code and body, or rejects on a connection error. */
export function get(p: Probe, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(p.url);
    const opts = {
      method: 'GET',
      timeout: timeoutMs,
      ...(p.ca ? { ca: p.ca, cert: p.cert, key: p.key } : {}),
    };
    const req = (u.protocol === 'https:' ? request : httpRequest)(u, opts, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        // Probes read status pages: keep the first 64 KiB, drop the rest.
        if (body.length < 65536) body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('timeout', () => req.destroy(new Error(`GET ${p.url}: no answer in ${timeoutMs} ms`)));
    req.once('error', reject);
    req.end();
  });
}

/**
 * Polls `probe` until it answers 200, failing early with the component's log tail if the
 * component exits, or after `timeoutMs`.
 */
export async function waitReady(c: Component, probe: Probe, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  let exit: string | undefined;
  void c.exited.then((e) => (exit = e));
  while (Date.now() < deadline) {
    if (exit) throw new Error(`${c.name} ${exit} before it was ready:\n${c.tail()}`);
    try {
      const r = await get(probe, 2000);
      if (r.status === 200) return;
      last = `HTTP ${r.status}: ${r.body.slice(0, 300)}`;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(
    `${c.name} not ready after ${timeoutMs} ms (${probe.url}: ${last}); log ${c.logFile}:\n${c.tail()}`,
  );
}
