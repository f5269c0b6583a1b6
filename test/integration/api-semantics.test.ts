// API semantics as a client sees them over HTTP: metadata set by the server, optimistic
// concurrency, generation, status and scale subresources, deletion (finalizers, grace,
// propagation, preconditions), selectors, pagination, watch, Table output, namespace admission
// and bad input. Runs against an in-process server with a memory store over plain HTTP.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startApiServer, type ApiServer } from '../../src/apiserver/server.js';
import { MemoryStore } from '../../src/storage/memory/memory-store.js';

let api: ApiServer;
let small: ApiServer; // a server with a tiny watch-cache window, for 410

before(async () => {
  api = await startApiServer({ store: new MemoryStore(), port: 0, requireAuth: false });
  small = await startApiServer({ store: new MemoryStore(), port: 0, requireAuth: false, watchCacheSize: 5 });
});
after(async () => {
  await api.close();
  await small.close();
});

interface Res { status: number; body: any; text: string; headers: Headers }

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, base = api.url): Promise<Res> {
  const h: Record<string, string> = { ...headers };
  let payload: string | Blob | undefined;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : Buffer.isBuffer(body) ? new Blob([new Uint8Array(body)]) : JSON.stringify(body);
    h['Content-Type'] ??= 'application/json';
  }
  const r = await fetch(base + path, { method, headers: h, body: payload });
  const text = await r.text();
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch { parsed = undefined; }
  return { status: r.status, body: parsed, text, headers: r.headers };
}
const get = (p: string, h?: Record<string, string>) => call('GET', p, undefined, h);
const post = (p: string, b: unknown, h?: Record<string, string>) => call('POST', p, b, h);
const put = (p: string, b: unknown, h?: Record<string, string>) => call('PUT', p, b, h);
const patch = (p: string, b: unknown, type = 'application/merge-patch+json') => call('PATCH', p, b, { 'Content-Type': type });
const del = (p: string, b?: unknown) => call('DELETE', p, b);

const CM = '/api/v1/namespaces/default/configmaps';
const PODS = '/api/v1/namespaces/default/pods';
const DEPLOY = '/apis/apps/v1/namespaces/default/deployments';

function cm(name: string, labels?: Record<string, string>, data: Record<string, string> = { k: 'v' }) {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, ...(labels ? { labels } : {}) }, data };
}
function deployment(name: string, replicas = 1) {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name },
    spec: {
      replicas, selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'nginx:1.27' }] } },
    },
  };
}
function pod(name: string, extra: { nodeName?: string; labels?: Record<string, string> } = {}) {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, ...(extra.labels ? { labels: extra.labels } : {}) },
    spec: { ...(extra.nodeName ? { nodeName: extra.nodeName } : {}), containers: [{ name: 'c', image: 'busybox:1.36' }] },
  };
}
function assertStatus(r: Res, code: number, reason?: string): void {
  assert.equal(r.status, code, `expected ${code}, got ${r.status}: ${r.text}`);
  if (code >= 400) {
    assert.equal(r.body?.kind, 'Status', r.text);
    assert.equal(r.body.status, 'Failure');
    assert.equal(r.body.code, code);
    if (reason) assert.equal(r.body.reason, reason, r.text);
  }
}
async function mustCreate(path: string, obj: unknown): Promise<any> {
  const r = await post(path, obj);
  assertStatus(r, 201);
  return r.body;
}
const names = (list: any): string[] => list.items.map((i: any) => i.metadata.name).sort();

/** A streaming watch: collects decoded events, lets a test wait for a condition. */
function openWatch(url: string): { events: any[]; waitFor(pred: (evs: any[]) => boolean, ms?: number): Promise<void>; ended: Promise<void>; close(): void } {
  const ac = new AbortController();
  const events: any[] = [];
  const waiters: (() => void)[] = [];
  const wake = () => { for (const w of waiters.splice(0)) w(); };
  let done = false;
  const ended = (async () => {
    try {
      const r = await fetch(url, { signal: ac.signal });
      const reader = r.body!.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done: d } = await reader.read();
        if (d) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (line) { events.push(JSON.parse(line)); wake(); }
        }
      }
    } catch (e) {
      if ((e as Error).name !== 'AbortError') throw e;
    } finally { done = true; wake(); }
  })();
  return {
    events, ended,
    waitFor(pred, ms = 5000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`watch: timed out; events: ${JSON.stringify(events.map((e) => [e.type, e.object?.metadata?.name]))}`)), ms);
        const check = () => {
          if (pred(events)) { clearTimeout(t); resolve(); } else if (done) { clearTimeout(t); reject(new Error(`watch ended; events: ${JSON.stringify(events.map((e) => [e.type, e.object?.metadata?.name]))}`)); } else waiters.push(check);
        };
        check();
      });
    },
    close() { ac.abort(); },
  };
}

