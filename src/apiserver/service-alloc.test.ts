import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceAllocator, ServiceCIDR, PortRange, parseIPv4, formatIPv4, setKubernetesServiceAddress } from './service-alloc.js';
import { startApiServer } from './server.js';
import { findResource } from '../api/resources.js';
import { MemoryStore } from '../storage/memory/memory-store.js';
import { StatusError } from '../machinery/status.js';
import { defaulters } from '../api/defaults.js';
import { validators } from '../api/validation.js';
import type { KObject } from '../api/types.js';

type Svc = KObject & { spec: any; status?: any };

/** A Service as the registry hands it to the allocator: defaulted, with namespace set. */
function svc(name: string, spec: Record<string, unknown>, ns = 'default'): Svc {
  const o: Svc = { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: structuredClone(spec) };
  defaulters.Service!(o);
  return o;
}
const web = (extra: Record<string, unknown> = {}) => ({ selector: { app: 'web' }, ports: [{ port: 80 }], ...extra });
const np = (extra: Record<string, unknown> = {}) => web({ type: 'NodePort', ...extra });

function message(fn: () => unknown): string {
  try { fn(); } catch (e) { assert.ok(e instanceof StatusError, String(e)); return `${e.code} ${e.message}`; }
  assert.fail('expected an error');
}

test('ranges: CIDR and port range parsing, bands for static requests', () => {
  const c = new ServiceCIDR('10.43.0.0/16');
  assert.equal(c.toString(), '10.43.0.0/16');
  assert.equal(formatIPv4(c.first), '10.43.0.1');
  assert.equal(c.max, 65534);
  assert.equal(c.staticBand, 256);
  assert.ok(c.has(parseIPv4('10.43.255.254')!));
  assert.ok(!c.has(parseIPv4('10.43.255.255')!), 'broadcast address');
  assert.ok(!c.has(parseIPv4('10.43.0.0')!), 'network address');
  assert.equal(new ServiceCIDR('10.96.7.9/12').toString(), '10.96.0.0/12');
  assert.equal(new ServiceCIDR('192.168.5.0/24').staticBand, 16);
  assert.equal(new ServiceCIDR('192.168.5.0/28').staticBand, 0);
  assert.throws(() => new ServiceCIDR('10.43.0.0'), /invalid service CIDR/);
  assert.throws(() => new ServiceCIDR('fd00::/108'), /invalid service CIDR/);
  assert.throws(() => new ServiceCIDR('10.0.0.0/8'), /too large/);
  const p = new PortRange('30000-32767');
  assert.deepEqual([p.base, p.size, p.staticBand, p.toString()], [30000, 2768, 86, '30000-32767']);
  assert.equal(new PortRange('30000+99').toString(), '30000-30099');
  assert.throws(() => new PortRange('32767-30000'), /invalid port range/);
  assert.equal(parseIPv4('010.043.000.001'), parseIPv4('10.43.0.1'));
});

test('create: a dynamic cluster IP from the upper band, IP family fields filled', () => {
  const a = new ServiceAllocator();
  const s = svc('web', web());
  a.allocateCreate(s);
  const ip = parseIPv4(s.spec.clusterIP)!;
  assert.ok(ip >= parseIPv4('10.43.1.1')! && ip <= parseIPv4('10.43.255.254')!, s.spec.clusterIP);
  assert.deepEqual(s.spec.clusterIPs, [s.spec.clusterIP]);
  assert.deepEqual(s.spec.ipFamilies, ['IPv4']);
  assert.equal(s.spec.ipFamilyPolicy, 'SingleStack');
  assert.deepEqual(s.status, { loadBalancer: {} });
  assert.deepEqual(validators.Service!(s), []);
});

