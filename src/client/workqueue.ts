// Rate-limited work queue with client-go's semantics:
// - a key queued several times is handed out once (dedup while waiting);
// - a key being processed is never handed to a second worker; if it is added meanwhile it is
//   queued again when the worker calls done(key);
// - addAfter(key, ms) delays an add; addRateLimited(key) delays by the rate limiter (per-key
//   exponential backoff 5 ms → 1000 s, combined with an overall 10 qps / burst 100 bucket);
//   forget(key) resets the key's backoff.
//
// A named queue reports client-go's work-queue metrics on this thread's Prometheus registry
// (prom-client), labelled {name}: workqueue_depth, workqueue_adds_total, workqueue_retries_total,
// workqueue_queue_duration_seconds (added → handed out) and workqueue_work_duration_seconds
// (handed out → done). Unnamed queues report nothing, as in client-go.
import { Counter, Gauge, Histogram, register } from 'prom-client';
import { type Clock, type TimerHandle, realClock } from './clock.js';
import { TokenBucket } from './rate-limiter.js';

function metric<M>(name: string, make: () => M): M { return (register.getSingleMetric(name) as M | undefined) ?? make(); }
/** client-go's work-queue latency buckets: 1 µs … 10 s, ×10. */
const WQ_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10];
const wqDepth = metric('workqueue_depth', () => new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames: ['name'] as const }));
const wqAdds = metric('workqueue_adds_total', () => new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames: ['name'] as const }));
const wqRetries = metric('workqueue_retries_total', () => new Counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames: ['name'] as const }));
const wqQueueDuration = metric('workqueue_queue_duration_seconds', () => new Histogram({ name: 'workqueue_queue_duration_seconds', help: 'How long in seconds an item stays in workqueue before being requested.', labelNames: ['name'] as const, buckets: WQ_BUCKETS }));
const wqWorkDuration = metric('workqueue_work_duration_seconds', () => new Histogram({ name: 'workqueue_work_duration_seconds', help: 'How long in seconds processing an item from workqueue takes.', labelNames: ['name'] as const, buckets: WQ_BUCKETS }));

/** The metric children of one named queue, and the times it needs for the two latencies. */
class QueueMetrics<K> {
  readonly depth: Gauge.Internal<'name'>;
  readonly adds: Counter.Internal;
  readonly retries: Counter.Internal;
  private readonly queueDuration: Histogram.Internal<'name'>;
  private readonly workDuration: Histogram.Internal<'name'>;
  private readonly addedAt = new Map<K, number>();
  private readonly startedAt = new Map<K, number>();
  constructor(name: string) {
    this.depth = wqDepth.labels({ name });
    this.adds = wqAdds.labels({ name });
    this.retries = wqRetries.labels({ name });
    this.queueDuration = wqQueueDuration.labels({ name });
    this.workDuration = wqWorkDuration.labels({ name });
  }
  added(key: K): void {
    this.adds.inc();
    if (!this.addedAt.has(key)) this.addedAt.set(key, performance.now());
  }
  queued(): void { this.depth.inc(); }
  taken(key: K): void {
    this.depth.dec();
    const now = performance.now();
    const at = this.addedAt.get(key);
    if (at !== undefined) { this.queueDuration.observe((now - at) / 1000); this.addedAt.delete(key); }
    this.startedAt.set(key, now);
  }
  done(key: K): void {
    const at = this.startedAt.get(key);
    if (at !== undefined) { this.workDuration.observe((performance.now() - at) / 1000); this.startedAt.delete(key); }
  }
}

export interface RateLimiter<K = string> {
  /** how long to wait before the item may be processed again (counts a failure) */
  when(item: K): number;
  /** stop tracking the item (it succeeded) */
  forget(item: K): void;
  /** failures counted for the item */
  numRequeues(item: K): number;
}

/** base * 2^failures, capped at max (client-go's ItemExponentialFailureRateLimiter). */
export class ItemExponentialFailureRateLimiter<K = string> implements RateLimiter<K> {
  private readonly failures = new Map<K, number>();
  constructor(readonly baseMs = 5, readonly maxMs = 1000_000) {}
  when(item: K): number {
    const n = this.failures.get(item) ?? 0;
    this.failures.set(item, n + 1);
    const d = this.baseMs * 2 ** n;
    return Number.isFinite(d) ? Math.min(d, this.maxMs) : this.maxMs;
  }
  forget(item: K): void { this.failures.delete(item); }
  numRequeues(item: K): number { return this.failures.get(item) ?? 0; }
}

/** An overall token bucket shared by all items (client-go's BucketRateLimiter). */
export class BucketRateLimiter<K = string> implements RateLimiter<K> {
  private readonly bucket: TokenBucket;
  constructor(qps = 10, burst = 100, clock: Clock = realClock) { this.bucket = new TokenBucket(qps, burst, clock); }
  when(): number { return this.bucket.reserve(); }
  forget(): void {}
  numRequeues(): number { return 0; }
}

/** The longest delay of several limiters. */
export class MaxOfRateLimiter<K = string> implements RateLimiter<K> {
  private readonly limiters: RateLimiter<K>[];
  constructor(...limiters: RateLimiter<K>[]) { this.limiters = limiters; }
  when(item: K): number { return Math.max(0, ...this.limiters.map((l) => l.when(item))); }
  forget(item: K): void { for (const l of this.limiters) l.forget(item); }
  numRequeues(item: K): number { return Math.max(0, ...this.limiters.map((l) => l.numRequeues(item))); }
}

