// Issue 3 with real kubectl: a `kyb server --simulate-nodes 3` places, scales, rolls and deletes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { startCluster, kubectlStream, type TestCluster } from './cluster.js';

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

const podsOf = async (selector: string) => JSON.parse((await c.kubectl(['get', 'pods', '-l', selector, '-o', 'json'])).stdout).items as any[];
const live = (pods: any[]) => pods.filter((p) => !p.metadata.deletionTimestamp);

test('a rolling update by kubectl set image never drops available replicas below replicas - maxUnavailable', async () => {
  const f = c.writeFile('budget.yaml', `apiVersion: apps/v1
kind: Deployment
metadata: {name: budget}
spec:
  replicas: 4
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 1}}
  selector: {matchLabels: {app: budget}}
  template:
    metadata: {labels: {app: budget}}
    spec: {containers: [{name: app, image: "nginx:1.27"}]}
`);
  await c.kubectl(['apply', '-f', f]);
  await c.kubectl(['rollout', 'status', 'deployment/budget', '--timeout=60s']);
  // the watch kubectl itself prints: one line per change of the Deployment
  const w = kubectlStream(c, ['get', 'deployment', 'budget', '-w', '-o', 'jsonpath={.metadata.generation} {.status.observedGeneration} {.status.availableReplicas} {.status.updatedReplicas}{"\\n"}']);
  try {
    await w.waitFor((l) => l.length >= 1);
    await c.kubectl(['set', 'image', 'deployment/budget', 'app=nginx:1.28']);
    await c.kubectl(['rollout', 'status', 'deployment/budget', '--timeout=60s']);
    await w.waitFor((l) => l.some((x) => /^2 2 4 4$/.test(x.trim())));
    const available = w.lines.map((x) => Number(x.trim().split(' ')[2] || 0));
    assert.ok(Math.min(...available) >= 3, `available replicas seen during the rollout: ${available.join(',')}`);
    assert.ok(w.lines.length > 3, 'the watch saw the rollout progress');
  } finally { w.stop(); }
  await c.kubectl(['delete', 'deployment', 'budget']);
});

