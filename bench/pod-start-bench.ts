// Pod startup latency of the node agent with real containers, beside its floor and podman, in one run.
//
//   1. kyb: a `kyb server --disable-agent` process (SQLite store) and a node agent in its own
//      process, with a fresh data dir, its own bridge, cgroup parent, run dir and cluster CIDR.
//      Pods of the local busybox image (built with buildBusyboxImage, imported into the agent's
//      store; imagePullPolicy IfNotPresent), one container `httpd -f -p 8080 -h /www`.
//      Latency = from just before the POST to the first watch event with status.phase Running,
//      (a) one pod at a time, (b) a burst of --pods creates at once (throughput = pods / time from
//      the first create to the last Running). Also split: create → bound (scheduler) and bound →
//      Running (agent). Then the pods are deleted (grace 1 s) and the time until all are gone.
//   2. floor, in the same run: `ip netns add` + CNI ADD (loopback ∥ bridge/host-local, the agent's
//      plugin config, on a bridge of its own) + `runc run -d` of the same container over the image's
//      unpacked layer (read-only, no overlay, no conmon, no API); teardown timed apart.
//   3. `podman kube play` of the same pod (runtime-notes §7: runc, cgroupfs, explicit ulimits, a
//      private containers.conf / storage.conf, CNI backend with a network of its own), image loaded
//      from the same OCI archive; skipped, with the reason, when podman cannot run.
//   4. VmRSS of the agent process: node Ready and no pods, with the pods running, after they are gone.
// Each latency figure is the median over --rounds rounds of that round's p50/p99; floor and kyb
// rounds alternate so that noise on a shared machine spreads over both. Targets are printed beside
// the figures; the bench never fails because of a number.
//
// Everything it makes is removed at the end, also after an error or Ctrl-C: pods (the agent's own
// cleanup, then a sweep of whatever is left: runc containers, conmon processes, netns, mounts,
// bridges, cgroups), podman pods/network/bridge/iptables chains/state dirs, processes, temp dirs.
//
//   node --import tsx bench/pod-start-bench.ts [--pods 50] [--rounds 3] [--no-podman] [--dir /tmp]
//                                              [--cluster-cidr auto] [--verbose] [--agent-log FILE]
// Needs root, runc, conmon, the CNI plugins, busybox-static; podman + catatonit optionally.
//
// The agent runs as `kyb agent` when that command has flags for a private run dir, cgroup parent and
// bridge; otherwise this file runs itself with `--agent-child CONFIG` (the same startAgent() the
// `kyb agent` command calls, in a separate process), so a bench never touches /run/kybernetes, the
// /kybernetes cgroup or the kyb0 bridge of a real installation.
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RestClient } from '../src/client/index.js';
import type { KObject } from '../src/api/types.js';
import * as agentCli from '../src/cli/agent.js';
import { buildBusyboxImage, ImageStore } from '../src/node/images/index.js';
import { median, ms, percentile } from './bench-common.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TSX = ['--import', 'tsx'];
const MAIN = "import('./src/cli/main.ts').then(m=>m.main(process.argv.slice(1))).catch(e=>{process.stderr.write(String(e&&e.stack||e)+'\\n');process.exit(1)})";
const IMAGE = 'kyb.local/busybox:pod-start-bench';
const COMMAND = ['/bin/httpd', '-f', '-p', '8080', '-h', '/www'];
const PODS = { group: '', version: 'v1', plural: 'pods' };
const NODES = { group: '', version: 'v1', plural: 'nodes' };
const TARGET_P50 = 150;
const TARGET_P99 = 500;

const sleep = (n: number) => new Promise((r) => setTimeout(r, n));
/** a deadline for Promise.race that does not keep the process alive once the race is decided */
const deadline = (n: number) => new Promise((r) => setTimeout(r, n).unref());
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

// =================================================================================== agent child
// `--agent-child CONFIG`: the node agent alone in this process (what `kyb agent` runs), so the bench
// can read its RSS and give it a private run dir, cgroup parent and bridge.

async function agentChild(cfgFile: string): Promise<void> {
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8')) as agentCli.AgentRunConfig;
  const a = await agentCli.startAgent({ ...cfg, log: (m) => process.stderr.write(`kyb agent: ${m}\n`) });
  let busy = false;
  const finish = async (what: 'stop' | 'cleanup') => {
    if (busy) return;
    busy = true;
    const t = performance.now();
    process.stderr.write(`kyb agent: bench asked for ${what}\n`);
    try {
      if (what === 'cleanup') await a.cleanup(); else await a.stop();
      process.stderr.write(`kyb agent: ${what} done in ${(performance.now() - t).toFixed(0)} ms\n`);
    } catch (e) { process.stderr.write(`kyb agent: ${what}: ${(e as Error).stack ?? e}\n`); }
    if (process.connected) process.send!(`${what}-done`, () => process.exit(0)); else process.exit(0);
  };
  process.on('SIGINT', () => undefined); // the bench decides when the agent stops (Ctrl-C reaches the whole group)
  process.on('SIGTERM', () => void finish('stop'));
  process.on('message', (m) => { if (m === 'stop' || m === 'cleanup') void finish(m); });
  process.on('disconnect', () => void finish('cleanup')); // the bench died: leave nothing behind
}

// ========================================================================================= setup

const { values: args } = parseArgs({
  options: {
    pods: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
    'no-podman': { type: 'boolean', default: false },
    'podman-pods': { type: 'string' },
    'cluster-cidr': { type: 'string', default: 'auto' },
    dir: { type: 'string', default: tmpdir() },
    verbose: { type: 'boolean', default: false },
    'agent-log': { type: 'string' },
    'agent-child': { type: 'string' },
  },
  strict: true,
});
const N = Math.max(2, Number(args.pods));
const ROUNDS = Math.max(1, Number(args.rounds));
const PODMAN_N = Math.max(2, Number(args['podman-pods'] ?? args.pods));

const suffix = randomBytes(3).toString('hex');
const names = {
  node: `bench-${suffix}`,
  bridge: `kybb${suffix}`,
  floorBridge: `kybf${suffix}`,
  podmanBridge: `kybp${suffix}`,
  podmanNet: `kybbench-${suffix}`,
  proxyTable: `kybx${suffix}`, // the agent's service proxy (nft table / iptables chain prefix, at most 10 characters)
  cgroupParent: `/kyb-bench-${suffix}`,
  floorCgroupParent: `/kyb-bench-${suffix}-floor`,
  runDir: `/run/kyb-bench-${suffix}`,
  floorNetns: `kybf-${suffix}-`,
  // set by pickNetworks(): three 10.X.0.0/16 no address or route of this host is in
  clusterCIDR: '',
  floorSubnet: '',
  podmanSubnet: '',
};

interface Proc { proc: ChildProcess; logFile: string }
const children: ChildProcess[] = [];
const podUIDs = new Set<string>();
let work = '';

function startProcess(cmd: string, argv: string[], logFile: string, opts: { fork?: boolean } = {}): Proc {
  const fd = openSync(logFile, 'a');
  const proc = opts.fork
    ? fork(argv[0]!, argv.slice(1), { cwd: ROOT, execArgv: TSX, stdio: ['ignore', fd, fd, 'ipc'] })
    : spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  children.push(proc);
  return { proc, logFile };
}

function exited(p: ChildProcess): boolean { return p.exitCode !== null || p.signalCode !== null; }

