// The record logic of cluster DNS with hand-made Services, EndpointSlices and Namespaces (what the
// informers would deliver): every record kind of the Kubernetes DNS specification, NXDOMAIN versus
// NODATA, case-insensitivity, updates and deletions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Answer } from 'dns-packet';
import { ClusterZone, reverseToIP, type EndpointSliceObj, type ServiceObj, type ZoneResult } from './cluster-zone.js';

const Z = 'cluster.local';

function svc(ns: string, name: string, spec: ServiceObj['spec'], annotations?: Record<string, string>): ServiceObj {
  return { apiVersion: 'v1', kind: 'Service', metadata: { namespace: ns, name, annotations }, spec };
}

function slice(ns: string, name: string, service: string, endpoints: NonNullable<EndpointSliceObj['endpoints']>, ports: EndpointSliceObj['ports'] = [], addressType = 'IPv4'): EndpointSliceObj {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType,
    metadata: { namespace: ns, name, labels: { 'kubernetes.io/service-name': service } }, endpoints, ports,
  };
}

function zone(): ClusterZone {
  const z = new ClusterZone({ domain: Z, ttl: 5, now: () => 1700000000, shuffle: false });
  for (const n of ['default', 'prod', 'kube-system']) z.upsertNamespace({ metadata: { name: n } });
  z.upsertService(svc('default', 'kubernetes', { type: 'ClusterIP', clusterIP: '10.43.0.1', clusterIPs: ['10.43.0.1'], ports: [{ name: 'https', port: 443, protocol: 'TCP' }] }));
  z.upsertService(svc('kube-system', 'kube-dns', { type: 'ClusterIP', clusterIP: '10.43.0.10', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }] }));
  z.upsertService(svc('prod', 'web', { type: 'ClusterIP', clusterIP: '10.43.5.6', ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { port: 8443, protocol: 'TCP' }] }));
  z.upsertEndpointSlice(slice('prod', 'web-abc', 'web', [{ addresses: ['10.42.0.7'], conditions: { ready: true } }], [{ name: 'http', port: 8080, protocol: 'TCP' }]));
  z.upsertService(svc('prod', 'db', { type: 'ClusterIP', clusterIP: 'None', ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }] }));
  z.upsertEndpointSlice(slice('prod', 'db-1', 'db', [
    { addresses: ['10.42.1.2'], hostname: 'db-0', conditions: { ready: true } },
    { addresses: ['10.42.1.3'], hostname: 'db-1' }, // ready unset = ready
    { addresses: ['10.42.1.4'], hostname: 'db-2', conditions: { ready: false } },
    { addresses: ['10.42.1.5'] }, // no hostname: named by its IP
  ], [{ name: 'pg', port: 5432, protocol: 'TCP' }]));
  z.upsertService(svc('prod', 'ext', { type: 'ExternalName', externalName: 'Example.COM.' }));
  z.upsertService(svc('prod', 'alias', { type: 'ExternalName', externalName: `web.prod.svc.${Z}` }));
  z.upsertService(svc('prod', 'empty', { type: 'ClusterIP', clusterIP: 'None', ports: [{ name: 'x', port: 1, protocol: 'TCP' }] }));
  return z;
}

function ans(r: ZoneResult): Answer[] { assert.equal(r.kind, 'answer'); return (r as Extract<ZoneResult, { kind: 'answer' }>).answers; }
function rcode(r: ZoneResult): string { assert.equal(r.kind, 'answer'); return (r as Extract<ZoneResult, { kind: 'answer' }>).rcode; }
function data(r: ZoneResult, type?: string): unknown[] { return ans(r).filter((a) => !type || a.type === type).map((a) => (a as { data: unknown }).data); }
function sorted(xs: unknown[]): unknown[] { return [...xs].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))); }
/** NODATA: NOERROR, no answer, the SOA in the authority section */
function isNoData(r: ZoneResult): boolean {
  return r.kind === 'answer' && r.rcode === 'NOERROR' && r.answers.length === 0 && r.authorities.length === 1 && r.authorities[0].type === 'SOA';
}
function isNxdomain(r: ZoneResult): boolean {
  return r.kind === 'answer' && r.rcode === 'NXDOMAIN' && r.answers.length === 0 && r.authorities[0]?.type === 'SOA';
}

