// ClusterDNS: the cluster DNS server. Informers on Services, EndpointSlices and Namespaces (the
// last only to tell NODATA from NXDOMAIN for `<ns>.svc` and to answer pod names only in namespaces
// that exist, as CoreDNS does) keep a ClusterZone current; UDP and TCP sockets on each listen
// address answer from it synchronously, without touching the API.
//
//   query ─► parse (FORMERR / NOTIMP / BADVERS) ─► in the zone or a reverse name we hold?
//              ├─ yes: zone records, AA set; a CNAME leaving the zone is chased upstream if forwarding
//              ├─ before the informers' first sync: SERVFAIL (clients retry; nothing negative cached)
//              └─ no:  forward (if upstreams are configured) else REFUSED — or, for in-addr.arpa /
//                      ip6.arpa names, NXDOMAIN with the reverse zone's SOA
//   reply ─► UDP: fit 512 bytes, or the EDNS size (≤ 1232); too large → TC, the client retries on TCP
//            TCP: 2-byte length framing, several queries per connection, 10 s idle timeout
//
// Why REFUSED and not SERVFAIL for other names when forwarding is off: the server is not failing, it
// declines by policy to resolve names it is not authoritative for (RFC 1035 §4.1.1 "Refused"), and
// SERVFAIL would invite clients and caches to retry as if the failure were transient. Resolvers
// treat REFUSED as "ask the next nameserver", which is the right outcome. RA is set only when
// forwarding is on (recursion is then actually available).
//
// Replies to cluster names are cached by the query's bytes after the ID (so flags, EDNS size and the
// question's spelling are part of the key) until the zone next changes; a cached reply holding
// several addresses gets them in a new random order on every hit (CoreDNS's loadbalance plugin).
// `allowFrom` drops queries from clients outside the given networks, so a server listening on the
// node's LAN address serves pods and the node but is no open resolver.
//
// With `publish`, run() also keeps the kube-system/kube-dns Service and its endpoints (this server's
// node addresses) in place: at start, when the informers see them change or vanish, and every minute.
//
// Where it listens in `kyb server`: on the node's InternalIP, port 53, UDP and TCP, bound to that
// address (not 0.0.0.0, so UDP replies leave from the address the proxy DNATed to and conntrack
// can un-DNAT them back to 10.43.0.10). kube-dns (no selector) lists <node IP>:53 as its endpoint
// and the Service proxy DNATs 10.43.0.10:53 there like any ClusterIP, for pods and for the host.
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer } from 'dns-packet';
import type { KObject } from '../api/types.js';
import { Informer, type ResourceRef, type RestClient } from '../client/index.js';
import { ClusterZone, type EndpointSliceObj, type ServiceObj } from './cluster-zone.js';
import { addressSlots, encodeReply, errorReply, parseQuery, RCODE, shuffleSlots, udpLimit, type AddressSlots, type ParsedQuery } from './dns-message.js';
import { Forwarder, parseUpstream } from './forwarder.js';
import { DEFAULT_CLUSTER_DNS_IP, DNS_NAMESPACE, DNS_SERVICE_NAME, ensureDnsEndpoints, ensureDnsService } from './kube-dns-service.js';

