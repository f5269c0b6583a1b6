// Table output (meta.k8s.io/v1 Table) for `kubectl get`, from each resource's printer columns.
import type { KObject, ResourceDef, TableColumn } from '../api/types.js';

export const FALLBACK_COLUMNS: TableColumn[] = [
  { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 },
  { name: 'Created At', type: 'date', format: '', description: 'CreationTimestamp is a timestamp representing the server time when this object was created.', priority: 0 },
];

export type IncludeObject = 'None' | 'Metadata' | 'Object';

function rowObject(obj: KObject, include: IncludeObject): unknown {
  if (include === 'None') return undefined;
  if (include === 'Object') return obj;
  const m = obj.metadata ?? {};
  const meta: Record<string, unknown> = {};
  for (const k of ['name', 'generateName', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'labels', 'annotations', 'ownerReferences', 'finalizers']) {
    if (m[k] !== undefined) meta[k] = m[k];
  }
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: meta };
}

export function tableRow(def: ResourceDef, obj: KObject, now: Date, include: IncludeObject): Record<string, unknown> {
  let cells: unknown[];
  try {
    cells = def.strategy.row ? def.strategy.row(obj, now) : [obj.metadata?.name ?? '', obj.metadata?.creationTimestamp ?? ''];
  } catch {
    cells = [obj.metadata?.name ?? '', ...new Array(Math.max(0, (def.strategy.columns ?? FALLBACK_COLUMNS).length - 1)).fill('<error>')];
  }
  const row: Record<string, unknown> = { cells };
  const o = rowObject(obj, include);
  if (o !== undefined) row.object = o;
  return row;
}

export function toTable(def: ResourceDef, objs: KObject[], now: Date, include: IncludeObject, listMeta: Record<string, unknown>, withColumns = true): Record<string, unknown> {
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    columnDefinitions: withColumns ? (def.strategy.columns ?? FALLBACK_COLUMNS) : [],
    rows: objs.map((o) => tableRow(def, o, now, include)),
  };
}
