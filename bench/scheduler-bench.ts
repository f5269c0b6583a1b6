// Scheduler throughput: an API server (memory store) and the scheduler in this process, N nodes,
// then M pods created as fast as the API takes them (64 concurrent creates); pods/s is measured
// from the first create to the last binding seen on a watch, as kube-scheduler's
// scheduler_perf "SchedulingBasic 5000 nodes / 10000 pods" case (CI floor 680 pods/s).
// Run: node --import tsx bench/scheduler-bench.ts [nodes=5000] [pods=10000] [--worker] [--algorithm-only]
//   --algorithm-only  only the scheduling cycle against an in-memory cache (no API server)
//   --worker  runs the scheduler in a child process (its own event loop, as `kyb server` runs it in a
//             worker thread); the load (the creates and the watch that sees the bindings) stays in
//             the API server's process, as scheduler_perf creates pods from the API server's process
//   --load-process  with --worker: the load in a second child process instead, so that the bench's
//             process is the API server alone (on 2 cores the three processes then share them)
//   --backlog  every pod is created before the scheduler process starts: the scheduler's own
//             throughput, not bounded by the API server's create rate
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

/** this process's CPU time (user + system) in ms */
function cpuMs(): number { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }

function q(sorted: number[], p: number): number { return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN; }

async function workerMain(url: string): Promise<void> {
  const ac = new AbortController();
  const t0 = performance.now();
  const s = new Scheduler(new RestClient({ server: url, ...SCHEDULER_CLIENT }), { recordScheduledEvents: false, onError: () => {} });
  process.on('message', (m) => {
    if (m === 'stop') ac.abort();
    if (m === 'metrics') process.send!({ nodes: s.cache.nodeCount, algo: s.metrics.algorithmMs, scheduled: s.metrics.scheduled, cpu: cpuMs(), startMs: performance.now() - t0 });
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

interface LoadResult { createSecs: number; boundSecs: number; bound: number; lat: number[]; cpu: number }

/** The load: creates numPods pods with CONCURRENCY requests in flight and watches for their bindings;
 *  durations are from the first create. */
async function runLoad(client: RestClient, numPods: number): Promise<LoadResult> {
  const created = new Map<string, number>();
  const bound = new Map<string, number>();
  let allBound!: () => void;
  const allBoundP = new Promise<void>((r) => { allBound = r; });
  const wac = new AbortController();
  const cpu0 = cpuMs();
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
  const lat = podNames.filter((n) => bound.has(n)).map((n) => bound.get(n)! - created.get(n)!).sort((a, b) => a - b);
  const end = Math.max(...bound.values());
  wac.abort();
  await watching;
  return { createSecs: (createdAll - start) / 1000, boundSecs: (end - start) / 1000, bound: bound.size, lat, cpu: cpuMs() - cpu0 };
}

async function loadInChild(url: string, numPods: number): Promise<LoadResult> {
  const c = fork(fileURLToPath(import.meta.url), ['--load', url, String(numPods)], { execArgv: ['--import', 'tsx', ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [])] });
  return new Promise((resolve, reject) => {
    c.once('message', (m) => resolve(m as LoadResult));
    c.once('exit', (code) => reject(new Error(`the load process exited with ${code}`)));
  });
}

async function loadMain(url: string, numPods: number): Promise<void> {
  const client = new RestClient({ server: url, maxSockets: CONCURRENCY, qps: 0 });
  const r = await runLoad(client, numPods);
  client.close();
  process.send!(r, () => process.disconnect());
}

/** --backlog: the load process creates every pod first, then (told 'go' once the scheduler process
 *  is being started) watches them get bound; times are epoch ms so that processes can compare them. */
async function backlogMain(url: string, numPods: number): Promise<void> {
  const client = new RestClient({ server: url, maxSockets: CONCURRENCY, qps: 0 });
  const t0 = performance.now();
  await pool(Array.from({ length: numPods }, (_, i) => `pod-${i}`), CONCURRENCY, async (name) => {
    await client.create(podsResource, 'default', {
      apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' },
      spec: { containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10', resources: { requests: { cpu: '100m', memory: '128Mi' } } }] },
    } as KObject);
  });
  const createSecs = (performance.now() - t0) / 1000;
  const list = await client.list(podsResource, 'default', { limit: 1 });
  const cpu0 = cpuMs();
  const bound = new Set<string>();
  let first = 0;
  let last = 0;
  const wac = new AbortController();
  const done = new Promise<void>((resolve) => {
    (async () => {
      for await (const ev of client.watch(podsResource, 'default', { resourceVersion: list.metadata.resourceVersion }, wac.signal)) {
        const o = ev.object as KObject & { spec?: { nodeName?: string } };
        if (ev.type !== 'MODIFIED' || !o.spec?.nodeName || bound.has(o.metadata!.name!)) continue;
        bound.add(o.metadata!.name!);
        last = Date.now();
        if (!first) first = last;
        if (bound.size === numPods) resolve();
      }
    })().catch((e) => { if (!wac.signal.aborted) console.error('watch failed', e); });
  });
  process.send!({ createSecs });
  await done;
  wac.abort();
  client.close();
  process.send!({ first, last, bound: bound.size, cpu: cpuMs() - cpu0 }, () => process.disconnect());
}

/** --backlog: every pod exists before the scheduler starts; from the scheduler process's start to the
 *  last binding seen on a watch. The API server then takes only the bindings, and the figure is the
 *  scheduler's own throughput (its list of 5,000 nodes and 10,000 pods included). */
async function backlogRun(url: string, numNodes: number, numPods: number): Promise<void> {
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const load = fork(fileURLToPath(import.meta.url), ['--backlog-load', url, String(numPods)], { execArgv: ['--import', 'tsx', ...prof] });
  const msgs: unknown[] = [];
  let wake: (() => void) | undefined;
  load.on('message', (m) => { msgs.push(m); wake?.(); });
  const next = async <T>(): Promise<T> => { while (!msgs.length) await new Promise<void>((r) => { wake = r; }); return msgs.shift() as T; };
  const { createSecs } = await next<{ createSecs: number }>();
  console.log(`created ${numPods} pods in ${createSecs.toFixed(1)} s (${(numPods / createSecs).toFixed(0)} creates/s), no scheduler running`);
  const apiCpu0 = cpuMs();
  const start = Date.now();
  const w = fork(fileURLToPath(import.meta.url), ['--child', url], { execArgv: ['--import', 'tsx', ...prof] });
  const wmsgs: unknown[] = [];
  let wwake: (() => void) | undefined;
  w.on('message', (m) => { wmsgs.push(m); wwake?.(); });
  const wnext = async <T>(): Promise<T> => { while (!wmsgs.length) await new Promise<void>((r) => { wwake = r; }); return wmsgs.shift() as T; };
  const r = await next<{ first: number; last: number; bound: number; cpu: number }>();
  const apiCpu = cpuMs() - apiCpu0;
  w.send('metrics');
  const m = await wnext<{ algo: number[]; cpu: number }>();
  w.send('stop');
  while ((await wnext<unknown>()) !== 'stopped') { /* metrics answers */ }
  const secs = (r.last - start) / 1000;
  const algo = m.algo.sort((a, b) => a - b);
  console.log(`scheduler bench (--backlog): ${numNodes} nodes, ${numPods} pending pods, then the scheduler process starts`);
  console.log(`  scheduler start → first binding   ${((r.first - start) / 1000).toFixed(2)} s (process start, list and watch of nodes and pods)`);
  console.log(`  scheduler start → all bound       ${secs.toFixed(2)} s`);
  console.log(`  throughput                        ${(r.bound / secs).toFixed(0)} pods/s over the whole run, ${(r.bound / ((r.last - r.first) / 1000)).toFixed(0)} pods/s from the first binding to the last (kube-scheduler CI floor ${UPSTREAM_FLOOR}; target 1000)`);
  console.log(`  algorithm per pod                 p50 ${q(algo, 0.5).toFixed(3)} ms  p99 ${q(algo, 0.99).toFixed(3)} ms`);
  console.log(`  CPU per pod                       API server ${(apiCpu / numPods).toFixed(3)} ms, scheduler ${(m.cpu / numPods).toFixed(3)} ms (with its start), watcher ${(r.cpu / numPods).toFixed(3)} ms`);
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
  if (process.argv.includes('--backlog')) { await backlogRun(api.url, numNodes, numPods); client.close(); await api.close(); return; }

  // the scheduler, synced with every node before the pods come
  const ac = new AbortController();
  let scheduler: Scheduler | undefined;
  let worker: ChildProcess | undefined;
  let stopped: Promise<void>;
  let workerMetrics: (() => Promise<{ nodes: number; algo: number[]; scheduled: number; cpu: number }>) | undefined;
  if (useWorker) {
    worker = fork(fileURLToPath(import.meta.url), ['--child', api.url], { execArgv: ['--import', 'tsx', ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [])] });
    const w = worker;
    stopped = new Promise((r) => w.on('message', (m) => { if (m === 'stopped') r(); }));
    workerMetrics = (): Promise<{ nodes: number; algo: number[]; scheduled: number; cpu: number }> => new Promise((r) => { w.once('message', (m) => r(m as never)); w.send('metrics'); });
    while ((await workerMetrics!()).nodes < numNodes) await new Promise((r) => setTimeout(r, 100));
  } else {
    scheduler = new Scheduler(new RestClient({ server: api.url, ...SCHEDULER_CLIENT }), { recordScheduledEvents: false, onError: () => {} });
    stopped = scheduler.run(ac.signal);
    while (scheduler.cache.nodeCount < numNodes) await new Promise((r) => setTimeout(r, 50));
  }

  const apiCpu0 = cpuMs();
  const schedCpu0 = workerMetrics ? (await workerMetrics()).cpu : 0;
  const loadProcess = useWorker && process.argv.includes('--load-process');
  const r = loadProcess ? await loadInChild(api.url, numPods) : await runLoad(client, numPods);
  const apiCpu = cpuMs() - apiCpu0;
  const schedCpu = workerMetrics ? (await workerMetrics()).cpu - schedCpu0 : 0;
  const rate = r.bound / r.boundSecs;
  const algo = scheduler ? [...scheduler.metrics.algorithmMs] : (await workerMetrics!()).algo;
  algo.sort((a, b) => a - b);

  console.log(`scheduler bench: ${numNodes} nodes, ${numPods} pods, ${!useWorker ? 'one thread (API server + scheduler + load)' : loadProcess ? 'API server alone in this process; the scheduler and the load each in a child process' : 'API server and load in this process, the scheduler in a child process'}`);
  console.log(`  pods created in        ${r.createSecs.toFixed(2)} s (${(numPods / r.createSecs).toFixed(0)} creates/s)`);
  console.log(`  all bound after        ${r.boundSecs.toFixed(2)} s`);
  console.log(`  throughput             ${rate.toFixed(0)} pods/s   (kube-scheduler CI floor ${UPSTREAM_FLOOR} pods/s: ${(rate / UPSTREAM_FLOOR).toFixed(2)}x; target 1000)`);
  console.log(`  create→bound latency   p50 ${q(r.lat, 0.5).toFixed(0)} ms  p99 ${q(r.lat, 0.99).toFixed(0)} ms`);
  console.log(`  algorithm per pod      p50 ${q(algo, 0.5).toFixed(3)} ms  p99 ${q(algo, 0.99).toFixed(3)} ms`);
  if (loadProcess) console.log(`  CPU per pod            API server ${(apiCpu / numPods).toFixed(3)} ms, scheduler ${(schedCpu / numPods).toFixed(3)} ms, load ${(r.cpu / numPods).toFixed(3)} ms`);
  else if (useWorker) console.log(`  CPU per pod            API server with the load ${(apiCpu / numPods).toFixed(3)} ms, scheduler ${(schedCpu / numPods).toFixed(3)} ms`);
  else console.log(`  CPU per pod            ${(apiCpu / numPods).toFixed(3)} ms (API server, scheduler and load on one thread)`);
  console.log(`  rss growth             ${((process.memoryUsage().rss - mem0) / 1048576).toFixed(0)} MiB`);
  algorithmOnly(numNodes, numPods);

  if (worker) worker.send('stop'); else ac.abort();
  await stopped;
  client.close();
  await api.close();
}

const child = process.argv.indexOf('--child');
const load = process.argv.indexOf('--load');
const backlog = process.argv.indexOf('--backlog-load');
if (backlog >= 0) backlogMain(process.argv[backlog + 1], Number(process.argv[backlog + 2])).catch((e) => { console.error(e); process.exit(1); });
else if (load >= 0) loadMain(process.argv[load + 1], Number(process.argv[load + 2])).catch((e) => { console.error(e); process.exit(1); });
else if (child < 0) main().catch((e) => { console.error(e); process.exit(1); });
else workerMain(process.argv[child + 1]).catch((e) => { console.error(e); process.exit(1); });
