// The garbage collector, namespace, ServiceAccount, node lifecycle and pod GC controllers against
// an in-process API server on a memory store (plain HTTP), driven through the REST client and the
// real kubectl.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApiServer, type ApiServer } from '../../src/apiserver/server.js';
import { MemoryStore } from '../../src/storage/memory/memory-store.js';
import { RestClient, type ResourceRef } from '../../src/client/index.js';
import { newControllerContext, type ControllerContext } from '../../src/controllers/context.js';
import { isStatusError } from '../../src/machinery/status.js';
import type { KObject } from '../../src/api/types.js';
import { start as startGC } from '../../src/controllers/garbagecollector/garbage-collector.js';
import { start as startNamespace } from '../../src/controllers/namespace/namespace-controller.js';
import { start as startServiceAccount } from '../../src/controllers/serviceaccount/serviceaccount-controller.js';
import { start as startNodeLifecycle } from '../../src/controllers/nodelifecycle/node-lifecycle-controller.js';
import { start as startPodGC } from '../../src/controllers/podgc/podgc-controller.js';
import { KUBECTL } from './cluster.js';

const R = {
  ns: { group: '', version: 'v1', plural: 'namespaces' },
  cm: { group: '', version: 'v1', plural: 'configmaps' },
  pods: { group: '', version: 'v1', plural: 'pods' },
  sa: { group: '', version: 'v1', plural: 'serviceaccounts' },
  nodes: { group: '', version: 'v1', plural: 'nodes' },
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' },
  rs: { group: 'apps', version: 'v1', plural: 'replicasets' },
  deploy: { group: 'apps', version: 'v1', plural: 'deployments' },
} satisfies Record<string, ResourceRef>;

let api: ApiServer;
let client: RestClient;
let ctx: ControllerContext;
const stop = new AbortController();
setMaxListeners(0, stop.signal); // every shared informer listens to it
const runs: Promise<void>[] = [];

before(async () => {
  api = await startApiServer({ store: new MemoryStore(), port: 0, requireAuth: false });
  client = new RestClient({ server: api.url });
  ctx = newControllerContext(client);
  runs.push(
    startGC(ctx, stop.signal), startNamespace(ctx, stop.signal, { recheckMs: 300 }), startServiceAccount(ctx, stop.signal),
    startNodeLifecycle(ctx, stop.signal, { nodeMonitorGracePeriodMs: 1500, nodeStartupGracePeriodMs: 3000, nodeMonitorPeriodMs: 200 }),
    startPodGC(ctx, stop.signal, { gcCheckPeriodMs: 200, quarantineMs: 300, terminatedPodGCThreshold: 2 }),
  );
  ctx.informers.start(stop.signal);
});

after(async () => {
  stop.abort();
  await Promise.all(runs);
  await ctx.informers.stopped();
  await ctx.recorder('node-controller').close();
  client.close();
  await api.close();
});

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 8000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function gone(res: ResourceRef, ns: string | undefined, name: string): Promise<boolean> {
  try { await client.get(res, ns, name); return false; } catch (e) { if (isStatusError(e, 'NotFound')) return true; throw e; }
}

async function createNamespace(name: string): Promise<KObject> {
  return client.create(R.ns, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
}

function ownerRef(o: KObject, extra: { controller?: boolean; blockOwnerDeletion?: boolean } = {}): { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean } {
  return { apiVersion: o.apiVersion!, kind: o.kind!, name: o.metadata!.name!, uid: o.metadata!.uid!, ...extra };
}

const podSpec = { containers: [{ name: 'c', image: 'nginx' }] };
const template = { metadata: { labels: { app: 'web' } }, spec: podSpec };

/** A deployment, a replicaset it owns and two pods the replicaset owns. */
async function deploymentTree(ns: string, name: string): Promise<{ deploy: KObject; rs: KObject; pods: KObject[] }> {
  const deploy = await client.create(R.deploy, ns, { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name }, spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template } });
  const rs = await client.create(R.rs, ns, {
    apiVersion: 'apps/v1', kind: 'ReplicaSet',
    metadata: { name: `${name}-abc`, ownerReferences: [ownerRef(deploy, { controller: true, blockOwnerDeletion: true })] },
    spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template },
  });
  const pods: KObject[] = [];
  for (const i of [1, 2]) {
    pods.push(await client.create(R.pods, ns, {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: `${name}-abc-${i}`, labels: { app: 'web' }, ownerReferences: [ownerRef(rs, { controller: true, blockOwnerDeletion: true })] },
      spec: podSpec,
    }));
  }
  return { deploy, rs, pods };
}

