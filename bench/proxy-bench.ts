// Service proxy figures, nftables beside iptables (runtime-notes §3 has the raw tool timings):
//
//   1. Programming time, straight through each backend (no API): N Services (1,000 and 5,000 by
//      default) with 2 endpoints each, TCP, ClusterIP. Per backend and N: the JS time to render the
//      transaction, a first load into nothing, a full resync (replace everything with the same),
//      one-Service deltas with N loaded (an endpoint replaced), and the removal of everything.
//      Medians over --runs runs (deltas: --deltas samples, p50/p99). Prints the iptables/nft ratio.
//   2. EndpointSlice change → rules programmed, end to end: a `kyb server` in its own process
//      (memory store, no agent) holding N Services + EndpointSlices, and a ServiceProxy in this
//      process. Latency = from just before the PUT of a changed EndpointSlice to the moment the proxy
//      reports that resourceVersion programmed in the kernel (API write + watch delivery + planning
//      + the kernel transaction), --updates sequential samples per backend: p50/p99/max. Also the
//      time from proxy start to the first full sync with all N Services (informer list + full sync).
//
// Every table, chain and hook it makes has a random name (table kybb<hex>, chains KYBB<hex>-…)
// and is removed at the end, also after an error or Ctrl-C; so are the server and its data dir.
// Service addresses are 10.43.128.0/17-ish and endpoints 10.254.x.y, used by nothing on the host;
// no traffic is sent. Needs root; a backend that cannot run is skipped with the reason.
//
//   node --import tsx bench/proxy-bench.ts [--sizes 1000,5000] [--runs 3] [--deltas 20]
//                                          [--updates 100] [--no-e2e] [--dir /tmp]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { RestClient } from '../src/client/index.js';
import type { KObject } from '../src/api/types.js';
import { IptablesBackend, NftBackend, ServiceProxy, type BackendName, type ServicePortPlan } from '../src/proxy/index.js';
import { renderNftFull } from '../src/proxy/nft-backend.js';
import { parseSave, renderIptFull } from '../src/proxy/iptables-backend.js';
import { median, ms, summarize } from './bench-common.js';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,5000' },
    runs: { type: 'string', default: '3' },
    deltas: { type: 'string', default: '20' },
    updates: { type: 'string', default: '100' },
    'no-e2e': { type: 'boolean', default: false },
    dir: { type: 'string', default: tmpdir() },
  },
});
const SIZES = args.sizes!.split(',').map(Number).filter((n) => n > 0);
const RUNS = Math.max(1, Number(args.runs));
const DELTAS = Math.max(1, Number(args.deltas));
const UPDATES = Math.max(1, Number(args.updates));
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CIDR = '10.254.0.0/16';
const log = (s: string): void => { process.stderr.write(`[bench] ${s}\n`); };
const sleep = (n: number): Promise<void> => new Promise((r) => setTimeout(r, n));

const tables = new Set<string>();
const children: ChildProcess[] = [];
let work = '';

async function cleanupAll(): Promise<void> {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const t of tables) { try { await ServiceProxy.cleanup({ tableName: t }); } catch (e) { log(`cleanup ${t}: ${(e as Error).message}`); } }
  tables.clear();
  if (work) rmSync(work, { recursive: true, force: true });
}

function newTable(): string { const t = `kybb${randomBytes(3).toString('hex')}`; tables.add(t); return t; }

function canRun(b: BackendName): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  if (b === 'nftables') return spawnSync('nft', ['list', 'tables'], { stdio: 'ignore' }).status === 0 ? undefined : '`nft list tables` fails';
  return spawnSync('iptables-save', ['-t', 'nat'], { stdio: 'ignore' }).status === 0 ? undefined : 'iptables-save fails';
}

/** Service i: cluster IP in 10.43.128.0/17 + i, endpoints 10.254.(i>>8).(i&255) on two ports. */
function svcIP(i: number): string { const n = 128 * 256 + i; return `10.43.${n >> 8}.${n & 255}`; }
function epIPs(i: number, gen = 0): string[] {
  const b = (i * 2 + gen) % 60000;
  return [`10.254.${b >> 8}.${b & 255}`, `10.254.${(b + 1) >> 8}.${(b + 1) & 255}`];
}

function plans(n: number, gen = 0): ServicePortPlan[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `bench/svc-${i}/tcp/http`, serviceKey: `bench/svc-${i}`, namespace: 'bench', name: `svc-${i}`, portName: 'http',
    protocol: 'tcp' as const, port: 80, clusterIP: svcIP(i), clusterIPs: [svcIP(i)], externalIPs: [],
    endpoints: epIPs(i, gen).map((ip) => ({ ip, port: 8080 })),
  }));
}

