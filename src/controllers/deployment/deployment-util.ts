// Pure helpers of the Deployment controller, after upstream's pkg/controller/deployment/util:
// pod-template-hash, template equality, surge/unavailable arithmetic, revision and replica
// annotations, conditions, proportional scaling.
import { resolveIntOrPercent } from '../../machinery/intstr.js';
import type { Deployment, DeploymentCondition, DeploymentStatus, PodTemplateSpec, ReplicaSet } from '../replicaset/types.js';

export const podTemplateHashLabel = 'pod-template-hash';
export const revisionAnnotation = 'deployment.kubernetes.io/revision';
export const revisionHistoryAnnotation = 'deployment.kubernetes.io/revision-history';
export const desiredReplicasAnnotation = 'deployment.kubernetes.io/desired-replicas';
export const maxReplicasAnnotation = 'deployment.kubernetes.io/max-replicas';
export const rollbackToAnnotation = 'deprecated.deployment.rollback.to';
export const lastAppliedAnnotation = 'kubectl.kubernetes.io/last-applied-configuration';
export const changeCauseAnnotation = 'kubernetes.io/change-cause';
/** upstream's limit on the revision-history annotation */
export const maxRevHistoryLengthInChars = 2000;

// Condition types and reasons, spelled as upstream.
export const Progressing = 'Progressing';
export const Available = 'Available';
export const ReplicaFailure = 'ReplicaFailure';
export const reasons = {
  NewReplicaSetCreated: 'NewReplicaSetCreated',
  FoundNewReplicaSet: 'FoundNewReplicaSet',
  ReplicaSetUpdated: 'ReplicaSetUpdated',
  NewReplicaSetAvailable: 'NewReplicaSetAvailable',
  ProgressDeadlineExceeded: 'ProgressDeadlineExceeded',
  FailedRSCreate: 'ReplicaSetCreateError',
  DeploymentPaused: 'DeploymentPaused',
  DeploymentResumed: 'DeploymentResumed',
  MinimumReplicasAvailable: 'MinimumReplicasAvailable',
  MinimumReplicasUnavailable: 'MinimumReplicasUnavailable',
} as const;

// ---------------------------------------------------------------------------------------------
// Template hashing and equality

/** Drops what Go's zero values make indistinguishable from absence: null, '', {} and []. */
export function normalize(v: unknown): unknown {
  if (Array.isArray(v)) {
    const out = v.map(normalize).filter((x) => x !== undefined);
    return out.length ? out : undefined;
  }
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = normalize((v as Record<string, unknown>)[k]);
      if (x !== undefined) out[k] = x;
    }
    return Object.keys(out).length ? out : undefined;
  }
  if (v === null || v === '') return undefined;
  return v;
}

/** A template without the pod-template-hash label, normalized, as canonical JSON. */
export function canonicalTemplate(t: PodTemplateSpec | undefined): string {
  const c = structuredClone(t ?? {}) as PodTemplateSpec;
  if (c.metadata?.labels) delete c.metadata.labels[podTemplateHashLabel];
  if (c.metadata) { delete c.metadata.creationTimestamp; }
  return JSON.stringify(normalize(c) ?? {});
}

/** Upstream's EqualIgnoreHash: equal pod templates once the pod-template-hash label is ignored. */
export function equalIgnoreHash(a: PodTemplateSpec | undefined, b: PodTemplateSpec | undefined): boolean {
  return canonicalTemplate(a) === canonicalTemplate(b);
}

function fnv32a(bytes: Uint8Array, h = 0x811c9dc5): number {
  for (const b of bytes) { h ^= b; h = Math.imul(h, 0x01000193) >>> 0; }
  return h >>> 0;
}

const safeAlphabet = 'bcdfghjklmnpqrstvwxz2456789';

/** Upstream's rand.SafeEncodeString: each character mapped into an alphabet without vowels or look-alikes. */
export function safeEncodeString(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) out += safeAlphabet[s.charCodeAt(i) % safeAlphabet.length];
  return out;
}

/**
 * The pod-template-hash of a template: fnv32a over its canonical JSON (then the collision count as
 * a little-endian uint32 when set), printed in decimal and safe-encoded, as upstream's ComputeHash.
 * Identical templates give identical hashes, across restarts.
 */
export function computeHash(template: PodTemplateSpec | undefined, collisionCount?: number): string {
  let h = fnv32a(new TextEncoder().encode(canonicalTemplate(template)));
  if (collisionCount !== undefined && collisionCount !== null) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, collisionCount >>> 0, true);
    h = fnv32a(b, h);
  }
  return safeEncodeString(String(h));
}

// ---------------------------------------------------------------------------------------------
// Surge and unavailability

