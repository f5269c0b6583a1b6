// ServiceLB against the fake API server: LoadBalancer Services get the Ready nodes' addresses as
// ingress, follow node readiness, respect loadBalancerClass, enablelb and externalTrafficPolicy Local,
// and lose the ingress when they stop being LoadBalancers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/types.js';
import { RestClient } from '../../client/index.js';
import { FakeApiServer } from '../../client/testing/fake-apiserver.js';
import { newControllerContext } from '../context.js';
import type { Node, Service } from '../endpointslice/endpoint-util.js';
import { desiredIngress, eligibleNodes, start } from './servicelb-controller.js';

const services = { group: '', plural: 'services' };
const nodes = { group: '', plural: 'nodes' };
const events = { group: '', plural: 'events' };
const slices = { group: 'discovery.k8s.io', plural: 'endpointslices' };

function node(name: string, ip: string, o: { ready?: boolean; externalIP?: string; labels?: Record<string, string> } = {}): Node {
  const addresses = [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: name }];
  if (o.externalIP) addresses.push({ type: 'ExternalIP', address: o.externalIP });
  return {
    apiVersion: 'v1', kind: 'Node', metadata: { name, labels: o.labels },
    status: { addresses, conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  };
}

function lbService(name: string, spec: Partial<NonNullable<Service['spec']>> = {}): Service {
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'ns' },
    spec: { type: 'LoadBalancer', selector: { app: name }, ipFamilies: ['IPv4'], ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }], ...spec },
  };
}

async function until<T>(f: () => T | undefined | false, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const ingressOf = (server: FakeApiServer, name: string) =>
  ((server.getObject(services, 'ns', name) as Service | undefined)?.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).join(',');

test('ingress addresses: ExternalIPs win over InternalIPs, sorted, by IP family; enablelb selects nodes', () => {
  const ns = [node('b', '172.18.0.3'), node('a', '172.18.0.2'), node('c', 'fd00::5')];
  assert.deepEqual(desiredIngress(lbService('x'), ns), [{ ip: '172.18.0.2', ipMode: 'VIP' }, { ip: '172.18.0.3', ipMode: 'VIP' }]);
  assert.deepEqual(desiredIngress(lbService('x', { ipFamilies: ['IPv6', 'IPv4'] }), ns).map((i) => i.ip), ['fd00::5', '172.18.0.2', '172.18.0.3']);
  assert.deepEqual(desiredIngress(lbService('x'), [...ns, node('d', '172.18.0.4', { externalIP: '203.0.113.7' })]).map((i) => i.ip), ['203.0.113.7']);
  const pool = [node('a', '172.18.0.2', { labels: { 'svccontroller.k3s.cattle.io/enablelb': 'true' } }), node('b', '172.18.0.3'), node('c', '172.18.0.4', { ready: false })];
  assert.deepEqual(eligibleNodes(pool).map((n) => n.metadata!.name), ['a']);
  assert.deepEqual(eligibleNodes(pool.slice(1)).map((n) => n.metadata!.name), ['b']);
});

test('controller: LoadBalancer Services get the Ready nodes as ingress and follow node readiness and type changes', async (t) => {
  const server = await FakeApiServer.start();
  t.after(() => server.close());
  server.put(nodes, node('n1', '172.18.0.2'));
  server.put(nodes, node('n2', '172.18.0.3'));
  server.put(services, lbService('web'));
  server.put(services, lbService('other-lb', { loadBalancerClass: 'example.com/lb' }));
  server.put(services, { ...lbService('plain'), spec: { ...lbService('plain').spec, type: 'ClusterIP' } });
  const client = new RestClient({ server: server.url });
  const ac = new AbortController();
  const done = start(newControllerContext(client), ac.signal);
  t.after(async () => { ac.abort(); await done; client.close(); });

  await until(() => ingressOf(server, 'web') === '172.18.0.2,172.18.0.3', 'two ingress IPs');
  const ev = await until(() => server.listObjects(events).find((e) => (e as { reason?: string }).reason === 'UpdatedLoadBalancer'), 'event') as KObject & Record<string, unknown>;
  assert.equal(ev.message, 'Updated LoadBalancer with new IPs: [] -> [172.18.0.2 172.18.0.3]');

  // n2 goes NotReady: it leaves the ingress; both NotReady: none (and a warning)
  server.put(nodes, node('n2', '172.18.0.3', { ready: false }));
  await until(() => ingressOf(server, 'web') === '172.18.0.2', 'n2 removed');
  server.put(nodes, node('n1', '172.18.0.2', { ready: false }));
  await until(() => ingressOf(server, 'web') === '', 'no ingress');
  await until(() => server.listObjects(events).some((e) => (e as { reason?: string }).reason === 'UnAvailableLoadBalancer'), 'warning');
  server.put(nodes, node('n1', '172.18.0.2'));
  await until(() => ingressOf(server, 'web') === '172.18.0.2', 'n1 back');

  // externalTrafficPolicy Local: only nodes with a ready endpoint
  const web = server.getObject(services, 'ns', 'web') as Service;
  server.put(nodes, node('n2', '172.18.0.3'));
  await until(() => ingressOf(server, 'web') === '172.18.0.2,172.18.0.3', 'both again');
  server.put(services, { ...web, spec: { ...web.spec, externalTrafficPolicy: 'Local' } });
  await until(() => ingressOf(server, 'web') === '', 'no local endpoints yet');
  server.put(slices, {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: 'web-abc', namespace: 'ns', labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4', endpoints: [{ addresses: ['10.42.1.5'], conditions: { ready: true }, nodeName: 'n2', targetRef: { kind: 'Pod', name: 'p', namespace: 'ns' } }],
  });
  await until(() => ingressOf(server, 'web') === '172.18.0.3', 'only n2');

  // a Service that stops being a LoadBalancer loses its ingress
  const cur = server.getObject(services, 'ns', 'web') as Service;
  server.put(services, { ...cur, spec: { ...cur.spec, type: 'ClusterIP' } });
  await until(() => ingressOf(server, 'web') === '', 'ingress cleared');

  // never touched: a Service with a loadBalancerClass, and a ClusterIP one
  assert.equal(ingressOf(server, 'other-lb'), '');
  assert.equal(ingressOf(server, 'plain'), '');
  assert.ok(!server.requests.some((r) => r.method === 'PUT' && (r.url.includes('/services/other-lb') || r.url.includes('/services/plain'))));
});
