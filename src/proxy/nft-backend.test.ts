// The nftables backend: the text of full and delta transactions, and (as root with nft) that the
// kernel accepts each of them in turn on a table of our own with a random name, which is removed
// at the end. The table's chains are hooked, but nothing in it matches traffic of this host: the
// addresses are from 198.51.100.0/24 (TEST-NET-2, not used on this host), node port 30999 is not
// listened on, and the table lives for a fraction of a second.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ServicePortPlan } from './service-model.js';
import { NftBackend, nftObjects, parseAffinity, renderNftDelta, renderNftFull } from './nft-backend.js';
import type { PlanChange } from './backend.js';

const CIDR = '10.42.0.0/16';

function plan(over: Partial<ServicePortPlan> = {}): ServicePortPlan {
  const p: ServicePortPlan = {
    key: 'ns/web/tcp/http', serviceKey: 'ns/web', namespace: 'ns', name: 'web', portName: 'http', protocol: 'tcp', port: 80,
    clusterIP: '198.51.100.5', clusterIPs: ['198.51.100.5'], externalIPs: [],
    endpoints: [{ ip: '198.51.100.101', port: 8080 }, { ip: '198.51.100.102', port: 8080 }],
    ...over,
  };
  return p;
}

test('objects of a Service port with endpoints: chains, map elements, numgen spread', () => {
  const o = nftObjects(plan({ nodePort: 30080, externalIPs: ['198.51.100.50'] }), CIDR);
  assert.deepEqual([...o.chains.keys()], ['ep-ns/web/tcp/http/198.51.100.101/8080', 'ep-ns/web/tcp/http/198.51.100.102/8080', 'svc-ns/web/tcp/http', 'ext-ns/web/tcp/http']);
  assert.deepEqual(o.chains.get('svc-ns/web/tcp/http'), [
    `ip daddr 198.51.100.5 ip saddr != ${CIDR} jump mark-for-masquerade`,
    'numgen random mod 2 == 0 goto ep-ns/web/tcp/http/198.51.100.101/8080',
    'goto ep-ns/web/tcp/http/198.51.100.102/8080',
  ]);
  assert.deepEqual(o.chains.get('ep-ns/web/tcp/http/198.51.100.101/8080'), [
    'ip saddr 198.51.100.101 jump mark-for-masquerade',
    'meta l4proto tcp dnat to 198.51.100.101:8080',
  ]);
  assert.deepEqual(o.chains.get('ext-ns/web/tcp/http'), ['jump mark-for-masquerade', 'goto svc-ns/web/tcp/http']);
  assert.deepEqual([...o.elements], [
    ['service-ips\u0000198.51.100.5 . tcp . 80', 'goto svc-ns/web/tcp/http'],
    ['service-ips\u0000198.51.100.50 . tcp . 80', 'goto ext-ns/web/tcp/http'],
    ['service-nodeports\u0000tcp . 30080', 'goto ext-ns/web/tcp/http'],
  ]);
  assert.equal(o.sets.size, 0);
});

test('objects without endpoints: only reject-set elements; affinity adds a set per endpoint', () => {
  const none = nftObjects(plan({ endpoints: [], nodePort: 30080 }), CIDR);
  assert.equal(none.chains.size, 0);
  assert.deepEqual([...none.elements.keys()], ['no-endpoint-services\u0000198.51.100.5 . tcp . 80', 'no-endpoint-nodeports\u0000tcp . 30080']);
  const sticky = nftObjects(plan({ affinityTimeoutSeconds: 60, endpoints: [{ ip: '198.51.100.101', port: 8080 }] }), CIDR);
  assert.deepEqual([...sticky.sets.keys()], ['aff-60-ns/web/tcp/http/198.51.100.101/8080']);
  assert.deepEqual(sticky.chains.get('svc-ns/web/tcp/http')!.slice(1), [
    'ip saddr @aff-60-ns/web/tcp/http/198.51.100.101/8080 goto ep-ns/web/tcp/http/198.51.100.101/8080',
    'goto ep-ns/web/tcp/http/198.51.100.101/8080',
  ]);
  assert.ok(sticky.chains.get('ep-ns/web/tcp/http/198.51.100.101/8080')!.includes('update @aff-60-ns/web/tcp/http/198.51.100.101/8080 { ip saddr }'));
});

