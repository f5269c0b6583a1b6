// From Service + EndpointSlices to ServicePortPlans: which Services and ports are proxied, which
// endpoints get traffic (ready, else serving-terminating), destinations per type, and conflicts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../api/types.js';
import { Claims, buildServicePlans, compareServices, isIPv4CIDR, skipReason } from './service-model.js';

function svc(spec: Record<string, unknown>, extra: Partial<KObject> = {}): KObject {
  return { metadata: { namespace: 'ns', name: 'web' }, spec: { type: 'ClusterIP', clusterIP: '10.43.0.5', ports: [{ name: 'http', port: 80, protocol: 'TCP' }], ...spec }, ...extra };
}

function slice(endpoints: Array<{ ip: string; ready?: boolean | null; serving?: boolean; terminating?: boolean; node?: string }>, ports = [{ name: 'http', port: 8080, protocol: 'TCP' }], addressType = 'IPv4'): KObject {
  return {
    metadata: { namespace: 'ns', name: `web-${Math.random()}` }, addressType, ports,
    endpoints: endpoints.map((e) => {
      const conditions: Record<string, unknown> = {};
      if (e.ready !== undefined) conditions.ready = e.ready;
      if (e.serving !== undefined) conditions.serving = e.serving;
      if (e.terminating !== undefined) conditions.terminating = e.terminating;
      return { addresses: [e.ip], conditions, ...(e.node ? { nodeName: e.node } : {}) };
    }),
  };
}

test('a ClusterIP Service: one plan per TCP/UDP port, endpoints by port name and protocol', () => {
  const s = svc({ ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }, { name: 'sig', port: 9, protocol: 'SCTP' }] });
  const plans = buildServicePlans(s, [slice([{ ip: '10.42.0.3' }, { ip: '10.42.0.2' }], [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 5353, protocol: 'UDP' }])]);
  assert.deepEqual(plans.map((p) => [p.key, p.port, p.endpoints]), [
    ['ns/web/tcp/http', 80, [{ ip: '10.42.0.2', port: 8080 }, { ip: '10.42.0.3', port: 8080 }]],
    ['ns/web/udp/dns', 53, [{ ip: '10.42.0.2', port: 5353 }, { ip: '10.42.0.3', port: 5353 }]],
  ]);
  assert.deepEqual(plans[0].clusterIPs, ['10.43.0.5']);
  assert.equal(plans[0].nodePort, undefined, 'ClusterIP type: node port ignored');
  assert.equal(plans[0].affinityTimeoutSeconds, undefined);
});

test('ready endpoints win; without any, serving+terminating ones; nil conditions read as upstream', () => {
  const s = svc({});
  const pick = (eps: Parameters<typeof slice>[0]): string[] => buildServicePlans(s, [slice(eps)])[0].endpoints.map((e) => e.ip);
  assert.deepEqual(pick([{ ip: '10.0.0.1' }, { ip: '10.0.0.2', ready: null }]), ['10.0.0.1', '10.0.0.2'], 'unset ready is ready');
  assert.deepEqual(pick([{ ip: '10.0.0.1', ready: true }, { ip: '10.0.0.2', ready: false, serving: true, terminating: true }]), ['10.0.0.1']);
  assert.deepEqual(pick([
    { ip: '10.0.0.1', ready: false, serving: true, terminating: true },
    { ip: '10.0.0.2', ready: false, serving: false, terminating: true },
    { ip: '10.0.0.3', ready: false }, // not ready, serving unset → as ready (false), not terminating
  ]), ['10.0.0.1']);
  assert.deepEqual(pick([{ ip: '10.0.0.3', ready: false, serving: true }]), [], 'serving but not terminating is no fallback');
  assert.deepEqual(pick([]), []);
});

