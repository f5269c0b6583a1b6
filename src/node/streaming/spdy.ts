// A minimal SPDY/3.1 server session: the framing kubectl's port-forward (and its SPDY exec fallback)
// speaks, over any Duplex (a raw upgraded socket, or a WebSocket carrying SPDY bytes).
//
// Why hand-written: the one npm implementation (spdy-transport) is unmaintained and its parser rejects
// SYN_STREAM frames without `:method`/`:path`, which Kubernetes streams never carry; there is no other
// maintained SPDY library for Node. SPDY/3.1 is small when only the server half is needed:
//
//  * frames: 8-byte header; control `1|version=3|type|flags|length(24)`, data `0|streamId|flags|length`.
//  * in: SYN_STREAM (a client stream with a header block), DATA, RST_STREAM, SETTINGS, PING (echoed),
//    GOAWAY, HEADERS, WINDOW_UPDATE. out: SYN_REPLY, DATA, RST_STREAM, PING, GOAWAY, WINDOW_UPDATE.
//  * header blocks are zlib streams primed with the SPDY/3 dictionary, one stateful stream per
//    direction. Incoming blocks go through a node:zlib Inflate (async, so frames are handled strictly in
//    order through a small queue). Outgoing blocks are written as zlib *stored* blocks: a valid zlib
//    stream (header with FDICT + the dictionary's Adler-32, then non-final stored deflate blocks, each
//    block closed by an empty stored block as a sync flush would), which
//    keeps writing synchronous and frame order trivially right. Our header blocks are a few bytes.
//  * flow control: we acknowledge what the consumer takes with WINDOW_UPDATE (per stream and for the
//    connection, as 3.1 says). For sending we track the peer's windows (64 KiB, or SETTINGS
//    INITIAL_WINDOW_SIZE) but only *wait* on them once the peer has shown it does flow control (sent a
//    WINDOW_UPDATE or that setting): Go's spdystream, which kubectl uses, never sends WINDOW_UPDATE, so a
//    strict sender would stall every transfer above 64 KiB. Backpressure otherwise comes from the
//    transport (write() false → wait for 'drain'; a full stream buffer pauses reading the transport).
//
// Each client stream is a SpdyStream (a Duplex): reading gives the peer's DATA, end() sends FIN,
// reset() sends RST_STREAM. reply() sends SYN_REPLY (done automatically before the first DATA).
import { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import zlib from 'node:zlib';

// ---------------------------------------------------------------------------------------------------
// The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1): 65 length-
// prefixed words followed by a run of status lines, dates and media types; 1423 bytes.
const DICT_WORDS = [
  'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset', 'accept-encoding',
  'accept-language', 'accept-ranges', 'age', 'allow', 'authorization', 'cache-control', 'connection',
  'content-base', 'content-encoding', 'content-language', 'content-length', 'content-location',
  'content-md5', 'content-range', 'content-type', 'date', 'etag', 'expect', 'expires', 'from', 'host',
  'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'last-modified',
  'location', 'max-forwards', 'pragma', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer',
  'retry-after', 'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via',
  'warning', 'www-authenticate', 'method', 'get', 'status', '200 OK', 'version', 'HTTP/1.1', 'url',
  'public', 'set-cookie', 'keep-alive', 'origin',
];
const DICT_TAIL =
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
  '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized' +
  '403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable' +
  'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT' +
  'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,' +
  'text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';

export const SPDY_DICTIONARY: Buffer = (() => {
  const parts: Buffer[] = [];
  for (const w of DICT_WORDS) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(w.length);
    parts.push(len, Buffer.from(w, 'latin1'));
  }
  parts.push(Buffer.from(DICT_TAIL, 'latin1'));
  return Buffer.concat(parts);
})();

export function adler32(b: Buffer): number {
  let a = 1;
  let s = 0;
  for (let i = 0; i < b.length; i++) {
    a = (a + b[i]) % 65521;
    s = (s + a) % 65521;
  }
  return ((s << 16) | a) >>> 0;
}

