// Forwarding of names outside the cluster domain to upstream resolvers (CoreDNS's `forward .
// /etc/resolv.conf`). Off unless the server is given upstreams; tests never turn it on against
// anything but a fake resolver on loopback. Each forwarded query goes out from a fresh socket with a
// random source port and a random ID (the client's ID is put back on the reply), to each upstream in
// turn until one answers within the timeout. Over UDP a truncated reply is fetched again over TCP;
// a query that came over TCP goes upstream over TCP.
import dgram from 'node:dgram';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';

export interface Upstream { address: string; port: number }

/** "1.2.3.4", "1.2.3.4:5353", "fd00::1", "[fd00::1]:5353" */
export function parseUpstream(s: string): Upstream {
  const t = s.trim();
  const m6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(t);
  if (m6 && net.isIPv6(m6[1])) return { address: m6[1], port: m6[2] ? Number(m6[2]) : 53 };
  if (net.isIPv6(t)) return { address: t, port: 53 };
  const m4 = /^([^:]+)(?::(\d+))?$/.exec(t);
  if (m4 && net.isIPv4(m4[1])) return { address: m4[1], port: m4[2] ? Number(m4[2]) : 53 };
  throw new Error(`dns: bad upstream resolver address ${JSON.stringify(s)} (want IP or IP:port)`);
}

/** The nameservers of the host's resolv.conf (what `kyb server` forwards to when asked). */
export function hostNameservers(path = '/etc/resolv.conf'): string[] {
  let text: string;
  try { text = readFileSync(path, 'utf8'); } catch { return []; }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && (net.isIPv4(m[1]) || net.isIPv6(m[1].split('%')[0]))) out.push(m[1].split('%')[0]);
  }
  return out;
}

export interface ForwarderOptions {
  upstreams: Array<string | Upstream>;
  /** per upstream; default 2000 ms */
  timeoutMs?: number;
}

export class Forwarder {
  readonly upstreams: Upstream[];
  private readonly timeoutMs: number;

  constructor(o: ForwarderOptions) {
    this.upstreams = o.upstreams.map((u) => (typeof u === 'string' ? parseUpstream(u) : u));
    this.timeoutMs = o.timeoutMs ?? 2000;
  }

  get enabled(): boolean { return this.upstreams.length > 0; }

  /** Sends an encoded query upstream; resolves with the encoded reply (carrying the query's ID), or
   *  undefined when no upstream answered. */
  async forward(query: Buffer, overTcp: boolean, signal?: AbortSignal): Promise<Buffer | undefined> {
    const clientId = query.readUInt16BE(0);
    const q = Buffer.from(query);
    for (const u of this.upstreams) {
      if (signal?.aborted) return undefined;
      const id = randomInt(0, 65536);
      q.writeUInt16BE(id, 0);
      try {
        let reply = overTcp ? await this.tcp(u, q, signal) : await this.udp(u, q, id, signal);
        if (!overTcp && reply && (reply.readUInt16BE(2) & 0x0200)) reply = (await this.tcp(u, q, signal)) ?? reply;
        if (reply && reply.length >= 12 && reply.readUInt16BE(0) === id) {
          const out = Buffer.from(reply);
          out.writeUInt16BE(clientId, 0);
          return out;
        }
      } catch { /* next upstream */ }
    }
    return undefined;
  }

  private udp(u: Upstream, q: Buffer, id: number, signal?: AbortSignal): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const sock = dgram.createSocket(net.isIPv6(u.address) ? 'udp6' : 'udp4');
      let done = false;
      const finish = (v: Buffer | undefined): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        try { sock.close(); } catch { /* closed */ }
        resolve(v);
      };
      const onAbort = (): void => finish(undefined);
      const timer = setTimeout(() => finish(undefined), this.timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      sock.on('error', () => finish(undefined));
      // a connected socket receives only from the upstream; the ID must match too
      sock.on('message', (msg) => { if (msg.length >= 12 && msg.readUInt16BE(0) === id) finish(msg); });
      sock.connect(u.port, u.address, () => sock.send(q, (err) => { if (err) finish(undefined); }));
    });
  }

  private tcp(u: Upstream, q: Buffer, signal?: AbortSignal): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const sock = net.connect({ host: u.address, port: u.port });
      let buf = Buffer.alloc(0);
      let done = false;
      const finish = (v: Buffer | undefined): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        sock.destroy();
        resolve(v);
      };
      const onAbort = (): void => finish(undefined);
      const timer = setTimeout(() => finish(undefined), this.timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      sock.on('error', () => finish(undefined));
      sock.on('close', () => finish(undefined));
      sock.on('connect', () => {
        const len = Buffer.alloc(2);
        len.writeUInt16BE(q.length, 0);
        sock.write(Buffer.concat([len, q]));
      });
      sock.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 2) {
          const n = buf.readUInt16BE(0);
          if (buf.length >= 2 + n) finish(buf.subarray(2, 2 + n));
        }
      });
    });
  }
}