export function isRollingUpdate(d: Deployment): boolean { return (d.spec?.strategy?.type ?? 'RollingUpdate') === 'RollingUpdate'; }
export function replicasOf(x: { spec?: { replicas?: number } } | undefined): number { return x?.spec?.replicas ?? 1; }

/** Upstream's ResolveFenceposts: maxSurge rounds up, maxUnavailable rounds down; both 0 → maxUnavailable 1. */
export function resolveFenceposts(maxSurge: number | string | undefined, maxUnavailable: number | string | undefined, desired: number): { surge: number; unavailable: number } {
  const surge = resolveIntOrPercent(maxSurge ?? 0, desired, true);
  let unavailable = resolveIntOrPercent(maxUnavailable ?? 0, desired, false);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { surge, unavailable };
}

export function maxSurge(d: Deployment): number {
  if (!isRollingUpdate(d)) return 0;
  const ru = d.spec?.strategy?.rollingUpdate ?? {};
  return resolveFenceposts(ru.maxSurge ?? '25%', ru.maxUnavailable ?? '25%', replicasOf(d)).surge;
}

export function maxUnavailable(d: Deployment): number {
  const replicas = replicasOf(d);
  if (!isRollingUpdate(d) || replicas === 0) return 0;
  const ru = d.spec?.strategy?.rollingUpdate ?? {};
  const u = resolveFenceposts(ru.maxSurge ?? '25%', ru.maxUnavailable ?? '25%', replicas).unavailable;
  return Math.min(u, replicas);
}

export function sumReplicas(rss: (ReplicaSet | undefined)[]): number {
  let n = 0;
  for (const rs of rss) if (rs) n += rs.spec?.replicas ?? 0;
  return n;
}
export function sumStatus(rss: (ReplicaSet | undefined)[], f: 'replicas' | 'readyReplicas' | 'availableReplicas'): number {
  let n = 0;
  for (const rs of rss) if (rs) n += rs.status?.[f] ?? 0;
  return n;
}

/** How many replicas the new ReplicaSet may have now (upstream's NewRSNewReplicas). */
export function newRSNewReplicas(d: Deployment, allRSs: (ReplicaSet | undefined)[], newRS: ReplicaSet): number {
  if (!isRollingUpdate(d)) return replicasOf(d);
  const replicas = replicasOf(d);
  const current = sumReplicas(allRSs);
  const maxTotal = replicas + maxSurge(d);
  const newCount = newRS.spec?.replicas ?? 0;
  if (current >= maxTotal) return newCount;
  const up = Math.min(maxTotal - current, replicas - newCount);
  return newCount + Math.max(0, up);
}

// ---------------------------------------------------------------------------------------------
// Revisions and annotations

export function revisionOf(rs: { metadata?: { annotations?: Record<string, string> } } | undefined): number {
  const v = rs?.metadata?.annotations?.[revisionAnnotation];
  if (v === undefined || !/^\d+$/.test(v)) return 0;
  return Number(v);
}

export function maxRevision(rss: ReplicaSet[]): number {
  let m = 0;
  for (const rs of rss) m = Math.max(m, revisionOf(rs));
  return m;
}

const skipCopy = new Set([lastAppliedAnnotation, revisionAnnotation, revisionHistoryAnnotation, desiredReplicasAnnotation, maxReplicasAnnotation, rollbackToAnnotation]);

/** Copies the Deployment's annotations (but ours and kubectl's last-applied) onto rs. Returns whether anything changed. */
export function copyDeploymentAnnotationsToReplicaSet(d: Deployment, rs: ReplicaSet): boolean {
  let changed = false;
  const a = (rs.metadata!.annotations ??= {});
  for (const [k, v] of Object.entries(d.metadata?.annotations ?? {})) {
    if (skipCopy.has(k) || a[k] === v) continue;
    a[k] = v;
    changed = true;
  }
  return changed;
}

/** Sets desired-replicas and max-replicas; returns whether anything changed. */
export function setReplicasAnnotations(rs: ReplicaSet, desired: number, max: number): boolean {
  const a = (rs.metadata!.annotations ??= {});
  let changed = false;
  if (a[desiredReplicasAnnotation] !== String(desired)) { a[desiredReplicasAnnotation] = String(desired); changed = true; }
  if (a[maxReplicasAnnotation] !== String(max)) { a[maxReplicasAnnotation] = String(max); changed = true; }
  return changed;
}

/**
 * Upstream's SetNewReplicaSetAnnotations: copy the Deployment's annotations, raise the revision to
 * newRevision when lower (keeping the former revision in revision-history: a rollback), and for a
 * ReplicaSet about to be created, the replica annotations. Returns whether anything changed.
 */