async function stopProcess(p: ChildProcess, graceMs = 10_000): Promise<void> {
  if (exited(p)) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await Promise.race([gone, deadline(graceMs)]);
  if (!exited(p)) { p.kill('SIGKILL'); await gone; }
}

/** Runs a command to completion; never throws (look at code). stdout/stderr are collected. */
function sh(cmd: string, argv: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(cmd, argv, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    p.on('error', (e) => { clearTimeout(t); res({ code: 127, stdout, stderr: e.message }); });
    p.on('close', (code, sig) => { clearTimeout(t); res({ code: code ?? (sig ? 128 : 1), stdout, stderr }); });
    p.stdin.on('error', () => undefined);
    p.stdin.end(opts.input ?? '');
  });
}

async function must(cmd: string, argv: string[], opts: Parameters<typeof sh>[2] = {}): Promise<string> {
  const r = await sh(cmd, argv, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${argv.join(' ')}: exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 1000)}`);
  return r.stdout;
}

function findBin(name: string, extra: string[] = []): string | undefined {
  for (const d of [...extra, ...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (d && existsSync(join(d, name))) return join(d, name);
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); });
  });
}

async function waitFor<T>(what: string, cond: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try { const v = await cond(); if (v !== undefined && v !== false) return v as T; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

/** VmRSS of a process in MiB */
function rssMb(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch { return NaN; }
}

let clkTck = 100;
/** CPU seconds of a process: user + system, plus that of the children it has waited for (runc, CNI, ip, mount) */
function procCpu(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / clkTck;
  } catch { return NaN; }
}
/** busy CPU seconds of the whole machine (all cores), from /proc/stat */
function machineCpu(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f as number[];
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / clkTck;
}
/** CPU seconds (user + system, own only) of every process, by pid, with its command name */
function allProcCpu(): Map<number, { comm: string; cpu: number }> {
  const out = new Map<number, { comm: string; cpu: number }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(') ') + 2).split(' ');
      out.set(Number(d), { comm: st.slice(st.indexOf('(') + 1, st.lastIndexOf(')')), cpu: (Number(f[11]) + Number(f[12])) / clkTck });
    } catch { /* gone */ }
  }
  return out;
}
function topCpu(a: Map<number, { comm: string; cpu: number }>, b: Map<number, { comm: string; cpu: number }>, n = 6): string {
  return [...b].map(([pid, v]) => ({ pid, comm: v.comm, d: v.cpu - (a.get(pid)?.cpu ?? 0) })).filter((x) => x.d > 0)
    .sort((x, y) => y.d - x.d).slice(0, n).map((x) => `${x.comm}[${x.pid}] ${(x.d * 1000).toFixed(0)} ms`).join(', ');
}
interface Cpu { machine: number; agent: number; server: number }
/** pids whose parent is pid */
function childPids(pid: number | undefined): number[] {
  const out: number[] = [];
  if (!pid) return out;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(st.slice(st.lastIndexOf(') ') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}
/**
 * CPU seconds of the agent: its own, the children it waited for, and its live children with theirs —
 * the agent hands short-lived tools (runc start, CNI plugins, mount, unshare) to a helper shell
 * (src/node/network/exec.ts runFast), which reaps them, so their time is that shell's.
 */
function agentCpu(pid: number | undefined): number {
  return procCpu(pid) + childPids(pid).reduce((a, p) => a + (procCpu(p) || 0), 0);
}
function cpuNow(c: { agent?: Proc; server: Proc }): Cpu { return { machine: machineCpu(), agent: agentCpu(c.agent?.proc.pid), server: procCpu(c.server.proc.pid) }; }
/** CPU milliseconds between two samples, divided by n */
function cpuPer(a: Cpu, b: Cpu, n: number): Cpu {
  return { machine: ((b.machine - a.machine) * 1000) / n, agent: ((b.agent - a.agent) * 1000) / n, server: ((b.server - a.server) * 1000) / n };
}

/** pids whose command line has `needle` in it, and whose program name is `prog` */
function pidsOf(prog: string, needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv[0] && (argv[0] === prog || argv[0].endsWith(`/${prog}`)) && argv.some((a) => a.includes(needle))) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

function hardLimit(name: 'Max open files' | 'Max processes'): number {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith(name));
  const v = line?.slice(26).trim().split(/\s+/)[1];
  return v && /^\d+$/.test(v) ? Number(v) : Infinity;
}

function tail(file: string, lines = 30): string {
  try { return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'); } catch { return ''; }
}

/**
 * Second octets X of 10.X.0.0/16 that an address or route of this host is in (another cluster, a
 * test's bridge), so that two benches or a bench and a test never share a pod network.
 */
async function used10Octets(): Promise<Set<number>> {
  const used = new Set<number>();
  const text = `${(await sh('ip', ['-4', '-o', 'addr'])).stdout}\n${(await sh('ip', ['-4', 'route', 'show', 'table', 'all'])).stdout}`;
  for (const m of text.matchAll(/\b10\.(\d{1,3})\.\d{1,3}\.\d{1,3}(?:\/(\d{1,2}))?/g)) {
    const x = Number(m[1]);
    const len = m[2] ? Number(m[2]) : 32;
    const span = len >= 16 ? 1 : 2 ** (16 - len);
    for (let i = x - (x % span); i < x - (x % span) + span; i++) used.add(i);
  }
  return used;
}

/** the cluster CIDR (--cluster-cidr, or a free /16) and a /24 each for the floor and podman; 10.150–10.199 by default (the e2e tests use 10.200–10.249) */
async function pickNetworks(): Promise<void> {
  const used = await used10Octets();
  const free = Array.from({ length: 50 }, (_, i) => 150 + i).filter((x) => !used.has(x)).sort(() => Math.random() - 0.5);
  const take = () => free.shift() ?? 150 + Math.floor(Math.random() * 50);
  names.clusterCIDR = args['cluster-cidr'] === 'auto' ? `10.${take()}.0.0/16` : args['cluster-cidr']!;
  names.floorSubnet = `10.${take()}.0.0/24`;
  names.podmanSubnet = `10.${take()}.0.0/24`;
}

// ======================================================================================== kyb

interface Cluster {
  server: Proc; url: string; token: string; caPem: string; caFile: string; dataDir: string;
  agent?: Proc; agentMode: 'kyb agent' | 'startAgent child'; agentCfg: agentCli.AgentRunConfig; agentCliArgs: string[];
  client: RestClient;
}

async function startServer(): Promise<Omit<Cluster, 'agent' | 'agentMode' | 'agentCfg' | 'agentCliArgs'>> {
  const dataDir = join(work, 'kyb');
  const port = await freePort();
  const server = startProcess(process.execPath, [...TSX, '-e', MAIN, 'server', '--data-dir', dataDir, '--https-listen-port', String(port),
    '--disable-agent', '--cluster-cidr', names.clusterCIDR], join(work, 'server.log'));
  const url = `https://127.0.0.1:${port}`;
  const caFile = join(dataDir, 'tls/server-ca.crt');
  const { token, caPem } = await waitFor('kyb server', async () => {
    if (exited(server.proc)) throw new Error(`kyb server exited:\n${tail(server.logFile)}`);
    if (!existsSync(join(dataDir, 'kubeconfig.yaml'))) return undefined;
    const token = readFileSync(join(dataDir, 'token'), 'utf8').trim();
    const caPem = readFileSync(caFile, 'utf8');
    const c = new RestClient({ server: url, caPem, token });
    try { await c.raw('GET', '/readyz'); return { token, caPem }; } finally { c.close(); }
  });
  const client = new RestClient({ server: url, caPem, token, qps: 0 });
  return { server, url, token, caPem, caFile, dataDir, client };
}

