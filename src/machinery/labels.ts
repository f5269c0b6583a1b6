// Label selectors, with upstream's semantics (k8s.io/apimachinery/pkg/labels):
// the string syntax of `?labelSelector=` and `kubectl -l`, metav1.LabelSelector conversion,
// matching, and the canonical string form upstream prints.

import { errors } from './status.js';

/** Upstream's selection.Operator spellings. */
export type LabelOperator = '=' | '==' | '!=' | 'in' | 'notin' | 'exists' | '!' | 'gt' | 'lt';

export interface LabelRequirement {
  readonly key: string;
  readonly operator: LabelOperator;
  /** as given (parsed selectors: de-duplicated and sorted); empty for exists / `!` */
  readonly values: readonly string[];
}

export interface LabelSelector {
  /** AND of all requirements, sorted by key. Empty for "everything" and for "nothing". */
  readonly requirements: readonly LabelRequirement[];
  /** true when the selector does not restrict anything (selects everything). */
  readonly empty: boolean;
  /** true for the selector that matches nothing (from a nil metav1.LabelSelector). */
  readonly nothing: boolean;
  matches(labels: Record<string, string> | undefined | null): boolean;
  /** The value `key` must have exactly (`key=v`, `key==v`, `key in (v)`), as upstream's RequiresExactMatch. */
  requiresExactMatch(key: string): string | undefined;
  /** All exact-match pairs (for indexing). */
  exactMatchLabels(): Record<string, string>;
  /** Canonical form, as upstream's Selector.String(): `app=web,tier in (a,b)`; '' when empty or nothing. */
  toString(): string;
}

/** metav1.LabelSelector (structural). */
export interface MetaLabelSelector {
  matchLabels?: Record<string, string> | null;
  matchExpressions?: ReadonlyArray<{ key: string; operator: string; values?: readonly string[] | null }> | null;
}

// ---------------------------------------------------------------------------------------------
// Validation (qualified names and label values), in upstream's wording.

const labelKeyFmt = '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const labelKeyRe = new RegExp(`^${labelKeyFmt}$`);
const labelKeyErrMsg = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const labelValueFmt = `(${labelKeyFmt})?`;
const labelValueErrMsg = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const dns1123LabelFmt = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const dns1123SubdomainFmt = `${dns1123LabelFmt}(\\.${dns1123LabelFmt})*`;
const dns1123SubdomainRe = new RegExp(`^${dns1123SubdomainFmt}$`);
const dns1123SubdomainErrMsg = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

function regexError(msg: string, re: string, ...examples: string[]): string {
  if (examples.length === 0) return `${msg} (regex used for validation is '${re}')`;
  return `${msg} (e.g. ${examples.map((e) => `'${e}', `).join('or ')}regex used for validation is '${re}')`;
}

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function isDNS1123Subdomain(v: string): string[] {
  const errs: string[] = [];
  if (byteLength(v) > 253) errs.push('must be no more than 253 bytes');
  if (!dns1123SubdomainRe.test(v)) errs.push(regexError(dns1123SubdomainErrMsg, dns1123SubdomainFmt, 'example.com'));
  return errs;
}

/** Upstream's IsQualifiedName / IsLabelKey: `[prefix/]name`. Returns the problems, [] when valid. */
export function validateLabelKey(key: string): string[] {
  const errs: string[] = [];
  const parts = key.split('/');
  let name: string;
  if (parts.length === 1) {
    name = parts[0];
  } else if (parts.length === 2) {
    const prefix = parts[0];
    name = parts[1];
    if (prefix.length === 0) errs.push('prefix part must be non-empty');
    else errs.push(...isDNS1123Subdomain(prefix).map((m) => `prefix part ${m}`));
  } else {
    return [`a valid label key ${regexError(labelKeyErrMsg, labelKeyFmt, 'MyName', 'my.name', '123-abc')} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`];
  }
  if (name.length === 0) errs.push('name part must be non-empty');
  else if (byteLength(name) > 63) errs.push('name part must be no more than 63 bytes');
  if (!labelKeyRe.test(name)) errs.push(`name part ${regexError(labelKeyErrMsg, labelKeyFmt, 'MyName', 'my.name', '123-abc')}`);
  return errs;
}

/** Upstream's IsValidLabelValue. Returns the problems, [] when valid. */
export function validateLabelValue(value: string): string[] {
  const errs: string[] = [];
  if (byteLength(value) > 63) errs.push('must be no more than 63 bytes');
  if (!new RegExp(`^${labelValueFmt}$`).test(value)) errs.push(regexError(labelValueErrMsg, labelValueFmt, 'MyValue', 'my_value', '12345'));
  return errs;
}

function goQuote(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v ?? null);
}

/** field.Invalid(...).Error() */
function invalid(path: string, value: unknown, detail: string): string {
  return `${path}: Invalid value: ${goQuote(value)}: ${detail}`;
}

