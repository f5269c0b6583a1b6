import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../api/types.js';
import { RestClient } from './rest-client.js';
import { Informer } from './informer.js';
import { Indexer, indexFuncs, keyOf } from './indexer.js';
import { FakeApiServer } from './testing/fake-apiserver.js';

const pods = { group: '', version: 'v1', plural: 'pods' };
type Pod = KObject & { spec?: { nodeName?: string } };

let server: FakeApiServer;
let client: RestClient;
before(async () => {
  server = await FakeApiServer.start();
  client = new RestClient({ server: server.url });
});
after(async () => { client.close(); await server.close(); });

/** Polls pred until true or the deadline passes. */
async function until(pred: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function recorder() {
  const log: string[] = [];
  return {
    log,
    handlers: {
      onAdd: (o: Pod) => log.push(`add ${keyOf(o)}`),
      onUpdate: (a: Pod, b: Pod) => log.push(`update ${keyOf(b)} ${a.metadata?.resourceVersion}->${b.metadata?.resourceVersion}`),
      onDelete: (o: Pod) => log.push(`delete ${keyOf(o)}`),
    },
  };
}

const pod = (ns: string, name: string, nodeName?: string, owner?: string): Pod => ({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name, namespace: ns, labels: { app: name.split('-')[0]! }, ...(owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: owner, controller: true }] } : {}) },
  spec: nodeName ? { nodeName } : {},
});

test('Indexer: named indexes follow updates and deletes', () => {
  const ix = new Indexer<Pod>({ byNode: indexFuncs.byNode, byOwner: indexFuncs.byOwner });
  ix.add({ ...pod('a', 'p-1', 'n1', 'u1'), metadata: { ...pod('a', 'p-1', 'n1', 'u1').metadata } });
  ix.add(pod('b', 'p-2', 'n1'));
  ix.add(pod('a', 'p-3', undefined, 'u1'));
  assert.deepEqual(ix.byIndex('byNode', 'n1').map(keyOf).sort(), ['a/p-1', 'b/p-2']);
  assert.deepEqual(ix.byIndex('byOwner', 'u1').map(keyOf).sort(), ['a/p-1', 'a/p-3']);
  ix.update(pod('a', 'p-1', 'n2', 'u1'));
  assert.deepEqual(ix.byIndex('byNode', 'n1').map(keyOf), ['b/p-2']);
  assert.deepEqual(ix.byIndex('byNode', 'n2').map(keyOf), ['a/p-1']);
  ix.delete('a/p-3');
  assert.deepEqual(ix.byIndex('byOwner', 'u1').map(keyOf), ['a/p-1']);
  assert.deepEqual(ix.byIndex('namespace', 'a').map(keyOf), ['a/p-1']);
  assert.throws(() => ix.byIndex('nope', 'x'), /does not exist/);
});

