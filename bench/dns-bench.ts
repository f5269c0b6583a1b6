// Cluster DNS: queries/s and latency (p50/p99) of the server on 127.0.0.1, driven by a load generator
// in a second process (this file with --loadgen: one UDP socket, or one pipelined TCP connection,
// keeping C queries in flight, closed loop), and by `dnsperf` when installed (Debian 12 main has it:
// `apt-get install dnsperf`; it reports queries/s and mean latency, no percentiles).
//
// The server is fed by its informers from a fake list/watch client holding a cluster-sized data set
// (1,000 ClusterIP Services, 50 headless Services × 8 endpoints, 10 namespaces) so that the API server
// does not share the event loop being measured; query handling never touches the API anyway. The
// query mix is what pods send: A of Services (half of them with the search-path misses a resolver
// with ndots:5 produces first, which are NXDOMAIN), headless A, SRV, PTR, AAAA (NODATA).
// Also printed: the in-process cost of one query (decode, lookup, encode; no sockets) and the
// server's CPU time per query under load, and the floor: a bare UDP echo server in Node driven the
// same way (what Node's dgram costs per datagram, whatever the DNS work).
//
// Run: node --import tsx bench/dns-bench.ts [--seconds 5] [--services 1000] [--no-dnsperf]
import { execFile, spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KObject } from '../src/api/types.js';
import type { ListWatchClient, ResourceRef, RestClient } from '../src/client/index.js';
import { ClusterDNS } from '../src/dns/index.js';
import { encodeQuery } from '../src/dns/testing/dns-query.js';
import { summarize, ms, rate } from './bench-common.js';

const Z = 'cluster.local';

interface LoadJob { port: number; seconds: number; concurrency: number; tcp: boolean; queries: Array<{ name: string; type: string }> }
interface LoadResult { sent: number; answered: number; lost: number; seconds: number; qps: number; p50: number; p99: number; max: number }

// ---- load generator (child process) ----------------------------------------------------------

async function loadgen(job: LoadJob): Promise<LoadResult> {
  const encoded = job.queries.map((q) => encodeQuery({ name: q.name, type: q.type, id: 0 }));
  const lat: number[] = [];
  const inflight = new Map<number, { t: number; slot: number }>();
  let nextId = 0, sent = 0, answered = 0, lost = 0, qi = 0;
  let send: (b: Buffer) => void;
  let stopped = false;
  const fire = (slot: number): void => {
    if (stopped) return;
    let id = nextId = (nextId + 1) & 0xffff;
    while (inflight.has(id)) id = nextId = (nextId + 1) & 0xffff;
    const b = Buffer.from(encoded[qi++ % encoded.length]);
    b.writeUInt16BE(id, 0);
    inflight.set(id, { t: performance.now(), slot });
    sent++;
    send(b);
  };
  const onReply = (m: Buffer): void => {
    if (m.length < 12) return;
    const f = inflight.get(m.readUInt16BE(0));
    if (!f) return;
    inflight.delete(m.readUInt16BE(0));
    lat.push(performance.now() - f.t);
    answered++;
    fire(f.slot);
  };
  let close: () => void;
  if (!job.tcp) {
    const s = dgram.createSocket('udp4');
    s.on('message', onReply);
    await new Promise<void>((r) => s.connect(job.port, '127.0.0.1', () => r()));
    send = (b) => s.send(b);
    close = () => s.close();
  } else {
    const c = net.connect({ host: '127.0.0.1', port: job.port });
    c.setNoDelay(true);
    await new Promise<void>((r) => c.once('connect', () => r()));
    let buf: Buffer = Buffer.alloc(0);
    c.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const n = buf.readUInt16BE(0);
        onReply(buf.subarray(2, 2 + n));
        buf = buf.subarray(2 + n);
      }
    });
    send = (b) => { const l = Buffer.alloc(2); l.writeUInt16BE(b.length, 0); c.write(Buffer.concat([l, b])); };
    close = () => c.destroy();
  }
  // lost UDP datagrams: a slot waiting over 1 s is counted lost and refilled
  const sweep = setInterval(() => {
    const now = performance.now();
    for (const [id, f] of inflight) if (now - f.t > 1000) { inflight.delete(id); lost++; fire(f.slot); }
  }, 200);
  // 300 ms unrecorded warm-up
  for (let i = 0; i < job.concurrency; i++) fire(i);
  await new Promise((r) => setTimeout(r, 300));
  lat.length = 0; answered = 0; sent = 0; lost = 0;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, job.seconds * 1000));
  const secs = (performance.now() - t0) / 1000;
  stopped = true;
  const done = answered;
  clearInterval(sweep);
  close();
  const s = summarize(lat);
  return { sent, answered: done, lost, seconds: secs, qps: done / secs, p50: s.p50, p99: s.p99, max: s.max };
}

// ---- the server side ---------------------------------------------------------------------------