describe('metadata on create', () => {
  test('uid, creationTimestamp and resourceVersion are set; GET returns the same', async () => {
    const o = await mustCreate(CM, cm('meta-1'));
    assert.match(o.metadata.uid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.match(o.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.match(o.metadata.resourceVersion, /^\d+$/);
    assert.equal(o.metadata.namespace, 'default');
    const g = await get(`${CM}/meta-1`);
    assertStatus(g, 200);
    assert.equal(g.body.metadata.uid, o.metadata.uid);
    assert.equal(g.body.metadata.resourceVersion, o.metadata.resourceVersion);
    // client-supplied system fields are ignored
    const o2 = await mustCreate(CM, { ...cm('meta-2'), metadata: { name: 'meta-2', uid: 'mine', resourceVersion: '5', creationTimestamp: '2000-01-01T00:00:00Z' } });
    assert.notEqual(o2.metadata.uid, 'mine');
    assert.notEqual(o2.metadata.creationTimestamp, '2000-01-01T00:00:00Z');
    assert.ok(Number(o2.metadata.resourceVersion) > Number(o.metadata.resourceVersion));
  });

  test('generateName yields a unique name with the prefix', async () => {
    const a = await mustCreate(CM, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { generateName: 'gen-' } });
    const b = await mustCreate(CM, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { generateName: 'gen-' } });
    assert.match(a.metadata.name, /^gen-[a-z0-9]{5}$/);
    assert.notEqual(a.metadata.name, b.metadata.name);
    assert.equal((await get(`${CM}/${a.metadata.name}`)).status, 200);
  });

  test('creating an existing name is 409 AlreadyExists', async () => {
    await mustCreate(CM, cm('dup'));
    const r = await post(CM, cm('dup'));
    assertStatus(r, 409, 'AlreadyExists');
    assert.equal(r.body.message, 'configmaps "dup" already exists');
    assert.deepEqual({ name: r.body.details.name, kind: r.body.details.kind }, { name: 'dup', kind: 'configmaps' });
  });
});