// ---------------------------------------------------------------------------------------------------
export const FrameType = {
  SYN_STREAM: 1, SYN_REPLY: 2, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, HEADERS: 8, WINDOW_UPDATE: 9,
} as const;
export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;
/** RST_STREAM status codes */
export const RstStatus = {
  PROTOCOL_ERROR: 1, INVALID_STREAM: 2, REFUSED_STREAM: 3, UNSUPPORTED_VERSION: 4, CANCEL: 5,
  INTERNAL_ERROR: 6, FLOW_CONTROL_ERROR: 7, STREAM_IN_USE: 8, STREAM_ALREADY_CLOSED: 9, FRAME_TOO_LARGE: 11,
} as const;
const SETTINGS_INITIAL_WINDOW_SIZE = 7;
const DEFAULT_WINDOW = 64 * 1024;
const ACK_THRESHOLD = DEFAULT_WINDOW / 2;
const MAX_DATA_FRAME = 32 * 1024;
/** refuse control frames above this (headers of kubelet streams are tiny) */
const MAX_CONTROL_FRAME = 1 << 20;

export type SpdyHeaders = Record<string, string>;

/** Uncompressed header block: u32 count, then (u32 len, name, u32 len, value) per pair. */
export function encodeHeaderBlock(h: SpdyHeaders): Buffer {
  const parts: Buffer[] = [];
  const entries = Object.entries(h);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(entries.length);
  parts.push(count);
  for (const [k, v] of entries) {
    for (const s of [k.toLowerCase(), v]) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      parts.push(len, b);
    }
  }
  return Buffer.concat(parts);
}

/** Names are lower-cased; several values of one name (NUL-separated on the wire) stay NUL-joined. */
export function decodeHeaderBlock(b: Buffer): SpdyHeaders {
  const out: SpdyHeaders = {};
  let off = 0;
  const u32 = (): number => {
    if (off + 4 > b.length) throw new Error('truncated SPDY header block');
    const v = b.readUInt32BE(off);
    off += 4;
    return v;
  };
  const str = (): string => {
    const n = u32();
    if (off + n > b.length) throw new Error('truncated SPDY header block');
    const s = b.toString('utf8', off, off + n);
    off += n;
    return s;
  };
  const count = u32();
  for (let i = 0; i < count; i++) {
    const k = str().toLowerCase();
    const v = str();
    out[k] = k in out ? `${out[k]}\0${v}` : v;
  }
  return out;
}

const SYNC_FLUSH_MARKER = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]);

/** Outgoing header blocks as one continuing zlib stream of stored blocks (see the file comment). */
export class HeaderCompressor {
  private started = false;
  compress(raw: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.started) {
      this.started = true;
      const hdr = Buffer.alloc(6);
      hdr[0] = 0x78; // deflate, 32 KiB window
      hdr[1] = 0xbb; // FDICT set, FLEVEL 2; (0x78bb % 31) === 0
      hdr.writeUInt32BE(adler32(SPDY_DICTIONARY), 2);
      parts.push(hdr);
    }
    for (let off = 0; off < raw.length; off += 65535) {
      const chunk = raw.subarray(off, Math.min(raw.length, off + 65535));
      const h = Buffer.alloc(5);
      h[0] = 0x00; // BFINAL=0, BTYPE=00 (stored), padding to the byte boundary
      h.writeUInt16LE(chunk.length, 1);
      h.writeUInt16LE(~chunk.length & 0xffff, 3);
      parts.push(h, chunk);
    }
    // then an empty stored block, as a sync flush emits: Go's inflater hands out a block's bytes only
    // when it reaches the next block boundary, so without it the peer would wait for the next frame
    parts.push(SYNC_FLUSH_MARKER);
    return Buffer.concat(parts);
  }
}

