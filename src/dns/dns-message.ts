// DNS wire helpers around the `dns-packet` library: decode a query defensively, build a reply with
// the right header bits, EDNS(0) OPT record and response code, and fit it into the size the
// transport allows (UDP: 512 bytes, or the requester's EDNS buffer size capped at 1232 — the DNS
// Flag Day 2020 value that avoids IP fragmentation; TCP: 65535). A reply too large for UDP first
// loses its additional section (no TC: RFC 2181 §9, the required data still fits), then answers
// from the end, and then carries the TC bit so the client retries over TCP (RFC 1035 §4.2.1,
// RFC 7766). dns-packet does not compress names, so replies are larger than CoreDNS's; the
// truncation is computed on the real encoded size.
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, OptAnswer, Question } from 'dns-packet';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type Rcode = keyof typeof RCODE;

const AA = 1 << 10, TC = 1 << 9, RD = 1 << 8, RA = 1 << 7, CD = 1 << 4;
/** the largest UDP reply we send whatever the requester advertises */
export const MAX_UDP_PAYLOAD = 1232;
/** what our OPT record advertises */
export const OUR_UDP_PAYLOAD = 1232;

export interface ParsedQuery {
  id: number;
  flags: number;
  opcode: number;
  question: Question;
  /** the requester's OPT record, if any */
  opt?: OptAnswer;
}

export type ParseOutcome =
  | { ok: true; query: ParsedQuery }
  /** reply (FORMERR / NOTIMP) when the header could be read; undefined: drop silently */
  | { ok: false; reply?: Buffer };

/** Decodes a query. Responses, garbage and short packets are dropped; malformed queries get FORMERR,
 *  opcodes other than QUERY NOTIMP, EDNS versions above 0 BADVERS (RFC 6891). */
export function parseQuery(buf: Buffer): ParseOutcome {
  if (buf.length < 12) return { ok: false };
  const id = buf.readUInt16BE(0);
  const flags = buf.readUInt16BE(2);
  if (flags & 0x8000) return { ok: false }; // a response: never answer those (reflection loops)
  const opcode = (flags >> 11) & 0xf;
  const bare = (rcode: number): Buffer => headerOnly(id, flags, rcode);
  let p: DecodedPacket;
  try { p = dnsPacket.decode(buf); } catch { return { ok: false, reply: bare(RCODE.FORMERR) }; }
  if (opcode !== 0) return { ok: false, reply: bare(RCODE.NOTIMP) };
  if (!p.questions || p.questions.length !== 1) return { ok: false, reply: bare(RCODE.FORMERR) };
  const opts = (p.additionals ?? []).filter((a): a is OptAnswer => a.type === 'OPT');
  if (opts.length > 1) return { ok: false, reply: bare(RCODE.FORMERR) };
  const opt = opts[0];
  const query: ParsedQuery = { id, flags, opcode, question: p.questions[0], opt };
  if (opt && (opt.ednsVersion ?? 0) > 0) {
    // BADVERS = 16: upper 8 bits in the OPT's extended rcode, lower 4 bits 0
    return { ok: false, reply: encodeReply(query, { rcode: 0, extendedRcode: 1, answers: [], authorities: [], additionals: [] }, 65535).buf };
  }
  return { ok: true, query };
}

function headerOnly(id: number, qflags: number, rcode: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(0x8000 | (qflags & (0x7800 | RD | CD)) | rcode, 2);
  return b;
}

/** The size limit of a reply to this query over UDP. */
export function udpLimit(q: ParsedQuery): number {
  if (!q.opt) return 512;
  return Math.max(512, Math.min(q.opt.udpPayloadSize || 512, MAX_UDP_PAYLOAD));
}

export interface ReplyContent {
  rcode: number;
  /** extended rcode bits for the OPT record (BADVERS) */
  extendedRcode?: number;
  authoritative?: boolean;
  recursionAvailable?: boolean;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
}