describe('updates', () => {
  test('PUT with a stale resourceVersion is 409 Conflict', async () => {
    const o = await mustCreate(CM, cm('stale'));
    const u1 = await put(`${CM}/stale`, { ...o, data: { k: 'v2' } });
    assertStatus(u1, 200);
    assert.ok(Number(u1.body.metadata.resourceVersion) > Number(o.metadata.resourceVersion));
    const u2 = await put(`${CM}/stale`, { ...o, data: { k: 'v3' } });
    assertStatus(u2, 409, 'Conflict');
    assert.equal(u2.body.message, 'Operation cannot be fulfilled on configmaps "stale": the object has been modified; please apply your changes to the latest version and try again');
    assert.equal((await get(`${CM}/stale`)).body.data.k, 'v2');
  });

  test('generation bumps on spec change only', async () => {
    const d = await mustCreate(DEPLOY, deployment('gen'));
    assert.equal(d.metadata.generation, 1);
    const l = await patch(`${DEPLOY}/gen`, { metadata: { labels: { x: 'y' } } });
    assertStatus(l, 200);
    assert.equal(l.body.metadata.generation, 1);
    assert.equal(l.body.metadata.labels.x, 'y');
    const s = await patch(`${DEPLOY}/gen`, { spec: { replicas: 3 } });
    assertStatus(s, 200);
    assert.equal(s.body.metadata.generation, 2);
    const same = await patch(`${DEPLOY}/gen`, { spec: { replicas: 3 } });
    assert.equal(same.body.metadata.generation, 2);
  });

  test('status only via /status; /status keeps spec', async () => {
    const d = await mustCreate(DEPLOY, { ...deployment('st'), status: { replicas: 99 } });
    assert.equal(d.status?.replicas, undefined, 'status on create is dropped');
    const cur = (await get(`${DEPLOY}/st`)).body;
    const u = await put(`${DEPLOY}/st`, { ...cur, status: { replicas: 7 } });
    assertStatus(u, 200);
    assert.equal(u.body.status?.replicas, undefined, 'PUT to the main resource keeps status');
    const s = await put(`${DEPLOY}/st/status`, { ...u.body, spec: { ...u.body.spec, replicas: 5 }, status: { replicas: 4, readyReplicas: 2 } });
    assertStatus(s, 200);
    assert.equal(s.body.status.replicas, 4);
    assert.equal(s.body.spec.replicas, 1, 'PUT /status keeps spec');
    const g = (await get(`${DEPLOY}/st`)).body;
    assert.equal(g.status.readyReplicas, 2);
    assert.equal(g.spec.replicas, 1);
    assert.equal(g.metadata.generation, 1);
    const sp = await patch(`${DEPLOY}/st/status`, { status: { availableReplicas: 1 } });
    assertStatus(sp, 200);
    assert.equal(sp.body.status.availableReplicas, 1);
  });

  for (const [plural, mk] of [
    ['deployments', () => deployment('sc-d', 2)],
    ['replicasets', () => ({ ...deployment('sc-r', 2), kind: 'ReplicaSet', metadata: { name: 'sc-r' } })],
    ['statefulsets', () => ({ ...deployment('sc-s', 2), kind: 'StatefulSet', metadata: { name: 'sc-s' }, spec: { ...deployment('sc-s', 2).spec, serviceName: 'sc-s' } })],
  ] as const) {
    test(`/scale GET, PUT, PATCH on ${plural}`, async () => {
      const base = `/apis/apps/v1/namespaces/default/${plural}`;
      const o = await mustCreate(base, mk());
      const name = o.metadata.name;
      const g = await get(`${base}/${name}/scale`);
      assertStatus(g, 200);
      assert.equal(g.body.kind, 'Scale');
      assert.equal(g.body.apiVersion, 'autoscaling/v1');
      assert.equal(g.body.spec.replicas, 2);
      assert.equal(g.body.metadata.name, name);
      const p = await put(`${base}/${name}/scale`, { ...g.body, spec: { replicas: 4 } });
      assertStatus(p, 200);
      assert.equal(p.body.spec.replicas, 4);
      const m = await patch(`${base}/${name}/scale`, { spec: { replicas: 6 } });
      assertStatus(m, 200);
      assert.equal(m.body.spec.replicas, 6);
      const full = (await get(`${base}/${name}`)).body;
      assert.equal(full.spec.replicas, 6);
      assert.equal(full.metadata.generation, 3);
      // a stale resourceVersion on the Scale is a conflict
      const stale = await put(`${base}/${name}/scale`, { ...g.body, spec: { replicas: 1 } });
      assertStatus(stale, 409, 'Conflict');
      const neg = await patch(`${base}/${name}/scale`, { spec: { replicas: -1 } });
      assertStatus(neg, 422, 'Invalid');
    });
  }
  test('/scale is not served for configmaps', async () => {
    await mustCreate(CM, cm('noscale'));
    assertStatus(await get(`${CM}/noscale/scale`), 404, 'NotFound');
  });
});

