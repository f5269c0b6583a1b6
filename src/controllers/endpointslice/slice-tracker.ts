// Remembers the EndpointSlice writes this controller made (upstream's EndpointSliceTracker), so a
// sync never plans from an informer cache that has not caught up with them — planning from a cache
// without our last create would create a duplicate slice. Upstream compares metadata.generation;
// here the API server does not bump generation on slices, so the tracker keeps, per slice UID, the
// resourceVersion we wrote and the ones our writes replaced: a cache showing a replaced version, or
// missing a slice we wrote, or still holding one we deleted, is stale. An expectation not met
// within expireMs (a create and delete both missed by a re-listing informer) is dropped.
import type { Clock } from '../../client/index.js';
import { realClock } from '../../client/index.js';
import type { EndpointSlice } from './endpoint-util.js';

interface Tracked { rv?: string; replaced: Set<string>; deleting: boolean; at: number }

export class EndpointSliceTracker {
  /** service key → slice uid → state */
  private readonly services = new Map<string, Map<string, Tracked>>();

  constructor(private readonly clock: Clock = realClock, private readonly expireMs = 60_000) {}

  private entry(svcKey: string, uid: string): Tracked {
    let m = this.services.get(svcKey);
    if (!m) this.services.set(svcKey, (m = new Map()));
    let t = m.get(uid);
    if (!t) m.set(uid, (t = { replaced: new Set(), deleting: false, at: 0 }));
    t.at = this.clock.now();
    return t;
  }

  private find(slice: EndpointSlice): Tracked | undefined {
    const svcKey = serviceKeyOf(slice);
    const uid = slice.metadata?.uid;
    return svcKey && uid ? this.services.get(svcKey)?.get(uid) : undefined;
  }

  /** We created or updated a slice; `from` is the resourceVersion the update replaced. */
  written(svcKey: string, slice: EndpointSlice, from?: string): void {
    const uid = slice.metadata?.uid;
    if (!uid) return;
    const t = this.entry(svcKey, uid);
    if (from && from !== slice.metadata?.resourceVersion) {
      t.replaced.add(from);
      if (t.replaced.size > 16) t.replaced.delete(t.replaced.values().next().value!);
    }
    t.rv = slice.metadata?.resourceVersion;
    t.deleting = false;
  }

  /** We deleted a slice. */
  expectDeletion(svcKey: string, slice: EndpointSlice): void {
    const uid = slice.metadata?.uid;
    if (uid) this.entry(svcKey, uid).deleting = true;
  }

  /** True if the cached slices of the Service do not show our writes yet. */
  stale(svcKey: string, cached: EndpointSlice[]): boolean {
    const m = this.services.get(svcKey);
    if (!m) return false;
    const byUid = new Map(cached.map((s) => [s.metadata?.uid, s]));
    const now = this.clock.now();
    for (const [uid, t] of m) {
      const c = byUid.get(uid);
      if (now - t.at > this.expireMs && (t.deleting ? !!c : !c)) { m.delete(uid); continue; }
      if (t.deleting) { if (c) return true; continue; }
      if (!c) return true;
      if (c.metadata?.resourceVersion && t.replaced.has(c.metadata.resourceVersion)) return true;
    }
    return false;
  }

  /** For informer events: false when the slice is exactly what we last wrote (no sync needed). */
  shouldSync(slice: EndpointSlice): boolean {
    const t = this.find(slice);
    return !t || t.deleting || t.rv !== slice.metadata?.resourceVersion;
  }

  /** A slice disappeared from the cache; true if we had deleted it ourselves. Forgets it. */
  handleDeletion(slice: EndpointSlice): boolean {
    const svcKey = serviceKeyOf(slice);
    const uid = slice.metadata?.uid;
    if (!svcKey || !uid) return false;
    const m = this.services.get(svcKey);
    const t = m?.get(uid);
    m?.delete(uid);
    if (m && m.size === 0) this.services.delete(svcKey);
    return !!t?.deleting;
  }

  deleteService(svcKey: string): void { this.services.delete(svcKey); }
}

/** `namespace/service` from a slice's kubernetes.io/service-name label. */
export function serviceKeyOf(slice: EndpointSlice): string | undefined {
  const name = slice.metadata?.labels?.['kubernetes.io/service-name'];
  return name ? `${slice.metadata?.namespace}/${name}` : undefined;
}
