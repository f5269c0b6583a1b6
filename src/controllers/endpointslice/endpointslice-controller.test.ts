// The EndpointSlice controller against the fake API server: slices appear, change in place and stay
// one per 100 endpoints; a cache that lags our writes makes no duplicates; zones follow node labels;
// write failures become FailedToUpdateEndpointSlices events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/types.js';
import { Informer, RestClient, type ListWatchClient } from '../../client/index.js';
import { FakeApiServer } from '../../client/testing/fake-apiserver.js';
import { newControllerContext } from '../context.js';
import type { EndpointSlice, Pod, Service } from './endpoint-util.js';
import { EndpointSliceController, StaleInformerCacheError, start, type EndpointSliceClient } from './endpointslice-controller.js';

const services = { group: '', plural: 'services' };
const podsRes = { group: '', plural: 'pods' };
const nodes = { group: '', plural: 'nodes' };
const slicesRes = { group: 'discovery.k8s.io', plural: 'endpointslices' };
const events = { group: '', plural: 'events' };

const svc: Service = {
  apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'ns', creationTimestamp: '2025-01-01T00:00:00Z' },
  spec: { selector: { app: 'web' }, clusterIP: '10.43.0.10', ipFamilies: ['IPv4'], ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] },
};

function pod(name: string, ip: string, o: { ready?: boolean; node?: string } = {}): Pod {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'ns', uid: `uid-${name}`, labels: { app: 'web' } },
    spec: { nodeName: o.node ?? 'n1', containers: [{ name: 'c', image: 'x' }] },
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  };
}

async function until<T>(f: () => T | undefined | false, what: string, ms = 8000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function runController(server: FakeApiServer, opts: Record<string, unknown> = {}) {
  const client = new RestClient({ server: server.url });
  const ctx = newControllerContext(client);
  const ac = new AbortController();
  const done = start(ctx, ac.signal, opts);
  return { async stop() { ac.abort(); await done; client.close(); } };
}

const slicesOf = (server: FakeApiServer) => (server.listObjects(slicesRes) as EndpointSlice[]).filter((s) => s.metadata?.labels?.['kubernetes.io/service-name'] === 'web');
const count = (server: FakeApiServer) => slicesOf(server).reduce((n, s) => n + (s.endpoints?.length ?? 0), 0);

test('slices follow the pods: placeholder reused, in-place updates, 100 per slice, no duplicate creates', async (t) => {
  const server = await FakeApiServer.start();
  t.after(() => server.close());
  server.put(nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', labels: { 'topology.kubernetes.io/zone': 'zone-a' } } });
  const s = server.put(services, svc);
  const c = runController(server);
  t.after(() => c.stop());

  // no pods yet: one empty placeholder slice owned by the Service
  const [placeholder] = await until(() => slicesOf(server).length === 1 && slicesOf(server), 'placeholder');
  assert.deepEqual(placeholder!.endpoints ?? [], []);
  assert.deepEqual(placeholder!.metadata!.ownerReferences, [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: s.metadata!.uid, controller: true, blockOwnerDeletion: true }]);
  assert.equal(placeholder!.metadata!.labels!['endpointslice.kubernetes.io/managed-by'], 'endpointslice-controller.k8s.io');

  // the first pod reuses the placeholder
  server.put(podsRes, pod('a', '10.42.0.5'));
  const [one] = await until(() => count(server) === 1 && slicesOf(server), 'one endpoint');
  assert.equal(one!.metadata!.name, placeholder!.metadata!.name);
  assert.deepEqual(one!.endpoints![0], { addresses: ['10.42.0.5'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'n1', zone: 'zone-a', targetRef: { kind: 'Pod', namespace: 'ns', name: 'a', uid: 'uid-a' } });
  assert.deepEqual(one!.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);

  // a burst of 150 more pods
  for (let i = 1; i <= 150; i++) server.put(podsRes, pod(`p${i}`, `10.42.${Math.floor(i / 200)}.${(i % 200) + 10}`));
  await until(() => count(server) === 151, '151 endpoints', 15000);
  assert.deepEqual(slicesOf(server).map((x) => x.endpoints!.length).sort((a, b) => a - b), [51, 100]);
  const names = slicesOf(server).map((x) => x.metadata!.name).sort();

  // a readiness change updates one slice in place
  server.put(podsRes, pod('a', '10.42.0.5', { ready: false }));
  await until(() => slicesOf(server).some((x) => x.endpoints!.some((e) => e.targetRef!.name === 'a' && e.conditions!.ready === false)), 'a not ready');
  assert.deepEqual(slicesOf(server).map((x) => x.metadata!.name).sort(), names, 'same slices');
  assert.equal(server.requests.filter((r) => r.method === 'POST' && r.url.includes('endpointslices')).length, 2, 'two creates in all: no duplicates');
});

test('a pod on a node not yet known is skipped with a FailedToUpdateEndpointSlices event, and added when the node appears', async (t) => {
  const server = await FakeApiServer.start();
  t.after(() => server.close());
  server.put(services, svc);
  server.put(podsRes, pod('a', '10.42.0.5', { node: 'late' }));
  const c = runController(server);
  t.after(() => c.stop());
  const ev = await until(() => server.listObjects(events).find((e) => (e as { reason?: string }).reason === 'FailedToUpdateEndpointSlices'), 'event') as KObject & Record<string, unknown>;
  assert.match(String(ev.message), /^Error updating Endpoint Slices for Service ns\/web: skipping Pod a for Service ns\/web: Node late Not Found/);
  assert.equal((ev.involvedObject as Record<string, unknown>).kind, 'Service');
  server.put(nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'late', labels: { 'topology.kubernetes.io/zone': 'z9' } } });
  await until(() => slicesOf(server)[0]?.endpoints?.[0]?.zone === 'z9', 'endpoint with zone');
});