describe('deletion', () => {
  test('finalizers hold an object until removed', async () => {
    await mustCreate(CM, { ...cm('fin'), metadata: { name: 'fin', finalizers: ['example.com/hold'] } });
    const d = await del(`${CM}/fin`);
    assertStatus(d, 200);
    const g = await get(`${CM}/fin`);
    assertStatus(g, 200);
    assert.ok(g.body.metadata.deletionTimestamp);
    assert.equal(g.body.metadata.deletionGracePeriodSeconds, 0);
    // adding a finalizer while deleting is forbidden
    const add = await patch(`${CM}/fin`, { metadata: { finalizers: ['example.com/hold', 'x/y'] } });
    assertStatus(add, 422, 'Invalid');
    const rm = await patch(`${CM}/fin`, [{ op: 'remove', path: '/metadata/finalizers' }], 'application/json-patch+json');
    assertStatus(rm, 200);
    assertStatus(await get(`${CM}/fin`), 404, 'NotFound');
  });

  test('propagationPolicy Orphan / Foreground are recorded as finalizers', async () => {
    await mustCreate(DEPLOY, deployment('orph'));
    assertStatus(await del(`${DEPLOY}/orph`, { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Orphan' }), 200);
    const o = (await get(`${DEPLOY}/orph`)).body;
    assert.deepEqual(o.metadata.finalizers, ['orphan']);
    assert.ok(o.metadata.deletionTimestamp);
    await mustCreate(DEPLOY, deployment('fg'));
    assertStatus(await call('DELETE', `${DEPLOY}/fg?propagationPolicy=Foreground`), 200);
    const f = (await get(`${DEPLOY}/fg`)).body;
    assert.deepEqual(f.metadata.finalizers, ['foregroundDeletion']);
    await mustCreate(DEPLOY, deployment('bg'));
    assertStatus(await del(`${DEPLOY}/bg`, { propagationPolicy: 'Background' }), 200);
    assertStatus(await get(`${DEPLOY}/bg`), 404);
    const bad = await del(`${DEPLOY}/orph`, { propagationPolicy: 'Sideways' });
    assertStatus(bad, 422, 'Invalid');
  });

  test('a pod on a node is deleted gracefully; unscheduled or gracePeriodSeconds=0 is gone at once', async () => {
    await mustCreate(PODS, pod('on-node', { nodeName: 'n1' }));
    const d = await del(`${PODS}/on-node`);
    assertStatus(d, 200);
    assert.ok(d.body.metadata.deletionTimestamp);
    assert.equal(d.body.metadata.deletionGracePeriodSeconds, 30);
    const g = (await get(`${PODS}/on-node`)).body;
    assert.equal(g.metadata.deletionGracePeriodSeconds, 30);
    assert.ok(Date.parse(g.metadata.deletionTimestamp) > Date.now() + 20_000);
    // a second delete with a shorter grace shortens it; grace 0 removes it
    assertStatus(await call('DELETE', `${PODS}/on-node?gracePeriodSeconds=0`), 200);
    assertStatus(await get(`${PODS}/on-node`), 404);

    await mustCreate(PODS, pod('unsched'));
    assertStatus(await del(`${PODS}/unsched`), 200);
    assertStatus(await get(`${PODS}/unsched`), 404);

    await mustCreate(PODS, pod('force', { nodeName: 'n1' }));
    assertStatus(await del(`${PODS}/force`, { gracePeriodSeconds: 0 }), 200);
    assertStatus(await get(`${PODS}/force`), 404);
  });

  test('preconditions: uid mismatch is 409 and nothing is deleted', async () => {
    const o = await mustCreate(CM, cm('pre'));
    const r = await del(`${CM}/pre`, { preconditions: { uid: 'not-the-uid' } });
    assertStatus(r, 409, 'Conflict');
    assert.match(r.body.message, /Precondition failed: UID in precondition: not-the-uid, UID in object meta: /);
    assertStatus(await get(`${CM}/pre`), 200);
    assertStatus(await del(`${CM}/pre`, { preconditions: { uid: o.metadata.uid } }), 200);
    assertStatus(await get(`${CM}/pre`), 404);
    assertStatus(await del(`${CM}/pre`), 404, 'NotFound');
  });
});

describe('selectors', () => {
  const NS = '/api/v1/namespaces/sel';
  before(async () => {
    await mustCreate('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sel' } });
    await mustCreate(`${NS}/configmaps`, cm('a', { app: 'web', tier: 'fe' }));
    await mustCreate(`${NS}/configmaps`, cm('b', { app: 'web', tier: 'be' }));
    await mustCreate(`${NS}/configmaps`, cm('c', { app: 'db' }));
    await mustCreate(`${NS}/configmaps`, cm('d'));
    await mustCreate(`${NS}/pods`, pod('p1', { nodeName: 'n1' }));
    await mustCreate(`${NS}/pods`, pod('p2', { nodeName: 'n2' }));
    await mustCreate(`${NS}/pods`, pod('p3'));
    await call('PATCH', `${NS}/pods/p1/status`, { status: { phase: 'Running' } }, { 'Content-Type': 'application/merge-patch+json' });
    await mustCreate(`${NS}/events`, { apiVersion: 'v1', kind: 'Event', metadata: { name: 'e1' }, involvedObject: { kind: 'Pod', name: 'p1', namespace: 'sel' }, reason: 'Pulled', message: 'x', type: 'Normal' });
    await mustCreate(`${NS}/events`, { apiVersion: 'v1', kind: 'Event', metadata: { name: 'e2' }, involvedObject: { kind: 'Pod', name: 'p2', namespace: 'sel' }, reason: 'Pulled', message: 'y', type: 'Normal' });
    await mustCreate(`${NS}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's1' }, type: 'Opaque', stringData: { a: 'b' } });
    await mustCreate(`${NS}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's2' }, type: 'kubernetes.io/tls', data: { 'tls.crt': '', 'tls.key': '' } });
  });
  const ls = async (path: string, q: string) => {
    const r = await get(`${path}?${q}`);
    assertStatus(r, 200);
    return names(r.body);
  };

  test('label selector operators', async () => {
    const p = `${NS}/configmaps`;
    const sel = (s: string) => ls(p, `labelSelector=${encodeURIComponent(s)}`);
    assert.deepEqual(await sel('app=web'), ['a', 'b']);
    assert.deepEqual(await sel('app==web'), ['a', 'b']);
    assert.deepEqual(await sel('app!=web'), ['c', 'd']);
    assert.deepEqual(await sel('app in (web,db)'), ['a', 'b', 'c']);
    assert.deepEqual(await sel('app notin (web)'), ['c', 'd']);
    assert.deepEqual(await sel('tier'), ['a', 'b']);
    assert.deepEqual(await sel('!tier'), ['c', 'd']);
    assert.deepEqual(await sel('app=web,tier=be'), ['b']);
    const bad = await get(`${p}?labelSelector=${encodeURIComponent('app in web')}`);
    assertStatus(bad, 400, 'BadRequest');
  });

  test('field selectors', async () => {
    assert.deepEqual(await ls(`${NS}/configmaps`, 'fieldSelector=metadata.name%3Da'), ['a']);
    assert.deepEqual(await ls(`${NS}/configmaps`, 'fieldSelector=metadata.name!%3Da'), ['b', 'c', 'd']);
    assert.ok((await ls('/api/v1/configmaps', 'fieldSelector=metadata.namespace%3Dsel')).length === 4);
    assert.deepEqual(await ls(`${NS}/pods`, 'fieldSelector=spec.nodeName%3Dn1'), ['p1']);
    assert.deepEqual(await ls(`${NS}/pods`, 'fieldSelector=spec.nodeName%3D'), ['p3'], 'empty value selects unscheduled pods');
    assert.deepEqual(await ls(`${NS}/pods`, 'fieldSelector=status.phase!%3DRunning'), ['p2', 'p3']);
    assert.deepEqual(await ls(`${NS}/pods`, 'fieldSelector=spec.nodeName!%3D,status.phase%3DRunning'), ['p1']);
    assert.deepEqual(await ls(`${NS}/events`, 'fieldSelector=involvedObject.name%3Dp2'), ['e2']);
    assert.deepEqual(await ls(`${NS}/events`, 'fieldSelector=involvedObject.kind%3DPod'), ['e1', 'e2']);
    assert.deepEqual(await ls(`${NS}/secrets`, 'fieldSelector=type%3Dkubernetes.io%2Ftls'), ['s2']);
    const bad = await get(`${NS}/configmaps?fieldSelector=data.k%3Dv`);
    assertStatus(bad, 400, 'BadRequest');
  });
});

