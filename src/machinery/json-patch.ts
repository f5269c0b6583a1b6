// JSON patch (RFC 6902): `application/json-patch+json`, used by `kubectl rollout undo`.
// Errors follow the API server: a body that is not a list of operations → 400 BadRequest; an
// operation that cannot be applied (missing path, failed test, bad index) → 422 Invalid, with
// the wording of the JSON patch library upstream uses.

import { StatusError, errors } from './status.js';
import { cloneJson, isJsonObject, jsonEqual, type JsonObject } from './merge-patch.js';

/** Upstream's limit on operations in one JSON patch. */
export const maxJsonPatchOperations = 10000;

export interface JsonPatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  from?: string;
  value?: unknown;
}

function unprocessable(message: string): StatusError {
  return new StatusError(422, 'Invalid', message);
}

/** Splits a JSON pointer into unescaped reference tokens; undefined when it is not a pointer. */
export function parseJsonPointer(pointer: string): string[] | undefined {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  return pointer.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Escapes one reference token (`~` → `~0`, `/` → `~1`). */
export function escapeJsonPointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

type Container = JsonObject | unknown[];

class Missing extends Error {}

/** An array index token: digits only (no sign, no leading zeros beyond "0"). */
function arrayIndex(token: string, len: number, allowEnd: boolean, what: string): number {
  if (!/^(0|[1-9][0-9]*)$/.test(token)) {
    throw unprocessable(`${what}: value was not a proper array index: '${token}'`);
  }
  const i = Number(token);
  if (i > len || (!allowEnd && i === len)) {
    throw unprocessable(`${what}: Unable to access invalid index: ${i}: invalid index referenced`);
  }
  return i;
}

/** The container holding the pointer's last token, or Missing. */
function parentOf(doc: unknown, tokens: string[]): Container {
  let cur: unknown = doc;
  for (let i = 0; i < tokens.length - 1; i++) {
    const t = tokens[i];
    if (Array.isArray(cur)) {
      if (!/^(0|[1-9][0-9]*)$/.test(t) || Number(t) >= cur.length) throw new Missing();
      cur = cur[Number(t)];
    } else if (isJsonObject(cur)) {
      if (!Object.prototype.hasOwnProperty.call(cur, t)) throw new Missing();
      cur = cur[t];
    } else {
      throw new Missing();
    }
  }
  if (!Array.isArray(cur) && !isJsonObject(cur)) throw new Missing();
  return cur;
}

function getValue(doc: unknown, tokens: string[]): { found: boolean; value?: unknown } {
  if (tokens.length === 0) return { found: true, value: doc };
  let parent: Container;
  try {
    parent = parentOf(doc, tokens);
  } catch (e) {
    if (e instanceof Missing) return { found: false };
    throw e;
  }
  const key = tokens[tokens.length - 1];
  if (Array.isArray(parent)) {
    if (!/^(0|[1-9][0-9]*)$/.test(key) || Number(key) >= parent.length) return { found: false };
    return { found: true, value: parent[Number(key)] };
  }
  if (!Object.prototype.hasOwnProperty.call(parent, key)) return { found: false };
  return { found: true, value: parent[key] };
}

/**
 * Applies an RFC 6902 patch to a copy of `doc` and returns the result (the input is not
 * modified). `ops` is the decoded request body.
 */
export function applyJsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) {
    throw errors.badRequest(`json: cannot unmarshal ${jsonKind(ops)} into Go value of type jsonpatch.Patch`);
  }
  for (const op of ops) {
    if (!isJsonObject(op)) {
      throw errors.badRequest(`json: cannot unmarshal ${jsonKind(op)} into Go value of type jsonpatch.Operation`);
    }
  }
  if (ops.length > maxJsonPatchOperations) {
    throw errors.tooLarge(`The allowed maximum operations in a JSON patch is ${maxJsonPatchOperations}, got ${ops.length}`);
  }
  let result = cloneJson(doc);
  for (const op of ops as JsonObject[]) result = applyOne(result, op);
  return result;
}

function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  switch (typeof v) {
    case 'object': return 'object';
    case 'string': return 'string';
    case 'number': return 'number';
    case 'boolean': return 'bool';
    default: return typeof v;
  }
}

function pathField(op: JsonObject, field: 'path' | 'from', kind: string): { raw: string; tokens: string[] } {
  const raw = op[field];
  if (typeof raw !== 'string') {
    throw unprocessable(field === 'path' ? `${kind} operation failed to decode path: operation missing path field: missing value`
      : `${kind} operation failed to decode from: operation, missing from field: missing value`);
  }
  const tokens = parseJsonPointer(raw);
  if (!tokens) {
    throw unprocessable(`${kind} operation does not apply: doc is missing ${field === 'from' ? 'from ' : ''}path: "${raw}": missing value`);
  }
  return { raw, tokens };
}