/** Encodes a reply to `q` that fits in `limit` bytes; truncated says whether TC was set. */
export function encodeReply(q: ParsedQuery, r: ReplyContent, limit: number): { buf: Buffer; truncated: boolean } {
  let flags = (q.flags & (0x7800 | RD | CD)) | (r.rcode & 0xf);
  if (r.authoritative) flags |= AA;
  if (r.recursionAvailable) flags |= RA;
  const opt: Answer[] = q.opt
    ? [{ type: 'OPT', name: '.', udpPayloadSize: OUR_UDP_PAYLOAD, extendedRcode: r.extendedRcode ?? 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }]
    : [];
  const packet = {
    type: 'response' as const, id: q.id, flags,
    questions: [q.question],
    answers: r.answers, authorities: r.authorities, additionals: [...r.additionals, ...opt],
  };
  if (dnsPacket.encodingLength(packet) <= limit) return { buf: dnsPacket.encode(packet), truncated: false };
  // 1) without the additional section (the OPT record stays)
  packet.additionals = opt;
  if (dnsPacket.encodingLength(packet) <= limit) return { buf: dnsPacket.encode(packet), truncated: false };
  // 2) as many answers as fit, no authority, TC set
  packet.authorities = [];
  packet.flags |= TC;
  const fixed = dnsPacket.encodingLength({ ...packet, answers: [] });
  let size = fixed;
  let n = 0;
  for (const a of r.answers) {
    const len = dnsPacket.encodingLength({ answers: [a] }) - 12;
    if (size + len > limit) break;
    size += len;
    n++;
  }
  packet.answers = r.answers.slice(0, n);
  return { buf: dnsPacket.encode(packet), truncated: true };
}

/** A reply with a bare rcode (SERVFAIL, REFUSED) and, if the query had one, an OPT record. */
export function errorReply(q: ParsedQuery, rcode: number, opts: { recursionAvailable?: boolean } = {}): Buffer {
  return encodeReply(q, { rcode, recursionAvailable: opts.recursionAvailable, answers: [], authorities: [], additionals: [] }, 65535).buf;
}

/** Rewrites the 16-bit ID of an encoded message (forwarded replies keep the client's ID). */
export function withId(buf: Buffer, id: number): Buffer {
  const out = Buffer.from(buf);
  out.writeUInt16BE(id, 0);
  return out;
}

/** Where the address data of an encoded reply sits, when its answer section is only A records or
 *  only AAAA records (of one owner): lets a cached reply be reshuffled in place on every hit. */
export interface AddressSlots { offsets: number[]; size: number }

function skipName(buf: Buffer, off: number): number {
  for (;;) {
    const len = buf[off];
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2;
    off += len + 1;
  }
}

export function addressSlots(buf: Buffer): AddressSlots | undefined {
  const qd = buf.readUInt16BE(4), an = buf.readUInt16BE(6);
  if (qd !== 1 || an < 2) return undefined;
  let off = skipName(buf, 12) + 4;
  const offsets: number[] = [];
  let type = -1;
  for (let i = 0; i < an; i++) {
    off = skipName(buf, off);
    const t = buf.readUInt16BE(off);
    const rdlen = buf.readUInt16BE(off + 8);
    if ((t !== 1 && t !== 28) || (type !== -1 && t !== type)) return undefined;
    type = t;
    offsets.push(off + 10);
    off += 10 + rdlen;
  }
  return { offsets, size: type === 1 ? 4 : 16 };
}

/** Shuffles the address data among the slots (Fisher–Yates), in place. */
export function shuffleSlots(buf: Buffer, s: AddressSlots): void {
  const tmp = Buffer.allocUnsafe(s.size);
  for (let i = s.offsets.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    if (i === j) continue;
    const a = s.offsets[i], b = s.offsets[j];
    buf.copy(tmp, 0, a, a + s.size);
    buf.copy(buf, a, b, b + s.size);
    tmp.copy(buf, b);
  }
}