test('a new namespace gets a default ServiceAccount, and gets it back when it is deleted', async () => {
  await createNamespace('sa-test');
  await until('default serviceaccount', async () => !(await gone(R.sa, 'sa-test', 'default')));
  await client.delete(R.sa, 'sa-test', 'default');
  await until('default serviceaccount recreated', async () => !(await gone(R.sa, 'sa-test', 'default')));
});

test('background cascade: deleting a deployment deletes its replicaset and, through it, its pods', async () => {
  await createNamespace('gc-bg');
  const { deploy, rs, pods } = await deploymentTree('gc-bg', 'web');
  const bystander = await client.create<KObject>(R.cm, 'gc-bg', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'keep' }, data: { a: '1' } });
  await client.delete(R.deploy, 'gc-bg', deploy.metadata!.name!, { propagationPolicy: 'Background' });
  await until('replicaset deleted', () => gone(R.rs, 'gc-bg', rs.metadata!.name!));
  for (const p of pods) await until(`pod ${p.metadata!.name} deleted`, () => gone(R.pods, 'gc-bg', p.metadata!.name!));
  const kept = await client.get(R.cm, 'gc-bg', 'keep');
  assert.equal(kept.metadata?.uid, bystander.metadata?.uid);
});

test('a dependent with one owner left keeps living, without the reference to the owner that went', async () => {
  await createNamespace('gc-multi');
  const a = await client.create(R.cm, 'gc-multi', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'owner-a' } });
  const b = await client.create(R.cm, 'gc-multi', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'owner-b' } });
  await client.create(R.cm, 'gc-multi', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'dep', ownerReferences: [ownerRef(a), ownerRef(b)] } });
  await client.delete(R.cm, 'gc-multi', 'owner-a');
  const dep = await until('dangling reference removed', async () => {
    const d = await client.get(R.cm, 'gc-multi', 'dep');
    return d.metadata?.ownerReferences?.length === 1 ? d : undefined;
  });
  assert.deepEqual(dep.metadata!.ownerReferences!.map((r) => r.name), ['owner-b']);
  await client.delete(R.cm, 'gc-multi', 'owner-b');
  await until('dependent deleted with its last owner', () => gone(R.cm, 'gc-multi', 'dep'));
});

test('a dependent whose owner never existed (uid mismatch) is deleted', async () => {
  await createNamespace('gc-uid');
  const real = await client.create<KObject>(R.cm, 'gc-uid', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'owner' } });
  await client.create(R.cm, 'gc-uid', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'dep', ownerReferences: [{ ...ownerRef(real), uid: '00000000-0000-0000-0000-000000000000' }] } });
  await until('dependent of a stranger deleted', () => gone(R.cm, 'gc-uid', 'dep'));
  const owner = await client.get(R.cm, 'gc-uid', 'owner');
  assert.equal(owner.metadata?.uid, real.metadata?.uid);
});

test('orphan: deleting with propagationPolicy Orphan leaves the dependents, without the ownerReference', async () => {
  await createNamespace('gc-orphan');
  const { rs, pods } = await deploymentTree('gc-orphan', 'web');
  await client.delete(R.rs, 'gc-orphan', rs.metadata!.name!, { propagationPolicy: 'Orphan' });
  await until('replicaset gone', () => gone(R.rs, 'gc-orphan', rs.metadata!.name!));
  for (const p of pods) {
    const live = await client.get(R.pods, 'gc-orphan', p.metadata!.name!);
    assert.equal(live.metadata?.uid, p.metadata?.uid);
    assert.equal(live.metadata?.ownerReferences, undefined, 'the ownerReference to the replicaset is removed');
  }
  // the deployment still owns nothing that was deleted
  assert.ok(!(await gone(R.deploy, 'gc-orphan', 'web')));
});

