// Cluster DNS against a real in-process `kyb server` (memory store, HTTPS, real credentials): the test
// creates Services and EndpointSlices through the API and asks the DNS server on 127.0.0.1:<random
// port> over UDP and TCP with dns-packet, and with `dig` and `busybox nslookup` where installed. It
// covers A, SRV, PTR, headless Services, ExternalName, NXDOMAIN and NODATA, changes when Services
// come and go, and the kube-system/kube-dns Service that publishes the server (kubectl shows it; it
// is repaired after a deletion). No forwarding: names outside the cluster are REFUSED.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { startCluster, type TestCluster } from './cluster.js';
import { RestClient, type ResourceRef } from '../../src/client/index.js';
import { isStatusError } from '../../src/machinery/status.js';
import type { KObject } from '../../src/api/types.js';
import { ClusterDNS } from '../../src/dns/index.js';
import { dnsQuery, type DnsReply } from '../../src/dns/testing/dns-query.js';

const R = {
  ns: { group: '', version: 'v1', plural: 'namespaces' },
  svc: { group: '', version: 'v1', plural: 'services' },
  slices: { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices' },
} satisfies Record<string, ResourceRef>;

const Z = 'cluster.local';
const suffix = randomBytes(3).toString('hex');
const NS = `dns-${suffix}`;
// explicit ClusterIPs high in 10.43.0.0/16, clear of what an allocator hands out first
const octet = 200 + (randomBytes(1)[0] % 50);
const IP = (n: number): string => `10.43.${octet}.${n}`;

let c: TestCluster;
let client: RestClient;
let dns: ClusterDNS;
let port: number;
const stop = new AbortController();
let running: Promise<void>;

before(async () => {
  c = await startCluster();
  client = new RestClient({ server: c.server.api.url, token: c.server.token, caPem: c.server.caPem });
  dns = new ClusterDNS({
    client, listen: [{ address: '127.0.0.1', port: 0 }],
    // publish kube-dns; the endpoint address is a documentation address no traffic goes to
    publish: { clusterIP: '10.43.0.10', addresses: ['192.0.2.10'], nodeName: 'test-node' },
    onError: (e, during) => { if (!stop.signal.aborted) console.error(`dns ${during}:`, e); },
  });
  running = dns.run(stop.signal);
  [{ port }] = await dns.listening();
  assert.ok(await dns.waitForSync(stop.signal));
  await client.create(R.ns, null, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
});

after(async () => {
  stop.abort();
  await running;
  try { await client.delete(R.ns, null, NS); } catch { /* the server goes anyway */ }
  client.close();
  await c.stop();
});

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const q = (name: string, type = 'A', tcp = false): Promise<DnsReply> => dnsQuery({ port, name, type, tcp });
const data = (r: DnsReply, type?: string): string[] =>
  (r.answers ?? []).filter((a) => !type || a.type === type).map((a) => { const d = (a as { data: unknown }).data; return typeof d === 'string' ? d : JSON.stringify(d); });

async function resolvesTo(name: string, type: string, want: string[]): Promise<void> {
  await until(`${type} ${name} = ${want.join(',')}`, async () => {
    for (const tcp of [false, true]) {
      const r = await q(name, type, tcp);
      if (r.rcode !== 'NOERROR' || JSON.stringify(data(r, type).sort()) !== JSON.stringify([...want].sort())) return false;
    }
    return true;
  });
}

function service(name: string, spec: Record<string, unknown>): KObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS }, spec };
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) => (err && !stdout ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(String(stdout)))));
}

test('kube-system/kube-dns publishes the server at 10.43.0.10 and is repaired after a deletion', async () => {
  const out = await until('kube-dns in kubectl get svc -n kube-system', async () => {
    const r = await c.kubectl(['get', 'svc', '-n', 'kube-system'], { allowFail: true });
    return /kube-dns\s+ClusterIP\s+10\.43\.0\.10\s+<none>\s+53\/UDP,53\/TCP/.test(r.stdout) && r.stdout;
  });
  assert.match(out, /kube-dns/);
  const slice = await until('the kube-dns EndpointSlice', () => client.get(R.slices, 'kube-system', 'kube-dns'));
  assert.deepEqual((slice.endpoints as { addresses: string[] }[]).map((e) => e.addresses), [['192.0.2.10']]);
  assert.deepEqual((slice.ports as { name: string; port: number; protocol: string }[]).map((p) => [p.name, p.protocol, p.port]), [['dns', 'UDP', port], ['dns-tcp', 'TCP', port]]);
  // the zone's name server is that Service
  await resolvesTo(`ns.dns.${Z}`, 'A', ['10.43.0.10']);
  // delete it: the server puts it back
  const before = await client.get(R.svc, 'kube-system', 'kube-dns');
  await client.delete(R.svc, 'kube-system', 'kube-dns');
  await until('kube-dns re-created', async () => {
    try {
      const s = await client.get(R.svc, 'kube-system', 'kube-dns');
      return s.metadata?.uid !== before.metadata?.uid && (s.spec as { clusterIP: string }).clusterIP === '10.43.0.10';
    } catch (e) { if (isStatusError(e, 'NotFound')) return false; throw e; }
  });
  await until('its EndpointSlice re-created', async () => {
    const s = await client.get(R.slices, 'kube-system', 'kube-dns').catch(() => undefined);
    const svc = await client.get(R.svc, 'kube-system', 'kube-dns');
    return s?.metadata?.ownerReferences?.[0]?.uid === svc.metadata?.uid;
  });
  // drift (a port removed, a selector added) is put right too
  const cur = await client.get(R.svc, 'kube-system', 'kube-dns');
  const spec = cur.spec as { ports: unknown[]; selector?: Record<string, string> };
  spec.ports = spec.ports.slice(0, 1);
  spec.selector = { 'k8s-app': 'kube-dns' };
  await client.update(R.svc, 'kube-system', cur);
  await until('kube-dns repaired', async () => {
    const s = (await client.get(R.svc, 'kube-system', 'kube-dns')).spec as { ports: unknown[]; selector?: unknown };
    return s.ports.length === 2 && s.selector === undefined;
  });
});

