// Taints and tolerations as the node lifecycle and taint eviction need them (upstream's
// ToleratesTaint and the well-known node condition taints).

export interface Taint { key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' | string; timeAdded?: string }
export interface Toleration { key?: string; operator?: 'Exists' | 'Equal' | string; value?: string; effect?: string; tolerationSeconds?: number }

export const TaintNodeNotReady = 'node.kubernetes.io/not-ready';
export const TaintNodeUnreachable = 'node.kubernetes.io/unreachable';

/** Whether one toleration tolerates one taint. */
export function toleratesTaint(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key && t.key !== taint.key) return false;
  const op = t.operator || 'Equal';
  if (op === 'Exists') return true;
  if (op === 'Equal') return (t.value ?? '') === (taint.value ?? '');
  return false;
}

/**
 * For a pod's tolerations and a node's NoExecute taints: undefined when some taint is not
 * tolerated (evict now), Infinity when every taint is tolerated forever, else the smallest
 * tolerationSeconds (in ms, never negative) among the tolerations used.
 */
export function minTolerationMs(tolerations: Toleration[], taints: Taint[]): number | undefined {
  let min = Infinity;
  for (const taint of taints) {
    const used = tolerations.filter((t) => toleratesTaint(t, taint));
    if (used.length === 0) return undefined;
    for (const t of used) {
      if (typeof t.tolerationSeconds === 'number') min = Math.min(min, Math.max(0, t.tolerationSeconds) * 1000);
    }
  }
  return min;
}

export function sameTaint(a: Taint, b: Taint): boolean {
  return a.key === b.key && a.effect === b.effect;
}
