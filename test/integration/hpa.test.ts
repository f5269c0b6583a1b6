// The HorizontalPodAutoscaler controller against a real API server (in-process, memory store), with
// the ReplicaSet and Deployment controllers, a tiny fake kubelet that reports pods Running and Ready,
// and a fake metrics.k8s.io/v1beta1 served through the API server's extra routes: a fixed total cpu
// load per app, spread evenly over its running pods (so the HPA settles where upstream's would). The
// real kubectl 1.32 drives it: `kubectl autoscale`, `get hpa` (TARGETS) and `describe hpa`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApiServer, type ApiServer } from '../../src/apiserver/server.js';
import { MemoryStore } from '../../src/storage/memory/memory-store.js';
import { Informer, RestClient } from '../../src/client/index.js';
import { newControllerContext } from '../../src/controllers/context.js';
import { start as startReplicaSetController } from '../../src/controllers/replicaset/replicaset-controller.js';
import { start as startDeploymentController } from '../../src/controllers/deployment/deployment-controller.js';
import { start as startHPAController } from '../../src/controllers/horizontalpodautoscaler/horizontal-controller.js';
import type { Deployment, Pod } from '../../src/controllers/replicaset/types.js';
import type { HorizontalPodAutoscaler } from '../../src/controllers/horizontalpodautoscaler/types.js';

const KUBECTL = process.env.KUBECTL ?? (existsSync('/usr/lib/google-cloud-sdk/bin/kubectl.1.32') ? '/usr/lib/google-cloud-sdk/bin/kubectl.1.32' : 'kubectl');
const deployments = { group: 'apps', version: 'v1', plural: 'deployments' };
const pods = { group: '', version: 'v1', plural: 'pods' };
const hpas = { group: 'autoscaling', version: 'v2', plural: 'horizontalpodautoscalers' };
const NS = 'default';
const SYNC_MS = 250;
const DOWNSCALE_WINDOW_MS = 2000;

let api: ApiServer;
let client: RestClient;
let dir: string;
const stop = new AbortController();
const running: Promise<unknown>[] = [];
/** total cpu load (millicores) per app label, spread over its running pods; absent: no metrics */
const load = new Map<string, number>();

const isRunningReady = (p: Pod): boolean => !p.metadata?.deletionTimestamp && p.status?.phase === 'Running'
  && !!p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

/** metrics.k8s.io/v1beta1 PodMetrics, as metrics-server serves them */
async function metricsRoute(_req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const send = (code: number, body: unknown): void => { res.writeHead(code, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(body)); };
  const m = /^\/apis\/metrics\.k8s\.io\/v1beta1\/namespaces\/([^/]+)\/pods\/?$/.exec(url.pathname);
  if (!m) { send(404, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'NotFound', code: 404, message: 'the server could not find the requested resource' }); return; }
  const list = await client.list<Pod>(pods, m[1], { labelSelector: url.searchParams.get('labelSelector') ?? undefined });
  const live = list.items.filter(isRunningReady);
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const items = live.flatMap((p) => {
    const app = p.metadata?.labels?.app ?? '';
    const total = load.get(app);
    if (total === undefined) return [];
    const n = live.filter((x) => x.metadata?.labels?.app === app).length;
    return [{
      metadata: { name: p.metadata!.name, namespace: p.metadata!.namespace, labels: p.metadata!.labels, creationTimestamp: now },
      // a short window: with the default 5 min cpu initialization period a new pod's sample counts
      // once a whole window has passed since it became ready (metrics-server's is 15-30 s)
      timestamp: now, window: '1s',
      containers: [{ name: 'c', usage: { cpu: `${Math.floor(total / n)}m`, memory: '10Mi' } }],
    }];
  });
  send(200, { kind: 'PodMetricsList', apiVersion: 'metrics.k8s.io/v1beta1', metadata: {}, items });
}

/** Marks pods Running and Ready a little after they appear. */
function fakeKubelet(signal: AbortSignal): Promise<void> {
  const inf = new Informer<Pod>({ client, resource: pods });
  const seen = new Set<string>();
  const handle = (p: Pod): void => {
    const uid = p.metadata!.uid!;
    if (seen.has(uid) || p.metadata?.deletionTimestamp) return;
    seen.add(uid);
    setTimeout(() => {
      if (signal.aborted) return;
      const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
      const status = {
        phase: 'Running', podIP: `10.0.0.${seen.size % 250}`, startTime: now,
        conditions: [{ type: 'Initialized', status: 'True', lastTransitionTime: now }, { type: 'Ready', status: 'True', lastTransitionTime: now },
          { type: 'ContainersReady', status: 'True', lastTransitionTime: now }, { type: 'PodScheduled', status: 'True', lastTransitionTime: now }],
      };
      client.patch(pods, p.metadata!.namespace, p.metadata!.name!, { status }, 'merge', { subresource: 'status' }).catch(() => {});
    }, 20 + Math.floor(Math.random() * 60));
  };
  inf.addEventHandler({ onAdd: handle, onUpdate: (_o, p) => handle(p) });
  return inf.run(signal);
}

