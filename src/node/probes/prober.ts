// The prober: one worker per (container, probe kind) that runs the probe on its period and reports
// the thresholded result, as the kubelet's probe workers do (semantics read from upstream):
//
// - The first probe runs as soon as the probe is added, then every periodSeconds (on the injected
//   clock). A tick that comes before initialDelaySeconds have passed since the container started
//   (`startedAt`, default: when added) is skipped, so the first real probe is the first tick at or
//   after the delay.
// - Each probe has timeoutSeconds. A failure counts only after failureThreshold consecutive failures,
//   a success after successThreshold consecutive successes (liveness and startup: 1).
// - Initial state: readiness false, liveness true, startup "not yet known" (reads false). onResult is
//   called only when the thresholded state changes; startup reports its first thresholded result
//   either way (a startup failure must reach the worker even though the state "was" not-started).
// - After a liveness or startup failure is reported the worker holds (stops probing): the pod worker
//   restarts the container and adds a fresh probe for the new one. After startup succeeds it stops
//   too (its job is done).
// - Startup gating is the pod worker's job: add liveness/readiness after the startup probe reported
//   ok (pass the container's startedAt so initialDelaySeconds still counts from container start).
// - A probe that cannot be run (named port missing, exec callback throwing) is an error: reported to
//   onAttempt, never counted, as upstream throws such results away.
//
// Messages read like the kubelet's events: `Liveness probe failed: HTTP probe failed with
// statuscode: 500`, `Readiness probe failed: dial tcp 127.0.0.1:1: connect: connection refused`,
// `Readiness probe warning: Probe terminated redirects, …`, `Liveness probe errored: port http not found`.
// The probe's terminationGracePeriodSeconds is not used here: the pod worker reads it from the
// probe (falling back to the pod's) when it kills a container after a liveness/startup failure.
import type { Container, Probe } from 'kubernetes-types/core/v1.js';
import { realClock, type Clock, type TimerHandle } from '../../client/clock.js';
import { ProbeError, runProbeHandler, PROBE_USER_AGENT, type ExecProbeFn, type ExecResult, type ProbeOutcome } from './handlers.js';

export type ProbeKind = 'liveness' | 'readiness' | 'startup';

export interface ProbeResult { ok: boolean; message: string }

export interface ProbeSpec {
  probe: Probe;
  kind: ProbeKind;
  podIP: string;
  container: Container;
  /** ms since the epoch on the prober's clock when the container started (default: now) */
  startedAt?: number;
  /** runs exec probes for this container (overrides the Prober's exec option) */
  exec?: ExecProbeFn;
}

export interface ProbeHandle {
  /** Stops probing; no callback fires afterwards. Idempotent. */
  stop(): void;
  /** the current thresholded state (startup reads false until it succeeded) */
  readonly ok: boolean;
  /** false once the worker stopped: stop() was called, liveness/startup failed, or startup succeeded */
  readonly active: boolean;
}

export interface ProberOptions {
  clock?: Clock;
  /** default exec callback, given the key the probe was added under */
  exec?: (key: string, command: string[], timeoutMs: number) => Promise<ExecResult>;
  /** User-Agent of HTTP probes (default kube-probe/1.32) */
  userAgent?: string;
}

/** Calls a user callback; an exception there must not stop the probe loop. */
function safeCall(fn: ((r: ProbeResult) => void) | undefined, r: ProbeResult): void {
  try { fn?.(r); } catch (e) { console.error('probe result callback threw:', e); }
}

const kindTitle: Record<ProbeKind, string> = { liveness: 'Liveness', readiness: 'Readiness', startup: 'Startup' };

class ProbeWorker implements ProbeHandle {
  private state: boolean | undefined;
  private lastResult: boolean | undefined;
  private run = 0;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private readonly startedAt: number;
  private readonly periodMs: number;
  private readonly timeoutMs: number;
  private readonly successThreshold: number;
  private readonly failureThreshold: number;
  private readonly initialDelaySeconds: number;

  constructor(
    private readonly clock: Clock,
    private readonly spec: ProbeSpec,
    private readonly exec: ExecProbeFn | undefined,
    private readonly userAgent: string,
    private readonly onResult: (r: ProbeResult) => void,
    private readonly onAttempt: ((r: ProbeResult) => void) | undefined,
    private readonly onStopped: () => void,
  ) {
    const p = spec.probe;
    const pos = (v: number | undefined, d: number): number => (typeof v === 'number' && v > 0 ? v : d);
    this.periodMs = pos(p.periodSeconds, 10) * 1000;
    this.timeoutMs = pos(p.timeoutSeconds, 1) * 1000;
    this.failureThreshold = pos(p.failureThreshold, 3);
    this.successThreshold = spec.kind === 'readiness' ? pos(p.successThreshold, 1) : 1;
    this.initialDelaySeconds = typeof p.initialDelaySeconds === 'number' && p.initialDelaySeconds > 0 ? p.initialDelaySeconds : 0;
    this.startedAt = spec.startedAt ?? clock.now();
    this.state = spec.kind === 'readiness' ? false : spec.kind === 'liveness' ? true : undefined;
  }

