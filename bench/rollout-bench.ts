// Requests served and failed while a Deployment behind a ClusterIP Service rolls to a new image under
// steady load (issue 5's zero-downtime promise), and how long the rollout took.
//
// A `kyb server` with its node agent, service proxy and DNS runs in a child process (its own data dir,
// run dir, cgroup parent, bridge, nft table and pod network); the load generator is a second process
// on the host: N loops, each one HTTP GET per new connection to the ClusterIP, for the whole rollout.
// 3 replicas of busybox httpd with a readiness probe and a 2 s preStop sleep; maxSurge 1,
// maxUnavailable 0; `kubectl set image` v1 → v2 → v1 … for --rollouts rounds.
//
// Run (root; runc, conmon, CNI plugins, nft, busybox-static):
//   node --import tsx bench/rollout-bench.ts [--rollouts 3] [--concurrency 4]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { buildBusyboxImage } from '../src/node/images/index.js';
import { cleanupAgent } from '../src/cli/agent.js';

const KUBECTL = existsSync('/usr/lib/google-cloud-sdk/bin/kubectl.1.32') ? '/usr/lib/google-cloud-sdk/bin/kubectl.1.32' : 'kubectl';
const arg = (name: string, def: number): number => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : def; };
const rollouts = arg('rollouts', 3);
const concurrency = arg('concurrency', 4);

const suffix = randomBytes(3).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'kyb-rollout-bench-'));
const names = { runRoot: join(dir, 'run'), cgroupParent: `/kyb-rb-${suffix}`, bridge: `kybr${suffix}`, proxyTableName: `kr${suffix}` };
const env = { ...process.env, KUBECONFIG: join(dir, 'kubeconfig.yaml'), KUBECACHEDIR: join(dir, 'kube-cache'), HOME: dir };

function kubectl(args: string[], input?: string): string {
  return execFileSync(KUBECTL, args, { env, input, encoding: 'utf8', timeout: 300_000 });
}