before(async () => {
  setMaxListeners(0, stop.signal); // every informer listens on it
  api = await startApiServer({ store: new MemoryStore(), port: 0, requireAuth: false, routes: [{ prefix: '/apis/metrics.k8s.io/', handle: metricsRoute }] });
  client = new RestClient({ server: api.url });
  const ctx = newControllerContext(client);
  running.push(
    startReplicaSetController(ctx, stop.signal), startDeploymentController(ctx, stop.signal), fakeKubelet(stop.signal),
    startHPAController(ctx, stop.signal, { syncPeriodMs: SYNC_MS, downscaleStabilizationMs: DOWNSCALE_WINDOW_MS, onError: () => {} }),
  );
  dir = mkdtempSync(join(tmpdir(), 'kyb-hpa-'));
  writeFileSync(join(dir, 'kubeconfig'), `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${api.url}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: ${NS}\ncurrent-context: c\nusers:\n- name: u\n  user: {}\n`);
});

after(async () => {
  stop.abort();
  await Promise.all(running);
  client.close();
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

function kubectl(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(KUBECTL, args, { env: { ...process.env, KUBECONFIG: join(dir, 'kubeconfig'), KUBECACHEDIR: join(dir, 'cache'), HOME: dir }, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kubectl ${args.join(' ')} failed:\n${stderr}\n${stdout}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

/** runs kubectl expecting a failure; its stderr */
function kubectlFails(args: string[], input?: string): Promise<string> {
  return kubectl(args, input).then((out) => { throw new Error(`kubectl ${args.join(' ')} succeeded: ${out}`); }, (e: Error) => e.message);
}

async function until<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const manifest = (name: string): string => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
spec:
  replicas: 1
  selector:
    matchLabels: {app: ${name}}
  template:
    metadata:
      labels: {app: ${name}}
    spec:
      containers:
      - name: c
        image: nginx:1.27
        resources:
          requests: {cpu: 100m}
`;

// kubectl 1.32's `autoscale` POSTs an autoscaling/v1 HorizontalPodAutoscaler as protobuf
async function autoscale(name: string, args: string[]): Promise<string> {
  return kubectl(['autoscale', 'deployment', name, ...args]);
}

const replicasOf = async (name: string): Promise<number> => (await client.get<Deployment>(deployments, NS, name)).spec!.replicas!;
const readyPods = async (name: string): Promise<number> => (await client.list<Pod>(pods, NS, { labelSelector: `app=${name}` })).items.filter(isRunningReady).length;
const hpaOf = (name: string): Promise<HorizontalPodAutoscaler> => client.get<HorizontalPodAutoscaler>(hpas, NS, name);
const condition = (h: HorizontalPodAutoscaler, type: string): string | undefined => {
  const c = h.status?.conditions?.find((x) => x.type === type);
  return c ? `${c.status}/${c.reason}` : undefined;
};
/** the row of `kubectl get hpa` for name, split on runs of 2+ spaces */
async function hpaRow(name: string): Promise<string[]> {
  const out = await kubectl(['get', 'hpa', name]);
  const [header, row] = out.trim().split('\n');
  assert.deepEqual(header!.split(/\s{2,}/), ['NAME', 'REFERENCE', 'TARGETS', 'MINPODS', 'MAXPODS', 'REPLICAS', 'AGE']);
  return row!.split(/\s{2,}/);
}

test('kubectl autoscale: load above target scales the Deployment up by the expected step, below target down after the stabilization window', { skip: !existsSync(KUBECTL) && KUBECTL !== 'kubectl' }, async () => {
  const name = 'web';
  await kubectl(['apply', '-f', '-'], manifest(name));
  await until('1 ready pod', async () => (await readyPods(name)) === 1);
  // 200m over 1 pod: 200% of its 100m request against a 50% target → 4 pods (then 50m each: 50%)
  load.set(name, 200);
  const out = await autoscale(name, ['--cpu-percent=50', '--min=1', '--max=5']);
  assert.equal(out.trim(), `horizontalpodautoscaler.autoscaling/${name} autoscaled`);
  const created = await hpaOf(name);
  assert.deepEqual(created.spec!.metrics, [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }]);
  assert.deepEqual(created.spec!.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name });

  await until('scaled to 4', async () => (await replicasOf(name)) === 4);
  await until('4 ready pods at 50%', async () => (await readyPods(name)) === 4
    && (await hpaOf(name)).status?.currentMetrics?.[0]?.resource?.current.averageUtilization === 50);
  // it settles: 50% is the target
  const settled = await until('settled at 4', async () => { const h = await hpaOf(name); return h.status?.currentReplicas === 4 && h.status.desiredReplicas === 4 ? h : undefined; });
  assert.equal(condition(settled, 'ScalingActive'), 'True/ValidMetricFound');
  assert.equal(condition(settled, 'ScalingLimited'), 'False/DesiredWithinRange');
  assert.ok(settled.status!.lastScaleTime);
  const row = await hpaRow(name);
  assert.deepEqual(row.slice(0, 6), [name, `Deployment/${name}`, 'cpu: 50%/50%', '1', '5', '4']);

  const describe = await kubectl(['describe', 'hpa', name]);
  assert.match(describe, /Reference:\s+Deployment\/web/);
  assert.match(describe, /resource cpu on pods\s+\(as a percentage of request\):\s+50% \(50m\) \/ 50%/);
  assert.match(describe, /Min replicas:\s+1/);
  assert.match(describe, /Max replicas:\s+5/);
  assert.match(describe, /Deployment pods:\s+4 current \/ 4 desired/);
  assert.match(describe, /AbleToScale\s+True\s+ReadyForNewScale\s+recommended size matches current size/);
  assert.match(describe, /ScalingActive\s+True\s+ValidMetricFound\s+the HPA was able to successfully calculate a replica count from cpu resource utilization \(percentage of request\)/);
  assert.match(describe, /ScalingLimited\s+False\s+DesiredWithinRange\s+the desired count is within the acceptable range/);
  assert.match(describe, /Normal\s+SuccessfulRescale\s+.*?\s+horizontal-pod-autoscaler\s+New size: 4; reason: cpu resource utilization \(percentage of request\) above target/);

  // load drops to 40m: 10% each → 1 pod, but only once the 2 s window has no higher recommendation
  const dropped = Date.now();
  load.set(name, 40);
  const stabilized = await until('ScaleDownStabilized', async () => { const h = await hpaOf(name); return condition(h, 'AbleToScale') === 'True/ScaleDownStabilized' ? h : undefined; });
  assert.equal(stabilized.status!.currentReplicas, 4);
  assert.equal(await replicasOf(name), 4);
  await until('scaled down to 1', async () => (await replicasOf(name)) === 1);
  assert.ok(Date.now() - dropped >= DOWNSCALE_WINDOW_MS - SYNC_MS, `scaled down after ${Date.now() - dropped} ms`);
  await until('1 pod left', async () => (await client.list<Pod>(pods, NS, { labelSelector: `app=${name}` })).items.length === 1);
  await until('get hpa shows 1 replica at 40%', async () => { const r = await hpaRow(name); return r[2] === 'cpu: 40%/50%' && r[5] === '1'; });
  const after = await kubectl(['describe', 'hpa', name]);
  assert.match(after, /Normal\s+SuccessfulRescale\s+.*?\s+horizontal-pod-autoscaler\s+New size: 1; reason: All metrics below target/);
});

test('without metrics the HPA shows <unknown> and FailedGetResourceMetric', { skip: !existsSync(KUBECTL) && KUBECTL !== 'kubectl' }, async () => {
  const name = 'idle';
  await kubectl(['apply', '-f', '-'], manifest(name));
  await until('1 ready pod', async () => (await readyPods(name)) === 1);
  await autoscale(name, ['--cpu-percent=50', '--min=1', '--max=3']);
  const h = await until('ScalingActive False', async () => { const x = await hpaOf(name); return condition(x, 'ScalingActive') === 'False/FailedGetResourceMetric' ? x : undefined; });
  assert.equal(h.status!.currentReplicas, 1);
  assert.deepEqual(h.status!.currentMetrics, [{ type: '' }]);
  const row = await hpaRow(name);
  assert.deepEqual(row.slice(0, 6), [name, `Deployment/${name}`, 'cpu: <unknown>/50%', '1', '3', '1']);
  const describe = await kubectl(['describe', 'hpa', name]);
  assert.match(describe, /resource cpu on pods\s+\(as a percentage of request\):\s+<unknown> \/ 50%/);
  assert.match(describe, /ScalingActive\s+False\s+FailedGetResourceMetric\s+the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API/);
  assert.match(describe, /Warning\s+FailedGetResourceMetric\s+.*?\s+horizontal-pod-autoscaler\s+failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from resource metrics API/);
  assert.match(describe, /Warning\s+FailedComputeMetricsReplicas\s+.*?\s+horizontal-pod-autoscaler\s+invalid metrics \(1 invalid out of 1\), first error is: failed to get cpu resource metric value/);
  assert.equal(await replicasOf(name), 1);
});

test('an autoscaling/v2 HPA with behavior survives a v1 read-modify-write; validation as upstream', { skip: !existsSync(KUBECTL) && KUBECTL !== 'kubectl' }, async () => {
  const hpa = (name: string, extra: string): string => `apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: ${name}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: nothing-here}
  maxReplicas: 3
${extra}`;
  await kubectl(['apply', '-f', '-'], hpa('shaped', `  metrics:
  - type: Resource
    resource: {name: memory, target: {type: AverageValue, averageValue: 100Mi}}
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
  behavior:
    scaleDown:
      policies: [{type: Pods, value: 1, periodSeconds: 60}]
`));
  const v2 = await hpaOf('shaped');
  // defaulted as upstream: the rest of the behavior filled in, the scale-down window left to the controller
  assert.deepEqual(v2.spec!.behavior, {
    scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 4, periodSeconds: 15 }, { type: 'Percent', value: 100, periodSeconds: 15 }] },
    scaleDown: { selectPolicy: 'Max', policies: [{ type: 'Pods', value: 1, periodSeconds: 60 }] },
  });
  // the target does not exist: FailedGetScale
  const failing = await until('FailedGetScale', async () => { const x = await hpaOf('shaped'); return condition(x, 'AbleToScale') === 'False/FailedGetScale' ? x : undefined; });
  assert.equal(failing.status!.conditions![0]!.message, 'the HPA controller was unable to get the target\'s current scale: deployments.apps "nothing-here" not found');
  // read as v1, change it, write it back as v1: the memory metric and the behavior are kept
  const v1 = JSON.parse(await kubectl(['get', 'horizontalpodautoscalers.v1.autoscaling', 'shaped', '-o', 'json']));
  assert.equal(v1.spec.targetCPUUtilizationPercentage, 60);
  assert.ok(v1.metadata.annotations['autoscaling.alpha.kubernetes.io/behavior']);
  v1.spec.maxReplicas = 4;
  await kubectl(['replace', '-f', '-'], JSON.stringify(v1));
  const back = await hpaOf('shaped');
  assert.equal(back.spec!.maxReplicas, 4);
  assert.deepEqual(back.spec!.behavior, v2.spec!.behavior);
  assert.deepEqual(back.spec!.metrics!.map((m) => m.resource!.name).sort(), ['cpu', 'memory']);
  assert.deepEqual(back.spec!.metrics!.find((m) => m.resource!.name === 'memory'), { type: 'Resource', resource: { name: 'memory', target: { type: 'AverageValue', averageValue: '100Mi' } } });
  assert.deepEqual(Object.keys(back.metadata!.annotations ?? {}).filter((k) => k.startsWith('autoscaling.alpha.kubernetes.io/')), []);

  const invalid = await kubectlFails(['apply', '-f', '-'], hpa('bad', `  minReplicas: 0
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Percent, averageUtilization: 0}}
  behavior:
    scaleUp: {selectPolicy: Fastest, policies: []}
`));
  assert.match(invalid, /The HorizontalPodAutoscaler "bad" is invalid:/);
  assert.match(invalid, /spec\.minReplicas: Invalid value: 0: must be greater than or equal to 1/);
  assert.match(invalid, /spec\.metrics\[0\]\.resource\.target\.type: Invalid value: "Percent": must be either Utilization, Value, or AverageValue/);
  assert.match(invalid, /spec\.metrics\[0\]\.resource\.target\.averageUtilization: Invalid value: 0: must be greater than 0/);
  assert.match(invalid, /spec\.behavior\.scaleUp\.selectPolicy: Unsupported value: "Fastest": supported values: "Disabled", "Max", "Min"/);
  assert.match(invalid, /spec\.behavior\.scaleUp\.policies: Required value: must specify at least one Policy/);
  const maxBelowMin = await kubectlFails(['apply', '-f', '-'], hpa('bad', '  minReplicas: 5\n'));
  assert.match(maxBelowMin, /spec\.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`/);
});
