/**
 * meta.k8s.io/v1 Table responses, which `kubectl get` asks for: the CRD's
 * additionalPrinterColumns (or the built-in columns for pods, nodes, namespaces, CRDs),
 * each row carrying its object as PartialObjectMetadata.
 */
import { jsonPathValues } from './jsonpath.js';
import { metaOf, isObj, type Obj, type PrinterColumn, type ResourceInfo } from './types.js';

/** A meta/v1 TableColumnDefinition. */
interface ColumnDef {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

/** Human-readable age, as kubectl prints it (5s, 3m2s, 2d4h, …). */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < -1) return '<invalid>';
  if (s < 0) return '0s';
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 730) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

function age(ts: unknown): string {
  return typeof ts === 'string' ? humanDuration(Date.now() - Date.parse(ts)) : '<unknown>';
}

type Cell = string | number | boolean | null;
type Builtin = { columns: ColumnDef[]; cells: (o: Obj) => Cell[] };

const col = (name: string, type = 'string', priority = 0, format = ''): ColumnDef => ({
  name,
  type,
  format,
  description: name,
  priority,
});

function podCells(o: Obj): Cell[] {
  const spec = (o['spec'] ?? {}) as Obj;
  const status = (o['status'] ?? {}) as Obj;
  const containers = Array.isArray(spec['containers']) ? spec['containers'] : [];
  const statuses = (Array.isArray(status['containerStatuses']) ? status['containerStatuses'] : []) as Obj[];
  const ready = statuses.filter((c) => c['ready'] === true).length;
  const restarts = statuses.reduce(
    (n, c) => n + (typeof c['restartCount'] === 'number' ? c['restartCount'] : 0),
    0,
  );
  let reason = typeof status['phase'] === 'string' ? status['phase'] : 'Pending';
  for (const c of statuses) {
    const st = isObj(c['state']) ? c['state'] : {};
    const w = isObj(st['waiting']) ? st['waiting'] : undefined;
    const t = isObj(st['terminated']) ? st['terminated'] : undefined;
    if (w && typeof w['reason'] === 'string') reason = w['reason'];
    else if (t && typeof t['reason'] === 'string') reason = t['reason'];
  }
  if (metaOf(o).deletionTimestamp) reason = 'Terminating';
  return [
    metaOf(o).name ?? '',
    `${ready}/${containers.length}`,
    reason,
    restarts,
    age(metaOf(o).creationTimestamp),
    (status['podIP'] as string) ?? '<none>',
    (spec['nodeName'] as string) ?? '<none>',
  ];
}

function conditionTrue(o: Obj, type: string): boolean {
  const conds =
    isObj(o['status']) && Array.isArray(o['status']['conditions']) ? o['status']['conditions'] : [];
  return conds.some((c) => isObj(c) && c['type'] === type && c['status'] === 'True');
}

function eventCells(o: Obj): Cell[] {
  const io = isObj(o['involvedObject']) ? o['involvedObject'] : {};
  const last = o['lastTimestamp'] ?? o['eventTime'] ?? metaOf(o).creationTimestamp;
  const kind = typeof io['kind'] === 'string' ? io['kind'].toLowerCase() : '';
  const name = typeof io['name'] === 'string' ? io['name'] : '';
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  return [age(last), str(o['type']), str(o['reason']), `${kind}/${name}`, str(o['message'])];
}

function num(o: Obj, part: 'spec' | 'status', field: string): number {
  const p = isObj(o[part]) ? o[part] : {};
  return typeof p[field] === 'number' ? p[field] : 0;
}

/** CONTAINERS, IMAGES and SELECTOR of a workload (the wide columns kubectl shows). */
function workloadWide(o: Obj): Cell[] {
  const spec = isObj(o['spec']) ? o['spec'] : {};
  const tpl = isObj(spec['template']) && isObj(spec['template']['spec']) ? spec['template']['spec'] : {};
  const cs = (Array.isArray(tpl['containers']) ? tpl['containers'] : []) as Obj[];
  const sel =
    isObj(spec['selector']) && isObj(spec['selector']['matchLabels']) ? spec['selector']['matchLabels'] : {};
  return [
    cs.map((c) => String(c['name'])).join(','),
    cs.map((c) => String(c['image'])).join(','),
    Object.entries(sel)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(',') || '<none>',
  ];
}

const WIDE = [col('Containers', 'string', 1), col('Images', 'string', 1), col('Selector', 'string', 1)];