  get ok(): boolean { return this.state === true; }
  get active(): boolean { return !this.stopped; }

  start(): void {
    const t = this.clock.now();
    void Promise.resolve().then(() => this.tick(t));
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.onStopped();
  }

  private schedule(tickAt: number): void {
    if (this.stopped) return;
    let next = tickAt + this.periodMs;
    const now = this.clock.now();
    // a probe that outlived its period: one missed tick fires right away, the rest are dropped
    if (next < now) next = tickAt + Math.floor((now - tickAt) / this.periodMs) * this.periodMs;
    this.timer = this.clock.setTimeout(() => { this.timer = undefined; void this.tick(next); }, next - now);
  }

  private async tick(tickAt: number): Promise<void> {
    if (this.stopped) return;
    const elapsedSeconds = Math.trunc((this.clock.now() - this.startedAt) / 1000);
    if (elapsedSeconds >= this.initialDelaySeconds) {
      await this.probeOnce();
      if (this.stopped) return;
    }
    this.schedule(tickAt);
  }

  private async probeOnce(): Promise<void> {
    const title = kindTitle[this.spec.kind];
    let outcome: ProbeOutcome;
    try {
      outcome = await runProbeHandler(this.spec.probe, {
        podIP: this.spec.podIP, container: this.spec.container, timeoutMs: this.timeoutMs,
        clock: this.clock, exec: this.exec, userAgent: this.userAgent,
      });
    } catch (e) {
      if (this.stopped) return;
      const msg = e instanceof ProbeError || e instanceof Error ? e.message : String(e);
      safeCall(this.onAttempt, { ok: false, message: `${title} probe errored: ${msg}` });
      return;
    }
    if (this.stopped) return;
    const ok = outcome.result !== 'failure';
    const message = outcome.result === 'failure' ? `${title} probe failed: ${outcome.output}`
      : outcome.result === 'warning' ? `${title} probe warning: ${outcome.output}`
        : `${title} probe succeeded`;
    if (this.lastResult === ok) this.run++;
    else { this.lastResult = ok; this.run = 1; }
    safeCall(this.onAttempt, { ok, message });
    if ((!ok && this.run < this.failureThreshold) || (ok && this.run < this.successThreshold)) return;
    if (this.state !== ok) {
      this.state = ok;
      safeCall(this.onResult, { ok, message });
    }
    if (this.stopped) return;
    if (!ok && this.spec.kind !== 'readiness') this.stop(); // on hold until the container is restarted
    else if (ok && this.spec.kind === 'startup') this.stop(); // started; nothing more to check
  }
}

export class Prober {
  private readonly clock: Clock;
  private readonly workers = new Map<string, ProbeWorker>();

  constructor(private readonly o: ProberOptions = {}) {
    this.clock = o.clock ?? realClock;
  }

  /**
   * Starts probing. `key` names the worker (e.g. `<podUID>/<container>/<kind>`); adding a key that
   * exists replaces the old worker. onResult fires on each change of the thresholded state; onAttempt
   * (optional) after every probe run, for per-failure events like the kubelet's `Unhealthy`.
   */
  add(key: string, spec: ProbeSpec, onResult: (r: ProbeResult) => void, onAttempt?: (r: ProbeResult) => void): ProbeHandle {
    this.workers.get(key)?.stop();
    const exec = spec.exec ?? (this.o.exec ? (cmd: string[], ms: number) => this.o.exec!(key, cmd, ms) : undefined);
    const w: ProbeWorker = new ProbeWorker(this.clock, spec, exec, this.o.userAgent ?? PROBE_USER_AGENT, onResult, onAttempt, () => {
      if (this.workers.get(key) === w) this.workers.delete(key);
    });
    this.workers.set(key, w);
    w.start();
    return w;
  }

  /** Stops the worker under key, if any. */
  remove(key: string): void { this.workers.get(key)?.stop(); }

  /** Stops every worker whose key starts with prefix (e.g. a pod UID + '/'); all when omitted. */
  stopAll(prefix = ''): void {
    for (const [k, w] of [...this.workers]) if (k.startsWith(prefix)) w.stop();
  }

  /** The handle under key while its worker is active. */
  get(key: string): ProbeHandle | undefined { return this.workers.get(key); }

  /** number of active workers */
  get size(): number { return this.workers.size; }
}
