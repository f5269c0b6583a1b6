// Paginated LIST (limit + continue) serves every page from the first page's snapshot, as upstream
// does: objects created, updated or deleted between pages neither appear, change nor vanish; the
// list's resourceVersion stays the first page's. When the store has compacted that revision away,
// a continue page answers 410 Expired with upstream's message and a token that goes on at the
// latest revision. Checked over HTTPS against an in-process `kyb server` (memory store), with raw
// requests, real kubectl (--chunk-size) and @kubernetes/client-node; and over HTTP against an API
// server on a SQLite store whose watch-cache window is too short to count the rest of a page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, fetchInsecure, type TestCluster } from './cluster.js';
import { INCONSISTENT_CONTINUE_MESSAGE } from '../../src/apiserver/list-snapshot.js';
import { startApiServer } from '../../src/apiserver/server.js';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';

let c: TestCluster;
let core: k8s.CoreV1Api;
let auth: Record<string, string>;

before(async () => {
  c = await startCluster();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(c.kubeconfig);
  core = kc.makeApiClient(k8s.CoreV1Api);
  auth = { Authorization: `Bearer ${c.server.token}` };
});
after(async () => { await c.stop(); });

/** the ConfigMap the root-CA publisher puts in every namespace; the names below sort before it */
const ROOT_CA = 'kube-root-ca.crt';

/** a fresh namespace holding ConfigMaps with the given names (data k=<name>), and kube-root-ca.crt */
async function namespaceWith(names: string[], labels: (name: string) => Record<string, string> = () => ({})): Promise<string> {
  const ns = `snap-${randomBytes(4).toString('hex')}`;
  await core.createNamespace({ body: { metadata: { name: ns } } });
  // wait for the publisher's ConfigMap, so that the namespace holds only what the test writes
  const deadline = Date.now() + 15_000;
  for (;;) {
    try { await core.readNamespacedConfigMap({ namespace: ns, name: ROOT_CA }); break; } catch (err) {
      if (!(err instanceof k8s.ApiException && err.code === 404) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  for (const name of names) {
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name, labels: labels(name) }, data: { k: name } } });
  }
  return ns;
}

async function listPage(ns: string, query: string): Promise<{ status: number; body: any }> {
  const r = await fetchInsecure(`${c.server.api.url}/api/v1/namespaces/${ns}/configmaps?${query}`, { headers: auth });
  return { status: r.status, body: r.body };
}

const names = (list: any) => (list.items as any[]).map((i) => i.metadata.name);

test('continue pages show the first page\'s snapshot: created objects absent, deleted ones present, updated ones as they were', async () => {
  const ns = await namespaceWith(['cm-a', 'cm-b', 'cm-c', 'cm-d', 'cm-e', 'cm-f']);
  const first = await listPage(ns, 'limit=2');
  assert.equal(first.status, 200);
  assert.deepEqual(names(first.body), ['cm-a', 'cm-b']);
  assert.equal(first.body.metadata.remainingItemCount, 5);
  const rv = first.body.metadata.resourceVersion;
  const e = await core.readNamespacedConfigMap({ namespace: ns, name: 'cm-e' });
  const d = await core.readNamespacedConfigMap({ namespace: ns, name: 'cm-d' });

  // between pages: deletes (before and after the cursor), creates (before and after it), an update
  await core.deleteNamespacedConfigMap({ namespace: ns, name: 'cm-a' });
  await core.deleteNamespacedConfigMap({ namespace: ns, name: 'cm-d' });
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'cm-bb' }, data: { k: 'new' } } });
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'cm-z' }, data: { k: 'new' } } });
  await core.replaceNamespacedConfigMap({ namespace: ns, name: 'cm-e', body: { ...e, data: { k: 'changed' } } });

  const second = await listPage(ns, `limit=2&continue=${encodeURIComponent(first.body.metadata.continue)}`);
  assert.equal(second.status, 200);
  assert.deepEqual(names(second.body), ['cm-c', 'cm-d']);
  assert.equal(second.body.metadata.resourceVersion, rv);
  assert.equal(second.body.metadata.remainingItemCount, 3);
  assert.equal(second.body.items[1].metadata.resourceVersion, d.metadata!.resourceVersion);
  assert.equal(second.body.items[1].metadata.uid, d.metadata!.uid);

  const third = await listPage(ns, `limit=2&continue=${encodeURIComponent(second.body.metadata.continue)}`);
  assert.equal(third.status, 200);
  assert.deepEqual(names(third.body), ['cm-e', 'cm-f']);
  assert.equal(third.body.metadata.resourceVersion, rv);
  assert.equal(third.body.metadata.remainingItemCount, 1);
  assert.deepEqual(third.body.items[0].data, { k: 'cm-e' });
  assert.equal(third.body.items[0].metadata.resourceVersion, e.metadata!.resourceVersion);
  assert.equal(third.body.kind, 'ConfigMapList');
  assert.equal(third.body.items[0].kind, 'ConfigMap');
  const fourth = await listPage(ns, `limit=2&continue=${encodeURIComponent(third.body.metadata.continue)}`);
  assert.deepEqual(names(fourth.body), [ROOT_CA]);
  assert.equal(fourth.body.metadata.continue, undefined);
  assert.equal(fourth.body.metadata.remainingItemCount, undefined);

  // a new list sees the present
  const now = await listPage(ns, '');
  assert.deepEqual(names(now.body), ['cm-b', 'cm-bb', 'cm-c', 'cm-e', 'cm-f', 'cm-z', ROOT_CA]);
  assert.ok(Number(now.body.metadata.resourceVersion) > Number(rv));
});