test('a full sync replaces the table in one transaction and carries affinity entries over', () => {
  const text = renderNftFull('t1', [plan({ affinityTimeoutSeconds: 60 })], CIDR, new Map([
    ['aff-60-ns/web/tcp/http/198.51.100.101/8080', [{ ip: '203.0.113.7', expiresSeconds: 42 }, { ip: '203.0.113.8', expiresSeconds: 999 }]],
  ]));
  const lines = text.split('\n');
  assert.deepEqual(lines.slice(0, 3), ['add table ip t1', 'delete table ip t1', 'add table ip t1 { comment "kybernetes service proxy"; }']);
  assert.ok(lines.includes('add element ip t1 aff-60-ns/web/tcp/http/198.51.100.101/8080 { 203.0.113.7 expires 42s }'), 'entries longer than the timeout are dropped');
  assert.ok(lines.includes('add chain ip t1 nat-output { type nat hook output priority -100; policy accept; }'));
  // chains are declared before any rule refers to them
  const firstRule = lines.findIndex((l) => l.startsWith('add rule ip t1 ep-'));
  const lastChain = lines.map((l) => l.startsWith('add chain ip t1 ')).lastIndexOf(true);
  assert.ok(lastChain < firstRule);
});

test('deltas: an endpoint going away rewrites only the service chain and drops the endpoint chain', () => {
  const before = plan();
  const after = plan({ endpoints: [{ ip: '198.51.100.101', port: 8080 }] });
  assert.deepEqual(renderNftDelta('t1', [{ key: before.key, old: before, new: after }], CIDR).trim().split('\n'), [
    'flush chain ip t1 svc-ns/web/tcp/http',
    `add rule ip t1 svc-ns/web/tcp/http ip daddr 198.51.100.5 ip saddr != ${CIDR} jump mark-for-masquerade`,
    'add rule ip t1 svc-ns/web/tcp/http goto ep-ns/web/tcp/http/198.51.100.101/8080',
    'flush chain ip t1 ep-ns/web/tcp/http/198.51.100.102/8080',
    'delete chain ip t1 ep-ns/web/tcp/http/198.51.100.102/8080',
  ]);
  assert.equal(renderNftDelta('t1', [{ key: before.key, old: before, new: plan() }], CIDR), '', 'no change, no transaction');
});

test('deltas: losing all endpoints moves the destinations to the reject sets', () => {
  const before = plan({ nodePort: 30080 });
  const after = plan({ nodePort: 30080, endpoints: [] });
  const lines = renderNftDelta('t1', [{ key: before.key, old: before, new: after }], CIDR).trim().split('\n');
  assert.equal(lines[0], 'delete element ip t1 service-ips { 198.51.100.5 . tcp . 80 }');
  assert.equal(lines[1], 'delete element ip t1 service-nodeports { tcp . 30080 }');
  assert.ok(lines.includes('add element ip t1 no-endpoint-services { 198.51.100.5 . tcp . 80 }'));
  assert.ok(lines.includes('add element ip t1 no-endpoint-nodeports { tcp . 30080 }'));
  assert.ok(lines.indexOf('delete chain ip t1 svc-ns/web/tcp/http') > lines.indexOf('flush chain ip t1 svc-ns/web/tcp/http'));
});

test('parseAffinity reads `nft -j list sets` for our table only', () => {
  const json = JSON.stringify({ nftables: [
    { metainfo: {} },
    { set: { family: 'ip', table: 't1', name: 'aff-60-x', elem: [{ elem: { val: '10.0.0.1', expires: 30 } }, '10.0.0.2'] } },
    { set: { family: 'ip', table: 'other', name: 'aff-60-x', elem: [{ elem: { val: '10.0.0.3', expires: 30 } }] } },
    { set: { family: 'ip', table: 't1', name: 'no-endpoint-services', elem: [] } },
  ] });
  assert.deepEqual([...parseAffinity(json, 't1')], [['aff-60-x', [{ ip: '10.0.0.1', expiresSeconds: 30 }]]]);
  assert.deepEqual(parseAffinity('not json', 't1').size, 0);
});

const canKernel = process.getuid?.() === 0 && spawnSync('nft', ['list', 'tables'], { stdio: 'ignore' }).status === 0;

