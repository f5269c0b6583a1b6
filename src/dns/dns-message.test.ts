// The wire helpers: UDP size limits with and without EDNS, what truncation drops first, the TC bit,
// header bits copied from the query, and the in-place reshuffle of cached address answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dnsPacket from 'dns-packet';
import type { Answer } from 'dns-packet';
import { addressSlots, encodeReply, parseQuery, RCODE, shuffleSlots, udpLimit, type ParsedQuery } from './dns-message.js';
import { encodeQuery } from './testing/dns-query.js';

function parsed(o: Parameters<typeof encodeQuery>[0]): ParsedQuery {
  const r = parseQuery(encodeQuery(o));
  assert.ok(r.ok);
  return r.query;
}

const A = (name: string, ip: string): Answer => ({ type: 'A', name, ttl: 5, class: 'IN', data: ip });

test('UDP limits: 512 without EDNS, the advertised size with it, capped at 1232, never below 512', () => {
  assert.equal(udpLimit(parsed({ name: 'a.b', id: 1 })), 512);
  assert.equal(udpLimit(parsed({ name: 'a.b', id: 1, edns: 1000 })), 1000);
  assert.equal(udpLimit(parsed({ name: 'a.b', id: 1, edns: 4096 })), 1232);
  assert.equal(udpLimit(parsed({ name: 'a.b', id: 1, edns: 100 })), 512);
});

test('truncation drops the additional section first (no TC), then answers (TC), and keeps the header bits', () => {
  const name = 'x.ns.svc.cluster.local';
  const q = parsed({ name, type: 'SRV', id: 77 });
  const answers = Array.from({ length: 5 }, (_, i) => ({ type: 'SRV', name, ttl: 5, class: 'IN', data: { priority: 0, weight: 20, port: 80, target: `e${i}.x.ns.svc.cluster.local` } }) as Answer);
  const additionals = Array.from({ length: 5 }, (_, i) => A(`e${i}.x.ns.svc.cluster.local`, `10.0.0.${i}`));
  const full = encodeReply(q, { rcode: 0, authoritative: true, answers, authorities: [], additionals }, 65535);
  const fullSize = full.buf.length;
  const answersOnly = fullSize - additionals.reduce((n, a) => n + dnsPacket.encodingLength({ answers: [a] }) - 12, 0);
  // room for the answers but not the additional records: no TC
  const r1 = encodeReply(q, { rcode: 0, authoritative: true, answers, authorities: [], additionals }, answersOnly + 10);
  const d1 = dnsPacket.decode(r1.buf);
  assert.equal(r1.truncated, false);
  assert.equal(d1.flag_tc, false);
  assert.equal(d1.answers!.length, 5);
  assert.equal(d1.additionals!.length, 0);
  // room for fewer answers: TC, as many whole answers as fit
  const r2 = encodeReply(q, { rcode: 0, authoritative: true, answers, authorities: [], additionals }, answersOnly - 20);
  const d2 = dnsPacket.decode(r2.buf);
  assert.ok(r2.truncated && d2.flag_tc);
  assert.equal(d2.answers!.length, 4);
  assert.ok(r2.buf.length <= answersOnly - 20);
  assert.equal(d2.id, 77);
  assert.ok(d2.flag_qr && d2.flag_aa && d2.flag_rd);
  assert.equal((d2 as unknown as { rcode: string }).rcode, 'NOERROR');
});

test('rcodes and flags: NXDOMAIN, AA on, RA off', () => {
  const q = parsed({ name: 'a.b', id: 5 });
  const d = dnsPacket.decode(encodeReply(q, { rcode: RCODE.NXDOMAIN, authoritative: true, recursionAvailable: false, answers: [], authorities: [], additionals: [] }, 512).buf) as unknown as { rcode: string; flag_ra: boolean; flag_aa: boolean };
  assert.equal(d.rcode, 'NXDOMAIN');
  assert.equal(d.flag_ra, false);
  assert.equal(d.flag_aa, true);
});

test('address slots: found only for all-A (or all-AAAA) answers; reshuffling keeps the same set', () => {
  const name = 'hl.ns.svc.cluster.local';
  const q = parsed({ name, id: 9 });
  const ips = Array.from({ length: 8 }, (_, i) => `10.42.0.${i + 1}`);
  const { buf } = encodeReply(q, { rcode: 0, answers: ips.map((ip) => A(name, ip)), authorities: [], additionals: [] }, 512);
  const slots = addressSlots(buf);
  assert.ok(slots);
  assert.equal(slots.offsets.length, 8);
  const orders = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const copy = Buffer.from(buf);
    shuffleSlots(copy, slots);
    const got = dnsPacket.decode(copy).answers!.map((a) => (a as { data: string }).data);
    assert.deepEqual([...got].sort(), [...ips].sort());
    orders.add(got.join());
  }
  assert.ok(orders.size > 1, 'the order changes');
  const mixed = encodeReply(q, { rcode: 0, answers: [{ type: 'CNAME', name, ttl: 5, class: 'IN', data: 'x.y' }, A('x.y', '1.2.3.4'), A('x.y', '1.2.3.5')], authorities: [], additionals: [] }, 512).buf;
  assert.equal(addressSlots(mixed), undefined);
});
