// Token bucket (as golang.org/x/time/rate): `qps` tokens per second, at most `burst` stored.
// reserve() takes a token now and says how long the caller must wait before using it.
import { type Clock, realClock, sleep } from './clock.js';

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(readonly qps: number, readonly burst: number, private readonly clock: Clock = realClock) {
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Takes one token (possibly going into debt) and returns the delay in ms until it is usable. */
  reserve(): number {
    if (!(this.qps > 0)) return 0;
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }

  /** Waits for a token. Resolves early (false) if signal aborts. */
  async wait(signal?: AbortSignal): Promise<boolean> {
    const d = this.reserve();
    if (d <= 0) return true;
    return sleep(this.clock, d, signal);
  }
}
