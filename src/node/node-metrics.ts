// Prometheus metrics of the node agent (prom-client, default registry of this thread), with the
// kubelet's names:
//
//   kubelet_pod_start_duration_seconds            histogram: from the agent first seeing a pod to the
//       pod first reported Running (observed by the pod manager)
//   kubelet_running_pods                          pods with at least one running container
//   kubelet_running_containers{container_state}   containers by state (created | running | exited | unknown)
//
// The two gauges are read from the tracked agents' runtimes when scraped (`trackAgentMetrics`).
// In `kyb server` the agent runs in the components worker thread, whose metrics the main thread's
// `/metrics` merges in; a separate `kyb agent` serves this thread's registry on its streaming server.
import { isMainThread } from 'node:worker_threads';
import { Gauge, Histogram, register, collectDefaultMetrics } from 'prom-client';

/** What the gauges need of an agent: its runtime's containers and their states. */
export interface AgentMetricsSource {
  runtime: {
    list(): { id: string; podUID: string }[];
    info(id: string): Promise<{ state: string } | undefined>;
  };
}

function metric<M>(name: string, make: () => M): M { return (register.getSingleMetric(name) as M | undefined) ?? make(); }

/** The kubelet's pod start buckets (seconds). */
export const POD_START_BUCKETS = [0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600];

const podStart = metric('kubelet_pod_start_duration_seconds', () => new Histogram({
  name: 'kubelet_pod_start_duration_seconds',
  help: 'Duration in seconds from the agent seeing a pod for the first time to the pod starting to run',
  buckets: POD_START_BUCKETS,
}));

const agents = new Set<AgentMetricsSource>();

/** States of every tracked agent's containers, and the pods with a running container. */
async function snapshot(): Promise<{ pods: number; states: Map<string, number> }> {
  const states = new Map<string, number>([['created', 0], ['running', 0], ['exited', 0], ['unknown', 0]]);
  const pods = new Set<string>();
  for (const a of agents) {
    const metas = a.runtime.list();
    const infos = await Promise.all(metas.map((m) => a.runtime.info(m.id).catch(() => undefined)));
    metas.forEach((m, i) => {
      const st = infos[i]?.state ?? 'unknown';
      states.set(st, (states.get(st) ?? 0) + 1);
      if (st === 'running') pods.add(m.podUID);
    });
  }
  return { pods: pods.size, states };
}

// one runtime walk serves both gauges of a scrape
let pending: Promise<{ pods: number; states: Map<string, number> }> | undefined;
function shared(): Promise<{ pods: number; states: Map<string, number> }> {
  if (!pending) {
    pending = snapshot();
    const clear = (): void => { pending = undefined; };
    pending.then(clear, clear);
  }
  return pending;
}

metric('kubelet_running_pods', () => new Gauge({
  name: 'kubelet_running_pods',
  help: 'Number of pods that have a running container',
  async collect() {
    if (!agents.size) return;
    this.set((await shared()).pods);
  },
}));

metric('kubelet_running_containers', () => new Gauge({
  name: 'kubelet_running_containers',
  help: 'Number of containers currently running',
  labelNames: ['container_state'] as const,
  async collect() {
    if (!agents.size) return;
    for (const [state, n] of (await shared()).states) this.set({ container_state: state }, n);
  },
}));

// pods already observed (a status write may race the informer's copy of the pod); oldest dropped first
const started = new Set<string>();
const MAX_STARTED = 10_000;

/** Records a pod's start, once per pod UID: firstSeen is when the agent first saw it (ISO time or
 *  ms since the epoch). */
export function observePodStart(uid: string, firstSeen: string | number): void {
  if (started.has(uid)) return;
  started.add(uid);
  if (started.size > MAX_STARTED) started.delete(started.values().next().value!);
  const t = typeof firstSeen === 'number' ? firstSeen : Date.parse(firstSeen);
  if (Number.isFinite(t)) podStart.observe(Math.max(0, (Date.now() - t) / 1000));
}

/** Reports an agent's containers in kubelet_running_pods / kubelet_running_containers until the
 *  returned function is called. Tracking the same agent twice is harmless. */
export function trackAgentMetrics(agent: AgentMetricsSource): () => void {
  agents.add(agent);
  return () => { agents.delete(agent); };
}

/** Starts prom-client's process and Node.js metrics (idempotent). For a separate `kyb agent`
 *  process; a no-op off the main thread, so calling it in `kyb server`'s components worker cannot
 *  make the merged /metrics count the process twice. */
export function collectProcessMetrics(): void {
  if (isMainThread && !register.getSingleMetric('process_cpu_user_seconds_total')) collectDefaultMetrics();
}
