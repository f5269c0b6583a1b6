// The official JavaScript client (@kubernetes/client-node 1.4) against an in-process `kyb server`
// over HTTPS with the kubeconfig the server wrote: typed CRUD, and an informer that lists,
// watches, and survives a 410 Gone by relisting.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { startCluster, type TestCluster } from './cluster.js';

let c: TestCluster;
let kc: k8s.KubeConfig;
let core: k8s.CoreV1Api;
let apps: k8s.AppsV1Api;

before(async () => {
  // a tiny watch-cache window so that a watch resumed after a burst of writes gets 410
  c = await startCluster(['--watch-cache-size', '20']);
  kc = new k8s.KubeConfig();
  kc.loadFromFile(c.kubeconfig);
  core = kc.makeApiClient(k8s.CoreV1Api);
  apps = kc.makeApiClient(k8s.AppsV1Api);
});
after(async () => { await c.stop(); });

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

async function expectApiError(p: Promise<unknown>, code: number, reason: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof k8s.ApiException, `not an ApiException: ${e}`);
    assert.equal(e.code, code);
    const body = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
    assert.equal(body.reason, reason);
    return;
  }
  assert.fail(`expected ${code} ${reason}`);
}

/** Poll with a deadline (the informer is asynchronous). */
async function until(what: string, pred: () => boolean | Promise<boolean>, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('ConfigMap: create, list, read, patch, replace, delete with the typed CoreV1Api', async () => {
  const created = await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'cn-cm', labels: { app: 'cn' } }, data: { a: '1' } } });
  assert.equal(created.metadata?.name, 'cn-cm');
  assert.ok(created.metadata?.uid);
  assert.ok(created.metadata?.resourceVersion);
  await expectApiError(core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'cn-cm' } } }), 409, 'AlreadyExists');

  const list = await core.listNamespacedConfigMap({ namespace: 'default', labelSelector: 'app=cn' });
  assert.deepEqual(list.items.map((i) => i.metadata?.name), ['cn-cm']);
  assert.ok(list.metadata?.resourceVersion);

  const read = await core.readNamespacedConfigMap({ name: 'cn-cm', namespace: 'default' });
  assert.deepEqual(read.data, { a: '1' });

  const patched = await core.patchNamespacedConfigMap({ name: 'cn-cm', namespace: 'default', body: { data: { b: '2' } } }, mergePatch);
  assert.deepEqual(patched.data, { a: '1', b: '2' });
  // the default patch type of client-node 1.x is JSON patch
  const jp = await core.patchNamespacedConfigMap({ name: 'cn-cm', namespace: 'default', body: [{ op: 'remove', path: '/data/a' }] });
  assert.deepEqual(jp.data, { b: '2' });

  const replaced = await core.replaceNamespacedConfigMap({ name: 'cn-cm', namespace: 'default', body: { ...jp, data: { c: '3' } } });
  assert.deepEqual(replaced.data, { c: '3' });
  await expectApiError(core.replaceNamespacedConfigMap({ name: 'cn-cm', namespace: 'default', body: { ...jp, data: { d: '4' } } }), 409, 'Conflict');

  await core.deleteNamespacedConfigMap({ name: 'cn-cm', namespace: 'default' });
  await expectApiError(core.readNamespacedConfigMap({ name: 'cn-cm', namespace: 'default' }), 404, 'NotFound');
});