test('ClusterIP Service: A, SRV, PTR over UDP and TCP; AAAA is NODATA; unknown names NXDOMAIN; kubernetes.default', async () => {
  await client.create(R.svc, NS, service('web', { type: 'ClusterIP', clusterIP: IP(10), ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'metrics', port: 9100, protocol: 'TCP' }] }));
  await resolvesTo(`web.${NS}.svc.${Z}`, 'A', [IP(10)]);
  await resolvesTo(`WEB.${NS.toUpperCase()}.svc.Cluster.Local`, 'A', [IP(10)]);
  const srv = await q(`_http._tcp.web.${NS}.svc.${Z}`, 'SRV');
  assert.deepEqual(srv.answers!.map((a) => (a as { data: unknown }).data), [{ priority: 0, weight: 100, port: 80, target: `web.${NS}.svc.${Z}` }]);
  assert.deepEqual(srv.additionals!.map((a) => (a as { data: unknown }).data), [IP(10)]);
  const [a, b, cc, d] = IP(10).split('.');
  await resolvesTo(`${d}.${cc}.${b}.${a}.in-addr.arpa`, 'PTR', [`web.${NS}.svc.${Z}`]);
  const aaaa = await q(`web.${NS}.svc.${Z}`, 'AAAA');
  assert.equal(aaaa.rcode, 'NOERROR');
  assert.equal(aaaa.answers!.length, 0);
  assert.equal(aaaa.authorities![0].type, 'SOA');
  assert.equal((await q(`nope.${NS}.svc.${Z}`)).rcode, 'NXDOMAIN');
  assert.equal((await q(`_nope._tcp.web.${NS}.svc.${Z}`, 'SRV')).rcode, 'NXDOMAIN');
  assert.equal((await q(`${NS}.svc.${Z}`)).rcode, 'NOERROR', 'an existing namespace is an empty non-terminal');
  assert.equal((await q(`www.example.com`)).rcode, 'REFUSED');
  // pod names
  await resolvesTo(`10-42-0-17.${NS}.pod.${Z}`, 'A', ['10.42.0.17']);
  // kubernetes.default: the API server's Service (created here if this build does not make it yet)
  let k: KObject;
  try { k = await client.get(R.svc, 'default', 'kubernetes'); } catch (e) {
    if (!isStatusError(e, 'NotFound')) throw e;
    k = await client.create(R.svc, 'default', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'kubernetes', namespace: 'default' }, spec: { type: 'ClusterIP', clusterIP: '10.43.0.1', ports: [{ name: 'https', port: 443, protocol: 'TCP' }] } });
  }
  await resolvesTo(`kubernetes.default.svc.${Z}`, 'A', [(k.spec as { clusterIP: string }).clusterIP]);
  const ks = await q(`_https._tcp.kubernetes.default.svc.${Z}`, 'SRV');
  assert.equal((ks.answers![0] as { data: { port: number } }).data.port, 443);
});

