// Server-side apply (`application/apply-patch+yaml`, kubectl-api.md §3.5) and field ownership
// tracking in metadata.managedFields, in upstream's FieldsV1 format.
//
// Ownership is tracked per leaf: scalars, atomic lists, empty objects, elements of merge-keyed lists
// (`k:{"name":"web"}`, which also own their own existence) and members of set lists (`v:"x"`).
// An apply merges the applied configuration into the live object (maps recursively, merge-keyed lists
// by key, other lists replaced), refuses to change a field another manager owns with a different value
// unless forced, and removes fields this manager applied last time but no longer applies, unless
// another manager owns them too.
import { isDeepStrictEqual } from 'node:util';
import type { KObject } from '../api/types.js';
import { patchMetaFor, type PatchMetaLookup } from '../api/patch-meta.js';
import { StatusError } from '../machinery/status.js';

export interface ManagedFieldsEntry {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time?: string;
  fieldsType: 'FieldsV1';
  fieldsV1: Record<string, unknown>;
  subresource?: string;
}

export interface ApplyOptions {
  manager: string;
  force: boolean;
  kind: string;
  /** RFC3339 time stamped on the manager's entry */
  now: string;
  lookup: PatchMetaLookup;
}

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** Fields that are never owned: identity, system-set metadata, and status (a subresource). */
const untrackedTop = new Set(['apiVersion', 'kind', 'status']);
const untrackedMeta = new Set(['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp',
  'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields', 'selfLink', 'generateName']);

// ---------------------------------------------------------------------------------------------
// Paths and field sets

/** One step of a path: `f:<field>`, `k:<json of merge key>`, `v:<json of a set member>`. */
type PathElem = string;
type Path = PathElem[];
/** A set of paths keyed by their joined form. */
type FieldSet = Map<string, Path>;

const SEP = '\u0000';
const keyOf = (p: Path): string => p.join(SEP);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const MISSING = Symbol('missing');
type Lookup = Json | typeof MISSING;

function isObj(v: unknown): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The field names of a path, list steps left out, for patch-meta lookups. */
function schemaPath(p: Path): string[] {
  return p.filter((e) => e.startsWith('f:')).map((e) => e.slice(2));
}

function listMode(lookup: PatchMetaLookup, sp: string[], list: Json[]): { kind: 'keyed'; key: string } | { kind: 'set' } | { kind: 'atomic' } {
  const meta = lookup(sp);
  if (meta?.strategy === 'merge') {
    if (meta.mergeKey) {
      const key = meta.mergeKey;
      if (list.every((el) => isObj(el) && el[key] !== undefined && el[key] !== null)) return { kind: 'keyed', key };
    } else if (list.every((el) => el === null || typeof el !== 'object')) return { kind: 'set' };
  }
  return { kind: 'atomic' };
}

function elemKey(key: string, el: Record<string, Json>): PathElem {
  return `k:${JSON.stringify({ [key]: el[key] })}`;
}

/** Collects the owned paths of a value: leaves, keyed list elements and set members. Nulls are skipped. */
function collect(value: Json, path: Path, lookup: PatchMetaLookup, out: FieldSet): void {
  if (isObj(value)) {
    const present = Object.keys(value).filter((k) => value[k] !== null && value[k] !== undefined);
    const keys = present.filter((k) => !untracked(path, k));
    if (present.length === 0) {
      if (path.length > 0) out.set(keyOf(path), path);
      return;
    }
    for (const k of keys) collect(value[k], [...path, `f:${k}`], lookup, out);
    return;
  }
  if (Array.isArray(value)) {
    const mode = listMode(lookup, schemaPath(path), value);
    if (mode.kind === 'keyed') {
      for (const el of value as Record<string, Json>[]) {
        const p = [...path, elemKey(mode.key, el)];
        out.set(keyOf(p), p);
        collect(el, p, lookup, out);
      }
      return;
    }
    if (mode.kind === 'set') {
      for (const el of value) {
        const p = [...path, `v:${JSON.stringify(el)}`];
        out.set(keyOf(p), p);
      }
      return;
    }
  }
  out.set(keyOf(path), path);
}

