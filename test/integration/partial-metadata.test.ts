// Metadata-only reads (Accept `application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1`), as
// client-go's metadata client and upstream's garbage collector use them: GET, LIST and WATCH answer
// the objects' metadata only, a kind that does not fit the request is 406, and our informer's
// metadataOnly mode follows a resource through them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startApiServer, type ApiServer } from '../../src/apiserver/server.js';
import { MemoryStore } from '../../src/storage/memory/memory-store.js';
import { RestClient } from '../../src/client/rest-client.js';
import { Informer } from '../../src/client/informer.js';
import type { KObject } from '../../src/api/types.js';

let api: ApiServer;
before(async () => { api = await startApiServer({ store: new MemoryStore(), port: 0, requireAuth: false }); });
after(async () => { await api.close(); });

const NS = '/api/v1/namespaces/default';
const ONE = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';
const LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
// what client-go's metadata client sends: protobuf first, which this server passes over for JSON
const CLIENT_GO_ONE = `application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,${ONE}`;

async function call(method: string, path: string, accept?: string, body?: unknown): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (accept) headers.Accept = accept;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(api.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: JSON.parse(await r.text()) };
}

// metadata whose text is hard to cut out of the object's JSON: braces, brackets, quotes and
// backslashes inside strings, nested objects and arrays
const tricky = {
  labels: { app: 'web', tier: 'a' },
  annotations: { 'x/brace': '} ] { [', 'x/quote': 'say "hi"', 'x/backslash-end': 'ends with \\\\', 'x/json': '{"a":[1,{"b":"}"}]}', 'x/unbalanced': 'q" } ] {{' },
  ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: '00000000-0000-0000-0000-000000000001' }],
  finalizers: ['example.com/keep'],
};

test('GET, LIST and WATCH answer metadata only, equal to the objects\' metadata', async () => {
  const made = await call('POST', `${NS}/configmaps`, undefined, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'pm-a', ...tricky }, data: { big: 'x'.repeat(2000) } });
  assert.equal(made.status, 201);
  await call('POST', `${NS}/configmaps`, undefined, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'pm-b', labels: { app: 'db' } }, data: { k: 'v' } });

  const full = (await call('GET', `${NS}/configmaps/pm-a`)).body;
  for (const accept of [ONE, CLIENT_GO_ONE, 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1']) {
    const r = await call('GET', `${NS}/configmaps/pm-a`, accept);
    assert.equal(r.status, 200, accept);
    assert.deepEqual(r.body, { kind: 'PartialObjectMetadata', apiVersion: accept.includes('v1beta1') ? 'meta.k8s.io/v1beta1' : 'meta.k8s.io/v1', metadata: full.metadata }, accept);
  }

  const list = await call('GET', `${NS}/configmaps?labelSelector=app`, LIST);
  assert.equal(list.status, 200);
  assert.equal(list.body.kind, 'PartialObjectMetadataList');
  assert.equal(list.body.apiVersion, 'meta.k8s.io/v1');
  assert.match(list.body.metadata.resourceVersion, /^\d+$/);
  assert.deepEqual(list.body.items.map((i: KObject) => [i.kind, i.apiVersion, i.metadata?.name]), [['PartialObjectMetadata', 'meta.k8s.io/v1', 'pm-a'], ['PartialObjectMetadata', 'meta.k8s.io/v1', 'pm-b']]);
  assert.deepEqual(list.body.items[0].metadata, full.metadata);
  assert.equal(list.body.items.some((i: Record<string, unknown>) => 'data' in i), false);

  // pages: continue tokens work the same
  const page = await call('GET', `${NS}/configmaps?limit=1`, LIST);
  assert.equal(page.body.items.length, 1);
  assert.ok(page.body.metadata.continue);
  const next = await call('GET', `${NS}/configmaps?limit=1&continue=${encodeURIComponent(page.body.metadata.continue)}`, LIST);
  assert.equal(next.body.items[0].metadata.name, 'pm-b');

  // plain JSON listed first wins, as in upstream's negotiation
  const plain = await call('GET', `${NS}/configmaps/pm-a`, `application/json,${ONE}`);
  assert.equal(plain.body.kind, 'ConfigMap');
  assert.equal(plain.body.data.big.length, 2000);
});