test('informer: list, then watch; handlers see add/update/delete; lister and indexes answer from the cache', async () => {
  const ns = 'inf-1';
  server.put(pods, pod(ns, 'web-1', 'node-a'));
  server.put(pods, pod(ns, 'web-2'));
  server.put(pods, pod('other', 'db-1', 'node-a'));
  const inf = new Informer<Pod>({ client, resource: pods, indexers: { byNode: indexFuncs.byNode }, backoffInitialMs: 20, freezeObjects: true });
  const r = recorder();
  inf.addEventHandler(r.handlers);
  const ac = new AbortController();
  const running = inf.run(ac.signal);
  try {
    assert.equal(await inf.waitForSync(ac.signal), true);
    assert.equal(inf.hasSynced(), true);
    assert.deepEqual(r.log.sort(), ['add inf-1/web-1', 'add inf-1/web-2', 'add other/db-1']);
    assert.deepEqual(inf.lister.list(ns).map(keyOf).sort(), ['inf-1/web-1', 'inf-1/web-2']);
    assert.deepEqual(inf.lister.list(undefined, 'app=db').map(keyOf), ['other/db-1']);
    assert.deepEqual(inf.lister.byIndex('byNode', 'node-a').map(keyOf).sort(), ['inf-1/web-1', 'other/db-1']);
    assert.equal(inf.lister.get(ns, 'web-2')?.metadata?.name, 'web-2');
    // cached objects are read-only
    assert.throws(() => { (inf.lister.get(ns, 'web-2')!.metadata as Record<string, unknown>).name = 'x'; }, TypeError);

    await server.waitForWatches(1);
    r.log.length = 0;
    const created = await client.create(pods, ns, pod(ns, 'web-3'));
    const bound = await client.patch(pods, ns, 'web-3', { spec: { nodeName: 'node-b' } }, 'merge');
    await client.delete(pods, ns, 'web-1');
    await until(() => r.log.length === 3, 'three events');
    assert.deepEqual(r.log, [
      'add inf-1/web-3',
      `update inf-1/web-3 ${created.metadata?.resourceVersion}->${bound.metadata?.resourceVersion}`,
      'delete inf-1/web-1',
    ]);
    assert.deepEqual(inf.lister.byIndex('byNode', 'node-b').map(keyOf), ['inf-1/web-3']);
    assert.equal(inf.lister.get(ns, 'web-1'), undefined);

    // a handler added late first receives the cache as adds
    const late: string[] = [];
    inf.addEventHandler({ onAdd: (o) => late.push(keyOf(o)) });
    assert.deepEqual(late.sort(), ['inf-1/web-2', 'inf-1/web-3', 'other/db-1']);

    // the server ends the watch: the informer watches again from the last resourceVersion, without a re-list
    const watchesBefore = server.requests.filter((q) => q.url.includes('watch=true')).length;
    server.closeWatches();
    await until(() => server.requests.filter((q) => q.url.includes('watch=true')).length > watchesBefore, 're-watch');
    const rewatch = server.requests.filter((q) => q.url.includes('watch=true')).at(-1)!;
    assert.match(rewatch.url, new RegExp(`resourceVersion=${inf.lastSyncResourceVersion}(&|$)`));
    assert.match(rewatch.url, /allowWatchBookmarks=true/);
    await server.waitForWatches(1);
    r.log.length = 0;
    await client.delete(pods, ns, 'web-2');
    await until(() => r.log.length === 1, 'delete after re-watch');
    assert.deepEqual(r.log, ['delete inf-1/web-2']);
    assert.equal(inf.listCount, 1);

    // bookmarks move the resourceVersion only
    server.sendBookmarks();
    await until(() => inf.lastSyncResourceVersion === server.resourceVersion, 'bookmark RV');
    assert.equal(r.log.length, 1);
  } finally {
    ac.abort();
    await running;
  }
});

test('informer: after 410 Gone it re-lists and delivers the difference (a delete for an object removed meanwhile)', async () => {
  const ns = 'inf-gone';
  const seedA = server.put(pods, pod(ns, 'a'));
  server.put(pods, pod(ns, 'b'));
  const oldC = server.put(pods, pod(ns, 'c'));
  const inf = new Informer<Pod>({ client, resource: pods, namespace: ns, backoffInitialMs: 20 });
  const r = recorder();
  inf.addEventHandler(r.handlers);
  const ac = new AbortController();
  const running = inf.run(ac.signal);
  try {
    await inf.waitForSync(ac.signal);
    await server.waitForWatches(1);
    r.log.length = 0;
    // changes the informer's watch never sees
    server.dropWatchEvents = true;
    server.remove(pods, ns, 'b');
    const newC = server.put(pods, { ...pod(ns, 'c'), metadata: { ...pod(ns, 'c').metadata, labels: { changed: 'yes' } } });
    server.put(pods, pod(ns, 'd'));
    server.compact();
    server.dropWatchEvents = false;
    assert.deepEqual(r.log, []);
    server.expireWatches();
    await until(() => r.log.length === 3, 'relist difference');
    assert.deepEqual(r.log.sort(), ['add inf-gone/d', 'delete inf-gone/b', `update inf-gone/c ${oldC.metadata!.resourceVersion}->${newC.metadata!.resourceVersion}`]);
    assert.equal(inf.lister.get(ns, 'c')?.metadata?.resourceVersion, newC.metadata?.resourceVersion);
    assert.equal(inf.lister.get(ns, 'a')?.metadata?.resourceVersion, seedA.metadata?.resourceVersion, 'unchanged object: no event');
    assert.deepEqual(inf.lister.list().map(keyOf).sort(), ['inf-gone/a', 'inf-gone/c', 'inf-gone/d']);
    assert.equal(inf.listCount, 2);

    // and it keeps watching after the re-list
    await server.waitForWatches(1);
    r.log.length = 0;
    await client.delete(pods, ns, 'a');
    await until(() => r.log.length === 1, 'delete after relist');
    assert.deepEqual(r.log, ['delete inf-gone/a']);

    // a re-watch from a compacted resourceVersion (ERROR 410 in the stream) also re-lists
    server.dropWatchEvents = true;
    server.remove(pods, ns, 'd');
    server.compact();
    server.dropWatchEvents = false;
    server.closeWatches();
    await until(() => inf.listCount === 3 && r.log.includes('delete inf-gone/d'), 'relist after rewatch 410');
  } finally {
    ac.abort();
    await running;
  }
});