/** `kyb agent` if it takes a private run dir, cgroup parent and bridge; else startAgent() in a child. */
function agentCommandFlags(): { runDir: string; proxyTable?: string } | undefined {
  const f = agentCli.agentFlags as Record<string, unknown>;
  const runDir = ['agent-run-dir', 'run-dir'].find((k) => k in f);
  // without a flag naming the proxy's table it would use the host's `kybernetes` table: run it without the proxy then
  const proxyTable = ['proxy-table', 'kube-proxy-table'].find((k) => k in f);
  return runDir && 'cgroup-parent' in f && 'pod-bridge' in f && (proxyTable || 'disable-kube-proxy' in f) ? { runDir, proxyTable } : undefined;
}

async function startAgentProcess(c: Omit<Cluster, 'agent' | 'agentMode' | 'agentCfg' | 'agentCliArgs'>): Promise<Cluster> {
  const agentCfg: agentCli.AgentRunConfig = {
    server: c.url, caPem: c.caPem, token: c.token, nodeName: names.node, dataDir: join(c.dataDir, 'agent'),
    runRoot: names.runDir, cgroupParent: names.cgroupParent, bridge: names.bridge,
    clusterCIDR: names.clusterCIDR, proxyTableName: names.proxyTable,
  };
  const flags = agentCommandFlags();
  const agentCliArgs = flags ? ['--server', c.url, '--token', c.token, '--ca-file', c.caFile, '--data-dir', c.dataDir, '--node-name', names.node,
    `--${flags.runDir}`, names.runDir, '--cgroup-parent', names.cgroupParent, '--pod-bridge', names.bridge, '--cluster-cidr', names.clusterCIDR,
    ...(flags.proxyTable ? [`--${flags.proxyTable}`, names.proxyTable] : ['--disable-kube-proxy'])] : [];
  // the image, imported into the agent's store before it starts (as `kyb images import` would)
  const archive = join(work, 'busybox.tar');
  await buildBusyboxImage({ out: archive, ref: IMAGE, files: { '/www/index.html': 'hello from the pod-start bench\n' } });
  await new ImageStore({ root: join(agentCfg.dataDir, 'images') }).importArchive(archive);
  let agent: Proc;
  if (flags) {
    agent = startProcess(process.execPath, [...TSX, '-e', MAIN, 'agent', ...agentCliArgs], join(work, 'agent.log'));
  } else {
    const cfgFile = join(work, 'agent-config.json');
    writeFileSync(cfgFile, JSON.stringify(agentCfg), { mode: 0o600 });
    agent = startProcess(process.execPath, [fileURLToPath(import.meta.url), '--agent-child', cfgFile], join(work, 'agent.log'), { fork: true });
  }
  return { ...c, agent, agentMode: flags ? 'kyb agent' : 'startAgent child', agentCfg, agentCliArgs };
}

/** The agent's own cleanup (pods, containers, netns, bridge, cgroups), in its process or offline. */
async function agentCleanup(c: Cluster): Promise<void> {
  const a = c.agent?.proc;
  if (a && !exited(a) && c.agentMode === 'startAgent child' && a.connected) {
    const done = new Promise<void>((r) => { a.once('exit', () => r()); a.on('message', (m) => { if (m === 'cleanup-done') r(); }); });
    a.send('cleanup');
    await Promise.race([done, deadline(90_000)]);
    await stopProcess(a);
    return;
  }
  if (a) await stopProcess(a);
  if (c.agentMode === 'kyb agent') {
    const r = await sh(process.execPath, [...TSX, '-e', MAIN, 'agent', ...c.agentCliArgs, '--cleanup'], { timeoutMs: 120_000 });
    if (r.code !== 0) log(`kyb agent --cleanup: exit ${r.code}: ${r.stderr.trim().slice(0, 500)}`);
    return;
  }
  const offline = (agentCli as Record<string, unknown>).cleanupAgent as ((cfg: agentCli.AgentRunConfig) => Promise<void>) | undefined;
  if (offline) await offline({ ...c.agentCfg, log: () => undefined }).catch((e) => log(`agent cleanup: ${(e as Error).message}`));
}

interface PodTimes { created?: number; bound?: number; running?: number; deleted?: number; uid?: string }

/** One watch on the pods of the namespace; times per pod name (performance.now()). */
class PodWatch {
  readonly times = new Map<string, PodTimes>();
  private readonly ac = new AbortController();
  private waiters: Array<() => void> = [];
  private done: Promise<void> = Promise.resolve();
  error?: unknown;

  constructor(private readonly client: RestClient, private readonly ns: string) {}

  async start(): Promise<void> {
    let rv = (await this.client.list(PODS, this.ns, { limit: 1 })).metadata.resourceVersion;
    this.done = (async () => {
      while (!this.ac.signal.aborted) {
        try {
          for await (const ev of this.client.watch<KObject>(PODS, this.ns, { resourceVersion: rv, timeoutSeconds: 3600 }, this.ac.signal)) {
            if (ev.type === 'ERROR') { rv = (await this.client.list(PODS, this.ns, { limit: 1 })).metadata.resourceVersion; break; }
            if (ev.type === 'BOOKMARK') continue;
            const o = ev.object as KObject & { spec?: { nodeName?: string }; status?: { phase?: string } };
            rv = o.metadata?.resourceVersion ?? rv;
            const t = performance.now();
            const name = o.metadata!.name!;
            const pt = this.times.get(name) ?? this.times.set(name, {}).get(name)!;
            if (o.metadata?.uid) { pt.uid = o.metadata.uid; podUIDs.add(o.metadata.uid); }
            if (ev.type === 'DELETED') pt.deleted ??= t;
            else {
              if (o.spec?.nodeName) pt.bound ??= t;
              if (o.status?.phase === 'Running') pt.running ??= t;
            }
            for (const w of this.waiters) w();
          }
        } catch (e) {
          if (this.ac.signal.aborted) return;
          this.error = e;
          await sleep(200);
        }
      }
    })();
  }

  /** resolves when every named pod has the field set */
  until(podNames: string[], field: 'running' | 'deleted', timeoutMs: number): Promise<void> {
    return new Promise((res, rej) => {
      const check = () => {
        if (podNames.every((n) => this.times.get(n)?.[field] !== undefined)) { cleanup(); res(); }
      };
      const t = setTimeout(() => {
        cleanup();
        const missing = podNames.filter((n) => this.times.get(n)?.[field] === undefined);
        rej(new Error(`timed out after ${timeoutMs / 1000}s: ${missing.length} pods not ${field} (${missing.slice(0, 5).join(', ')}…)${this.error ? `; watch error ${(this.error as Error).message}` : ''}`));
      }, timeoutMs);
      const cleanup = () => { clearTimeout(t); this.waiters = this.waiters.filter((w) => w !== check); };
      this.waiters.push(check);
      check();
    });
  }

  async stop(): Promise<void> { this.ac.abort(); await this.done; }
}

function podBody(name: string): KObject {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { app: 'pod-start-bench' } },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'c', image: IMAGE, imagePullPolicy: 'IfNotPresent', command: COMMAND }],
    },
  } as KObject;
}

