// The Endpoints controller: subsets as upstream builds them (pure), and the controller against the
// fake API server — create, update, no-op, delete with the Service, orphans at start, selector-less
// Services left alone, FailedToUpdateEndpoint events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/types.js';
import { RestClient } from '../../client/index.js';
import { FakeApiServer } from '../../client/testing/fake-apiserver.js';
import { newControllerContext } from '../context.js';
import type { Endpoints, Pod, Service } from '../endpointslice/endpoint-util.js';
import { desiredSubsets, endpointsLabels, start, truncateSubsets } from './endpoints-controller.js';

const svc = (over: Partial<NonNullable<Service['spec']>> = {}): Service => ({
  apiVersion: 'v1', kind: 'Service',
  metadata: { name: 'web', namespace: 'ns', uid: 'svc-uid', creationTimestamp: '2025-01-01T00:00:00Z' },
  spec: { selector: { app: 'web' }, clusterIP: '10.43.0.10', ipFamilies: ['IPv4'], ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }], ...over },
});

function pod(name: string, ip: string, o: { ready?: boolean; deleting?: boolean; node?: string; ports?: Array<{ name: string; containerPort: number }>; hostname?: string; subdomain?: string; phase?: string } = {}): Pod {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, labels: { app: 'web' }, ...(o.deleting ? { deletionTimestamp: '2025-01-01T00:01:00Z', finalizers: ['x/y'] } : {}) },
    spec: { nodeName: o.node ?? 'n1', containers: [{ name: 'c', image: 'x', ports: o.ports }], hostname: o.hostname, subdomain: o.subdomain },
    status: { phase: o.phase ?? 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True', lastTransitionTime: '2025-01-01T00:00:30Z' }] },
  };
}

const ref = (name: string) => ({ kind: 'Pod', namespace: 'ns', name, uid: `uid-${name}` });

test('ready pods are addresses, not-ready ones notReadyAddresses, terminating and finished ones nowhere', () => {
  const { subsets } = desiredSubsets(svc(), [
    pod('b', '10.42.1.3', { node: 'n2' }), pod('a', '10.42.0.5'), pod('u', '10.42.0.9', { ready: false }),
    pod('t', '10.42.0.7', { deleting: true }), pod('d', '10.42.0.8', { phase: 'Failed' }),
  ]);
  assert.deepEqual(subsets, [{
    addresses: [{ ip: '10.42.0.5', nodeName: 'n1', targetRef: ref('a') }, { ip: '10.42.1.3', nodeName: 'n2', targetRef: ref('b') }],
    notReadyAddresses: [{ ip: '10.42.0.9', nodeName: 'n1', targetRef: ref('u') }],
    ports: [{ port: 8080, protocol: 'TCP' }],
  }]);
});

test('publishNotReadyAddresses lists every pod with an IP as ready, terminating ones too', () => {
  const { subsets } = desiredSubsets(svc({ publishNotReadyAddresses: true }), [pod('u', '10.42.0.9', { ready: false }), pod('t', '10.42.0.7', { deleting: true })]);
  assert.deepEqual(subsets.map((s) => [s.addresses?.map((a) => a.ip), s.notReadyAddresses]), [[['10.42.0.7', '10.42.0.9'], undefined]]);
});