/** Incoming header blocks: one stateful inflater; each block is followed by a sync flush. */
export class HeaderDecompressor {
  private readonly inf = zlib.createInflate({ dictionary: SPDY_DICTIONARY });
  private chunks: Buffer[] = [];
  private failed: Error | null = null;
  constructor() {
    this.inf.on('data', (c: Buffer) => this.chunks.push(c));
    this.inf.on('error', (e) => { this.failed = e; });
  }
  decompress(block: Buffer): Promise<Buffer> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      const onErr = (e: Error): void => reject(e);
      this.inf.once('error', onErr);
      this.inf.write(block);
      this.inf.flush(zlib.constants.Z_SYNC_FLUSH, () => {
        this.inf.off('error', onErr);
        const out = Buffer.concat(this.chunks);
        this.chunks = [];
        resolve(out);
      });
    });
  }
  close(): void { this.inf.destroy(); }
}

function controlFrame(type: number, flags: number, body: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16BE(0x8000 | 3, 0);
  h.writeUInt16BE(type, 2);
  h.writeUInt32BE(((flags & 0xff) << 24 | body.length) >>> 0, 4);
  return Buffer.concat([h, body]);
}

function dataFrame(streamId: number, flags: number, data: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(streamId & 0x7fffffff, 0);
  h.writeUInt32BE(((flags & 0xff) << 24 | data.length) >>> 0, 4);
  return data.length ? Buffer.concat([h, data]) : h;
}

interface Frame { control: boolean; type: number; streamId: number; flags: number; body: Buffer }

// ---------------------------------------------------------------------------------------------------
/** One client-initiated stream. Readable: the peer's data; writable: ours (end() = FIN). */
export class SpdyStream extends Duplex {
  /** true once the peer sent FIN (or the stream was unidirectional from our side) */
  remoteFin = false;
  /** true once we sent FIN */
  localFin = false;
  /** set when either side reset the stream */
  resetStatus: number | null = null;
  replied = false;
  /** @internal flow control */
  sendWindow: number;
  /** @internal */
  recvUnacked = 0;
  /** @internal a write waiting for window */
  pendingWrite: (() => void) | null = null;

  constructor(
    private readonly session: SpdySession,
    readonly id: number,
    readonly headers: SpdyHeaders,
    sendWindow: number,
  ) {
    super({ allowHalfOpen: true });
    this.sendWindow = sendWindow;
  }

  /** SYN_REPLY with these headers (at most once; sent automatically before the first DATA). */
  reply(headers: SpdyHeaders = {}): void {
    if (this.replied || this.resetStatus !== null) return;
    this.replied = true;
    this.session._sendSynReply(this.id, headers, false);
  }

  /** RST_STREAM and destroy (idempotent). */
  reset(status: number = RstStatus.CANCEL): void {
    if (this.resetStatus === null && !(this.localFin && this.remoteFin)) {
      this.resetStatus = status;
      this.session._sendRst(this.id, status);
    }
    this.destroy();
  }

  override _read(): void { this.session._streamWantsData(this); }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.session._writeData(this, Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk), false, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.session._writeData(this, Buffer.alloc(0), true, cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.resetStatus === null && !(this.localFin && this.remoteFin)) {
      // the local side gave up on a live stream: tell the peer
      this.resetStatus = RstStatus.CANCEL;
      this.session._sendRst(this.id, RstStatus.CANCEL);
    }
    this.session._forget(this);
    cb(err);
  }
}

export interface SpdySessionEvents {
  stream: [SpdyStream];
  close: [];
}

/**
 * The server side of one SPDY/3.1 connection. Emits 'stream' for each SYN_STREAM (headers already
 * decoded), 'goaway' when the peer sent GOAWAY, and 'close' once the transport is gone.
 */
export class SpdySession extends EventEmitter {
  private buf: Buffer = Buffer.alloc(0);
  private readonly queue: Frame[] = [];
  private busy = false;
  private readonly streams = new Map<number, SpdyStream>();
  private readonly compressor = new HeaderCompressor();
  private readonly decompressor = new HeaderDecompressor();
  private lastStreamId = 0;
  private connSendWindow = DEFAULT_WINDOW;
  private initialSendWindow = DEFAULT_WINDOW;
  /** the peer showed it does flow control (sent WINDOW_UPDATE or INITIAL_WINDOW_SIZE) */
  private peerFlowControl = false;
  private readonly fullStreams = new Set<SpdyStream>();
  private goneAway = false;
  closed = false;
  private closeTimer: NodeJS.Timeout | null = null;

