// Field selectors, with upstream's semantics (k8s.io/apimachinery/pkg/fields): `a=b`, `a==b`,
// `a!=b`, comma = AND, values escaped with `\\`, `\,`, `\=`. No whitespace trimming (as upstream).

import { errors } from './status.js';

export interface FieldRequirement {
  readonly field: string;
  readonly op: '=' | '!=';
  readonly value: string;
}

export interface FieldSelector {
  /** the terms, in upstream's order (terms sorted as strings before parsing) */
  readonly requirements: readonly FieldRequirement[];
  /** true when nothing is required (empty selector) */
  readonly empty: boolean;
  /** A missing field counts as ''. */
  matches(fields: Record<string, string | undefined>): boolean;
  /** The value `field` must equal (first `field=value` term), as upstream's RequiresExactMatch. */
  exactValue(field: string): string | undefined;
  /** Canonical form: terms joined with ',', values escaped. */
  toString(): string;
}

/** Escapes `\`, `,` and `=` in a value, as upstream's fields.EscapeValue. */
export function escapeFieldValue(s: string): string {
  return s.replace(/[\\,=]/g, (c) => `\\${c}`);
}

/** Reverses escapeFieldValue. Throws 400 on a bad escape or an unescaped `,`/`=`. */
export function unescapeFieldValue(s: string): string {
  if (!/[\\,=]/.test(s)) return s;
  let out = '';
  let inSlash = false;
  for (const c of s) {
    if (inSlash) {
      if (c === '\\' || c === ',' || c === '=') out += c;
      else throw errors.badRequest(`invalid field selector: invalid escape sequence: \\${c}`);
      inSlash = false;
      continue;
    }
    if (c === '\\') inSlash = true;
    // upstream prints the rune with %v, i.e. its code point
    else if (c === ',' || c === '=') throw errors.badRequest(`invalid field selector: unescaped character in value: ${c.codePointAt(0)}`);
    else out += c;
  }
  if (inSlash) throw errors.badRequest('invalid field selector: invalid escape sequence: \\');
  return out;
}

function splitTerms(s: string): string[] {
  if (s.length === 0) return [];
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inSlash) inSlash = false;
    else if (c === '\\') inSlash = true;
    else if (c === ',') { terms.push(s.slice(start, i)); start = i + 1; }
  }
  terms.push(s.slice(start));
  return terms;
}

function splitTerm(term: string): [string, string, string] | undefined {
  for (let i = 0; i < term.length; i++) {
    for (const op of ['!=', '==', '=']) {
      if (term.startsWith(op, i)) return [term.slice(0, i), op, term.slice(i + op.length)];
    }
  }
  return undefined;
}

class Selector implements FieldSelector {
  constructor(readonly requirements: readonly FieldRequirement[]) {}
  get empty(): boolean { return this.requirements.length === 0; }
  matches(fields: Record<string, string | undefined>): boolean {
    for (const r of this.requirements) {
      const v = Object.prototype.hasOwnProperty.call(fields, r.field) ? fields[r.field] ?? '' : '';
      if ((v === r.value) !== (r.op === '=')) return false;
    }
    return true;
  }
  exactValue(field: string): string | undefined {
    for (const r of this.requirements) if (r.field === field && r.op === '=') return r.value;
    return undefined;
  }
  toString(): string {
    return this.requirements.map((r) => `${r.field}${r.op}${escapeFieldValue(r.value)}`).join(',');
  }
}

/** Parses a field selector string. Empty selects everything. Invalid → 400 BadRequest. */
export function parseFieldSelector(s: string): FieldSelector {
  const parts = splitTerms(s).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const reqs: FieldRequirement[] = [];
  for (const part of parts) {
    if (part === '') continue;
    const split = splitTerm(part);
    if (!split) throw errors.badRequest(`invalid selector: '${s}'; can't understand '${part}'`);
    const [field, op, rhs] = split;
    reqs.push({ field, op: op === '!=' ? '!=' : '=', value: unescapeFieldValue(rhs) });
  }
  return new Selector(reqs);
}

/** A selector built from requirements (e.g. `{field:'metadata.name', op:'=', value}`). */
export function fieldSelectorFrom(reqs: readonly FieldRequirement[]): FieldSelector {
  return new Selector([...reqs]);
}
