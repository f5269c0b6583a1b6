// HorizontalPodAutoscaler reaction times with real containers (issue 6): a `kyb server` with its node
// agent in a child process, a Deployment of busybox CPU burners (request 100m) and
// `kubectl autoscale --cpu-percent=50 --min=1 --max=3`. The load is a file the pods see through a
// hostPath volume: while it exists every pod spins, so the same pods burn and then idle.
//   load on  → the Deployment scaled to 3, and the 3 replicas Running and Ready;
//   load off → the Deployment scaled back to 1.
// `--timing default`: upstream's timings (15 s metric resolution, 15 s HPA sync, 5 min scale-down
// stabilization; one round takes about 6 minutes). `--timing test`: 2 s resolution, 3 s sync, 15 s window.
//
// Run (root; runc, conmon, CNI plugins, nft, busybox-static):
//   node --import tsx bench/hpa-bench.ts [--timing test|default] [--rounds 3]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { buildBusyboxImage } from '../src/node/images/index.js';
import { cleanupAgent } from '../src/cli/agent.js';
import { median } from './bench-common.js';

const KUBECTL = existsSync('/usr/lib/google-cloud-sdk/bin/kubectl.1.32') ? '/usr/lib/google-cloud-sdk/bin/kubectl.1.32' : 'kubectl';
const opt = (name: string, def: string): string => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1]! : def; };
const timing = opt('timing', 'test');
const rounds = Number(opt('rounds', timing === 'test' ? '3' : '1'));
const TIMING_FLAGS = timing === 'default'
  ? []
  : ['--metric-resolution', '2s', '--horizontal-pod-autoscaler-sync-period', '3s', '--horizontal-pod-autoscaler-downscale-stabilization', '15s'];

const suffix = randomBytes(3).toString('hex');
const dir = mkdtempSync(join(tmpdir(), 'kyb-hpa-bench-'));
const loadDir = join(dir, 'load');
const names = { runRoot: join(dir, 'run'), cgroupParent: `/kyb-hb-${suffix}`, bridge: `kybb${suffix}`, proxyTableName: `kb${suffix}` };
const env = { ...process.env, KUBECONFIG: join(dir, 'kubeconfig.yaml'), KUBECACHEDIR: join(dir, 'kube-cache'), HOME: dir };
const kubectl = (args: string[], input?: string): string => execFileSync(KUBECTL, args, { env, input, encoding: 'utf8', timeout: 300_000 });

async function waitFor(what: string, f: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    let ok = false;
    try { ok = f(); } catch { /* not yet */ }
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const BURN = 'while :; do if [ -e /load/on ]; then i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; else sleep 1; fi; done';
const deployment = JSON.stringify({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'burn' },
  spec: {
    replicas: 1, selector: { matchLabels: { app: 'burn' } },
    template: {
      metadata: { labels: { app: 'burn' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'burn', image: 'kyb.local/busybox:1.35', command: ['sh', '-c', BURN],
          resources: { requests: { cpu: '100m' } }, volumeMounts: [{ name: 'load', mountPath: '/load' }] }],
        volumes: [{ name: 'load', hostPath: { path: loadDir, type: 'Directory' } }],
      },
    },
  },
});

const replicas = () => kubectl(['get', 'deployment', 'burn', '-o', 'jsonpath={.spec.replicas}']);
const ready = () => kubectl(['get', 'deployment', 'burn', '-o', 'jsonpath={.status.readyReplicas}']);

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run as root');
  mkdirSync(loadDir);
  mkdirSync(join(dir, 'agent', 'images', 'import'), { recursive: true });
  await buildBusyboxImage({ out: join(dir, 'agent', 'images', 'import', 'busybox.tar') });
  let server: ChildProcess | undefined;
  try {
    const octet = 110 + (parseInt(suffix, 16) % 30);
    server = spawn(process.execPath, ['--import', 'tsx', '-e', `import('./src/cli/main.ts').then((m) => m.main(process.argv.slice(1)))`,
      'server', '--data-dir', dir, '--https-listen-port', '0', '--datastore-endpoint', 'memory://', '--node-name', `hb-${suffix}`,
      '--cluster-cidr', `10.${octet}.0.0/16`, '--cluster-dns-upstream', 'none', '--agent-run-dir', names.runRoot,
      '--cgroup-parent', names.cgroupParent, '--pod-bridge', names.bridge, '--proxy-table', names.proxyTableName, ...TIMING_FLAGS],
    { cwd: join(import.meta.dirname, '..'), stdio: ['ignore', 'ignore', 'pipe'] });
    server.stderr!.on('data', () => undefined);
    await waitFor('kubeconfig', () => existsSync(env.KUBECONFIG), 60_000);
    await waitFor('node Ready', () => /\sReady\s/.test(kubectl(['get', 'nodes'])), 120_000);
    kubectl(['apply', '-f', '-'], deployment);
    kubectl(['rollout', 'status', 'deployment/burn', '--timeout=180s']);
    kubectl(['autoscale', 'deployment', 'burn', '--cpu-percent=50', '--min=1', '--max=3']);
    await waitFor('HPA targets known', () => /cpu: \d+%\/50%/.test(kubectl(['get', 'hpa', 'burn'])), 300_000);
    const rows: { up: number; running: number; down: number }[] = [];
    for (let r = 0; r < rounds; r++) {
      writeFileSync(join(loadDir, 'on'), '1');
      const t0 = performance.now();
      await waitFor('scale-up to 3', () => replicas() === '3', 600_000);
      const up = (performance.now() - t0) / 1000;
      await waitFor('3 ready', () => ready() === '3', 600_000);
      const running = (performance.now() - t0) / 1000;
      rmSync(join(loadDir, 'on'));
      const t1 = performance.now();
      await waitFor('scale-down to 1', () => replicas() === '1', 900_000);
      const down = (performance.now() - t1) / 1000;
      rows.push({ up, running, down });
      process.stdout.write(`  round ${r + 1}: load on → scaled to 3 after ${up.toFixed(1)} s, 3 Ready after ${running.toFixed(1)} s; load off → 1 after ${down.toFixed(1)} s\n`);
      await waitFor('back to 1 ready', () => ready() === '1', 120_000);
    }
    const load = execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).split(' ').slice(0, 3).join(' ');
    process.stdout.write(`\nHPA reaction (${timing} timings: ${TIMING_FLAGS.join(' ') || 'resolution 15s, sync 15s, stabilization 5m'}), median of ${rounds}, load average ${load}:\n` +
      `  load start → new replicas scaled ${median(rows.map((x) => x.up)).toFixed(1)} s, Running and Ready ${median(rows.map((x) => x.running)).toFixed(1)} s\n` +
      `  load end → scaled down ${median(rows.map((x) => x.down)).toFixed(1)} s\n`);
  } finally {
    server?.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 2000));
    await cleanupAgent({ server: '', token: '', dataDir: join(dir, 'agent'), ...names }).catch((e) => process.stderr.write(`cleanup: ${(e as Error).message}\n`));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(() => process.exit(0), (e) => { process.stderr.write(`${(e as Error).stack ?? e}\n`); process.exit(1); });
