// Label selectors for the client side (listers, indexers, the fake API server): thin matchers over
// the one selector implementation in src/machinery/labels.ts (parsing, metav1.LabelSelector
// conversion), so client and server agree on every operator and edge case.
import { parseLabelSelector as parseSelector, selectorFromLabelSelector, selectorFromSet } from '../machinery/labels.js';

export interface LabelSelectorRequirement { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }
export interface LabelSelectorObject { matchLabels?: Record<string, string>; matchExpressions?: LabelSelectorRequirement[] }

export type LabelMatcher = (labels: Record<string, string> | undefined) => boolean;

/** A matcher from the string form (`app=web,tier in (a,b),!legacy`); throws on a malformed selector. */
export function parseLabelSelector(sel: string): LabelMatcher {
  const s = parseSelector(sel);
  return (labels) => s.matches(labels);
}

/** A matcher from a string, a metav1.LabelSelector, a plain label map (equality on each), or undefined (everything).
 *  Note: as upstream, an empty LabelSelector object matches everything. */
export function labelMatcher(sel: string | LabelSelectorObject | Record<string, string> | LabelMatcher | undefined): LabelMatcher {
  if (sel === undefined) return () => true;
  if (typeof sel === 'function') return sel;
  if (typeof sel === 'string') return parseLabelSelector(sel);
  const s = 'matchLabels' in sel || 'matchExpressions' in sel
    ? selectorFromLabelSelector(sel as LabelSelectorObject)
    : selectorFromSet(sel as Record<string, string>);
  return (labels) => s.matches(labels);
}