test('the kernel takes a full sync and every kind of delta, atomically', { skip: !canKernel && 'needs root and nft' }, async () => {
  const table = `kybu${randomBytes(3).toString('hex')}`;
  const be = new NftBackend({ tableName: table, clusterCIDR: CIDR });
  const list = (): string => spawnSync('nft', ['list', 'table', 'ip', table]).stdout.toString();
  try {
    const web = plan({ nodePort: 30999, externalIPs: ['198.51.100.50'] });
    const dns = plan({ key: 'ns/dns/udp/dns', serviceKey: 'ns/dns', name: 'dns', portName: 'dns', protocol: 'udp', port: 53, clusterIP: '198.51.100.10', clusterIPs: ['198.51.100.10'], endpoints: [] });
    await be.fullSync([web, dns]);
    assert.match(list(), /198\.51\.100\.10 \. udp \. 53/);
    const steps: Array<[ServicePortPlan | undefined, ServicePortPlan | undefined]> = [];
    const sticky = { ...web, affinityTimeoutSeconds: 120 };
    const oneEp = { ...sticky, endpoints: [web.endpoints[0]] };
    const dnsUp = { ...dns, endpoints: [{ ip: '198.51.100.120', port: 5353 }] };
    steps.push([web, sticky], [sticky, oneEp], [dns, dnsUp], [oneEp, { ...oneEp, endpoints: [] }], [{ ...oneEp, endpoints: [] }, undefined]);
    for (const [o, n] of steps) {
      const change: PlanChange = { key: (o ?? n)!.key, old: o, new: n };
      await be.deltaSync([change]);
    }
    const text = list();
    assert.doesNotMatch(text, /ns\/web/, 'web is gone');
    assert.match(text, /dnat to 198\.51\.100\.120:5353/);
    // a delta computed from a wrong picture of the table fails as a whole and changes nothing
    await assert.rejects(be.deltaSync([{ key: web.key, old: web, new: undefined }, { key: dns.key, old: dnsUp, new: dns }]));
    assert.match(list(), /dnat to 198\.51\.100\.120:5353/);
    // a full sync repairs anything
    await be.fullSync([web]);
    assert.match(list(), /svc-ns\/web\/tcp\/http/);
    assert.doesNotMatch(list(), /ns\/dns/);
  } finally {
    await NftBackend.cleanup(table);
  }
  assert.ok(!spawnSync('nft', ['list', 'tables']).stdout.toString().includes(`table ip ${table}\n`));
});

// ---- traffic policies (internalTrafficPolicy / externalTrafficPolicy Local) -------------------

const LOCAL = { ip: '198.51.100.101', port: 8080 };

test('internalTrafficPolicy Local: the ClusterIP goes to the local chain; without local endpoints it is dropped', () => {
  const o = nftObjects(plan({ internalLocal: true, localEndpoints: [LOCAL] }), CIDR);
  assert.deepEqual([...o.chains.keys()], ['ep-ns/web/tcp/http/198.51.100.101/8080', 'svl-ns/web/tcp/http'], 'no cluster chain: nothing uses it');
  assert.deepEqual(o.chains.get('svl-ns/web/tcp/http'), [
    `ip daddr 198.51.100.5 ip saddr != ${CIDR} jump mark-for-masquerade`,
    'goto ep-ns/web/tcp/http/198.51.100.101/8080',
  ]);
  assert.deepEqual([...o.elements], [['service-ips\u0000198.51.100.5 . tcp . 80', 'goto svl-ns/web/tcp/http']]);
  const none = nftObjects(plan({ internalLocal: true, localEndpoints: [] }), CIDR);
  assert.equal(none.chains.size, 0);
  assert.deepEqual([...none.elements], [['no-local-endpoint-services\u0000198.51.100.5 . tcp . 80', '']], 'dropped, not rejected');
  // no endpoints anywhere: rejected as before
  assert.deepEqual([...nftObjects(plan({ internalLocal: true, localEndpoints: [], endpoints: [] }), CIDR).elements.keys()], ['no-endpoint-services\u0000198.51.100.5 . tcp . 80']);
});

