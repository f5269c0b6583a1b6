// Issue 3 with real kubectl: a `kyb server --simulate-nodes 3` places, scales, rolls and deletes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, type TestCluster } from './cluster.js';

let c: TestCluster;
before(async () => { c = await startCluster(['--simulate-nodes', '3', '--profile', 'fast']); });
after(async () => { await c?.stop(); });

async function waitFor(fn: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('a deployment spreads over simulated nodes, scales, rolls out, undoes and is deleted', async () => {
  await waitFor(async () => (await c.kubectl(['get', 'nodes', '--no-headers'])).stdout.split('\n').filter((l) => /\sReady\s/.test(l)).length === 3);
  await c.kubectl(['create', 'deployment', 'web', '--image=nginx:1.27', '--replicas=3']);
  await c.kubectl(['rollout', 'status', 'deployment/web', '--timeout=60s']);
  const pods = JSON.parse((await c.kubectl(['get', 'pods', '-o', 'json'])).stdout).items;
  assert.equal(pods.length, 3);
  assert.equal(new Set(pods.map((p: any) => p.spec.nodeName)).size, 3, 'one pod per node');
  for (const p of pods) assert.equal(p.status.phase, 'Running');
  await c.kubectl(['scale', 'deployment/web', '--replicas=10']);
  await c.kubectl(['rollout', 'status', 'deployment/web', '--timeout=60s']);
  await c.kubectl(['scale', 'deployment/web', '--replicas=2']);
  await waitFor(async () => JSON.parse((await c.kubectl(['get', 'pods', '-l', 'app=web', '-o', 'json'])).stdout).items.filter((p: any) => !p.metadata.deletionTimestamp).length === 2);
  await c.kubectl(['set', 'image', 'deployment/web', 'nginx=nginx:1.28']);
  await c.kubectl(['rollout', 'status', 'deployment/web', '--timeout=60s']);
  const hist = (await c.kubectl(['rollout', 'history', 'deployment/web'])).stdout;
  assert.match(hist, /^1\s+<none>$/m);
  assert.match(hist, /^2\s+<none>$/m);
  await c.kubectl(['rollout', 'undo', 'deployment/web']);
  await c.kubectl(['rollout', 'status', 'deployment/web', '--timeout=60s']);
  const img = (await c.kubectl(['get', 'deployment', 'web', '-o', 'jsonpath={.spec.template.spec.containers[0].image}'])).stdout;
  assert.equal(img, 'nginx:1.27');
  await c.kubectl(['delete', 'deployment', 'web']);
  await waitFor(async () => (await c.kubectl(['get', 'rs,pods', '-l', 'app=web', '-o', 'name'])).stdout.trim() === '');
});

test('a pod asking for more CPU than any node stays Pending with FailedScheduling', async () => {
  const f = c.writeFile('big.yaml', 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: big\nspec:\n  containers:\n  - name: c\n    image: x\n    resources:\n      requests:\n        cpu: "100"\n');
  await c.kubectl(['apply', '-f', f]);
  await waitFor(async () => /0\/3 nodes are available: 3 Insufficient cpu\./.test((await c.kubectl(['get', 'events', '--field-selector', 'reason=FailedScheduling,involvedObject.name=big'])).stdout));
  assert.equal((await c.kubectl(['get', 'pod', 'big', '-o', 'jsonpath={.status.phase}'])).stdout, 'Pending');
});
