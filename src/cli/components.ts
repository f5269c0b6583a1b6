// The components of `kyb server` that are clients of the API: controllers (and, as they land, the
// scheduler and simulated nodes). They run in a worker thread so that the API server's event loop
// never waits on them; they reach the API with the admin credential, like any client, through the API
// server's Unix socket in the data dir (plain HTTP: no TLS on every request and watch event) or HTTPS.
// Their Prometheus metrics live in the worker's own prom-client registry; `metrics()` asks the
// worker for them (getMetricsAsJSON) so the main thread's /metrics can merge them in.
import { Worker } from 'node:worker_threads';
import type { MetricJSON } from '../apiserver/metrics.js'; // prometheus
import { trackAgentMetrics } from '../node/node-metrics.js'; // prometheus
import { RestClient } from '../client/index.js';
import { runControllers, leaderElected } from '../controllers/manager.js';
import { fastTiming } from '../controllers/nodelifecycle/node-lifecycle-controller.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { SimulatedNodes } from '../node/simulated/simulated-nodes.js';
import type { AgentRunConfig } from './agent.js';

export interface ComponentsConfig {
  server: string;
  /** the API server's local Unix socket (ApiServerOptions.localSocket): used instead of `server` when set */
  socketPath?: string;
  caPem?: string;
  token?: string;
  /** component or controller names to switch off: 'controllers', 'scheduler', 'namespace', … */
  disable: string[];
  /** per-controller options by controller name */
  controllerOptions?: Record<string, Record<string, unknown>>;
  /** run this many simulated (kwok-style) nodes */
  simulateNodes?: number;
  /** 'fast' shortens node-lifecycle timings (8 s grace) and simulated heartbeats (2 s) */
  profile?: 'default' | 'fast';
  /** scheduler scoring: LeastAllocated (default) or MostAllocated (bin packing) */
  schedulerProfile?: 'LeastAllocated' | 'MostAllocated';
  /** run a node agent (real containers) for this host */
  agent?: AgentRunConfig;
  /** run the cluster DNS server on this host (with the agent) */
  dns?: { clusterIP: string; clusterDomain: string; clusterCIDR: string; nodeName?: string; upstream: string[] | 'host' };
}

export async function runComponents(cfg: ComponentsConfig, signal: AbortSignal): Promise<void> {
  const client = new RestClient({ server: cfg.server, socketPath: cfg.socketPath, caPem: cfg.caPem, token: cfg.token, userAgent: 'kyb-components', qps: 5000, burst: 10000 });
  const disabled = new Set(cfg.disable);
  const runs: Promise<void>[] = [];
  const fast = cfg.profile === 'fast';
  if (!disabled.has('controllers')) {
    const options = { ...(cfg.controllerOptions ?? {}) };
    if (fast) options.nodelifecycle = { ...fastTiming, ...(options.nodelifecycle ?? {}) };
    runs.push(runControllers(client, signal, { disabled, options }));
  }
  if (!disabled.has('scheduler')) {
    const sched = new Scheduler(client, { profile: cfg.schedulerProfile });
    runs.push(leaderElected(client, 'kube-scheduler', signal, (s) => sched.run(s)));
  }
  if (cfg.simulateNodes && cfg.simulateNodes > 0) {
    const sim = new SimulatedNodes(client, { count: cfg.simulateNodes, heartbeatIntervalMs: fast ? 2000 : 10000 });
    runs.push(sim.run(signal));
  }
  if (cfg.agent) {
    const agentCfg = cfg.agent;
    runs.push((async () => {
      const { startAgent } = await import('./agent.js');
      let a;
      try { a = await startAgent(agentCfg); } catch (e) { process.stderr.write(`kyb agent: ${(e as Error).message}\n`); return; }
      const untrack = trackAgentMetrics(a.agent); // prometheus
      if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      untrack(); // prometheus
      await a.stop();
    })());
  }
  if (cfg.dns && !disabled.has('dns')) {
    const d = cfg.dns;
    runs.push((async () => {
      const { ClusterDNS, hostNameservers } = await import('../dns/index.js');
      const { internalIP } = await import('../node/host-info.js');
      const nodeIP = internalIP();
      const dns = new ClusterDNS({
        client, listen: [{ address: nodeIP, port: 53 }], clusterDomain: d.clusterDomain,
        forward: d.upstream === 'host' ? hostNameservers() : d.upstream,
        allowFrom: [d.clusterCIDR, '127.0.0.0/8', `${nodeIP}/32`],
        publish: { clusterIP: d.clusterIP, nodeName: d.nodeName },
      });
      await dns.run(signal).catch((e) => process.stderr.write(`kyb dns: ${(e as Error).message}\n`));
    })());
  }
  await Promise.all(runs);
  client.close();
}

export interface RunningComponents {
  stop(): Promise<void>;
  /** the worker thread's Prometheus metrics (none when the components run in this thread: they are
   *  in this thread's registry already) */
  metrics(): Promise<MetricJSON[][]>;
}

/** The worker's answer to `{ type: 'metrics', id }`. */
export interface MetricsReply { type: 'metrics'; id: number; metrics: MetricJSON[] }

/** Runs the components in a worker thread (or in this thread when inProcess). */
export function startComponents(cfg: ComponentsConfig, inProcess = false): RunningComponents {
  if (inProcess) {
    const ac = new AbortController();
    const done = runComponents(cfg, ac.signal);
    return { async stop() { ac.abort(); await done; }, async metrics() { return []; } };
  }
  const ts = import.meta.url.endsWith('.ts');
  const entry = new URL(ts ? './components-worker.ts' : './components-worker.js', import.meta.url);
  // A young generation of 8 MB for the worker (V8's default is several times that): its scavenges
  // stay cheap, since what survives is the informers' caches, and the server keeps less resident:
  // 101 → 98 MB 2 s after start, and about 7 MB less at its peak under a create load, with no
  // change in CPU per create measured.
  const resourceLimits = { maxYoungGenerationSizeMb: 8 };
  // under tsx (tests, development) the worker registers the TypeScript loader itself
  const w = ts
    ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`, { eval: true, workerData: cfg, resourceLimits })
    : new Worker(entry, { workerData: cfg, resourceLimits });
  w.on('error', (e) => process.stderr.write(`kyb components: ${e.stack ?? e}\n`));
  let alive = true;
  const exited = new Promise<void>((resolve) => w.once('exit', () => { alive = false; resolve(); }));
  // prometheus: requests for the worker's metrics, answered by components-worker.ts
  let nextId = 0;
  const waiting = new Map<number, (m: MetricJSON[][]) => void>();
  w.on('message', (m: MetricsReply) => {
    if (m?.type !== 'metrics') return;
    const r = waiting.get(m.id);
    waiting.delete(m.id);
    r?.([m.metrics]);
  });
  void exited.then(() => { for (const r of waiting.values()) r([]); waiting.clear(); });
  return {
    metrics() {
      if (!alive) return Promise.resolve([]);
      const id = nextId++;
      return new Promise((resolve) => {
        const t = setTimeout(() => { waiting.delete(id); resolve([]); }, 5000);
        waiting.set(id, (m) => { clearTimeout(t); resolve(m); });
        w.postMessage({ type: 'metrics', id });
      });
    },
    async stop() {
      w.postMessage('stop');
      const t = setTimeout(() => void w.terminate(), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
