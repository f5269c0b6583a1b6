// The cost of resource-metrics collection on the agent (src/node/stats/) with 100 containers.
//
//   node --expose-gc --import tsx bench/metrics-bench.ts [--containers 100] [--rounds 200]
//
// Cheapest honest setup: N real cgroups (cgroup v1 cpuacct + memory, or v2) under a unique parent, one
// `sleep` process in each (so the kernel keeps real counters for them), and N container records in a
// real Runtime state directory (meta.json files), which the collector's container list is read from
// each round exactly as the agent's PodManager.runningContainers() does. The collector then samples
// them `--rounds` times in a row. Printed: CPU time (user+sys of this process) per round, what that is
// as a share of one core at the default 15 s resolution (and at 1 s), the time to serialize the report
// an API-server request gets, and RSS before and after. Everything (processes, cgroups, temp dirs) is
// removed at the end, also after an error or Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Runtime, type ContainerMeta } from '../src/node/runtime/runtime.js';
import { ResourceCollector, type ContainerRef } from '../src/node/stats/resource-collector.js';
import { CgroupReader } from '../src/node/stats/cgroup-reader.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const N = arg('containers', 100);
const ROUNDS = arg('rounds', 200);
const suffix = randomBytes(3).toString('hex');
const parent = `/kyb-bench-metrics-${suffix}`;
const root = '/sys/fs/cgroup';
const v2 = existsSync(join(root, 'cgroup.controllers'));
// the hierarchies a container's process is put into (v1: those the collector reads)
const hierarchies = v2 ? [root] : [existsSync(join(root, 'cpu,cpuacct')) ? join(root, 'cpu,cpuacct') : join(root, 'cpuacct'), join(root, 'memory')];
const dir = mkdtempSync(join(tmpdir(), 'kyb-metrics-bench-'));
const procs: ChildProcess[] = [];

function cleanup(): void {
  for (const p of procs) { try { p.kill('SIGKILL'); } catch { /* gone */ } }
  // cgroups can be removed only once empty: wait (briefly) for the killed processes to leave
  const deadline = Date.now() + 5000;
  for (const h of hierarchies) {
    const top = join(h, parent);
    if (!existsSync(top)) continue;
    for (const c of readdirSync(top)) {
      const p = join(top, c);
      try { if (!existsSync(join(p, 'cgroup.procs'))) continue; } catch { continue; }
      for (;;) {
        try { rmdirSync(p); break; } catch { if (Date.now() > deadline) break; Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); }
      }
    }
    try { rmdirSync(top); } catch (e) { process.stderr.write(`could not remove ${top}: ${(e as Error).message}\n`); }
  }
  rmSync(dir, { recursive: true, force: true });
}
process.once('SIGINT', () => { cleanup(); process.exit(130); });

const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const gc = (globalThis as { gc?: () => void }).gc;
/** RSS after a full GC when the bench runs with --expose-gc (garbage is not what the collector keeps) */
const rssMiB = () => { gc?.(); return process.memoryUsage().rss / 2 ** 20; };
const heapMiB = () => { gc?.(); return process.memoryUsage().heapUsed / 2 ** 20; };

