// The DNS server on loopback, fed by informers over a fake list/watch client (no API server): UDP and
// TCP, SERVFAIL before the first sync, TC and the TCP retry for large answers, EDNS sizes, FORMERR,
// NOTIMP, BADVERS, REFUSED and reverse NXDOMAIN without forwarding, and forwarding to a fake upstream
// resolver on 127.0.0.1 (never to a real one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';
import type { KObject } from '../api/types.js';
import type { ListWatchClient, ResourceRef, RestClient, WatchEvent } from '../client/index.js';
import { ClusterDNS } from './cluster-dns.js';
import { dnsQuery, sendRaw } from './testing/dns-query.js';

const Z = 'cluster.local';

type Push = (plural: string, type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: KObject) => void;

/** Lists `items`; watches deliver what `push` sends (and nothing else) until aborted. */
function fakeClient(items: Record<string, KObject[]>, gate: Promise<void> = Promise.resolve()): RestClient & { push: Push } {
  const queues = new Map<string, { events: { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: KObject }[]; wake?: () => void }>();
  let rv = 1;
  const c: ListWatchClient & { push: Push } = {
    async list<T extends KObject>(res: ResourceRef) {
      await gate;
      return { metadata: { resourceVersion: String(rv) }, items: (items[res.plural] ?? []) as T[] };
    },
    watch<T extends KObject>(res: ResourceRef, _ns: string | null | undefined, _opts?: unknown, signal?: AbortSignal): AsyncIterable<WatchEvent<T>> {
      const q = { events: [] as { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: KObject }[], wake: undefined as (() => void) | undefined };
      queues.set(res.plural, q);
      return {
        async *[Symbol.asyncIterator]() {
          while (!signal?.aborted) {
            const ev = q.events.shift();
            if (ev) { yield ev as WatchEvent<T>; continue; }
            await new Promise<void>((r) => { q.wake = r; signal?.addEventListener('abort', () => r(), { once: true }); });
          }
        },
      };
    },
    push(plural, type, obj) {
      const q = queues.get(plural)!;
      q.events.push({ type, object: { ...obj, metadata: { ...obj.metadata, resourceVersion: String(++rv) } } });
      q.wake?.();
    },
  };
  return c as unknown as RestClient & { push: Push };
}

const many = Array.from({ length: 40 }, (_, i) => `10.42.7.${i + 1}`);
const objects: Record<string, KObject[]> = {
  namespaces: [{ metadata: { name: 'default' } }, { metadata: { name: 'prod' } }],
  services: [
    { metadata: { namespace: 'prod', name: 'web' }, spec: { type: 'ClusterIP', clusterIP: '10.43.5.6', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } },
    { metadata: { namespace: 'prod', name: 'big' }, spec: { type: 'ClusterIP', clusterIP: 'None' } },
    { metadata: { namespace: 'prod', name: 'ext' }, spec: { type: 'ExternalName', externalName: 'upstream.test' } },
  ],
  endpointslices: [
    { metadata: { namespace: 'prod', name: 'big-1', labels: { 'kubernetes.io/service-name': 'big' } }, addressType: 'IPv4', endpoints: many.map((a) => ({ addresses: [a] })), ports: [] },
  ],
};

async function withServer(o: { forward?: string[]; gate?: Promise<void>; allowFrom?: string[] }, f: (port: number, dns: ClusterDNS, push: Push) => Promise<void>): Promise<void> {
  const stop = new AbortController();
  const client = fakeClient(objects, o.gate);
  const dns = new ClusterDNS({ client, listen: [{ address: '127.0.0.1', port: 0 }], forward: o.forward, allowFrom: o.allowFrom, forwardTimeoutMs: 500, onError: () => {} });
  const run = dns.run(stop.signal);
  try {
    const [{ port }] = await dns.listening();
    if (!o.gate) assert.ok(await dns.waitForSync(stop.signal));
    await f(port, dns, client.push);
  } finally {
    stop.abort();
    await run;
  }
}

const data = (r: { answers?: unknown[] }): string[] => (r.answers ?? []).map((a) => (a as { data: string }).data);

async function until(f: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('answers over UDP and TCP on one port; SERVFAIL until the informers have synced', async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => { open = r; });
  await withServer({ gate }, async (port, dns) => {
    const early = await dnsQuery({ port, name: `web.prod.svc.${Z}` });
    assert.equal(early.rcode, 'SERVFAIL');
    assert.equal((await dnsQuery({ port, name: 'example.com' })).rcode, 'REFUSED', 'non-cluster names do not wait for the sync');
    open();
    assert.ok(await dns.waitForSync());
    for (const tcp of [false, true]) {
      const r = await dnsQuery({ port, name: `web.prod.svc.${Z}`, tcp, id: 4242 });
      assert.equal(r.id, 4242);
      assert.equal(r.rcode, 'NOERROR');
      assert.ok(r.flag_aa && r.flag_qr && r.flag_rd && !r.flag_ra, 'authoritative, RD echoed, no recursion available');
      assert.deepEqual(r.answers!.map((a) => [a.name, a.type, (a as { ttl?: number }).ttl, (a as { data: string }).data]), [[`web.prod.svc.${Z}`, 'A', 5, '10.43.5.6']]);
    }
    const nx = await dnsQuery({ port, name: `nope.prod.svc.${Z}` });
    assert.equal(nx.rcode, 'NXDOMAIN');
    assert.equal(nx.authorities![0].type, 'SOA');
    const nodata = await dnsQuery({ port, name: `web.prod.svc.${Z}`, type: 'AAAA' });
    assert.equal(nodata.rcode, 'NOERROR');
    assert.equal(nodata.answers!.length, 0);
    assert.equal(nodata.authorities![0].type, 'SOA');
  });
});

