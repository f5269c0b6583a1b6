// The ReplicaSet and Deployment controllers against a real API server (in-process, memory store),
// with a tiny fake kubelet that reports every pod Running and Ready, and the real kubectl 1.32 for
// the rollout commands.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApiServer, type ApiServer } from '../../src/apiserver/server.js';
import { MemoryStore } from '../../src/storage/memory/memory-store.js';
import { Informer, RestClient } from '../../src/client/index.js';
import { newControllerContext } from '../../src/controllers/context.js';
import { start as startReplicaSetController } from '../../src/controllers/replicaset/replicaset-controller.js';
import { start as startDeploymentController } from '../../src/controllers/deployment/deployment-controller.js';
import type { Deployment, Pod, ReplicaSet } from '../../src/controllers/replicaset/types.js';

const deployments = { group: 'apps', version: 'v1', plural: 'deployments' };
const replicasets = { group: 'apps', version: 'v1', plural: 'replicasets' };
const pods = { group: '', version: 'v1', plural: 'pods' };
const NS = 'default';
const KUBECTL = process.env.KUBECTL ?? (existsSync('/usr/lib/google-cloud-sdk/bin/kubectl.1.32') ? '/usr/lib/google-cloud-sdk/bin/kubectl.1.32' : 'kubectl');

let api: ApiServer;
let client: RestClient;
const stop = new AbortController();
const running: Promise<unknown>[] = [];
let podWatch: Informer<Pod>;
let dir: string;

/** Marks pods Running and Ready a little after they appear (never for image `never-ready`). */
function fakeKubelet(signal: AbortSignal): Promise<void> {
  const inf = new Informer<Pod>({ client, resource: pods });
  const seen = new Set<string>();
  const handle = (p: Pod): void => {
    const uid = p.metadata!.uid!;
    if (seen.has(uid) || p.metadata?.deletionTimestamp) return;
    const image = (p.spec as { containers?: { image?: string }[] }).containers?.[0]?.image;
    if (image === 'never-ready') return;
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
  api = await startApiServer({ store: new MemoryStore(), port: 0, requireAuth: false });
  client = new RestClient({ server: api.url });
  const ctx = newControllerContext(client);
  running.push(startReplicaSetController(ctx, stop.signal), startDeploymentController(ctx, stop.signal), fakeKubelet(stop.signal));
  podWatch = new Informer<Pod>({ client, resource: pods });
  running.push(podWatch.run(stop.signal));
  await podWatch.waitForSync();
  dir = mkdtempSync(join(tmpdir(), 'kyb-deploy-'));
});

after(async () => {
  stop.abort();
  await Promise.all(running);
  client.close();
  await api.close();
  rmSync(dir, { recursive: true, force: true });
});

async function until<T>(what: string, f: () => Promise<T | undefined | false> | T | undefined | false, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function deployment(name: string, replicas: number, image: string, extra: Record<string, unknown> = {}): Deployment {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: NS },
    spec: {
      replicas, selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image }] } },
      ...extra,
    },
  };
}

const getD = (name: string): Promise<Deployment> => client.get<Deployment>(deployments, NS, name);
const listRS = async (name: string): Promise<ReplicaSet[]> => (await client.list<ReplicaSet>(replicasets, NS, { labelSelector: `app=${name}` })).items;
const podsOf = (name: string): Pod[] => podWatch.lister.list(NS, { app: name });
const isReady = (p: Pod): boolean => !p.metadata?.deletionTimestamp && !!p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
const imageOf = (p: Pod | ReplicaSet): string | undefined => {
  const spec = ('template' in (p.spec ?? {}) ? (p as ReplicaSet).spec!.template!.spec : p.spec) as { containers: { image: string }[] };
  return spec.containers[0]!.image;
};