test('named targetPorts resolve per pod: ports with different address sets get their own subsets; hostname with a matching subdomain', () => {
  const service = svc({ ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }, { name: 'metrics', port: 9100, targetPort: 9100, protocol: 'TCP' }] });
  const { subsets } = desiredSubsets(service, [
    pod('a', '10.42.0.5', { ports: [{ name: 'http', containerPort: 8080 }], hostname: 'a', subdomain: 'web' }),
    pod('b', '10.42.0.6'), // no port named http: only in the metrics subset
  ]);
  assert.deepEqual(subsets, [
    { addresses: [{ ip: '10.42.0.5', hostname: 'a', nodeName: 'n1', targetRef: ref('a') }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] },
    { addresses: [{ ip: '10.42.0.5', hostname: 'a', nodeName: 'n1', targetRef: ref('a') }, { ip: '10.42.0.6', nodeName: 'n1', targetRef: ref('b') }], ports: [{ name: 'metrics', port: 9100, protocol: 'TCP' }] },
  ]);
  // when both pods have both ports, one subset carries both
  const both = desiredSubsets(service, [pod('a', '10.42.0.5', { ports: [{ name: 'http', containerPort: 8080 }] }), pod('b', '10.42.0.6', { ports: [{ name: 'http', containerPort: 8080 }] })]);
  assert.equal(both.subsets.length, 1);
  assert.deepEqual(both.subsets[0]!.ports!.map((p) => p.name), ['http', 'metrics']);
});

test('headless without ports: addresses without ports; the headless label', () => {
  const s = svc({ clusterIP: 'None', ports: [] });
  assert.deepEqual(desiredSubsets(s, [pod('a', '10.42.0.5')]).subsets, [{ addresses: [{ ip: '10.42.0.5', nodeName: 'n1', targetRef: ref('a') }] }]);
  assert.deepEqual(endpointsLabels({ ...s, metadata: { ...s.metadata, labels: { app: 'web' } } }), { app: 'web', 'service.kubernetes.io/headless': '' });
  assert.deepEqual(endpointsLabels(svc()), {});
});

test('truncation keeps ready addresses first, in proportion over subsets', () => {
  const addrs = (n: number, base: number) => Array.from({ length: n }, (_, i) => ({ ip: `10.0.${base}.${i}` }));
  const a = [{ addresses: addrs(600, 1), notReadyAddresses: addrs(50, 2) }, { addresses: addrs(300, 3), notReadyAddresses: addrs(150, 4) }];
  assert.equal(truncateSubsets(a), true);
  assert.deepEqual(a.map((s) => [s.addresses.length, s.notReadyAddresses?.length ?? 0]), [[600, 25], [300, 75]]);
  const b = [{ addresses: addrs(900, 1) }, { addresses: addrs(300, 2), notReadyAddresses: addrs(10, 3) }];
  assert.equal(truncateSubsets(b), true);
  assert.deepEqual(b.map((s) => [s.addresses.length, s.notReadyAddresses?.length ?? 0]), [[750, 0], [250, 0]]);
  assert.equal(truncateSubsets([{ addresses: addrs(1000, 1) }]), false);
});

// ---- the controller against the fake API server ----

const services = { group: '', plural: 'services' };
const pods = { group: '', plural: 'pods' };
const endpoints = { group: '', plural: 'endpoints' };
const events = { group: '', plural: 'events' };