function dataSet(services: number): Record<string, KObject[]> {
  const namespaces = Array.from({ length: 10 }, (_, i) => ({ metadata: { name: `ns-${i}` } }));
  const svcs: KObject[] = [];
  const slices: KObject[] = [];
  for (let i = 0; i < services; i++) {
    svcs.push({ metadata: { namespace: `ns-${i % 10}`, name: `svc-${i}` }, spec: { type: 'ClusterIP', clusterIP: `10.43.${100 + (i >> 8)}.${i & 255}`, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } });
    slices.push({
      metadata: { namespace: `ns-${i % 10}`, name: `svc-${i}-a`, labels: { 'kubernetes.io/service-name': `svc-${i}` } }, addressType: 'IPv4',
      endpoints: [0, 1].map((k) => ({ addresses: [`10.42.${(i >> 7) & 255}.${((i & 127) << 1) + k}`], conditions: { ready: true } })),
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
  }
  for (let i = 0; i < 50; i++) {
    svcs.push({ metadata: { namespace: `ns-${i % 10}`, name: `hl-${i}` }, spec: { type: 'ClusterIP', clusterIP: 'None', ports: [{ name: 'db', port: 5432, protocol: 'TCP' }] } });
    slices.push({
      metadata: { namespace: `ns-${i % 10}`, name: `hl-${i}-a`, labels: { 'kubernetes.io/service-name': `hl-${i}` } }, addressType: 'IPv4',
      endpoints: Array.from({ length: 8 }, (_, k) => ({ addresses: [`10.42.${200 + (i >> 5)}.${((i & 31) << 3) + k}`], hostname: `hl-${i}-${k}`, conditions: { ready: true } })),
      ports: [{ name: 'db', port: 5432, protocol: 'TCP' }],
    });
  }
  return { namespaces, services: svcs, endpointslices: slices };
}

function staticClient(items: Record<string, KObject[]>): RestClient {
  const c: ListWatchClient = {
    async list<T extends KObject>(res: ResourceRef) { return { metadata: { resourceVersion: '1' }, items: (items[res.plural] ?? []) as T[] }; },
    watch(_r, _n, _o, signal) { return { async *[Symbol.asyncIterator]() { await new Promise((r) => signal?.addEventListener('abort', r, { once: true })); } }; },
  };
  return c as unknown as RestClient;
}

function queryMix(services: number): Array<{ name: string; type: string }> {
  const out: Array<{ name: string; type: string }> = [];
  for (let i = 0; i < 400; i++) {
    const s = (i * 7919) % services, ns = `ns-${s % 10}`;
    // a pod in namespace `ns` resolving "svc-s" with ndots:5 first tries svc-s.<ns>.svc.cluster.local
    // (hit); resolving "svc-s.ns-x" it first tries svc-s.ns-x.<own ns>.svc.cluster.local (NXDOMAIN)
    out.push({ name: `svc-${s}.${ns}.svc.${Z}`, type: 'A' });
    if (i % 2 === 0) out.push({ name: `svc-${s}.${ns}.ns-0.svc.${Z}`, type: 'A' });
    if (i % 4 === 0) out.push({ name: `svc-${s}.${ns}.svc.${Z}`, type: 'AAAA' });
    if (i % 8 === 0) out.push({ name: `hl-${i % 50}.ns-${i % 10}.svc.${Z}`, type: 'A' });
    if (i % 8 === 4) out.push({ name: `_http._tcp.svc-${s}.${ns}.svc.${Z}`, type: 'SRV' });
    if (i % 16 === 2) out.push({ name: `${s & 255}.${100 + (s >> 8)}.43.10.in-addr.arpa`, type: 'PTR' });
  }
  return out;
}

function runLoad(job: LoadJob): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--loadgen', JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d; });
    child.on('exit', (code) => {
      children.delete(child);
      if (code !== 0) { reject(new Error(`load generator exited ${code}`)); return; }
      try { resolve(JSON.parse(out) as LoadResult); } catch (e) { reject(e); }
    });
  });
}

const children = new Set<{ kill(sig?: NodeJS.Signals): boolean }>();

