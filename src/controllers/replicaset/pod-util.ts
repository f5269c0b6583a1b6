// Pod predicates and the order in which surplus pods are chosen for deletion (upstream's
// controller.ActivePodsWithRanks), shared by the ReplicaSet and Deployment controllers.
import type { KObject, OwnerReference } from '../../api/types.js';
import type { Pod } from './types.js';

export function controllerRefOf(obj: KObject): OwnerReference | undefined {
  return obj.metadata?.ownerReferences?.find((r) => r.controller === true);
}

/** Not Succeeded/Failed and not being deleted (upstream's IsPodActive). */
export function isPodActive(p: Pod): boolean {
  const phase = p.status?.phase;
  return phase !== 'Succeeded' && phase !== 'Failed' && !p.metadata?.deletionTimestamp;
}

export function podReadyCondition(p: Pod): { status: string; lastTransitionTime?: string } | undefined {
  return p.status?.conditions?.find((c) => c.type === 'Ready');
}

export function isPodReady(p: Pod): boolean { return podReadyCondition(p)?.status === 'True'; }

/** Ready for at least minReadySeconds at `nowMs` (upstream's IsPodAvailable). */
export function isPodAvailable(p: Pod, minReadySeconds: number, nowMs: number): boolean {
  const c = podReadyCondition(p);
  if (c?.status !== 'True') return false;
  if (!minReadySeconds) return true;
  const t = c.lastTransitionTime ? Date.parse(c.lastTransitionTime) : NaN;
  return Number.isFinite(t) && t + minReadySeconds * 1000 <= nowMs;
}

function ts(s: string | null | undefined): number | undefined {
  if (!s) return undefined;
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : undefined;
}

function maxRestarts(p: Pod): number {
  let m = 0;
  for (const c of [...(p.status?.containerStatuses ?? []), ...(p.status?.initContainerStatuses ?? [])]) m = Math.max(m, c.restartCount ?? 0);
  return m;
}

function deletionCost(p: Pod): number {
  const v = p.metadata?.annotations?.['controller.kubernetes.io/pod-deletion-cost'];
  const n = v === undefined ? 0 : Number(v);
  return Number.isInteger(n) ? n : 0;
}

const phaseOrder: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };

/** undefined (zero) time sorts first, then later times: "afterOrZero". -1 when a goes first. */
function afterOrZero(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined) return a === undefined ? (b === undefined ? 0 : -1) : 1;
  return a === b ? 0 : a > b ? -1 : 1;
}

export interface RankedPod { pod: Pod; rank: number }

/**
 * Compares two pods for deletion: negative when `a` should be deleted before `b`. Upstream's order:
 * unassigned < assigned; Pending < Unknown < Running; not ready < ready; lower pod-deletion-cost
 * first; more pods of the same owner on the node (rank) first; ready more recently first (on a
 * logarithmic scale of how long); more container restarts first; newer first.
 */
export function comparePodsForDeletion(a: RankedPod, b: RankedPod, nowMs: number): number {
  const pa = a.pod, pb = b.pod;
  const na = !!pa.spec?.nodeName, nb = !!pb.spec?.nodeName;
  if (na !== nb) return na ? 1 : -1;
  const ph = (p: Pod): number => phaseOrder[p.status?.phase ?? ''] ?? 0;
  if (ph(pa) !== ph(pb)) return ph(pa) - ph(pb);
  const ra = isPodReady(pa), rb = isPodReady(pb);
  if (ra !== rb) return ra ? 1 : -1;
  const ca = deletionCost(pa), cb = deletionCost(pb);
  if (ca !== cb) return ca - cb;
  if (a.rank !== b.rank) return b.rank - a.rank;
  if (ra && rb) {
    const ta = ts(podReadyCondition(pa)?.lastTransitionTime), tb = ts(podReadyCondition(pb)?.lastTransitionTime);
    if (ta !== tb) {
      if (ta === undefined || tb === undefined) return afterOrZero(ta, tb);
      const bucket = (t: number): number => { const d = nowMs - t; return d <= 0 ? -1 : Math.floor(Math.log2(d)); };
      const diff = bucket(ta) - bucket(tb);
      if (diff !== 0) return diff;
    }
  }
  const xa = maxRestarts(pa), xb = maxRestarts(pb);
  if (xa !== xb) return xb - xa;
  const c = afterOrZero(ts(pa.metadata?.creationTimestamp), ts(pb.metadata?.creationTimestamp));
  if (c !== 0) return c;
  return (pa.metadata?.uid ?? '') < (pb.metadata?.uid ?? '') ? -1 : (pa.metadata?.uid ?? '') > (pb.metadata?.uid ?? '') ? 1 : 0;
}

/**
 * The `count` pods to delete first among `pods`. `related` are the pods of every ReplicaSet with the
 * same owner (upstream's indirectly related pods): a pod's rank is how many of them share its node.
 */
export function podsToDelete(pods: Pod[], related: Pod[], count: number, nowMs: number): Pod[] {
  if (count >= pods.length) return [...pods];
  const onNode = new Map<string, number>();
  for (const p of related) {
    const n = p.spec?.nodeName;
    if (n && isPodActive(p)) onNode.set(n, (onNode.get(n) ?? 0) + 1);
  }
  const ranked = pods.map((pod) => ({ pod, rank: pod.spec?.nodeName ? onNode.get(pod.spec.nodeName) ?? 0 : 0 }));
  ranked.sort((a, b) => comparePodsForDeletion(a, b, nowMs));
  return ranked.slice(0, count).map((r) => r.pod);
}