/** client-go's DefaultControllerRateLimiter: max(5 ms·2^n up to 1000 s, 10 qps burst 100). */
export function defaultControllerRateLimiter<K = string>(clock: Clock = realClock): RateLimiter<K> {
  return new MaxOfRateLimiter<K>(new ItemExponentialFailureRateLimiter<K>(5, 1000_000), new BucketRateLimiter<K>(10, 100, clock));
}

export interface WorkQueueOptions<K = string> {
  clock?: Clock;
  rateLimiter?: RateLimiter<K>;
  name?: string;
}

export class WorkQueue<K = string> {
  readonly name: string;
  private readonly clock: Clock;
  private readonly limiter: RateLimiter<K>;
  private queue: K[] = [];
  private head = 0;
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  private readonly waiting = new Map<K, { at: number; handle: TimerHandle }>();
  private waiters: Array<(k: K | undefined) => void> = [];
  private drainWaiters: Array<() => void> = [];
  private shutting = false;
  private readonly metrics?: QueueMetrics<K>;

  constructor(opts: WorkQueueOptions<K> = {}) {
    this.clock = opts.clock ?? realClock;
    this.limiter = opts.rateLimiter ?? defaultControllerRateLimiter<K>(this.clock);
    this.name = opts.name ?? '';
    if (this.name) this.metrics = new QueueMetrics<K>(this.name);
  }

  /** Marks key as needing processing. No-op after shutDown. */
  add(key: K): void {
    if (this.shutting || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.metrics?.added(key);
    if (this.processing.has(key)) return; // queued again by done()
    this.queue.push(key);
    this.metrics?.queued();
    this.dispatch();
  }

  /** Adds key after ms (ms <= 0: now). An earlier pending time for the same key wins. */
  addAfter(key: K, ms: number): void {
    if (this.shutting) return;
    if (ms <= 0) { this.add(key); return; }
    const at = this.clock.now() + ms;
    const w = this.waiting.get(key);
    if (w) {
      if (w.at <= at) return;
      this.clock.clearTimeout(w.handle);
    }
    const handle = this.clock.setTimeout(() => {
      const cur = this.waiting.get(key);
      if (cur?.handle !== handle) return;
      this.waiting.delete(key);
      this.add(key);
    }, ms);
    this.waiting.set(key, { at, handle });
  }

  /** Adds key after the rate limiter's delay for it (counts a failure). */
  addRateLimited(key: K): void {
    this.metrics?.retries.inc();
    this.addAfter(key, this.limiter.when(key));
  }

  /** Resets key's failure count (call after a successful sync). */
  forget(key: K): void { this.limiter.forget(key); }

  numRequeues(key: K): number { return this.limiter.numRequeues(key); }

  /** Waits for the next key; undefined once shut down and empty. Call done(key) when finished. */
  get(): Promise<K | undefined> {
    if (this.queue.length - this.head > 0) return Promise.resolve(this.take());
    if (this.shutting) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Ends processing of key; if it was added meanwhile it is queued again. */
  done(key: K): void {
    this.processing.delete(key);
    this.metrics?.done(key);
    if (this.dirty.has(key)) {
      this.queue.push(key);
      this.metrics?.queued();
      this.dispatch();
    }
    if (this.processing.size === 0 && this.drainWaiters.length) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    }
  }

  /** Keys waiting to be handed out (not counting delayed or in-process keys). */
  len(): number { return this.queue.length - this.head; }

  /** Keys being processed right now. */
  processingCount(): number { return this.processing.size; }

  /** Stops accepting adds; waiting get() calls return what is queued, then undefined. */
  shutDown(): void {
    if (this.shutting) return;
    this.shutting = true;
    for (const w of this.waiting.values()) this.clock.clearTimeout(w.handle);
    this.waiting.clear();
    this.dispatch();
  }

  /** shutDown, then resolve once no key is being processed. */
  async shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0) return;
    await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  shuttingDown(): boolean { return this.shutting; }

  private take(): K {
    const key = this.queue[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.queue.length) { this.queue = this.queue.slice(this.head); this.head = 0; }
    this.dirty.delete(key);
    this.processing.add(key);
    this.metrics?.taken(key);
    return key;
  }

  private dispatch(): void {
    while (this.waiters.length && this.queue.length - this.head > 0) this.waiters.shift()!(this.take());
    if (this.shutting && this.queue.length - this.head === 0) {
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f(undefined);
    }
  }
}

export interface RunWorkersOptions<K> {
  /** called for each failed sync (default: console.error) */
  onError?(key: K, err: unknown): void;
}

/**
 * Runs n workers taking keys from queue: success → forget(key); a throw → addRateLimited(key).
 * When signal aborts the queue is shut down; resolves after every worker has returned.
 */
export async function runWorkers<K>(queue: WorkQueue<K>, n: number, sync: (key: K) => Promise<void>, signal: AbortSignal, opts: RunWorkersOptions<K> = {}): Promise<void> {
  const stop = (): void => queue.shutDown();
  if (signal.aborted) stop();
  else signal.addEventListener('abort', stop, { once: true });
  const worker = async (): Promise<void> => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        await sync(key);
        queue.forget(key);
      } catch (e) {
        if (opts.onError) opts.onError(key, e);
        else console.error(`workqueue ${queue.name}: sync ${String(key)} failed:`, e);
        queue.addRateLimited(key);
      } finally {
        queue.done(key);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, n) }, worker));
  } finally {
    signal.removeEventListener('abort', stop);
  }
}
