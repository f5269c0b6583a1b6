// The iptables backend: chain names, kube-proxy-style rules, delta and full restore inputs, the
// parsing of iptables-save, and (as root with iptables) a kernel round trip under a random chain
// prefix: full sync, deltas, hooks added once, cleanup leaving nothing. Addresses are from
// 198.51.100.0/24 (TEST-NET-2, not used on this host); the chains live for a fraction of a second.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ServicePortPlan } from './service-model.js';
import { IptablesBackend, chainPrefix, hashName, iptObjects, parseSave, renderIptCleanup, renderIptDelta, renderIptFull } from './iptables-backend.js';

const CIDR = '10.42.0.0/16';

function plan(over: Partial<ServicePortPlan> = {}): ServicePortPlan {
  return {
    key: 'ns/web/tcp/http', serviceKey: 'ns/web', namespace: 'ns', name: 'web', portName: 'http', protocol: 'tcp', port: 80,
    clusterIP: '198.51.100.5', clusterIPs: ['198.51.100.5'], externalIPs: [],
    endpoints: [{ ip: '198.51.100.101', port: 8080 }, { ip: '198.51.100.102', port: 8080 }, { ip: '198.51.100.103', port: 8080 }],
    ...over,
  };
}

test('chain names fit in 28 characters and are stable', () => {
  assert.equal(hashName('ns/web/tcp/http'), hashName('ns/web/tcp/http'));
  assert.match(hashName('x'), /^[A-Z2-7]{12}$/);
  assert.notEqual(hashName('a'), hashName('b'));
  const o = iptObjects(chainPrefix('kybernetes'), plan({ nodePort: 30080 }), CIDR);
  for (const c of o.chains.keys()) assert.ok(c.length <= 28, c);
  assert.throws(() => chainPrefix('much-too-long-name'), /invalid/);
});

test('rules as kube-proxy writes them: probabilities 1/(N-i), masquerade, hairpin, recent for affinity', () => {
  const P = 'KYB';
  const o = iptObjects(P, plan({ affinityTimeoutSeconds: 60, externalIPs: ['198.51.100.50'], nodePort: 30080 }), CIDR);
  const svc = o.chains.get(`${P}-SVC-${hashName('ns/web/tcp/http')}`)!;
  assert.match(svc[0], new RegExp(`^! -s ${CIDR} -d 198.51.100.5/32 -p tcp .* --dport 80 -j KYB-MARK-MASQ$`));
  assert.equal(svc.filter((r) => r.includes('--rcheck --seconds 60 --reap')).length, 3);
  const probs = svc.map((r) => /--probability (\S+)/.exec(r)?.[1]).filter(Boolean);
  assert.deepEqual(probs, ['0.33333333333', '0.50000000000']);
  assert.ok(!/statistic/.test(svc[svc.length - 1]), 'the last endpoint takes the rest');
  const sep = o.chains.get(`${P}-SEP-${hashName('ns/web/tcp/http/198.51.100.101/8080')}`)!;
  assert.match(sep[0], /^-s 198\.51\.100\.101\/32 .* -j KYB-MARK-MASQ$/);
  assert.match(sep[1], /-m recent --set --name KYB-SEP-\w+ .* -j DNAT --to-destination 198\.51\.100\.101:8080$/);
  assert.equal(o.services.length, 2);
  assert.match(o.services[1], /-d 198\.51\.100\.50\/32 .* -j KYB-EXT-/);
  assert.match(o.nodePorts[0], /--dport 30080 -j KYB-EXT-/);
  const none = iptObjects(P, plan({ endpoints: [], protocol: 'udp', nodePort: 30053 }), CIDR);
  assert.equal(none.chains.size, 0);
  assert.equal(none.filter.length, 2);
  assert.ok(none.filter.every((r) => r.endsWith('-j REJECT --reject-with icmp-port-unreachable')));
  assert.match(none.filter[1], /-m addrtype --dst-type LOCAL/);
});

test('a delta edits the shared chains rule by rule and rewrites only changed chains', () => {
  const before = plan();
  const after = plan({ endpoints: before.endpoints.slice(0, 2) });
  const text = renderIptDelta('kyb', [{ key: before.key, old: before, new: after }], CIDR);
  const lines = text.trim().split('\n');
  const gone = `KYB-SEP-${hashName('ns/web/tcp/http/198.51.100.103/8080')}`;
  assert.equal(lines[0], '*nat');
  assert.ok(lines.includes(`:KYB-SVC-${hashName(before.key)} - [0:0]`));
  assert.ok(lines.includes(`:${gone} - [0:0]`) && lines.includes(`-X ${gone}`));
  assert.ok(!lines.some((l) => l.includes('KYB-SERVICES')), 'P-SERVICES untouched');
  // removal of a Service: its P-SERVICES rule deleted by spec before its chains go
  const del = renderIptDelta('kyb', [{ key: before.key, old: before, new: undefined }], CIDR).split('\n');
  const d = del.findIndex((l) => l.startsWith('-D KYB-SERVICES '));
  assert.ok(d > 0 && d < del.findIndex((l) => l.startsWith('-X ')));
  // no endpoints: a reject rule in the filter table
  const none = renderIptDelta('kyb', [{ key: before.key, old: before, new: plan({ endpoints: [] }) }], CIDR);
  assert.match(none, /\*filter\n-A KYB-FILTER -d 198\.51\.100\.5\/32 -p tcp .* -j REJECT --reject-with tcp-reset\nCOMMIT/);
  assert.equal(renderIptDelta('kyb', [{ key: before.key, old: before, new: plan() }], CIDR), '');
});