const BUILTIN_TABLES: Record<string, Builtin> = {
  'deployments.apps': {
    columns: [
      col('Name', 'string', 0, 'name'),
      col('Ready'),
      col('Up-to-date', 'integer'),
      col('Available', 'integer'),
      col('Age'),
      ...WIDE,
    ],
    cells: (o) => [
      metaOf(o).name ?? '',
      `${num(o, 'status', 'readyReplicas')}/${num(o, 'spec', 'replicas')}`,
      num(o, 'status', 'updatedReplicas'),
      num(o, 'status', 'availableReplicas'),
      age(metaOf(o).creationTimestamp),
      ...workloadWide(o),
    ],
  },
  'replicasets.apps': {
    columns: [
      col('Name', 'string', 0, 'name'),
      col('Desired', 'integer'),
      col('Current', 'integer'),
      col('Ready', 'integer'),
      col('Age'),
      ...WIDE,
    ],
    cells: (o) => [
      metaOf(o).name ?? '',
      num(o, 'spec', 'replicas'),
      num(o, 'status', 'replicas'),
      num(o, 'status', 'readyReplicas'),
      age(metaOf(o).creationTimestamp),
      ...workloadWide(o),
    ],
  },
  events: {
    columns: [col('Last Seen'), col('Type'), col('Reason'), col('Object'), col('Message')],
    cells: eventCells,
  },
  pods: {
    columns: [
      col('Name', 'string', 0, 'name'),
      col('Ready'),
      col('Status'),
      col('Restarts', 'string'),
      col('Age'),
      col('IP', 'string', 1),
      col('Node', 'string', 1),
    ],
    cells: podCells,
  },
  nodes: {
    columns: [col('Name', 'string', 0, 'name'), col('Status'), col('Roles'), col('Age'), col('Version')],
    cells: (o) => {
      const info = isObj(o['status']) && isObj(o['status']['nodeInfo']) ? o['status']['nodeInfo'] : {};
      return [
        metaOf(o).name ?? '',
        conditionTrue(o, 'Ready') ? 'Ready' : 'NotReady',
        '<none>',
        age(metaOf(o).creationTimestamp),
        (info['kubeletVersion'] as string) ?? '',
      ];
    },
  },
  namespaces: {
    columns: [col('Name', 'string', 0, 'name'), col('Status'), col('Age')],
    cells: (o) => [
      metaOf(o).name ?? '',
      (isObj(o['status']) && (o['status']['phase'] as string)) || 'Active',
      age(metaOf(o).creationTimestamp),
    ],
  },
  'customresourcedefinitions.apiextensions.k8s.io': {
    columns: [col('Name', 'string', 0, 'name'), col('Created At', 'date')],
    cells: (o) => [metaOf(o).name ?? '', metaOf(o).creationTimestamp ?? ''],
  },
};

function printerCell(o: Obj, c: PrinterColumn): Cell {
  const vals = jsonPathValues(o, c.jsonPath);
  if (vals.length === 0) return null;
  const v = vals[0];
  if (c.type === 'date') return age(v);
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  return JSON.stringify(v);
}

/** The Table for a list of objects of one resource. */
export function toTable(
  info: ResourceInfo,
  objects: Obj[],
  listRv: string,
  includeObject: string | null,
): Obj {
  let columns: ColumnDef[];
  let cells: (o: Obj) => Cell[];
  const builtin = info.crd ? undefined : BUILTIN_TABLES[info.storageKey];
  if (builtin) {
    ({ columns, cells } = builtin);
  } else if (info.printerColumns.length) {
    columns = [
      col('Name', 'string', 0, 'name'),
      ...info.printerColumns.map((c) => ({
        name: c.name,
        type: c.type,
        format: c.format ?? '',
        description: c.description ?? '',
        priority: c.priority ?? 0,
      })),
    ];
    cells = (o) => [metaOf(o).name ?? '', ...info.printerColumns.map((c) => printerCell(o, c))];
  } else {
    columns = [col('Name', 'string', 0, 'name'), col('Age', 'date')];
    cells = (o) => [metaOf(o).name ?? '', age(metaOf(o).creationTimestamp)];
  }
  const rows = objects.map((o) => ({
    cells: cells(o),
    object:
      includeObject === 'Object'
        ? o
        : includeObject === 'None'
          ? undefined
          : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o['metadata'] },
  }));
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion: listRv },
    columnDefinitions: columns,
    rows,
  };
}