function aggregate(msgs: string[]): string {
  const uniq = [...new Set(msgs)];
  return uniq.length === 1 ? uniq[0] : `[${uniq.join(', ')}]`;
}

class RequirementError extends Error {}

const intRe = /^[+-]?[0-9]+$/;

/** Upstream's NewRequirement: validates key, operator and values. Throws RequirementError. */
function newRequirement(key: string, operator: string, values: readonly string[]): LabelRequirement {
  const errs: string[] = [];
  const kErrs = validateLabelKey(key);
  if (kErrs.length) errs.push(invalid('key', key, kErrs.join('; ')));
  switch (operator) {
    case 'in': case 'notin':
      if (values.length === 0) errs.push(invalid('values', values, "for 'in', 'notin' operators, values set can't be empty"));
      break;
    case '=': case '==': case '!=':
      if (values.length !== 1) errs.push(invalid('values', values, 'exact-match compatibility requires one single value'));
      break;
    case 'exists': case '!':
      if (values.length !== 0) errs.push(invalid('values', values, 'values set must be empty for exists and does not exist'));
      break;
    case 'gt': case 'lt':
      if (values.length !== 1) errs.push(invalid('values', values, "for 'Gt', 'Lt' operators, exactly one value is required"));
      values.forEach((v, i) => {
        if (!intRe.test(v) || !isInt64(v)) errs.push(invalid(`values[${i}]`, v, "for 'Gt', 'Lt' operators, the value must be an integer"));
      });
      break;
    default:
      errs.push(`operator: Unsupported value: ${goQuote(operator)}: supported values: "in", "notin", "=", "==", "!=", "gt", "lt", "exists", "!"`);
  }
  values.forEach((v, i) => {
    const vErrs = validateLabelValue(v);
    if (vErrs.length) errs.push(invalid(`values[${i}][${key}]`, v, vErrs.join('; ')));
  });
  if (errs.length) throw new RequirementError(aggregate(errs));
  return { key, operator: operator as LabelOperator, values: [...values] };
}

function isInt64(v: string): boolean {
  const b = BigInt(v);
  return b >= -(2n ** 63n) && b < 2n ** 63n;
}

// ---------------------------------------------------------------------------------------------
// Matching and printing

function requirementMatches(r: LabelRequirement, labels: Record<string, string> | undefined | null): boolean {
  const has = labels != null && Object.prototype.hasOwnProperty.call(labels, r.key);
  const val = has ? labels![r.key] : undefined;
  switch (r.operator) {
    case '=': case '==': case 'in':
      return has && r.values.includes(val!);
    case '!=': case 'notin':
      return !has || !r.values.includes(val!);
    case 'exists':
      return has;
    case '!':
      return !has;
    case 'gt': case 'lt': {
      if (!has || r.values.length !== 1) return false;
      if (!intRe.test(val!) || !isInt64(val!) || !intRe.test(r.values[0])) return false;
      const lv = BigInt(val!);
      const rv = BigInt(r.values[0]);
      return r.operator === 'gt' ? lv > rv : lv < rv;
    }
    default:
      return false;
  }
}

function requirementString(r: LabelRequirement): string {
  let s = r.operator === '!' ? `!${r.key}` : r.key;
  switch (r.operator) {
    case 'exists': case '!': return s;
    case '=': case '==': case '!=': s += r.operator; break;
    case 'gt': s += '>'; break;
    case 'lt': s += '<'; break;
    case 'in': s += ' in ('; break;
    case 'notin': s += ' notin ('; break;
  }
  s += r.values.length === 1 ? r.values[0] : [...r.values].sort(compareStrings).join(',');
  if (r.operator === 'in' || r.operator === 'notin') s += ')';
  return s;
}

function compareStrings(a: string, b: string): number {
  // Go sorts strings bytewise; for the label character set that equals UTF-16 code unit order.
  return a < b ? -1 : a > b ? 1 : 0;
}

class RequirementsSelector implements LabelSelector {
  readonly requirements: readonly LabelRequirement[];
  readonly nothing = false;
  constructor(reqs: LabelRequirement[]) {
    // stable sort by key, as upstream sorts requirements by key
    this.requirements = [...reqs].sort((a, b) => compareStrings(a.key, b.key));
  }
  get empty(): boolean { return this.requirements.length === 0; }
  matches(labels: Record<string, string> | undefined | null): boolean {
    for (const r of this.requirements) if (!requirementMatches(r, labels)) return false;
    return true;
  }
  requiresExactMatch(key: string): string | undefined {
    for (const r of this.requirements) {
      if (r.key !== key) continue;
      if ((r.operator === '=' || r.operator === '==' || r.operator === 'in') && r.values.length === 1) return r.values[0];
      return undefined;
    }
    return undefined;
  }
  exactMatchLabels(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const r of this.requirements) {
      if (out[r.key] !== undefined) continue;
      const v = this.requiresExactMatch(r.key);
      if (v !== undefined) out[r.key] = v;
    }
    return out;
  }
  toString(): string {
    return this.requirements.map(requirementString).join(',');
  }
}