test('foreground: the owner stays (with foregroundDeletion) until its blocking dependents are gone', async () => {
  await createNamespace('gc-fg');
  const { deploy, rs, pods } = await deploymentTree('gc-fg', 'web');
  // a finalizer on one pod holds the cascade, so we can see the owner waiting
  const held = structuredClone(await client.get(R.pods, 'gc-fg', pods[0]!.metadata!.name!));
  held.metadata!.finalizers = ['example.com/hold'];
  await client.update(R.pods, 'gc-fg', held);
  await client.delete(R.deploy, 'gc-fg', 'web', { propagationPolicy: 'Foreground' });
  await until('the other pod deleted', () => gone(R.pods, 'gc-fg', pods[1]!.metadata!.name!));
  const d = await client.get(R.deploy, 'gc-fg', 'web');
  assert.ok(d.metadata?.deletionTimestamp, 'deployment is being deleted');
  assert.deepEqual(d.metadata?.finalizers, ['foregroundDeletion']);
  const r = await client.get(R.rs, 'gc-fg', rs.metadata!.name!);
  assert.ok(r.metadata?.finalizers?.includes('foregroundDeletion'), 'the replicaset is deleted in the foreground too');
  // release the held pod: everything goes, the owner last. The collector may be marking that pod
  // deleted meanwhile, so read-modify-write until no conflict, as a client must (upstream's
  // RetryOnConflict)
  for (let attempt = 0; ; attempt++) {
    const p0 = structuredClone(await client.get(R.pods, 'gc-fg', pods[0]!.metadata!.name!));
    p0.metadata!.finalizers = [];
    try {
      await client.update(R.pods, 'gc-fg', p0);
      break;
    } catch (e) {
      if (!(isStatusError(e) && e.code === 409) || attempt >= 5) throw e;
    }
  }
  await until('deployment gone', () => gone(R.deploy, 'gc-fg', deploy.metadata!.name!));
  assert.ok(await gone(R.rs, 'gc-fg', rs.metadata!.name!));
  assert.ok(await gone(R.pods, 'gc-fg', pods[0]!.metadata!.name!));
});

