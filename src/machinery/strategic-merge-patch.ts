// Strategic merge patch (`application/strategic-merge-patch+json`), with upstream's apply
// semantics (k8s.io/apimachinery/pkg/util/strategicpatch, server side):
//  - maps merge recursively; `null` deletes a key
//  - lists whose metadata says strategy 'merge' merge element-wise by mergeKey (lists of maps) or
//    as a set (primitive lists); every other list is replaced whole
//  - directives: `$patch: replace|delete` (in maps and as list elements), `$retainKeys`,
//    `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`; none survive into the result
// Patch metadata comes from a lookup by path (field names from the root, list indices left out);
// the lookup in src/api/patch-meta.ts is structurally compatible with the types below.

import { StatusError, errors } from './status.js';
import { cloneJson, isJsonObject, jsonEqual, type JsonObject } from './merge-patch.js';

/** Same shape as src/api/patch-meta.ts's ListMeta (machinery may not import api). */
export interface ListMeta {
  strategy: 'merge' | 'replace';
  mergeKey?: string;
  retainKeys?: boolean;
}
export type PatchMetaLookup = (path: readonly string[]) => ListMeta | undefined;

const directiveMarker = '$patch';
const retainKeysDirective = '$retainKeys';
const setElementOrderPrefix = '$setElementOrder/';
const deleteFromPrimitiveListPrefix = '$deleteFromPrimitiveList/';

const DELETED: unique symbol = Symbol('deleted');
type Deleted = typeof DELETED;

