/**
 * Watch streams: newline-delimited JSON events from a resourceVersion, replayed from
 * history then live. A version older than the history gets an ERROR event carrying a 410
 * Expired Status (HTTP 200, then the error), which is what the real server sends and
 * what client-node's informer relists on. Selector watches turn objects moving in and
 * out of the selection into ADDED and DELETED.
 */
import type { ServerResponse } from 'node:http';
import { gone } from './errors.js';
import type { Objects } from './objects.js';
import type { FieldSelector, LabelSelector } from './selectors.js';
import type { StoredEvent } from './storage.js';
import { clone, metaOf, type Obj, type ResourceInfo } from './types.js';

/** What a watch request asked for. */
export interface WatchRequest {
  info: ResourceInfo;
  namespace: string | undefined;
  labels: LabelSelector;
  fields: FieldSelector;
  /** Undefined or '0': start with synthetic ADDED events for what exists now. */
  resourceVersion: string | undefined;
  bookmarks: boolean;
  timeoutSeconds: number | undefined;
  /** How often to send a BOOKMARK when bookmarks are allowed. */
  bookmarkIntervalMs: number;
  /** Turns each object into what the client asked for (a Table row for `kubectl get -w`). */
  render?: (o: Obj) => Obj;
}

/** Streams a watch into `res` until the client goes, the timeout passes or the server stops. */
export function serveWatch(
  objects: Objects,
  w: WatchRequest,
  res: ServerResponse,
  onClose: (stop: () => void) => () => void,
): void {
  const { info } = w;
  const render = w.render ?? ((o: Obj): Obj => o);
  res.writeHead(200, {
    'Content-Type': 'application/json',
    'Transfer-Encoding': 'chunked',
    'Cache-Control': 'no-cache',
  });
  // Clients wait for the headers before reading events: send them even when nothing happens yet.
  res.flushHeaders();
  const send = (type: string, object: Obj): void => {
    res.write(`${JSON.stringify({ type, object })}\n`);
  };
  const selected = (o: Obj | undefined): boolean => {
    if (!o) return false;
    if (info.namespaced && w.namespace !== undefined && metaOf(o).namespace !== w.namespace) return false;
    return w.labels.matches(metaOf(o).labels) && w.fields.matches(o);
  };
  let lastRv = objects.store.currentRv();
  const deliver = (e: StoredEvent): void => {
    if (e.storageKey !== info.storageKey) return;
    lastRv = e.rv;
    const now = selected(e.object);
    const before = e.type === 'ADDED' ? false : selected(e.prev);
    let type: string | undefined;
    if (e.type === 'DELETED') type = before ? 'DELETED' : undefined;
    else if (now && before) type = 'MODIFIED';
    else if (now) type = 'ADDED';
    else if (before) type = 'DELETED';
    if (type) send(type, render(objects.present(info, clone(e.object))));
  };

  const rv = w.resourceVersion;
  let backlog: StoredEvent[] = [];
  if (rv === undefined || rv === '' || rv === '0') {
    for (const o of objects.list(info, w.namespace)) if (selected(o)) send('ADDED', render(o));
  } else {
    const n = Number(rv);
    const events = Number.isInteger(n) ? objects.store.eventsSince(info.storageKey, n) : 'gone';
    if (events === 'gone') {
      const oldest = objects.store.oldestWatchableRv();
      send('ERROR', gone(`too old resource version: ${rv} (${oldest})`).toStatus());
      res.end();
      return;
    }
    backlog = events;
  }
  for (const e of backlog) deliver(e);
  const unsubscribe = objects.store.subscribe(deliver);
  const timers: NodeJS.Timeout[] = [];
  if (w.bookmarks) {
    timers.push(
      setInterval(() => {
        send('BOOKMARK', {
          kind: info.kind,
          apiVersion: objects.present(info, {})['apiVersion'],
          metadata: { resourceVersion: String(lastRv) },
        });
      }, w.bookmarkIntervalMs),
    );
  }
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    unsubscribe();
    for (const t of timers) clearInterval(t);
    release();
    res.end();
  };
  const release = onClose(stop);
  if (w.timeoutSeconds !== undefined) timers.push(setTimeout(stop, w.timeoutSeconds * 1000));
  res.on('close', stop);
}
