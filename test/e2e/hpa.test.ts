// Issue 6 end to end: real containers, real kubectl. A Deployment with a CPU request and an HPA at
// 50% (`kubectl autoscale`): a CPU-burning load makes it scale up within a period or two, `kubectl top`
// shows the load, and removing the load scales it down after the (test-shortened) stabilization window;
// `kubectl describe hpa` shows the events. The load is switched on and off with a file the pods see
// through a hostPath volume, so the same pods burn and then idle.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestCluster } from '../integration/cluster.js';
import { canRunContainers, poll, startAgentCluster, type AgentCluster } from './agent-cluster.js';

const canRun = canRunContainers();
const skip = !canRun && 'needs root, runc, conmon, CNI plugins, nft, busybox';

let k: AgentCluster;
let c: TestCluster;
let loadDir = '';

before(async () => {
  if (!canRun) return;
  k = await startAgentCluster({
    name: 'hpa', octets: [150, 40],
    args: ['--metric-resolution', '2s', '--horizontal-pod-autoscaler-sync-period', '3s', '--horizontal-pod-autoscaler-downscale-stabilization', '15s'],
  });
  c = k.c;
  loadDir = join(k.dir, 'load');
  mkdirSync(loadDir);
});

after(async () => { if (canRun) await k?.stop(); });

const BURN = `while :; do if [ -e /load/on ]; then i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; else sleep 1; fi; done`;

test('an HPA at 50% CPU scales a deployment up under load and down after the stabilization window; kubectl top shows the load', { skip }, async (t) => {
  await poll('node registered', async () => (await c.kubectl(['get', 'node', k.node], { allowFail: true })).code === 0);
  await c.kubectl(['wait', '--for=condition=Ready', `node/${k.node}`, '--timeout=90s']);
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