test('deleting a namespace empties it (configmaps, a deployment with its replicaset and pods), then removes it', async () => {
  await createNamespace('doomed');
  await deploymentTree('doomed', 'web');
  for (const i of [1, 2, 3]) await client.create(R.cm, 'doomed', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}` } });
  await until('default serviceaccount', async () => !(await gone(R.sa, 'doomed', 'default')));
  await client.delete(R.ns, undefined, 'doomed');
  const terminating = await client.get(R.ns, undefined, 'doomed').catch(() => undefined);
  if (terminating) assert.equal((terminating.status as { phase?: string }).phase, 'Terminating');
  await until('namespace gone', () => gone(R.ns, undefined, 'doomed'));
  for (const res of [R.cm, R.pods, R.rs, R.deploy, R.sa]) {
    assert.deepEqual((await client.list(res, 'doomed')).items.map((o) => o.metadata?.name), [], `no ${res.plural} left`);
  }
});

/** Removes the finalizers of an object (read-modify-write, retried on conflict). */
async function release(res: ResourceRef, ns: string, name: string): Promise<void> {
  await until(`finalizers of ${name} removed`, async () => {
    const o = structuredClone(await client.get(res, ns, name));
    o.metadata!.finalizers = [];
    await client.update(res, ns, o);
    return true;
  });
}

test('a namespace waits for content held by a finalizer, then goes', async () => {
  await createNamespace('held');
  await client.create(R.cm, 'held', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sticky', finalizers: ['example.com/hold'] } });
  await client.delete(R.ns, undefined, 'held');
  await until('configmap marked for deletion', async () => !!(await client.get(R.cm, 'held', 'sticky')).metadata?.deletionTimestamp);
  assert.ok(!(await gone(R.ns, undefined, 'held')), 'the namespace waits');
  await release(R.cm, 'held', 'sticky');
  await until('namespace gone', () => gone(R.ns, undefined, 'held'));
});

test('a terminating namespace says what it waits for in its conditions', async () => {
  await createNamespace('held2');
  await client.create(R.cm, 'held2', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sticky', finalizers: ['example.com/hold'] } });
  await client.delete(R.ns, undefined, 'held2');
  try {
    const conds = await until('conditions report the remaining finalizer', async () => {
      const n = await client.get(R.ns, undefined, 'held2');
      const cs = ((n.status as { conditions?: { type: string; status: string; message: string }[] }).conditions ?? []);
      return cs.some((c) => c.type === 'NamespaceFinalizersRemaining' && c.status === 'True') ? cs : undefined;
    });
    assert.match(conds.find((c) => c.type === 'NamespaceFinalizersRemaining')!.message, /example\.com\/hold in 1 resource instances/);
    assert.match(conds.find((c) => c.type === 'NamespaceContentRemaining')!.message, /configmaps has 1 resource instances/);
    assert.equal(conds.find((c) => c.type === 'NamespaceDeletionContentFailure')?.status, 'False');
  } finally {
    await release(R.cm, 'held2', 'sticky');
  }
  await until('namespace gone', () => gone(R.ns, undefined, 'held2'));
});

test('kubectl delete namespace waits until the namespace is gone', { skip: !KUBECTL && 'no kubectl' }, async () => {
  await createNamespace('kubectl-ns');
  await client.create(R.cm, 'kubectl-ns', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } });
  const dir = mkdtempSync(join(tmpdir(), 'kyb-ctl-'));
  try {
    const out = await new Promise<string>((resolve, reject) => {
      execFile(KUBECTL, [`--server=${api.url}`, 'delete', 'namespace', 'kubectl-ns', '--timeout=20s'], {
        env: { ...process.env, KUBECACHEDIR: join(dir, 'cache'), HOME: dir, KUBECONFIG: join(dir, 'none') }, timeout: 30_000,
      }, (err, stdout, stderr) => (err ? reject(new Error(`${String(err)}\n${stderr}`)) : resolve(String(stdout))));
    });
    assert.match(out, /namespace "kubectl-ns" deleted/);
    assert.ok(await gone(R.ns, undefined, 'kubectl-ns'), 'gone when kubectl returns');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------- nodes

const now = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A stand-in node agent: registers the node, posts Ready and renews its Lease until stopped. */
async function fakeAgent(name: string): Promise<{ stop(): void; resume(ready?: 'True' | 'False'): void }> {
  await client.create(R.nodes, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name } } });
  let ready: 'True' | 'False' = 'True';
  const post = async (): Promise<void> => {
    const n = structuredClone(await client.get(R.nodes, undefined, name));
    const t = now();
    n.status = { ...(n.status as object), conditions: [{ type: 'Ready', status: ready, reason: ready === 'True' ? 'KubeletReady' : 'KubeletNotReady', message: 'test agent', lastHeartbeatTime: t, lastTransitionTime: t }] };
    await client.updateStatus(R.nodes, undefined, n);
  };
  const renew = async (): Promise<void> => {
    const spec = { holderIdentity: name, leaseDurationSeconds: 40, renewTime: new Date().toISOString().replace('Z', '000Z') };
    try {
      const l = structuredClone(await client.get(R.leases, 'kube-node-lease', name));
      l.spec = spec;
      await client.update(R.leases, 'kube-node-lease', l);
    } catch (e) {
      if (!isStatusError(e, 'NotFound')) throw e;
      await client.create(R.leases, 'kube-node-lease', { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name }, spec });
    }
  };
  await post();
  await renew();
  let timer: NodeJS.Timeout | undefined;
  const beat = (): void => { clearInterval(timer); timer = setInterval(() => { renew().catch(() => {}); }, 250); };
  beat();
  return {
    stop() { clearInterval(timer); },
    resume(r = 'True') { ready = r; void post().catch(() => {}); beat(); },
  };
}

interface Cond { type: string; status: string; reason?: string; message?: string }
const condition = (n: KObject, type: string): Cond | undefined => ((n.status as { conditions?: Cond[] }).conditions ?? []).find((c) => c.type === type);
const taintKeys = (n: KObject): string[] => (((n.spec as { taints?: { key: string; effect: string }[] } | undefined)?.taints) ?? []).map((t) => `${t.key}:${t.effect}`).sort();

async function boundPod(ns: string, name: string, node: string, tolerations: unknown[]): Promise<KObject> {
  return client.create(R.pods, ns, {
    apiVersion: 'v1', kind: 'Pod', metadata: { name },
    spec: { ...podSpec, nodeName: node, terminationGracePeriodSeconds: 1, tolerations },
  });
}

test('a node whose lease stops being renewed becomes Unknown and unreachable; its pods are evicted as their tolerations say; recovery removes the taints', async () => {
  await createNamespace('nodes');
  const agent = await fakeAgent('node-a');
  const healthy = await fakeAgent('node-b');
  try {
    const unreachable = { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' };
    const intolerant = await boundPod('nodes', 'intolerant', 'node-a', [{ ...unreachable, tolerationSeconds: 0 }]);
    const patient = await boundPod('nodes', 'patient', 'node-a', [{ ...unreachable, tolerationSeconds: 2 }]);
    await boundPod('nodes', 'forever', 'node-a', [unreachable]);
    await boundPod('nodes', 'elsewhere', 'node-b', [{ ...unreachable, tolerationSeconds: 0 }]);
    agent.stop();
    const stoppedAt = Date.now();
    const node = await until('node-a Ready=Unknown', async () => {
      const n = await client.get(R.nodes, undefined, 'node-a');
      return condition(n, 'Ready')?.status === 'Unknown' ? n : undefined;
    });
    assert.ok(Date.now() - stoppedAt >= 1000, 'not before the grace period');
    assert.equal(condition(node, 'Ready')!.reason, 'NodeStatusUnknown');
    assert.equal(condition(node, 'Ready')!.message, 'Kubelet stopped posting node status.');
    await until('unreachable taints', async () => {
      const keys = taintKeys(await client.get(R.nodes, undefined, 'node-a'));
      return JSON.stringify(keys) === JSON.stringify(['node.kubernetes.io/unreachable:NoExecute', 'node.kubernetes.io/unreachable:NoSchedule']);
    });
    // the intolerant pod is deleted at once and, its agent being gone, removed by the pod GC
    await until('intolerant pod gone', () => gone(R.pods, 'nodes', intolerant.metadata!.name!));
    const tainted = Date.now();
    assert.ok(!(await gone(R.pods, 'nodes', patient.metadata!.name!)), 'the patient pod waits for its tolerationSeconds');
    await until('patient pod gone', () => gone(R.pods, 'nodes', patient.metadata!.name!));
    assert.ok(Date.now() - tainted >= 1000, 'the patient pod lived out (most of) its tolerationSeconds');
    assert.ok(!(await gone(R.pods, 'nodes', 'forever')), 'a pod tolerating the taint forever stays');
    assert.ok(!(await gone(R.pods, 'nodes', 'elsewhere')), 'pods on a healthy node stay');
    assert.equal(condition(await client.get(R.nodes, undefined, 'node-b'), 'Ready')?.status, 'True');
    assert.deepEqual(taintKeys(await client.get(R.nodes, undefined, 'node-b')), []);

    // the agent comes back
    agent.resume();
    await until('taints removed after recovery', async () => taintKeys(await client.get(R.nodes, undefined, 'node-a')).length === 0);

    // an agent reporting NotReady gets the not-ready taints
    agent.resume('False');
    await until('not-ready taints', async () => {
      const keys = taintKeys(await client.get(R.nodes, undefined, 'node-a'));
      return JSON.stringify(keys) === JSON.stringify(['node.kubernetes.io/not-ready:NoExecute', 'node.kubernetes.io/not-ready:NoSchedule']);
    });
  } finally {
    agent.stop();
    healthy.stop();
  }
});

test('pod GC removes pods bound to a node that does not exist, and the oldest terminated pods beyond the threshold', async () => {
  await createNamespace('podgc');
  const orphan = await boundPod('podgc', 'orphan', 'no-such-node', []);
  for (const i of [1, 2, 3, 4]) {
    const p = await client.create<KObject>(R.pods, 'podgc', { apiVersion: 'v1', kind: 'Pod', metadata: { name: `done-${i}` }, spec: { ...podSpec, restartPolicy: 'Never' } });
    const s = structuredClone(p);
    s.status = { ...(s.status as object), phase: 'Succeeded' };
    await client.updateStatus(R.pods, 'podgc', s);
  }
  await until('orphan pod removed', () => gone(R.pods, 'podgc', orphan.metadata!.name!));
  // (created within the same second, they are ordered by namespace/name after creationTimestamp)
  await until('two oldest terminated pods removed', async () => {
    const names = (await client.list(R.pods, 'podgc')).items.map((p) => p.metadata!.name!).sort();
    return JSON.stringify(names) === JSON.stringify(['done-3', 'done-4']);
  });
});