async function timed(f: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

interface Programming { render: number; first: number; resync: number; delta: { p50: number; p99: number }; remove: number }

async function programming(b: BackendName, n: number): Promise<Programming> {
  const first: number[] = [];
  const resync: number[] = [];
  const remove: number[] = [];
  const deltas: number[] = [];
  const ps = plans(n);
  const render = median(Array.from({ length: RUNS }, () => {
    const t0 = performance.now();
    if (b === 'nftables') renderNftFull('x', ps, CIDR);
    else renderIptFull('x', ps, CIDR, parseSave('', 'X'));
    return performance.now() - t0;
  }));
  for (let r = 0; r < RUNS; r++) {
    const t = newTable();
    const be = b === 'nftables' ? new NftBackend({ tableName: t, clusterCIDR: CIDR }) : new IptablesBackend({ tableName: t, clusterCIDR: CIDR });
    try {
      first.push(await timed(() => be.fullSync(ps)));
      resync.push(await timed(() => be.fullSync(ps)));
      if (r === 0) {
        for (let d = 0; d < DELTAS; d++) {
          const i = Math.floor(Math.random() * n);
          const old = ps[i];
          const next = { ...old, endpoints: [old.endpoints[0], { ip: `10.253.${d >> 8}.${d & 255}`, port: 8080 }] };
          deltas.push(await timed(() => be.deltaSync([{ key: old.key, old, new: next }])));
          ps[i] = next;
        }
      }
    } finally {
      remove.push(await timed(() => ServiceProxy.cleanup({ tableName: t })));
      tables.delete(t);
    }
    log(`${b} ${n}: run ${r + 1}/${RUNS} first ${ms(first.at(-1)!)}, resync ${ms(resync.at(-1)!)}, remove ${ms(remove.at(-1)!)}`);
  }
  const d = summarize(deltas);
  return { render, first: median(first), resync: median(resync), delta: { p50: d.p50, p99: d.p99 }, remove: median(remove) };
}

// ---- end to end --------------------------------------------------------------------------------

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); });
  });
}

async function startKyb(): Promise<RestClient> {
  const dataDir = join(work, 'kyb');
  const port = await freePort();
  const proc = spawn(process.execPath, ['--import', 'tsx', '-e', "import('./src/cli/main.ts').then(m=>m.main(process.argv.slice(1)))",
    'server', '--data-dir', dataDir, '--https-listen-port', String(port), '--disable-agent', '--datastore-endpoint', 'memory://'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'ignore'] });
  children.push(proc);
  const kubeconfig = join(dataDir, 'kubeconfig.yaml');
  const end = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error('kyb server exited');
    if (existsSync(kubeconfig)) {
      const c = RestClient.fromKubeconfig(kubeconfig);
      try { await c.raw('GET', '/readyz'); return c; } catch { c.close(); }
    }
    if (Date.now() > end) throw new Error('kyb server did not become ready');
    await sleep(100);
  }
}

const SERVICES = { group: '', version: 'v1', plural: 'services' };
const SLICES = { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices' };

function sliceObj(i: number, gen: number, rv?: string): KObject {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: `svc-${i}-x`, namespace: 'bench', labels: { 'kubernetes.io/service-name': `svc-${i}` }, ...(rv ? { resourceVersion: rv } : {}) },
    addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: epIPs(i, gen).map((ip) => ({ addresses: [ip], conditions: { ready: true } })),
  };
}

async function pool<T>(items: T[], c: number, f: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: c }, async () => { while (next < items.length) await f(items[next++]); }));
}

/** Grows the cluster to n Services (+ one slice each). */
async function fill(client: RestClient, from: number, n: number): Promise<void> {
  const idx = Array.from({ length: n - from }, (_, k) => from + k);
  await pool(idx, 32, async (i) => {
    await client.create(SERVICES, 'bench', { apiVersion: 'v1', kind: 'Service', metadata: { name: `svc-${i}`, namespace: 'bench' }, spec: { clusterIP: svcIP(i), ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] } });
    await client.create(SLICES, 'bench', sliceObj(i, 0));
  });
}

interface E2E { start: number; lat: ReturnType<typeof summarize>; write: ReturnType<typeof summarize> }