test('iptables-save parsing finds our chains and the jumps into them; full sync adds only missing hooks', () => {
  const save = [
    '*nat', ':PREROUTING ACCEPT [0:0]', ':KYB-SERVICES - [0:0]', ':KYB-SVC-OLD - [0:0]', ':KYBX-SERVICES - [0:0]',
    '-A PREROUTING -m comment --comment "kyb service portals" -j KYB-SERVICES',
    '-A PREROUTING -j KYBX-SERVICES', '-A KYB-SERVICES -j KYB-SVC-OLD', 'COMMIT',
    '*filter', ':KYB-FILTER - [0:0]', 'COMMIT',
  ].join('\n');
  const st = parseSave(save, 'KYB');
  assert.deepEqual([...st.chains.nat], ['KYB-SERVICES', 'KYB-SVC-OLD']);
  assert.deepEqual(st.jumps.nat, ['-A PREROUTING -m comment --comment "kyb service portals" -j KYB-SERVICES']);
  const full = renderIptFull('kyb', [plan()], CIDR, st);
  assert.ok(!full.includes('-I PREROUTING'), 'present hook not added again');
  assert.ok(full.includes('-I OUTPUT 1 -m comment --comment "kyb service portals" -j KYB-SERVICES'));
  assert.ok(full.includes('-I FORWARD 1 -m conntrack --ctstate NEW -m comment --comment "kyb service portals" -j KYB-FILTER'));
  assert.ok(full.includes(':KYB-SVC-OLD - [0:0]') && full.includes('-X KYB-SVC-OLD'), 'stale chain flushed and removed');
  const lines = full.split('\n');
  assert.equal(lines.filter((l) => l.startsWith('-A KYB-SERVICES')).pop(), '-A KYB-SERVICES -m comment --comment "kyb node ports; must be last" -m addrtype --dst-type LOCAL -j KYB-NODEPORTS');
  const clean = renderIptCleanup(st);
  assert.match(clean, /-D PREROUTING -m comment --comment "kyb service portals" -j KYB-SERVICES\n-X KYB-SERVICES\n-X KYB-SVC-OLD\nCOMMIT/);
  assert.ok(!clean.includes('KYBX'), 'another prefix is left alone');
  assert.equal(renderIptCleanup(parseSave('*nat\nCOMMIT\n', 'KYB')), '');
});

const canKernel = process.getuid?.() === 0 && spawnSync('iptables-save', ['-t', 'nat'], { stdio: 'ignore' }).status === 0;

test('the kernel takes full syncs and deltas; cleanup leaves nothing', { skip: !canKernel && 'needs root and iptables' }, async () => {
  const table = `kybu${randomBytes(3).toString('hex')}`;
  const P = chainPrefix(table);
  const be = new IptablesBackend({ tableName: table, clusterCIDR: CIDR });
  const ours = (): string[] => ['nat', 'filter'].flatMap((t) => spawnSync('iptables-save', ['-t', t]).stdout.toString().split('\n').filter((l) => l.includes(`${P}-`)));
  try {
    const web = plan({ nodePort: 30999, externalIPs: ['198.51.100.50'], affinityTimeoutSeconds: 60 });
    await be.fullSync([web]);
    await be.fullSync([web]);
    assert.equal(ours().filter((l) => l.startsWith('-A PREROUTING')).length, 1, 'hooks are not duplicated');
    const two = { ...web, endpoints: web.endpoints.slice(0, 2) };
    const none = { ...web, endpoints: [] };
    for (const [o, n] of [[web, two], [two, none], [none, web], [web, undefined]] as const) await be.deltaSync([{ key: web.key, old: o, new: n }]);
    assert.deepEqual(ours().filter((l) => /SVC-|SEP-|EXT-|REJECT/.test(l)), [], 'web is gone');
    // a stale picture fails the restore as a whole
    await assert.rejects(be.deltaSync([{ key: web.key, old: two, new: web }]));
    await be.fullSync([two]);
    assert.equal(ours().filter((l) => l.startsWith(`:${P}-SEP-`)).length, 2);
  } finally {
    await IptablesBackend.cleanup(table);
  }
  assert.deepEqual(ours(), []);
});

// ---- traffic policies (internalTrafficPolicy / externalTrafficPolicy Local) -------------------

