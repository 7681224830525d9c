/**
 * Property: for any sequence of writes and any starting resourceVersion still in history,
 * a label-selector watch from that version, applied to the selection as it was then,
 * ends in exactly the selection as it is now (objects moving in and out of the selector
 * included). Runs over HTTP against the API double.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { startApiServer, type ApiServer } from '../../src/local/apiserver/server.js';
import { metaOf, type Obj } from '../../src/local/apiserver/types.js';

type Op = { op: 'put' | 'delete'; name: string; label: 'a' | 'b' };

let api: ApiServer;

beforeAll(async () => {
  api = await startApiServer({ bookmarkIntervalMs: 20 });
});

afterAll(async () => {
  await api.close();
});

/** The selection (label l=a) in namespace `ns`: name → resourceVersion. */
function selection(ns: string): Map<string, string> {
  const cms = api.registry.lookup('', 'v1', 'configmaps')!;
  const out = new Map<string, string>();
  for (const o of api.objects.list(cms, ns)) {
    if (metaOf(o).labels?.['l'] === 'a') out.set(metaOf(o).name!, metaOf(o).resourceVersion!);
  }
  return out;
}

/** Reads watch events from `rv` into `state` until a BOOKMARK at or past `until`. */
async function replay(ns: string, rv: string, state: Map<string, string>, until: number): Promise<void> {
  const ac = new AbortController();
  const res = await fetch(
    `${api.url}/api/v1/namespaces/${ns}/configmaps?watch=1&resourceVersion=${rv}&labelSelector=l%3Da&allowWatchBookmarks=true`,
    { signal: ac.signal },
  );
  const reader = res.body!.getReader();
  let buf = '';
  for (;;) {
    const { value, done } = (await reader.read()) as { value?: Uint8Array; done: boolean };
    if (done || !value) throw new Error('watch ended early');
    buf += Buffer.from(value).toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const e = JSON.parse(buf.slice(0, nl)) as { type: string; object: Obj };
      buf = buf.slice(nl + 1);
      const m = metaOf(e.object);
      if (e.type === 'BOOKMARK') {
        if (Number(m.resourceVersion) >= until) {
          ac.abort();
          return;
        }
      } else if (e.type === 'DELETED') state.delete(m.name!);
      else if (e.type === 'ADDED' || e.type === 'MODIFIED') state.set(m.name!, m.resourceVersion!);
      else throw new Error(`unexpected ${e.type}`);
    }
  }
}

let run = 0;

describe('watch replay', () => {
  it('a selector watch from any kept version reaches the current selection', async () => {
    const cms = api.registry.lookup('', 'v1', 'configmaps')!;
    const nsInfo = api.registry.lookup('', 'v1', 'namespaces')!;
    const op = fc.record({
      op: fc.constantFrom<'put' | 'delete'>('put', 'put', 'delete'),
      name: fc.constantFrom('n0', 'n1', 'n2', 'n3'),
      label: fc.constantFrom<'a' | 'b'>('a', 'b'),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), fc.nat(), async (ops: Op[], pick) => {
        const ns = `prop-${run++}`;
        api.objects.create(nsInfo, undefined, { metadata: { name: ns } });
        const points: { rv: string; sel: Map<string, string> }[] = [
          { rv: String(api.store.currentRv()), sel: selection(ns) },
        ];
        for (const o of ops) {
          const exists = api.store.get(cms.storageKey, ns, o.name);
          if (o.op === 'delete') {
            if (exists) api.objects.delete(cms, ns, o.name);
          } else if (exists) {
            api.objects.update(
              cms,
              ns,
              o.name,
              {
                ...exists,
                metadata: { ...metaOf(exists), labels: { l: o.label } },
                data: { n: String(Math.random()) },
              },
              undefined,
            );
          } else {
            api.objects.create(cms, ns, { metadata: { name: o.name, labels: { l: o.label } } });
          }
          points.push({ rv: String(api.store.currentRv()), sel: selection(ns) });
        }
        const start = points[pick % points.length]!;
        const state = new Map(start.sel);
        await replay(ns, start.rv, state, api.store.currentRv());
        expect(state).toEqual(selection(ns));
      }),
      { numRuns: 30 },
    );
  });
});