async function createPod(c: Cluster, w: PodWatch, name: string): Promise<void> {
  const pt = w.times.get(name) ?? w.times.set(name, {}).get(name)!;
  pt.created = performance.now();
  const o = await c.client.create(PODS, 'default', podBody(name));
  if (o.metadata?.uid) podUIDs.add(o.metadata.uid);
}

function agentContainers(c: Cluster): number {
  try { return readdirSync(join(c.agentCfg.dataDir, 'containers')).length; } catch { return 0; }
}

/** deletes the pods and waits until they are gone from the API and the agent has no container left */
async function deletePods(c: Cluster, w: PodWatch, podNames: string[]): Promise<number> {
  const t0 = performance.now();
  await Promise.all(podNames.map((n) => c.client.delete(PODS, 'default', n)));
  await w.until(podNames, 'deleted', 120_000);
  await waitFor('the agent to remove its containers', () => agentContainers(c) === 0, 60_000, 50);
  return (performance.now() - t0) / 1000;
}

interface Lat { p50: number; p99: number; max: number; n: number }
function lat(xs: number[]): Lat {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return { p50: percentile(s, 0.5), p99: percentile(s, 0.99), max: s[s.length - 1] ?? NaN, n: s.length };
}

interface KybRound {
  seq: Lat; seqBind: Lat; seqAgent: Lat;
  burst: Lat; burstBind: Lat; burstAgent: Lat; burstRate: number; burstSecs: number;
  rssSeq: number; rssBurst: number; rssAfter: number; conmonMb: number;
  deleteSeq: number; deleteBurst: number;
  cpuSeq: Cpu; cpuBurst: Cpu;
  /** CPU (ms per second) with the pods running and nothing to do: one resync period */
  cpuIdle?: Cpu;
}

const IDLE_CPU_SECONDS = 10;

async function kybRound(c: Cluster, w: PodWatch, r: number): Promise<KybRound> {
  // one at a time
  const seqNames = Array.from({ length: N }, (_, i) => `s${r}-${i}`);
  const cpu0 = cpuNow(c);
  for (const n of seqNames) {
    await createPod(c, w, n);
    await w.until([n], 'running', 60_000);
  }
  const cpuSeq = cpuPer(cpu0, cpuNow(c), N);
  await sleep(1000);
  const rssSeq = rssMb(c.agent!.proc.pid);
  let cpuIdle: Cpu | undefined;
  if (r === 0) {
    const i0 = cpuNow(c);
    const p0 = args.verbose ? allProcCpu() : undefined;
    await sleep(IDLE_CPU_SECONDS * 1000);
    cpuIdle = cpuPer(i0, cpuNow(c), IDLE_CPU_SECONDS);
    if (p0) log(`busiest processes while idle with ${N} pods: ${topCpu(p0, allProcCpu())}`);
  }
  const conmons = pidsOf('conmon', names.runDir);
  const conmonMb = conmons.reduce((a, p) => a + rssMb(p), 0) / Math.max(1, conmons.length);
  const get = (n: string) => w.times.get(n)!;
  const seq = lat(seqNames.map((n) => get(n).running! - get(n).created!));
  const seqBind = lat(seqNames.map((n) => get(n).bound! - get(n).created!));
  const seqAgent = lat(seqNames.map((n) => get(n).running! - get(n).bound!));
  const deleteSeq = await deletePods(c, w, seqNames);

  // a burst
  const burstNames = Array.from({ length: N }, (_, i) => `b${r}-${i}`);
  const b0 = cpuNow(c);
  const t0 = performance.now();
  await Promise.all(burstNames.map((n) => createPod(c, w, n)));
  await w.until(burstNames, 'running', 180_000);
  const cpuBurst = cpuPer(b0, cpuNow(c), N);
  const last = Math.max(...burstNames.map((n) => get(n).running!));
  await sleep(1000);
  const rssBurst = rssMb(c.agent!.proc.pid);
  const burst = lat(burstNames.map((n) => get(n).running! - get(n).created!));
  const burstBind = lat(burstNames.map((n) => get(n).bound! - get(n).created!));
  const burstAgent = lat(burstNames.map((n) => get(n).running! - get(n).bound!));
  const deleteBurst = await deletePods(c, w, burstNames);
  await sleep(1000);
  const rssAfter = rssMb(c.agent!.proc.pid);
  const burstSecs = (last - t0) / 1000;
  return { seq, seqBind, seqAgent, burst, burstBind, burstAgent, burstRate: N / burstSecs, burstSecs, rssSeq, rssBurst, rssAfter, conmonMb, deleteSeq, deleteBurst, cpuSeq, cpuBurst, cpuIdle };
}

// ====================================================================================== floor
// netns + CNI ADD (loopback ∥ bridge/host-local, the agent's config) + `runc run -d`, then teardown.

interface Floor { cniDir: string; runc: string; runcRoot: string; baseSpec: Record<string, unknown>; layer: string; ipamDir: string }

async function floorSetup(agentImagesDir: string): Promise<Floor> {
  const cniDir = ['/usr/lib/cni', '/opt/cni/bin'].find((d) => existsSync(join(d, 'bridge')));
  if (!cniDir) throw new Error('CNI plugins not found (apt-get install -y containernetworking-plugins)');
  const runc = findBin('runc');
  if (!runc) throw new Error('runc not found (apt-get install -y runc)');
  const img = await new ImageStore({ root: agentImagesDir }).ensure(IMAGE, 'Never');
  if (img.layerDirs.length !== 1) throw new Error(`expected a one-layer image, got ${img.layerDirs.length} layers`);
  const specDir = join(work, 'floor', 'spec');
  mkdirSync(specDir, { recursive: true });
  await must(runc, ['spec', '--bundle', specDir]);
  const spec = JSON.parse(readFileSync(join(specDir, 'config.json'), 'utf8')) as { process: Record<string, unknown>; root: unknown; hostname?: string; linux: Record<string, unknown> };
  spec.process.terminal = false;
  spec.process.args = COMMAND;
  spec.process.env = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
  spec.process.cwd = '/';
  spec.root = { path: img.layerDirs[0], readonly: true };
  return { cniDir, runc, runcRoot: join(names.runDir, 'floor-runc'), baseSpec: spec as unknown as Record<string, unknown>, layer: img.layerDirs[0]!, ipamDir: join(work, 'floor', 'ipam') };
}