test('headless Service: ready endpoint IPs, hostnames, SRV per endpoint, PTR; ExternalName: CNAME', async () => {
  await client.create(R.svc, NS, service('db', { clusterIP: 'None', ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }] }));
  // no endpoints yet: NXDOMAIN (the specification)
  await until('db NXDOMAIN', async () => (await q(`db.${NS}.svc.${Z}`)).rcode === 'NXDOMAIN');
  await client.create(R.slices, NS, {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: 'db-x1', namespace: NS, labels: { 'kubernetes.io/service-name': 'db' } },
    endpoints: [
      { addresses: ['10.42.9.1'], hostname: 'db-0', conditions: { ready: true } },
      { addresses: ['10.42.9.2'], hostname: 'db-1', conditions: { ready: true } },
      { addresses: ['10.42.9.3'], hostname: 'db-2', conditions: { ready: false } },
    ],
    ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }],
  });
  await resolvesTo(`db.${NS}.svc.${Z}`, 'A', ['10.42.9.1', '10.42.9.2']);
  await resolvesTo(`db-1.db.${NS}.svc.${Z}`, 'A', ['10.42.9.2']);
  assert.equal((await q(`db-2.db.${NS}.svc.${Z}`)).rcode, 'NXDOMAIN', 'not ready: no record');
  const srv = await q(`_pg._tcp.db.${NS}.svc.${Z}`, 'SRV', true);
  assert.deepEqual(data(srv, 'SRV').map((s) => JSON.parse(s).target).sort(), [`db-0.db.${NS}.svc.${Z}`, `db-1.db.${NS}.svc.${Z}`]);
  await resolvesTo('1.9.42.10.in-addr.arpa', 'PTR', [`db-0.db.${NS}.svc.${Z}`]);
  // the endpoint becomes ready
  const sl = await client.get(R.slices, NS, 'db-x1');
  (sl.endpoints as { conditions: { ready: boolean } }[])[2].conditions.ready = true;
  await client.update(R.slices, NS, sl);
  await resolvesTo(`db.${NS}.svc.${Z}`, 'A', ['10.42.9.1', '10.42.9.2', '10.42.9.3']);

  await client.create(R.svc, NS, service('ext', { type: 'ExternalName', externalName: 'db.example.org' }));
  await until('ext CNAME', async () => {
    const r = await q(`ext.${NS}.svc.${Z}`);
    return r.rcode === 'NOERROR' && JSON.stringify(r.answers!.map((x) => [x.type, (x as { data: string }).data])) === JSON.stringify([['CNAME', 'db.example.org']]);
  });
});

test('a Service added then deleted appears and disappears', async () => {
  const name = `tmp-${suffix}`;
  assert.equal((await q(`${name}.${NS}.svc.${Z}`)).rcode, 'NXDOMAIN');
  await client.create(R.svc, NS, service(name, { type: 'ClusterIP', clusterIP: IP(30), ports: [{ name: 'p', port: 7, protocol: 'UDP' }] }));
  await resolvesTo(`${name}.${NS}.svc.${Z}`, 'A', [IP(30)]);
  await resolvesTo(`_p._udp.${name}.${NS}.svc.${Z}`, 'SRV', [JSON.stringify({ priority: 0, weight: 100, port: 7, target: `${name}.${NS}.svc.${Z}` })]);
  await client.delete(R.svc, NS, name);
  await until(`${name} NXDOMAIN`, async () => (await q(`${name}.${NS}.svc.${Z}`)).rcode === 'NXDOMAIN' && (await q(`${name}.${NS}.svc.${Z}`, 'A', true)).rcode === 'NXDOMAIN');
  const [a, b, cc, d] = IP(30).split('.');
  assert.equal((await q(`${d}.${cc}.${b}.${a}.in-addr.arpa`, 'PTR')).rcode, 'NXDOMAIN');
});

test('dig and busybox nslookup read the answers', { skip: !existsSync('/usr/bin/dig') && !existsSync('/bin/busybox') }, async () => {
  await resolvesTo(`web.${NS}.svc.${Z}`, 'A', [IP(10)]);
  if (existsSync('/usr/bin/dig')) {
    const args = ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1'];
    assert.equal((await run('dig', [...args, '+short', `web.${NS}.svc.${Z}`])).trim(), IP(10));
    assert.equal((await run('dig', [...args, '+short', '+tcp', `web.${NS}.svc.${Z}`])).trim(), IP(10));
    assert.equal((await run('dig', [...args, '+short', 'SRV', `_http._tcp.web.${NS}.svc.${Z}`])).trim(), `0 100 80 web.${NS}.svc.${Z}.`);
    assert.equal((await run('dig', [...args, '+short', '-x', IP(10)])).trim(), `web.${NS}.svc.${Z}.`);
    assert.match(await run('dig', [...args, `nope.${NS}.svc.${Z}`]), /status: NXDOMAIN/);
    const nodata = await run('dig', [...args, 'AAAA', `web.${NS}.svc.${Z}`]);
    assert.match(nodata, /status: NOERROR/);
    assert.match(nodata, /ANSWER: 0, AUTHORITY: 1/);
    assert.match(await run('dig', [...args, 'www.example.com']), /status: REFUSED/);
  }
  if (existsSync('/bin/busybox')) {
    const out = await run('/bin/busybox', ['nslookup', `web.${NS}.svc.${Z}`, `127.0.0.1:${port}`]);
    assert.match(out, new RegExp(`Address: ${IP(10).replace(/\./g, '\\.')}`));
    const srv = await run('/bin/busybox', ['nslookup', '-type=srv', `_http._tcp.web.${NS}.svc.${Z}`, `127.0.0.1:${port}`]);
    assert.match(srv, new RegExp(`0 100 80 web\\.${NS}\\.svc\\.cluster\\.local`));
  }
});
