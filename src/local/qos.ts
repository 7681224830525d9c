/** Pod QoS class, decided as the apiserver and kubelet decide it, shared by both halves of the harness. */

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function list(v: unknown): Obj[] {
  return Array.isArray(v) ? (v as unknown[]).filter(isObj) : [];
}

/** The QoS class from the containers' requests and limits. */
export function podQosClass(pod: Obj): 'Guaranteed' | 'Burstable' | 'BestEffort' {
  const spec = isObj(pod['spec']) ? pod['spec'] : {};
  const containers = [...list(spec['containers']), ...list(spec['initContainers'])];
  let any = false;
  let guaranteed = containers.length > 0;
  for (const c of containers) {
    const res = isObj(c['resources']) ? c['resources'] : {};
    const req = isObj(res['requests']) ? res['requests'] : {};
    const lim = isObj(res['limits']) ? res['limits'] : {};
    if (Object.keys(req).length || Object.keys(lim).length) any = true;
    for (const r of ['cpu', 'memory']) {
      // A missing request defaults to the limit, as the apiserver defaults it.
      const l = lim[r];
      const q = req[r] ?? l;
      if (l === undefined || q === undefined || JSON.stringify(q) !== JSON.stringify(l)) guaranteed = false;
    }
  }
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}