test('create: a requested cluster IP is honoured when in range and free, else upstream errors', () => {
  const a = new ServiceAllocator();
  const s = svc('dns', web({ clusterIP: '10.43.0.10' }));
  a.allocateCreate(s);
  assert.deepEqual([s.spec.clusterIP, s.spec.clusterIPs], ['10.43.0.10', ['10.43.0.10']]);
  assert.equal(message(() => a.allocateCreate(svc('x', web({ clusterIP: '10.43.0.10' })))),
    '422 Service "x" is invalid: spec.clusterIPs: Invalid value: []string{"10.43.0.10"}: failed to allocate IP 10.43.0.10: provided IP is already allocated');
  assert.equal(message(() => a.allocateCreate(svc('x', web({ clusterIP: '1.2.3.4' })))),
    '422 Service "x" is invalid: spec.clusterIPs: Invalid value: []string{"1.2.3.4"}: failed to allocate IP 1.2.3.4: the provided IP (1.2.3.4) is not in the valid range. The range of valid IPs is 10.43.0.0/16');
  // the first address belongs to default/kubernetes
  assert.match(message(() => a.allocateCreate(svc('x', web({ clusterIP: '10.43.0.1' })))), /provided IP is already allocated/);
  const k = svc('kubernetes', { ports: [{ name: 'https', port: 443, targetPort: 6443 }], clusterIP: '10.43.0.1' });
  a.allocateCreate(k);
  assert.equal(k.spec.clusterIP, '10.43.0.1');
  // not an IP, or an IPv6 one on this IPv4 cluster
  assert.equal(message(() => a.allocateCreate(svc('x', web({ clusterIP: 'abc' })))),
    '422 Service "x" is invalid: spec.clusterIPs[0]: Invalid value: "abc": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)');
  assert.equal(message(() => a.allocateCreate(svc('x', web({ clusterIP: 'fd00::10', clusterIPs: ['fd00::10'] })))),
    '422 Service "x" is invalid: spec.clusterIPs[0]: Invalid value: []string{"fd00::10"}: IPv6 is not configured on this cluster');
  assert.equal(message(() => a.allocateCreate(svc('x', web({ ipFamilyPolicy: 'RequireDualStack' })))),
    '422 Service "x" is invalid: spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services');
});

test('create: headless and ExternalName Services get no IP', () => {
  const a = new ServiceAllocator();
  const h = svc('h', web({ clusterIP: 'None' }));
  a.allocateCreate(h);
  assert.deepEqual([h.spec.clusterIP, h.spec.clusterIPs, h.spec.ipFamilies, h.spec.ipFamilyPolicy], ['None', ['None'], ['IPv4'], 'SingleStack']);
  // headless without a selector: RequireDualStack, both families (upstream does this on any cluster)
  const hs = svc('hs', { clusterIP: 'None', ports: [{ port: 80 }] });
  a.allocateCreate(hs);
  assert.deepEqual([hs.spec.ipFamilies, hs.spec.ipFamilyPolicy], [['IPv4', 'IPv6'], 'RequireDualStack']);
  const en = svc('en', { type: 'ExternalName', externalName: 'example.com' });
  a.allocateCreate(en);
  assert.deepEqual([en.spec.clusterIP, en.spec.clusterIPs, en.spec.ipFamilies, en.spec.ipFamilyPolicy], [undefined, undefined, undefined, undefined]);
  assert.deepEqual(validators.Service!(en), []);
  assert.deepEqual(validators.Service!(hs), []);
});

