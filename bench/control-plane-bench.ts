// Control-plane benches of issue 3 that need a whole `kyb server` process (SQLite store, controllers
// and scheduler in their worker thread, as a user runs it) and simulated nodes, driven by the real
// kubectl:
//
//   replicas   one Deployment of N replicas (default 1,000) on 100 simulated nodes: from
//              `kubectl apply` to every replica Running and Ready (the Deployment's readyReplicas).
//   node-loss  4 nodes, 12 replicas spread over them; one node's heartbeat stops (its simulated-node
//              process is killed): time to Ready=Unknown, to its pods' eviction, and to 12 Ready
//              replicas again on the other nodes. `--profile default` uses upstream's timings (40 s
//              node-monitor grace period, 300 s default tolerations: about 6 minutes);
//              `--profile fast` the fast profile (8 s grace, 10 s default tolerations).
//   memory     the server's RSS idle, then holding 5,000 nodes (heartbeating from a separate
//              `kyb simulate-nodes` process) and 10,000 pods (one Deployment).
//
// Run: node --import tsx bench/control-plane-bench.ts replicas [--replicas 1000] [--nodes 100] [--rounds 3]
//      node --import tsx bench/control-plane-bench.ts node-loss [--profile fast|default] [--rounds 3]
//      node --import tsx bench/control-plane-bench.ts memory [--nodes 5000] [--pods 10000]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { median } from './bench-common.js';

const KUBECTL = existsSync('/usr/lib/google-cloud-sdk/bin/kubectl.1.32') ? '/usr/lib/google-cloud-sdk/bin/kubectl.1.32' : 'kubectl';
const ROOT = join(import.meta.dirname, '..');
const argv = process.argv.slice(2);
const mode = argv[0] ?? 'replicas';
const opt = (name: string, def: string): string => { const i = argv.indexOf(`--${name}`); return i > 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def; };