test('externalTrafficPolicy Local: short-circuits for pods and this host, then local endpoints, unmasqueraded', () => {
  const p = plan({ nodePort: 30080, externalIPs: ['198.51.100.50'], externalLocal: true, localEndpoints: [LOCAL] });
  const o = nftObjects(p, CIDR);
  assert.deepEqual(o.chains.get('ext-ns/web/tcp/http'), [
    `ip saddr ${CIDR} goto svc-ns/web/tcp/http`,
    'fib saddr type local jump mark-for-masquerade',
    'fib saddr type local goto svc-ns/web/tcp/http',
    'goto svl-ns/web/tcp/http',
  ]);
  assert.equal(o.chains.get('svc-ns/web/tcp/http')!.length, 3, 'the cluster chain spreads over both endpoints');
  assert.deepEqual(o.chains.get('svl-ns/web/tcp/http')!.slice(1), ['goto ep-ns/web/tcp/http/198.51.100.101/8080']);
  assert.equal([...o.chains.keys()].filter((c) => c.startsWith('ep-')).length, 2, 'endpoint chains shared by both');
  assert.deepEqual([...o.elements], [
    ['service-ips\u0000198.51.100.5 . tcp . 80', 'goto svc-ns/web/tcp/http'],
    ['service-ips\u0000198.51.100.50 . tcp . 80', 'goto ext-ns/web/tcp/http'],
    ['service-nodeports\u0000tcp . 30080', 'goto ext-ns/web/tcp/http'],
  ]);
  // no local endpoint: the short-circuits stay, the rest falls through to the drop sets
  const none = nftObjects({ ...p, localEndpoints: [] }, CIDR);
  assert.equal(none.chains.get('ext-ns/web/tcp/http')!.length, 3);
  assert.ok(!none.chains.has('svl-ns/web/tcp/http'));
  assert.deepEqual([...none.elements.keys()].filter((k) => k.startsWith('no-')), [
    'no-local-endpoint-external\u0000198.51.100.50 . tcp . 80',
    'no-local-endpoint-nodeports\u0000tcp . 30080',
  ]);
  // a local endpoint that is not among the cluster-wide ones (local fallback to terminating) still gets its chain
  const extra = nftObjects({ ...p, localEndpoints: [{ ip: '198.51.100.109', port: 8080 }] }, CIDR);
  assert.ok(extra.chains.has('ep-ns/web/tcp/http/198.51.100.109/8080'));
});

test('drops are checked on input/forward; ClusterIP drops on output too', () => {
  const text = renderNftFull('t1', [], CIDR);
  assert.ok(text.includes('add rule ip t1 endpoints-check ip daddr . meta l4proto . th dport @no-local-endpoint-services drop'));
  assert.ok(text.includes('add rule ip t1 external-endpoints-check fib daddr type local meta l4proto . th dport @no-local-endpoint-nodeports drop'));
  assert.ok(text.includes('add rule ip t1 filter-input ct state new jump external-endpoints-check'));
  assert.ok(text.includes('add rule ip t1 filter-forward ct state new jump external-endpoints-check'));
  assert.ok(!text.includes('add rule ip t1 filter-output ct state new jump external-endpoints-check'), 'this host\'s traffic is short-circuited after the output filter hook');
});

test('the kernel takes Local policies in full syncs and deltas', { skip: !canKernel && 'needs root and nft' }, async () => {
  const table = `kybl${randomBytes(3).toString('hex')}`;
  const be = new NftBackend({ tableName: table, clusterCIDR: CIDR });
  const list = (): string => spawnSync('nft', ['list', 'table', 'ip', table]).stdout.toString();
  try {
    const base = plan({ nodePort: 30998, externalIPs: ['198.51.100.51'], affinityTimeoutSeconds: 30 });
    const etp = { ...base, externalLocal: true as const, localEndpoints: [LOCAL] };
    const etpNone = { ...etp, localEndpoints: [] };
    const itp = { ...base, nodePort: undefined, externalIPs: [], internalLocal: true as const, localEndpoints: [LOCAL] };
    const itpNone = { ...itp, localEndpoints: [] };
    await be.fullSync([etp]);
    assert.match(list(), /fib saddr type local goto svc-ns\/web\/tcp\/http/);
    for (const [o, n] of [[etp, etpNone], [etpNone, base], [base, itp], [itp, itpNone], [itpNone, etp]] as const) {
      await be.deltaSync([{ key: base.key, old: o, new: n }]);
    }
    assert.match(list(), /goto svl-ns\/web\/tcp\/http/);
    await be.fullSync([itpNone]);
    assert.match(list(), /no-local-endpoint-services[\s\S]*198\.51\.100\.5 \. tcp \. 80/);
  } finally {
    await NftBackend.cleanup(table);
  }
});