test('large answers: TC over UDP at 512 bytes (or the EDNS size), the whole answer over TCP', async () => {
  await withServer({}, async (port, dns) => {
    const udp = await dnsQuery({ port, name: `big.prod.svc.${Z}` });
    assert.ok(udp.flag_tc, 'TC set');
    assert.ok(udp.size <= 512, `UDP reply ${udp.size} bytes`);
    assert.ok(udp.answers!.length > 0 && udp.answers!.length < 40);
    const edns = await dnsQuery({ port, name: `big.prod.svc.${Z}`, edns: 4096 });
    assert.ok(edns.size <= 1232, `EDNS reply capped at 1232 (got ${edns.size})`);
    assert.equal(edns.flag_tc, edns.answers!.length < 40);
    assert.equal(edns.additionals!.filter((a) => a.type === 'OPT').length, 1, 'an OPT record answers an OPT record');
    const tcp = await dnsQuery({ port, name: `big.prod.svc.${Z}`, tcp: true });
    assert.ok(!tcp.flag_tc);
    assert.deepEqual(tcp.answers!.map((a) => (a as { data: string }).data).sort(), [...many].sort());
    assert.ok(dns.stats.truncated >= 1);
  });
});

test('the reply cache: IDs and question case preserved, addresses reshuffled, changes seen at once', async () => {
  await withServer({}, async (port, _dns, push) => {
    for (const id of [1, 2, 3]) {
      const r = await dnsQuery({ port, name: `Web.Prod.svc.${Z}`, id });
      assert.equal(r.id, id);
      assert.equal(r.questions![0].name, `Web.Prod.svc.${Z}`);
      assert.deepEqual(data(r), ['10.43.5.6']);
    }
    const orders = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const r = await dnsQuery({ port, name: `big.prod.svc.${Z}`, tcp: true });
      assert.deepEqual(data(r).sort(), [...many].sort());
      orders.add(data(r).join());
    }
    assert.ok(orders.size > 1, 'headless addresses come in a new order each time');
    // a change reaches the next query, cached replies notwithstanding
    push('services', 'MODIFIED', { metadata: { namespace: 'prod', name: 'web' }, spec: { type: 'ClusterIP', clusterIP: '10.43.5.7', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } });
    await until(async () => data(await dnsQuery({ port, name: `Web.Prod.svc.${Z}` })).join() === '10.43.5.7');
    push('services', 'DELETED', { metadata: { namespace: 'prod', name: 'web' } });
    await until(async () => (await dnsQuery({ port, name: `Web.Prod.svc.${Z}` })).rcode === 'NXDOMAIN');
  });
});

test('malformed and unsupported queries: FORMERR, NOTIMP, BADVERS, responses ignored', async () => {
  await withServer({}, async (port) => {
    const garbage = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    const r1 = dnsPacket.decode(await sendRaw({ port }, garbage));
    assert.equal(r1.id, 0x1234);
    assert.equal((r1 as { rcode?: string }).rcode, 'FORMERR');
    const status = dnsPacket.encode({ type: 'query', id: 7, flags: 2 << 11, questions: [{ name: 'x', type: 'A' }] });
    assert.equal((dnsPacket.decode(await sendRaw({ port }, status)) as { rcode?: string }).rcode, 'NOTIMP');
    const v1 = dnsPacket.encode({ type: 'query', id: 8, questions: [{ name: `web.prod.svc.${Z}`, type: 'A' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 1, flags: 0, flag_do: false, options: [] }] });
    const bad = dnsPacket.decode(await sendRaw({ port }, v1));
    const opt = bad.additionals!.find((a) => a.type === 'OPT') as { extendedRcode: number };
    assert.equal(opt.extendedRcode, 1, 'BADVERS (16) = extended rcode 1');
    // a response packet gets no reply (no reflection loops): the next query is answered normally
    const sock = dgram.createSocket('udp4');
    const got: Buffer[] = [];
    sock.on('message', (m) => got.push(m));
    await new Promise<void>((r) => sock.send(dnsPacket.encode({ type: 'response', id: 9, questions: [{ name: 'x', type: 'A' }] }), port, '127.0.0.1', () => r()));
    await new Promise<void>((r) => sock.send(dnsPacket.encode({ type: 'query', id: 10, questions: [{ name: `web.prod.svc.${Z}`, type: 'A' }] }), port, '127.0.0.1', () => r()));
    for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    sock.close();
    assert.deepEqual(got.map((m) => m.readUInt16BE(0)), [10]);
  });
});