function floorBridgeConf(f: Floor): Record<string, unknown> {
  const [net] = names.floorSubnet.split('/');
  const gw = net!.replace(/\.0$/, '.1');
  return {
    cniVersion: '1.0.0', name: `kybf-${suffix}`, type: 'bridge', bridge: names.floorBridge, isGateway: true, ipMasq: false, hairpinMode: true,
    ipam: { type: 'host-local', ranges: [[{ subnet: names.floorSubnet, gateway: gw }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: f.ipamDir },
  };
}
const loConf = { cniVersion: '1.0.0', name: 'cni-loopback', type: 'loopback' };

async function cni(f: Floor, command: 'ADD' | 'DEL', conf: Record<string, unknown>, id: string, netns: string, ifName: string): Promise<unknown> {
  const r = await sh(join(f.cniDir, String(conf.type)), [], {
    input: JSON.stringify(conf),
    env: { PATH: process.env.PATH, CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_NETNS: netns, CNI_IFNAME: ifName, CNI_PATH: f.cniDir, CNI_ARGS: 'IgnoreUnknown=1' },
  });
  if (r.code !== 0) throw new Error(`CNI ${conf.type} ${command}: ${r.stdout.trim() || r.stderr.trim()}`);
  return command === 'ADD' ? JSON.parse(r.stdout) : undefined;
}

/** `runc run -d`: its stdio must not be pipes (the container would hold them open) */
function runcRunDetached(f: Floor, id: string, bundle: string): Promise<void> {
  const errFile = join(bundle, 'runc.err');
  const fd = openSync(errFile, 'w');
  return new Promise((res, rej) => {
    const p = spawn(f.runc, ['--root', f.runcRoot, 'run', '-d', '--bundle', bundle, id], { stdio: ['ignore', 'ignore', fd] });
    closeSync(fd);
    p.on('error', rej);
    p.on('exit', (code) => { if (code === 0) res(); else rej(new Error(`runc run -d ${id}: exit ${code}: ${tail(errFile, 5)}`)); });
  });
}

async function floorOnce(f: Floor, id: string, check: boolean): Promise<{ up: number; down: number }> {
  const bundle = join(work, 'floor', id);
  const bridge = floorBridgeConf(f);
  const t0 = performance.now();
  await must('ip', ['netns', 'add', id]);
  const netns = `/run/netns/${id}`;
  const [, result] = await Promise.all([cni(f, 'ADD', loConf, id, netns, 'lo'), cni(f, 'ADD', bridge, id, netns, 'eth0')]);
  mkdirSync(bundle);
  const spec = structuredClone(f.baseSpec) as { hostname?: string; linux: { cgroupsPath?: string; namespaces: { type: string; path?: string }[] } };
  spec.hostname = id;
  spec.linux.cgroupsPath = `${names.floorCgroupParent}/${id}`;
  spec.linux.namespaces = spec.linux.namespaces.map((n) => (n.type === 'network' ? { type: 'network', path: netns } : n));
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
  await runcRunDetached(f, id, bundle);
  const up = performance.now() - t0;
  if (check) {
    const st = JSON.parse(await must(f.runc, ['--root', f.runcRoot, 'state', id])) as { status: string };
    if (st.status !== 'running') throw new Error(`floor container ${id} is ${st.status}`);
    const ip = ((result as { ips?: { address: string }[] }).ips?.[0]?.address ?? '').split('/')[0];
    await waitFor(`httpd in the floor container at ${ip}`, async () => (await fetch(`http://${ip}:8080/`)).ok, 5000, 20);
  }
  const t1 = performance.now();
  await must(f.runc, ['--root', f.runcRoot, 'delete', '-f', id]);
  await Promise.all([cni(f, 'DEL', { ...bridge, prevResult: result }, id, netns, 'eth0'), cni(f, 'DEL', loConf, id, netns, 'lo')]);
  await must('ip', ['netns', 'delete', id]);
  const down = performance.now() - t1;
  rmSync(bundle, { recursive: true, force: true });
  return { up, down };
}

async function floorRound(f: Floor, r: number): Promise<{ up: Lat; down: Lat; cpuMs: number }> {
  const up: number[] = [];
  const down: number[] = [];
  const c0 = machineCpu();
  for (let i = 0; i < N; i++) {
    const x = await floorOnce(f, `${names.floorNetns}${r}-${i}`, i === 0);
    up.push(x.up); down.push(x.down);
  }
  return { up: lat(up), down: lat(down), cpuMs: ((machineCpu() - c0) * 1000) / N };
}

/** the floor's bridge and IPAM state (the CNI bridge plugin never deletes its bridge) */
async function floorTeardown(f: Floor): Promise<void> {
  await sh('ip', ['link', 'delete', names.floorBridge]);
  rmSync(f.ipamDir, { recursive: true, force: true });
  for (const r of cgroupRoots()) rmdirTree(join(r, names.floorCgroupParent));
}

// ===================================================================================== podman

interface PodmanResult { version: string; first: number; play: Lat; teardown: number; n: number; conmonMb: number }
interface PodmanCtx { dir: string; env: NodeJS.ProcessEnv; bin: string; before: { varLibContainers: boolean; varLibCni: boolean; nftTables: string[]; libpodParent: string[]; cniForward: boolean } }
let podmanCtx: PodmanCtx | undefined;

function cgroupRoots(): string[] {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return ['/sys/fs/cgroup'];
  return readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c)).filter((p) => { try { return statSync(p).isDirectory(); } catch { return false; } });
}

async function nftTables(): Promise<string[]> {
  const r = await sh('nft', ['list', 'tables']);
  return r.code === 0 ? r.stdout.split('\n').map((l) => l.trim()).filter(Boolean) : [];
}