async function until<T>(f: () => T | undefined | false, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function runController(server: FakeApiServer) {
  const client = new RestClient({ server: server.url });
  const ctx = newControllerContext(client);
  const ac = new AbortController();
  const done = start(ctx, ac.signal);
  return { async stop() { ac.abort(); await done; client.close(); } };
}

const epOf = (server: FakeApiServer, name = 'web') => server.getObject(endpoints, 'ns', name) as Endpoints | undefined;

test('controller: creates, updates and deletes the Endpoints of a Service; leaves selector-less ones alone; cleans orphans at start', async (t) => {
  const server = await FakeApiServer.start();
  t.after(() => server.close());
  // an orphan from a Service deleted while no controller ran, and the API server's own kubernetes Endpoints
  server.put(endpoints, { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'gone', namespace: 'ns' }, subsets: [{ addresses: [{ ip: '10.42.9.9' }] }] });
  server.put(services, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'kubernetes', namespace: 'default' }, spec: { clusterIP: '10.43.0.1', ports: [{ name: 'https', port: 443, targetPort: 6443, protocol: 'TCP' }] } });
  const apiEp = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'kubernetes', namespace: 'default' }, subsets: [{ addresses: [{ ip: '192.0.2.1' }], ports: [{ name: 'https', port: 6443, protocol: 'TCP' }] }] };
  server.put(endpoints, apiEp);
  server.put(pods, pod('a', '10.42.0.5'));
  server.put(pods, pod('b', '10.42.1.3', { node: 'n2' }));
  server.put(services, { ...svc(), metadata: { name: 'web', namespace: 'ns', labels: { app: 'web' } } });
  const c = runController(server);
  t.after(() => c.stop());

  const ep = await until(() => epOf(server)?.subsets?.[0]?.addresses?.length === 2 && epOf(server), 'Endpoints with two addresses');
  assert.deepEqual(ep.subsets![0]!.addresses!.map((a) => a.ip), ['10.42.0.5', '10.42.1.3']);
  assert.deepEqual(ep.metadata!.labels, { app: 'web' });
  assert.ok(!ep.metadata!.ownerReferences, 'no owner, as upstream');
  assert.match(ep.metadata!.annotations!['endpoints.kubernetes.io/last-change-trigger-time']!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  await until(() => !epOf(server, 'gone'), 'the orphan Endpoints deleted');

  // pod a becomes unready: it moves to notReadyAddresses
  const a = server.getObject(pods, 'ns', 'a') as Pod;
  server.put(pods, { ...a, status: { ...a.status, conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: '2025-01-01T00:02:00Z' }] } });
  const moved = await until(() => epOf(server)?.subsets?.[0]?.notReadyAddresses?.length === 1 && epOf(server), 'a not ready');
  assert.deepEqual(moved.subsets![0]!.notReadyAddresses!.map((x) => x.ip), ['10.42.0.5']);
  assert.equal(moved.metadata!.annotations!['endpoints.kubernetes.io/last-change-trigger-time'], '2025-01-01T00:02:00Z');

  // an annotation on a pod changes nothing: no write
  const writesBefore = server.requests.filter((r) => r.method === 'PUT' && r.url.includes('/endpoints/web')).length;
  const b = server.getObject(pods, 'ns', 'b') as Pod;
  server.put(pods, { ...b, metadata: { ...b.metadata, annotations: { note: 'x' } } });
  server.put(services, { ...svc(), metadata: { name: 'marker', namespace: 'ns' } });
  await until(() => epOf(server, 'marker'), 'a later Service synced');
  assert.equal(server.requests.filter((r) => r.method === 'PUT' && r.url.includes('/endpoints/web')).length, writesBefore);

  // the API server's Endpoints of the selector-less kubernetes Service are untouched
  assert.deepEqual((server.getObject(endpoints, 'default', 'kubernetes') as KObject).subsets, apiEp.subsets);

  // deleting the Service deletes its Endpoints
  server.remove(services, 'ns', 'web');
  await until(() => !epOf(server), 'Endpoints deleted with the Service');
});

test('controller: a failing update is retried and reported as FailedToUpdateEndpoint', async (t) => {
  const server = await FakeApiServer.start();
  t.after(() => server.close());
  server.put(services, svc());
  server.put(pods, pod('a', '10.42.0.5'));
  const c = runController(server);
  t.after(() => c.stop());
  await until(() => epOf(server)?.subsets?.length === 1, 'Endpoints created');
  server.injectFailure({ method: 'PUT', pathIncludes: '/endpoints/web', status: 500, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'InternalError', message: 'etcd is sad', code: 500 } });
  server.put(pods, pod('b', '10.42.0.6'));
  const ev = await until(() => server.listObjects(events).find((e) => (e as { reason?: string }).reason === 'FailedToUpdateEndpoint'), 'the event') as KObject & Record<string, unknown>;
  assert.equal(ev.type, 'Warning');
  assert.match(String(ev.message), /^Failed to update endpoint ns\/web: .*etcd is sad/);
  assert.deepEqual((ev.involvedObject as Record<string, unknown>).kind, 'Endpoints');
  await until(() => epOf(server)?.subsets?.[0]?.addresses?.length === 2, 'the retry wrote both addresses');
});