describe('pagination', () => {
  test('limit/continue over 25 objects gives 3 pages, each object once', async () => {
    await mustCreate('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'page' } });
    const p = '/api/v1/namespaces/page/configmaps';
    for (let i = 0; i < 25; i++) await mustCreate(p, cm(`cm-${String(i).padStart(2, '0')}`));
    const seen: string[] = [];
    let cont = '';
    const remaining: (number | undefined)[] = [];
    let pages = 0;
    let rv = '';
    do {
      const r = await get(`${p}?limit=10${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
      assertStatus(r, 200);
      pages++;
      seen.push(...r.body.items.map((i: any) => i.metadata.name));
      remaining.push(r.body.metadata.remainingItemCount);
      cont = r.body.metadata.continue ?? '';
      if (pages === 1) rv = r.body.metadata.resourceVersion;
      else assert.equal(r.body.metadata.resourceVersion, rv, 'all pages report the first page\'s resourceVersion');
      // a write between pages, sorting before the cursor: it must not shift or repeat later pages
      if (pages === 1) await mustCreate(p, cm('cm-00a'));
    } while (cont && pages < 10);
    assert.equal(pages, 3);
    assert.deepEqual(remaining, [15, 5, undefined]);
    const expected = Array.from({ length: 25 }, (_, i) => `cm-${String(i).padStart(2, '0')}`);
    assert.deepEqual(seen, expected);
    assertStatus(await get(`${p}?limit=10&continue=garbage`), 400, 'BadRequest');
  });
});

describe('watch', () => {
  test('resume from a resourceVersion delivers exactly the later events', async () => {
    const a = await mustCreate(CM, cm('w-a'));
    const b = await put(`${CM}/w-a`, { ...a, data: { k: '2' } });
    const mid = b.body.metadata.resourceVersion;
    await put(`${CM}/w-a`, { ...b.body, data: { k: '3' } });
    await mustCreate(CM, cm('w-b'));
    await del(`${CM}/w-b`);
    const w = openWatch(`${api.url}${CM}?watch=true&resourceVersion=${mid}`);
    try {
      await w.waitFor((e) => e.length >= 3);
      const got = w.events.filter((e) => e.object.metadata.name.startsWith('w-')).map((e) => [e.type, e.object.metadata.name, e.object.data?.k]);
      assert.deepEqual(got.slice(0, 3), [['MODIFIED', 'w-a', '3'], ['ADDED', 'w-b', 'v'], ['DELETED', 'w-b', 'v']]);
      for (const e of w.events) assert.ok(Number(e.object.metadata.resourceVersion) > Number(mid));
      // and it stays open for new events
      await mustCreate(CM, cm('w-c'));
      await w.waitFor((e) => e.some((x) => x.type === 'ADDED' && x.object.metadata.name === 'w-c'));
    } finally { w.close(); }
  });

  test('resourceVersion=0 starts with synthetic ADDED for existing objects', async () => {
    await mustCreate('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'w0' } });
    await mustCreate('/api/v1/namespaces/w0/configmaps', cm('x1'));
    await mustCreate('/api/v1/namespaces/w0/configmaps', cm('x2'));
    const w = openWatch(`${api.url}/api/v1/namespaces/w0/configmaps?watch=1&resourceVersion=0`);
    try {
      await w.waitFor((e) => e.length >= 2);
      assert.deepEqual(w.events.map((e) => [e.type, e.object.metadata.name]), [['ADDED', 'x1'], ['ADDED', 'x2']]);
    } finally { w.close(); }
  });

  test('sendInitialEvents: ADDED then a BOOKMARK marked initial-events-end', async () => {
    await mustCreate('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wl' } });
    await mustCreate('/api/v1/namespaces/wl/configmaps', cm('y1'));
    const w = openWatch(`${api.url}/api/v1/namespaces/wl/configmaps?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan`);
    try {
      await w.waitFor((e) => e.some((x) => x.type === 'BOOKMARK'));
      assert.deepEqual(w.events.map((e) => e.type), ['ADDED', 'BOOKMARK']);
      const bm = w.events[1].object;
      assert.equal(bm.kind, 'ConfigMap');
      assert.equal(bm.metadata.annotations['k8s.io/initial-events-end'], 'true');
      assert.ok(Number(bm.metadata.resourceVersion) >= Number(w.events[0].object.metadata.resourceVersion));
    } finally { w.close(); }
    const bad = await get('/api/v1/namespaces/wl/configmaps?watch=true&sendInitialEvents=true');
    assertStatus(bad, 422, 'Invalid');
  });

  test('timeoutSeconds closes the stream', async () => {
    const t0 = Date.now();
    const w = openWatch(`${api.url}${CM}?watch=true&resourceVersion=${(await get(CM)).body.metadata.resourceVersion}&timeoutSeconds=1`);
    await w.ended;
    const took = Date.now() - t0;
    assert.ok(took >= 900 && took < 4000, `took ${took} ms`);
  });

  test('a label-selector watch sees a label change as ADDED / DELETED', async () => {
    const o = await mustCreate(CM, cm('lbl', { sel: 'no' }));
    const w = openWatch(`${api.url}${CM}?watch=true&labelSelector=sel%3Dyes&resourceVersion=${o.metadata.resourceVersion}`);
    try {
      await patch(`${CM}/lbl`, { metadata: { labels: { sel: 'yes' } } });
      await w.waitFor((e) => e.length >= 1);
      await patch(`${CM}/lbl`, { data: { k: 'changed' } });
      await w.waitFor((e) => e.length >= 2);
      await patch(`${CM}/lbl`, { metadata: { labels: { sel: 'no' } } });
      await w.waitFor((e) => e.length >= 3);
      await patch(`${CM}/lbl`, { data: { k: 'unseen' } });
      await mustCreate(CM, cm('lbl-marker', { sel: 'yes' }));
      await w.waitFor((e) => e.length >= 4);
      assert.deepEqual(w.events.map((e) => [e.type, e.object.metadata.name]), [['ADDED', 'lbl'], ['MODIFIED', 'lbl'], ['DELETED', 'lbl'], ['ADDED', 'lbl-marker']]);
    } finally { w.close(); }
  });

  test('a watch from a resourceVersion older than the window gets ERROR 410 Expired', async () => {
    const p = '/api/v1/namespaces/default/configmaps';
    const first = (await call('POST', p, cm('old-0'), {}, small.url)).body;
    for (let i = 1; i <= 12; i++) assert.equal((await call('POST', p, cm(`old-${i}`), {}, small.url)).status, 201);
    const w = openWatch(`${small.url}${p}?watch=true&resourceVersion=${first.metadata.resourceVersion}`);
    await w.ended;
    assert.equal(w.events.length, 1);
    const ev = w.events[0];
    assert.equal(ev.type, 'ERROR');
    assert.equal(ev.object.kind, 'Status');
    assert.equal(ev.object.code, 410);
    assert.equal(ev.object.reason, 'Expired');
    assert.match(ev.object.message, /^too old resource version: /);
    // a recent resourceVersion still resumes
    const cur = (await call('GET', p, undefined, {}, small.url)).body.metadata.resourceVersion;
    const w2 = openWatch(`${small.url}${p}?watch=true&resourceVersion=${cur}`);
    try {
      await call('POST', p, cm('new-1'), {}, small.url);
      await w2.waitFor((e) => e.length >= 1);
      assert.deepEqual(w2.events.map((e) => [e.type, e.object.metadata.name]), [['ADDED', 'new-1']]);
    } finally { w2.close(); }
  });
});

describe('Table output', () => {
  const AS_TABLE = { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' };
  test('list as Table has column definitions and rows with PartialObjectMetadata', async () => {
    await mustCreate(DEPLOY, deployment('tbl'));
    const r = await get(`${DEPLOY}?labelSelector=`, AS_TABLE);
    assertStatus(r, 200);
    assert.equal(r.body.kind, 'Table');
    assert.equal(r.body.apiVersion, 'meta.k8s.io/v1');
    const cols = r.body.columnDefinitions.map((c: any) => c.name);
    assert.deepEqual(cols.slice(0, 5), ['Name', 'Ready', 'Up-to-date', 'Available', 'Age']);
    const row = r.body.rows.find((x: any) => x.cells[0] === 'tbl');
    assert.ok(row, 'row for tbl');
    assert.equal(row.cells[1], '0/1');
    assert.equal(row.object.kind, 'PartialObjectMetadata');
    assert.equal(row.object.metadata.name, 'tbl');
    assert.equal(row.object.spec, undefined);
    const full = await get(`${DEPLOY}/tbl?includeObject=Object`, AS_TABLE);
    assertStatus(full, 200);
    assert.equal(full.body.rows.length, 1);
    assert.equal(full.body.rows[0].object.kind, 'Deployment');
    assert.equal(full.body.rows[0].object.spec.replicas, 1);
  });
});

describe('namespace admission', () => {
  test('creating in a missing namespace is 404', async () => {
    const r = await post('/api/v1/namespaces/nope/configmaps', cm('x'));
    assertStatus(r, 404, 'NotFound');
    assert.equal(r.body.message, 'namespaces "nope" not found');
  });
  test('creating in a terminating namespace is 403', async () => {
    await mustCreate('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'doomed' } });
    await mustCreate('/api/v1/namespaces/doomed/configmaps', cm('before'));
    const d = await del('/api/v1/namespaces/doomed');
    assertStatus(d, 200);
    const ns = (await get('/api/v1/namespaces/doomed')).body;
    assert.equal(ns.status.phase, 'Terminating');
    const r = await post('/api/v1/namespaces/doomed/configmaps', cm('after'));
    assertStatus(r, 403, 'Forbidden');
    assert.equal(r.body.message, 'configmaps "after" is forbidden: unable to create new content in namespace doomed because it is being terminated');
    assert.equal(r.body.details.causes[0].reason, 'NamespaceTerminating');
  });
});

describe('bad input', () => {
  const BAD = '/api/v1/namespaces/default/configmaps';
  async function count(): Promise<number> {
    return (await get(BAD)).body.items.length;
  }
  async function expectRejected(r: Res, code: number, reason: string, before: number): Promise<void> {
    assertStatus(r, code, reason);
    const h = await fetch(`${api.url}/healthz`);
    assert.equal(h.status, 200);
    assert.equal(await h.text(), 'ok');
    assert.equal(await count(), before, 'nothing was written');
  }

  test('each malformed request is a 4xx Status and writes nothing', async () => {
    await mustCreate(BAD, cm('bad-target'));
    const n = await count();
    await expectRejected(await post(BAD, '{"apiVersion":"v1","kind":"ConfigMap","metadata":{'), 400, 'BadRequest', n);
    await expectRejected(await post(BAD, 'this is: [not valid', { 'Content-Type': 'application/yaml' }), 400, 'BadRequest', n);
    await expectRejected(await post(BAD, { ...cm('wrong-kind'), kind: 'Secret' }), 400, 'BadRequest', n);
    await expectRejected(await post(BAD, { ...cm('wrong-ver'), apiVersion: 'apps/v1' }), 400, 'BadRequest', n);
    await expectRejected(await post('/apis/nosuch.example.com/v1/namespaces/default/widgets', cm('x')), 404, 'NotFound', n);
    await expectRejected(await post('/api/v2/namespaces/default/configmaps', cm('x')), 404, 'NotFound', n);
    const big = cm('too-big', undefined, { k: 'x'.repeat(3 * 1024 * 1024 + 10) });
    await expectRejected(await post(BAD, big), 413, 'RequestEntityTooLarge', n);
    const inv = await post(BAD, cm('Bad_Name'));
    await expectRejected(inv, 422, 'Invalid', n);
    assert.deepEqual(inv.body.details.causes.map((c: any) => c.field), ['metadata.name']);
    assert.match(inv.body.message, /^ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);
    await expectRejected(await call('PATCH', `${BAD}/bad-target`, '{"data":{"k":"z"}}', { 'Content-Type': 'text/plain' }), 415, 'UnsupportedMediaType', n);
    const jp = await call('PATCH', `${BAD}/bad-target`, JSON.stringify([{ op: 'test', path: '/data/k', value: 'nope' }, { op: 'replace', path: '/data/k', value: 'z' }]), { 'Content-Type': 'application/json-patch+json' });
    await expectRejected(jp, 422, 'Invalid', n);
    assert.equal((await get(`${BAD}/bad-target`)).body.data.k, 'v');
    const rnd = Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 97 + 13) & 0xff));
    await expectRejected(await post(BAD, rnd, { 'Content-Type': 'application/vnd.kubernetes.protobuf' }), 400, 'BadRequest', n);
    await expectRejected(await post(BAD, '[1,2,3]'), 400, 'BadRequest', n);
    await expectRejected(await post(BAD, ''), 400, 'BadRequest', n);
  });

  test('a YAML body is accepted with Content-Type application/yaml', async () => {
    const r = await post(BAD, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: "1"\n', { 'Content-Type': 'application/yaml' });
    assertStatus(r, 201);
    assert.deepEqual((await get(`${BAD}/from-yaml`)).body.data, { a: '1' });
  });

  test('dryRun=All returns the object and writes nothing', async () => {
    const n = await count();
    const r = await call('POST', `${BAD}?dryRun=All`, cm('dry'));
    assertStatus(r, 201);
    assert.equal(r.body.metadata.name, 'dry');
    assert.ok(r.body.metadata.uid);
    assertStatus(await get(`${BAD}/dry`), 404);
    assert.equal(await count(), n);
    await mustCreate(BAD, cm('dry2'));
    const u = await call('PATCH', `${BAD}/dry2?dryRun=All`, '{"data":{"k":"dry"}}', { 'Content-Type': 'application/merge-patch+json' });
    assertStatus(u, 200);
    assert.equal(u.body.data.k, 'dry');
    assert.equal((await get(`${BAD}/dry2`)).body.data.k, 'v');
    assertStatus(await call('DELETE', `${BAD}/dry2?dryRun=All`), 200);
    assertStatus(await get(`${BAD}/dry2`), 200);
  });
});
