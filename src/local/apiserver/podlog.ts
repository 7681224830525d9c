/**
 * pods/log for local nodes: a real apiserver proxies it to the node's kubelet; here the
 * node is on this machine, so the log file the process kubelet wrote is read directly.
 * Supports container, previous, tailLines, limitBytes and follow.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { ApiError, badRequest } from './errors.js';
import { containerLogFile, podLogDir, STORAGE_DIR_ANNOTATION } from '../nodefiles.js';
import type { Objects } from './objects.js';
import type { Registry } from './registry.js';
import { arr, isObj, metaOf, type Obj } from './types.js';

/** The log text of one container of a pod. */
export function podLog(
  objects: Objects,
  registry: Registry,
  ns: string,
  name: string,
  q: URLSearchParams,
): PodLog {
  const pods = registry.lookup('', 'v1', 'pods')!;
  const pod = objects.get(pods, ns, name);
  const spec = isObj(pod['spec']) ? pod['spec'] : {};
  const containers = arr(spec['containers']).filter(isObj);
  let container = q.get('container');
  if (!container) {
    if (containers.length !== 1) {
      throw badRequest(
        `a container name must be specified for pod ${name}, choose one of: [${containers.map((c) => String(c['name'])).join(' ')}]`,
      );
    }
    container = String(containers[0]!['name']);
  }
  if (!containers.some((c) => c['name'] === container))
    throw badRequest(`container ${container} is not valid for pod ${name}`);
  const nodeName = spec['nodeName'];
  if (typeof nodeName !== 'string') throw badRequest(`pod ${name} is not scheduled to a node yet`);
  const node = objects.get(registry.lookup('', 'v1', 'nodes')!, undefined, nodeName);
  const storageDir = metaOf(node).annotations?.[STORAGE_DIR_ANNOTATION];
  if (!storageDir) throw badRequest(`node ${nodeName} is not a local node: no logs to serve`);
  const status = isObj(pod['status']) ? pod['status'] : {};
  const cs = arr(status['containerStatuses'])
    .filter(isObj)
    .find((c: Obj) => c['name'] === container);
  const restarts = typeof cs?.['restartCount'] === 'number' ? cs['restartCount'] : 0;
  const run = q.get('previous') === 'true' ? restarts - 1 : restarts;
  if (run < 0) throw badRequest(`previous terminated container "${container}" in pod "${name}" not found`);
  let text: string;
  const file = containerLogFile(podLogDir(storageDir, ns, name, metaOf(pod).uid!), container, run);
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new ApiError(400, 'BadRequest', `container "${container}" in pod "${name}" is waiting to start`);
  }
  const tail = q.get('tailLines');
  if (tail !== null) {
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    text = lines.slice(Math.max(0, lines.length - Number(tail))).join('\n') + (lines.length ? '\n' : '');
  }
  const limit = q.get('limitBytes');
  if (limit !== null) text = Buffer.from(text).subarray(0, Number(limit)).toString('utf8');
  return { text, file, offset: statSync(file).size, uid: metaOf(pod).uid!, container, run };
}

/** What was read of a container's log, and where to follow it from. */
export interface PodLog {
  text: string;
  file: string;
  /** Bytes of the file already covered by `text`. */
  offset: number;
  uid: string;
  container: string;
  /** The run (restart count) whose log this is. */
  run: number;
}

function runOver(objects: Objects, registry: Registry, ns: string, name: string, log: PodLog): boolean {
  let pod: Obj;
  try {
    pod = objects.get(registry.lookup('', 'v1', 'pods')!, ns, name);
  } catch {
    return true;
  }
  if (metaOf(pod).uid !== log.uid) return true;
  const status = isObj(pod['status']) ? pod['status'] : {};
  const cs = arr(status['containerStatuses'])
    .filter(isObj)
    .find((c: Obj) => c['name'] === log.container);
  if (!cs) return false;
  const state = isObj(cs['state']) ? cs['state'] : {};
  const restarts = typeof cs['restartCount'] === 'number' ? cs['restartCount'] : 0;
  return restarts > log.run || state['running'] === undefined;
}

/**
 * `follow=true`: streams what the container writes after `log` until its run ends (it
 * exits, restarts, or the pod goes), the client leaves, or `onClose`'s stop is called.
 */
export function followLog(
  objects: Objects,
  registry: Registry,
  ns: string,
  name: string,
  log: PodLog,
  res: ServerResponse,
  onClose: (stop: () => void) => () => void,
): void {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
  res.write(log.text);
  let offset = log.offset;
  let stopped = false;
  const drain = (): void => {
    try {
      const size = statSync(log.file).size;
      if (size <= offset) return;
      const buf = Buffer.alloc(size - offset);
      const fd = openSync(log.file, 'r');
      try {
        offset += readSync(fd, buf, 0, buf.length, offset);
      } finally {
        closeSync(fd);
      }
      res.write(buf);
    } catch {
      // The pod's log directory went with the pod: nothing more to send.
    }
  };
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    release();
    drain();
    res.end();
  };
  const timer = setInterval(() => {
    const over = runOver(objects, registry, ns, name, log);
    drain();
    if (over) stop();
  }, 100);
  const release = onClose(stop);
  res.on('close', stop);
}