test('ClusterIP Service: A, SRV for named ports (target the Service), AAAA and TXT are NODATA', () => {
  const z = zone();
  assert.deepEqual(data(z.lookup(`web.prod.svc.${Z}`, 'A')), ['10.43.5.6']);
  assert.deepEqual(data(z.lookup(`kubernetes.default.svc.${Z}`, 'A')), ['10.43.0.1']);
  const srv = z.lookup(`_http._tcp.web.prod.svc.${Z}`, 'SRV');
  assert.deepEqual(data(srv), [{ priority: 0, weight: 100, port: 80, target: `web.prod.svc.${Z}` }]);
  assert.deepEqual((srv as { additionals: Answer[] }).additionals.map((a) => [a.name, a.type, (a as { data: unknown }).data]), [[`web.prod.svc.${Z}`, 'A', '10.43.5.6']]);
  // the bare name's SRV set has every port, the unnamed one included (as CoreDNS)
  assert.deepEqual(sorted(data(z.lookup(`web.prod.svc.${Z}`, 'SRV')).map((s) => (s as { port: number }).port)), [80, 8443]);
  assert.ok(isNoData(z.lookup(`web.prod.svc.${Z}`, 'AAAA')));
  assert.ok(isNoData(z.lookup(`web.prod.svc.${Z}`, 'TXT')));
  assert.ok(isNoData(z.lookup(`web.prod.svc.${Z}`, 'UNKNOWN_65')));
  // ports that do not exist, or the wrong protocol
  assert.ok(isNxdomain(z.lookup(`_https._tcp.web.prod.svc.${Z}`, 'SRV')));
  assert.ok(isNxdomain(z.lookup(`_http._udp.web.prod.svc.${Z}`, 'SRV')));
  // the SOA: zone apex, ns.dns, hostmaster, minimum = ttl
  const soa = (z.lookup(`web.prod.svc.${Z}`, 'AAAA') as { authorities: Answer[] }).authorities[0] as Answer & { data: Record<string, unknown> };
  assert.equal(soa.name, Z);
  assert.deepEqual(soa.data, { mname: `ns.dns.${Z}`, rname: `hostmaster.${Z}`, serial: 1700000000, refresh: 7200, retry: 1800, expire: 86400, minimum: 5 });
});

test('headless Service: ready endpoint IPs, hostname records, SRV per endpoint, no ready endpoint = NXDOMAIN', () => {
  const z = zone();
  assert.deepEqual(sorted(data(z.lookup(`db.prod.svc.${Z}`, 'A'))), ['10.42.1.2', '10.42.1.3', '10.42.1.5']);
  assert.deepEqual(data(z.lookup(`db-0.db.prod.svc.${Z}`, 'A')), ['10.42.1.2']);
  assert.deepEqual(data(z.lookup(`10-42-1-5.db.prod.svc.${Z}`, 'A')), ['10.42.1.5']);
  assert.ok(isNxdomain(z.lookup(`db-2.db.prod.svc.${Z}`, 'A')), 'a not-ready endpoint has no record');
  assert.ok(isNxdomain(z.lookup(`nobody.db.prod.svc.${Z}`, 'A')));
  const srv = z.lookup(`_pg._tcp.db.prod.svc.${Z}`, 'SRV');
  assert.deepEqual(sorted(data(srv)), sorted([
    { priority: 0, weight: 33, port: 5432, target: `db-0.db.prod.svc.${Z}` },
    { priority: 0, weight: 33, port: 5432, target: `db-1.db.prod.svc.${Z}` },
    { priority: 0, weight: 33, port: 5432, target: `10-42-1-5.db.prod.svc.${Z}` },
  ]));
  assert.deepEqual(sorted((srv as { additionals: Answer[] }).additionals.map((a) => `${a.name} ${(a as { data: string }).data}`)), [
    `10-42-1-5.db.prod.svc.${Z} 10.42.1.5`, `db-0.db.prod.svc.${Z} 10.42.1.2`, `db-1.db.prod.svc.${Z} 10.42.1.3`,
  ]);
  assert.ok(isNxdomain(z.lookup(`empty.prod.svc.${Z}`, 'A')), 'the specification: no ready endpoints → NXDOMAIN');
  // publishNotReadyAddresses makes not-ready endpoints count
  z.upsertService(svc('prod', 'db', { type: 'ClusterIP', clusterIP: 'None', publishNotReadyAddresses: true, ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }] }));
  assert.deepEqual(data(z.lookup(`db-2.db.prod.svc.${Z}`, 'A')), ['10.42.1.4']);
});