test('a metadata kind that does not fit the request is 406 NotAcceptable', async () => {
  await call('POST', `${NS}/configmaps`, undefined, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'pm-406' } });
  const one = await call('GET', `${NS}/configmaps`, ONE);
  assert.equal(one.status, 406);
  assert.equal(one.body.kind, 'Status');
  assert.equal(one.body.reason, 'NotAcceptable');
  assert.match(one.body.message, /you requested PartialObjectMetadata, but the requested object is a list/);
  const list = await call('GET', `${NS}/configmaps/pm-406`, LIST);
  assert.equal(list.status, 406);
  assert.match(list.body.message, /not a list/);
});

test('a metadata-only informer follows adds, updates and deletes, and a watch sends metadata only', async () => {
  const client = new RestClient({ server: api.url });
  const ac = new AbortController();
  const inf = new Informer<KObject>({ client, resource: { group: '', version: 'v1', plural: 'secrets' }, namespace: 'default', metadataOnly: true });
  const seen: string[] = [];
  inf.addEventHandler({
    onAdd: (o) => seen.push(`add ${o.kind} ${o.metadata?.name} ${'data' in o}`),
    onUpdate: (_a, o) => seen.push(`update ${o.metadata?.name} ${o.metadata?.labels?.v}`),
    onDelete: (o) => seen.push(`delete ${o.metadata?.name}`),
  });
  await call('POST', `${NS}/secrets`, undefined, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'listed' }, stringData: { password: 'hunter2' } });
  const run = inf.run(ac.signal);
  try {
    await waitUntil(() => seen.includes('add PartialObjectMetadata listed false'));
    await call('POST', `${NS}/secrets`, undefined, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'watched' }, data: { k: Buffer.from('v').toString('base64') } });
    await waitUntil(() => seen.includes('add PartialObjectMetadata watched false'));
    const patched = await fetch(`${api.url}${NS}/secrets/watched`, { method: 'PATCH', headers: { 'Content-Type': 'application/merge-patch+json' }, body: JSON.stringify({ metadata: { labels: { v: '2' } } }) });
    assert.equal(patched.status, 200);
    await waitUntil(() => seen.includes('update watched 2'));
    await call('DELETE', `${NS}/secrets/watched`);
    await waitUntil(() => seen.includes('delete watched'));
    assert.equal(inf.lister.list().some((o) => 'data' in o || 'stringData' in o), false, 'no secret data in the cache');
  } finally {
    ac.abort();
    await run;
    client.close();
  }

  // the raw stream: every event object is a PartialObjectMetadata, bookmarks included
  const start = (await call('GET', `${NS}/secrets`)).body.metadata.resourceVersion;
  const ctl = new AbortController();
  const r = await fetch(`${api.url}${NS}/secrets?watch=true&allowWatchBookmarks=true&resourceVersion=${start}`, { headers: { Accept: CLIENT_GO_ONE }, signal: ctl.signal });
  assert.equal(r.status, 200);
  await call('POST', `${NS}/secrets`, undefined, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'streamed', annotations: tricky.annotations }, stringData: { a: 'b' } });
  const reader = r.body!.getReader();
  let text = '';
  while (!text.includes('\n')) {
    const { value, done } = await reader.read();
    if (done) break;
    text += Buffer.from(value).toString();
  }
  ctl.abort();
  const ev = JSON.parse(text.split('\n')[0]);
  assert.equal(ev.type, 'ADDED');
  const full = (await call('GET', `${NS}/secrets/streamed`)).body;
  assert.deepEqual(ev.object, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: full.metadata });
});

async function waitUntil(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
