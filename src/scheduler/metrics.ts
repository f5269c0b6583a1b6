// Prometheus metrics of the scheduler (prom-client, default registry of this thread), with
// kube-scheduler's names and labels:
//
//   scheduler_schedule_attempts_total{result,profile}                 result = scheduled | unschedulable | error
//   scheduler_scheduling_attempt_duration_seconds{result,profile}     from the start of the scheduling
//       cycle to the end of the bind (scheduled), or to the failure
//   scheduler_pending_pods{queue}                                     queue = active | backoff | unschedulable,
//       read from the running schedulers' queues when scraped
//
// profile is the scheduler name (upstream's profile names are scheduler names too).
import { Counter, Gauge, Histogram, register, exponentialBuckets } from 'prom-client';

export type AttemptResult = 'scheduled' | 'unschedulable' | 'error';

export interface PendingPodsSource {
  readonly activeCount: number;
  readonly backoffCount: number;
  readonly unschedulableCount: number;
}

function metric<M>(name: string, make: () => M): M { return (register.getSingleMetric(name) as M | undefined) ?? make(); }

const attempts = metric('scheduler_schedule_attempts_total', () => new Counter({
  name: 'scheduler_schedule_attempts_total',
  help: 'Number of attempts to schedule pods, by the result. \'unschedulable\' means a pod could not be scheduled, while \'error\' means an internal scheduler problem.',
  labelNames: ['result', 'profile'] as const,
}));

const attemptDuration = metric('scheduler_scheduling_attempt_duration_seconds', () => new Histogram({
  name: 'scheduler_scheduling_attempt_duration_seconds',
  help: 'Scheduling attempt latency in seconds (scheduling algorithm + binding)',
  labelNames: ['result', 'profile'] as const,
  buckets: exponentialBuckets(0.001, 2, 15), // as kube-scheduler: 1 ms … 16 s
}));

const queues = new Set<PendingPodsSource>();

metric('scheduler_pending_pods', () => new Gauge({
  name: 'scheduler_pending_pods',
  help: 'Number of pending pods, by the queue type. \'active\' means number of pods in activeQ; \'backoff\' means number of pods in backoffQ; \'unschedulable\' means number of pods in unschedulablePods.',
  labelNames: ['queue'] as const,
  collect() {
    let active = 0, backoff = 0, unschedulable = 0;
    for (const q of queues) { active += q.activeCount; backoff += q.backoffCount; unschedulable += q.unschedulableCount; }
    this.set({ queue: 'active' }, active);
    this.set({ queue: 'backoff' }, backoff);
    this.set({ queue: 'unschedulable' }, unschedulable);
  },
}));

/** Counts one scheduling attempt that began at t0 (performance.now()). */
export function recordAttempt(profile: string, result: AttemptResult, t0: number): void {
  attempts.inc({ result, profile });
  attemptDuration.observe({ result, profile }, (performance.now() - t0) / 1000);
}

/** Reports a scheduling queue's sizes as scheduler_pending_pods until the returned function is called. */
export function trackPendingPods(queue: PendingPodsSource): () => void {
  queues.add(queue);
  return () => { queues.delete(queue); };
}
