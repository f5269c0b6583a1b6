// NodeAffinity: spec.nodeSelector and requiredDuringSchedulingIgnoredDuringExecution node
// affinity must match the node (filter); preferredDuringScheduling terms add their weights (score).
import type { NodeSelectorRequirement, NodeSelectorTerm, Pod } from 'kubernetes-types/core/v1.js';
import { defaultNormalizeScore, unresolvable, type CycleState, type FilterPlugin, type PreFilterResult, type NodeInfo, type PodInfo, type ScorePlugin, type Status } from '../../framework.js';

export const ErrReasonPod = "node(s) didn't match Pod's node affinity/selector";

function parseInt64(s: string | undefined): number | undefined {
  if (s === undefined || !/^[+-]?\d+$/.test(s)) return undefined;
  return Number(s);
}

/** One requirement against node labels (matchExpressions). */
export function labelRequirementMatches(r: NodeSelectorRequirement, labels: Record<string, string>): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, r.key);
  const v = has ? labels[r.key] : undefined;
  switch (r.operator) {
    case 'In': return has && (r.values ?? []).includes(v!);
    case 'NotIn': return !has || !(r.values ?? []).includes(v!);
    case 'Exists': return has;
    case 'DoesNotExist': return !has;
    case 'Gt':
    case 'Lt': {
      if (!has || (r.values ?? []).length !== 1) return false;
      const lv = parseInt64(v);
      const rv = parseInt64(r.values![0]);
      if (lv === undefined || rv === undefined) return false;
      return r.operator === 'Gt' ? lv > rv : lv < rv;
    }
    default: return false;
  }
}

/** One requirement against node fields (matchFields: only metadata.name, In / NotIn). */
export function fieldRequirementMatches(r: NodeSelectorRequirement, nodeName: string): boolean {
  if (r.key !== 'metadata.name') return false;
  if (r.operator === 'In') return (r.values ?? []).length === 1 && r.values![0] === nodeName;
  if (r.operator === 'NotIn') return (r.values ?? []).length === 1 && r.values![0] !== nodeName;
  return false;
}

/** A term: every expression and every field requirement; an empty term matches nothing. */
export function termMatchesNode(t: NodeSelectorTerm, labels: Record<string, string>, nodeName: string): boolean {
  const me = t.matchExpressions ?? [];
  const mf = t.matchFields ?? [];
  if (me.length === 0 && mf.length === 0) return false;
  for (const r of me) if (!labelRequirementMatches(r, labels)) return false;
  for (const r of mf) if (!fieldRequirementMatches(r, nodeName)) return false;
  return true;
}

/** nodeSelector AND required node affinity (terms ORed), as upstream's GetRequiredNodeAffinity().Match. */
export function podMatchesNodeSelectorAndAffinity(pod: Pod, labels: Record<string, string>, nodeName: string): boolean {
  const sel = pod.spec?.nodeSelector;
  if (sel) for (const k in sel) if (labels[k] !== sel[k]) return false;
  const req = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (req) {
    let any = false;
    for (const t of req.nodeSelectorTerms ?? []) if (termMatchesNode(t, labels, nodeName)) { any = true; break; }
    if (!any) return false;
  }
  return true;
}

export class NodeAffinity implements FilterPlugin, ScorePlugin {
  readonly name = 'NodeAffinity';
  constructor(readonly weight = 2) {}

  /** upstream's PreFilter Skip: no nodeSelector and no required node affinity */
  preFilter(pod: PodInfo): PreFilterResult {
    const spec = pod.pod.spec;
    return !spec?.nodeSelector && !spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution ? 'skip' : null;
  }

  filter(pod: PodInfo, nodeInfo: NodeInfo): Status | null {
    const spec = pod.pod.spec;
    if (!spec?.nodeSelector && !spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution) return null;
    return podMatchesNodeSelectorAndAffinity(pod.pod, nodeInfo.labels, nodeInfo.name) ? null : unresolvable(ErrReasonPod);
  }

  preScore(pod: PodInfo, _nodes: readonly NodeInfo[], state: CycleState): null | 'skip' {
    const pref = pod.pod.spec?.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
    const terms = pref.filter((p) => p.weight !== 0);
    if (terms.length === 0) return 'skip';
    state.write(this.name, terms);
    return null;
  }

  score(_pod: PodInfo, nodeInfo: NodeInfo, state: CycleState): number {
    const terms = state.read<{ weight: number; preference: NodeSelectorTerm }[]>(this.name) ?? [];
    let s = 0;
    for (const t of terms) if (termMatchesNode(t.preference, nodeInfo.labels, nodeInfo.name)) s += t.weight;
    return s;
  }

  normalize(_pod: PodInfo, _nodes: readonly NodeInfo[], scores: number[]): void { defaultNormalizeScore(scores, false); }
}