test('Deployment: create with defaults, scale, patch, delete with the typed AppsV1Api', async () => {
  const d = await apps.createNamespacedDeployment({
    namespace: 'default',
    body: {
      metadata: { name: 'cn-web' },
      spec: {
        replicas: 2, selector: { matchLabels: { app: 'cn-web' } },
        template: { metadata: { labels: { app: 'cn-web' } }, spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] } },
      },
    },
  });
  assert.equal(d.metadata?.generation, 1);
  assert.equal(d.spec?.revisionHistoryLimit, 10);
  assert.equal(d.spec?.progressDeadlineSeconds, 600);
  assert.equal(d.spec?.strategy?.type, 'RollingUpdate');
  assert.equal(d.spec?.strategy?.rollingUpdate?.maxSurge, '25%');

  const list = await apps.listNamespacedDeployment({ namespace: 'default' });
  assert.ok(list.items.some((i) => i.metadata?.name === 'cn-web'));

  const scale = await apps.readNamespacedDeploymentScale({ name: 'cn-web', namespace: 'default' });
  assert.equal(scale.spec?.replicas, 2);
  const scaled = await apps.replaceNamespacedDeploymentScale({ name: 'cn-web', namespace: 'default', body: { ...scale, spec: { replicas: 5 } } });
  assert.equal(scaled.spec?.replicas, 5);

  const p = await apps.patchNamespacedDeployment({ name: 'cn-web', namespace: 'default', body: { spec: { template: { spec: { containers: [{ name: 'web', image: 'nginx:1.28' }] } } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch));
  assert.equal(p.spec?.template.spec?.containers[0].image, 'nginx:1.28');
  assert.equal(p.spec?.replicas, 5);
  assert.equal(p.metadata?.generation, 3);

  const st = await apps.readNamespacedDeploymentStatus({ name: 'cn-web', namespace: 'default' });
  assert.equal(st.metadata?.name, 'cn-web');

  await apps.deleteNamespacedDeployment({ name: 'cn-web', namespace: 'default', propagationPolicy: 'Background' });
  await expectApiError(apps.readNamespacedDeployment({ name: 'cn-web', namespace: 'default' }), 404, 'NotFound');
});

/**
 * A TCP relay in front of the API server that can hold traffic from clients: while held, bytes
 * from clients are queued (so a client's reconnect cannot reach the server), bytes from the server
 * still flow. TLS passes through untouched.
 */
function startRelay(targetPort: number): Promise<{ port: number; hold(): void; release(): void; close(): Promise<void> }> {
  let held = false;
  const conns = new Set<{ client: Socket; upstream: Socket; queue: Buffer[] }>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const conn = { client, upstream, queue: [] as Buffer[] };
    conns.add(conn);
    client.on('data', (d: Buffer) => { if (held) conn.queue.push(d); else upstream.write(d); });
    upstream.on('data', (d: Buffer) => client.write(d));
    const end = () => { conns.delete(conn); client.destroy(); upstream.destroy(); };
    client.on('close', end); upstream.on('close', end);
    client.on('error', end); upstream.on('error', end);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    port: (server.address() as AddressInfo).port,
    hold() { held = true; },
    release() {
      held = false;
      for (const cn of conns) { for (const d of cn.queue.splice(0)) cn.upstream.write(d); }
    },
    close() {
      for (const cn of conns) { cn.client.destroy(); cn.upstream.destroy(); }
      return new Promise<void>((r) => server.close(() => r()));
    },
  })));
}

