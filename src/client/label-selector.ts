// Label selectors on the client side (for listers and the test API server): the string syntax
// (`a=b,c!=d,e in (x,y),f notin (z),g,!h`) and the structured metav1.LabelSelector.

export interface LabelSelectorRequirement { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }
export interface LabelSelectorObject { matchLabels?: Record<string, string>; matchExpressions?: LabelSelectorRequirement[] }

export type LabelMatcher = (labels: Record<string, string> | undefined) => boolean;

/** Parses a selector string; throws Error with the offending text when it is malformed. */
export function parseLabelSelector(sel: string): LabelMatcher {
  const reqs: LabelSelectorRequirement[] = [];
  const s = sel.trim();
  let i = 0;
  const skip = (): void => { while (i < s.length && s[i] === ' ') i++; };
  const ident = (): string => {
    skip();
    const m = /^[A-Za-z0-9._\-/]+/.exec(s.slice(i));
    if (!m) throw new Error(`invalid label selector ${JSON.stringify(sel)}: expected a key or value at ${i}`);
    i += m[0].length;
    return m[0];
  };
  while (i < s.length) {
    skip();
    if (s[i] === '!') {
      i++;
      reqs.push({ key: ident(), operator: 'DoesNotExist' });
    } else {
      const key = ident();
      skip();
      const rest = s.slice(i);
      if (rest.startsWith('==') || rest.startsWith('=')) {
        i += rest.startsWith('==') ? 2 : 1;
        skip();
        const v = /^[A-Za-z0-9._\-]*/.exec(s.slice(i))![0];
        i += v.length;
        reqs.push({ key, operator: 'In', values: [v] });
      } else if (rest.startsWith('!=')) {
        i += 2; skip();
        const v = /^[A-Za-z0-9._\-]*/.exec(s.slice(i))![0];
        i += v.length;
        reqs.push({ key, operator: 'NotIn', values: [v] });
      } else if (/^(in|notin)\s*\(/.test(rest)) {
        const op = rest.startsWith('in') ? 'In' : 'NotIn';
        i = s.indexOf('(', i) + 1;
        const close = s.indexOf(')', i);
        if (close < 0) throw new Error(`invalid label selector ${JSON.stringify(sel)}: missing )`);
        const values = s.slice(i, close).split(',').map((v) => v.trim()).filter((v) => v !== '');
        i = close + 1;
        reqs.push({ key, operator: op, values });
      } else {
        reqs.push({ key, operator: 'Exists' });
      }
    }
    skip();
    if (i < s.length) {
      if (s[i] !== ',') throw new Error(`invalid label selector ${JSON.stringify(sel)}: unexpected ${JSON.stringify(s[i])} at ${i}`);
      i++;
    }
  }
  return matcherOf(reqs);
}

function matcherOf(reqs: LabelSelectorRequirement[]): LabelMatcher {
  return (labels) => reqs.every((r) => {
    const has = labels !== undefined && Object.prototype.hasOwnProperty.call(labels, r.key);
    const v = has ? labels![r.key] : undefined;
    switch (r.operator) {
      case 'In': return has && (r.values ?? []).includes(v!);
      case 'NotIn': return !has || !(r.values ?? []).includes(v!);
      case 'Exists': return has;
      case 'DoesNotExist': return !has;
      default: return false;
    }
  });
}

/** A matcher from a string, a metav1.LabelSelector, a plain label map (equality on each), or undefined (everything).
 *  Note: as upstream, an empty LabelSelector object matches everything. */
export function labelMatcher(sel: string | LabelSelectorObject | Record<string, string> | LabelMatcher | undefined): LabelMatcher {
  if (sel === undefined) return () => true;
  if (typeof sel === 'function') return sel;
  if (typeof sel === 'string') return parseLabelSelector(sel);
  if ('matchLabels' in sel || 'matchExpressions' in sel) {
    const o = sel as LabelSelectorObject;
    const reqs: LabelSelectorRequirement[] = Object.entries(o.matchLabels ?? {}).map(([key, v]) => ({ key, operator: 'In' as const, values: [v] }));
    reqs.push(...(o.matchExpressions ?? []));
    return matcherOf(reqs);
  }
  return matcherOf(Object.entries(sel as Record<string, string>).map(([key, v]) => ({ key, operator: 'In' as const, values: [v] })));
}
