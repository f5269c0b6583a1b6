import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StatusError, isStatusError } from '../machinery/status.js';
import type { KObject } from '../api/types.js';
import { RestClient, resourcePath, type WatchEvent } from './rest-client.js';
import { FakeApiServer } from './testing/fake-apiserver.js';

const pods = { group: '', version: 'v1', plural: 'pods' };
const deployments = { group: 'apps', version: 'v1', plural: 'deployments' };
const nodes = { group: '', version: 'v1', plural: 'nodes' };

let server: FakeApiServer;
let client: RestClient;
before(async () => {
  server = await FakeApiServer.start();
  client = new RestClient({ server: server.url, token: 'tok-123', userAgent: 'kyb-test/1.0' });
});
after(async () => { client.close(); await server.close(); });

const pod = (name: string, labels: Record<string, string> = {}): KObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });

test('paths: core group under /api/v1, named groups under /apis/g/v, namespaced and cluster-scoped', () => {
  assert.equal(resourcePath(pods, 'default', 'web-1', 'status'), '/api/v1/namespaces/default/pods/web-1/status');
  assert.equal(resourcePath(deployments, 'kube-system'), '/apis/apps/v1/namespaces/kube-system/deployments');
  assert.equal(resourcePath(nodes, undefined, 'n1'), '/api/v1/nodes/n1');
  assert.equal(resourcePath(pods, undefined), '/api/v1/pods');
});