/** The rollout is done in kubectl's sense (rollout status would succeed). */
async function rolledOut(name: string): Promise<Deployment | undefined> {
  const d = await getD(name);
  const s = d.status ?? {};
  const r = d.spec!.replicas!;
  const ok = (s.observedGeneration ?? 0) >= d.metadata!.generation! && s.updatedReplicas === r && s.replicas === r && s.availableReplicas === r;
  return ok ? d : undefined;
}

test('a deployment of 3 gets 3 running pods through one ReplicaSet it owns; scaling to 10 and back to 2', async () => {
  const created = await client.create<Deployment>(deployments, NS, deployment('web', 3, 'nginx:1.27'));
  await until('3 ready pods', () => podsOf('web').filter(isReady).length === 3 && podsOf('web').length === 3);
  const d = await until('rolled out', () => rolledOut('web'));
  assert.equal(d.metadata!.annotations!['deployment.kubernetes.io/revision'], '1');
  const available = d.status!.conditions!.find((c) => c.type === 'Available')!;
  assert.deepEqual([available.status, available.reason], ['True', 'MinimumReplicasAvailable']);
  const progressing = d.status!.conditions!.find((c) => c.type === 'Progressing')!;
  assert.deepEqual([progressing.status, progressing.reason], ['True', 'NewReplicaSetAvailable']);

  const [rs, ...more] = await listRS('web');
  assert.equal(more.length, 0);
  const hash = rs!.metadata!.labels!['pod-template-hash']!;
  assert.match(hash, /^[bcdfghjklmnpqrstvwxz2456789]{1,10}$/);
  assert.equal(rs!.metadata!.name, `web-${hash}`);
  assert.deepEqual(rs!.spec!.selector, { matchLabels: { app: 'web', 'pod-template-hash': hash } });
  assert.equal(rs!.spec!.template!.metadata!.labels!['pod-template-hash'], hash);
  assert.deepEqual(rs!.metadata!.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: created.metadata!.uid, controller: true, blockOwnerDeletion: true }]);
  assert.equal(rs!.metadata!.annotations!['deployment.kubernetes.io/revision'], '1');
  assert.equal(rs!.metadata!.annotations!['deployment.kubernetes.io/desired-replicas'], '3');
  assert.equal(rs!.metadata!.annotations!['deployment.kubernetes.io/max-replicas'], '4');
  assert.deepEqual(rs!.status && [rs.status.replicas, rs.status.readyReplicas, rs.status.availableReplicas, rs.status.fullyLabeledReplicas], [3, 3, 3, 3]);
  for (const p of podsOf('web')) {
    assert.ok(p.metadata!.name!.startsWith(`web-${hash}-`) && p.metadata!.name!.length === `web-${hash}-`.length + 5, p.metadata!.name);
    assert.deepEqual(p.metadata!.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs!.metadata!.name, uid: rs!.metadata!.uid, controller: true, blockOwnerDeletion: true }]);
    assert.equal(p.metadata!.labels!['pod-template-hash'], hash);
  }

  await client.patch(deployments, NS, 'web', { spec: { replicas: 10 } }, 'merge', { subresource: 'scale' });
  await until('10 ready pods', () => podsOf('web').filter(isReady).length === 10);
  await until('rolled out at 10', () => rolledOut('web'));
  await client.patch(deployments, NS, 'web', { spec: { replicas: 2 } }, 'merge', { subresource: 'scale' });
  await until('2 pods', () => podsOf('web').length === 2);
  const d2 = await until('rolled out at 2', () => rolledOut('web'));
  assert.equal(d2.status!.readyReplicas, 2);
  assert.equal((await listRS('web')).length, 1, 'scaling makes no new ReplicaSet');
});