function untracked(path: Path, k: string): boolean {
  if (path.length === 0) return untrackedTop.has(k);
  return path.length === 1 && path[0] === 'f:metadata' && untrackedMeta.has(k);
}

function fieldSetOf(obj: KObject, lookup: PatchMetaLookup): FieldSet {
  const out: FieldSet = new Map();
  collect(obj as unknown as Json, [], lookup, out);
  return out;
}

/** Finds the index of a list element addressed by a `k:` or `v:` step. */
function findElem(list: Json[], step: PathElem): number {
  if (step.startsWith('k:')) {
    const want = JSON.parse(step.slice(2)) as Record<string, Json>;
    return list.findIndex((el) => isObj(el) && Object.entries(want).every(([k, v]) => isDeepStrictEqual(el[k], v)));
  }
  if (step.startsWith('v:')) {
    const want = JSON.parse(step.slice(2)) as Json;
    return list.findIndex((el) => isDeepStrictEqual(el, want));
  }
  return -1;
}

function get(obj: Json | undefined, path: Path): Lookup {
  let cur: Json | undefined = obj;
  for (const step of path) {
    if (step.startsWith('f:')) {
      if (!isObj(cur) || !Object.hasOwn(cur, step.slice(2))) return MISSING;
      cur = cur[step.slice(2)];
    } else {
      if (!Array.isArray(cur)) return MISSING;
      const i = findElem(cur, step);
      if (i < 0) return MISSING;
      cur = cur[i];
    }
  }
  return cur === undefined ? MISSING : cur;
}

/** Removes the node at path; returns whether something was removed. */
function remove(obj: Json, path: Path): boolean {
  const parent = get(obj, path.slice(0, -1));
  const step = path[path.length - 1];
  if (parent === MISSING) return false;
  if (step.startsWith('f:')) {
    if (!isObj(parent) || !Object.hasOwn(parent, step.slice(2))) return false;
    delete parent[step.slice(2)];
    return true;
  }
  if (!Array.isArray(parent)) return false;
  const i = findElem(parent, step);
  if (i < 0) return false;
  parent.splice(i, 1);
  return true;
}

/** Upstream's path notation for messages: `.spec.template.spec.containers[name="web"].image`. */
export function formatPath(p: Path): string {
  return p.map((step) => {
    if (step.startsWith('f:')) return `.${step.slice(2)}`;
    if (step.startsWith('k:')) {
      const key = JSON.parse(step.slice(2)) as Record<string, Json>;
      return `[${Object.entries(key).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}]`;
    }
    return `[=${step.slice(2)}]`;
  }).join('');
}

// ---------------------------------------------------------------------------------------------
// FieldsV1 encoding

function toFieldsV1(set: FieldSet): Record<string, unknown> {
  const root: Record<string, Record<string, unknown>> = {};
  for (const p of set.values()) {
    let node: Record<string, unknown> = root;
    for (const step of p) node = (node[step] ??= {}) as Record<string, unknown>;
  }
  // a member that also has members below it is marked with `.`
  const mark = (node: Record<string, unknown>, path: Path): Record<string, unknown> => {
    const keys = Object.keys(node).sort();
    const out: Record<string, unknown> = {};
    if (keys.length > 0 && path.length > 0 && set.has(keyOf(path))) out['.'] = {};
    for (const k of keys) out[k] = mark(node[k] as Record<string, unknown>, [...path, k]);
    return out;
  };
  return mark(root, []);
}

function fromFieldsV1(tree: unknown, path: Path = [], out: FieldSet = new Map()): FieldSet {
  if (!isObj(tree)) return out;
  const keys = Object.keys(tree);
  if (keys.length === 0 && path.length > 0) out.set(keyOf(path), path);
  for (const k of keys) {
    if (k === '.') out.set(keyOf(path), path);
    else fromFieldsV1(tree[k], [...path, k], out);
  }
  return out;
}

