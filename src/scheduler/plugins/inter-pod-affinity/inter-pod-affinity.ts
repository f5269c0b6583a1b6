// InterPodAffinity: required pod affinity / anti-affinity of the incoming pod, and required
// anti-affinity of the pods already placed, as a filter over topology domains; preferred terms
// (both ways) and existing pods' required affinity as a score.
import { unresolvable, unschedulable, MaxNodeScore, type CycleState, type FilterPlugin, type PreFilterResult, type NodeInfo, type PodInfo, type ScorePlugin, type Snapshot, type Status } from '../../framework.js';
import { termMatches, type AffinityTerm } from '../../node-info.js';

export const ErrReasonExistingAntiAffinityRulesNotMatch = "node(s) didn't satisfy existing pods anti-affinity rules";
export const ErrReasonAffinityRulesNotMatch = "node(s) didn't match pod affinity rules";
export const ErrReasonAntiAffinityRulesNotMatch = "node(s) didn't match pod anti-affinity rules";
/** upstream's default hardPodAffinityWeight */
const HardPodAffinityWeight = 1;

/** topologyKey → topology value → count */
type TopologyCounts = Map<string, Map<string, number>>;

function inc(m: TopologyCounts, key: string, value: string, by: number): void {
  let inner = m.get(key);
  if (!inner) { inner = new Map(); m.set(key, inner); }
  inner.set(value, (inner.get(value) ?? 0) + by);
}
function count(m: TopologyCounts, key: string, value: string): number { return m.get(key)?.get(value) ?? 0; }
function hasLabel(labels: Record<string, string>, k: string): boolean { return Object.prototype.hasOwnProperty.call(labels, k); }

interface FilterState { existingAnti: TopologyCounts; affinity: TopologyCounts; anti: TopologyCounts; affinityTotal: number; selfMatches: boolean }
interface ScoreState { topologyScore: TopologyCounts }

export class InterPodAffinity implements FilterPlugin, ScorePlugin {
  readonly name = 'InterPodAffinity';
  constructor(readonly weight = 2) {}

  preFilter(pod: PodInfo, state: CycleState, snapshot: Snapshot): PreFilterResult {
    const withAnti = snapshot.havePodsWithRequiredAntiAffinityList();
    // upstream's PreFilter Skip: no terms of its own and no pod anywhere with required anti-affinity
    if (pod.requiredAffinity.length === 0 && pod.requiredAntiAffinity.length === 0 && withAnti.length === 0) return 'skip';
    const nsLabels = snapshot.namespaceLabels(pod.pod.metadata?.namespace ?? 'default');
    const s: FilterState = { existingAnti: new Map(), affinity: new Map(), anti: new Map(), affinityTotal: 0,
      selfMatches: pod.requiredAffinity.every((t) => termMatches(t, pod.pod, nsLabels)) };
    for (const ni of withAnti) {
      for (const ep of ni.pods.values()) {
        for (const t of ep.requiredAntiAffinity) {
          if (hasLabel(ni.labels, t.topologyKey) && termMatches(t, pod.pod, nsLabels)) inc(s.existingAnti, t.topologyKey, ni.labels[t.topologyKey], 1);
        }
      }
    }
    if (pod.requiredAffinity.length || pod.requiredAntiAffinity.length) {
      for (const ni of snapshot.nodeInfoList()) {
        for (const ep of ni.pods.values()) {
          const epNs = snapshot.namespaceLabels(ep.pod.metadata?.namespace ?? 'default');
          if (pod.requiredAffinity.length && pod.requiredAffinity.every((t) => termMatches(t, ep.pod, epNs))) {
            for (const t of pod.requiredAffinity) {
              if (hasLabel(ni.labels, t.topologyKey)) { inc(s.affinity, t.topologyKey, ni.labels[t.topologyKey], 1); s.affinityTotal++; }
            }
          }
          for (const t of pod.requiredAntiAffinity) {
            if (hasLabel(ni.labels, t.topologyKey) && termMatches(t, ep.pod, epNs)) inc(s.anti, t.topologyKey, ni.labels[t.topologyKey], 1);
          }
        }
      }
    }
    state.write(this.name, s);
    return null;
  }