test('create, get, list with selectors and paging, update, merge patch, status, delete', async () => {
  const created = await client.create(pods, 'default', pod('web-1', { app: 'web' }));
  assert.equal(created.metadata?.namespace, 'default');
  assert.ok(created.metadata?.uid);
  assert.ok(created.metadata?.resourceVersion);
  await client.create(pods, 'default', pod('web-2', { app: 'web' }));
  await client.create(pods, 'default', pod('db-1', { app: 'db' }));

  const req = server.requests.find((r) => r.method === 'POST')!;
  assert.equal(req.headers.authorization, 'Bearer tok-123');
  assert.equal(req.headers['user-agent'], 'kyb-test/1.0');
  assert.equal(req.headers['content-type'], 'application/json');

  const got = await client.get(pods, 'default', 'web-1');
  assert.equal(got.metadata?.uid, created.metadata?.uid);

  const web = await client.list(pods, 'default', { labelSelector: 'app=web' });
  assert.deepEqual(web.items.map((p) => p.metadata?.name).sort(), ['web-1', 'web-2']);
  assert.ok(web.metadata.resourceVersion);

  const page1 = await client.list(pods, 'default', { limit: 2 });
  assert.equal(page1.items.length, 2);
  assert.ok(page1.metadata.continue);
  const page2 = await client.list(pods, 'default', { limit: 2, continue: page1.metadata.continue });
  assert.equal(page2.items.length, 1);
  assert.equal(page2.metadata.continue, undefined);

  const changed = { ...got, metadata: { ...got.metadata, labels: { app: 'web', tier: 'front' } } };
  const updated = await client.update(pods, 'default', changed);
  assert.equal(updated.metadata?.labels?.tier, 'front');
  assert.notEqual(updated.metadata?.resourceVersion, got.metadata?.resourceVersion);

  // a stale resourceVersion → 409 Conflict
  await assert.rejects(client.update(pods, 'default', changed), (e: unknown) => isStatusError(e, 'Conflict') && e.code === 409);

  const patched = await client.patch(pods, 'default', 'web-1', { metadata: { labels: { tier: null, patched: 'yes' } } }, 'merge');
  assert.deepEqual(patched.metadata?.labels, { app: 'web', patched: 'yes' });
  assert.equal(server.requests.at(-1)!.headers['content-type'], 'application/merge-patch+json');

  const st = await client.updateStatus(pods, 'default', { ...patched, status: { phase: 'Running' } });
  assert.deepEqual(st.status, { phase: 'Running' });
  assert.equal(server.requests.at(-1)!.url, '/api/v1/namespaces/default/pods/web-1/status');

  await client.createSubresource(pods, 'default', 'web-2', 'binding', { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'web-2' }, target: { kind: 'Node', name: 'node-a' } });
  assert.equal((await client.get<KObject & { spec: { nodeName?: string } }>(pods, 'default', 'web-2')).spec.nodeName, 'node-a');

  await client.delete(pods, 'default', 'web-1', { propagationPolicy: 'Background', preconditions: { uid: created.metadata!.uid! } });
  const del = server.requests.at(-1)!;
  assert.equal(del.method, 'DELETE');
  assert.deepEqual(JSON.parse(del.body), { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background', preconditions: { uid: created.metadata!.uid } });
  await assert.rejects(client.get(pods, 'default', 'web-1'), (e: unknown) => isStatusError(e, 'NotFound'));
});

test('errors: a Status body becomes StatusError with its code, reason, message and details', async () => {
  await assert.rejects(client.get(pods, 'default', 'nope'), (e: unknown) => {
    assert.ok(e instanceof StatusError);
    assert.equal(e.code, 404);
    assert.equal(e.reason, 'NotFound');
    assert.equal(e.message, 'pods "nope" not found');
    assert.equal(e.details?.name, 'nope');
    return true;
  });
  await client.create(pods, 'default', pod('dup'));
  await assert.rejects(client.create(pods, 'default', pod('dup')), (e: unknown) => isStatusError(e, 'AlreadyExists') && e.code === 409);
  // the fake server only does merge patches: strategic → 415 from its Status
  await assert.rejects(client.patch(pods, 'default', 'dup', { metadata: {} }, 'strategic'), (e: unknown) => isStatusError(e, 'UnsupportedMediaType'));
  assert.equal(server.requests.at(-1)!.headers['content-type'], 'application/strategic-merge-patch+json');
  // a non-Status body still maps by HTTP code
  server.injectFailure({ method: 'GET', pathIncludes: '/pods/dup', status: 503, body: 'upstream connect error' });
  await assert.rejects(client.get(pods, 'default', 'dup'), (e: unknown) => isStatusError(e, 'ServiceUnavailable') && e.code === 503 && e.message === 'upstream connect error');
});

test('raw requests return parsed JSON', async () => {
  const r = await client.raw('GET', '/api/v1/namespaces/default/pods') as { items: unknown[] };
  assert.ok(Array.isArray(r.items));
});

async function take<T>(it: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

test('watch: events arrive written in small pieces across chunks, from the list resourceVersion without replay', async () => {
  const ns = 'watch-ns';
  await client.create(pods, ns, pod('before'));
  const list = await client.list(pods, ns);
  server.splitWatchWrites = true;
  const ac = new AbortController();
  try {
    const it = client.watch(pods, ns, { resourceVersion: list.metadata.resourceVersion, allowWatchBookmarks: true }, ac.signal)[Symbol.asyncIterator]();
    const first = take(it, 4);
    await server.waitForWatches(1);
    await client.create(pods, ns, pod('w-1', { note: 'ünïcødé ✓ "quoted" {braces}' }));
    await client.patch(pods, ns, 'w-1', { metadata: { labels: { x: 'y' } } }, 'merge');
    server.sendBookmarks();
    await client.delete(pods, ns, 'w-1');
    const evs = await first as WatchEvent[];
    const labels = (evs[0]!.object as KObject).metadata?.labels ?? {};
    assert.deepEqual(evs.map((e) => e.type), ['ADDED', 'MODIFIED', 'BOOKMARK', 'DELETED']);
    assert.equal(labels.note, 'ünïcødé ✓ "quoted" {braces}');
    ac.abort();
    const end = await it.next();
    assert.equal(end.done, true);
  } finally {
    server.splitWatchWrites = false;
    ac.abort();
  }
});

test('watch: resourceVersion 0 starts with the current objects; a compacted resourceVersion yields ERROR 410', async () => {
  const ns = 'watch-2';
  await client.create(pods, ns, pod('p'));
  const ac = new AbortController();
  const it = client.watch(pods, ns, { resourceVersion: '0' }, ac.signal)[Symbol.asyncIterator]();
  const [ev] = await take(it, 1);
  assert.equal(ev!.type, 'ADDED');
  assert.equal(ev!.object.metadata?.name, 'p');
  ac.abort();

  const oldRV = (await client.list(pods, ns)).metadata.resourceVersion!;
  await client.create(pods, ns, pod('q'));
  server.compact();
  const evs = await take(client.watch(pods, ns, { resourceVersion: oldRV })[Symbol.asyncIterator](), 5);
  assert.equal(evs.length, 1, 'the stream ends after the error');
  assert.equal(evs[0]!.type, 'ERROR');
  assert.equal(evs[0]!.type === 'ERROR' && evs[0]!.object.code, 410);
});

test('kubeconfig: server, CA, token and client certificate from the current context', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-kc-'));
  writeFileSync(join(dir, 'ca.crt'), 'CA-PEM');
  const path = join(dir, 'config');
  writeFileSync(path, [
    'apiVersion: v1', 'kind: Config', 'current-context: kyb',
    'clusters:', '- name: kyb', '  cluster:', '    server: https://127.0.0.1:6443', '    certificate-authority: ca.crt',
    'users:', '- name: admin', '  user:', '    token: sekret',
    `    client-certificate-data: ${Buffer.from('CERT').toString('base64')}`,
    `    client-key-data: ${Buffer.from('KEY').toString('base64')}`,
    'contexts:', '- name: kyb', '  context:', '    cluster: kyb', '    user: admin', '',
  ].join('\n'));
  const c = RestClient.fromKubeconfig(path);
  assert.equal(c.options.server, 'https://127.0.0.1:6443');
  assert.equal(c.options.caPem, 'CA-PEM');
  assert.equal(c.options.token, 'sekret');
  assert.equal(c.options.certPem, 'CERT');
  assert.equal(c.options.keyPem, 'KEY');
  c.close();
  assert.throws(() => RestClient.fromKubeconfig(path, 'other'), /context "other" not found/);
  rmSync(dir, { recursive: true, force: true });
});