function cpuMs(): number { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (n: string, d: number): number => { const i = argv.indexOf(`--${n}`); return i >= 0 ? Number(argv[i + 1]) : d; };
  const seconds = opt('seconds', 5);
  const services = opt('services', 1000);
  const stop = new AbortController();
  const tmp = mkdtempSync(join(tmpdir(), 'dns-bench-'));
  const cleanup = (): void => { for (const c of children) c.kill('SIGKILL'); stop.abort(); rmSync(tmp, { recursive: true, force: true }); };
  process.once('SIGINT', () => { cleanup(); process.exit(130); });
  const dns = new ClusterDNS({ client: staticClient(dataSet(services)), listen: [{ address: '127.0.0.1', port: 0 }], onError: () => {} });
  const running = dns.run(stop.signal);
  try {
    const [{ port }] = await dns.listening();
    await dns.waitForSync(stop.signal);
    const mix = queryMix(services);
    console.log(`cluster DNS on 127.0.0.1:${port}: ${services + 50} Services, ${dns.zone.size().endpointSlices} EndpointSlices; query mix of ${mix.length} (A hits, ndots NXDOMAIN misses, AAAA NODATA, headless A, SRV, PTR)`);

    // in process, no sockets: decode + lookup + encode (every query distinct: the reply cache misses),
    // then the same mix again and again (what the reply cache serves between changes)
    const n = 200_000;
    const distinct = Array.from({ length: n }, (_, i) => encodeQuery({ name: i % 2 ? `svc-${i % services}.ns-${i % services % 10}.svc.${Z}` : `x${i}.ns-1.svc.${Z}`, type: 'A', id: 1 }));
    let t = performance.now();
    for (let i = 0; i < n; i++) dns.handle(distinct[i], 'udp');
    const miss = (performance.now() - t) / n;
    const bufs = mix.map((q) => encodeQuery({ name: q.name, type: q.type, id: 1 }));
    for (let i = 0; i < 20_000; i++) dns.handle(bufs[i % bufs.length], 'udp');
    t = performance.now();
    for (let i = 0; i < n; i++) dns.handle(bufs[i % bufs.length], 'udp');
    const hit = (performance.now() - t) / n;
    console.log(`  in process (no sockets): ${ms(miss)} per query uncached = ${rate(1000 / miss)} on one core; ${ms(hit)} with the reply cache = ${rate(1000 / hit)}`);

    let udp16 = NaN;
    console.log(`  load generator in a second process, closed loop, ${seconds} s each after 300 ms warm-up:`);
    for (const [c, tcp] of [[1, false], [16, false], [64, false], [16, true]] as const) {
      const cpu0 = cpuMs();
      const r = await runLoad({ port, seconds, concurrency: c, tcp, queries: mix });
      const cpu = cpuMs() - cpu0;
      if (c === 16 && !tcp) udp16 = r.qps;
      console.log(`    ${tcp ? 'TCP' : 'UDP'} c=${String(c).padEnd(3)} ${rate(r.qps).padStart(9)}  p50 ${ms(r.p50).padStart(8)}  p99 ${ms(r.p99).padStart(8)}  max ${ms(r.max).padStart(8)}  lost ${r.lost}  server CPU ${ms(cpu / Math.max(1, r.sent))}/query`);
    }

    // the floor: a UDP echo server in this process (Node's dgram receive + send, no DNS work)
    const echo = dgram.createSocket('udp4');
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    await new Promise<void>((r) => echo.bind(0, '127.0.0.1', () => r()));
    const cpuE = cpuMs();
    const fl = await runLoad({ port: echo.address().port, seconds, concurrency: 16, tcp: false, queries: mix });
    echo.close();
    console.log(`    floor: UDP echo in Node, c=16 ${rate(fl.qps).padStart(9)}  p50 ${ms(fl.p50).padStart(8)}  p99 ${ms(fl.p99).padStart(8)}  CPU ${ms((cpuMs() - cpuE) / Math.max(1, fl.sent))}/datagram  (DNS at c=16 = ${(udp16 / fl.qps * 100).toFixed(0)}% of it)`);

    const haveDnsperf = !argv.includes('--no-dnsperf') && spawnSync('dnsperf', ['-h'], { stdio: 'ignore' }).error === undefined;
    if (haveDnsperf) {
      const file = join(tmp, 'queries.txt');
      writeFileSync(file, mix.map((q) => `${q.name} ${q.type}`).join('\n') + '\n');
      for (const outstanding of [16, 64]) {
        // asynchronously: the server answers on this process's event loop
        const r = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
          const child = execFile('dnsperf', ['-f', 'inet', '-s', '127.0.0.1', '-p', String(port), '-d', file, '-l', String(seconds), '-q', String(outstanding), '-t', '2'],
            (_err, stdout, stderr) => { children.delete(child); resolve({ stdout: String(stdout), stderr: String(stderr) }); });
          children.add(child);
        });
        const qps = /Queries per second:\s+([\d.]+)/.exec(r.stdout)?.[1];
        const avg = /Average Latency \(s\):\s+([\d.]+)/.exec(r.stdout)?.[1];
        const lost = /Queries lost:\s+(\d+)/.exec(r.stdout)?.[1];
        if (!qps || Number(qps) === 0) console.log(r.stdout, r.stderr);
        console.log(`  dnsperf -q ${outstanding}: ${qps ? rate(Number(qps)) : '—'}, mean latency ${avg ? ms(Number(avg) * 1000) : '—'}, lost ${lost ?? '—'}`);
      }
    } else {
      console.log('  dnsperf: not installed (apt-get install dnsperf) — skipped');
    }
    console.log(`  server stats: ${JSON.stringify(dns.stats)}`);
  } finally {
    cleanup();
    await running;
  }
}

if (process.argv[2] === '--loadgen') {
  loadgen(JSON.parse(process.argv[3]) as LoadJob).then((r) => { process.stdout.write(JSON.stringify(r)); process.exit(0); }, (e) => { console.error(e); process.exit(1); });
} else {
  main().catch((e) => { console.error(e); process.exit(1); });
}