async function endToEnd(client: RestClient, b: BackendName, n: number): Promise<E2E> {
  const tableName = newTable();
  const writes: number[] = [];
  let waiter: (() => void) | undefined;
  const proxy = new ServiceProxy({
    client, nodeName: 'bench', nodeIPs: [], clusterCIDR: CIDR, backend: b, tableName, syncPeriodMs: 3_600_000,
    log: (m) => { if (!/^using /.test(m)) log(`proxy: ${m}`); },
    onSync: (r) => { if (r.kind === 'delta' && !r.error) writes.push(r.durationMs); waiter?.(); },
  });
  const ac = new AbortController();
  const t0 = performance.now();
  const running = proxy.run(ac.signal);
  try {
    while (proxy.stats.fullSyncs === 0) await new Promise<void>((r) => { waiter = r; });
    const start = performance.now() - t0;
    const lat: number[] = [];
    const gens = new Map<number, number>();
    for (let u = 0; u < UPDATES; u++) {
      const i = Math.floor(Math.random() * n);
      const gen = (gens.get(i) ?? 0) + 1;
      gens.set(i, gen);
      const cur = await client.get(SLICES, 'bench', `svc-${i}-x`);
      const t1 = performance.now();
      const out = await client.update(SLICES, 'bench', sliceObj(i, gen, cur.metadata?.resourceVersion));
      const rv = out.metadata?.resourceVersion;
      while (proxy.programmedResourceVersion('endpointslices', 'bench', `svc-${i}-x`) !== rv) await new Promise<void>((r) => { waiter = r; });
      lat.push(performance.now() - t1);
      await sleep(5);
    }
    return { start, lat: summarize(lat), write: summarize(writes) };
  } finally {
    ac.abort();
    await running;
    await ServiceProxy.cleanup({ tableName });
    tables.delete(tableName);
  }
}

// ---- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const loadStart = loadavg()[0];
  work = mkdtempSync(join(args.dir!, 'kyb-proxy-bench-'));
  const backends = (['nftables', 'iptables'] as const).filter((b) => { const why = canRun(b); if (why) log(`${b} skipped: ${why}`); return !why; });
  const prog = new Map<string, Programming>();
  for (const n of SIZES) for (const b of backends) prog.set(`${b}/${n}`, await programming(b, n));

  const e2e = new Map<string, E2E>();
  if (!args['no-e2e'] && backends.length) {
    const client = await startKyb();
    await client.create({ group: '', version: 'v1', plural: 'namespaces' }, null, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } });
    let have = 0;
    for (const n of [...SIZES].sort((a, b) => a - b)) {
      const t = performance.now();
      await fill(client, have, n);
      log(`cluster holds ${n} Services + EndpointSlices (${ms(performance.now() - t)} to add ${n - have})`);
      have = n;
      for (const b of backends) { e2e.set(`${b}/${n}`, await endToEnd(client, b, n)); log(`${b} ${n}: e2e done`); }
    }
    client.close();
  }

  const out: string[] = [];
  const row = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(44) : c.padStart(14))).join('');
  out.push('', `Service proxy programming (2 endpoints per Service; medians of ${RUNS} runs, deltas p50/p99 of ${DELTAS})`);
  for (const n of SIZES) {
    out.push('', row([`${n} Services`, ...backends, ...(backends.length === 2 ? ['iptables/nft'] : [])]));
    const line = (label: string, get: (p: Programming) => number): void => {
      const v = backends.map((b) => get(prog.get(`${b}/${n}`)!));
      out.push(row([label, ...v.map(ms), ...(v.length === 2 ? [`${(v[1] / v[0]).toFixed(1)}×`] : [])]));
    };
    line('render the transaction (JS only)', (p) => p.render);
    line('first load (nothing → N)', (p) => p.first);
    line('full resync (N → same N, atomic)', (p) => p.resync);
    line('one-Service delta with N loaded, p50', (p) => p.delta.p50);
    line('one-Service delta with N loaded, p99', (p) => p.delta.p99);
    line('remove everything (cleanup)', (p) => p.remove);
  }
  if (e2e.size) {
    out.push('', `EndpointSlice PUT → rules programmed (kyb server in its own process; ${UPDATES} sequential changes)`);
    for (const n of SIZES) {
      out.push('', row([`${n} Services`, ...backends, ...(backends.length === 2 ? ['iptables/nft'] : [])]));
      const line = (label: string, get: (e: E2E) => number): void => {
        const v = backends.map((b) => get(e2e.get(`${b}/${n}`)!));
        out.push(row([label, ...v.map(ms), ...(v.length === 2 ? [`${(v[1] / v[0]).toFixed(1)}×`] : [])]));
      };
      line('latency p50', (e) => e.lat.p50);
      line('latency p99', (e) => e.lat.p99);
      line('latency max', (e) => e.lat.max);
      line('  of which the delta write, p50', (e) => e.write.p50);
      line('  of which the delta write, p99', (e) => e.write.p99);
      line('proxy start → first full sync (list + load)', (e) => e.start);
    }
  }
  out.push('', `Load average (1 min) at start / end: ${loadStart.toFixed(1)} / ${loadavg()[0].toFixed(1)} — figures from a busy machine are inflated.`);
  out.push('Default backend: nftables whenever `nft` works (ServiceProxy picks it unless told otherwise).', '');
  process.stdout.write(out.join('\n'));
}

process.on('SIGINT', () => { void cleanupAll().then(() => process.exit(130)); });
try {
  await main();
} catch (e) {
  log(`failed: ${(e as Error).stack ?? String(e)}`);
  process.exitCode = 1;
} finally {
  await cleanupAll();
}