test('ExternalName: CNAME for every type, followed inside the zone, chased outside it', () => {
  const z = zone();
  const r = z.lookup(`ext.prod.svc.${Z}`, 'A');
  assert.deepEqual(ans(r).map((a) => [a.type, (a as { data: string }).data]), [['CNAME', 'example.com']]);
  assert.deepEqual((r as { chase?: unknown }).chase, { name: 'example.com', type: 'A' });
  assert.deepEqual(data(z.lookup(`ext.prod.svc.${Z}`, 'CNAME')), ['example.com']);
  const alias = z.lookup(`alias.prod.svc.${Z}`, 'A');
  assert.deepEqual(ans(alias).map((a) => [a.name, a.type, (a as { data: string }).data]), [
    [`alias.prod.svc.${Z}`, 'CNAME', `web.prod.svc.${Z}`], [`web.prod.svc.${Z}`, 'A', '10.43.5.6'],
  ]);
  assert.equal((alias as { chase?: unknown }).chase, undefined);
  assert.ok(isNxdomain(z.lookup(`x.ext.prod.svc.${Z}`, 'A')), 'no names below an ExternalName Service');
  z.upsertService(svc('prod', 'byip', { type: 'ExternalName', externalName: '192.0.2.1' }));
  assert.ok(isNxdomain(z.lookup(`byip.prod.svc.${Z}`, 'A')), 'an IP is no CNAME target (CoreDNS ignores these)');
});

test('PTR for ClusterIPs and endpoint IPs; reverse names we do not hold are outside', () => {
  const z = zone();
  assert.deepEqual(data(z.lookup('6.5.43.10.in-addr.arpa', 'PTR')), [`web.prod.svc.${Z}`]);
  assert.deepEqual(data(z.lookup('1.0.43.10.in-addr.arpa', 'PTR')), [`kubernetes.default.svc.${Z}`]);
  assert.deepEqual(data(z.lookup('2.1.42.10.in-addr.arpa', 'PTR')), [`db-0.db.prod.svc.${Z}`]);
  assert.deepEqual(data(z.lookup('5.1.42.10.in-addr.arpa', 'PTR')), [`10-42-1-5.db.prod.svc.${Z}`]);
  assert.ok(isNoData(z.lookup('6.5.43.10.in-addr.arpa', 'A')), 'the PTR name exists: other types are NODATA');
  assert.deepEqual(z.lookup('9.9.9.9.in-addr.arpa', 'PTR'), { kind: 'outside', reverse: true, reverseZone: 'in-addr.arpa' });
  assert.deepEqual(reverseToIP('1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa'), { ip: 'fd00::1', zone: 'ip6.arpa' });
  assert.equal(reverseToIP('01.0.43.10.in-addr.arpa'), undefined);
});

test('pod names from the address itself, only in namespaces that exist', () => {
  const z = zone();
  assert.deepEqual(data(z.lookup(`10-42-0-9.prod.pod.${Z}`, 'A')), ['10.42.0.9']);
  assert.ok(isNoData(z.lookup(`10-42-0-9.prod.pod.${Z}`, 'AAAA')));
  assert.deepEqual(data(z.lookup(`fd00--1.prod.pod.${Z}`, 'AAAA')), ['fd00::1']);
  assert.ok(isNxdomain(z.lookup(`10-42-0-9.nope.pod.${Z}`, 'A')));
  assert.ok(isNxdomain(z.lookup(`10-42-0-999.prod.pod.${Z}`, 'A')));
  assert.ok(isNxdomain(z.lookup(`web.prod.pod.${Z}`, 'A')));
});