test('set image rolls pods over without dropping below replicas - maxUnavailable; undo reactivates the old ReplicaSet as revision 3', async () => {
  const name = 'roll';
  const replicas = 6;
  await client.create(deployments, NS, deployment(name, replicas, 'app:v1', { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 2, maxUnavailable: 1 } } }));
  await until('rolled out', () => rolledOut(name));
  const [rs1] = await listRS(name);

  // watch the pods (availability) and the ReplicaSets (surge) while the image changes
  let minReady = Infinity;
  let maxTotal = 0;
  const off = podWatch.addEventHandler({
    onAdd: () => { minReady = Math.min(minReady, podsOf(name).filter(isReady).length); },
    onUpdate: () => { minReady = Math.min(minReady, podsOf(name).filter(isReady).length); },
    onDelete: () => { minReady = Math.min(minReady, podsOf(name).filter(isReady).length); },
  });
  const rsWatch = new Informer<ReplicaSet>({ client, resource: replicasets, namespace: NS, labelSelector: `app=${name}` });
  const rsStop = new AbortController();
  const rsRun = rsWatch.run(rsStop.signal);
  const total = (): void => { maxTotal = Math.max(maxTotal, rsWatch.lister.list().reduce((n, r) => n + (r.spec?.replicas ?? 0), 0)); };
  rsWatch.addEventHandler({ onAdd: total, onUpdate: total });
  await rsWatch.waitForSync();

  // what `kubectl set image` sends
  await client.patch(deployments, NS, name, { spec: { template: { spec: { containers: [{ name: 'c', image: 'app:v2' }] } } } }, 'strategic');
  const d = await until('rolled out to v2', async () => { const x = await rolledOut(name); return x && podsOf(name).length === replicas && podsOf(name).every((p) => imageOf(p) === 'app:v2') ? x : undefined; });
  off();
  rsStop.abort();
  await rsRun;
  assert.ok(minReady >= replicas - 1, `ready pods dropped to ${minReady}`);
  assert.ok(minReady < replicas + 2);
  assert.ok(maxTotal <= replicas + 2, `ReplicaSets held ${maxTotal} replicas`);
  assert.ok(maxTotal > replicas, 'the rollout surged');

  const rss = await listRS(name);
  assert.equal(rss.length, 2);
  const rs2 = rss.find((r) => r.metadata!.uid !== rs1!.metadata!.uid)!;
  const old = rss.find((r) => r.metadata!.uid === rs1!.metadata!.uid)!;
  assert.equal(d.metadata!.annotations!['deployment.kubernetes.io/revision'], '2');
  assert.equal(rs2.metadata!.annotations!['deployment.kubernetes.io/revision'], '2');
  assert.equal(old.metadata!.annotations!['deployment.kubernetes.io/revision'], '1');
  assert.equal(old.spec!.replicas, 0);
  assert.equal(imageOf(rs2), 'app:v2');

  // what `kubectl rollout undo` sends: the old template without its hash label, and annotations
  const template = structuredClone(old.spec!.template!);
  delete template.metadata!.labels!['pod-template-hash'];
  await client.patch(deployments, NS, name, [
    { op: 'replace', path: '/spec/template', value: template },
    { op: 'replace', path: '/metadata/annotations', value: { 'deployment.kubernetes.io/revision': '2' } },
  ], 'json');
  const back = await until('rolled back to v1', async () => { const x = await rolledOut(name); return x && podsOf(name).length === replicas && podsOf(name).every((p) => imageOf(p) === 'app:v1') ? x : undefined; });
  assert.equal(back.metadata!.annotations!['deployment.kubernetes.io/revision'], '3');
  const after = await listRS(name);
  assert.equal(after.length, 2, 'no third ReplicaSet');
  const re = after.find((r) => r.metadata!.uid === rs1!.metadata!.uid)!;
  assert.equal(re.metadata!.annotations!['deployment.kubernetes.io/revision'], '3');
  assert.equal(re.metadata!.annotations!['deployment.kubernetes.io/revision-history'], '1');
  assert.equal(re.spec!.replicas, replicas);
  assert.equal(after.find((r) => r.metadata!.uid === rs2.metadata!.uid)!.spec!.replicas, 0);
});

