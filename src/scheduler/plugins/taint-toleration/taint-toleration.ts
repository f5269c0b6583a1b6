// TaintToleration: a node's NoSchedule / NoExecute taints keep out pods that do not tolerate them;
// untolerated PreferNoSchedule taints lower the node's score (fewer is better).
import type { Taint, Toleration } from 'kubernetes-types/core/v1.js';
import { defaultNormalizeScore, unresolvable, type CycleState, type FilterPlugin, type NodeInfo, type PodInfo, type ScorePlugin, type Status } from '../../framework.js';

/** Upstream's Toleration.ToleratesTaint. */
export function toleratesTaint(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key && t.key !== taint.key) return false;
  switch (t.operator ?? 'Equal') {
    case 'Exists': return true;
    case 'Equal': return (t.value ?? '') === (taint.value ?? '');
    default: return false;
  }
}

export function tolerationsTolerateTaint(tolerations: readonly Toleration[] | undefined, taint: Taint): boolean {
  if (!tolerations) return false;
  for (const t of tolerations) if (toleratesTaint(t, taint)) return true;
  return false;
}

export class TaintToleration implements FilterPlugin, ScorePlugin {
  readonly name = 'TaintToleration';
  constructor(readonly weight = 3) {}

  filter(pod: PodInfo, nodeInfo: NodeInfo): Status | null {
    const tolerations = pod.pod.spec?.tolerations;
    for (const taint of nodeInfo.taints) {
      if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue;
      if (!tolerationsTolerateTaint(tolerations, taint)) {
        return unresolvable(`node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`);
      }
    }
    return null;
  }

  preScore(pod: PodInfo, _nodes: readonly NodeInfo[], state: CycleState): null {
    // only tolerations that can apply to PreferNoSchedule taints count
    state.write(this.name, (pod.pod.spec?.tolerations ?? []).filter((t) => !t.effect || t.effect === 'PreferNoSchedule'));
    return null;
  }

  score(_pod: PodInfo, nodeInfo: NodeInfo, state: CycleState): number {
    if (nodeInfo.taints.length === 0) return 0;
    const tols = state.read<Toleration[]>(this.name) ?? [];
    let n = 0;
    for (const taint of nodeInfo.taints) if (taint.effect === 'PreferNoSchedule' && !tolerationsTolerateTaint(tols, taint)) n++;
    return n;
  }

  normalize(_pod: PodInfo, _nodes: readonly NodeInfo[], scores: number[]): void { defaultNormalizeScore(scores, true); }
}