test('a snapshot continue page applies label and field selectors and the limit as the first page did', async () => {
  const all = ['d-1', 'd-2', 'd-3', 'd-4', 'd-5', 'd-6', 'd-7'];
  const ns = await namespaceWith(all, (n) => ({ odd: String(Number(n.slice(2)) % 2 === 1) }));
  const first = await listPage(ns, 'limit=2&labelSelector=odd%3Dtrue');
  assert.deepEqual(names(first.body), ['d-1', 'd-3']);
  assert.equal(first.body.metadata.remainingItemCount, undefined); // not given with selectors, as upstream
  await core.deleteNamespacedConfigMap({ namespace: ns, name: 'd-5' });
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'd-4a', labels: { odd: 'true' } } } });
  const second = await listPage(ns, `limit=2&labelSelector=odd%3Dtrue&continue=${encodeURIComponent(first.body.metadata.continue)}`);
  assert.equal(second.status, 200);
  assert.deepEqual(names(second.body), ['d-5', 'd-7']);
  assert.equal(second.body.metadata.continue, undefined); // nothing matches after s-7
  assert.equal(second.body.metadata.resourceVersion, first.body.metadata.resourceVersion);

  // a field selector by name over a snapshot page
  const byName = await listPage(ns, 'limit=1');
  await core.deleteNamespacedConfigMap({ namespace: ns, name: 'd-6' });
  const sel = await listPage(ns, `limit=1&fieldSelector=metadata.name%3Dd-6&continue=${encodeURIComponent(byName.body.metadata.continue)}`);
  assert.equal(sel.status, 200);
  assert.deepEqual(names(sel.body), ['d-6']);
  assert.equal(sel.body.metadata.continue, undefined);
});

test('a continue token whose revision was compacted gets 410 Expired with a token that goes on at the latest revision', async () => {
  const ns = await namespaceWith(['e-1', 'e-2', 'e-3', 'e-4']);
  const first = await listPage(ns, 'limit=2');
  assert.deepEqual(names(first.body), ['e-1', 'e-2']);
  await core.deleteNamespacedConfigMap({ namespace: ns, name: 'e-3' });
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'e-5' } } });
  const store = c.server.api.registry.store;
  await store.compact(await store.currentRevision());

  const r = await fetchInsecure(`${c.server.api.url}/api/v1/namespaces/${ns}/configmaps?limit=2&continue=${encodeURIComponent(first.body.metadata.continue)}`, { headers: auth });
  assert.equal(r.status, 410);
  assert.equal(r.body.kind, 'Status');
  assert.equal(r.body.apiVersion, 'v1');
  assert.equal(r.body.status, 'Failure');
  assert.equal(r.body.reason, 'Expired');
  assert.equal(r.body.code, 410);
  assert.equal(r.body.message, INCONSISTENT_CONTINUE_MESSAGE);
  assert.match(r.body.message, /^The provided continue parameter is too old to display a consistent list result\. You can start a new list without the continue parameter, or use the continue token/);
  const token = r.body.metadata.continue;
  assert.equal(typeof token, 'string');
  assert.ok(token.length > 0);

  // the token from the 410 goes on after x-2, at the latest revision (inconsistently, as its message says)
  const rest = await listPage(ns, `limit=2&continue=${encodeURIComponent(token)}`);
  assert.equal(rest.status, 200);
  assert.deepEqual(names(rest.body), ['e-4', 'e-5']);
  assert.ok(Number(rest.body.metadata.resourceVersion) > Number(first.body.metadata.resourceVersion));

  // client-node surfaces it as an ApiException 410
  await assert.rejects(core.listNamespacedConfigMap({ namespace: ns, limit: 2, _continue: first.body.metadata.continue }), (err: unknown) => {
    assert.ok(err instanceof k8s.ApiException);
    assert.equal(err.code, 410);
    return true;
  });
});

