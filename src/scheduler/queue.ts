// The scheduling queue, after upstream's PriorityQueue:
//   activeQ        pods ready to be tried, highest priority first, then oldest first;
//   backoffQ       pods that failed and wait out their backoff (1 s doubling to 10 s per attempt);
//   unschedulable  pods that failed and wait for a cluster change (node added/updated, pod deleted…)
//                  — a change moves them to activeQ, or to backoffQ while their backoff lasts; after
//                  5 minutes they are retried anyway.
// A change seen while a pod was being tried sends it to backoffQ instead of unschedulable, so an
// event that could have helped is never lost (upstream's moveRequestCycle).
import type { Pod } from 'kubernetes-types/core/v1.js';
import { type Clock, realClock, type TimerHandle } from '../client/clock.js';
import { PodInfo } from './node-info.js';

export interface QueuedPodInfo {
  podInfo: PodInfo;
  key: string;
  /** when it was (re-)queued, ms */
  timestamp: number;
  /** when it was first queued, ms (for latency figures) */
  initialTimestamp: number;
  /** scheduling attempts so far */
  attempts: number;
  /** plugins that rejected it on its last attempt */
  unschedulablePlugins: Set<string>;
  /** seq for stable ordering among equals */
  seq: number;
}

export interface SchedulingQueueOptions {
  clock?: Clock;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** unschedulable pods older than this are retried without an event (default 5 min) */
  maxInUnschedulableMs?: number;
}

/** An event that may make unschedulable pods schedulable. */
export type ClusterEvent = 'NodeAdd' | 'NodeUpdate' | 'AssignedPodAdd' | 'AssignedPodUpdate' | 'AssignedPodDelete' | 'UnschedulableTimeout' | 'ForceActivate';

/** Which rejecting plugins an event may help; undefined: every plugin. */
const eventHelps: Partial<Record<ClusterEvent, Set<string>>> = {
  AssignedPodAdd: new Set(['InterPodAffinity', 'PodTopologySpread']),
  AssignedPodUpdate: new Set(['InterPodAffinity', 'PodTopologySpread', 'NodeResourcesFit']),
};

class Heap<T> {
  private readonly items: T[] = [];
  private readonly index = new Map<string, number>();
  constructor(private readonly less: (a: T, b: T) => boolean, private readonly keyOf: (x: T) => string) {}
  get size(): number { return this.items.length; }
  has(key: string): boolean { return this.index.has(key); }
  get(key: string): T | undefined { const i = this.index.get(key); return i === undefined ? undefined : this.items[i]; }
  peek(): T | undefined { return this.items[0]; }
  values(): readonly T[] { return this.items; }
  push(x: T): void {
    const k = this.keyOf(x);
    const i = this.index.get(k);
    if (i !== undefined) { this.items[i] = x; this.fix(i); return; }
    this.items.push(x);
    this.index.set(k, this.items.length - 1);
    this.up(this.items.length - 1);
  }
  pop(): T | undefined {
    if (this.items.length === 0) return undefined;
    const top = this.items[0];
    this.removeAt(0);
    return top;
  }
  delete(key: string): T | undefined {
    const i = this.index.get(key);
    if (i === undefined) return undefined;
    const x = this.items[i];
    this.removeAt(i);
    return x;
  }
  private removeAt(i: number): void {
    const last = this.items.pop()!;
    this.index.delete(this.keyOf(i === this.items.length ? last : this.items[i]));
    if (i < this.items.length) {
      this.items[i] = last;
      this.index.set(this.keyOf(last), i);
      this.fix(i);
    }
  }
  private fix(i: number): void { if (!this.up(i)) this.down(i); }
  private swap(i: number, j: number): void {
    const a = this.items[i];
    const b = this.items[j];
    this.items[i] = b; this.items[j] = a;
    this.index.set(this.keyOf(b), i); this.index.set(this.keyOf(a), j);
  }
  private up(i: number): boolean {
    let moved = false;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(this.items[i], this.items[p])) break;
      this.swap(i, p); i = p; moved = true;
    }
    return moved;
  }
  private down(i: number): void {
    const n = this.items.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(this.items[l], this.items[m])) m = l;
      if (r < n && this.less(this.items[r], this.items[m])) m = r;
      if (m === i) return;
      this.swap(i, m); i = m;
    }
  }
}

