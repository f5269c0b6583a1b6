// Scheduler throughput: an API server (memory store) and the scheduler in this process, N nodes,
// then M pods created as fast as the API takes them (64 concurrent creates); pods/s is measured
// from the first create to the last binding seen on a watch, as kube-scheduler's
// scheduler_perf "SchedulingBasic 5000 nodes / 10000 pods" case (CI floor 680 pods/s).
// Run: node --import tsx bench/scheduler-bench.ts [nodes=5000] [pods=10000] [--worker] [--algorithm-only]
//   --algorithm-only  only the scheduling cycle against an in-memory cache (no API server)
//   --worker  runs the scheduler in a child process (its own event loop and core, as `kyb server` should)
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startApiServer } from '../src/apiserver/server.js';
import { MemoryStore } from '../src/storage/memory/memory-store.js';
import { RestClient } from '../src/client/rest-client.js';
import type { KObject } from '../src/api/types.js';
import { Scheduler, nodesResource, podsResource } from '../src/scheduler/scheduler.js';
import { SchedulerCache } from '../src/scheduler/cache.js';
import { PodInfo } from '../src/scheduler/node-info.js';
import { buildFramework } from '../src/scheduler/registry.js';
import { ScheduleAlgorithm } from '../src/scheduler/schedule-algorithm.js';

const UPSTREAM_FLOOR = 680;
const CONCURRENCY = 64;
/** the scheduler's client limits, as `kyb server` gives its components (src/cli/components.ts); the
 *  RestClient default (200 qps) would cap bindings, and the load's creates, at 200/s */
const SCHEDULER_CLIENT = { qps: 5000, burst: 10000 };

async function pool<T>(items: T[], n: number, f: (x: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => { while (i < items.length) await f(items[i++]); }));
}

function q(sorted: number[], p: number): number { return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN; }

async function workerMain(url: string): Promise<void> {
  const ac = new AbortController();
  const s = new Scheduler(new RestClient({ server: url, ...SCHEDULER_CLIENT }), { recordScheduledEvents: false, onError: () => {} });
  process.on('message', (m) => {
    if (m === 'stop') ac.abort();
    if (m === 'metrics') process.send!({ nodes: s.cache.nodeCount, algo: s.metrics.algorithmMs, scheduled: s.metrics.scheduled });
  });
  await s.run(ac.signal);
  process.send!('stopped');
  process.disconnect();
}