function valueField(op: JsonObject, kind: string): unknown {
  if (!Object.prototype.hasOwnProperty.call(op, 'value')) {
    throw unprocessable(`${kind} operation failed: operation, missing value field: missing value`);
  }
  return op.value;
}

/** Adds `value` at `tokens` (RFC 6902 "add"); returns the (possibly new) root. */
function addAt(doc: unknown, tokens: string[], raw: string, value: unknown, kind: string): unknown {
  if (tokens.length === 0) return value;
  let parent: Container;
  try {
    parent = parentOf(doc, tokens);
  } catch (e) {
    if (e instanceof Missing) throw unprocessable(`${kind} operation does not apply: doc is missing path: "${raw}": missing value`);
    throw e;
  }
  const key = tokens[tokens.length - 1];
  if (Array.isArray(parent)) {
    if (key === '-') parent.push(value);
    else parent.splice(arrayIndex(key, parent.length, true, `error in ${kind} for path: '${raw}'`), 0, value);
  } else {
    parent[key] = value;
  }
  return doc;
}

function removeAt(doc: unknown, tokens: string[], raw: string, kind: string): unknown {
  if (tokens.length === 0) throw unprocessable(`${kind} operation does not apply: doc is missing path: "${raw}": missing value`);
  let parent: Container;
  try {
    parent = parentOf(doc, tokens);
  } catch (e) {
    if (e instanceof Missing) throw unprocessable(`${kind} operation does not apply: doc is missing path: "${raw}": missing value`);
    throw e;
  }
  const key = tokens[tokens.length - 1];
  if (Array.isArray(parent)) {
    const i = arrayIndex(key, parent.length, false, `error in ${kind} for path: '${raw}'`);
    const [v] = parent.splice(i, 1);
    return v;
  }
  if (!Object.prototype.hasOwnProperty.call(parent, key)) {
    throw unprocessable(`error in ${kind} for path: '${raw}': Unable to remove nonexistent key: ${key}: missing value`);
  }
  const v = parent[key];
  delete parent[key];
  return v;
}

function applyOne(doc: unknown, op: JsonObject): unknown {
  const kind = op.op;
  switch (kind) {
    case 'add': {
      const { raw, tokens } = pathField(op, 'path', kind);
      return addAt(doc, tokens, raw, cloneJson(valueField(op, kind)), kind);
    }
    case 'remove': {
      const { raw, tokens } = pathField(op, 'path', kind);
      removeAt(doc, tokens, raw, kind);
      return doc;
    }
    case 'replace': {
      const { raw, tokens } = pathField(op, 'path', kind);
      const value = cloneJson(valueField(op, kind));
      if (tokens.length === 0) return value;
      let parent: Container;
      try {
        parent = parentOf(doc, tokens);
      } catch (e) {
        if (e instanceof Missing) throw unprocessable(`replace operation does not apply: doc is missing path: ${raw}: missing value`);
        throw e;
      }
      const key = tokens[tokens.length - 1];
      if (Array.isArray(parent)) {
        parent[arrayIndex(key, parent.length, false, `error in replace for path: '${raw}'`)] = value;
      } else {
        if (!Object.prototype.hasOwnProperty.call(parent, key)) {
          throw unprocessable(`replace operation does not apply: doc is missing key: ${raw}: missing value`);
        }
        parent[key] = value;
      }
      return doc;
    }
    case 'move': {
      const from = pathField(op, 'from', kind);
      const to = pathField(op, 'path', kind);
      if (from.raw === to.raw) return doc;
      if (to.raw.startsWith(`${from.raw}/`)) {
        throw unprocessable(`move operation does not apply: from path "${from.raw}" is a prefix of path "${to.raw}"`);
      }
      if (!getValue(doc, from.tokens).found) {
        throw unprocessable(`move operation does not apply: doc is missing from path: ${from.raw}: missing value`);
      }
      const v = removeAt(doc, from.tokens, from.raw, kind);
      return addAt(doc, to.tokens, to.raw, v, kind);
    }
    case 'copy': {
      const from = pathField(op, 'from', kind);
      const to = pathField(op, 'path', kind);
      const got = getValue(doc, from.tokens);
      if (!got.found) throw unprocessable(`copy operation does not apply: doc is missing from path: ${from.raw}: missing value`);
      return addAt(doc, to.tokens, to.raw, cloneJson(got.value), kind);
    }
    case 'test': {
      const { raw, tokens } = pathField(op, 'path', kind);
      const expected = op.value;
      const got = getValue(doc, tokens);
      // as upstream: a missing member tests equal to null
      const ok = got.found ? jsonEqual(got.value, expected ?? null) : expected === undefined || expected === null;
      if (!ok) throw unprocessable(`testing value ${raw} failed: test failed`);
      return doc;
    }
    default:
      throw unprocessable(`Unexpected kind: ${typeof kind === 'string' ? kind : 'unknown'}`);
  }
}