const SERVICES: ResourceRef = { group: '', version: 'v1', plural: 'services' };
const SLICES: ResourceRef = { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices' };
const NAMESPACES: ResourceRef = { group: '', version: 'v1', plural: 'namespaces' };
/** replies kept; the cache is emptied when full and whenever the zone changes */
const REPLY_CACHE_MAX = 10_000;

export interface ListenAddress { address: string; port: number }

export interface ClusterDNSOptions {
  client: RestClient;
  /** UDP and TCP on each; port 0 picks a free port (the same one for UDP and TCP) */
  listen: ListenAddress[];
  /** default cluster.local */
  clusterDomain?: string;
  /** upstream resolvers for names outside the cluster ("IP" or "IP:port"); default none */
  forward?: string[];
  /** TTL of answers and of negative caching; default 5 s */
  ttl?: number;
  /** per-upstream timeout; default 2000 ms */
  forwardTimeoutMs?: number;
  /** keep kube-system/kube-dns (ClusterIP `clusterIP`) pointing at this server */
  publish?: {
    clusterIP?: string;
    /** node addresses to list as endpoints; default the non-loopback listen addresses */
    addresses?: string[];
    nodeName?: string;
  };
  /** client networks served (CIDRs, e.g. the cluster CIDR, 127.0.0.0/8 and the node's own
   *  addresses); queries from anywhere else are dropped, so a server listening on the node's address
   *  is no open resolver for its LAN. Default: everyone. */
  allowFrom?: string[];
  /** errors of informers, sockets and publishing; default console.error */
  onError?(err: unknown, during: string): void;
}

export interface ClusterDNSStats {
  queries: number;
  udp: number;
  tcp: number;
  truncated: number;
  forwarded: number;
  noerror: number;
  nxdomain: number;
  refused: number;
  servfail: number;
  formerr: number;
  /** queries (UDP) and connections (TCP) from clients outside allowFrom */
  dropped: number;
}

export class ClusterDNS {
  readonly zone: ClusterZone;
  readonly stats: ClusterDNSStats = { queries: 0, udp: 0, tcp: 0, truncated: 0, forwarded: 0, noerror: 0, nxdomain: 0, refused: 0, servfail: 0, formerr: 0, dropped: 0 };
  private readonly forwarder: Forwarder;
  private readonly services: Informer<ServiceObj>;
  private readonly slices: Informer<EndpointSliceObj>;
  private readonly namespaces: Informer<KObject>;
  private syncedFlag = false;
  private bound: ListenAddress[] = [];
  private listenWaiters: Array<{ resolve(v: ListenAddress[]): void; reject(e: unknown): void }> = [];
  private listenError: unknown;
  private readonly udpSockets: dgram.Socket[] = [];
  private readonly tcpServers: net.Server[] = [];
  private readonly tcpConns = new Set<net.Socket>();
  private republish: (() => void) | undefined;
  private readonly onError: (err: unknown, during: string) => void;
  private stopSignal: AbortSignal | undefined;
  private readonly allow: net.BlockList | undefined;
  private readonly replyCache = new Map<string, { reply: Buffer; kind: 'noerror' | 'nxdomain'; truncated: boolean; slots?: AddressSlots }>();
  private cacheGeneration = -1;

  constructor(private readonly o: ClusterDNSOptions) {
    if (!o.listen.length) throw new Error('dns: no listen address');
    this.onError = o.onError ?? ((err, during) => console.error(`dns: ${during}:`, err));
    this.zone = new ClusterZone({
      domain: o.clusterDomain, ttl: o.ttl,
      nameServerAddresses: o.listen.map((l) => l.address).filter((a) => a !== '0.0.0.0' && a !== '::'),
    });
    // never forward to ourselves (a host whose resolv.conf names this server would loop)
    const self = new Set(o.listen.filter((l) => l.port !== 0).map((l) => `${l.address}#${l.port}`));
    const upstreams = (o.forward ?? []).map(parseUpstream).filter((u) => !self.has(`${u.address}#${u.port}`));
    this.forwarder = new Forwarder({ upstreams, timeoutMs: o.forwardTimeoutMs });
    if (o.allowFrom) {
      this.allow = new net.BlockList();
      for (const c of o.allowFrom) {
        const [addr, bits] = c.split('/');
        const v6 = net.isIPv6(addr);
        if (!v6 && !net.isIPv4(addr)) throw new Error(`dns: allowFrom ${JSON.stringify(c)} is not a CIDR`);
        this.allow.addSubnet(addr, bits === undefined ? (v6 ? 128 : 32) : Number(bits), v6 ? 'ipv6' : 'ipv4');
      }
    }
    const onError = (err: unknown, during: string): void => this.onError(err, `informer ${during}`);
    this.services = new Informer<ServiceObj>({ client: o.client, resource: SERVICES, onError });
    this.slices = new Informer<EndpointSliceObj>({ client: o.client, resource: SLICES, onError });
    this.namespaces = new Informer<KObject>({ client: o.client, resource: NAMESPACES, onError });
    const z = this.zone;
    const kick = (obj: KObject): void => {
      if (obj.metadata?.namespace === DNS_NAMESPACE && (obj.metadata?.name === DNS_SERVICE_NAME || obj.metadata?.labels?.['kubernetes.io/service-name'] === DNS_SERVICE_NAME)) this.republish?.();
    };
    this.services.addEventHandler({
      onAdd: (s) => z.upsertService(s),
      onUpdate: (_o, s) => { z.upsertService(s); kick(s); },
      onDelete: (s) => { z.deleteService(s); kick(s); },
    });
    this.slices.addEventHandler({
      onAdd: (s) => z.upsertEndpointSlice(s),
      onUpdate: (_o, s) => { z.upsertEndpointSlice(s); kick(s); },
      onDelete: (s) => { z.deleteEndpointSlice(s); kick(s); },
    });
    this.namespaces.addEventHandler({ onAdd: (n) => z.upsertNamespace(n), onDelete: (n) => z.deleteNamespace(n) });
  }

  /** True once Services, EndpointSlices and Namespaces have been listed (before that, cluster names get SERVFAIL). */
  get synced(): boolean { return this.syncedFlag; }

  /** Resolves true once synced, false if the signal aborts first. */
  async waitForSync(signal?: AbortSignal): Promise<boolean> {
    const r = await Promise.all([this.services.waitForSync(signal), this.slices.waitForSync(signal), this.namespaces.waitForSync(signal)]);
    if (r.every(Boolean)) this.syncedFlag = true;
    return this.syncedFlag;
  }

  /** Resolves with the addresses actually bound (port 0 replaced by the chosen port) once listening;
   *  rejects if binding failed. */
  listening(): Promise<ListenAddress[]> {
    if (this.listenError) return Promise.reject(this.listenError);
    if (this.bound.length === this.o.listen.length) return Promise.resolve(this.bound.slice());
    return new Promise((resolve, reject) => this.listenWaiters.push({ resolve, reject }));
  }

  /** Binds the sockets, runs the informers (and publishing) until signal aborts; resolves when all
   *  has stopped. Rejects at once if a listen address cannot be bound (e.g. port 53 in use). */
  async run(signal: AbortSignal): Promise<void> {
    this.stopSignal = signal;
    try {
      for (const l of this.o.listen) this.bound.push(await this.bind(l));
    } catch (e) {
      this.listenError = e;
      for (const w of this.listenWaiters.splice(0)) w.reject(e);
      this.closeSockets();
      throw e;
    }
    for (const w of this.listenWaiters.splice(0)) w.resolve(this.bound.slice());
    const runs = [this.services.run(signal), this.slices.run(signal), this.namespaces.run(signal)];
    void this.waitForSync(signal);
    const publishing = this.o.publish ? this.publishLoop(signal) : Promise.resolve();
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    this.closeSockets();
    await Promise.all([...runs, publishing]);
  }

  // ---- sockets ------------------------------------------------------------------------------

  private async bind(l: ListenAddress): Promise<ListenAddress> {
    const attempts = l.port === 0 ? 20 : 1;
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      const udp = dgram.createSocket({ type: net.isIPv6(l.address) ? 'udp6' : 'udp4' });
      try {
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject);
          udp.bind({ address: l.address, port: l.port, exclusive: true }, () => { udp.off('error', reject); resolve(); });
        });
      } catch (e) { udp.close(); throw new Error(`dns: cannot listen on udp ${l.address}:${l.port}: ${(e as Error).message}`); }
      const port = udp.address().port;
      const tcp = net.createServer((c) => this.onTcpConnection(c));
      try {
        await new Promise<void>((resolve, reject) => {
          tcp.once('error', reject);
          tcp.listen({ host: l.address, port, exclusive: true }, () => { tcp.off('error', reject); resolve(); });
        });
      } catch (e) {
        udp.close();
        last = e;
        if (l.port === 0 && (e as NodeJS.ErrnoException).code === 'EADDRINUSE') continue; // the UDP port's TCP twin is taken: another port
        throw new Error(`dns: cannot listen on tcp ${l.address}:${port}: ${(e as Error).message}`);
      }
      udp.on('message', (msg, rinfo) => this.onUdp(udp, msg, rinfo));
      udp.on('error', (e) => this.onError(e, `udp ${l.address}:${port}`));
      tcp.on('error', (e) => this.onError(e, `tcp ${l.address}:${port}`));
      this.udpSockets.push(udp);
      this.tcpServers.push(tcp);
      return { address: l.address, port };
    }
    throw new Error(`dns: no free port with both udp and tcp on ${l.address}: ${(last as Error)?.message}`);
  }

  private closeSockets(): void {
    for (const s of this.udpSockets.splice(0)) { try { s.close(); } catch { /* closed */ } }
    for (const s of this.tcpServers.splice(0)) s.close();
    for (const c of this.tcpConns) c.destroy();
    this.tcpConns.clear();
  }

  private allowed(address: string | undefined): boolean {
    if (!this.allow) return true;
    if (!address) return false;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return this.allow.check(mapped[1], 'ipv4');
    return this.allow.check(address, net.isIPv6(address) ? 'ipv6' : 'ipv4');
  }

  private onUdp(sock: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (!this.allowed(rinfo.address)) { this.stats.dropped++; return; }
    this.stats.udp++;
    const out = this.handle(msg, 'udp');
    const send = (b: Buffer | undefined): void => {
      if (b) sock.send(b, rinfo.port, rinfo.address, (err) => { if (err) this.onError(err, 'udp send'); });
    };
    if (out instanceof Promise) out.then(send, (e) => this.onError(e, 'query'));
    else send(out);
  }

  private onTcpConnection(c: net.Socket): void {
    if (!this.allowed(c.remoteAddress)) { this.stats.dropped++; c.destroy(); return; }
    this.tcpConns.add(c);
    c.setNoDelay(true);
    c.setTimeout(10_000, () => c.destroy()); // RFC 7766 §6.2.3: idle connections are closed
    let buf: Buffer = Buffer.alloc(0);
    c.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 2) {
        const n = buf.readUInt16BE(0);
        if (buf.length < 2 + n) break;
        const msg = buf.subarray(2, 2 + n);
        buf = buf.subarray(2 + n);
        this.stats.tcp++;
        const out = this.handle(msg, 'tcp');
        const send = (b: Buffer | undefined): void => {
          if (!b || c.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(b.length, 0);
          c.write(Buffer.concat([len, b]));
        };
        if (out instanceof Promise) out.then(send, (e) => this.onError(e, 'query'));
        else send(out);
      }
    });
    c.on('error', () => c.destroy());
    c.on('close', () => this.tcpConns.delete(c));
  }

  // ---- answering ----------------------------------------------------------------------------

  /**
   * Answers one encoded query as it arrived over `transport`. Synchronous for cluster names; a
   * promise when the query goes upstream. undefined: no reply (garbage, or a response packet).
   */
  handle(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined | Promise<Buffer | undefined> {
    this.stats.queries++;
    // the reply cache: the same bytes after the ID (flags, question as spelled, EDNS) over the same
    // transport get the same reply while the zone has not changed
    if (msg.length < 12 || msg.length > 512) return this.answer(msg, transport, undefined);
    if (this.cacheGeneration !== this.zone.generation || this.replyCache.size >= REPLY_CACHE_MAX) {
      this.replyCache.clear();
      this.cacheGeneration = this.zone.generation;
    }
    const key = (transport === 'udp' ? 'u' : 't') + msg.toString('latin1', 2);
    const hit = this.replyCache.get(key);
    if (hit) {
      this.stats[hit.kind]++;
      if (hit.truncated) this.stats.truncated++;
      const out = Buffer.allocUnsafe(hit.reply.length);
      hit.reply.copy(out);
      out[0] = msg[0];
      out[1] = msg[1];
      if (hit.slots) shuffleSlots(out, hit.slots); // several addresses: a new order each time
      return out;
    }
    return this.answer(msg, transport, key);
  }

  private answer(msg: Buffer, transport: 'udp' | 'tcp', cacheKey: string | undefined): Buffer | undefined | Promise<Buffer | undefined> {
    const parsed = parseQuery(msg);
    if (!parsed.ok) { if (parsed.reply) this.stats.formerr++; return parsed.reply; }
    const q = parsed.query;
    const limit = transport === 'udp' ? udpLimit(q) : 65535;
    const ra = this.forwarder.enabled;
    const qclass = q.question.class ?? 'IN';
    const qtype = q.question.type;
    if (qclass !== 'IN' && qclass !== 'ANY') return this.count(errorReply(q, RCODE.REFUSED, { recursionAvailable: ra }), 'refused');
    if (qtype === 'AXFR' || qtype === 'IXFR') return this.count(errorReply(q, RCODE.REFUSED, { recursionAvailable: ra }), 'refused');
    const name = q.question.name;
    const r = this.zone.lookup(name, qtype);
    if (!this.syncedFlag && (r.kind === 'answer' || r.reverse)) {
      return this.count(errorReply(q, RCODE.SERVFAIL, { recursionAvailable: ra }), 'servfail');
    }
    if (r.kind === 'outside') {
      if (this.forwarder.enabled) return this.forwardQuery(msg, q, transport);
      if (r.reverse) {
        return this.finish(q, {
          rcode: RCODE.NXDOMAIN, authoritative: true, recursionAvailable: ra, answers: [],
          authorities: [this.zone.soa(r.reverseZone)], additionals: [],
        }, limit, 'nxdomain', cacheKey);
      }
      return this.count(errorReply(q, RCODE.REFUSED, { recursionAvailable: ra }), 'refused');
    }
    const content = {
      rcode: RCODE[r.rcode], authoritative: true, recursionAvailable: ra,
      answers: r.answers, authorities: r.authorities, additionals: r.additionals,
    };
    if (r.chase && this.forwarder.enabled) return this.chase(q, content, r.chase, transport, limit);
    // several addresses are shuffled per reply: cached only when they can be reshuffled in place
    let addrs = 0;
    for (const a of r.answers) if (a.type === 'A' || a.type === 'AAAA') addrs++;
    return this.finish(q, content, limit, r.rcode === 'NXDOMAIN' ? 'nxdomain' : 'noerror', cacheKey, addrs > 1);
  }

  private finish(q: ParsedQuery, content: Parameters<typeof encodeReply>[1], limit: number, kind: 'noerror' | 'nxdomain', cacheKey?: string, shuffled = false): Buffer {
    const { buf, truncated } = encodeReply(q, content, limit);
    if (truncated) this.stats.truncated++;
    this.stats[kind]++;
    if (cacheKey !== undefined && this.syncedFlag) {
      const slots = shuffled ? addressSlots(buf) : undefined;
      if (!shuffled || slots) this.replyCache.set(cacheKey, { reply: buf, kind, truncated, slots });
    }
    return buf;
  }

  private count(b: Buffer, kind: 'refused' | 'servfail'): Buffer { this.stats[kind]++; return b; }

  private async forwardQuery(msg: Buffer, q: ParsedQuery, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    this.stats.forwarded++;
    const reply = await this.forwarder.forward(msg, transport === 'tcp', this.stopSignal);
    if (reply) return reply;
    return this.count(errorReply(q, RCODE.SERVFAIL, { recursionAvailable: true }), 'servfail');
  }

  /** A CNAME led outside the zone: ask upstream for the target and append its answer. */
  private async chase(q: ParsedQuery, content: Parameters<typeof encodeReply>[1], target: { name: string; type: string }, transport: 'udp' | 'tcp', limit: number): Promise<Buffer> {
    this.stats.forwarded++;
    const sub = dnsPacket.encode({ type: 'query', id: 0, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: target.name, type: target.type as 'A', class: 'IN' }] });
    const reply = await this.forwarder.forward(sub, transport === 'tcp', this.stopSignal);
    let extra: Answer[] = [];
    let rcode = content.rcode;
    if (reply) {
      try {
        const p = dnsPacket.decode(reply);
        extra = (p.answers ?? []) as Answer[];
        if ((reply.readUInt16BE(2) & 0xf) === RCODE.NXDOMAIN) rcode = RCODE.NXDOMAIN;
      } catch { /* keep the CNAME alone */ }
    }
    return this.finish(q, { ...content, rcode, answers: [...content.answers, ...extra] }, limit, rcode === RCODE.NXDOMAIN ? 'nxdomain' : 'noerror');
  }

  // ---- publishing ---------------------------------------------------------------------------

  private async publishLoop(signal: AbortSignal): Promise<void> {
    const p = this.o.publish!;
    const nonLoop = this.bound.filter((b) => b.address !== '0.0.0.0' && b.address !== '::' && !b.address.startsWith('127.') && b.address !== '::1');
    const port = (nonLoop[0] ?? this.bound[0]).port;
    const addresses = p.addresses ?? nonLoop.map((b) => b.address);
    let wake: (() => void) | undefined;
    let pending = true;
    this.republish = () => { pending = true; wake?.(); };
    let backoff = 1000;
    while (!signal.aborted) {
      if (pending) {
        pending = false;
        try {
          await ensureDnsService(this.o.client, p.clusterIP ?? DEFAULT_CLUSTER_DNS_IP, { targetPort: port });
          await ensureDnsEndpoints(this.o.client, { addresses, port, nodeName: p.nodeName });
          backoff = 1000;
        } catch (e) {
          if (signal.aborted) break;
          this.onError(e, 'publishing kube-dns');
          pending = true;
          await sleepOrWake(Math.min(backoff, 30_000), signal, (w) => { wake = w; });
          backoff *= 2;
          continue;
        }
      }
      // re-check every minute, or soon (debounced) after an event touched kube-dns — our own writes
      // included, which costs one more read-only pass
      if (!pending) {
        await sleepOrWake(60_000, signal, (w) => { wake = w; });
        if (!pending) { pending = true; continue; }
      }
      await sleepOrWake(200, signal, () => {});
    }
    this.republish = undefined;
  }
}

function sleepOrWake(ms: number, signal: AbortSignal, setWake: (w: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) { resolve(); return; }
    const done = (): void => { clearTimeout(t); signal.removeEventListener('abort', done); setWake(() => {}); resolve(); };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    setWake(done);
  });
}