test('zone structure: SOA, NS, dns-version, empty non-terminals are NODATA, the rest NXDOMAIN', () => {
  const z = zone();
  assert.equal(data(z.lookup(Z, 'SOA')).length, 1);
  const ns = z.lookup(Z, 'NS');
  assert.deepEqual(data(ns), [`ns.dns.${Z}`]);
  assert.deepEqual((ns as { additionals: Answer[] }).additionals.map((a) => (a as { data: string }).data), ['10.43.0.10']);
  assert.deepEqual(data(z.lookup(`ns.dns.${Z}`, 'A')), ['10.43.0.10']);
  assert.deepEqual(data(z.lookup(`dns-version.${Z}`, 'TXT')), ['1.1.0']);
  for (const n of [`svc.${Z}`, `pod.${Z}`, `prod.svc.${Z}`, `prod.pod.${Z}`]) assert.ok(isNoData(z.lookup(n, 'A')), n);
  for (const n of [`nope.svc.${Z}`, `x.${Z}`, `web.nope.svc.${Z}`, `nope.prod.svc.${Z}`, `a.b.web.prod.svc.${Z}`, `x.web.prod.svc.${Z}`]) {
    assert.ok(isNxdomain(z.lookup(n, 'A')), n);
  }
  assert.ok(isNoData(z.lookup(`web.prod.svc.${Z}`, 'SOA')), 'SOA below the apex is NODATA');
  assert.deepEqual(z.lookup('example.com', 'A'), { kind: 'outside', reverse: false, reverseZone: undefined });
  assert.deepEqual(z.lookup('cluster.local.example.com', 'A').kind, 'outside');
});

test('case-insensitive, trailing dot accepted, owner names keep the question\'s case', () => {
  const z = zone();
  const r = z.lookup(`WeB.PrOd.SVC.Cluster.Local.`, 'A');
  assert.deepEqual(data(r), ['10.43.5.6']);
  assert.equal(ans(r)[0].name, 'WeB.PrOd.SVC.Cluster.Local');
  assert.deepEqual(data(z.lookup(`_HTTP._TCP.web.prod.svc.${Z}`, 'SRV')).length, 1);
  assert.deepEqual(data(z.lookup(`DB-0.DB.prod.svc.${Z}`, 'A')), ['10.42.1.2']);
});