test('Recreate removes every old pod before the first new one', async () => {
  const name = 'recreate';
  await client.create(deployments, NS, deployment(name, 3, 'db:v1', { strategy: { type: 'Recreate' } }));
  await until('rolled out', () => rolledOut(name));
  let overlap = 0;
  const check = (p: Pod): void => {
    if (p.metadata?.labels?.app === name && imageOf(p) === 'db:v2' && podsOf(name).some((x) => imageOf(x) === 'db:v1')) overlap++;
  };
  const off = podWatch.addEventHandler({ onAdd: check });
  await client.patch(deployments, NS, name, { spec: { template: { spec: { containers: [{ name: 'c', image: 'db:v2' }] } } } }, 'strategic');
  await until('rolled out to v2', async () => { const x = await rolledOut(name); return x && podsOf(name).length === 3 && podsOf(name).every((p) => imageOf(p) === 'db:v2') ? x : undefined; });
  off();
  assert.equal(overlap, 0);
  const d = await getD(name);
  assert.equal(d.metadata!.annotations!['deployment.kubernetes.io/revision'], '2');
});

test('a paused deployment does not roll out; resuming it does', async () => {
  const name = 'paused';
  await client.create(deployments, NS, deployment(name, 2, 'p:v1'));
  await until('rolled out', () => rolledOut(name));
  await client.patch(deployments, NS, name, { spec: { paused: true } }, 'merge');
  await client.patch(deployments, NS, name, { spec: { template: { spec: { containers: [{ name: 'c', image: 'p:v2' }] } } } }, 'strategic');
  const d = await until('paused condition observed', async () => {
    const x = await getD(name);
    const c = x.status?.conditions?.find((k) => k.type === 'Progressing');
    return x.status?.observedGeneration === x.metadata!.generation && c?.reason === 'DeploymentPaused' && c.status === 'Unknown' ? x : undefined;
  });
  assert.equal(d.metadata!.annotations!['deployment.kubernetes.io/revision'], '1');
  assert.equal((await listRS(name)).length, 1);
  // scaling still works while paused
  await client.patch(deployments, NS, name, { spec: { replicas: 3 } }, 'merge', { subresource: 'scale' });
  await until('3 pods while paused', () => podsOf(name).filter(isReady).length === 3);
  assert.ok(podsOf(name).every((p) => imageOf(p) === 'p:v1'));
  assert.equal((await listRS(name)).length, 1);

  await client.patch(deployments, NS, name, { spec: { paused: false } }, 'merge');
  await until('rolled out to v2', async () => { const x = await rolledOut(name); return x && podsOf(name).length === 3 && podsOf(name).every((p) => imageOf(p) === 'p:v2') ? x : undefined; });
});

test('pods that never become ready exceed the progress deadline', async () => {
  const name = 'stuck';
  await client.create(deployments, NS, deployment(name, 1, 'never-ready', { progressDeadlineSeconds: 1 }));
  const d = await until('ProgressDeadlineExceeded', async () => {
    const x = await getD(name);
    const c = x.status?.conditions?.find((k) => k.type === 'Progressing');
    return c?.reason === 'ProgressDeadlineExceeded' ? x : undefined;
  }, 8000);
  const c = d.status!.conditions!.find((k) => k.type === 'Progressing')!;
  assert.equal(c.status, 'False');
  assert.match(c.message!, /^ReplicaSet "stuck-[a-z0-9]+" has timed out progressing\.$/);
  const a = d.status!.conditions!.find((k) => k.type === 'Available')!;
  assert.deepEqual([a.status, a.reason], ['False', 'MinimumReplicasUnavailable']);
});