/** Go's %v rendering of decoded JSON, for error messages in upstream's wording. */
function goFmt(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(goFmt).join(' ')}]`;
  if (isJsonObject(v)) return `map[${Object.keys(v).sort().map((k) => `${k}:${goFmt(v[k])}`).join(' ')}]`;
  return String(v);
}

const badPatchType = (t: unknown, m: JsonObject): StatusError => errors.badRequest(`unknown patch type: ${goFmt(t)} in map: ${goFmt(m)}`);
const noMergeKey = (m: unknown, k: string): StatusError => errors.badRequest(`map: ${goFmt(m)} does not contain declared merge key: ${k}`);

class Merger {
  constructor(private readonly lookup: PatchMetaLookup) {}

  /** Merges `patch` into `orig` (owned by us, mutated in place) or into nothing. */
  mergeMap(orig: JsonObject | undefined, patch: JsonObject, path: readonly string[]): JsonObject | Deleted {
    if (Object.prototype.hasOwnProperty.call(patch, directiveMarker)) {
      const d = patch[directiveMarker];
      if (d === 'replace') {
        const rest: JsonObject = { ...patch };
        delete rest[directiveMarker];
        return this.mergeMap(undefined, rest, path) as JsonObject;
      }
      if (d === 'delete') return DELETED;
      throw badPatchType(d, patch);
    }
    const target: JsonObject = orig ?? {};

    if (Object.prototype.hasOwnProperty.call(patch, retainKeysDirective)) {
      const list = patch[retainKeysDirective];
      if (!Array.isArray(list)) throw errors.badRequest('invalid patch format of retainKeys');
      for (const [k, v] of Object.entries(patch)) {
        if (k === retainKeysDirective || v === null || k.startsWith(deleteFromPrimitiveListPrefix) || k.startsWith(setElementOrderPrefix)) continue;
        if (!list.includes(k)) throw errors.badRequest('invalid patch format of retainKeys');
      }
      for (const k of Object.keys(target)) if (!list.includes(k)) delete target[k];
    }

    const handled = new Set<string>();
    for (const key of Object.keys(patch)) {
      if (!key.startsWith(setElementOrderPrefix)) continue;
      const field = key.slice(setElementOrderPrefix.length);
      handled.add(field);
      this.applySetElementOrder(target, patch, field, patch[key], [...path, field]);
    }

    const deletions: string[] = [];
    for (const k of Object.keys(patch)) {
      if (k === retainKeysDirective || k.startsWith(setElementOrderPrefix)) continue;
      if (k.startsWith(deleteFromPrimitiveListPrefix)) { deletions.push(k); continue; }
      if (handled.has(k)) continue;
      const pv = patch[k];
      if (pv === null) { delete target[k]; continue; }
      const p = [...path, k];
      const ov = Object.prototype.hasOwnProperty.call(target, k) ? target[k] : undefined;
      let r: unknown;
      if (isJsonObject(ov) && isJsonObject(pv)) r = this.mergeMap(ov, pv, p);
      else if (Array.isArray(ov) && Array.isArray(pv)) r = this.mergeListField(ov, pv, p);
      else r = this.fresh(pv, p); // absent, or a type change: take the patch value
      if (r === DELETED) delete target[k];
      else target[k] = r;
    }

    for (const key of deletions) {
      const field = key.slice(deleteFromPrimitiveListPrefix.length);
      const toDelete = patch[key];
      if (!Array.isArray(toDelete)) throw errors.badRequest('invalid patch format of primitive list');
      const ov = target[field];
      if (!Array.isArray(ov)) continue;
      target[field] = ov.filter((x) => !toDelete.some((d) => jsonEqual(d, x)));
    }
    return target;
  }

  /** A list field present in both: merge or replace according to its metadata. */
  private mergeListField(orig: unknown[], patch: unknown[], path: readonly string[]): unknown[] {
    const meta = this.lookup(path);
    if (meta?.strategy === 'merge') return this.mergeList(orig, patch, path, meta);
    return this.freshList(patch, path, meta);
  }

  /** A patch value with nothing to merge into: directives applied against nothing, nulls dropped. */
  private fresh(v: unknown, path: readonly string[]): unknown {
    if (isJsonObject(v)) return this.mergeMap(undefined, v, path);
    if (Array.isArray(v)) return this.freshList(v, path, this.lookup(path));
    return v;
  }

  private freshList(list: unknown[], path: readonly string[], meta: ListMeta | undefined): unknown[] {
    if (meta?.strategy === 'merge') return this.mergeList([], list, path, meta);
    const out: unknown[] = [];
    for (const e of list) {
      const r = this.fresh(e, path);
      if (r !== DELETED) out.push(r);
    }
    return out;
  }

  private mergeList(orig: unknown[], patch: unknown[], path: readonly string[], meta: ListMeta): unknown[] {
    if (orig.length === 0 && patch.length === 0) return orig;
    const isMap = elementsAreMaps(orig, patch);
    if (!isMap) {
      const merged: unknown[] = [];
      for (const v of [...orig, ...patch]) if (!merged.some((m) => jsonEqual(m, v))) merged.push(v);
      const inPatch = (m: unknown): boolean => patch.some((p) => jsonEqual(p, m));
      return normalizeElementOrder(merged.filter(inPatch), merged.filter((m) => !inPatch(m)), patch, orig, '');
    }
    const mergeKey = meta.mergeKey;
    if (!mergeKey) throw errors.badRequest(`cannot merge lists without merge key for ${path.join('.')}`);

    let base = orig;
    let replace = false;
    const rest: JsonObject[] = [];
    for (const e of patch as JsonObject[]) {
      if (!Object.prototype.hasOwnProperty.call(e, directiveMarker)) { rest.push(e); continue; }
      const d = e[directiveMarker];
      if (d === 'delete') {
        if (!Object.prototype.hasOwnProperty.call(e, mergeKey)) throw noMergeKey(e, mergeKey);
        base = base.filter((o) => !(isJsonObject(o) && Object.prototype.hasOwnProperty.call(o, mergeKey) && jsonEqual(o[mergeKey], e[mergeKey])));
      } else if (d === 'replace') {
        replace = true;
      } else if (d === 'merge') {
        throw errors.badRequest('merging lists cannot yet be specified in the patch');
      } else {
        throw badPatchType(d, e);
      }
    }
    if (replace) return this.freshList(rest, path, undefined);

    const merged = [...base];
    for (const e of rest) {
      if (!Object.prototype.hasOwnProperty.call(e, mergeKey)) throw noMergeKey(e, mergeKey);
      const i = merged.findIndex((o) => sameKey(o, e, mergeKey));
      if (i >= 0) merged[i] = this.mergeMap(merged[i] as JsonObject, e, path);
      else merged.push(this.mergeMap(undefined, e, path));
    }
    const inPatch = (m: unknown): boolean => rest.some((p) => sameKey(m, p, mergeKey));
    return normalizeElementOrder(merged.filter(inPatch), merged.filter((m) => !inPatch(m)), rest, base, mergeKey);
  }

  /** `$setElementOrder/<field>`: merge the list (if the patch has it), then impose the order. */
  private applySetElementOrder(target: JsonObject, patch: JsonObject, field: string, order: unknown, path: readonly string[]): void {
    const badOrder = (): StatusError => errors.badRequest('invalid patch format of setElementOrder list');
    if (!Array.isArray(order)) throw badOrder();
    const foundOrig = Object.prototype.hasOwnProperty.call(target, field);
    const foundPatch = Object.prototype.hasOwnProperty.call(patch, field);
    const origList = target[field];
    const patchList = patch[field];
    if (foundOrig && !Array.isArray(origList)) throw badOrder();
    if (foundPatch && !Array.isArray(patchList)) throw badOrder();
    const meta = this.lookup(path);
    const mergeKey = meta?.mergeKey ?? '';
    validatePatchWithSetOrderList((patchList as unknown[] | undefined) ?? [], order, mergeKey);
    if (!foundOrig && !foundPatch) return;

    const serverOrder = foundOrig ? [...(origList as unknown[])] : [];
    let merged: unknown[];
    if (foundOrig && !foundPatch) merged = origList as unknown[];
    else if (!foundOrig) merged = this.freshList(patchList as unknown[], path, meta);
    else merged = this.mergeListField(origList as unknown[], patchList as unknown[], path);

    const inOrder = mergeKey
      ? (m: unknown): boolean => order.some((o) => sameKey(m, o, mergeKey))
      : (m: unknown): boolean => order.some((o) => jsonEqual(o, m));
    target[field] = normalizeElementOrder(merged.filter(inOrder), merged.filter((m) => !inOrder(m)), order, serverOrder, mergeKey);
  }
}

function elementsAreMaps(orig: unknown[], patch: unknown[]): boolean {
  let maps = 0;
  let others = 0;
  for (const e of [...orig, ...patch]) {
    if (Array.isArray(e)) throw new StatusError(422, 'Invalid', 'lists of lists are not supported');
    if (isJsonObject(e)) maps++;
    else others++;
  }
  if (maps > 0 && others > 0) throw errors.badRequest('invalid JSON document: a list mixes maps and other values');
  return maps > 0;
}

function sameKey(a: unknown, b: unknown, mergeKey: string): boolean {
  return isJsonObject(a) && isJsonObject(b)
    && Object.prototype.hasOwnProperty.call(a, mergeKey) && Object.prototype.hasOwnProperty.call(b, mergeKey)
    && jsonEqual(a[mergeKey], b[mergeKey]);
}

function indexIn(list: readonly unknown[], item: unknown, mergeKey: string): number {
  return mergeKey ? list.findIndex((x) => sameKey(x, item, mergeKey)) : list.findIndex((x) => jsonEqual(x, item));
}

/**
 * Upstream's normalizeElementOrder: patch items sorted by `patchOrder`, server-only items sorted
 * by `serverOrder`, then interleaved: a server-only item goes before a patch item only when both
 * appear in `serverOrder` and it comes first there.
 */
function normalizeElementOrder(patchItems: unknown[], serverOnly: unknown[], patchOrder: readonly unknown[], serverOrder: readonly unknown[], mergeKey: string): unknown[] {
  const sortBy = (items: unknown[], order: readonly unknown[]): unknown[] => items
    .map((item, i) => ({ item, i, k: indexIn(order, item, mergeKey) }))
    .sort((a, b) => (a.k < 0 || b.k < 0 ? a.i - b.i : a.k - b.k || a.i - b.i))
    .map((x) => x.item);
  const right = sortBy(patchItems, patchOrder);
  const left = sortBy(serverOnly, serverOrder);
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    if (i >= left.length) out.push(right[j++]);
    else if (j >= right.length) out.push(left[i++]);
    else {
      const li = indexIn(serverOrder, left[i], mergeKey);
      const ri = indexIn(serverOrder, right[j], mergeKey);
      if (li >= 0 && ri >= 0 && li < ri) out.push(left[i++]);
      else out.push(right[j++]);
    }
  }
  return out;
}

/** The non-deleting patch items must appear in the order the `$setElementOrder` list gives. */
function validatePatchWithSetOrderList(patchList: unknown[], order: unknown[], mergeKey: string): void {
  if (order.length === 0 || patchList.length === 0) return;
  const nonDelete = mergeKey ? patchList.filter((e) => !(isJsonObject(e) && e[directiveMarker] === 'delete')) : patchList;
  let pi = 0;
  let oi = 0;
  while (pi < nonDelete.length && oi < order.length) {
    const item = nonDelete[pi];
    if (isJsonObject(item) && Object.prototype.hasOwnProperty.call(item, directiveMarker)) { pi++; continue; }
    let equal: boolean;
    if (mergeKey) {
      if (!isJsonObject(item) || !Object.prototype.hasOwnProperty.call(item, mergeKey)) throw noMergeKey(item, mergeKey);
      const o = order[oi];
      if (!isJsonObject(o) || !Object.prototype.hasOwnProperty.call(o, mergeKey)) throw noMergeKey(o, mergeKey);
      equal = jsonEqual(item[mergeKey], o[mergeKey]);
    } else {
      equal = jsonEqual(item, order[oi]);
    }
    if (equal) pi++;
    oi++;
  }
  if (pi < nonDelete.length && oi >= order.length) {
    throw errors.badRequest(`The order in patch list:\n${goFmt(patchList)}\n doesn't match $setElementOrder list:\n${goFmt(order)}\n`);
  }
}

/**
 * Applies a strategic merge patch to a copy of `doc` (inputs are not modified).
 * Bad patches → 400 BadRequest (a list of lists → 422, as upstream).
 * `mapRetainsKeys` is accepted for symmetry with src/api/patch-meta.ts but not needed: like
 * upstream, a `$retainKeys` directive is honoured wherever it appears.
 */
export function applyStrategicMergePatch(
  doc: unknown,
  patch: unknown,
  lookup: PatchMetaLookup,
  mapRetainsKeys?: (path: readonly string[]) => boolean,
): unknown {
  void mapRetainsKeys;
  if (!isJsonObject(patch) || !isJsonObject(doc)) throw errors.badRequest('invalid JSON document');
  const r = new Merger(lookup).mergeMap(cloneJson(doc), patch, []);
  return r === DELETED ? {} : r;
}