interface Entry { meta: ManagedFieldsEntry; set: FieldSet; changed: boolean }

function readEntries(list: unknown): Entry[] {
  if (!Array.isArray(list)) return [];
  return list.filter(isObj).map((e) => ({
    meta: e as unknown as ManagedFieldsEntry,
    set: fromFieldsV1(e.fieldsV1),
    changed: false,
  }));
}

function writeEntries(entries: Entry[], now: string): ManagedFieldsEntry[] {
  return entries.filter((e) => e.set.size > 0).map((e) => {
    const m: ManagedFieldsEntry = {
      manager: e.meta.manager, operation: e.meta.operation, apiVersion: e.meta.apiVersion,
      time: e.changed ? now : e.meta.time, fieldsType: 'FieldsV1', fieldsV1: toFieldsV1(e.set),
    };
    if (m.time === undefined) delete m.time;
    if (e.meta.subresource) m.subresource = e.meta.subresource;
    return m;
  });
}

/** Drops owned paths that no longer exist in the object. */
function pruneMissing(entries: Entry[], obj: Json): void {
  for (const e of entries) {
    for (const [k, p] of e.set) {
      if (get(obj, p) === MISSING) { e.set.delete(k); e.changed = true; }
    }
  }
}

function ownedBelow(set: FieldSet, path: Path): boolean {
  const prefix = keyOf(path);
  for (const k of set.keys()) if (k === prefix || k.startsWith(prefix + SEP)) return true;
  return false;
}

/** Whether the path ends in the merge-key field of a keyed list element (`k:{"name":..}` then `f:name`). */
function isMergeKeyField(p: Path): boolean {
  if (p.length < 2 || !p[p.length - 2].startsWith('k:')) return false;
  const key = JSON.parse(p[p.length - 2].slice(2)) as Record<string, unknown>;
  return Object.hasOwn(key, p[p.length - 1].slice(2));
}

function clone<T>(v: T): T {
  return v === undefined ? v : structuredClone(v);
}

// ---------------------------------------------------------------------------------------------
// Merging

function stripNulls(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripNulls);
  if (isObj(v)) {
    const out: Record<string, Json> = {};
    for (const [k, x] of Object.entries(v)) if (x !== null && x !== undefined) out[k] = stripNulls(x);
    return out;
  }
  return v;
}

