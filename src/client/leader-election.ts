// Lease-based leader election on coordination.k8s.io/v1 Leases, as client-go's leaderelection:
// try to acquire every retryPeriod (jittered); while leading, renew every retryPeriod and give up
// if no renewal succeeded for renewDeadline; a lease held by someone else counts as expired when
// its record has not changed for leaseDurationSeconds of our own clock. Writes use the lease's
// resourceVersion, so two candidates racing for it cannot both win.
import type { KObject } from '../api/types.js';
import { isStatusError } from '../machinery/status.js';
import { type Clock, realClock, sleep } from './clock.js';
import type { ResourceRef } from './rest-client.js';

export const leasesResource: ResourceRef = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' };

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
export interface Lease extends KObject { spec?: LeaseSpec }

/** What the elector needs of a client; RestClient fits. */
export interface LeaseClient {
  get<T extends KObject>(res: ResourceRef, ns: string | undefined | null, name: string, opts?: { signal?: AbortSignal }): Promise<T>;
  create<T extends KObject>(res: ResourceRef, ns: string | undefined | null, obj: T, opts?: { signal?: AbortSignal }): Promise<T>;
  update<T extends KObject>(res: ResourceRef, ns: string | undefined | null, obj: T, opts?: { signal?: AbortSignal }): Promise<T>;
}

export interface LeaderElectionConfig {
  client: LeaseClient;
  /** the Lease's namespace and name, e.g. kube-system / kube-scheduler */
  namespace: string;
  name: string;
  /** unique per candidate, e.g. `${hostname}_${uuid}` */
  identity: string;
  /** default 15 (written to the Lease rounded up to whole seconds) */
  leaseDurationSeconds?: number;
  /** default 10; must be less than leaseDurationSeconds */
  renewDeadlineSeconds?: number;
  /** default 2 */
  retryPeriodSeconds?: number;
  /** give the lease up when run()'s signal aborts; default true */
  releaseOnCancel?: boolean;
  /** called on becoming leader; signal aborts when leadership ends. run() waits for the returned promise. */
  onStartedLeading(signal: AbortSignal): void | Promise<void>;
  /** called once leading has ended (lost or stopped) */
  onStoppedLeading?(): void;
  /** called when the observed leader changes (including to ourselves) */
  onNewLeader?(identity: string): void;
  clock?: Clock;
  /** failed API calls (default: ignored; a failed attempt simply retries) */
  onError?(err: unknown): void;
}