test('list options as upstream validates them: resourceVersion with continue is 400, a bad resourceVersionMatch is 422 ListOptions', async () => {
  const ns = await namespaceWith(['v-1', 'v-2', 'v-3']);
  const first = await listPage(ns, 'limit=2');
  const tok = encodeURIComponent(first.body.metadata.continue);
  const withRv = await listPage(ns, `limit=2&continue=${tok}&resourceVersion=${first.body.metadata.resourceVersion}`);
  assert.equal(withRv.status, 400);
  assert.equal(withRv.body.reason, 'BadRequest');
  assert.equal(withRv.body.message, 'specifying resource version is not allowed when using continue');
  // resourceVersion=0 with continue is allowed (it means "any")
  assert.equal((await listPage(ns, `limit=2&continue=${tok}&resourceVersion=0`)).status, 200);

  const noRv = await listPage(ns, 'resourceVersionMatch=NotOlderThan');
  assert.equal(noRv.status, 422);
  assert.equal(noRv.body.reason, 'Invalid');
  assert.equal(noRv.body.details.kind, 'ListOptions');
  assert.equal(noRv.body.message, 'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided');
  const bad = await listPage(ns, 'resourceVersion=1&resourceVersionMatch=Newest');
  assert.equal(bad.status, 422);
  assert.deepEqual(bad.body.details.causes, [{ reason: 'FieldValueNotSupported', field: 'resourceVersionMatch', message: 'Unsupported value: "Newest": supported values: "Exact", "NotOlderThan", ""' }]);
  const withCont = await listPage(ns, `continue=${tok}&resourceVersion=1&resourceVersionMatch=Exact`);
  assert.equal(withCont.status, 422);
  assert.match(withCont.body.message, /resourceVersionMatch is forbidden when continue is provided/);
});

test('@kubernetes/client-node pages through a snapshot; kubectl --chunk-size lists everything', async () => {
  const all = Array.from({ length: 7 }, (_, i) => `c-${i}`);
  const ns = await namespaceWith(all);
  const seen: string[] = [];
  let cont: string | undefined;
  let rv: string | undefined;
  for (let page = 0; ; page++) {
    assert.ok(page < 10);
    const l = await core.listNamespacedConfigMap({ namespace: ns, limit: 3, _continue: cont });
    seen.push(...l.items.map((i) => i.metadata!.name!));
    rv ??= l.metadata!.resourceVersion;
    assert.equal(l.metadata!.resourceVersion, rv);
    // writes between pages do not show up in this list
    if (page === 0) {
      await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'c-9' } } });
      await core.deleteNamespacedConfigMap({ namespace: ns, name: 'c-5' });
    }
    cont = l.metadata!._continue;
    if (!cont) break;
  }
  assert.deepEqual(seen, [...all, ROOT_CA]);

  const now = ['c-0', 'c-1', 'c-2', 'c-3', 'c-4', 'c-6', 'c-9', ROOT_CA];
  const out = await c.kubectl(['get', 'cm', '-n', ns, '--chunk-size=2', '-o', 'name']);
  assert.deepEqual(out.stdout.trim().split('\n'), now.map((n) => `configmap/${n}`));
  const table = await c.kubectl(['get', 'cm', '-n', ns, '--chunk-size=2', '--no-headers']);
  assert.deepEqual(table.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]), now);
});

test('on a SQLite store, with a watch-cache window shorter than the writes between pages, pages and counts stay those of the snapshot', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-list-snapshot-'));
  const store = SqliteStore.open(join(dir, 'state.db'), { compactInterval: 0 });
  const api = await startApiServer({ store, port: 0, requireAuth: false, watchCacheSize: 2 });
  try {
    const base = `${api.url}/api/v1/namespaces/default/configmaps`;
    const call = async (method: string, path: string, body?: unknown) => {
      const r = await fetch(`${base}${path}`, { method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: r.status, body: await r.json() as any };
    };
    const all = Array.from({ length: 9 }, (_, i) => `q-${i}`);
    for (const name of all) assert.equal((await call('POST', '', { metadata: { name }, data: { k: name } })).status, 201);
    const first = await call('GET', '?limit=3');
    assert.deepEqual(names(first.body), ['q-0', 'q-1', 'q-2']);
    assert.equal(first.body.metadata.remainingItemCount, 6);
    for (const name of ['q-4', 'q-0']) assert.equal((await call('DELETE', `/${name}`)).status, 200);
    for (const name of ['q-3a', 'q-9']) assert.equal((await call('POST', '', { metadata: { name } })).status, 201);
    const q5 = (await call('GET', '/q-5')).body;
    assert.equal((await call('PUT', '/q-5', { ...q5, data: { k: 'changed' } })).status, 200);

    const seen = names(first.body);
    const counts: number[] = [];
    let cont = first.body.metadata.continue;
    while (cont) {
      const page = await call('GET', `?limit=3&continue=${encodeURIComponent(cont)}`);
      assert.equal(page.status, 200);
      assert.equal(page.body.metadata.resourceVersion, first.body.metadata.resourceVersion);
      seen.push(...names(page.body));
      const q = page.body.items.find((i: any) => i.metadata.name === 'q-5');
      if (q) assert.deepEqual(q.data, { k: 'q-5' });
      if (page.body.metadata.remainingItemCount !== undefined) counts.push(page.body.metadata.remainingItemCount);
      cont = page.body.metadata.continue;
    }
    assert.deepEqual(seen, all);
    assert.deepEqual(counts, [3]);
    assert.deepEqual(names((await call('GET', '')).body), ['q-1', 'q-2', 'q-3', 'q-3a', 'q-5', 'q-6', 'q-7', 'q-8', 'q-9']);
  } finally {
    await api.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