async function podmanRun(): Promise<PodmanResult | string> {
  if (args['no-podman']) return 'skipped (--no-podman)';
  const bin = findBin('podman');
  if (!bin) return 'skipped: podman is not installed (apt-get install -y --no-install-recommends podman catatonit)';
  if (!findBin('catatonit', ['/usr/libexec/podman'])) return 'skipped: kube play needs catatonit for its infra image (apt-get install -y --no-install-recommends catatonit)';
  if (!findBin('runc')) return 'skipped: podman needs runc on this host (crun refuses hybrid cgroups)';
  const dir = join(work, 'podman');
  for (const d of ['net.d', 'storage', 'run', 'tmp', 'ipam']) mkdirSync(join(dir, d), { recursive: true });
  // runtime-notes §7: runc (crun fails on hybrid cgroups), cgroupfs + file events (no systemd), ulimits no
  // higher than our own hard limits (no CAP_SYS_RESOURCE); podman lowers its own NPROC to 32768 first
  const nofile = Math.min(1048576, hardLimit('Max open files'));
  const nproc = Math.min(32768, hardLimit('Max processes'));
  writeFileSync(join(dir, 'containers.conf'), [
    '[containers]', `default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]`,
    '[engine]', 'cgroup_manager = "cgroupfs"', 'events_logger = "file"', `events_logfile_path = "${dir}/events.log"`, 'runtime = "runc"', `tmp_dir = "${dir}/tmp"`,
    '[network]', 'network_backend = "cni"', `network_config_dir = "${dir}/net.d"`, `default_subnet = "${names.podmanSubnet}"`, '',
  ].join('\n'));
  writeFileSync(join(dir, 'storage.conf'), ['[storage]', 'driver = "overlay"', `graphroot = "${dir}/storage"`, `runroot = "${dir}/run"`, ''].join('\n'));
  // podman's own default network (bridge + portmap + firewall + tuning), with our bridge name, subnet and IPAM dir
  const gw = names.podmanSubnet.split('/')[0]!.replace(/\.0$/, '.1');
  writeFileSync(join(dir, 'net.d', `${names.podmanNet}.conflist`), JSON.stringify({
    cniVersion: '0.4.0', name: names.podmanNet, plugins: [
      { type: 'bridge', bridge: names.podmanBridge, isGateway: true, ipMasq: true, hairpinMode: true,
        ipam: { type: 'host-local', routes: [{ dst: '0.0.0.0/0' }], ranges: [[{ subnet: names.podmanSubnet, gateway: gw }]], dataDir: join(dir, 'ipam') } },
      { type: 'portmap', capabilities: { portMappings: true } }, { type: 'firewall' }, { type: 'tuning' },
    ],
  }));
  const env = { ...process.env, CONTAINERS_CONF: join(dir, 'containers.conf'), CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf') };
  podmanCtx = {
    dir, env, bin,
    before: {
      varLibContainers: existsSync('/var/lib/containers'), varLibCni: existsSync('/var/lib/cni'), nftTables: await nftTables(),
      libpodParent: cgroupRoots().filter((r) => existsSync(join(r, 'libpod_parent'))),
      cniForward: (await sh('iptables', ['-t', 'filter', '-S', 'CNI-FORWARD'])).code === 0,
    },
  };
  const version = (await must(bin, ['--version'], { env })).trim();
  try {
    await must(bin, ['load', '-i', join(work, 'busybox.tar')], { env, timeoutMs: 120_000 });
  } catch (e) { return `skipped: podman load of the OCI archive failed: ${(e as Error).message}`; }
  const yaml = (name: string) => {
    const f = join(dir, `${name}.yaml`);
    // no containerPort: podman 4.3 kube play would publish it on the host (runtime-notes §7)
    writeFileSync(f, [
      'apiVersion: v1', 'kind: Pod', `metadata: {name: ${name}}`, 'spec:', '  terminationGracePeriodSeconds: 1', '  containers:',
      '  - name: c', `    image: ${IMAGE}`, '    imagePullPolicy: Never', `    command: ${JSON.stringify(COMMAND)}`, '',
    ].join('\n'));
    return f;
  };
  const play = async (name: string) => {
    const f = yaml(name);
    const t = performance.now();
    const r = await sh(bin, ['kube', 'play', '--network', names.podmanNet, f], { env, timeoutMs: 60_000 });
    const d = performance.now() - t;
    if (r.code !== 0) throw new Error(`podman kube play: exit ${r.code}: ${(r.stderr || r.stdout).trim().slice(0, 800)}`);
    return d;
  };
  let first: number;
  try {
    first = await play('pm-warmup'); // builds the podman-pause infra image once
  } catch (e) { return `skipped: ${(e as Error).message}`; }
  const ps = JSON.parse(await must(bin, ['pod', 'ps', '--format', 'json'], { env })) as { Name: string; Status: string }[];
  if (ps.find((p) => p.Name === 'pm-warmup')?.Status !== 'Running') return `skipped: the kube-played pod is not Running: ${JSON.stringify(ps)}`;
  const times: number[] = [];
  for (let i = 0; i < PODMAN_N; i++) times.push(await play(`pm-${i}`));
  const conmons = pidsOf('conmon', dir);
  const conmonMb = conmons.reduce((a, p) => a + rssMb(p), 0) / Math.max(1, conmons.length);
  const t = performance.now();
  // `pod rm -f -t 0` takes ~3 s per pod here; stop first, then rm, is what is fast
  await must(bin, ['pod', 'stop', '-a', '-t', '0'], { env, timeoutMs: 300_000 });
  await must(bin, ['pod', 'rm', '-a'], { env, timeoutMs: 300_000 });
  const teardown = (performance.now() - t) / 1000;
  return { version, first, play: lat(times), teardown, n: PODMAN_N + 1, conmonMb };
}

async function podmanCleanup(): Promise<void> {
  const p = podmanCtx;
  if (!p) return;
  podmanCtx = undefined;
  const q = (argv: string[]) => sh(p.bin, argv, { env: p.env, timeoutMs: 300_000 });
  await q(['pod', 'stop', '-a', '-t', '0']);
  await q(['pod', 'rm', '-a', '-f']);
  await q(['rm', '-a', '-f', '-t', '0']);
  await q(['network', 'rm', '-f', names.podmanNet]);
  for (const pid of pidsOf('conmon', p.dir)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  await sh('ip', ['link', 'delete', names.podmanBridge]);
  // the firewall plugin's CNI-FORWARD / CNI-ADMIN chains and their hook, if this bench made them and nothing else uses them
  const save = await sh('iptables-save', ['-t', 'filter']);
  if (save.code === 0 && !p.before.cniForward) {
    const rules = save.stdout.split('\n').filter((l) => l.startsWith('-A '));
    const fwd = rules.filter((l) => l.startsWith('-A CNI-FORWARD '));
    const admin = rules.filter((l) => l.startsWith('-A CNI-ADMIN '));
    if (fwd.every((l) => l.includes('-j CNI-ADMIN')) && admin.length === 0) {
      for (const l of rules.filter((x) => /-j CNI-FORWARD\b/.test(x) && !x.startsWith('-A CNI-'))) {
        await sh('iptables', ['-t', 'filter', '-D', ...splitRule(l.slice(3))]);
      }
      await sh('iptables', ['-t', 'filter', '-F', 'CNI-FORWARD']);
      await sh('iptables', ['-t', 'filter', '-X', 'CNI-FORWARD']);
      await sh('iptables', ['-t', 'filter', '-X', 'CNI-ADMIN']);
    }
  }
  // ipMasq's per-container nat chains are removed by CNI DEL; any left over for our network go now
  const nat = await sh('iptables-save', ['-t', 'nat']);
  if (nat.code === 0) {
    const ours = nat.stdout.split('\n').filter((l) => l.startsWith('-A ') && l.includes(`name: \\"${names.podmanNet}\\"`));
    const chains = new Set<string>();
    for (const l of ours) { const m = /-j (CNI-[0-9a-f]+)/.exec(l); if (m) chains.add(m[1]!); await sh('iptables', ['-t', 'nat', '-D', ...splitRule(l.slice(3))]); }
    for (const c of chains) { await sh('iptables', ['-t', 'nat', '-F', c]); await sh('iptables', ['-t', 'nat', '-X', c]); }
  }
  // iptables-nft made `ip filter` / `ip nat` for those rules: drop them again if they were not there and are empty
  for (const t of await nftTables()) {
    if (p.before.nftTables.includes(t) || !/^table ip (filter|nat)$/.test(t)) continue;
    const r = await sh('nft', ['-j', 'list', ...t.split(' ')]);
    let empty = false;
    try { empty = r.code === 0 && !(JSON.parse(r.stdout) as { nftables: Record<string, unknown>[] }).nftables.some((x) => 'rule' in x); } catch { /* keep it */ }
    if (empty) await sh('nft', ['delete', ...t.split(' ')]);
  }
  for (const r of cgroupRoots()) {
    if (p.before.libpodParent.includes(r)) continue;
    rmdirTree(join(r, 'libpod_parent'));
  }
  if (!p.before.varLibContainers) rmSync('/var/lib/containers', { recursive: true, force: true });
  if (!p.before.varLibCni) rmSync('/var/lib/cni', { recursive: true, force: true });
  else {
    rmSync(join('/var/lib/cni/networks', names.podmanNet), { recursive: true, force: true });
    try { for (const f of readdirSync('/var/lib/cni/results')) if (f.startsWith(`${names.podmanNet}-`)) rmSync(join('/var/lib/cni/results', f), { force: true }); } catch { /* none */ }
  }
}

/** an iptables-save rule spec back into argv (quotes kept together) */
function splitRule(spec: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(spec); m; m = re.exec(spec)) out.push(m[1] !== undefined ? m[1].replace(/\\"/g, '"') : m[2]!);
  return out;
}

/** rmdir(2) of a cgroup directory and its sub-directories, deepest first */
function rmdirTree(p: string): void {
  let entries: string[];
  try { entries = readdirSync(p); } catch { return; }
  for (const e of entries) {
    const c = join(p, e);
    try { if (statSync(c).isDirectory()) rmdirTree(c); } catch { /* gone */ }
  }
  try { rmdirSync(p); } catch { /* busy or gone */ }
}

// ==================================================================================== cleanup

let cluster: Cluster | undefined;
let cleaning: Promise<void> | undefined;

/** what the agent's cleanup may have missed, found by our own names (never anything of others) */
async function sweep(): Promise<string[]> {
  const left: string[] = [];
  const runc = findBin('runc') ?? 'runc';
  for (const root of [join(names.runDir, 'runc'), join(names.runDir, 'floor-runc')]) {
    if (!existsSync(root)) continue;
    const r = await sh(runc, ['--root', root, 'list', '-q']);
    for (const id of r.stdout.split('\n').filter(Boolean)) { left.push(`runc container ${id}`); await sh(runc, ['--root', root, 'delete', '-f', id]); }
  }
  for (const pid of pidsOf('conmon', names.runDir)) { left.push(`conmon ${pid}`); try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  let netns: string[] = [];
  try { netns = readdirSync('/run/netns'); } catch { /* none */ }
  for (const n of netns) {
    if (n.startsWith(names.floorNetns) || (n.startsWith('kyb-') && podUIDs.has(n.slice(4)))) { left.push(`netns ${n}`); await sh('ip', ['netns', 'delete', n]); }
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '')
    .filter((m) => (work && m.startsWith(`${work}/`)) || m.startsWith(`${names.runDir}/`)).sort((a, b) => b.length - a.length);
  for (const m of mounts) { left.push(`mount ${m}`); await sh('umount', ['-l', m]); }
  if ((await sh('nft', ['list', 'table', 'ip', names.proxyTable])).code === 0) { left.push(`nft table ip ${names.proxyTable}`); await sh('nft', ['delete', 'table', 'ip', names.proxyTable]); }
  for (const b of [names.bridge, names.floorBridge, names.podmanBridge]) {
    if (existsSync(`/sys/class/net/${b}`)) { left.push(`bridge ${b}`); await sh('ip', ['link', 'delete', b]); }
  }
  for (const r of cgroupRoots()) {
    for (const parent of [names.cgroupParent, names.floorCgroupParent]) {
      const p = join(r, parent);
      if (existsSync(p)) { rmdirTree(p); if (existsSync(p)) left.push(`cgroup ${p}`); }
    }
  }
  return left;
}

async function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const c = cluster;
    if (c) {
      if (c.agent) {
        const t = performance.now();
        await agentCleanup(c).catch((e) => log(`agent cleanup failed: ${(e as Error).message}`));
        log(`agent cleanup took ${((performance.now() - t) / 1000).toFixed(1)} s`);
        if (args.verbose) log(`agent log (tail):\n${tail(c.agent.logFile, 60)}`);
        if (args['agent-log']) { try { writeFileSync(args['agent-log'], readFileSync(c.agent.logFile)); } catch (e) { log(`--agent-log: ${(e as Error).message}`); } }
      }
      c.client.close();
    }
    await podmanCleanup().catch((e) => log(`podman cleanup failed: ${(e as Error).message}`));
    const left = await sweep().catch((e) => [`sweep failed: ${(e as Error).message}`]);
    if (left.length) log(`removed what the agent's cleanup left behind: ${left.join(', ')}`);
    await Promise.all(children.map((p) => stopProcess(p)));
    rmSync(names.runDir, { recursive: true, force: true });
    if (work) rmSync(work, { recursive: true, force: true });
  })();
  return cleaning;
}

// ======================================================================================= main

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('this bench needs root (runc, network namespaces, cgroups)');
  for (const b of ['runc', 'conmon', 'ip']) if (!findBin(b)) throw new Error(`${b} not found`);
  if (!existsSync('/bin/busybox')) throw new Error('/bin/busybox not found (apt-get install -y busybox-static)');
  const started = performance.now();
  clkTck = Number((await sh('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
  const loadStart = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  work = mkdtempSync(join(args.dir!, 'kyb-pod-start-bench-'));
  await pickNetworks();
  log(`work dir ${work}; run dir ${names.runDir}; bridge ${names.bridge}; cgroup ${names.cgroupParent}; cluster CIDR ${names.clusterCIDR} (floor ${names.floorSubnet}, podman ${names.podmanSubnet}); ${N} pods × ${ROUNDS} rounds`);

  const base = await startServer();
  cluster = { ...base, agentMode: 'startAgent child', agentCfg: { server: base.url, token: base.token, dataDir: join(base.dataDir, 'agent') }, agentCliArgs: [] };
  cluster = await startAgentProcess(base);
  const c = cluster;
  log(`kyb server pid ${c.server.proc.pid} at ${c.url}; agent (${c.agentMode}) pid ${c.agent!.proc.pid}`);
  await waitFor('node Ready', async () => {
    if (exited(c.agent!.proc)) throw new Error(`the agent exited:\n${tail(c.agent!.logFile)}`);
    const n = await c.client.get<KObject & { status?: { conditions?: { type: string; status: string }[] } }>(NODES, null, names.node);
    return n.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True');
  }, 90_000, 100);
  await sleep(3000);
  const rssIdle = rssMb(c.agent!.proc.pid);
  log(`node ${names.node} Ready; agent idle RSS ${rssIdle.toFixed(1)} MB`);

  const floor = await floorSetup(join(c.agentCfg.dataDir, 'images'));
  const w = new PodWatch(c.client, 'default');
  await w.start();
  // warm-up, not recorded: the first pod makes the bridge; a few floor runs warm the page cache
  for (const n of ['warm-0', 'warm-1']) { await createPod(c, w, n); await w.until([n], 'running', 60_000); }
  await deletePods(c, w, ['warm-0', 'warm-1']);
  for (let i = 0; i < 3; i++) await floorOnce(floor, `${names.floorNetns}w-${i}`, i === 0);

  const floorRes: { up: Lat; down: Lat; cpuMs: number }[] = [];
  const kybRes: KybRound[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    log(`round ${r + 1}/${ROUNDS}: floor`);
    floorRes.push(await floorRound(floor, r));
    log(`round ${r + 1}/${ROUNDS}: kyb sequential + burst`);
    kybRes.push(await kybRound(c, w, r));
    const k = kybRes[r]!;
    log(`  floor p50 ${ms(floorRes[r]!.up.p50)}; kyb seq p50 ${ms(k.seq.p50)} p99 ${ms(k.seq.p99)}; burst p50 ${ms(k.burst.p50)} p99 ${ms(k.burst.p99)} ${k.burstRate.toFixed(1)} pods/s`);
  }
  await w.stop();
  await floorTeardown(floor);
  log('podman');
  let pm: PodmanResult | string;
  try { pm = await podmanRun(); } catch (e) { pm = `failed: ${(e as Error).message}`; }
  await podmanCleanup().catch((e) => log(`podman cleanup: ${(e as Error).message}`));

  const cpuModel = cpus()[0]?.model ?? '';
  const loadEnd = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  // --------------------------------------------------------------------------------------- table
  const rows: [string, string, string][] = [];
  const row = (a: string, b: string, c2 = '') => rows.push([a, b, c2]);
  const sec = (title: string) => rows.push([`\n${title}`, '', '']);
  const m = <T>(xs: T[], f: (x: T) => number) => median(xs.map(f));
  const pp = (p50: number, p99: number) => `p50 ${ms(p50).padStart(8)}   p99 ${ms(p99).padStart(8)}`;
  const range = <T>(xs: T[], f: (x: T) => number) => xs.length > 1 ? `rounds ${xs.map((x) => ms(f(x))).join(' / ')}` : '';
  const seqP50 = m(kybRes, (x) => x.seq.p50);
  const seqP99 = m(kybRes, (x) => x.seq.p99);
  const fP50 = m(floorRes, (x) => x.up.p50);
  const fP99 = m(floorRes, (x) => x.up.p99);

  sec(`Pod startup: create → Running seen through a watch (busybox httpd, 1 container, IfNotPresent; ${N} pods per figure)`);
  row('kyb, one pod at a time', pp(seqP50, seqP99), range(kybRes, (x) => x.seq.p50));
  row('  create → bound (scheduler)', pp(m(kybRes, (x) => x.seqBind.p50), m(kybRes, (x) => x.seqBind.p99)));
  row('  bound → Running (agent)', pp(m(kybRes, (x) => x.seqAgent.p50), m(kybRes, (x) => x.seqAgent.p99)));
  row(`kyb, burst of ${N}`, pp(m(kybRes, (x) => x.burst.p50), m(kybRes, (x) => x.burst.p99)),
    `${m(kybRes, (x) => x.burstRate).toFixed(1)} pods/s; all Running after ${m(kybRes, (x) => x.burstSecs).toFixed(2)} s`);
  row('  create → bound (scheduler)', pp(m(kybRes, (x) => x.burstBind.p50), m(kybRes, (x) => x.burstBind.p99)));
  row('  bound → Running (agent)', pp(m(kybRes, (x) => x.burstAgent.p50), m(kybRes, (x) => x.burstAgent.p99)));
  row(`delete ${N} pods (grace 1 s) → gone, no container left`, `${m(kybRes, (x) => x.deleteSeq).toFixed(2)} s`,
    `after the burst ${m(kybRes, (x) => x.deleteBurst).toFixed(2)} s; rounds ${kybRes.map((x) => `${x.deleteSeq.toFixed(1)}+${x.deleteBurst.toFixed(1)}`).join(' / ')} s`);
  const cpuRow = (label: string, f: (x: KybRound) => Cpu) =>
    row(label, `${ms(m(kybRes, (x) => f(x).machine)).padStart(8)} machine`, `agent ${ms(m(kybRes, (x) => f(x).agent))} (with the runc/CNI/ip/mount it waits for; conmon + runc create not counted), server ${ms(m(kybRes, (x) => f(x).server))}`);
  cpuRow('CPU per pod, one at a time (all cores)', (x) => x.cpuSeq);
  cpuRow('CPU per pod, burst', (x) => x.cpuBurst);

  sec('Floor: ip netns add + CNI ADD (lo ∥ bridge/host-local) + runc run -d, same container, read-only layer, no overlay/conmon/API');
  row('setup', pp(fP50, fP99), range(floorRes, (x) => x.up.p50));
  row('teardown (runc delete -f, CNI DEL, netns delete)', pp(m(floorRes, (x) => x.down.p50), m(floorRes, (x) => x.down.p99)));
  row('CPU per floor pod, setup + teardown (all cores)', `${ms(m(floorRes, (x) => x.cpuMs)).padStart(8)} machine`);
  row('kyb one-at-a-time / floor', `p50 ${(seqP50 / fP50).toFixed(2)}x   p99 ${(seqP99 / fP99).toFixed(2)}x`, `kyb − floor at p50: ${ms(seqP50 - fP50)}`);

  if (typeof pm === 'string') {
    sec('podman kube play');
    row(pm, '');
  } else {
    sec(`${pm.version}: kube play, one pod at a time (runc, cgroupfs, CNI bridge+portmap+firewall+tuning; infra + 1 container)`);
    row(`podman kube play (command start → exit), ${PODMAN_N} pods`, pp(pm.play.p50, pm.play.p99), `first play (builds the pause image) ${ms(pm.first)}`);
    row('kyb one-at-a-time / podman', `p50 ${(seqP50 / pm.play.p50).toFixed(2)}x   p99 ${(seqP99 / pm.play.p99).toFixed(2)}x`);
    row(`podman pod stop -a -t 0 + pod rm -a (${pm.n} pods)`, `${pm.teardown.toFixed(2)} s`);
    row('conmon RSS per container (podman: infra + c)', `${pm.conmonMb.toFixed(1)} MB`);
  }

  sec(`Agent memory (VmRSS of the agent process, ${c.agentMode}, through tsx)`);
  row('idle: node Ready, no pods', `${rssIdle.toFixed(1)} MB`);
  row(`${N} pods running (after the one-at-a-time phase)`, `${m(kybRes, (x) => x.rssSeq).toFixed(1)} MB`, kybRes.map((x) => x.rssSeq.toFixed(1)).join(' / '));
  row(`${N} pods running (after the burst)`, `${m(kybRes, (x) => x.rssBurst).toFixed(1)} MB`, kybRes.map((x) => x.rssBurst.toFixed(1)).join(' / '));
  row('after the pods were deleted', `${m(kybRes, (x) => x.rssAfter).toFixed(1)} MB`, kybRes.map((x) => x.rssAfter.toFixed(1)).join(' / '));
  row('conmon RSS per container (kyb)', `${m(kybRes, (x) => x.conmonMb).toFixed(1)} MB`);
  const idle = kybRes[0]?.cpuIdle;
  if (idle) row(`CPU with ${N} pods running, nothing to do (${IDLE_CPU_SECONDS} s)`, `${(idle.agent / 10).toFixed(1)} % of a core`, `agent with its runc/… children; machine ${(idle.machine / 10).toFixed(1)} %, server ${(idle.server / 10).toFixed(1)} %`);

  sec('Targets (one pod at a time; burst beside)');
  const bP50 = m(kybRes, (x) => x.burst.p50);
  const bP99 = m(kybRes, (x) => x.burst.p99);
  row(`p50 < ${TARGET_P50} ms`, ms(seqP50), `${seqP50 < TARGET_P50 ? 'met' : 'NOT met'}   (burst ${ms(bP50)}: ${bP50 < TARGET_P50 ? 'met' : 'not met'})`);
  row(`p99 < ${TARGET_P99} ms`, ms(seqP99), `${seqP99 < TARGET_P99 ? 'met' : 'NOT met'}   (burst ${ms(bP99)}: ${bP99 < TARGET_P99 ? 'met' : 'not met'})`);

  console.log(`kybernetes pod startup bench — median of ${ROUNDS} rounds × ${N} pods; node ${process.version}; ${cpus().length} × ${cpuModel}; ${new Date().toISOString()}; ${((performance.now() - started) / 1000).toFixed(0)} s; load average ${loadStart} at the start, ${loadEnd} at the end`);
  for (const [a, b, c2] of rows) console.log(b || c2 ? `${a.padEnd(58)} ${b.padEnd(30)} ${c2}` : a);
}

if (args['agent-child']) {
  agentChild(args['agent-child']).catch((e) => { process.stderr.write(`kyb agent: ${(e as Error).stack ?? e}\n`); process.exit(1); });
} else {
  let interrupted = false;
  const onSignal = (sig: string) => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  try {
    await main();
  } catch (e) {
    process.exitCode = 1;
    log(`failed: ${(e as Error).stack ?? e}`);
    if (cluster?.agent) log(`agent log (tail):\n${tail(cluster.agent.logFile, 40)}`);
    if (cluster?.server) log(`server log (tail):\n${tail(cluster.server.logFile, 20)}`);
  } finally {
    await cleanup();
  }
}
