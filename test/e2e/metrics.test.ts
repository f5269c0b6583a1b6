// Resource metrics end to end: `kyb server` with its own node agent sampling cgroups every second
// (`--metric-resolution 1s`), real containers (runc), and the real kubectl's `top` reading
// metrics.k8s.io through the API server, which asks the agent over its tunnel. A CPU burner shows its
// CPU (capped by its 400m limit, so it leaves the host's cores to others) in `top pod`, `--containers`
// splits it per container, `-A` and `--sort-by=cpu` order the rows, `top node` shows the node, and the
// raw API answers parse. `kyb agent --cleanup` (cleanupAgent) removes every container, cgroup, network
// and rule afterwards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { TestCluster } from '../integration/cluster.js';
import { canRunContainers, poll, startAgentCluster, type AgentCluster } from './agent-cluster.js';

const canRun = canRunContainers();
const skip = !canRun && 'needs root, runc, conmon, CNI plugins, nft, busybox';

let k: AgentCluster;
let c: TestCluster;
let node = '';
let ns2 = '';

/** the rows of a kubectl table, split on whitespace, without the header */
const rows = (out: string) => out.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
const milli = (cpu: string) => { const m = /^(\d+)m$/.exec(cpu); assert.ok(m, `cpu ${cpu}`); return Number(m[1]); };

before(async () => {
  if (!canRun) return;
  k = await startAgentCluster({ name: 'met', octets: [100, 50], images: [{ ref: 'kyb.local/bb:1' }], args: ['--metric-resolution', '1s'] });
  c = k.c;
  node = k.node;
  ns2 = `top-${k.suffix}`;
});

after(async () => { if (canRun) await k?.stop(); });

const pod = (name: string, namespace: string, containers: { name: string; command: string[]; cpuLimit?: string }[]) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels: { app: name } },
  spec: {
    terminationGracePeriodSeconds: 0,
    containers: containers.map((x) => ({
      name: x.name, image: 'kyb.local/bb:1', imagePullPolicy: 'IfNotPresent', command: x.command,
      ...(x.cpuLimit ? { resources: { limits: { cpu: x.cpuLimit } } } : {}),
    })),
  },
});

test('kubectl top shows a CPU burner, per container, across namespaces, sorted; top node; raw API', { skip }, async () => {
  await poll('node registered', async () => (await c.kubectl(['get', 'node', node], { allowFail: true })).code === 0);
  await c.kubectl(['wait', '--for=condition=Ready', `node/${node}`, '--timeout=90s']);
  await c.kubectl(['create', 'namespace', ns2]);
  const items = [
    pod('burner', 'default', [
      { name: 'burn', command: ['/bin/sh', '-c', 'while :; do :; done'], cpuLimit: '400m' },
      { name: 'idle', command: ['/bin/sleep', '3600'] },
    ]),
    pod('quiet', ns2, [{ name: 'main', command: ['/bin/sleep', '3600'] }]),
  ];
  for (const it of items) await c.kubectl(['apply', '-f', '-'], { input: JSON.stringify(it) });
  await c.kubectl(['wait', '--for=condition=Ready', 'pod/burner', '--timeout=90s']);
  await c.kubectl(['wait', '--for=condition=Ready', `pod/quiet`, '-n', ns2, '--timeout=90s']);

  // two samples (one resolution apart) are needed before a container has figures
  const top = await poll('the burner above 100m in kubectl top pod', async () => {
    const r = await c.kubectl(['top', 'pod'], { allowFail: true });
    const row = r.code === 0 ? rows(r.stdout).find((x) => x[0] === 'burner') : undefined;
    return row && milli(row[1]!) > 100 ? r.stdout : undefined;
  });
  assert.match(top, /^NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)/);
  const burner = rows(top).find((x) => x[0] === 'burner')!;
  assert.ok(milli(burner[1]!) <= 480, `the 400m limit holds: ${burner[1]}`);
  assert.match(burner[2]!, /^\d+Mi$/);
  assert.ok(!rows(top).some((x) => x[0] === 'quiet'), 'only the default namespace');

  // the second container started a little later: it may be one sample behind
  const perContainer = await poll('both containers in top pod --containers', async () => {
    const r = rows((await c.kubectl(['top', 'pod', 'burner', '--containers'])).stdout);
    return r.length === 2 ? r : undefined;
  }, 10_000);
  assert.deepEqual(perContainer.map((x) => `${x[0]}/${x[1]}`).sort(), ['burner/burn', 'burner/idle']);
  assert.ok(milli(perContainer.find((x) => x[1] === 'burn')![2]!) > 100);
  assert.ok(milli(perContainer.find((x) => x[1] === 'idle')![2]!) < 50);

  const all = await poll('both pods in top pod -A', async () => {
    const r = rows((await c.kubectl(['top', 'pod', '-A', '--sort-by=cpu'])).stdout);
    return r.some((x) => x[1] === 'quiet') && r.some((x) => x[1] === 'burner') ? r : undefined;
  });
  assert.deepEqual(all.slice(0, 1).map((x) => `${x[0]}/${x[1]}`), ['default/burner'], 'highest CPU first');
  assert.ok(all.some((x) => x[0] === ns2 && x[1] === 'quiet'));
  const cpus = all.map((x) => milli(x[2]!));
  assert.deepEqual(cpus, [...cpus].sort((a, b) => b - a), 'sorted by CPU');

  const nodes = rows((await c.kubectl(['top', 'node'])).stdout);
  const n = nodes.find((x) => x[0] === node);
  assert.ok(n, `node row in ${JSON.stringify(nodes)}`);
  assert.ok(milli(n[1]!) >= 100, `node CPU ${n[1]} includes the burner`);
  assert.match(n[2]!, /^\d+%$/);
  assert.match(n[3]!, /^\d+Mi$/);

  const raw = JSON.parse((await c.kubectl(['get', '--raw', '/apis/metrics.k8s.io/v1beta1/nodes'])).stdout);
  assert.equal(raw.kind, 'NodeMetricsList');
  const nm = raw.items.find((i: any) => i.metadata.name === node);
  assert.ok(nm.usage.cpu && nm.usage.memory);
  assert.match(nm.window, /^\d+(\.\d+)?(ms|s)$/, 'a Go duration: under 1 s it reads e.g. 998ms');
  const pm = JSON.parse((await c.kubectl(['get', '--raw', '/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/burner'])).stdout);
  assert.equal(pm.kind, 'PodMetrics');
  assert.deepEqual(pm.metadata.labels, { app: 'burner' });
  assert.deepEqual(pm.containers.map((x: any) => x.name).sort(), ['burn', 'idle']);

  // the burner is stopped at once (it spins on a shared machine)
  await c.kubectl(['delete', 'pod', 'burner', '--wait=false']);
});