test('a slice cache that has not caught up with our writes makes the sync wait instead of writing twice', async () => {
  const idle: ListWatchClient = { list: async () => ({ metadata: {}, items: [] }), watch: () => ({ async *[Symbol.asyncIterator]() {} }) };
  const inf = <T extends KObject>(plural: string, group = '') => new Informer<T>({ client: idle, resource: { group, version: 'v1', plural } });
  const writes: string[] = [];
  let n = 0;
  const client: EndpointSliceClient = {
    async create<T extends KObject>(_r: unknown, _ns: unknown, obj: T): Promise<T> {
      const o = structuredClone(obj);
      o.metadata = { ...o.metadata, name: `web-${n}`, uid: `u${n}`, resourceVersion: String(100 + n++) };
      writes.push(`create ${o.metadata.name}`);
      return o;
    },
    async update<T extends KObject>(_r: unknown, _ns: unknown, obj: T): Promise<T> {
      writes.push(`update ${obj.metadata!.name}`);
      return { ...obj, metadata: { ...obj.metadata, resourceVersion: String(100 + n++) } };
    },
    async delete(_r: unknown, _ns: unknown, name: string) { writes.push(`delete ${name}`); return {}; },
  };
  const serviceInformer = inf<Service>('services'), podInformer = inf<Pod>('pods'), nodeInformer = inf<KObject>('nodes'), sliceInformer = inf<EndpointSlice>('endpointslices', 'discovery.k8s.io');
  podInformer.indexer.addIndexers({ byNode: () => [] });
  const c = new EndpointSliceController({ client, serviceInformer, podInformer, nodeInformer: nodeInformer as never, sliceInformer });
  serviceInformer.indexer.set({ ...svc, metadata: { ...svc.metadata, uid: 'svc-uid', resourceVersion: '1' } });
  nodeInformer.indexer.set({ metadata: { name: 'n1' } });
  podInformer.indexer.set(pod('a', '10.42.0.5'));
  await c.sync('ns/web');
  assert.deepEqual(writes, ['create web-0']);
  // the informer has not delivered web-0 yet: no second create
  await assert.rejects(c.sync('ns/web'), StaleInformerCacheError);
  assert.deepEqual(writes, ['create web-0']);
  // once it has, a pod change is an update of web-0
  const created = { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'web-0', namespace: 'ns', uid: 'u0', resourceVersion: '100', labels: { 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' }, ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: 'svc-uid', controller: true }] }, addressType: 'IPv4', ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], endpoints: [] } as EndpointSlice;
  sliceInformer.indexer.set({ ...created, endpoints: [{ addresses: ['10.42.0.5'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'n1', targetRef: { kind: 'Pod', namespace: 'ns', name: 'a', uid: 'uid-a' } }] });
  podInformer.indexer.set(pod('b', '10.42.0.6'));
  await c.sync('ns/web');
  assert.deepEqual(writes, ['create web-0', 'update web-0']);
  // the cache still shows the version that update replaced: wait again
  await assert.rejects(c.sync('ns/web'), StaleInformerCacheError);
  assert.equal(writes.length, 2);
});