test('create: node ports per port, requested ones honoured, shared by the same port number', () => {
  const a = new ServiceAllocator();
  const s = svc('np', np({ ports: [{ name: 'http', port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP', nodePort: 30053 }] }));
  a.allocateCreate(s);
  const [p80, p53u, p53t] = s.spec.ports.map((p: any) => p.nodePort);
  assert.ok(p80 >= 30086 && p80 <= 32767, String(p80));
  assert.deepEqual([p53u, p53t], [30053, 30053]);
  assert.deepEqual(validators.Service!(s), []);
  assert.equal(message(() => a.allocateCreate(svc('x', np({ ports: [{ port: 80, nodePort: 30053 }] })))),
    '422 Service "x" is invalid: spec.ports[0].nodePort: Invalid value: 30053: provided port is already allocated');
  assert.equal(message(() => a.allocateCreate(svc('x', np({ ports: [{ port: 80, nodePort: 8080 }] })))),
    '422 Service "x" is invalid: spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767');
  // a failed create leaves nothing behind: its cluster IP and the ports it got before the error are free
  assert.equal(a.pending, 1);
});

test('create: LoadBalancer node ports, allocateLoadBalancerNodePorts false, healthCheckNodePort for Local', () => {
  const a = new ServiceAllocator();
  const lb = svc('lb', web({ type: 'LoadBalancer' }));
  a.allocateCreate(lb);
  assert.ok(lb.spec.ports[0].nodePort > 0);
  assert.equal(lb.spec.healthCheckNodePort, undefined);
  const none = svc('none', web({ type: 'LoadBalancer', allocateLoadBalancerNodePorts: false, ports: [{ name: 'a', port: 80 }, { name: 'b', port: 81, nodePort: 30081 }] }));
  a.allocateCreate(none);
  assert.deepEqual(none.spec.ports.map((p: any) => p.nodePort), [undefined, 30081]);
  const local = svc('local', web({ type: 'LoadBalancer', externalTrafficPolicy: 'Local' }));
  a.allocateCreate(local);
  assert.ok(local.spec.healthCheckNodePort >= 30000 && local.spec.healthCheckNodePort !== local.spec.ports[0].nodePort);
  assert.deepEqual(validators.Service!(local), []);
  assert.equal(message(() => a.allocateCreate(svc('x', web({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', healthCheckNodePort: 30081 })))),
    '500 Internal error occurred: failed to allocate requested HealthCheck NodePort 30081: provided port is already allocated');
});

test('concurrent creates never share a value; a full range is an internal error', () => {
  const a = new ServiceAllocator({ serviceCIDR: '10.0.0.0/28', nodePortRange: '30000-30009' });
  const ips = new Set<string>();
  const ports = new Set<number>();
  for (let i = 0; i < 10; i++) {
    const s = svc(`s${i}`, np());
    a.allocateCreate(s); // none finished: all reservations are open at once
    ips.add(s.spec.clusterIP);
    ports.add(s.spec.ports[0].nodePort);
  }
  assert.equal(ips.size, 10);
  assert.equal(ports.size, 10);
  assert.ok(!ips.has('10.0.0.1'), 'the kubernetes address is never handed out');
  assert.equal(message(() => a.allocateCreate(svc('full', np()))), '500 Internal error occurred: failed to allocate a nodePort: range is full');
  for (let i = 10; i < 13; i++) a.allocateCreate(svc(`c${i}`, web()));
  assert.equal(message(() => a.allocateCreate(svc('full', web()))), '500 Internal error occurred: failed to allocate a serviceIP: range is full');
});

test('reservations: given back when the write fails, kept until the cache has the Service', () => {
  let applied = 0;
  const a = new ServiceAllocator({ appliedRev: () => applied });
  const s = svc('a', np({ clusterIP: '10.43.0.20', ports: [{ port: 80, nodePort: 30020 }] }));
  const r = a.allocateCreate(s);
  a.finish(r); // the store write failed
  assert.equal(a.pending, 0);
  const again = svc('b', np({ clusterIP: '10.43.0.20', ports: [{ port: 80, nodePort: 30020 }] }));
  const r2 = a.allocateCreate(again);
  a.finish(r2, 7); // written at revision 7, cache not there yet: still reserved
  assert.equal(a.pending, 1);
  assert.match(message(() => a.allocateCreate(svc('c', web({ clusterIP: '10.43.0.20' })))), /already allocated/);
  a.observe('default/b', again, 7); // the cache applies revision 7: the Service holds the values now
  applied = 7;
  assert.equal(a.pending, 0);
  assert.deepEqual(a.ipHolders('10.43.0.20'), ['default/b']);
  assert.deepEqual(a.portHolders(30020), ['default/b']);
  assert.match(message(() => a.allocateCreate(svc('c', web({ clusterIP: '10.43.0.20' })))), /already allocated/);
  a.observe('default/b', undefined, 8); // deleted
  const c = svc('c', np({ clusterIP: '10.43.0.20', ports: [{ port: 80, nodePort: 30020 }] }));
  a.allocateCreate(c);
  assert.equal(c.spec.clusterIP, '10.43.0.20');
  // a write that the cache applied before finish was called is dropped at once
  const d = a.allocateCreate(svc('d', web()));
  a.finish(d, 5);
  assert.equal(a.pending, 1); // only c's
});

test('state rebuilt from stored Services (restart)', () => {
  const first = new ServiceAllocator();
  const stored = [svc('a', np({ ports: [{ port: 80, nodePort: 30080 }] })), svc('b', web({ clusterIP: '10.43.0.50' }))];
  for (const s of stored) first.allocateCreate(s);
  const second = new ServiceAllocator();
  for (const s of stored) second.observe(`default/${s.metadata!.name}`, s);
  assert.match(message(() => second.allocateCreate(svc('x', web({ clusterIP: stored[0].spec.clusterIP })))), /provided IP is already allocated/);
  assert.match(message(() => second.allocateCreate(svc('x', web({ clusterIP: '10.43.0.50' })))), /provided IP is already allocated/);
  assert.match(message(() => second.allocateCreate(svc('x', np({ ports: [{ port: 80, nodePort: 30080 }] })))), /provided port is already allocated/);
  assert.deepEqual(second.problems(stored), []);
  const clash = svc('c', web({ clusterIP: '10.43.0.50' }));
  second.observe('default/c', clash);
  assert.deepEqual(second.problems([...stored, clash]), ['cluster IP 10.43.0.50 is held by more than one Service: default/b, default/c']);
});

/** Run an update as the registry does: defaults on the body, then the allocator, then validation. */
function update(a: ServiceAllocator, cur: Svc, change: (s: any) => void): { next: Svc; errs: string[] } {
  const next = structuredClone(cur);
  change(next.spec);
  defaulters.Service!(next);
  a.allocateUpdate(next, structuredClone(cur));
  return { next, errs: validators.Service!(next, cur).map((e) => `${e.field}: ${e.message}`) };
}

test('update: values left out are kept; a changed clusterIP is refused as upstream', () => {
  const a = new ServiceAllocator();
  const cur = svc('web', np({ ports: [{ name: 'http', port: 80 }] }));
  a.allocateCreate(cur);
  a.observe('default/web', cur);
  const kept = update(a, cur, (s) => { delete s.clusterIP; delete s.clusterIPs; delete s.ports[0].nodePort; s.selector = { app: 'v2' }; });
  assert.deepEqual(kept.errs, []);
  assert.equal(kept.next.spec.clusterIP, cur.spec.clusterIP);
  assert.equal(kept.next.spec.ports[0].nodePort, cur.spec.ports[0].nodePort);
  const moved = update(a, cur, (s) => { s.clusterIP = '10.43.0.99'; });
  assert.deepEqual(moved.errs, ['spec.clusterIPs[0]: Invalid value: []string{"10.43.0.99"}: may not change once set']);
});

test('update: type changes release and allocate', () => {
  const a = new ServiceAllocator();
  const cur = svc('web', np({ ports: [{ port: 80, nodePort: 30080 }] }));
  a.allocateCreate(cur);
  a.observe('default/web', cur);
  // NodePort → ClusterIP: the node port is dropped, and free once the change is stored
  const toCIP = update(a, cur, (s) => { s.type = 'ClusterIP'; });
  assert.deepEqual(toCIP.errs, []);
  assert.equal(toCIP.next.spec.ports[0].nodePort, undefined);
  assert.equal(toCIP.next.spec.externalTrafficPolicy, undefined);
  a.observe('default/web', toCIP.next);
  assert.deepEqual(a.portHolders(30080), []);
  // ClusterIP → ExternalName: the cluster IP and the family fields go
  const ip = toCIP.next.spec.clusterIP;
  const toEN = update(a, toCIP.next, (s) => { s.type = 'ExternalName'; s.externalName = 'example.com'; });
  assert.deepEqual(toEN.errs, []);
  assert.deepEqual([toEN.next.spec.clusterIP, toEN.next.spec.clusterIPs, toEN.next.spec.ipFamilies, toEN.next.spec.ipFamilyPolicy], [undefined, undefined, undefined, undefined]);
  a.observe('default/web', toEN.next);
  assert.deepEqual(a.ipHolders(ip), []);
  // ExternalName → NodePort: a new IP and node port
  const back = update(a, toEN.next, (s) => { s.type = 'NodePort'; delete s.externalName; });
  assert.deepEqual(back.errs, []);
  assert.ok(back.next.spec.clusterIP && back.next.spec.ports[0].nodePort);
  // a LoadBalancer switched to externalTrafficPolicy Local gets a health check port
  const lb = svc('lb', web({ type: 'LoadBalancer' }));
  a.allocateCreate(lb);
  const local = update(a, lb, (s) => { s.externalTrafficPolicy = 'Local'; });
  assert.deepEqual(local.errs, []);
  assert.ok(local.next.spec.healthCheckNodePort > 0);
});

test('update: a new node port must be free', () => {
  const a = new ServiceAllocator();
  const other = svc('other', np({ ports: [{ port: 80, nodePort: 30090 }] }));
  a.allocateCreate(other);
  a.observe('default/other', other);
  const cur = svc('web', np());
  a.allocateCreate(cur);
  a.observe('default/web', cur);
  assert.equal(message(() => update(a, cur, (s) => { s.ports[0].nodePort = 30090; })),
    '422 Service "web" is invalid: spec.ports[0].nodePort: Invalid value: 30090: provided port is already allocated');
  const moved = update(a, cur, (s) => { s.ports[0].nodePort = 30091; });
  assert.deepEqual(moved.errs, []);
  assert.equal(moved.next.spec.ports[0].nodePort, 30091);
});

/** Default then validate, as the registry does (create when old is absent). */
function check(spec: Record<string, unknown>, old?: Svc, meta: Record<string, unknown> = {}): string[] {
  const o = svc('web', spec);
  Object.assign(o.metadata!, meta);
  return validators.Service!(o, old).map((e) => `${e.field}: ${e.message}`);
}

test('validation: type-specific rules in upstream wording', () => {
  assert.deepEqual(check(web({ ports: [{ port: 80, nodePort: 30000 }] })), ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]);
  assert.deepEqual(check({ type: 'ExternalName' }), ['spec.externalName: Required value']);
  assert.deepEqual(check({ type: 'ExternalName', externalName: 'db.example.com.', clusterIP: '10.43.0.5' }), ['spec.clusterIPs: Forbidden: may not be set for ExternalName services']);
  assert.deepEqual(check(np({ clusterIP: 'None' })), ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"]);
  assert.deepEqual(check(web({ type: 'LoadBalancer', clusterIP: 'None' })), ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for LoadBalancer services"]);
  assert.deepEqual(check({ selector: { app: 'web' } }), ['spec.ports: Required value']);
  assert.deepEqual(check({ clusterIP: 'None' }), [], 'headless Services need no ports');
  assert.deepEqual(check(web({ loadBalancerSourceRanges: ['10.0.0.0/8'] })), ["spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"]);
  assert.deepEqual(check(web({ type: 'LoadBalancer', loadBalancerSourceRanges: ['10.0.0.0/33'] })), ['spec.LoadBalancerSourceRanges[0]: Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)']);
  assert.deepEqual(check(web({ allocateLoadBalancerNodePorts: false })), ["spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is 'LoadBalancer'"]);
  assert.deepEqual(check(web({ loadBalancerClass: 'example.com/lb' })), ["spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'"]);
});

test('validation: ports, selector, session affinity, traffic policies, external IPs', () => {
  assert.deepEqual(check(web({ ports: [{ port: 80 }, { port: 443 }] })), ['spec.ports[0].name: Required value', 'spec.ports[1].name: Required value']);
  assert.deepEqual(check(web({ ports: [{ name: 'HTTP', port: 80, targetPort: 'web-http-port-long' }] })), [
    'spec.ports[0].name: Invalid value: "HTTP": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\', and must start and end with an alphanumeric character (e.g. \'my-name\',  or \'123-abc\', regex used for validation is \'[a-z0-9]([-a-z0-9]*[a-z0-9])?\')',
    'spec.ports[0].targetPort: Invalid value: "web-http-port-long": must be no more than 15 characters',
  ]);
  assert.deepEqual(check(web({ ports: [{ name: 'a', port: 70000, protocol: 'TCP', targetPort: 8080 }, { name: 'a', port: 53, protocol: 'ICMP' }] })), [
    'spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive',
    'spec.ports[1].name: Duplicate value: "a"',
    'spec.ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
  ]);
  assert.deepEqual(check(web({ ports: [{ port: 80, appProtocol: 'not a protocol' }] })).length, 1);
  assert.match(check(web({ selector: { app: 'no good' } }))[0], /^spec\.selector: Invalid value: "no good": a valid label must be/);
  assert.deepEqual(check(web({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } } })), ['spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 0: must be greater than 0 and less than 86400']);
  assert.deepEqual(check(web({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 86400 } } })), []);
  assert.deepEqual(check(web({ sessionAffinity: 'Sticky' })), ['spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", "None"']);
  assert.deepEqual(check(web({ externalTrafficPolicy: 'Local' })), ['spec.externalTrafficPolicy: Invalid value: "Local": may only be set for externally-accessible services']);
  assert.deepEqual(check(np({ externalTrafficPolicy: 'Foo' })), ['spec.externalTrafficPolicy: Unsupported value: "Foo": supported values: "Cluster", "Local"']);
  assert.deepEqual(check(np({ healthCheckNodePort: 30001 })), ["spec.healthCheckNodePort: Invalid value: 30001: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"]);
  assert.deepEqual(check(web({ type: 'LoadBalancer', externalTrafficPolicy: 'Local' })), ['spec.healthCheckNodePort: Required value']);
  assert.deepEqual(check(web({ internalTrafficPolicy: 'Nearby', trafficDistribution: 'Anywhere' })), [
    'spec.internalTrafficPolicy: Unsupported value: "Nearby": supported values: "Cluster", "Local"',
    'spec.trafficDistribution: Unsupported value: "Anywhere": supported values: "PreferClose"',
  ]);
  assert.deepEqual(check(web({ externalIPs: ['127.0.0.1', '0.0.0.0', 'x', '203.0.113.7'] })), [
    'spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
    'spec.externalIPs[1]: Invalid value: "0.0.0.0": may not be unspecified (0.0.0.0)',
    'spec.externalIPs[2]: Invalid value: "x": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)',
  ]);
  assert.deepEqual(check(web({ clusterIP: '10.43.0.5', clusterIPs: ['10.43.0.6'] })), ['spec.clusterIPs: Invalid value: []string{"10.43.0.6"}: first value must match `clusterIP`']);
  assert.deepEqual(check(web(), undefined, { annotations: { 'service.kubernetes.io/topology-mode': 'Auto', 'service.kubernetes.io/topology-aware-hints': 'Disabled' } }),
    ['metadata.annotations[service.kubernetes.io/topology-mode]: Invalid value: "Auto": must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified']);
});

test('validation: what may not change on update', () => {
  const a = new ServiceAllocator();
  const lb = svc('web', web({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', loadBalancerClass: 'example.com/a' }));
  a.allocateCreate(lb);
  const next = (change: (s: any) => void): string[] => {
    const n = structuredClone(lb);
    change(n.spec);
    return validators.Service!(n, lb).map((e) => `${e.field}: ${e.message}`);
  };
  assert.deepEqual(next(() => {}), []);
  assert.deepEqual(next((s) => { s.loadBalancerClass = 'example.com/b'; }), ['spec.loadBalancerClass: Invalid value: "example.com/b": may not change once set']);
  assert.deepEqual(next((s) => { s.healthCheckNodePort += 1; }), ['spec.healthCheckNodePort: Forbidden: field is immutable']);
  assert.deepEqual(next((s) => { s.clusterIPs = ['10.43.0.7']; s.clusterIP = '10.43.0.7'; }), ['spec.clusterIPs[0]: Invalid value: []string{"10.43.0.7"}: may not change once set']);
});

test('healthCheckNodePort: held while Local, freed when the policy, the type or the Service goes', () => {
  const a = new ServiceAllocator();
  const lb = (extra: Record<string, unknown> = {}) => web({ type: 'LoadBalancer', externalTrafficPolicy: 'Local', ports: [{ port: 80, nodePort: 30080 }], ...extra });
  const cur = svc('lb', lb({ healthCheckNodePort: 30081 }));
  a.allocateCreate(cur);
  a.observe('default/lb', cur);
  assert.deepEqual(a.portHolders(30081), ['default/lb']);
  // resubmitted without it (kubectl replace of the original manifest): kept
  const kept = update(a, cur, (s) => { delete s.healthCheckNodePort; });
  assert.deepEqual(kept.errs, []);
  assert.equal(kept.next.spec.healthCheckNodePort, 30081);
  // changing it while Local is refused by validation, as upstream
  assert.deepEqual(update(a, cur, (s) => { s.healthCheckNodePort = 30082; }).errs, ['spec.healthCheckNodePort: Forbidden: field is immutable']);
  // Local → Cluster: dropped, and free once stored
  const cluster = update(a, cur, (s) => { s.externalTrafficPolicy = 'Cluster'; });
  assert.deepEqual(cluster.errs, []);
  assert.equal(cluster.next.spec.healthCheckNodePort, undefined);
  a.observe('default/lb', cluster.next);
  assert.deepEqual(a.portHolders(30081), []);
  assert.deepEqual(a.portHolders(30080), ['default/lb'], 'the node port stays');
  // back to Local asking for the Service's own node port: refused as upstream (the bitmap has it)
  assert.equal(message(() => update(a, cluster.next, (s) => { s.externalTrafficPolicy = 'Local'; s.healthCheckNodePort = 30080; })),
    '500 Internal error occurred: failed to allocate requested HealthCheck NodePort 30080: provided port is already allocated');
  // back to Local: a new one; LoadBalancer → NodePort drops it
  const local = update(a, cluster.next, (s) => { s.externalTrafficPolicy = 'Local'; });
  assert.deepEqual(local.errs, []);
  const hc = local.next.spec.healthCheckNodePort;
  assert.ok(hc >= 30000 && hc <= 32767 && hc !== 30080);
  a.observe('default/lb', local.next);
  assert.deepEqual(a.portHolders(hc), ['default/lb']);
  const np2 = update(a, local.next, (s) => { s.type = 'NodePort'; });
  assert.deepEqual(np2.errs, []);
  assert.equal(np2.next.spec.healthCheckNodePort, undefined);
  assert.equal(np2.next.spec.externalTrafficPolicy, 'Local', 'a NodePort keeps its policy (no health check)');
  a.observe('default/lb', np2.next);
  assert.deepEqual(a.portHolders(hc), []);
  // deleting the Service frees everything
  const again = svc('other', lb({ ports: [{ port: 80 }] }));
  a.allocateCreate(again);
  a.observe('default/other', again);
  a.observe('default/other', undefined);
  assert.deepEqual(a.portHolders(again.spec.healthCheckNodePort), []);
});

test('default/kubernetes points at the advertise address and the real port', async (t) => {
  const api = await startApiServer({ store: new MemoryStore(), port: 0, host: '127.0.0.1', requireAuth: false });
  t.after(() => api.close());
  const ep = findResource('', 'v1', 'endpoints')!;
  const slices = findResource('discovery.k8s.io', 'v1', 'endpointslices')!;
  const addresses = async () => ({
    ep: ((await api.registry.get(ep, 'default', 'kubernetes')).obj as any).subsets,
    slice: ((await api.registry.get(slices, 'default', 'kubernetes')).obj as any).endpoints.map((e: any) => e.addresses[0]),
  });
  assert.deepEqual(await addresses(), { ep: [{ addresses: [{ ip: '127.0.0.1' }], ports: [{ name: 'https', port: api.port, protocol: 'TCP' }] }], slice: ['127.0.0.1'] }, 'a specific bind address is advertised');
  await setKubernetesServiceAddress(api.registry, '192.0.2.10');
  assert.deepEqual(await addresses(), { ep: [{ addresses: [{ ip: '192.0.2.10' }], ports: [{ name: 'https', port: api.port, protocol: 'TCP' }] }], slice: ['192.0.2.10'] });
  await assert.rejects(setKubernetesServiceAddress(api.registry, '0.0.0.0'), /not a usable IPv4 address/);
});
