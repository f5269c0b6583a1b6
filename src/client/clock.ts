// An injectable clock so the work queue, informer, leader election and event recorder can be
// driven by tests without sleeping. `realClock` uses the host timers; `FakeClock` only moves
// when a test calls step().

export type TimerHandle = object;

export interface Clock {
  /** milliseconds since the epoch */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, Math.max(0, ms));
    return t as unknown as TimerHandle;
  },
  clearTimeout: (h) => clearTimeout(h as unknown as NodeJS.Timeout),
};

/** Resolves after ms on the given clock, or early (without rejecting) when signal aborts.
 *  Returns true when the full time passed, false when aborted. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => { clock.clearTimeout(h); resolve(false); };
    const h = clock.setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(true); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface FakeTimer { at: number; seq: number; fn: () => void; handle: TimerHandle }

/** A manual clock: timers fire only inside step()/setTime(), in due-time order. */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: FakeTimer[] = [];

  constructor(startMs = Date.UTC(2025, 0, 1)) { this.t = startMs; }

  now(): number { return this.t; }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const handle = {} as TimerHandle;
    this.timers.push({ at: this.t + Math.max(0, ms), seq: this.seq++, fn, handle });
    return handle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((x) => x.handle !== handle);
  }

  /** number of timers waiting to fire */
  pending(): number { return this.timers.length; }

  /** Moves time forward by ms, firing every timer that falls due (timers set by fired timers too). */
  step(ms: number): void { this.setTime(this.t + ms); }

  setTime(target: number): void {
    for (;;) {
      let next: FakeTimer | undefined;
      for (const x of this.timers) if (x.at <= target && (!next || x.at < next.at || (x.at === next.at && x.seq < next.seq))) next = x;
      if (!next) break;
      this.timers.splice(this.timers.indexOf(next), 1);
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = Math.max(this.t, target);
  }
}
