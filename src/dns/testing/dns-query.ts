// Test and bench support: send one DNS query over UDP or TCP with `dns-packet` and decode the reply.
// Loopback use only (tests and benches talk to the server they started).
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { DecodedPacket, RecordType } from 'dns-packet';

export interface DnsQueryOptions {
  address?: string;
  port: number;
  name: string;
  type?: RecordType | string;
  tcp?: boolean;
  /** add an OPT record advertising this UDP payload size */
  edns?: number;
  id?: number;
  /** RD flag; default true as stub resolvers send */
  recursionDesired?: boolean;
  timeoutMs?: number;
}

export type DnsReply = DecodedPacket & { rcode: string; size: number };

/** Encodes a query packet as a stub resolver would. */
export function encodeQuery(o: Omit<DnsQueryOptions, 'port' | 'address' | 'tcp' | 'timeoutMs'>): Buffer {
  return dnsPacket.encode({
    type: 'query', id: o.id ?? Math.floor(Math.random() * 65536),
    flags: o.recursionDesired === false ? 0 : dnsPacket.RECURSION_DESIRED,
    questions: [{ name: o.name, type: (o.type ?? 'A') as RecordType, class: 'IN' }],
    additionals: o.edns ? [{ type: 'OPT', name: '.', udpPayloadSize: o.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] : [],
  });
}

/** Sends raw bytes and resolves with the raw reply (UDP: one datagram; TCP: one framed message). */
export function sendRaw(o: { address?: string; port: number; tcp?: boolean; timeoutMs?: number }, msg: Buffer): Promise<Buffer> {
  const address = o.address ?? '127.0.0.1';
  const timeoutMs = o.timeoutMs ?? 3000;
  return new Promise((resolve, reject) => {
    const fail = (e: Error): void => { cleanup(); reject(e); };
    const timer = setTimeout(() => fail(new Error(`no DNS reply from ${address}:${o.port} within ${timeoutMs} ms`)), timeoutMs);
    let cleanup = (): void => clearTimeout(timer);
    if (!o.tcp) {
      const s = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
      cleanup = () => { clearTimeout(timer); try { s.close(); } catch { /* closed */ } };
      s.on('error', fail);
      s.on('message', (m) => { cleanup(); resolve(m); });
      s.send(msg, o.port, address);
      return;
    }
    const c = net.connect({ host: address, port: o.port });
    cleanup = () => { clearTimeout(timer); c.destroy(); };
    let buf: Buffer = Buffer.alloc(0);
    c.on('error', fail);
    c.on('connect', () => { const l = Buffer.alloc(2); l.writeUInt16BE(msg.length, 0); c.write(Buffer.concat([l, msg])); });
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) { const m = buf.subarray(2, 2 + buf.readUInt16BE(0)); cleanup(); resolve(m); }
    });
  });
}

/** One query, decoded. */
export async function dnsQuery(o: DnsQueryOptions): Promise<DnsReply> {
  const raw = await sendRaw(o, encodeQuery(o));
  const p = dnsPacket.decode(raw) as DnsReply;
  p.size = raw.length;
  return p;
}