/** Merges an applied configuration into a live value. */
function merge(live: Json | undefined, applied: Json, path: Path, lookup: PatchMetaLookup): Json {
  if (isObj(applied)) {
    const out: Record<string, Json> = isObj(live) ? { ...live } : {};
    for (const [k, v] of Object.entries(applied)) {
      if (v === null || v === undefined) continue; // no opinion
      const merged = merge(Object.hasOwn(out, k) ? out[k] : undefined, v, [...path, `f:${k}`], lookup);
      Object.defineProperty(out, k, { value: merged, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  if (Array.isArray(applied) && Array.isArray(live)) {
    const mode = listMode(lookup, schemaPath(path), applied);
    if (mode.kind === 'keyed' && listMode(lookup, schemaPath(path), live).kind === 'keyed') {
      const out = [...live];
      for (const el of applied as Record<string, Json>[]) {
        const step = elemKey(mode.key, el);
        const i = findElem(out, step);
        if (i >= 0) out[i] = merge(out[i], el, [...path, step], lookup);
        else out.push(stripNulls(el));
      }
      return out;
    }
    if (mode.kind === 'set') {
      const out = [...live];
      for (const el of applied) if (!out.some((x) => isDeepStrictEqual(x, el))) out.push(el);
      return out;
    }
  }
  return stripNulls(clone(applied));
}

/** Removes now-empty objects and lists left behind above a removed path (never top-level fields). */
function pruneEmptyParents(obj: Json, path: Path, entries: Entry[]): void {
  for (let n = path.length - 1; n >= 2; n--) {
    const parentPath = path.slice(0, n);
    const v = get(obj, parentPath);
    const empty = (isObj(v) && Object.keys(v).length === 0) || (Array.isArray(v) && v.length === 0);
    if (!empty || entries.some((e) => e.set.has(keyOf(parentPath)))) return;
    remove(obj, parentPath);
  }
}

// ---------------------------------------------------------------------------------------------
// Apply

interface Conflict { manager: string; path: Path }

function managerLabel(e: ManagedFieldsEntry): string {
  let s = JSON.stringify(e.manager);
  if (e.subresource) s += ` with subresource ${JSON.stringify(e.subresource)}`;
  if (e.operation === 'Update') s += ` using ${e.apiVersion}`;
  return s;
}

function comparePaths(a: Path, b: Path): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return a.length - b.length;
}

function conflictError(conflicts: Conflict[]): StatusError {
  let detail: string;
  if (conflicts.length === 1) {
    detail = `conflict with ${conflicts[0].manager}: ${formatPath(conflicts[0].path)}`;
  } else {
    const byManager = new Map<string, Path[]>();
    for (const c of conflicts) byManager.set(c.manager, [...(byManager.get(c.manager) ?? []), c.path]);
    const lines: string[] = [];
    for (const m of [...byManager.keys()].sort()) {
      lines.push(`conflicts with ${m}:`);
      for (const p of byManager.get(m)!) lines.push(`- ${formatPath(p)}`);
    }
    detail = lines.join('\n');
  }
  const n = conflicts.length;
  return new StatusError(409, 'Conflict', `Apply failed with ${n} conflict${n === 1 ? '' : 's'}: ${detail}`, {
    causes: conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with ${c.manager}`, field: formatPath(c.path) })),
  });
}

/** Applies `applied` for opts.manager on top of `live` (undefined: the object is being created).
 *  Returns the new object with metadata.managedFields updated; throws a 409 Conflict StatusError when
 *  another manager owns a field this apply would change, unless opts.force. Does not modify its inputs. */
export function applyPatch(live: KObject | undefined, applied: KObject, opts: ApplyOptions): KObject {
  const lookup = opts.lookup;
  const config = clone(applied) as Record<string, Json>;
  if (isObj(config.metadata)) delete config.metadata.managedFields;
  const apiVersion = typeof applied.apiVersion === 'string' ? applied.apiVersion : (live?.apiVersion ?? '');
  const base = clone(live ?? {}) as Record<string, Json>;
  const entries = readEntries((live?.metadata as Record<string, unknown> | undefined)?.managedFields);
  if (isObj(base.metadata)) delete base.metadata.managedFields;

  let mine = entries.find((e) => e.meta.manager === opts.manager && e.meta.operation === 'Apply' && !e.meta.subresource);
  const previous: FieldSet = mine ? new Map(mine.set) : new Map();
  const appliedSet = fieldSetOf(config as KObject, lookup);
  const others = entries.filter((e) => e !== mine);

  // conflicts: a leaf another manager owns whose live value differs from the applied one
  const conflicts: Conflict[] = [];
  const forced: { entry: Entry; key: string }[] = [];
  for (const [k, p] of appliedSet) {
    const last = p[p.length - 1];
    if (!last.startsWith('f:')) continue; // element existence never conflicts
    const liveValue = get(base, p);
    if (liveValue === MISSING) continue;
    const appliedValue = get(config, p);
    if (isDeepStrictEqual(stripNulls(liveValue), stripNulls(appliedValue as Json))) continue;
    for (const e of others) {
      if (!e.set.has(k)) continue;
      conflicts.push({ manager: managerLabel(e.meta), path: p });
      forced.push({ entry: e, key: k });
    }
  }
  conflicts.sort((a, b) => comparePaths(a.path, b.path));
  if (conflicts.length > 0 && !opts.force) throw conflictError(conflicts);
  for (const { entry, key } of forced) { entry.set.delete(key); entry.changed = true; }

  const result = merge(base, config, [], lookup) as Record<string, Json>;

  // fields this manager applied before but not now are removed, unless someone else owns them
  const removed = [...previous].filter(([k]) => !appliedSet.has(k)).map(([, p]) => p);
  removed.sort((a, b) => b.length - a.length);
  for (const p of removed) {
    // an element's merge key goes only with the element itself
    if (isMergeKeyField(p)) continue;
    if (others.some((e) => ownedBelow(e.set, p))) continue;
    if (remove(result, p)) pruneEmptyParents(result, p, others);
  }

  if (!mine) {
    mine = { meta: { manager: opts.manager, operation: 'Apply', apiVersion, fieldsType: 'FieldsV1', fieldsV1: {} }, set: new Map(), changed: true };
    entries.push(mine);
  }
  mine.set = appliedSet;
  mine.meta = { ...mine.meta, apiVersion };
  mine.changed = true;
  pruneMissing(entries, result);
  // only the applier's entry gets a new time stamp
  for (const e of entries) if (e !== mine) e.changed = false;

  // kubectl keeps a client-side-apply annotation current when it exists (upstream's lastAppliedUpdater)
  const meta = (isObj(result.metadata) ? result.metadata : (result.metadata = {})) as Record<string, Json>;
  const annotations = isObj(meta.annotations) ? meta.annotations : undefined;
  const appliedAnnotations = isObj(config.metadata) && isObj(config.metadata.annotations) ? config.metadata.annotations : {};
  if (opts.manager === 'kubectl' && annotations && typeof annotations[LAST_APPLIED] === 'string' && !Object.hasOwn(appliedAnnotations, LAST_APPLIED)) {
    annotations[LAST_APPLIED] = `${JSON.stringify(config)}\n`;
  }

  meta.managedFields = writeEntries(entries, opts.now) as unknown as Json;
  return result as KObject;
}

/** Records an ordinary write (create, update, patch) by `manager` in updated.metadata.managedFields
 *  (in place): the fields it changed become its own (an `operation: Update` entry) and are taken
 *  away from other managers; fields that no longer exist are dropped from every entry. A request that
 *  sets managedFields to something other than the stored value replaces them, as upstream allows. */
export function recordUpdate(old: KObject | undefined, updated: KObject, manager: string, apiVersion: string, now: string): void {
  const lookup = patchMetaFor(typeof updated.kind === 'string' ? updated.kind : (old?.kind ?? ''));
  const meta = (updated.metadata ??= {});
  const oldList = old?.metadata?.managedFields;
  const given = meta.managedFields;
  const entries = readEntries(Array.isArray(given) && !isDeepStrictEqual(given, oldList) ? given : oldList);

  const oldObj = (old ?? {}) as unknown as Json;
  const newObj = updated as unknown as Json;
  const changed: FieldSet = new Map();
  for (const [k, p] of fieldSetOf(updated, lookup)) {
    const before = get(oldObj, p);
    const isElement = !p[p.length - 1].startsWith('f:');
    if (before === MISSING || (!isElement && !isDeepStrictEqual(before, get(newObj, p)))) changed.set(k, p);
  }

  let mine = entries.find((e) => e.meta.manager === manager && e.meta.operation === 'Update' && !e.meta.subresource);
  for (const e of entries) {
    if (e === mine) continue;
    for (const k of changed.keys()) if (e.set.delete(k)) e.changed = true;
  }
  if (changed.size > 0) {
    if (!mine) {
      mine = { meta: { manager, operation: 'Update', apiVersion, fieldsType: 'FieldsV1', fieldsV1: {} }, set: new Map(), changed: true };
      entries.push(mine);
    }
    for (const [k, p] of changed) mine.set.set(k, p);
    mine.meta = { ...mine.meta, apiVersion };
    mine.changed = true;
  }
  pruneMissing(entries, newObj);
  // only the updater's own entry gets a new time stamp; others keep theirs
  for (const e of entries) if (e !== mine) e.changed = false;
  const list = writeEntries(entries, now);
  if (list.length > 0) meta.managedFields = list;
  else delete meta.managedFields;
}