test('slices: several merge, duplicates count once, IPv6 and unmatched ports are ignored', () => {
  const s = svc({});
  const plans = buildServicePlans(s, [
    slice([{ ip: '10.0.0.1', ready: false }, { ip: '10.0.0.2' }]),
    slice([{ ip: '10.0.0.1', ready: true }]),
    slice([{ ip: 'fd00::1' }], undefined, 'IPv6'),
    slice([{ ip: '10.0.0.9' }], [{ name: 'other', port: 1, protocol: 'TCP' }]),
    slice([{ ip: '10.0.0.8' }], [{ name: 'http', port: 8080, protocol: 'UDP' }]),
  ]);
  assert.deepEqual(plans[0].endpoints, [{ ip: '10.0.0.1', port: 8080 }, { ip: '10.0.0.2', port: 8080 }]);
});

test('NodePort and LoadBalancer: node ports, ingress IPs, externalIPs; affinity timeout', () => {
  const lb = svc({
    type: 'LoadBalancer', externalIPs: ['192.0.2.10', 'bogus'], sessionAffinity: 'ClientIP',
    ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }],
  }, { status: { loadBalancer: { ingress: [{ ip: '192.0.2.20' }, { hostname: 'lb.example' }, { ip: '192.0.2.10' }] } } });
  const [p] = buildServicePlans(lb, []);
  assert.equal(p.nodePort, 30080);
  assert.deepEqual(p.externalIPs, ['192.0.2.10', '192.0.2.20']);
  assert.equal(p.affinityTimeoutSeconds, 10800, 'upstream default');
  assert.deepEqual(p.endpoints, []);
  const np = svc({ type: 'NodePort', sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } }, ports: [{ port: 80, protocol: 'TCP', nodePort: 31000 }] }, { status: { loadBalancer: { ingress: [{ ip: '192.0.2.20' }] } } });
  const [q] = buildServicePlans(np, []);
  assert.equal(q.key, 'ns/web/tcp/');
  assert.equal(q.nodePort, 31000);
  assert.deepEqual(q.externalIPs, [], 'ingress IPs only for type LoadBalancer');
  assert.equal(q.affinityTimeoutSeconds, 60);
});

test('Services that are not proxied', () => {
  assert.equal(skipReason(svc({ type: 'ExternalName', externalName: 'x.example' })), 'type ExternalName');
  assert.equal(skipReason(svc({ clusterIP: 'None' })), 'headless');
  assert.equal(skipReason(svc({ clusterIP: undefined })), 'no cluster IP yet');
  assert.match(skipReason(svc({ clusterIP: 'fd00::5' }))!, /not IPv4/);
  assert.deepEqual(buildServicePlans(svc({ clusterIP: 'None' }), []), []);
  assert.equal(skipReason(svc({})), undefined);
});

test('Claims: a destination belongs to the first Service that claims it until released', () => {
  const claims = new Claims();
  const warnings: string[] = [];
  const [a] = buildServicePlans(svc({ type: 'NodePort', ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }] }), []);
  const [b] = buildServicePlans(svc({ type: 'NodePort', externalIPs: ['10.43.0.5'], clusterIP: '10.43.0.6', ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }] }, { metadata: { namespace: 'ns', name: 'other' } }), []);
  assert.deepEqual(claims.claim(a, (m) => warnings.push(m)), a);
  const b1 = claims.claim(b, (m) => warnings.push(m));
  assert.deepEqual(b1.clusterIPs, ['10.43.0.6']);
  assert.deepEqual(b1.externalIPs, [], 'a\'s cluster IP:port is taken');
  assert.equal(b1.nodePort, undefined, 'node port taken');
  assert.equal(warnings.length, 2);
  assert.match(warnings[0], /ns\/other:http: 10\.43\.0\.5:80\/tcp is already used by ns\/web\/tcp\/http/);
  claims.release(a.key);
  claims.release(b.key);
  const b2 = claims.claim(b);
  assert.deepEqual(b2, b);
  // re-claiming one's own destinations is fine
  claims.release(b.key);
  assert.deepEqual(claims.claim(b), b);
});