export function setNewReplicaSetAnnotations(d: Deployment, rs: ReplicaSet, newRevision: number, exists: boolean): boolean {
  let changed = copyDeploymentAnnotationsToReplicaSet(d, rs);
  const a = (rs.metadata!.annotations ??= {});
  const oldRevisionStr = a[revisionAnnotation];
  const had = oldRevisionStr !== undefined;
  let oldRevision = 0;
  if (had) {
    if (!/^\d+$/.test(oldRevisionStr)) { if (oldRevisionStr !== '') return changed; }
    else oldRevision = Number(oldRevisionStr);
  }
  if (oldRevision < newRevision) {
    a[revisionAnnotation] = String(newRevision);
    changed = true;
    if (had) {
      const history = a[revisionHistoryAnnotation] ?? '';
      if (history === '') a[revisionHistoryAnnotation] = oldRevisionStr;
      else {
        let parts = history.split(',');
        let total = history.length + oldRevisionStr.length + 1;
        let start = 0;
        while (total > maxRevHistoryLengthInChars && start < parts.length) { total -= parts[start]!.length + 1; start++; }
        if (total <= maxRevHistoryLengthInChars) {
          parts = [...parts.slice(start), oldRevisionStr];
          a[revisionHistoryAnnotation] = parts.join(',');
        }
      }
    }
  }
  if (!exists && setReplicasAnnotations(rs, replicasOf(d), replicasOf(d) + maxSurge(d))) changed = true;
  return changed;
}

// ---------------------------------------------------------------------------------------------
// Finding ReplicaSets

function created(rs: ReplicaSet): number { return Date.parse(rs.metadata?.creationTimestamp ?? '') || 0; }

/** Oldest first; ties by name (upstream's ReplicaSetsByCreationTimestamp). */
export function byCreation(a: ReplicaSet, b: ReplicaSet): number {
  const d = created(a) - created(b);
  if (d !== 0) return d;
  return (a.metadata?.name ?? '') < (b.metadata?.name ?? '') ? -1 : 1;
}

/** Lowest revision first; ties by creation (upstream's ReplicaSetsByRevision). */
export function byRevision(a: ReplicaSet, b: ReplicaSet): number {
  const d = revisionOf(a) - revisionOf(b);
  return d !== 0 ? d : byCreation(a, b);
}

/** The oldest ReplicaSet whose template equals the Deployment's (upstream's FindNewReplicaSet). */
export function findNewReplicaSet(d: Deployment, rss: ReplicaSet[]): ReplicaSet | undefined {
  return [...rss].sort(byCreation).find((rs) => equalIgnoreHash(rs.spec?.template, d.spec?.template));
}

export function activeReplicaSets(rss: (ReplicaSet | undefined)[]): ReplicaSet[] {
  return rss.filter((rs): rs is ReplicaSet => !!rs && (rs.spec?.replicas ?? 0) > 0);
}

/** The single active ReplicaSet, or the newest when none is active; undefined when several are active. */
export function findActiveOrLatest(newRS: ReplicaSet | undefined, oldRSs: ReplicaSet[]): ReplicaSet | undefined {
  if (!newRS && oldRSs.length === 0) return undefined;
  const olds = [...oldRSs].sort(byCreation).reverse();
  const active = activeReplicaSets([...olds, newRS]);
  if (active.length === 0) return newRS ?? olds[0];
  if (active.length === 1) return active[0];
  return undefined;
}