try {
  if (process.getuid?.() !== 0) throw new Error('needs root (it makes cgroups)');
  // v2: the parent must hand cpu and memory down to its children
  if (v2) {
    mkdirSync(join(root, parent));
    writeFileSync(join(root, parent, 'cgroup.subtree_control'), '+cpu +memory');
  }
  const runtime = new Runtime({ runRoot: join(dir, 'run'), stateDir: join(dir, 'containers') });
  const podUID = randomBytes(16).toString('hex');
  for (let i = 0; i < N; i++) {
    const id = randomBytes(32).toString('hex');
    const cgroupsPath = `${parent}/c${i}`;
    for (const h of hierarchies) mkdirSync(join(h, cgroupsPath), { recursive: true });
    const p = spawn('sleep', ['600'], { stdio: 'ignore' });
    procs.push(p);
    for (const h of hierarchies) writeFileSync(join(h, cgroupsPath, 'cgroup.procs'), String(p.pid));
    const meta: ContainerMeta = {
      id, podUID: `${podUID}-${Math.floor(i / 2)}`, podNamespace: 'bench', podName: `pod-${Math.floor(i / 2)}`, containerName: `c${i % 2}`,
      attempt: 0, init: false, imageRef: 'kyb.local/bb:1', imageId: 'sha256:0', logPath: join(dir, 'logs', id), cgroupsPath,
      createdAt: new Date().toISOString(), startedAt: new Date().toISOString(), specHash: '0',
    };
    mkdirSync(join(dir, 'containers', id), { recursive: true });
    writeFileSync(join(dir, 'containers', id, 'meta.json'), JSON.stringify(meta));
  }
  // the agent's container list (PodManager.runningContainers): every meta.json, latest started instance
  const containers = (): ContainerRef[] => {
    const latest = new Map<string, ContainerMeta>();
    for (const m of runtime.list()) {
      if (m.init || !m.startedAt) continue;
      const k = `${m.podUID}/${m.containerName}`;
      const cur = latest.get(k);
      if (!cur || m.attempt > cur.attempt) latest.set(k, m);
    }
    return [...latest.values()].filter((m) => !existsSync(join(runtime.exitDir, m.id))).map((m) => ({
      podNamespace: m.podNamespace, podName: m.podName, podUID: m.podUID, containerName: m.containerName, containerId: m.id, cgroupsPath: m.cgroupsPath,
    }));
  };
  const rss0 = rssMiB();
  const heap0 = heapMiB();
  let t = Date.now();
  const collector = new ResourceCollector({ nodeName: 'bench', containers, now: () => (t += 15_000) });
  collector.sample(); // warm-up (and the first sample of every series)
  collector.sample();
  const listed = collector.resourceMetrics().pods.reduce((a, p) => a + p.containers.length, 0);
  if (listed !== N) throw new Error(`the collector reported ${listed} containers, expected ${N}`);
  const c0 = cpuMs();
  const w0 = performance.now();
  for (let i = 0; i < ROUNDS; i++) collector.sample();
  const perRoundCpu = (cpuMs() - c0) / ROUNDS;
  const perRoundWall = (performance.now() - w0) / ROUNDS;
  // the list alone (meta.json reads) and the cgroup reads alone, to see where the time goes
  const l0 = cpuMs();
  for (let i = 0; i < ROUNDS; i++) containers();
  const listCpu = (cpuMs() - l0) / ROUNDS;
  const reader = new CgroupReader();
  const refs = containers();
  const r0 = cpuMs();
  for (let i = 0; i < ROUNDS; i++) for (const r of refs) reader.read(r.cgroupsPath);
  const readCpu = (cpuMs() - r0) / ROUNDS;
  const s0 = performance.now();
  let bytes = 0;
  for (let i = 0; i < ROUNDS; i++) bytes = JSON.stringify(collector.resourceMetrics()).length;
  const serializeMs = (performance.now() - s0) / ROUNDS;
  const rss1 = rssMiB();
  const heap1 = heapMiB();
  const fmt = (n: number, d = 2) => n.toFixed(d);
  process.stdout.write([
    `resource metrics collection, ${N} containers (${v2 ? 'cgroup v2' : 'cgroup v1'}), ${ROUNDS} rounds`,
    `  CPU per sampling round:        ${fmt(perRoundCpu)} ms   (wall ${fmt(perRoundWall)} ms; the event loop is blocked that long)`,
    `    of which the container list:  ${fmt(listCpu)} ms   (${N} meta.json reads)`,
    `    of which cgroup reads:        ${fmt(readCpu)} ms   (${v2 ? 4 : 3} files per container)`,
    `  CPU share of one core at 15 s:  ${fmt((perRoundCpu / 15_000) * 100, 4)} %   (target < 0.1 %)`,
    `  CPU share of one core at 1 s:   ${fmt((perRoundCpu / 1000) * 100, 3)} %`,
    `  /metrics/resource answer:       ${bytes} bytes, ${fmt(serializeMs, 3)} ms to serialize`,
    `  RSS${gc ? ' (after a full GC)' : ' (run with --expose-gc to leave garbage out)'}: ${fmt(rss0, 1)} MiB before the collector, ${fmt(rss1, 1)} MiB after ${ROUNDS + 2} rounds (+${fmt(rss1 - rss0, 1)} MiB); JS heap in use +${fmt(heap1 - heap0, 2)} MiB`,
    '',
  ].join('\n'));
} finally {
  cleanup();
}