interface Kyb {
  dir: string;
  proc: ChildProcess;
  env: NodeJS.ProcessEnv;
  kubeconfig: string;
  get(path: string): Promise<any>;
  kubectl(args: string[], input?: string): string;
  rssMB(): number;
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function kybArgs(sub: string, args: string[]): string[] {
  return ['--import', 'tsx', join(ROOT, 'test/integration/kyb-entry.ts'), sub, ...args];
}

/** RSS of a process and its (thread) memory: VmRSS from /proc, in MB */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function startKyb(args: string[]): Promise<Kyb> {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-cp-bench-'));
  const kubeconfig = join(dir, 'kubeconfig.yaml');
  const port = 20000 + Math.floor(Math.random() * 20000);
  const proc = spawn(process.execPath, kybArgs('server', ['--data-dir', dir, '--https-listen-port', String(port), '--disable-agent', ...args]),
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await until('the kubeconfig', async () => existsSync(kubeconfig) || (proc.exitCode !== null ? Promise.reject(new Error(stderr)) : false), 60_000);
  const kc = parseYaml(readFileSync(kubeconfig, 'utf8'));
  const ca = Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString();
  const server = new URL(kc.clusters[0].cluster.server);
  const token = kc.users[0].user.token as string;
  const env = { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dir, 'kube-cache'), HOME: dir };
  const get = (path: string) => new Promise<any>((resolve, reject) => {
    const req = request({ host: server.hostname, port: server.port, path, ca, headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        if (res.statusCode !== 200) reject(new Error(`GET ${path}: ${res.statusCode} ${body.slice(0, 200)}`)); else resolve(JSON.parse(body));
      });
    });
    req.on('error', reject);
    req.end();
  });
  await until('/readyz', () => get('/api/v1/namespaces/default').then(() => true), 60_000);
  return {
    dir, proc, env, kubeconfig, get,
    kubectl: (a, input) => execFileSync(KUBECTL, a, { env, input, encoding: 'utf8', timeout: 600_000, maxBuffer: 256 * 1024 * 1024 }),
    rssMB: () => rssOf(proc.pid!),
    async stop() {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function simulateNodes(k: Kyb, args: string[]): { proc: ChildProcess; exited: Promise<void> } {
  const proc = spawn(process.execPath, kybArgs('simulate-nodes', ['--kubeconfig', k.kubeconfig, ...args]), { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  return { proc, exited: new Promise<void>((resolve) => proc.once('exit', () => resolve())) };
}

const deployment = (name: string, replicas: number) => JSON.stringify({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name },
  spec: {
    replicas, selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: { containers: [{ name: 'app', image: 'kyb.local/busybox:1.35', resources: { requests: { cpu: '10m', memory: '16Mi' } } }] },
    },
  },
});

async function readyNodes(k: Kyb): Promise<number> {
  const l = await k.get('/api/v1/nodes');
  return (l.items as any[]).filter((n) => n.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')).length;
}

async function readyReplicas(k: Kyb, name: string): Promise<number> {
  const d = await k.get(`/apis/apps/v1/namespaces/default/deployments/${name}`);
  return d.status?.readyReplicas ?? 0;
}

// ------------------------------------------------------------------ replicas

async function benchReplicas(): Promise<void> {
  const replicas = Number(opt('replicas', '1000'));
  const nodes = Number(opt('nodes', '100'));
  const rounds = Number(opt('rounds', '3'));
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const k = await startKyb(['--simulate-nodes', String(nodes)]);
    try {
      await until(`${nodes} Ready nodes`, async () => (await readyNodes(k)) === nodes, 120_000, 500);
      const t0 = performance.now();
      k.kubectl(['apply', '-f', '-'], deployment('big', replicas));
      await until(`${replicas} ready replicas`, async () => (await readyReplicas(k, 'big')) === replicas, 600_000, 100);
      const s = (performance.now() - t0) / 1000;
      times.push(s);
      process.stdout.write(`  round ${r + 1}: ${replicas} replicas Running and Ready in ${s.toFixed(2)} s (${(replicas / s).toFixed(0)} pods/s); server RSS ${k.rssMB().toFixed(0)} MB\n`);
    } finally { await k.stop(); }
  }
  process.stdout.write(`\n1,000-replica deployment, apply → all Ready (${nodes} simulated nodes, SQLite, kyb server process): median ${median(times).toFixed(2)} s of ${rounds}\n`);
}

// ------------------------------------------------------------------ node loss

async function benchNodeLoss(): Promise<void> {
  const profile = opt('profile', 'fast');
  const rounds = Number(opt('rounds', profile === 'fast' ? '3' : '1'));
  const fast = profile === 'fast';
  const rows: { unknown: number; evicted: number; replaced: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    const k = await startKyb(['--simulate-nodes', '3', ...(fast ? ['--profile', 'fast'] : [])]);
    let victim: ReturnType<typeof simulateNodes> | undefined;
    try {
      victim = simulateNodes(k, ['--count', '1', '--prefix', 'victim-', '--heartbeat-interval', fast ? '2s' : '10s', '--lease-duration', fast ? '8' : '40']);
      await until('4 Ready nodes', async () => (await readyNodes(k)) === 4, 120_000, 300);
      k.kubectl(['apply', '-f', '-'], deployment('web', 12));
      await until('12 ready replicas', async () => (await readyReplicas(k, 'web')) === 12, 120_000, 200);
      const pods = async () => (await k.get('/api/v1/namespaces/default/pods?labelSelector=app%3Dweb')).items as any[];
      const onVictim = (await pods()).filter((p) => p.spec.nodeName === 'victim-0').map((p) => p.metadata.name as string);
      if (!onVictim.length) throw new Error('no replica landed on the victim node');
      const t0 = performance.now();
      victim.proc.kill('SIGKILL');
      await victim.exited;
      await until('Ready=Unknown', async () => {
        const n = await k.get('/api/v1/nodes/victim-0');
        return n.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'Unknown');
      }, 900_000, 200);
      const unknown = (performance.now() - t0) / 1000;
      await until('eviction of its pods', async () => {
        const live = new Map((await pods()).map((p) => [p.metadata.name, p]));
        return onVictim.every((n) => !live.has(n) || live.get(n).metadata.deletionTimestamp);
      }, 900_000, 200);
      const evicted = (performance.now() - t0) / 1000;
      await until('12 Ready replicas on the other nodes', async () => (await pods()).filter((p) => p.spec.nodeName && p.spec.nodeName !== 'victim-0'
        && !p.metadata.deletionTimestamp && p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')).length === 12, 900_000, 200);
      const replaced = (performance.now() - t0) / 1000;
      rows.push({ unknown, evicted, replaced });
      process.stdout.write(`  round ${r + 1}: ${onVictim.length} pods on the lost node; Ready=Unknown after ${unknown.toFixed(1)} s, evicted after ${evicted.toFixed(1)} s, 12 Ready again after ${replaced.toFixed(1)} s\n`);
    } finally {
      victim?.proc.kill('SIGKILL');
      await k.stop();
    }
  }
  process.stdout.write(`\nnode loss → replacements Ready (${profile} profile), median of ${rounds}: Unknown ${median(rows.map((x) => x.unknown)).toFixed(1)} s, ` +
    `evicted ${median(rows.map((x) => x.evicted)).toFixed(1)} s, replaced ${median(rows.map((x) => x.replaced)).toFixed(1)} s\n`);
}

// ------------------------------------------------------------------ memory

async function benchMemory(): Promise<void> {
  const nodes = Number(opt('nodes', '5000'));
  const podCount = Number(opt('pods', '10000'));
  const k = await startKyb([]);
  let sim: ReturnType<typeof simulateNodes> | undefined;
  try {
    await sleep(5000);
    const idle = k.rssMB();
    process.stdout.write(`  idle server RSS ${idle.toFixed(0)} MB\n`);
    sim = simulateNodes(k, ['--count', String(nodes)]);
    await until(`${nodes} Ready nodes`, async () => (await readyNodes(k)) === nodes, 600_000, 2000);
    const withNodes = k.rssMB();
    process.stdout.write(`  with ${nodes} nodes: ${withNodes.toFixed(0)} MB\n`);
    const t0 = performance.now();
    k.kubectl(['apply', '-f', '-'], deployment('big', podCount));
    await until(`${podCount} ready replicas`, async () => (await readyReplicas(k, 'big')) === podCount, 1_800_000, 1000);
    const s = (performance.now() - t0) / 1000;
    await sleep(15_000); // let a heartbeat round and GC settle
    const full = k.rssMB();
    process.stdout.write(`  ${podCount} pods Ready in ${s.toFixed(1)} s\n`);
    process.stdout.write(`\nserver memory (one kyb server process: API server + SQLite + controllers + scheduler; nodes simulated in another process):\n` +
      `  idle ${idle.toFixed(0)} MB · ${nodes} nodes ${withNodes.toFixed(0)} MB · ${nodes} nodes + ${podCount} pods ${full.toFixed(0)} MB\n`);
  } finally {
    sim?.proc.kill('SIGTERM');
    await k.stop();
  }
}

const run = mode === 'node-loss' ? benchNodeLoss : mode === 'memory' ? benchMemory : benchReplicas;
run().then(() => process.exit(0), (e) => { process.stderr.write(`${(e as Error).stack ?? e}\n`); process.exit(1); });