const LOCAL = { ip: '198.51.100.101', port: 8080 };

test('internalTrafficPolicy Local: the ClusterIP jumps to the SVL chain; without local endpoints a DROP', () => {
  const P = 'KYB';
  const h = hashName('ns/web/tcp/http');
  const o = iptObjects(P, plan({ internalLocal: true, localEndpoints: [LOCAL] }), CIDR);
  assert.deepEqual([...o.chains.keys()], [`${P}-SEP-${hashName('ns/web/tcp/http/198.51.100.101/8080')}`, `${P}-SVL-${h}`]);
  assert.equal(o.services.length, 1);
  assert.match(o.services[0], new RegExp(`^-d 198\\.51\\.100\\.5/32 .* -j ${P}-SVL-${h}$`));
  const none = iptObjects(P, plan({ internalLocal: true, localEndpoints: [] }), CIDR);
  assert.equal(none.chains.size, 0);
  assert.deepEqual(none.services, []);
  assert.deepEqual(none.filter, ['-d 198.51.100.5/32 -p tcp -m comment --comment "ns/web:http has no local endpoints" -m tcp --dport 80 -j DROP']);
});

test('externalTrafficPolicy Local: EXT short-circuits pods and LOCAL sources, else SVL without masquerade', () => {
  const P = 'KYB';
  const h = hashName('ns/web/tcp/http');
  const p = plan({ nodePort: 30080, externalIPs: ['198.51.100.50'], externalLocal: true, localEndpoints: [LOCAL] });
  const o = iptObjects(P, p, CIDR);
  const ext = o.chains.get(`${P}-EXT-${h}`)!;
  assert.equal(ext.length, 4);
  assert.match(ext[0], new RegExp(`^-s ${CIDR} .* -j ${P}-SVC-${h}$`));
  assert.match(ext[1], /-m addrtype --src-type LOCAL -j KYB-MARK-MASQ$/);
  assert.match(ext[2], new RegExp(`-m addrtype --src-type LOCAL -j ${P}-SVC-${h}$`));
  assert.equal(ext[3], `-j ${P}-SVL-${h}`);
  assert.ok(!o.chains.get(`${P}-SVL-${h}`)!.some((r) => r.endsWith('-j KYB-MARK-MASQ') && !r.includes('-d 198.51.100.5/32')), 'SVL masquerades only off-cluster ClusterIP traffic');
  assert.match(o.services[0], new RegExp(`-j ${P}-SVC-${h}$`), 'ClusterIP traffic still uses every endpoint');
  assert.deepEqual(o.filter, []);
  const none = iptObjects(P, { ...p, localEndpoints: [] }, CIDR);
  assert.equal(none.chains.get(`${P}-EXT-${h}`)!.length, 3);
  assert.ok(!none.chains.has(`${P}-SVL-${h}`));
  assert.equal(none.filter.length, 2);
  assert.match(none.filter[0], /^-d 198\.51\.100\.50\/32 .*has no local endpoints.* -j DROP$/);
  assert.match(none.filter[1], /-m addrtype --dst-type LOCAL .* --dport 30080 -j DROP$/);
});

test('the kernel takes Local policies in full syncs and deltas', { skip: !canKernel && 'needs root and iptables' }, async () => {
  const table = `kybl${randomBytes(3).toString('hex')}`;
  const P = chainPrefix(table);
  const be = new IptablesBackend({ tableName: table, clusterCIDR: CIDR });
  const ours = (): string[] => ['nat', 'filter'].flatMap((t) => spawnSync('iptables-save', ['-t', t]).stdout.toString().split('\n').filter((l) => l.includes(`${P}-`)));
  try {
    const base = plan({ nodePort: 30998, externalIPs: ['198.51.100.51'], affinityTimeoutSeconds: 30 });
    const etp = { ...base, externalLocal: true as const, localEndpoints: [LOCAL] };
    const etpNone = { ...etp, localEndpoints: [] };
    const itp = { ...base, nodePort: undefined, externalIPs: [], internalLocal: true as const, localEndpoints: [LOCAL] };
    const itpNone = { ...itp, localEndpoints: [] };
    await be.fullSync([etp]);
    assert.ok(ours().some((l) => l.includes('--src-type LOCAL')));
    for (const [o, n] of [[etp, etpNone], [etpNone, base], [base, itp], [itp, itpNone], [itpNone, etp], [etp, undefined]] as const) {
      await be.deltaSync([{ key: base.key, old: o, new: n }]);
    }
    assert.deepEqual(ours().filter((l) => /SVC-|SVL-|SEP-|EXT-|DROP/.test(l)), [], 'all gone');
    await be.fullSync([itpNone]);
    assert.equal(ours().filter((l) => l.endsWith('-j DROP')).length, 1);
  } finally {
    await IptablesBackend.cleanup(table);
  }
  assert.deepEqual(ours(), []);
});