function priorityOf(q: QueuedPodInfo): number { return q.podInfo.pod.spec?.priority ?? 0; }
function creationOf(q: QueuedPodInfo): number {
  const t = q.podInfo.pod.metadata?.creationTimestamp;
  return t ? Date.parse(t) : q.initialTimestamp;
}

/** What of a pod, when changed, may change the scheduling outcome (upstream strips status etc.). */
function schedulingRelevant(p: Pod): string {
  return JSON.stringify([p.spec, p.metadata?.labels, p.metadata?.annotations]);
}

export class SchedulingQueue {
  private readonly clock: Clock;
  private readonly initialBackoff: number;
  private readonly maxBackoff: number;
  private readonly maxInUnschedulable: number;
  private seq = 0;
  private readonly creation = new Map<string, number>();
  private readonly activeQ = new Heap<QueuedPodInfo>((a, b) => {
    const pa = priorityOf(a);
    const pb = priorityOf(b);
    if (pa !== pb) return pa > pb;
    const ca = this.creationCached(a);
    const cb = this.creationCached(b);
    if (ca !== cb) return ca < cb;
    return a.seq < b.seq;
  }, (q) => q.key);
  private readonly backoffQ = new Heap<QueuedPodInfo>((a, b) => this.backoffExpiry(a) < this.backoffExpiry(b), (q) => q.key);
  private readonly unschedulablePods = new Map<string, QueuedPodInfo>();
  private schedulingCycle = 0;
  private moveRequestCycle = -1;
  private waiters: Array<() => void> = [];
  private closed = false;
  private timers: TimerHandle[] = [];

  constructor(opts: SchedulingQueueOptions = {}) {
    this.clock = opts.clock ?? realClock;
    this.initialBackoff = opts.initialBackoffMs ?? 1000;
    this.maxBackoff = opts.maxBackoffMs ?? 10_000;
    this.maxInUnschedulable = opts.maxInUnschedulableMs ?? 5 * 60_000;
  }

  private creationCached(q: QueuedPodInfo): number {
    let c = this.creation.get(q.key);
    if (c === undefined) { c = creationOf(q); this.creation.set(q.key, c); }
    return c;
  }

  get activeCount(): number { return this.activeQ.size; }
  get backoffCount(): number { return this.backoffQ.size; }
  get unschedulableCount(): number { return this.unschedulablePods.size; }
  /** the current scheduling cycle number (bumped on every pop) */
  get cycle(): number { return this.schedulingCycle; }

  /** Where the pod is waiting, if anywhere. */
  where(key: string): 'active' | 'backoff' | 'unschedulable' | undefined {
    if (this.activeQ.has(key)) return 'active';
    if (this.backoffQ.has(key)) return 'backoff';
    if (this.unschedulablePods.has(key)) return 'unschedulable';
    return undefined;
  }

  /** A new pending pod. */
  add(pod: Pod): void {
    const pi = new PodInfo(pod);
    const now = this.clock.now();
    this.unschedulablePods.delete(pi.key);
    this.backoffQ.delete(pi.key);
    this.activeQ.push({ podInfo: pi, key: pi.key, timestamp: now, initialTimestamp: now, attempts: 0, unschedulablePlugins: new Set(), seq: this.seq++ });
    this.wake();
  }