test('updates: a new Service appears, a deleted one is NXDOMAIN, slices move endpoints, the serial advances', () => {
  let now = 1700000000;
  const z = new ClusterZone({ domain: Z, now: () => now, shuffle: false });
  z.upsertNamespace({ metadata: { name: 'app' } });
  assert.ok(isNxdomain(z.lookup(`api.app.svc.${Z}`, 'A')));
  now += 10;
  z.upsertService(svc('app', 'api', { type: 'ClusterIP', clusterIP: '10.43.9.9', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] }));
  assert.deepEqual(data(z.lookup(`api.app.svc.${Z}`, 'A')), ['10.43.9.9']);
  assert.equal(z.serial, 1700000010);
  z.upsertEndpointSlice(slice('app', 'api-1', 'api', [{ addresses: ['10.42.3.3'] }]));
  assert.deepEqual(data(z.lookup('3.3.42.10.in-addr.arpa', 'PTR')), [`10-42-3-3.api.app.svc.${Z}`]);
  // the slice changes: the old endpoint's PTR goes, the new one's comes
  z.upsertEndpointSlice(slice('app', 'api-1', 'api', [{ addresses: ['10.42.3.4'] }]));
  assert.equal(z.lookup('3.3.42.10.in-addr.arpa', 'PTR').kind, 'outside');
  assert.deepEqual(data(z.lookup('4.3.42.10.in-addr.arpa', 'PTR')), [`10-42-3-4.api.app.svc.${Z}`]);
  // two slices of one headless Service merge; duplicates count once
  z.upsertService(svc('app', 'hl', { type: 'ClusterIP', clusterIP: 'None' }));
  z.upsertEndpointSlice(slice('app', 'hl-a', 'hl', [{ addresses: ['10.42.4.1'] }, { addresses: ['10.42.4.2'] }]));
  z.upsertEndpointSlice(slice('app', 'hl-b', 'hl', [{ addresses: ['10.42.4.2'] }, { addresses: ['10.42.4.3'] }]));
  assert.deepEqual(sorted(data(z.lookup(`hl.app.svc.${Z}`, 'A'))), ['10.42.4.1', '10.42.4.2', '10.42.4.3']);
  z.deleteEndpointSlice(slice('app', 'hl-a', 'hl', []));
  assert.deepEqual(sorted(data(z.lookup(`hl.app.svc.${Z}`, 'A'))), ['10.42.4.2', '10.42.4.3']);
  // a slice that loses its Service label stops counting
  const unlabelled = slice('app', 'hl-b', 'hl', [{ addresses: ['10.42.4.2'] }, { addresses: ['10.42.4.3'] }]);
  unlabelled.metadata!.labels = {};
  z.upsertEndpointSlice(unlabelled);
  assert.ok(isNxdomain(z.lookup(`hl.app.svc.${Z}`, 'A')));
  z.upsertEndpointSlice(slice('app', 'hl-b', 'hl', [{ addresses: ['10.42.4.2'] }, { addresses: ['10.42.4.3'] }]));
  // FQDN slices carry no addresses for DNS
  z.upsertEndpointSlice(slice('app', 'hl-f', 'hl', [{ addresses: ['example.com'] }], [], 'FQDN'));
  assert.equal(data(z.lookup(`hl.app.svc.${Z}`, 'A')).length, 2);
  // delete the Service: its names and PTRs go
  z.deleteService(svc('app', 'api', {}));
  assert.ok(isNxdomain(z.lookup(`api.app.svc.${Z}`, 'A')));
  assert.equal(z.lookup('9.9.43.10.in-addr.arpa', 'PTR').kind, 'outside');
  assert.equal(z.lookup('4.3.42.10.in-addr.arpa', 'PTR').kind, 'outside');
  // a slice seen before its Service (two informers) takes effect when the Service arrives
  z.upsertEndpointSlice(slice('app', 'late-1', 'late', [{ addresses: ['10.42.5.5'] }]));
  assert.ok(isNxdomain(z.lookup(`late.app.svc.${Z}`, 'A')));
  z.upsertService(svc('app', 'late', { type: 'ClusterIP', clusterIP: 'None' }));
  assert.deepEqual(data(z.lookup(`late.app.svc.${Z}`, 'A')), ['10.42.5.5']);
  // a Service whose namespace the namespace informer has not delivered yet still resolves
  z.upsertService(svc('fresh', 'one', { type: 'ClusterIP', clusterIP: '10.43.7.7', ports: [{ port: 1, protocol: 'TCP' }] }));
  assert.deepEqual(data(z.lookup(`one.fresh.svc.${Z}`, 'A')), ['10.43.7.7']);
  assert.ok(isNoData(z.lookup(`fresh.svc.${Z}`, 'A')));
  // the namespace goes away: pod names in it are NXDOMAIN
  z.deleteNamespace({ metadata: { name: 'app' } });
  assert.ok(isNxdomain(z.lookup(`1-2-3-4.app.pod.${Z}`, 'A')));
});

test('a ClusterIP Service without an allocated address exists with no records; dual-stack gives AAAA', () => {
  const z = new ClusterZone({ domain: Z, shuffle: false });
  z.upsertService(svc('a', 'pending', { type: 'ClusterIP', ports: [{ name: 'p', port: 1, protocol: 'TCP' }] }));
  assert.ok(isNoData(z.lookup(`pending.a.svc.${Z}`, 'A')));
  z.upsertService(svc('a', 'dual', { type: 'ClusterIP', clusterIP: '10.43.1.1', clusterIPs: ['10.43.1.1', 'fd00:43::1'], ports: [{ name: 'p', port: 1, protocol: 'TCP' }] }));
  assert.deepEqual(data(z.lookup(`dual.a.svc.${Z}`, 'A')), ['10.43.1.1']);
  assert.deepEqual(data(z.lookup(`dual.a.svc.${Z}`, 'AAAA')), ['fd00:43::1']);
});

test('a custom cluster domain', () => {
  const z = new ClusterZone({ domain: 'Corp.Example.', shuffle: false });
  z.upsertService(svc('a', 'b', { type: 'ClusterIP', clusterIP: '10.43.1.1', ports: [{ port: 1, protocol: 'TCP' }] }));
  assert.deepEqual(data(z.lookup('b.a.svc.corp.example', 'A')), ['10.43.1.1']);
  assert.equal(z.lookup(`b.a.svc.${Z}`, 'A').kind, 'outside');
});
