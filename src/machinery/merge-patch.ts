// JSON merge patch (RFC 7386): `application/merge-patch+json`. Also the small JSON helpers the
// other patch kinds share (deep clone, deep equality, plain-object test).

export type JsonObject = Record<string, unknown>;

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep copy of a JSON value (objects, arrays, primitives). */
export function cloneJson<T>(v: T): T {
  if (Array.isArray(v)) return v.map(cloneJson) as T;
  if (isJsonObject(v)) {
    const out: JsonObject = {};
    for (const k of Object.keys(v)) out[k] = cloneJson(v[k]);
    return out as T;
  }
  return v;
}

/** Deep equality of JSON values; key order does not matter, array order does. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (isJsonObject(a)) {
    if (!isJsonObject(b)) return false;
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    for (const k of ka) {
      if (!Object.prototype.hasOwnProperty.call(b, k) || !jsonEqual(a[k], b[k])) return false;
    }
    return true;
  }
  return false;
}

/**
 * Applies an RFC 7386 merge patch: objects merge recursively, `null` deletes a member, anything
 * else (including arrays, and a non-object patch) replaces. The inputs are not modified.
 */
export function applyMergePatch(doc: unknown, patch: unknown): unknown {
  if (!isJsonObject(patch)) return cloneJson(patch);
  const target: JsonObject = isJsonObject(doc) ? { ...doc } : {};
  for (const k of Object.keys(patch)) {
    const pv = patch[k];
    if (pv === null) delete target[k];
    else target[k] = applyMergePatch(target[k], pv);
  }
  // members not touched by the patch were copied by reference above: clone them too
  for (const k of Object.keys(target)) if (!Object.prototype.hasOwnProperty.call(patch, k)) target[k] = cloneJson(target[k]);
  return target;
}

/**
 * The merge patch that turns `original` into `modified` (so that
 * `applyMergePatch(original, createMergePatch(original, modified))` equals `modified`).
 * Returns `{}` when they are equal. Members whose modified value is `null` cannot be expressed in
 * a merge patch (null means delete) and come out as deletions.
 */
export function createMergePatch(original: unknown, modified: unknown): unknown {
  if (!isJsonObject(original) || !isJsonObject(modified)) {
    return cloneJson(modified);
  }
  const patch: JsonObject = {};
  for (const k of Object.keys(original)) {
    if (!Object.prototype.hasOwnProperty.call(modified, k)) patch[k] = null;
  }
  for (const k of Object.keys(modified)) {
    const o = original[k];
    const m = modified[k];
    if (!Object.prototype.hasOwnProperty.call(original, k)) {
      patch[k] = cloneJson(m);
    } else if (isJsonObject(o) && isJsonObject(m)) {
      const sub = createMergePatch(o, m) as JsonObject;
      if (Object.keys(sub).length > 0) patch[k] = sub;
    } else if (!jsonEqual(o, m)) {
      patch[k] = cloneJson(m);
    }
  }
  return patch;
}