  /** A pending pod changed. */
  update(oldPod: Pod | undefined, pod: Pod): void {
    const key = `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
    for (const h of [this.activeQ, this.backoffQ]) {
      const q = h.get(key);
      if (q) { q.podInfo = new PodInfo(pod); h.push(q); return; }
    }
    const u = this.unschedulablePods.get(key);
    if (u) {
      const changed = !oldPod || schedulingRelevant(oldPod) !== schedulingRelevant(pod);
      u.podInfo = new PodInfo(pod);
      if (changed) {
        this.unschedulablePods.delete(key);
        if (this.isBackingOff(u)) this.backoffQ.push(u); else { this.activeQ.push(u); this.wake(); }
      }
      return;
    }
    this.add(pod);
  }

  delete(key: string): void {
    this.activeQ.delete(key);
    this.backoffQ.delete(key);
    this.unschedulablePods.delete(key);
    this.creation.delete(key);
  }

  /** The next pod to try, without waiting. */
  tryPop(): QueuedPodInfo | undefined {
    const q = this.activeQ.pop();
    if (!q) return undefined;
    q.attempts++;
    this.schedulingCycle++;
    return q;
  }

  /** Waits for the next pod; undefined once closed or aborted. */
  async pop(signal?: AbortSignal): Promise<QueuedPodInfo | undefined> {
    for (;;) {
      if (this.closed || signal?.aborted) return undefined;
      const q = this.tryPop();
      if (q) return q;
      await new Promise<void>((resolve) => {
        const done = (): void => { signal?.removeEventListener('abort', done); resolve(); };
        this.waiters.push(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  /**
   * A pod that could not be scheduled in cycle podCycle. unschedulable=false (an error, or a failed
   * bind) always goes to backoffQ.
   */
  addUnschedulable(q: QueuedPodInfo, podCycle: number, unschedulable = true): void {
    if (this.where(q.key)) return;
    q.timestamp = this.clock.now();
    if (!unschedulable || this.moveRequestCycle >= podCycle) this.backoffQ.push(q);
    else this.unschedulablePods.set(q.key, q);
  }

  /** Forgets the pod's bookkeeping once it is placed. */
  done(key: string): void { this.creation.delete(key); }

  /** A cluster change: unschedulable pods it may help go to activeQ (or backoffQ while backing off). */
  moveAllToActiveOrBackoff(event: ClusterEvent): void {
    const helps = eventHelps[event];
    let woke = false;
    for (const [key, q] of this.unschedulablePods) {
      if (helps && q.unschedulablePlugins.size > 0 && ![...q.unschedulablePlugins].some((p) => helps.has(p))) continue;
      this.unschedulablePods.delete(key);
      if (this.isBackingOff(q)) this.backoffQ.push(q);
      else { this.activeQ.push(q); woke = true; }
    }
    this.moveRequestCycle = this.schedulingCycle;
    if (woke) this.wake();
  }

  backoffDuration(q: QueuedPodInfo): number {
    let d = this.initialBackoff;
    for (let i = 1; i < q.attempts; i++) {
      d *= 2;
      if (d >= this.maxBackoff) return this.maxBackoff;
    }
    return Math.min(d, this.maxBackoff);
  }
  private backoffExpiry(q: QueuedPodInfo): number { return q.timestamp + this.backoffDuration(q); }
  private isBackingOff(q: QueuedPodInfo): boolean { return this.backoffExpiry(q) > this.clock.now(); }

  /** Moves pods whose backoff ended to activeQ. */
  flushBackoffCompleted(): void {
    const now = this.clock.now();
    let woke = false;
    for (;;) {
      const q = this.backoffQ.peek();
      if (!q || this.backoffExpiry(q) > now) break;
      this.backoffQ.pop();
      this.activeQ.push(q);
      woke = true;
    }
    if (woke) this.wake();
  }

  /** Retries pods that have waited longer than maxInUnschedulable. */
  flushUnschedulableLeftover(): void {
    const now = this.clock.now();
    let woke = false;
    for (const [key, q] of this.unschedulablePods) {
      if (now - q.timestamp < this.maxInUnschedulable) continue;
      this.unschedulablePods.delete(key);
      if (this.isBackingOff(q)) this.backoffQ.push(q); else { this.activeQ.push(q); woke = true; }
    }
    if (woke) this.wake();
  }

  /** Starts the periodic flushes (backoff every 1 s, leftovers every 30 s), as upstream's Run. */
  start(): void {
    const every = (slot: number, ms: number, f: () => void): void => {
      const tick = (): void => { if (this.closed) return; f(); this.timers[slot] = this.clock.setTimeout(tick, ms); };
      this.timers[slot] = this.clock.setTimeout(tick, ms);
    };
    every(0, 1000, () => this.flushBackoffCompleted());
    every(1, 30_000, () => this.flushUnschedulableLeftover());
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) this.clock.clearTimeout(t);
    this.timers = [];
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    if (w.length === 0) return;
    this.waiters = [];
    for (const f of w) f();
  }
}
