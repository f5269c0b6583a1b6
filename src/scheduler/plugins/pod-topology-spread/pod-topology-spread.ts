// PodTopologySpread: topologySpreadConstraints with whenUnsatisfiable DoNotSchedule keep the
// skew (pods in this domain + 1 - pods in the emptiest domain) within maxSkew (filter);
// ScheduleAnyway constraints — and, for pods with no constraints at all, upstream's system default
// spreading of pods of the same owner over kubernetes.io/hostname (maxSkew 3) and
// topology.kubernetes.io/zone (maxSkew 5) — prefer the less crowded domains (score).
import type { Pod, TopologySpreadConstraint } from 'kubernetes-types/core/v1.js';
import { selectorFromLabelSelector } from '../../../machinery/labels.js';
import { MaxNodeScore, unresolvable, unschedulable, type CycleState, type FilterPlugin, type PreFilterResult, type NodeInfo, type PodInfo, type ScorePlugin, type Snapshot, type Status } from '../../framework.js';
import { podMatchesNodeSelectorAndAffinity } from '../node-affinity/node-affinity.js';
import { tolerationsTolerateTaint } from '../taint-toleration/taint-toleration.js';

export const ErrReasonConstraintsNotMatch = "node(s) didn't match pod topology spread constraints";
export const ErrReasonNodeLabelNotMatch = ErrReasonConstraintsNotMatch + ' (missing required label)';
export const LabelHostname = 'kubernetes.io/hostname';
export const LabelZone = 'topology.kubernetes.io/zone';

export interface Constraint {
  maxSkew: number;
  topologyKey: string;
  minDomains: number;
  /** does an existing pod count for this constraint */
  matches: (p: Pod) => boolean;
  /** does the incoming pod itself count */
  selfMatch: boolean;
  honorAffinity: boolean;
  honorTaints: boolean;
}

function hasLabel(labels: Record<string, string>, k: string): boolean { return Object.prototype.hasOwnProperty.call(labels, k); }

/** The pod's own constraints with the given whenUnsatisfiable, as matchers. */
export function podConstraints(pod: Pod, when: 'DoNotSchedule' | 'ScheduleAnyway'): Constraint[] {
  const out: Constraint[] = [];
  const ns = pod.metadata?.namespace ?? 'default';
  const labels = pod.metadata?.labels ?? {};
  for (const c of pod.spec?.topologySpreadConstraints ?? [] as TopologySpreadConstraint[]) {
    if (c.whenUnsatisfiable !== when) continue;
    const ls = c.labelSelector;
    const extra = (c.matchLabelKeys ?? []).filter((k) => k in labels).map((k) => ({ key: k, operator: 'In', values: [labels[k]] }));
    const sel = selectorFromLabelSelector(ls && extra.length ? { matchLabels: ls.matchLabels, matchExpressions: [...(ls.matchExpressions ?? []), ...extra] } : ls ?? null);
    out.push({
      maxSkew: c.maxSkew, topologyKey: c.topologyKey, minDomains: c.minDomains ?? 1,
      matches: (p) => (p.metadata?.namespace ?? 'default') === ns && !p.metadata?.deletionTimestamp && sel.matches(p.metadata?.labels),
      selfMatch: sel.matches(labels),
      honorAffinity: (c.nodeAffinityPolicy ?? 'Honor') === 'Honor',
      honorTaints: c.nodeTaintsPolicy === 'Honor',
    });
  }
  return out;
}

/** Upstream's system defaults, selecting pods with the same controller owner. */
export function systemDefaultConstraints(pod: Pod): Constraint[] {
  const owner = pod.metadata?.ownerReferences?.find((r) => r.controller);
  if (!owner) return [];
  const ns = pod.metadata?.namespace ?? 'default';
  const matches = (p: Pod): boolean => (p.metadata?.namespace ?? 'default') === ns && !p.metadata?.deletionTimestamp
    && !!p.metadata?.ownerReferences?.some((r) => r.controller && r.uid === owner.uid);
  return [
    { maxSkew: 3, topologyKey: LabelHostname, minDomains: 1, matches, selfMatch: true, honorAffinity: true, honorTaints: false },
    { maxSkew: 5, topologyKey: LabelZone, minDomains: 1, matches, selfMatch: true, honorAffinity: true, honorTaints: false },
  ];
}

function nodeIncluded(c: Constraint, pod: Pod, ni: NodeInfo): boolean {
  if (c.honorAffinity && !podMatchesNodeSelectorAndAffinity(pod, ni.labels, ni.name)) return false;
  if (c.honorTaints) {
    for (const t of ni.taints) {
      if ((t.effect === 'NoSchedule' || t.effect === 'NoExecute') && !tolerationsTolerateTaint(pod.spec?.tolerations, t)) return false;
    }
  }
  return true;
}

function countOn(c: Constraint, ni: NodeInfo): number {
  let n = 0;
  for (const p of ni.pods.values()) if (c.matches(p.pod)) n++;
  return n;
}

interface FilterState { constraints: Constraint[]; counts: Map<string, number>[]; min: number[] }
interface ScoreState { constraints: Constraint[]; counts: Map<string, number>[]; weights: number[]; requireAll: boolean; ignored: Set<string> }

