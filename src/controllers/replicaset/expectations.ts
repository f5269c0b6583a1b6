// Controller expectations (upstream's UIDTrackingControllerExpectations): after a controller asks
// for N creations or deletions it waits until its informer has seen them (or a timeout passes)
// before acting on the same owner again, so a cache that lags behind its own writes never makes it
// create or delete twice.
import type { Clock } from '../../client/index.js';

/** Upstream's ExpectationsTimeout. */
export const expectationsTimeoutMs = 5 * 60_000;

interface Expectation { add: number; del: number; at: number; deleteKeys: Set<string> }

export class ControllerExpectations {
  private readonly items = new Map<string, Expectation>();
  constructor(private readonly clock: Clock, private readonly timeoutMs = expectationsTimeoutMs) {}

  /** True when nothing is outstanding for key, or the expectation is older than the timeout. */
  satisfied(key: string): boolean {
    const e = this.items.get(key);
    if (!e) return true;
    if (e.add <= 0 && e.del <= 0) return true;
    return this.clock.now() - e.at > this.timeoutMs;
  }

  /** Replaces whatever was expected for key. */
  expect(key: string, adds: number, deleteKeys: string[] = []): void {
    this.items.set(key, { add: adds, del: deleteKeys.length, at: this.clock.now(), deleteKeys: new Set(deleteKeys) });
  }

  expectCreations(key: string, n: number): void { this.expect(key, n); }
  expectDeletions(key: string, podKeys: string[]): void { this.expect(key, 0, podKeys); }

  creationObserved(key: string): void {
    const e = this.items.get(key);
    if (e) e.add--;
  }

  /** A deletion of podKey was seen (only counted when it was one we expected). */
  deletionObserved(key: string, podKey: string): void {
    const e = this.items.get(key);
    if (e && e.deleteKeys.delete(podKey)) e.del--;
  }

  /** Lowers an expectation that will not happen (a create that failed). */
  lowerExpectations(key: string, adds: number, deletePodKeys: string[] = []): void {
    const e = this.items.get(key);
    if (!e) return;
    e.add -= adds;
    for (const k of deletePodKeys) if (e.deleteKeys.delete(k)) e.del--;
  }

  delete(key: string): void { this.items.delete(key); }

  /** For tests and debugging. */
  get(key: string): { add: number; del: number } | undefined {
    const e = this.items.get(key);
    return e && { add: e.add, del: e.del };
  }
}
