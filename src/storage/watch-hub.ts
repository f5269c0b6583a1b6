// Watch fan-out shared by the single-process drivers. A driver publishes every committed event, in
// revision order, right after the write is durable; the hub hands each watcher the events under its
// prefix in a microtask, so delivery is asynchronous but ordered. A new watcher is registered in the
// same synchronous step in which its replay is read, so replay and live events meet with no gap and
// no duplicate.
import type { WatchCallbacks, WatchEvent, Watcher } from './store.js';

class ActiveWatch implements Watcher {
  private queue: WatchEvent[] = [];
  private scheduled = false;
  /** no more events are accepted (stopped by the consumer, or failed) */
  private ended = false;
  /** stopped by the consumer: nothing more is delivered, not even a pending error */
  private stopped = false;

  constructor(
    private readonly hub: WatchHub,
    readonly prefix: string,
    /** only events with a revision above this one are delivered */
    private readonly after: number,
    private readonly cb: WatchCallbacks,
  ) {}

  push(events: readonly WatchEvent[]): void {
    if (this.ended) return;
    let added = false;
    for (const ev of events) {
      if (ev.revision > this.after && ev.kv.key.startsWith(this.prefix)) {
        this.queue.push(ev);
        added = true;
      }
    }
    if (added && !this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => this.deliver());
    }
  }

  /** end the watch with err, delivered asynchronously after any events already queued */
  fail(err: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.hub.remove(this);
    queueMicrotask(() => {
      if (this.stopped) return;
      this.deliver();
      if (!this.stopped) {
        this.stopped = true;
        this.cb.onError?.(err);
      }
    });
  }

  stop(): void {
    this.ended = true;
    this.stopped = true;
    this.queue = [];
    this.hub.remove(this);
  }

  private deliver(): void {
    this.scheduled = false;
    if (this.stopped || this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    try {
      this.cb.onEvents(batch);
    } catch (err) {
      // a consumer that throws ends its own watch and hears why; without onError the error surfaces
      this.stop();
      if (!this.cb.onError) throw err;
      this.cb.onError(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

export class WatchHub {
  private readonly watchers = new Set<ActiveWatch>();

  /** start a watch: replay (events with revision > after, in order) first, then live events */
  add(prefix: string, after: number, replay: readonly WatchEvent[], cb: WatchCallbacks): Watcher {
    const w = new ActiveWatch(this, prefix, after, cb);
    this.watchers.add(w);
    w.push(replay);
    return w;
  }

  /** a watch that could not start: onError is called asynchronously, unless stopped first */
  failed(cb: WatchCallbacks, err: Error): Watcher {
    const w = new ActiveWatch(this, '', 0, cb);
    w.fail(err);
    return w;
  }

  publish(events: readonly WatchEvent[]): void {
    for (const w of this.watchers) w.push(events);
  }

  /** end every watch with err (used on close) */
  failAll(err: Error): void {
    for (const w of [...this.watchers]) w.fail(err);
  }

  remove(w: ActiveWatch): void {
    this.watchers.delete(w);
  }

  /** number of active watchers */
  get size(): number {
    return this.watchers.size;
  }
}