test('nodeSelector, taints and tolerations, and required anti-affinity place pods where kubectl says', async () => {
  await waitFor(async () => (await c.kubectl(['get', 'nodes', '--no-headers'])).stdout.split('\n').filter((l) => /^sim-node-\d+\s+Ready\s/.test(l)).length === 3);
  await c.kubectl(['label', 'node', 'sim-node-1', 'disk=ssd']);
  await c.kubectl(['taint', 'node', 'sim-node-2', 'dedicated=batch:NoSchedule']);
  try {
    const f = c.writeFile('placement.yaml', `apiVersion: v1
kind: Pod
metadata: {name: on-ssd, labels: {test: placement}}
spec:
  nodeSelector: {disk: ssd}
  containers: [{name: c, image: x}]
---
apiVersion: v1
kind: Pod
metadata: {name: tolerant, labels: {test: placement}}
spec:
  nodeSelector: {kubernetes.io/hostname: sim-node-2}
  tolerations: [{key: dedicated, operator: Equal, value: batch, effect: NoSchedule}]
  containers: [{name: c, image: x}]
---
apiVersion: v1
kind: Pod
metadata: {name: intolerant, labels: {test: placement}}
spec:
  nodeSelector: {kubernetes.io/hostname: sim-node-2}
  containers: [{name: c, image: x}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: spread}
spec:
  replicas: 4
  selector: {matchLabels: {app: spread}}
  template:
    metadata: {labels: {app: spread}}
    spec:
      tolerations: [{operator: Exists}]
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: spread}}
            topologyKey: kubernetes.io/hostname
      containers: [{name: c, image: x}]
`);
    await c.kubectl(['apply', '-f', f]);
    await waitFor(async () => (await podsOf('test=placement')).filter((p) => p.spec.nodeName).length === 2);
    const byName = new Map((await podsOf('test=placement')).map((p) => [p.metadata.name, p]));
    assert.equal(byName.get('on-ssd').spec.nodeName, 'sim-node-1');
    assert.equal(byName.get('tolerant').spec.nodeName, 'sim-node-2');
    assert.equal(byName.get('intolerant').spec.nodeName, undefined);
    await waitFor(async () => /0\/3 nodes are available: 1 node\(s\) had untolerated taint \{dedicated: batch\}, 2 node\(s\) didn't match Pod's node affinity\/selector\./
      .test((await c.kubectl(['get', 'events', '--field-selector', 'reason=FailedScheduling,involvedObject.name=intolerant'])).stdout));
    // three nodes, four replicas that refuse to share a node: three placed, one Pending
    await waitFor(async () => (await podsOf('app=spread')).filter((p) => p.spec.nodeName).length === 3);
    const spread = await podsOf('app=spread');
    assert.equal(new Set(spread.filter((p) => p.spec.nodeName).map((p) => p.spec.nodeName)).size, 3, 'one replica per node');
    const pending = spread.find((p) => !p.spec.nodeName);
    assert.ok(pending, 'the fourth replica stays Pending');
    await waitFor(async () => /didn't match pod anti-affinity rules/.test((await c.kubectl(['get', 'events', '--field-selector', `reason=FailedScheduling,involvedObject.name=${pending.metadata.name}`])).stdout));
  } finally {
    await c.kubectl(['delete', 'pod,deployment', '-l', 'test=placement', '--wait=false'], { allowFail: true });
    await c.kubectl(['delete', 'deployment', 'spread', '--wait=false'], { allowFail: true });
    await c.kubectl(['taint', 'node', 'sim-node-2', 'dedicated-'], { allowFail: true });
    await c.kubectl(['label', 'node', 'sim-node-1', 'disk-'], { allowFail: true });
  }
});

test('a node whose heartbeat stops becomes NotReady and its pods are recreated on other nodes (fast profile)', async (t) => {
  // the lost node is a separate `kyb simulate-nodes` process, killed with SIGKILL
  const victim = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'kyb-entry.ts'), 'simulate-nodes', '--kubeconfig', c.kubeconfig,
    '--count', '1', '--prefix', 'victim-', '--heartbeat-interval', '2s', '--lease-duration', '8'], { stdio: 'ignore' });
  t.after(() => { victim.kill('SIGKILL'); });
  try {
    await waitFor(async () => /^victim-0\s+Ready\s/m.test((await c.kubectl(['get', 'nodes', '--no-headers'])).stdout));
    await c.kubectl(['create', 'deployment', 'survivor', '--image=nginx:1.27', '--replicas=8']);
    await c.kubectl(['rollout', 'status', 'deployment/survivor', '--timeout=60s']);
    const lost = live(await podsOf('app=survivor')).filter((p) => p.spec.nodeName === 'victim-0').map((p) => p.metadata.name);
    assert.ok(lost.length > 0, 'default spreading put replicas on the victim node');
    const t0 = Date.now();
    victim.kill('SIGKILL');
    await waitFor(async () => /^victim-0\s+NotReady\s/m.test((await c.kubectl(['get', 'nodes', '--no-headers'])).stdout), 60_000);
    const notReadyS = (Date.now() - t0) / 1000;
    const taints = (await c.kubectl(['get', 'node', 'victim-0', '-o', 'jsonpath={.spec.taints[*].key}'])).stdout;
    assert.match(taints, /node\.kubernetes\.io\/unreachable/);
    await waitFor(async () => {
      const pods = live(await podsOf('app=survivor'));
      return pods.length === 8 && pods.every((p) => p.spec.nodeName && p.spec.nodeName !== 'victim-0' && p.status.phase === 'Running');
    }, 90_000);
    const replacedS = (Date.now() - t0) / 1000;
    t.diagnostic(`node loss: NotReady after ${notReadyS.toFixed(1)} s, ${lost.length} pods replaced on other nodes after ${replacedS.toFixed(1)} s (8 s grace, 10 s default tolerations)`);
  } finally {
    await c.kubectl(['delete', 'deployment', 'survivor', '--wait=false'], { allowFail: true });
    await c.kubectl(['delete', 'node', 'victim-0', '--wait=false'], { allowFail: true });
  }
});

test('with --scheduler-profile MostAllocated, kubectl-created pods bin-pack onto one node', async (t) => {
  const packed = await startCluster(['--simulate-nodes', '3', '--profile', 'fast', '--scheduler-profile', 'MostAllocated']);
  t.after(() => packed.stop());
  await waitFor(async () => (await packed.kubectl(['get', 'nodes', '--no-headers'])).stdout.split('\n').filter((l) => /\sReady\s/.test(l)).length === 3);
  // cpu and memory in the nodes' proportion (2/32 cpu, 16Gi/256Gi), so BalancedAllocation scores every
  // node alike and MostAllocated decides, as in upstream's bin-packing configuration
  for (let i = 0; i < 5; i++) {
    await packed.kubectl(['run', `packed-${i}`, '--image=nginx:1.27', '--labels=test=packing', '--overrides', JSON.stringify({ spec: { containers: [{ name: `packed-${i}`, image: 'nginx:1.27', resources: { requests: { cpu: '2', memory: '16Gi' } } }] } })]);
  }
  await waitFor(async () => JSON.parse((await packed.kubectl(['get', 'pods', '-l', 'test=packing', '-o', 'json'])).stdout).items.filter((p: any) => p.spec.nodeName).length === 5);
  const nodes = (await packed.kubectl(['get', 'pods', '-l', 'test=packing', '-o', 'jsonpath={.items[*].spec.nodeName}'])).stdout.split(' ');
  assert.equal(new Set(nodes).size, 1, `all on one node: ${nodes.join(',')}`);
});