/** Go's metav1.MicroTime layout `2006-01-02T15:04:05.000000Z`. */
export function toMicroTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private readonly clock: Clock;
  private readonly leaseMs: number;
  private readonly renewMs: number;
  private readonly retryMs: number;
  private observed?: LeaseSpec;
  private observedTime = 0;
  private observedLease?: Lease;
  private leading = false;
  private reportedLeader = '';

  constructor(private readonly config: LeaderElectionConfig) {
    this.clock = config.clock ?? realClock;
    this.leaseMs = (config.leaseDurationSeconds ?? 15) * 1000;
    this.renewMs = (config.renewDeadlineSeconds ?? 10) * 1000;
    this.retryMs = (config.retryPeriodSeconds ?? 2) * 1000;
    if (this.leaseMs <= this.renewMs) throw new Error('leaseDurationSeconds must be greater than renewDeadlineSeconds');
    if (this.renewMs <= this.retryMs * 1.2) throw new Error('renewDeadlineSeconds must be greater than retryPeriodSeconds*1.2');
    if (!config.identity) throw new Error('identity may not be empty');
  }

  isLeader(): boolean { return this.leading; }

  /** The holder of the lease as last observed ('' when none). */
  getLeader(): string { return this.observed?.holderIdentity ?? ''; }

  /**
   * Acquires the lease (waiting as long as it takes), leads until the lease is lost or signal aborts,
   * then resolves (after onStartedLeading's work has returned and, on abort, the lease is released).
   * To compete again after losing, call run() again.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (!(await this.acquire(signal))) return;
    const leadCtl = new AbortController();
    const onAbort = (): void => leadCtl.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    this.leading = true;
    let work: Promise<void>;
    try {
      work = Promise.resolve(this.config.onStartedLeading(leadCtl.signal)).catch((e) => this.report(e));
    } catch (e) {
      this.report(e);
      work = Promise.resolve();
    }
    try {
      await this.renew(leadCtl.signal);
    } finally {
      this.leading = false;
      leadCtl.abort();
      signal.removeEventListener('abort', onAbort);
      await work;
      if (signal.aborted && (this.config.releaseOnCancel ?? true)) await this.release();
      try { this.config.onStoppedLeading?.(); } catch (e) { this.report(e); }
    }
  }

  private async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew(signal)) return true;
      await sleep(this.clock, this.retryMs * (1 + Math.random() * 1.2), signal);
    }
    return false;
  }

  /** Renews every retryPeriod until a renewal has failed for renewDeadline or signal aborts. */
  private async renew(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (!(await sleep(this.clock, this.retryMs, signal))) return;
      const deadline = this.clock.now() + this.renewMs;
      let ok = false;
      while (!signal.aborted && this.clock.now() < deadline) {
        const attempt = AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, deadline - this.clock.now()))]);
        if (await this.tryAcquireOrRenew(attempt)) { ok = true; break; }
        if (!(await sleep(this.clock, Math.min(this.retryMs, Math.max(0, deadline - this.clock.now())), signal))) return;
      }
      if (!ok) return; // lost (or aborted)
    }
  }

  private setObserved(spec: LeaseSpec, lease: Lease): void {
    this.observed = spec;
    this.observedTime = this.clock.now();
    this.observedLease = lease;
    const h = spec.holderIdentity ?? '';
    if (h && h !== this.reportedLeader) {
      this.reportedLeader = h;
      try { this.config.onNewLeader?.(h); } catch (e) { this.report(e); }
    }
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { client, namespace, name, identity } = this.config;
    const now = this.clock.now();
    const durationSeconds = Math.max(1, Math.ceil(this.leaseMs / 1000));
    let lease: Lease;
    try {
      lease = await client.get<Lease>(leasesResource, namespace, name, { signal });
    } catch (e) {
      if (!isStatusError(e, 'NotFound')) { this.report(e); return false; }
      const spec: LeaseSpec = { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: toMicroTime(now), renewTime: toMicroTime(now), leaseTransitions: 0 };
      try {
        const created = await client.create<Lease>(leasesResource, namespace, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec }, { signal });
        this.setObserved(created.spec ?? spec, created);
        return true;
      } catch (e2) {
        if (!isStatusError(e2, 'AlreadyExists')) this.report(e2);
        return false;
      }
    }
    const old = lease.spec ?? {};
    const o = this.observed;
    if (!o || o.holderIdentity !== old.holderIdentity || o.renewTime !== old.renewTime || o.acquireTime !== old.acquireTime || o.leaseTransitions !== old.leaseTransitions) {
      this.setObserved(old, lease);
    }
    const holder = old.holderIdentity ?? '';
    const validMs = (old.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder && holder !== identity && this.observedTime + validMs > now) return false;

    const spec: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: durationSeconds,
      acquireTime: holder === identity ? old.acquireTime ?? toMicroTime(now) : toMicroTime(now),
      renewTime: toMicroTime(now),
      leaseTransitions: holder === identity ? old.leaseTransitions ?? 0 : (old.leaseTransitions ?? 0) + 1,
    };
    try {
      const updated = await client.update<Lease>(leasesResource, namespace, { ...lease, spec: { ...old, ...spec } }, { signal });
      this.setObserved(updated.spec ?? spec, updated);
      return true;
    } catch (e) {
      if (!isStatusError(e, 'Conflict')) this.report(e);
      return false;
    }
  }

  /** Gives the lease up if we still hold it (holder '' and a 1 s duration, as client-go). A renewal
   *  cut short by the stop may have landed without our seeing its reply, so a Conflict re-reads. */
  private async release(): Promise<void> {
    let lease = this.observedLease;
    if (!lease || this.observed?.holderIdentity !== this.config.identity) return;
    const signal = AbortSignal.timeout(Math.max(1000, this.renewMs));
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = toMicroTime(this.clock.now());
      try {
        const updated = await this.config.client.update<Lease>(leasesResource, this.config.namespace, {
          ...lease,
          spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: lease.spec?.leaseTransitions ?? 0 },
        }, { signal });
        this.setObserved(updated.spec ?? {}, updated);
        return;
      } catch (e) {
        if (!isStatusError(e, 'Conflict')) { this.report(e); return; }
        try {
          lease = await this.config.client.get<Lease>(leasesResource, this.config.namespace, this.config.name, { signal });
        } catch (e2) { this.report(e2); return; }
        if (lease.spec?.holderIdentity !== this.config.identity) return;
      }
    }
  }

  private report(e: unknown): void { this.config.onError?.(e); }
}