test('helpers', () => {
  assert.ok(isIPv4CIDR('10.42.0.0/16'));
  assert.ok(!isIPv4CIDR('10.42.0.0'));
  assert.ok(!isIPv4CIDR('10.42.0.0/33'));
  const older = { metadata: { namespace: 'b', name: 'x', creationTimestamp: '2024-01-01T00:00:00Z' } };
  const newer = { metadata: { namespace: 'a', name: 'x', creationTimestamp: '2024-01-02T00:00:00Z' } };
  assert.deepEqual([newer, older].sort(compareServices), [older, newer]);
});

test('traffic policies: Local keeps this node\'s endpoints apart; Cluster (the default) adds nothing', () => {
  const eps = slice([{ ip: '10.42.1.2', node: 'other' }, { ip: '10.42.0.3', node: 'me' }, { ip: '10.42.0.4', node: 'me', ready: false }, { ip: '10.42.0.9' }]);
  const [cluster] = buildServicePlans(svc({ type: 'NodePort', ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }], internalTrafficPolicy: 'Cluster', externalTrafficPolicy: 'Cluster' }), [eps], 'me');
  assert.deepEqual(cluster.endpoints.map((e) => e.ip), ['10.42.0.3', '10.42.0.9', '10.42.1.2']);
  assert.equal(cluster.localEndpoints, undefined);
  assert.equal(cluster.internalLocal, undefined);
  assert.equal(cluster.externalLocal, undefined);

  const [itp] = buildServicePlans(svc({ internalTrafficPolicy: 'Local' }), [eps], 'me');
  assert.equal(itp.internalLocal, true);
  assert.equal(itp.externalLocal, undefined);
  assert.deepEqual(itp.localEndpoints, [{ ip: '10.42.0.3', port: 8080 }], 'only ready local endpoints');
  assert.equal(itp.endpoints.length, 3, 'all endpoints stay known (they decide reject vs drop)');

  const [etp] = buildServicePlans(svc({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }] }), [eps], 'me');
  assert.deepEqual([etp.internalLocal, etp.externalLocal], [undefined, true]);
  assert.deepEqual(etp.localEndpoints, [{ ip: '10.42.0.3', port: 8080 }]);

  // externalTrafficPolicy Local only matters where the port is reachable from outside
  const [noExternal] = buildServicePlans(svc({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }), [eps], 'me');
  assert.equal(noExternal.externalLocal, undefined, 'no node port, no ingress, no externalIPs');
  const [viaExternalIP] = buildServicePlans(svc({ externalIPs: ['192.0.2.9'], externalTrafficPolicy: 'Local' }), [eps], 'me');
  assert.equal(viaExternalIP.externalLocal, true);

  // another node name, or none: no local endpoint
  assert.deepEqual(buildServicePlans(svc({ internalTrafficPolicy: 'Local' }), [eps], 'elsewhere')[0].localEndpoints, []);
  assert.deepEqual(buildServicePlans(svc({ internalTrafficPolicy: 'Local' }), [eps])[0].localEndpoints, []);
});

test('traffic policies: local endpoints fall back to local serving-terminating ones, independently of the rest', () => {
  const eps = slice([
    { ip: '10.42.1.2', node: 'other' },
    { ip: '10.42.0.3', node: 'me', ready: false, serving: true, terminating: true },
    { ip: '10.42.0.4', node: 'me', ready: false, serving: false, terminating: true },
  ]);
  const [p] = buildServicePlans(svc({ internalTrafficPolicy: 'Local' }), [eps], 'me');
  assert.deepEqual(p.endpoints.map((e) => e.ip), ['10.42.1.2'], 'cluster-wide a ready endpoint exists');
  assert.deepEqual(p.localEndpoints!.map((e) => e.ip), ['10.42.0.3'], 'locally only a serving-terminating one');
  // the same address in two slices is local if either says so
  const [q] = buildServicePlans(svc({ internalTrafficPolicy: 'Local' }), [slice([{ ip: '10.42.0.5' }]), slice([{ ip: '10.42.0.5', node: 'me' }])], 'me');
  assert.deepEqual(q.localEndpoints, [{ ip: '10.42.0.5', port: 8080 }]);
});