test('without forwarding: other names REFUSED, reverse names we do not hold NXDOMAIN', async () => {
  await withServer({}, async (port, dns) => {
    const r = await dnsQuery({ port, name: 'example.com' });
    assert.equal(r.rcode, 'REFUSED');
    assert.ok(!r.flag_ra);
    const rev = await dnsQuery({ port, name: '8.8.8.8.in-addr.arpa', type: 'PTR' });
    assert.equal(rev.rcode, 'NXDOMAIN');
    assert.equal((rev.authorities![0] as { name: string }).name, 'in-addr.arpa');
    const ptr = await dnsQuery({ port, name: '6.5.43.10.in-addr.arpa', type: 'PTR' });
    assert.deepEqual(ptr.answers!.map((a) => (a as { data: string }).data), [`web.prod.svc.${Z}`]);
    const ext = await dnsQuery({ port, name: `ext.prod.svc.${Z}` });
    assert.deepEqual(ext.answers!.map((a) => [a.type, (a as { data: string }).data]), [['CNAME', 'upstream.test']], 'the CNAME alone');
    assert.equal(dns.stats.forwarded, 0);
  });
});

test('with forwarding (to a fake resolver on 127.0.0.1): other names relayed, ExternalName targets chased', async () => {
  const upstream = dgram.createSocket('udp4');
  const seen: string[] = [];
  upstream.on('message', (m, rinfo) => {
    const q = dnsPacket.decode(m);
    const name = q.questions![0].name;
    seen.push(name);
    const answers = name === 'gone.test' ? [] : [{ type: 'A' as const, name, ttl: 60, data: '192.0.2.7' }];
    upstream.send(dnsPacket.encode({ type: 'response', id: q.id, flags: (name === 'gone.test' ? 3 : 0) | dnsPacket.RECURSION_AVAILABLE, questions: q.questions, answers }), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', () => r()));
  const up = `127.0.0.1:${upstream.address().port}`;
  try {
    await withServer({ forward: [up] }, async (port, dns) => {
      const r = await dnsQuery({ port, name: 'www.example.test', id: 777 });
      assert.equal(r.id, 777, "the client's ID is restored");
      assert.deepEqual(r.answers!.map((a) => (a as { data: string }).data), ['192.0.2.7']);
      assert.equal((await dnsQuery({ port, name: 'gone.test' })).rcode, 'NXDOMAIN');
      const ext = await dnsQuery({ port, name: `ext.prod.svc.${Z}` });
      assert.deepEqual(ext.answers!.map((a) => [a.type, (a as { data: string }).data]), [['CNAME', 'upstream.test'], ['A', '192.0.2.7']]);
      assert.ok(ext.flag_ra, 'recursion available when forwarding');
      // cluster names never go upstream
      await dnsQuery({ port, name: `web.prod.svc.${Z}` });
      assert.ok(!seen.some((n) => n.endsWith(Z)));
      assert.equal(dns.stats.forwarded, 3);
    });
  } finally {
    upstream.close();
  }
  // an upstream that does not answer: SERVFAIL after the timeout
  await withServer({ forward: ['127.0.0.1:9'] }, async (port) => {
    assert.equal((await dnsQuery({ port, name: 'www.example.test', timeoutMs: 5000 })).rcode, 'SERVFAIL');
  });
});

test('allowFrom: clients outside the listed networks get no answer', async () => {
  await withServer({ allowFrom: ['10.42.0.0/16'] }, async (port, dns) => {
    await assert.rejects(dnsQuery({ port, name: `web.prod.svc.${Z}`, timeoutMs: 300 }), /no DNS reply/);
    await assert.rejects(dnsQuery({ port, name: `web.prod.svc.${Z}`, tcp: true, timeoutMs: 300 }));
    assert.equal(dns.stats.dropped, 2);
  });
  await withServer({ allowFrom: ['10.42.0.0/16', '127.0.0.0/8'] }, async (port) => {
    assert.equal((await dnsQuery({ port, name: `web.prod.svc.${Z}` })).rcode, 'NOERROR');
    assert.equal((await dnsQuery({ port, name: `web.prod.svc.${Z}`, tcp: true })).rcode, 'NOERROR');
  });
});

test('binding a port in use fails run() with a clear error', async () => {
  const taken = dgram.createSocket('udp4');
  await new Promise<void>((r) => taken.bind(0, '127.0.0.1', () => r()));
  try {
    const dns = new ClusterDNS({ client: fakeClient(objects), listen: [{ address: '127.0.0.1', port: taken.address().port }], onError: () => {} });
    const stop = new AbortController();
    await assert.rejects(dns.run(stop.signal), /cannot listen on udp 127\.0\.0\.1:\d+/);
    await assert.rejects(dns.listening());
  } finally {
    taken.close();
  }
});