  filter(pod: PodInfo, nodeInfo: NodeInfo, state: CycleState): Status | null {
    const s = state.read<FilterState>(this.name);
    if (!s) return null;
    const labels = nodeInfo.labels;
    // upstream's order: the pod's affinity, its anti-affinity, then existing pods' anti-affinity
    if (pod.requiredAffinity.length) {
      let ok = true;
      for (const t of pod.requiredAffinity) {
        if (!hasLabel(labels, t.topologyKey) || count(s.affinity, t.topologyKey, labels[t.topologyKey]) <= 0) { ok = false; break; }
      }
      if (!ok) {
        // no pod anywhere matches: the first pod of a group that selects itself may go anywhere
        // that has the topology keys
        const self = s.affinityTotal === 0 && s.selfMatches && pod.requiredAffinity.every((t) => hasLabel(labels, t.topologyKey));
        if (!self) return unresolvable(ErrReasonAffinityRulesNotMatch);
      }
    }
    for (const t of pod.requiredAntiAffinity) {
      if (hasLabel(labels, t.topologyKey) && count(s.anti, t.topologyKey, labels[t.topologyKey]) > 0) return unschedulable(ErrReasonAntiAffinityRulesNotMatch);
    }
    if (s.existingAnti.size) {
      for (const [k, inner] of s.existingAnti) {
        if (hasLabel(labels, k) && (inner.get(labels[k]) ?? 0) > 0) return unschedulable(ErrReasonExistingAntiAffinityRulesNotMatch);
      }
    }
    return null;
  }

  preScore(pod: PodInfo, _nodes: readonly NodeInfo[], state: CycleState, snapshot: Snapshot): null | 'skip' {
    const hasPreferred = pod.preferredAffinity.length + pod.preferredAntiAffinity.length > 0;
    const candidates = hasPreferred ? snapshot.nodeInfoList() : snapshot.havePodsWithAffinityList();
    if (candidates.length === 0) return 'skip';
    const nsLabels = snapshot.namespaceLabels(pod.pod.metadata?.namespace ?? 'default');
    const ts: TopologyCounts = new Map();
    const add = (terms: readonly (AffinityTerm & { weight?: number })[], target: PodInfo, tNs: Record<string, string> | undefined, labels: Record<string, string>, sign: number, fixed?: number): void => {
      for (const t of terms) {
        if (!hasLabel(labels, t.topologyKey)) continue;
        if (termMatches(t, target.pod, tNs)) inc(ts, t.topologyKey, labels[t.topologyKey], sign * (fixed ?? t.weight ?? 0));
      }
    };
    for (const ni of candidates) {
      for (const ep of ni.pods.values()) {
        if (hasPreferred) {
          const epNs = snapshot.namespaceLabels(ep.pod.metadata?.namespace ?? 'default');
          add(pod.preferredAffinity, ep, epNs, ni.labels, 1);
          add(pod.preferredAntiAffinity, ep, epNs, ni.labels, -1);
        }
        if (ep.hasAffinity) {
          add(ep.requiredAffinity, pod, nsLabels, ni.labels, 1, HardPodAffinityWeight);
          add(ep.preferredAffinity, pod, nsLabels, ni.labels, 1);
          add(ep.preferredAntiAffinity, pod, nsLabels, ni.labels, -1);
        }
      }
    }
    if (ts.size === 0) return 'skip';
    state.write(`${this.name}/score`, { topologyScore: ts } satisfies ScoreState);
    return null;
  }

  score(_pod: PodInfo, nodeInfo: NodeInfo, state: CycleState): number {
    const s = state.read<ScoreState>(`${this.name}/score`)!;
    let total = 0;
    for (const [k, inner] of s.topologyScore) if (hasLabel(nodeInfo.labels, k)) total += inner.get(nodeInfo.labels[k]) ?? 0;
    return total;
  }

  normalize(_pod: PodInfo, _nodes: readonly NodeInfo[], scores: number[]): void {
    let min = Infinity;
    let max = -Infinity;
    for (const s of scores) { if (s < min) min = s; if (s > max) max = s; }
    const diff = max - min;
    for (let i = 0; i < scores.length; i++) scores[i] = diff > 0 ? Math.trunc((MaxNodeScore * (scores[i] - min)) / diff) : 0;
  }
}