class NothingSelector implements LabelSelector {
  readonly requirements: readonly LabelRequirement[] = [];
  readonly empty = false;
  readonly nothing = true;
  matches(): boolean { return false; }
  requiresExactMatch(): string | undefined { return undefined; }
  exactMatchLabels(): Record<string, string> { return {}; }
  toString(): string { return ''; }
}

/** The selector that matches every object (an empty string, or `{}`). */
export function everything(): LabelSelector {
  return new RequirementsSelector([]);
}

/** The selector that matches no object (a nil metav1.LabelSelector). */
export function nothing(): LabelSelector {
  return new NothingSelector();
}

/** `{a: 'b'}` → `a=b` (upstream's SelectorFromSet; no validation). Empty/undefined selects everything. */
export function selectorFromSet(set: Record<string, string> | undefined | null): LabelSelector {
  return new RequirementsSelector(Object.entries(set ?? {}).map(([key, v]) => ({ key, operator: '=', values: [v] })));
}

// ---------------------------------------------------------------------------------------------
// Parsing the string syntax

type Tok = 'err' | 'eos' | ')' | ',' | '!' | '==' | '=' | '>' | 'id' | 'in' | '<' | '!=' | 'notin' | '(';
interface Item { tok: Tok; lit: string }

const literalTokens: Record<string, Tok> = {
  ')': ')', ',': ',', '!': '!', '==': '==', '=': '=', '>': '>', in: 'in', '<': '<', '!=': '!=', notin: 'notin', '(': '(',
};

const isWhitespace = (c: string): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';
const isSpecial = (c: string): boolean => '=!(),><'.includes(c);

function lex(s: string): Item[] {
  const items: Item[] = [];
  let pos = 0;
  for (;;) {
    while (pos < s.length && isWhitespace(s[pos])) pos++;
    if (pos >= s.length) { items.push({ tok: 'eos', lit: '' }); return items; }
    if (isSpecial(s[pos])) {
      // longest operator made of special symbols
      let buf = '';
      let last: Item | undefined;
      while (pos < s.length && isSpecial(s[pos])) {
        buf += s[pos];
        const t = literalTokens[buf];
        if (t) { last = { tok: t, lit: buf }; pos++; } else if (last) { break; } else { pos++; }
      }
      if (!last) items.push({ tok: 'err', lit: `error expected: keyword found '${buf}'` });
      else items.push(last);
    } else {
      let buf = '';
      while (pos < s.length && !isSpecial(s[pos]) && !isWhitespace(s[pos])) buf += s[pos++];
      const t = literalTokens[buf];
      items.push(t ? { tok: t, lit: buf } : { tok: 'id', lit: buf });
    }
  }
}

class Parser {
  private pos = 0;
  constructor(private readonly items: Item[]) {}

  private peek(valuesCtx: boolean): Item {
    const it = this.items[this.pos];
    return valuesCtx && (it.tok === 'in' || it.tok === 'notin') ? { tok: 'id', lit: it.lit } : it;
  }
  private next(valuesCtx: boolean): Item {
    const it = this.peek(valuesCtx);
    this.pos++;
    return it;
  }

  parse(): LabelRequirement[] {
    const reqs: LabelRequirement[] = [];
    for (;;) {
      const { tok, lit } = this.peek(true);
      if (tok === 'id' || tok === '!') {
        let r: LabelRequirement;
        try {
          r = this.parseRequirement();
        } catch (e) {
          throw new SyntaxErr(`unable to parse requirement: ${(e as Error).message}`);
        }
        reqs.push(r);
        const t = this.next(true);
        if (t.tok === 'eos') return reqs;
        if (t.tok === ',') {
          const t2 = this.peek(true);
          if (t2.tok !== 'id' && t2.tok !== '!') throw new SyntaxErr(`found '${t2.lit}', expected: identifier after ','`);
        } else {
          throw new SyntaxErr(`found '${t.lit}', expected: ',' or 'end of string'`);
        }
      } else if (tok === 'eos') {
        return reqs;
      } else {
        throw new SyntaxErr(`found '${lit}', expected: !, identifier, or 'end of string'`);
      }
    }
  }