export function desiredReplicasOf(rs: ReplicaSet): number | undefined {
  const v = rs.metadata?.annotations?.[desiredReplicasAnnotation];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

/** The new ReplicaSet holds the whole Deployment, available (upstream's IsSaturated). */
export function isSaturated(d: Deployment, rs: ReplicaSet | undefined): boolean {
  if (!rs) return false;
  const r = replicasOf(d);
  return desiredReplicasOf(rs) === r && (rs.status?.availableReplicas ?? 0) === r && (rs.spec?.replicas ?? 0) === r;
}

// ---------------------------------------------------------------------------------------------
// Proportional scaling

function replicaSetFraction(rs: ReplicaSet, d: Deployment): number {
  const size = rs.spec?.replicas ?? 0;
  if (replicasOf(d) === 0) return -size;
  const deploymentReplicas = replicasOf(d) + maxSurge(d);
  const v = rs.metadata?.annotations?.[maxReplicasAnnotation];
  const annotated = v !== undefined && /^\d+$/.test(v) ? Number(v) : (d.status?.replicas ?? 0);
  if (annotated === 0) return 0;
  // Go's math.Round: half away from zero
  const x = (size * deploymentReplicas) / annotated;
  return Math.sign(x) * Math.round(Math.abs(x)) - size;
}

/** How many replicas rs gains (or loses) of toAdd, given added so far (upstream's GetReplicaSetProportion). */
export function replicaSetProportion(rs: ReplicaSet, d: Deployment, toAdd: number, added: number): number {
  if ((rs.spec?.replicas ?? 0) === 0 || toAdd === 0 || toAdd === added) return 0;
  const fraction = replicaSetFraction(rs, d);
  const allowed = toAdd - added;
  return toAdd > 0 ? Math.min(fraction, allowed) : Math.max(fraction, allowed);
}

/**
 * New sizes when a Deployment is resized during a rollout: the difference between
 * replicas+maxSurge and what the active ReplicaSets hold is spread over them in proportion to their
 * size (largest first; newer first when scaling up, older first when scaling down), leftovers to the
 * first. Returns name → size for the active ReplicaSets.
 */
export function proportionalSizes(d: Deployment, active: ReplicaSet[]): Map<string, number> {
  const total = sumReplicas(active);
  const allowed = replicasOf(d) > 0 ? replicasOf(d) + maxSurge(d) : 0;
  const toAdd = allowed - total;
  const sorted = [...active];
  if (toAdd > 0) sorted.sort((a, b) => (b.spec?.replicas ?? 0) - (a.spec?.replicas ?? 0) || -byCreation(a, b));
  else if (toAdd < 0) sorted.sort((a, b) => (b.spec?.replicas ?? 0) - (a.spec?.replicas ?? 0) || byCreation(a, b));
  const sizes = new Map<string, number>();
  let added = 0;
  for (const rs of sorted) {
    if (toAdd !== 0) {
      const p = replicaSetProportion(rs, d, toAdd, added);
      sizes.set(rs.metadata!.name!, (rs.spec?.replicas ?? 0) + p);
      added += p;
    } else sizes.set(rs.metadata!.name!, rs.spec?.replicas ?? 0);
  }
  if (sorted.length && toAdd !== 0) {
    const first = sorted[0]!.metadata!.name!;
    sizes.set(first, Math.max(0, sizes.get(first)! + toAdd - added));
  }
  return sizes;
}

// ---------------------------------------------------------------------------------------------
// Conditions and status predicates

export function getCondition(s: DeploymentStatus | undefined, type: string): DeploymentCondition | undefined {
  return s?.conditions?.find((c) => c.type === type);
}

export function newCondition(type: string, status: string, reason: string, message: string, nowIso: string): DeploymentCondition {
  return { type, status, lastUpdateTime: nowIso, lastTransitionTime: nowIso, reason, message };
}

/** Sets a condition; no change when status and reason are the same; keeps lastTransitionTime when only the reason changes. */
export function setCondition(s: DeploymentStatus, c: DeploymentCondition): void {
  const cur = getCondition(s, c.type);
  if (cur && cur.status === c.status && cur.reason === c.reason) return;
  const next = { ...c };
  if (cur && cur.status === c.status) next.lastTransitionTime = cur.lastTransitionTime;
  s.conditions = [...(s.conditions ?? []).filter((x) => x.type !== c.type), next];
}

export function removeCondition(s: DeploymentStatus, type: string): void {
  if (!s.conditions) return;
  s.conditions = s.conditions.filter((c) => c.type !== type);
  if (s.conditions.length === 0) delete s.conditions;
}

export function hasProgressDeadline(d: Deployment): boolean {
  const p = d.spec?.progressDeadlineSeconds;
  return p !== undefined && p !== null && p !== 2147483647;
}

/** Every replica updated and available, and the latest spec observed (upstream's DeploymentComplete). */
export function deploymentComplete(d: Deployment, s: DeploymentStatus): boolean {
  const r = replicasOf(d);
  return (s.updatedReplicas ?? 0) === r && (s.replicas ?? 0) === r && (s.availableReplicas ?? 0) === r
    && (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
}

/** Some progress between the old status and the new one (upstream's DeploymentProgressing). */
export function deploymentProgressing(d: Deployment, s: DeploymentStatus): boolean {
  const o = d.status ?? {};
  const oldOld = (o.replicas ?? 0) - (o.updatedReplicas ?? 0);
  const newOld = (s.replicas ?? 0) - (s.updatedReplicas ?? 0);
  return (s.updatedReplicas ?? 0) > (o.updatedReplicas ?? 0) || newOld < oldOld
    || (s.readyReplicas ?? 0) > (o.readyReplicas ?? 0) || (s.availableReplicas ?? 0) > (o.availableReplicas ?? 0);
}

/** The Progressing condition is older than progressDeadlineSeconds (upstream's DeploymentTimedOut). */
export function deploymentTimedOut(d: Deployment, s: DeploymentStatus, nowMs: number): boolean {
  if (!hasProgressDeadline(d)) return false;
  const c = getCondition(s, Progressing);
  if (!c) return false;
  if (c.reason === reasons.NewReplicaSetAvailable) return false;
  if (c.reason === reasons.ProgressDeadlineExceeded) return true;
  const from = Date.parse(c.lastUpdateTime ?? '');
  if (!Number.isFinite(from)) return false;
  return from + d.spec!.progressDeadlineSeconds! * 1000 < nowMs;
}
