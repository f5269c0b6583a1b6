// Issue 6 end to end: real containers, real kubectl. A Deployment with a CPU request and an HPA at
// 50% (`kubectl autoscale`): a CPU-burning load makes it scale up within a period or two, `kubectl top`
// shows the load, and removing the load scales it down after the (test-shortened) stabilization window;
// `kubectl describe hpa` shows the events. The load is switched on and off with a file the pods see
// through a hostPath volume, so the same pods burn and then idle.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startCluster, type TestCluster } from '../integration/cluster.js';
import { cleanupAgent, type AgentRunConfig } from '../../src/cli/agent.js';
import { buildBusyboxImage } from '../../src/node/images/index.js';

const canRun = process.getuid?.() === 0 && existsSync('/bin/busybox') && existsSync('/usr/lib/cni/bridge') && (() => {
  try { execFileSync('runc', ['--version']); execFileSync('conmon', ['--version']); execFileSync('nft', ['--version']); return true; } catch { return false; }
})();
const skip = !canRun && 'needs root, runc, conmon, CNI plugins, nft, busybox';

const suffix = randomBytes(3).toString('hex');
const octet = 150 + ((parseInt(suffix, 16) + 7) % 40);
const node = `hpa-${suffix}`;
let pre = '';
let loadDir = '';
let c: TestCluster;
let agentCfg: AgentRunConfig;

async function poll<T>(what: string, f: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try { const v = await f(); if (v !== undefined && v !== false) return v as T; } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

before(async () => {
  if (!canRun) return;
  pre = mkdtempSync(join(tmpdir(), 'kyb-hpa-'));
  loadDir = join(pre, 'load');
  mkdirSync(loadDir);
  mkdirSync(join(pre, 'agent', 'images', 'import'), { recursive: true });
  await buildBusyboxImage({ out: join(pre, 'agent', 'images', 'import', 'busybox.tar') });
  agentCfg = {
    server: '', token: '', dataDir: join(pre, 'agent'), nodeName: node,
    runRoot: join(pre, 'run'), cgroupParent: `/kyb-hpa-${suffix}`, bridge: `kybh${suffix}`, proxyTableName: `kh${suffix}`,
  };
  c = await startCluster(['--with-agent', '--data-dir', pre, '--node-name', node, '--cluster-cidr', `10.${octet}.0.0/16`,
    '--cluster-dns-upstream', 'none', '--agent-run-dir', agentCfg.runRoot!, '--cgroup-parent', agentCfg.cgroupParent!,
    '--pod-bridge', agentCfg.bridge!, '--proxy-table', agentCfg.proxyTableName!,
    '--metric-resolution', '2s', '--horizontal-pod-autoscaler-sync-period', '3s',
    '--horizontal-pod-autoscaler-downscale-stabilization', '15s']);
});

after(async () => {
  if (!canRun) return;
  try {
    await c?.server.stop();
    await cleanupAgent(agentCfg);
  } finally {
    await c?.stop().catch(() => undefined);
    rmSync(pre, { recursive: true, force: true });
  }
});

const BURN = `while :; do if [ -e /load/on ]; then i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; else sleep 1; fi; done`;

test('an HPA at 50% CPU scales a deployment up under load and down after the stabilization window; kubectl top shows the load', { skip }, async (t) => {
  await poll('node registered', async () => (await c.kubectl(['get', 'node', node], { allowFail: true })).code === 0);
  await c.kubectl(['wait', '--for=condition=Ready', `node/${node}`, '--timeout=90s']);
  const manifest = c.writeFile('burn.yaml', JSON.stringify({
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
  }));
  await c.kubectl(['apply', '-f', manifest]);
  await c.kubectl(['rollout', 'status', 'deployment/burn', '--timeout=90s']);
  await c.kubectl(['autoscale', 'deployment', 'burn', '--cpu-percent=50', '--min=1', '--max=3']);
  // idle: the HPA reads a real (low) utilization and keeps one replica
  const idle = await poll('HPA targets known', async () => {
    const out = (await c.kubectl(['get', 'hpa', 'burn'])).stdout;
    return /cpu: \d+%\/50%/.test(out) && out;
  }, 90_000);
  assert.match(idle, /burn\s+Deployment\/burn\s+cpu: \d+%\/50%\s+1\s+3\s+1\s/);

  writeFileSync(join(loadDir, 'on'), '1');
  const t0 = Date.now();
  await poll('scale-up to 3', async () => (await c.kubectl(['get', 'deployment', 'burn', '-o', 'jsonpath={.spec.replicas}'])).stdout === '3', 90_000);
  const upS = (Date.now() - t0) / 1000;
  await c.kubectl(['rollout', 'status', 'deployment/burn', '--timeout=90s']);
  const runningS = (Date.now() - t0) / 1000;
  // kubectl top shows the burning pods (more than the 100m request each; two cores are shared)
  const top = await poll('kubectl top shows the load', async () => {
    const out = (await c.kubectl(['top', 'pods', '-l', 'app=burn', '--no-headers'], { allowFail: true })).stdout;
    const cpus = out.trim().split('\n').filter(Boolean).map((l) => Number(/\s(\d+)m\s/.exec(l)?.[1] ?? 0));
    return cpus.length >= 1 && Math.max(...cpus) > 100 && out;
  }, 60_000);
  assert.match(top, /^burn-\S+\s+\d+m\s+\d+Mi/m);
  const up = (await c.kubectl(['describe', 'hpa', 'burn'])).stdout;
  assert.match(up, /SuccessfulRescale\s+.*New size: [23]; reason: cpu resource utilization \(percentage of request\) above target/);

  rmSync(join(loadDir, 'on'));
  const t1 = Date.now();
  await poll('scale-down to 1', async () => (await c.kubectl(['get', 'deployment', 'burn', '-o', 'jsonpath={.spec.replicas}'])).stdout === '1', 120_000);
  const downS = (Date.now() - t1) / 1000;
  assert.ok(downS >= 14, `scale-down waited for the 15 s stabilization window (took ${downS} s)`);
  const down = (await c.kubectl(['describe', 'hpa', 'burn'])).stdout;
  assert.match(down, /New size: 1; reason: All metrics below target/);
  assert.match(down, /ScalingActive\s+True\s+ValidMetricFound/);
  t.diagnostic(`load on → scaled to 3 after ${upS.toFixed(1)} s, 3 Running after ${runningS.toFixed(1)} s; load off → scaled to 1 after ${downS.toFixed(1)} s (3 s sync, 2 s resolution, 15 s stabilization)`);
});