export class PodTopologySpread implements FilterPlugin, ScorePlugin {
  readonly name = 'PodTopologySpread';
  constructor(readonly weight = 2, readonly systemDefaulting = true) {}

  preFilter(pod: PodInfo, state: CycleState, snapshot: Snapshot): PreFilterResult {
    const constraints = podConstraints(pod.pod, 'DoNotSchedule');
    if (constraints.length === 0) return 'skip'; // upstream's PreFilter Skip
    const counts = constraints.map(() => new Map<string, number>());
    for (const ni of snapshot.nodeInfoList()) {
      if (!constraints.every((c) => hasLabel(ni.labels, c.topologyKey))) continue;
      constraints.forEach((c, i) => {
        if (!nodeIncluded(c, pod.pod, ni)) return;
        const v = ni.labels[c.topologyKey];
        counts[i].set(v, (counts[i].get(v) ?? 0) + countOn(c, ni));
      });
    }
    const min = constraints.map((c, i) => {
      if (counts[i].size < c.minDomains) return 0;
      let m = Infinity;
      for (const v of counts[i].values()) if (v < m) m = v;
      return m === Infinity ? 0 : m;
    });
    state.write(this.name, { constraints, counts, min } satisfies FilterState);
    return null;
  }

  filter(_pod: PodInfo, nodeInfo: NodeInfo, state: CycleState): Status | null {
    const s = state.read<FilterState>(this.name);
    if (!s) return null;
    for (let i = 0; i < s.constraints.length; i++) {
      const c = s.constraints[i];
      if (!hasLabel(nodeInfo.labels, c.topologyKey)) return unresolvable(ErrReasonNodeLabelNotMatch);
      const matchNum = s.counts[i].get(nodeInfo.labels[c.topologyKey]) ?? 0;
      const skew = matchNum + (c.selfMatch ? 1 : 0) - s.min[i];
      if (skew > c.maxSkew) return unschedulable(ErrReasonConstraintsNotMatch);
    }
    return null;
  }

  preScore(pod: PodInfo, nodes: readonly NodeInfo[], state: CycleState, snapshot: Snapshot): null | 'skip' {
    let constraints: Constraint[];
    let requireAll = true;
    if ((pod.pod.spec?.topologySpreadConstraints ?? []).length > 0) constraints = podConstraints(pod.pod, 'ScheduleAnyway');
    else if (this.systemDefaulting) { constraints = systemDefaultConstraints(pod.pod); requireAll = false; }
    else constraints = [];
    if (constraints.length === 0) return 'skip';
    // domains present among the feasible nodes
    const ignored = new Set<string>();
    const counts = constraints.map(() => new Map<string, number>());
    for (const ni of nodes) {
      if (requireAll && !constraints.every((c) => hasLabel(ni.labels, c.topologyKey))) { ignored.add(ni.name); continue; }
      constraints.forEach((c, i) => { if (hasLabel(ni.labels, c.topologyKey)) counts[i].set(ni.labels[c.topologyKey], 0); });
    }
    if (counts.every((m) => m.size === 0)) return 'skip';
    const weights = counts.map((m) => Math.log(m.size + 2));
    constraints.forEach((c, i) => {
      if (counts[i].size === 0) return;
      // hostname domains: count on the feasible nodes; wider domains: over every node
      const over = c.topologyKey === LabelHostname ? nodes : snapshot.nodeInfoList();
      for (const ni of over) {
        if (!hasLabel(ni.labels, c.topologyKey)) continue;
        const v = ni.labels[c.topologyKey];
        if (!counts[i].has(v) || !nodeIncluded(c, pod.pod, ni)) continue;
        counts[i].set(v, counts[i].get(v)! + countOn(c, ni));
      }
    });
    state.write(`${this.name}/score`, { constraints, counts, weights, requireAll, ignored } satisfies ScoreState);
    return null;
  }

  score(_pod: PodInfo, nodeInfo: NodeInfo, state: CycleState): number {
    const s = state.read<ScoreState>(`${this.name}/score`)!;
    if (s.ignored.has(nodeInfo.name)) return 0;
    let score = 0;
    for (let i = 0; i < s.constraints.length; i++) {
      const c = s.constraints[i];
      if (!hasLabel(nodeInfo.labels, c.topologyKey)) continue;
      const cnt = s.counts[i].get(nodeInfo.labels[c.topologyKey]) ?? 0;
      score += cnt * s.weights[i] + (c.maxSkew - 1);
    }
    return Math.round(score);
  }

  normalize(_pod: PodInfo, nodes: readonly NodeInfo[], scores: number[], state: CycleState): void {
    const s = state.read<ScoreState>(`${this.name}/score`)!;
    let min = Infinity;
    let max = 0;
    for (let i = 0; i < scores.length; i++) {
      if (s.ignored.has(nodes[i].name)) continue;
      if (scores[i] < min) min = scores[i];
      if (scores[i] > max) max = scores[i];
    }
    for (let i = 0; i < scores.length; i++) {
      if (s.ignored.has(nodes[i].name)) { scores[i] = 0; continue; }
      scores[i] = max === 0 ? MaxNodeScore : Math.trunc((MaxNodeScore * (max + min - scores[i])) / max);
    }
  }
}