test('a ReplicaSet adopts matching orphan pods and releases pods whose labels stop matching', async () => {
  const orphan = await client.create<Pod>(pods, NS, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'orphan', namespace: NS, labels: { app: 'adopt' } }, spec: { containers: [{ name: 'c', image: 'x' }] } });
  const rs = await client.create<ReplicaSet>(replicasets, NS, {
    apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'adopt', namespace: NS },
    spec: { replicas: 2, selector: { matchLabels: { app: 'adopt' } }, template: { metadata: { labels: { app: 'adopt' } }, spec: { containers: [{ name: 'c', image: 'x' }] } } },
  });
  await until('2 pods', () => podsOf('adopt').length === 2 && podsOf('adopt').every((p) => p.metadata?.ownerReferences?.[0]?.uid === rs.metadata!.uid));
  assert.ok(podsOf('adopt').some((p) => p.metadata!.uid === orphan.metadata!.uid), 'the orphan was adopted, not replaced');
  await client.patch(pods, NS, 'orphan', { metadata: { labels: { app: 'gone' } } }, 'merge');
  await until('released and replaced', async () => {
    const p = await client.get<Pod>(pods, NS, 'orphan');
    return !p.metadata?.ownerReferences?.length && podsOf('adopt').length === 2;
  });
});

// --- the real kubectl ---------------------------------------------------------------------------

function kubectl(args: string[], allowFail = false): Promise<{ stdout: string; stderr: string; code: number }> {
  const kubeconfig = join(dir, 'kubeconfig');
  if (!existsSync(kubeconfig)) {
    writeFileSync(kubeconfig, `apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: ${api.url}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: ${NS}\ncurrent-context: c\nusers:\n- name: u\n  user: {}\n`);
  }
  return new Promise((resolve, reject) => {
    execFile(KUBECTL, args, { env: { ...process.env, KUBECONFIG: kubeconfig, KUBECACHEDIR: join(dir, 'cache'), HOME: dir }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      if (code !== 0 && !allowFail) reject(new Error(`kubectl ${args.join(' ')} failed (${code}):\n${stderr}\n${stdout}`));
      else resolve({ stdout, stderr, code });
    });
  });
}

test('kubectl set image, rollout status, rollout history and rollout undo', { skip: !existsSync(KUBECTL) && KUBECTL !== 'kubectl' }, async () => {
  const name = 'kube';
  await client.create(deployments, NS, deployment(name, 3, 'nginx:1.26'));
  const st = await kubectl(['rollout', 'status', `deployment/${name}`, '--timeout=20s']);
  assert.match(st.stdout, /deployment "kube" successfully rolled out/);

  await kubectl(['set', 'image', `deployment/${name}`, 'c=nginx:1.27']);
  const st2 = await kubectl(['rollout', 'status', `deployment/${name}`, '--timeout=20s']);
  assert.match(st2.stdout, /successfully rolled out/);
  assert.ok(podsOf(name).every((p) => imageOf(p) === 'nginx:1.27'));

  const hist = await kubectl(['rollout', 'history', `deployment/${name}`]);
  assert.match(hist.stdout, /REVISION\s+CHANGE-CAUSE\n1\s+<none>\n2\s+<none>/);

  const undo = await kubectl(['rollout', 'undo', `deployment/${name}`]);
  assert.match(undo.stdout, /deployment.apps\/kube rolled back/);
  await kubectl(['rollout', 'status', `deployment/${name}`, '--timeout=20s']);
  await until('pods back on 1.26', () => podsOf(name).length === 3 && podsOf(name).every((p) => imageOf(p) === 'nginx:1.26'));
  const hist2 = await kubectl(['rollout', 'history', `deployment/${name}`]);
  assert.match(hist2.stdout, /REVISION\s+CHANGE-CAUSE\n2\s+<none>\n3\s+<none>/);
  const rev = await kubectl(['rollout', 'history', `deployment/${name}`, '--revision=3']);
  assert.match(rev.stdout, /Image:\s+nginx:1\.26/);

  const stuck = 'kube-stuck';
  await client.create(deployments, NS, deployment(stuck, 1, 'never-ready', { progressDeadlineSeconds: 1 }));
  const failed = await kubectl(['rollout', 'status', `deployment/${stuck}`, '--timeout=20s'], true);
  assert.notEqual(failed.code, 0);
  assert.match(failed.stderr, /exceeded its progress deadline/);
});