  private parseRequirement(): LabelRequirement {
    let t = this.next(true);
    let op: string | undefined;
    if (t.tok === '!') { op = '!'; t = this.next(true); }
    if (t.tok !== 'id') throw new RequirementError(`found '${t.lit}', expected: identifier`);
    const key = t.lit;
    const kErrs = validateLabelKey(key);
    if (kErrs.length) throw new RequirementError(invalid('<nil>', key, kErrs.join('; ')));
    // `!key` is unary: whatever follows is the caller's business (`!a=b` fails there, as upstream).
    if (op === '!') return newRequirement(key, '!', []);
    const la = this.peek(true).tok;
    if (la === 'eos' || la === ',') return newRequirement(key, 'exists', []);
    const o = this.next(false);
    let operator: string;
    switch (o.tok) {
      case 'in': operator = 'in'; break;
      case 'notin': operator = 'notin'; break;
      case '=': operator = '='; break;
      case '==': operator = '=='; break;
      case '!=': operator = '!='; break;
      case '>': operator = 'gt'; break;
      case '<': operator = 'lt'; break;
      default: throw new RequirementError(`found '${o.lit}', expected: in, notin, =, ==, !=, gt, lt`);
    }
    const values = operator === 'in' || operator === 'notin' ? this.parseValues() : this.parseExactValue();
    return newRequirement(key, operator, [...values].sort(compareStrings));
  }

  private parseValues(): Set<string> {
    const t = this.next(true);
    if (t.tok !== '(') throw new RequirementError(`found '${t.lit}' expected: '('`);
    const la = this.peek(true);
    if (la.tok === 'id' || la.tok === ',') {
      const s = this.parseIdentifiersList();
      if (this.next(true).tok !== ')') throw new RequirementError(`found '${la.lit}', expected: ')'`);
      return s;
    }
    if (la.tok === ')') { this.next(true); return new Set(['']); }
    throw new RequirementError(`found '${la.lit}', expected: ',', ')' or identifier`);
  }

  private parseIdentifiersList(): Set<string> {
    const s = new Set<string>();
    for (;;) {
      const t = this.next(true);
      if (t.tok === 'id') {
        s.add(t.lit);
        const t2 = this.peek(true);
        if (t2.tok === ',') continue;
        if (t2.tok === ')') return s;
        throw new RequirementError(`found '${t2.lit}', expected: ',' or ')'`);
      } else if (t.tok === ',') {
        if (s.size === 0) s.add('');
        const t2 = this.peek(true).tok;
        if (t2 === ')') { s.add(''); return s; }
        if (t2 === ',') s.add('');
      } else {
        throw new RequirementError(`found '${t.lit}', expected: ',', or identifier`);
      }
    }
  }

  private parseExactValue(): Set<string> {
    const la = this.peek(true).tok;
    if (la === 'eos' || la === ',') return new Set(['']);
    const t = this.next(true);
    if (t.tok === 'id') return new Set([t.lit]);
    throw new RequirementError(`found '${t.lit}', expected: identifier`);
  }
}

class SyntaxErr extends Error {}

/**
 * Parses the label selector string syntax (`a=b,c!=d,e in (x,y),!f,g>1`).
 * An empty string selects everything. Invalid input → 400 BadRequest with upstream's message.
 */
export function parseLabelSelector(s: string): LabelSelector {
  try {
    return new RequirementsSelector(new Parser(lex(s)).parse());
  } catch (e) {
    if (e instanceof SyntaxErr || e instanceof RequirementError) throw errors.badRequest(e.message);
    throw e;
  }
}

/**
 * metav1.LabelSelector → selector, as upstream's LabelSelectorAsSelector:
 * `undefined`/`null` matches NOTHING; `{}` (no matchLabels, no matchExpressions) matches EVERYTHING.
 * Invalid keys, values or operators → 400 BadRequest.
 */
export function selectorFromLabelSelector(sel: MetaLabelSelector | undefined | null): LabelSelector {
  if (sel == null) return nothing();
  const ml = Object.entries(sel.matchLabels ?? {});
  const me = sel.matchExpressions ?? [];
  if (ml.length + me.length === 0) return everything();
  const reqs: LabelRequirement[] = [];
  try {
    for (const [k, v] of ml) reqs.push(newRequirement(k, '=', [v]));
    for (const e of me) {
      const op = ({ In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!' } as Record<string, string>)[e.operator];
      if (!op) throw new RequirementError(`${JSON.stringify(e.operator)} is not a valid label selector operator`);
      reqs.push(newRequirement(e.key, op, [...(e.values ?? [])]));
    }
  } catch (e) {
    if (e instanceof RequirementError) throw errors.badRequest(e.message);
    throw e;
  }
  return new RequirementsSelector(reqs);
}

/** Upstream's metav1.FormatLabelSelector: canonical string, `<none>` when empty or nil, `<error>` when invalid. */
export function formatLabelSelector(sel: MetaLabelSelector | undefined | null): string {
  let s: LabelSelector;
  try {
    s = selectorFromLabelSelector(sel);
  } catch {
    return '<error>';
  }
  const out = s.toString();
  return out.length === 0 ? '<none>' : out;
}