  constructor(private readonly transport: Duplex, head?: Buffer) {
    super();
    transport.on('data', (c: Buffer) => this.onData(c));
    transport.on('end', () => this.shutdown());
    transport.on('close', () => this.shutdown());
    transport.on('error', () => this.shutdown());
    if (head && head.length) this.onData(head);
  }

  /** Number of open streams. */
  get streamCount(): number { return this.streams.size; }

  /**
   * End the session gracefully: GOAWAY, then leave it to the peer to close the connection (so it
   * reads everything we sent), destroying the transport after graceMs at the latest.
   */
  close(graceMs = 10_000): void {
    if (this.closed) return;
    if (!this.goneAway) {
      this.goneAway = true;
      const body = Buffer.alloc(8);
      body.writeUInt32BE(this.lastStreamId & 0x7fffffff, 0);
      body.writeUInt32BE(0, 4);
      this.write(controlFrame(FrameType.GOAWAY, 0, body));
    }
    if (!this.closeTimer) {
      this.closeTimer = setTimeout(() => this.destroy(), graceMs);
      this.closeTimer.unref();
    }
  }

  /** Drop the connection at once. */
  destroy(): void {
    this.transport.destroy();
    this.shutdown();
  }

  // ----- incoming ------------------------------------------------------------------------------------
  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let off = 0;
    while (this.buf.length - off >= 8) {
      const w0 = this.buf.readUInt32BE(off);
      const w1 = this.buf.readUInt32BE(off + 4);
      const len = w1 & 0xffffff;
      const control = (w0 & 0x80000000) !== 0;
      if (control) {
        const version = (w0 >>> 16) & 0x7fff;
        if (version !== 3 || len > MAX_CONTROL_FRAME) { this.destroy(); return; }
      }
      if (this.buf.length - off < 8 + len) break;
      const body = this.buf.subarray(off + 8, off + 8 + len);
      this.queue.push(control
        ? { control, type: w0 & 0xffff, streamId: 0, flags: w1 >>> 24, body }
        : { control, type: 0, streamId: w0 & 0x7fffffff, flags: w1 >>> 24, body });
      off += 8 + len;
    }
    // keep the unparsed tail (copy it, so the big chunk it came from can be collected)
    this.buf = off === this.buf.length ? Buffer.alloc(0) : off === 0 ? this.buf : Buffer.from(this.buf.subarray(off));
    void this.drainQueue();
  }

  private async drainQueue(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length && !this.closed) {
        const f = this.queue.shift()!;
        const r = this.handleFrame(f);
        if (r) await r;
      }
    } catch {
      this.destroy();
    } finally {
      this.busy = false;
    }
  }

  private handleFrame(f: Frame): Promise<void> | void {
    if (!f.control) return this.onDataFrame(f);
    const b = f.body;
    switch (f.type) {
      case FrameType.SYN_STREAM: {
        if (b.length < 10) throw new Error('short SYN_STREAM');
        const id = b.readUInt32BE(0) & 0x7fffffff;
        return this.decompressor.decompress(b.subarray(10)).then((raw) => this.onSynStream(id, f.flags, decodeHeaderBlock(raw)));
      }
      case FrameType.HEADERS: {
        if (b.length < 4) throw new Error('short HEADERS');
        const id = b.readUInt32BE(0) & 0x7fffffff;
        return this.decompressor.decompress(b.subarray(4)).then((raw) => {
          const s = this.streams.get(id);
          if (!s) return;
          s.emit('headers', decodeHeaderBlock(raw));
          if (f.flags & FLAG_FIN) this.remoteFinish(s);
        });
      }
      case FrameType.SYN_REPLY: {
        // we never open streams; still inflate it to keep the zlib state in step
        if (b.length < 4) throw new Error('short SYN_REPLY');
        return this.decompressor.decompress(b.subarray(4)).then(() => undefined);
      }
      case FrameType.RST_STREAM: {
        if (b.length < 8) return;
        const s = this.streams.get(b.readUInt32BE(0) & 0x7fffffff);
        if (s) {
          s.resetStatus = b.readUInt32BE(4);
          s.destroy();
        }
        return;
      }
      case FrameType.SETTINGS: {
        if (b.length < 4) return;
        const n = b.readUInt32BE(0);
        for (let i = 0; i < n && 4 + i * 8 + 8 <= b.length; i++) {
          const id = b.readUInt32BE(4 + i * 8) & 0xffffff;
          const value = b.readUInt32BE(8 + i * 8);
          if (id === SETTINGS_INITIAL_WINDOW_SIZE) {
            const delta = value - this.initialSendWindow;
            this.initialSendWindow = value;
            this.peerFlowControl = true;
            for (const s of this.streams.values()) s.sendWindow += delta;
            this.runPendingWrites();
          }
        }
        return;
      }
      case FrameType.PING: {
        // odd ids come from the client; echo them unchanged (ours would be even; we send none)
        if (b.length >= 4 && (b.readUInt32BE(0) & 1) === 1) this.write(controlFrame(FrameType.PING, 0, Buffer.from(b.subarray(0, 4))));
        return;
      }
      case FrameType.GOAWAY: {
        this.goneAway = true;
        this.emit('goaway');
        return;
      }
      case FrameType.WINDOW_UPDATE: {
        if (b.length < 8) return;
        const id = b.readUInt32BE(0) & 0x7fffffff;
        const delta = b.readUInt32BE(4) & 0x7fffffff;
        this.peerFlowControl = true;
        if (id === 0) this.connSendWindow += delta;
        else {
          const s = this.streams.get(id);
          if (s) s.sendWindow += delta;
        }
        this.runPendingWrites();
        return;
      }
      default:
        return; // unknown control frames are ignored, as the spec says
    }
  }

  private onSynStream(id: number, flags: number, headers: SpdyHeaders): void {
    if (this.closed) return;
    if (id === 0 || id % 2 === 0 || id <= this.lastStreamId) {
      this._sendRst(id, RstStatus.PROTOCOL_ERROR);
      return;
    }
    this.lastStreamId = id;
    if (this.goneAway) {
      this._sendRst(id, RstStatus.REFUSED_STREAM);
      return;
    }
    const s = new SpdyStream(this, id, headers, this.initialSendWindow);
    this.streams.set(id, s);
    if (flags & FLAG_UNIDIRECTIONAL) { s.localFin = true; s.replied = true; }
    this.emit('stream', s);
    if (flags & FLAG_FIN) this.remoteFinish(s);
  }

  private onDataFrame(f: Frame): void {
    const s = this.streams.get(f.streamId);
    if (!s) {
      // data for a stream that never existed is a protocol error; for a finished one, ignore it
      if (f.streamId > this.lastStreamId) this._sendRst(f.streamId, RstStatus.INVALID_STREAM);
      return;
    }
    if (s.remoteFin) return;
    if (f.body.length) {
      s.recvUnacked += f.body.length;
      // copy: the frame body is a view into a transport chunk that may be large
      if (!s.push(Buffer.from(f.body))) {
        this.fullStreams.add(s);
        this.transport.pause();
      } else this.maybeAck(s);
    }
    if (f.flags & FLAG_FIN) this.remoteFinish(s);
  }

  private remoteFinish(s: SpdyStream): void {
    if (s.remoteFin) return;
    s.remoteFin = true;
    s.push(null);
    if (s.localFin) this._forget(s);
  }

  private maybeAck(s: SpdyStream): void {
    if (s.recvUnacked < ACK_THRESHOLD || this.closed) return;
    const n = s.recvUnacked;
    s.recvUnacked = 0;
    const stream = Buffer.alloc(8);
    stream.writeUInt32BE(s.id, 0);
    stream.writeUInt32BE(n, 4);
    const conn = Buffer.alloc(8);
    conn.writeUInt32BE(0, 0);
    conn.writeUInt32BE(n, 4);
    if (!s.remoteFin) this.write(controlFrame(FrameType.WINDOW_UPDATE, 0, stream));
    this.write(controlFrame(FrameType.WINDOW_UPDATE, 0, conn));
  }

  /** @internal a stream's consumer wants more */
  _streamWantsData(s: SpdyStream): void {
    this.maybeAck(s);
    if (this.fullStreams.delete(s) && this.fullStreams.size === 0 && !this.closed) this.transport.resume();
  }

  /** @internal a stream is done (both FINs, reset, or destroyed) */
  _forget(s: SpdyStream): void {
    if (this.streams.get(s.id) === s) this.streams.delete(s.id);
    if (this.fullStreams.delete(s) && this.fullStreams.size === 0 && !this.closed) this.transport.resume();
  }

  // ----- outgoing ------------------------------------------------------------------------------------
  private write(b: Buffer): boolean {
    if (this.closed || this.transport.destroyed || this.transport.writableEnded) return true;
    return this.transport.write(b);
  }

  /** @internal */
  _sendSynReply(id: number, headers: SpdyHeaders, fin: boolean): void {
    const idb = Buffer.alloc(4);
    idb.writeUInt32BE(id & 0x7fffffff);
    const block = this.compressor.compress(encodeHeaderBlock(headers));
    this.write(controlFrame(FrameType.SYN_REPLY, fin ? FLAG_FIN : 0, Buffer.concat([idb, block])));
  }

  /** @internal */
  _sendRst(id: number, status: number): void {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(id & 0x7fffffff, 0);
    b.writeUInt32BE(status, 4);
    this.write(controlFrame(FrameType.RST_STREAM, 0, b));
  }

  /** @internal DATA frames for a stream's write (fin: an empty final frame), honouring windows. */
  _writeData(s: SpdyStream, chunk: Buffer, fin: boolean, cb: (err?: Error | null) => void): void {
    if (s.resetStatus !== null || this.closed || s.localFin) { cb(); return; }
    if (!s.replied) s.reply();
    let off = 0;
    const step = (): void => {
      s.pendingWrite = null;
      if (s.resetStatus !== null || this.closed) { cb(); return; }
      let ok = true;
      if (fin) {
        s.localFin = true;
        ok = this.write(dataFrame(s.id, FLAG_FIN, Buffer.alloc(0)));
        if (s.remoteFin) this._forget(s);
      }
      while (off < chunk.length) {
        let n = Math.min(chunk.length - off, MAX_DATA_FRAME);
        if (this.peerFlowControl) n = Math.min(n, s.sendWindow, this.connSendWindow);
        if (n <= 0) { s.pendingWrite = step; return; }
        ok = this.write(dataFrame(s.id, 0, chunk.subarray(off, off + n)));
        s.sendWindow -= n;
        this.connSendWindow -= n;
        off += n;
      }
      if (!ok && !this.transport.destroyed) this.waitDrain(cb);
      else cb();
    };
    step();
  }

  private waitDrain(cb: () => void): void {
    const done = (): void => {
      this.transport.off('drain', done);
      this.transport.off('close', done);
      cb();
    };
    this.transport.on('drain', done);
    this.transport.on('close', done);
  }

  private runPendingWrites(): void {
    for (const s of [...this.streams.values()]) {
      const w = s.pendingWrite;
      if (w && s.sendWindow > 0 && this.connSendWindow > 0) w();
    }
  }

  private shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.decompressor.close();
    for (const s of [...this.streams.values()]) {
      const w = s.pendingWrite;
      s.pendingWrite = null;
      if (s.resetStatus === null) s.resetStatus = RstStatus.CANCEL; // nothing can be sent any more
      s.destroy();
      w?.();
    }
    this.streams.clear();
    if (!this.transport.destroyed) this.transport.destroy();
    this.emit('close');
  }
}