async function waitFor(what: string, f: () => boolean, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

const deployment = (image: string) => JSON.stringify({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
  spec: {
    replicas: 3, selector: { matchLabels: { app: 'web' } },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
    template: {
      metadata: { labels: { app: 'web' } },
      spec: {
        terminationGracePeriodSeconds: 10,
        containers: [{
          name: 'web', image, imagePullPolicy: 'IfNotPresent', command: ['/bin/sh', '-c', 'hostname > /www/index.html; exec httpd -f -p 8080 -h /www'],
          ports: [{ name: 'http', containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
          lifecycle: { preStop: { exec: { command: ['/bin/sleep', '2'] } } },
        }],
      },
    },
  },
});

const LOADGEN = `
  const http = require('node:http');
  const [host, port, n] = process.argv.slice(1);
  let ok = 0, failed = 0, stop = false; const errors = {};
  const one = () => new Promise((res) => { const r = http.get({ host, port: Number(port), path: '/', agent: false, timeout: 5000 }, (s) => { s.resume(); s.on('end', () => { if (s.statusCode === 200) ok++; else { failed++; errors['HTTP ' + s.statusCode] = (errors['HTTP ' + s.statusCode] || 0) + 1; } res(); }); });
    r.on('timeout', () => r.destroy(new Error('timeout'))); r.on('error', (e) => { failed++; errors[e.message] = (errors[e.message] || 0) + 1; res(); }); });
  const loop = async () => { while (!stop) await one(); };
  process.on('SIGTERM', () => { stop = true; });
  Promise.all(Array.from({ length: Number(n) }, loop)).then(() => process.stdout.write(JSON.stringify({ ok, failed, errors })));
`;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root');
  mkdirSync(join(dir, 'agent', 'images', 'import'), { recursive: true });
  await buildBusyboxImage({ out: join(dir, 'agent', 'images', 'import', 'v1.tar'), ref: 'kyb.local/web:v1' });
  await buildBusyboxImage({ out: join(dir, 'agent', 'images', 'import', 'v2.tar'), ref: 'kyb.local/web:v2', files: { '/www/version': 'v2\n' } });
  let server: ChildProcess | undefined;
  try {
    const octet = 150 + (parseInt(suffix, 16) % 40);
    server = spawn(process.execPath, ['--import', 'tsx', '-e', `import('./src/cli/main.ts').then((m) => m.main(process.argv.slice(1)))`,
      'server', '--data-dir', dir, '--https-listen-port', '0', '--datastore-endpoint', 'memory://', '--node-name', `rb-${suffix}`,
      '--cluster-cidr', `10.${octet}.0.0/16`, '--cluster-dns-upstream', 'none', '--agent-run-dir', names.runRoot,
      '--cgroup-parent', names.cgroupParent, '--pod-bridge', names.bridge, '--proxy-table', names.proxyTableName],
    { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'ignore', 'pipe'] });
    server.stderr!.on('data', () => undefined);
    await waitFor('kubeconfig', () => existsSync(env.KUBECONFIG));
    await waitFor('node Ready', () => { try { return /\sReady\s/.test(kubectl(['get', 'nodes'])); } catch { return false; } });
    kubectl(['apply', '-f', '-'], deployment('kyb.local/web:v1'));
    kubectl(['rollout', 'status', 'deployment/web', '--timeout=180s']);
    kubectl(['expose', 'deployment', 'web', '--port=80', '--target-port=http']);
    const vip = kubectl(['get', 'svc', 'web', '-o', 'jsonpath={.spec.clusterIP}']).trim();
    await waitFor('3 endpoints', () => kubectl(['get', 'endpoints', 'web', '-o', 'jsonpath={.subsets[0].addresses[*].ip}']).trim().split(' ').length === 3);
    const rows: { round: number; image: string; rolloutS: number; ok: number; failed: number; errors: Record<string, number> }[] = [];
    for (let i = 0; i < rollouts; i++) {
      const image = i % 2 === 0 ? 'kyb.local/web:v2' : 'kyb.local/web:v1';
      const gen = spawn(process.execPath, ['-e', LOADGEN, vip, '80', String(concurrency)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      gen.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
      const finished = new Promise<void>((resolve) => gen.on('exit', () => resolve()));
      await new Promise((r) => setTimeout(r, 1000));
      const t0 = Date.now();
      kubectl(['set', 'image', 'deployment/web', `web=${image}`]);
      kubectl(['rollout', 'status', 'deployment/web', '--timeout=300s']);
      const rolloutS = (Date.now() - t0) / 1000;
      await new Promise((r) => setTimeout(r, 1000));
      gen.kill('SIGTERM');
      await finished;
      const r = JSON.parse(out) as { ok: number; failed: number; errors: Record<string, number> };
      rows.push({ round: i + 1, image, rolloutS, ...r });
    }
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    process.stdout.write(`\nkybernetes rolling update under load — 3 replicas, maxSurge 1 / maxUnavailable 0, ${concurrency} load loops (new connection per request) to the ClusterIP; load average ${load}\n`);
    process.stdout.write('round  image              rollout   requests served   failed\n');
    for (const r of rows) {
      process.stdout.write(`${String(r.round).padEnd(7)}${r.image.padEnd(19)}${`${r.rolloutS.toFixed(1)} s`.padStart(8)}${String(r.ok).padStart(18)}${String(r.failed).padStart(9)}${r.failed ? `   ${JSON.stringify(r.errors)}` : ''}\n`);
    }
    const total = rows.reduce((a, r) => ({ ok: a.ok + r.ok, failed: a.failed + r.failed }), { ok: 0, failed: 0 });
    process.stdout.write(`total: ${total.ok} served, ${total.failed} failed (target: 0 failed)\n`);
  } finally {
    server?.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 2000));
    await cleanupAgent({ server: '', token: '', dataDir: join(dir, 'agent'), ...names }).catch((e) => process.stderr.write(`cleanup: ${(e as Error).message}\n`));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => { process.stderr.write(`${(e as Error).stack ?? e}\n`); process.exit(1); });