/** The scheduling cycle alone (cache + framework + assume), no API: what the scheduler could do. */
function algorithmOnly(numNodes: number, numPods: number): void {
  const cache = new SchedulerCache();
  const res = { cpu: '32', memory: '256Gi', pods: '110', 'ephemeral-storage': '500Gi' };
  for (let i = 0; i < numNodes; i++) {
    cache.addOrUpdateNode({ metadata: { name: `node-${i}`, labels: { 'kubernetes.io/hostname': `node-${i}`, 'topology.kubernetes.io/zone': `zone-${i % 3}` } }, status: { allocatable: res, capacity: res } });
  }
  const algo = new ScheduleAlgorithm(buildFramework('default-scheduler', { scoring: 'LeastAllocated' }));
  const t = performance.now();
  for (let i = 0; i < numPods; i++) {
    const pi = new PodInfo({ metadata: { name: `pod-${i}`, namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'pause', resources: { requests: { cpu: '100m', memory: '128Mi' } } }] } });
    cache.assumePod(pi, algo.schedule(pi, cache).nodeName);
  }
  const secs = (performance.now() - t) / 1000;
  console.log(`  scheduling cycle alone ${(numPods / secs).toFixed(0)} pods/s (${numNodes} nodes, ${numPods} pods, no API; PodInfo + filter + score + assume)`);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const useWorker = process.argv.includes('--worker');
  const numNodes = Number(args[0] ?? 5000);
  const numPods = Number(args[1] ?? 10000);
  if (process.argv.includes('--algorithm-only')) { algorithmOnly(numNodes, numPods); return; }
  const api = await startApiServer({ store: new MemoryStore(), port: 0, requireAuth: false });
  // the load: no client-side rate limit (qps 0), so that creates come as fast as the API takes them
  const client = new RestClient({ server: api.url, maxSockets: CONCURRENCY, qps: 0 });
  const mem0 = process.memoryUsage().rss;

  let t = performance.now();
  const nodeNames = Array.from({ length: numNodes }, (_, i) => `node-${i}`);
  const res = { cpu: '32', memory: '256Gi', pods: '110', 'ephemeral-storage': '500Gi' };
  await pool(nodeNames, CONCURRENCY, async (name) => {
    await client.create(nodesResource, null, {
      apiVersion: 'v1', kind: 'Node',
      metadata: { name, labels: { 'kubernetes.io/hostname': name, 'topology.kubernetes.io/zone': `zone-${nodeNames.indexOf(name) % 3}` } },
      status: { capacity: res, allocatable: res, conditions: [{ type: 'Ready', status: 'True' }] },
    } as KObject);
  });
  console.log(`created ${numNodes} nodes in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  // the scheduler, synced with every node before the pods come
  const ac = new AbortController();
  let scheduler: Scheduler | undefined;
  let worker: ChildProcess | undefined;
  let stopped: Promise<void>;
  if (useWorker) {
    worker = fork(fileURLToPath(import.meta.url), ['--child', api.url], { execArgv: ['--import', 'tsx'] });
    const w = worker;
    stopped = new Promise((r) => w.on('message', (m) => { if (m === 'stopped') r(); }));
    const metrics = (): Promise<{ nodes: number; algo: number[]; scheduled: number }> => new Promise((r) => { w.once('message', (m) => r(m as never)); w.send('metrics'); });
    while ((await metrics()).nodes < numNodes) await new Promise((r) => setTimeout(r, 100));
  } else {
    scheduler = new Scheduler(new RestClient({ server: api.url, ...SCHEDULER_CLIENT }), { recordScheduledEvents: false, onError: () => {} });
    stopped = scheduler.run(ac.signal);
    while (scheduler.cache.nodeCount < numNodes) await new Promise((r) => setTimeout(r, 50));
  }

  // watch for bindings
  const created = new Map<string, number>();
  const bound = new Map<string, number>();
  let allBound!: () => void;
  const allBoundP = new Promise<void>((r) => { allBound = r; });
  const wac = new AbortController();
  const list = await client.list(podsResource, 'default', { limit: 1 });
  const watching = (async () => {
    for await (const ev of client.watch(podsResource, 'default', { resourceVersion: list.metadata.resourceVersion }, wac.signal)) {
      if (ev.type !== 'MODIFIED' && ev.type !== 'ADDED') continue;
      const o = ev.object as KObject & { spec?: { nodeName?: string } };
      const name = o.metadata!.name!;
      if (o.spec?.nodeName && !bound.has(name)) {
        bound.set(name, performance.now());
        if (bound.size === numPods) allBound();
      }
    }
  })().catch((e) => { if (!wac.signal.aborted) console.error('watch failed', e); });

  const podNames = Array.from({ length: numPods }, (_, i) => `pod-${i}`);
  const start = performance.now();
  await pool(podNames, CONCURRENCY, async (name) => {
    await client.create(podsResource, 'default', {
      apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' },
      spec: { containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10', resources: { requests: { cpu: '100m', memory: '128Mi' } } }] },
    } as KObject);
    created.set(name, performance.now());
  });
  const createdAll = performance.now();
  const timeout = setTimeout(() => { console.error(`timed out: ${bound.size}/${numPods} bound`); allBound(); }, 600_000);
  await allBoundP;
  clearTimeout(timeout);
  const end = Math.max(...bound.values());
  const secs = (end - start) / 1000;
  const rate = bound.size / secs;
  const lat = podNames.filter((n) => bound.has(n)).map((n) => bound.get(n)! - created.get(n)!).sort((a, b) => a - b);
  const algo = scheduler ? [...scheduler.metrics.algorithmMs] : (await new Promise<{ algo: number[] }>((r) => { worker!.once('message', (m) => r(m as never)); worker!.send('metrics'); })).algo;
  algo.sort((a, b) => a - b);

  console.log(`scheduler bench: ${numNodes} nodes, ${numPods} pods, ${useWorker ? 'scheduler in a child process' : 'one thread (API server + scheduler + load)'}`);
  console.log(`  pods created in        ${((createdAll - start) / 1000).toFixed(2)} s (${(numPods / ((createdAll - start) / 1000)).toFixed(0)} creates/s)`);
  console.log(`  all bound after        ${secs.toFixed(2)} s`);
  console.log(`  throughput             ${rate.toFixed(0)} pods/s   (kube-scheduler CI floor ${UPSTREAM_FLOOR} pods/s: ${(rate / UPSTREAM_FLOOR).toFixed(2)}x; target 1000)`);
  console.log(`  create→bound latency   p50 ${q(lat, 0.5).toFixed(0)} ms  p99 ${q(lat, 0.99).toFixed(0)} ms`);
  console.log(`  algorithm per pod      p50 ${q(algo, 0.5).toFixed(3)} ms  p99 ${q(algo, 0.99).toFixed(3)} ms`);
  console.log(`  rss growth             ${((process.memoryUsage().rss - mem0) / 1048576).toFixed(0)} MiB`);
  algorithmOnly(numNodes, numPods);

  wac.abort();
  await watching;
  if (worker) worker.send('stop'); else ac.abort();
  await stopped;
  client.close();
  await api.close();
}

const child = process.argv.indexOf('--child');
if (child < 0) main().catch((e) => { console.error(e); process.exit(1); });
else workerMain(process.argv[child + 1]).catch((e) => { console.error(e); process.exit(1); });