test('an informer lists, watches, and relists after 410 Gone', async () => {
  const relay = await startRelay(c.server.api.port);
  // the same kubeconfig, but through the relay
  const ikc = new k8s.KubeConfig();
  ikc.loadFromFile(c.kubeconfig);
  const cluster = ikc.getCurrentCluster()!;
  ikc.clusters = ikc.clusters.map((cl) => (cl.name === cluster.name ? { ...cl, server: `https://127.0.0.1:${relay.port}` } : cl));
  const icore = ikc.makeApiClient(k8s.CoreV1Api);
  let lists = 0;
  const informer = k8s.makeInformer<k8s.V1ConfigMap>(ikc, '/api/v1/namespaces/default/configmaps', () => { lists++; return icore.listNamespacedConfigMap({ namespace: 'default' }); });
  const seen: string[] = [];
  const errors: unknown[] = [];
  informer.on('add', (o) => seen.push(`add ${o.metadata?.name}`));
  informer.on('update', (o) => seen.push(`update ${o.metadata?.name} ${o.data?.v ?? ''}`));
  informer.on('delete', (o) => seen.push(`delete ${o.metadata?.name}`));
  informer.on('error', (e) => errors.push(e));
  try {
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'inf-pre' }, data: { v: '0' } } });
    await informer.start();
    assert.equal(lists, 1);
    assert.ok(informer.get('inf-pre', 'default'), 'initial list fills the cache');
    assert.ok(seen.includes('add inf-pre'));

    // live events: add, update, delete
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'inf-live' }, data: { v: '1' } } });
    await until('add inf-live', () => seen.includes('add inf-live'));
    await core.patchNamespacedConfigMap({ name: 'inf-live', namespace: 'default', body: { data: { v: '2' } } }, mergePatch);
    await until('update inf-live', () => seen.includes('update inf-live 2'));
    assert.equal(informer.get('inf-live', 'default')?.data?.v, '2');
    await core.deleteNamespacedConfigMap({ name: 'inf-live', namespace: 'default' });
    await until('delete inf-live', () => seen.includes('delete inf-live'));
    assert.equal(informer.get('inf-live', 'default'), undefined);

    // objects that will be deleted while the informer is away
    for (const n of ['gone-1', 'gone-2']) await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: n } } });
    await until('gone-* in cache', () => !!informer.get('gone-2', 'default'));
    const rvBefore = (informer as unknown as k8s.ListWatch<k8s.V1ConfigMap>).latestResourceVersion();

    // disconnect: the server closes every watch; the informer's immediate re-watch is held
    relay.hold();
    c.server.api.handler.closeWatches();
    for (const n of ['gone-1', 'gone-2']) await core.deleteNamespacedConfigMap({ name: n, namespace: 'default' });
    for (let i = 0; i < 30; i++) await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: `gap-${i}` }, data: { v: String(i) } } });
    await core.patchNamespacedConfigMap({ name: 'inf-pre', namespace: 'default', body: { data: { v: 'gap' } } }, mergePatch);
    // the window is 20 events: the informer's resourceVersion is now too old
    const probe = await fetchStatusOfWatch(rvBefore);
    assert.equal(probe, 410);
    relay.release();

    await until('relist after 410', () => lists >= 2 && !!informer.get('gap-29', 'default'));
    const server = await core.listNamespacedConfigMap({ namespace: 'default' });
    const want = server.items.map((i) => `${i.metadata!.name}=${i.data?.v ?? ''}`).sort();
    await until('cache equals server', () => {
      const have = informer.list('default').map((i) => `${i.metadata!.name}=${i.data?.v ?? ''}`).sort();
      return JSON.stringify(have) === JSON.stringify(want);
    });
    assert.equal(informer.get('gone-1', 'default'), undefined);
    assert.ok(seen.includes('delete gone-1') && seen.includes('delete gone-2'), 'relist reports deletions it missed');
    assert.equal(informer.get('inf-pre', 'default')?.data?.v, 'gap');
    assert.equal(lists, 2);
    assert.deepEqual(errors, []);

    // and it keeps watching after the relist
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'after' } } });
    await until('add after', () => seen.includes('add after'));
  } finally {
    await informer.stop();
    await relay.close();
  }
});

/** What a watch from `rv` gets right now: 200 stream with an ERROR event of code N → N. */
async function fetchStatusOfWatch(rv: string): Promise<number> {
  const w = new k8s.Watch(kc);
  return new Promise((resolve, reject) => {
    let code = 200;
    w.watch('/api/v1/namespaces/default/configmaps', { resourceVersion: rv }, (type, obj) => {
      if (type === 'ERROR') code = (obj as { code: number }).code;
    }, (err) => { if (err && (err as { name?: string }).name !== 'AbortError') reject(err); else resolve(code); })
      .then((ac) => setTimeout(() => ac.abort(), 2000))
      .catch(reject);
  });
}
