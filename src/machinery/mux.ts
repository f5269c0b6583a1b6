// A stream multiplexer over one WebSocket: many independent byte streams, each a Node `Duplex`,
// share one connection. The API server uses it to reach node agents through the connection each
// agent dials out to it (the agent may sit behind NAT), the idea of k3s's remotedialer; every stream
// carries one HTTP/1.1 exchange (or one upgraded WebSocket/SPDY session) to the agent's streaming server.
//
// Wire format: one binary WebSocket message per frame, `[op u8][stream id u32 BE][payload]`.
//   OPEN   the sender starts stream `id` (payload empty); ids are odd from the 'client' side (the one
//          that dialled the WebSocket) and even from the 'server' side, so both may open streams
//   DATA   payload bytes for the stream; never more than the receiver's remaining window
//   END    the sender will write no more (half-close, like TCP FIN); the other direction stays open
//   RESET  abort the stream; payload `[kind u8][utf-8 message]`, kind 0 = the peer closed its end
//          (a graceful destroy), 1 = an error
//   WINDOW payload u32: the receiver consumed that many more bytes; the sender may send them
// Flow control is per stream and credit based (like HTTP/2): each side may have at most WINDOW bytes
// in flight or unread per stream; the receiver returns credit only as its reader consumes data, so a
// slow reader stalls only its own stream, never the connection. When the WebSocket's own send buffer
// grows past 1 MiB (a slow network), writes wait for its send callbacks too.
//
// The streams look enough like net.Socket for node:http (server.emit('connection', s) and
// http.request({ createConnection })): no-op setTimeout/setNoDelay/setKeepAlive, remoteAddress.
// Machinery stays free of I/O of its own: the caller hands in an open WebSocket (the `ws` package).
import { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';

/** where a node agent dials the API server to open its tunnel: `wss://<apiserver>/kyb/v1/node-tunnel?node=<name>` */
export const NODE_TUNNEL_PATH = '/kyb/v1/node-tunnel';

export const MuxOp = { OPEN: 1, DATA: 2, END: 3, RESET: 4, WINDOW: 5 } as const;

/** bytes a sender may have in flight per stream before the receiver returns credit */
export const DEFAULT_WINDOW = 256 * 1024;
/** above this many bytes queued in the WebSocket, writers wait for the socket */
const CONGESTED_BYTES = 1024 * 1024;
/** largest DATA payload in one frame */
export const MAX_FRAME_PAYLOAD = 64 * 1024;

export interface MuxOptions {
  /** 'client' for the side that dialled the WebSocket (odd stream ids), 'server' for the other (even) */
  role: 'client' | 'server';
  /** per-stream receive window; both sides must use the same value (default 256 KiB) */
  window?: number;
  /** send a WebSocket ping this often and drop the connection if no pong came back in between (0 = off) */
  pingIntervalMs?: number;
  /** shown as the streams' remoteAddress (e.g. the node name) */
  remoteAddress?: string;
}

type WsData = Buffer | ArrayBuffer | Buffer[];

function toBuffer(d: WsData): Buffer {
  if (Buffer.isBuffer(d)) return d;
  if (Array.isArray(d)) return Buffer.concat(d);
  return Buffer.from(d);
}

function frame(op: number, id: number, payload?: Buffer | Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(5 + (payload?.length ?? 0));
  b[0] = op;
  b.writeUInt32BE(id, 1);
  if (payload) b.set(payload, 5);
  return b;
}

function connReset(message: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(message);
  e.code = 'ECONNRESET';
  return e;
}

/** One multiplexed stream. Half-closable: `end()` sends END; reading ends when the peer's END arrives. */
export class MuxStream extends Duplex {
  readonly remoteAddress: string;
  readonly remotePort = 0;
  readonly remoteFamily = 'mux';
  readonly localAddress = 'mux';
  readonly localPort = 0;
  /** credit the peer has given us */
  private sendWindow: number;
  /** bytes received (pushed to the reader) so far */
  private received = 0;
  /** credit returned to the peer so far; received - credited is what the peer may not resend */
  private credited = 0;
  /** a write waiting for credit */
  private waitingForWindow: (() => void) | undefined;
  private remoteEnded = false;
  private localEnded = false;
  /** set when the peer reset the stream (no RESET is sent back) */
  private peerReset = false;
  private settled = false;

  constructor(private readonly mux: Mux, readonly id: number, window: number) {
    // credit is returned for what the reader has taken out of the buffer, so buffer + bytes in
    // flight never exceed one window; the buffer may hold all of it
    super({ allowHalfOpen: true, readableHighWaterMark: window, writableHighWaterMark: MAX_FRAME_PAYLOAD });
    this.sendWindow = window;
    this.remoteAddress = mux.remoteAddress;
  }

  // --- what node:http expects of a socket -------------------------------------------------------
  setTimeout(_ms: number, cb?: () => void): this { if (cb) this.once('timeout', cb); return this; }
  setNoDelay(_noDelay?: boolean): this { return this; }
  setKeepAlive(_enable?: boolean, _delay?: number): this { return this; }
  ref(): this { return this; }
  unref(): this { return this; }
  address(): { address: string; family: string; port: number } { return { address: 'mux', family: 'mux', port: 0 }; }

  /** abort the stream; the peer's side fails with `message` */
  reset(message = 'stream reset'): void { this.destroy(new Error(message)); }

  // --- Duplex implementation --------------------------------------------------------------------
  override _read(): void {
    this.returnCredit();
  }

  // Every way of consuming a Readable (read(), 'data' in flowing mode, pipe) goes through read();
  // _read alone would not do, as Node calls it before taking the bytes out of the buffer and not
  // again until the next push.
  override read(size?: number): ReturnType<Duplex['read']> {
    const r = super.read(size);
    this.returnCredit();
    return r;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.sendChunk(chunk, 0, cb);
  }

  private sendChunk(chunk: Buffer, off: number, cb: (err?: Error | null) => void): void {
    if (this.destroyed || this.mux.closed) { cb(connReset('mux stream closed')); return; }
    if (off >= chunk.length) { cb(); return; }
    if (this.sendWindow <= 0) {
      this.waitingForWindow = () => this.sendChunk(chunk, off, cb);
      return;
    }
    const n = Math.min(chunk.length - off, this.sendWindow, MAX_FRAME_PAYLOAD);
    this.sendWindow -= n;
    const last = off + n >= chunk.length;
    // wait for the socket only when the WebSocket's own buffer is large (a slow network); otherwise
    // carry on at once — the window bounds what one stream can have in flight
    const congested = this.mux.bufferedAmount > CONGESTED_BYTES;
    this.mux.sendFrame(MuxOp.DATA, this.id, chunk.subarray(off, off + n), congested ? (err) => {
      if (err) { cb(err); return; }
      if (last) cb(); else this.sendChunk(chunk, off + n, cb);
    } : undefined);
    if (!congested) {
      if (last) process.nextTick(cb); else this.sendChunk(chunk, off + n, cb);
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.mux.closed) { cb(connReset('mux closed')); return; }
    this.localEnded = true;
    this.mux.sendFrame(MuxOp.END, this.id, undefined, (err) => {
      cb(err ?? null);
      this.maybeSettle();
    });
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    const w = this.waitingForWindow;
    this.waitingForWindow = undefined;
    if (!this.settled) {
      this.settled = true;
      const clean = this.localEnded && this.remoteEnded;
      if (!clean && !this.peerReset && !this.mux.closed) {
        const kind = err ? 1 : 0;
        const msg = Buffer.from(err?.message ?? 'closed');
        this.mux.sendFrame(MuxOp.RESET, this.id, Buffer.concat([Buffer.from([kind]), msg]));
      }
      this.mux.forget(this.id);
    }
    cb(err);
    w?.(); // fails the pending write now that the stream is destroyed
  }

  // --- called by the Mux ------------------------------------------------------------------------
  /** @internal */
  onData(payload: Buffer, window: number): void {
    if (this.remoteEnded || this.destroyed) return;
    if (this.received - this.credited + payload.length > window) {
      // the peer ignored flow control
      this.destroy(new Error('mux: peer exceeded the flow-control window'));
      return;
    }
    this.received += payload.length;
    this.push(payload); // in flowing mode with an empty buffer this hands it to the reader at once
    this.returnCredit();
  }

  /**
   * Return credit for the bytes the reader has consumed, in batches of a quarter window. No deadlock:
   * a sender that waits has a whole window outstanding, and once the reader has consumed it, the
   * credit due is a whole window.
   */
  private returnCredit(): void {
    if (this.remoteEnded || this.destroyed) return;
    const due = this.received - this.readableLength - this.credited;
    if (due < this.mux.window / 4) return;
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(due, 0);
    this.credited += due;
    this.mux.sendFrame(MuxOp.WINDOW, this.id, b);
  }

  /** @internal */
  onWindow(n: number): void {
    this.sendWindow += n;
    const w = this.waitingForWindow;
    if (w && this.sendWindow > 0) { this.waitingForWindow = undefined; w(); }
  }

  /** @internal */
  onEnd(): void {
    if (this.remoteEnded) return;
    this.remoteEnded = true;
    this.push(null);
    this.maybeSettle();
  }

  /** @internal */
  onReset(kind: number, message: string): void {
    this.peerReset = true;
    // a graceful close by a peer that already finished writing is not an error for us
    if (kind === 0 && this.remoteEnded) { this.destroy(); return; }
    this.destroy(connReset(kind === 0 ? 'mux stream closed by peer' : `mux stream reset by peer: ${message}`));
  }

  /** @internal */
  onMuxClosed(err: Error): void {
    this.peerReset = true;
    if (!this.destroyed) this.destroy(err);
  }

  private maybeSettle(): void {
    if (this.localEnded && this.remoteEnded && !this.settled) {
      // both directions done: the id is free; the Duplex itself ends when its reader has read all
      this.settled = true;
      this.mux.forget(this.id);
    }
  }
}

/**
 * The multiplexer over one open WebSocket. Events: 'stream' (MuxStream) for streams the peer opened,
 * 'close' (Error) once the connection is gone (every stream has then failed with that error).
 */
export class Mux extends EventEmitter {
  readonly window: number;
  readonly remoteAddress: string;
  private readonly streams = new Map<number, MuxStream>();
  private nextId: number;
  private closedErr: Error | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private alive = true;

  constructor(private readonly ws: WebSocket, opts: MuxOptions) {
    super();
    this.window = opts.window ?? DEFAULT_WINDOW;
    this.remoteAddress = opts.remoteAddress ?? 'mux';
    this.nextId = opts.role === 'client' ? 1 : 2;
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: WsData, isBinary: boolean) => {
      if (!isBinary) { this.close(new Error('mux: unexpected text message')); return; }
      this.onFrame(toBuffer(data));
    });
    ws.on('pong', () => { this.alive = true; });
    ws.on('close', (code: number, reason: Buffer) => {
      this.shutdown(connReset(`tunnel closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`));
    });
    ws.on('error', (e: Error) => { this.shutdown(e); });
    if (opts.pingIntervalMs && opts.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => {
        if (!this.alive) { this.ws.terminate(); this.shutdown(connReset('tunnel timed out (no pong)')); return; }
        this.alive = false;
        try { this.ws.ping(); } catch { /* closing */ }
      }, opts.pingIntervalMs);
      this.pingTimer.unref();
    }
    if (ws.readyState !== ws.OPEN) this.shutdown(connReset('mux: WebSocket is not open'));
  }

  get closed(): boolean { return this.closedErr !== undefined; }
  /** bytes queued in the WebSocket, not yet handed to the kernel */
  get bufferedAmount(): number { return this.ws.bufferedAmount; }
  get streamCount(): number { return this.streams.size; }

  /** open a new stream to the peer */
  open(): MuxStream {
    if (this.closedErr) {
      const s = new MuxStream(this, 0, this.window);
      process.nextTick(() => s.destroy(this.closedErr));
      return s;
    }
    let id = this.nextId;
    while (this.streams.has(id)) id += 2; // after a wrap, skip ids still in use
    this.nextId = id + 2 > 0xffff_fff0 ? (id % 2 === 1 ? 1 : 2) : id + 2;
    const s = new MuxStream(this, id, this.window);
    this.streams.set(id, s);
    this.sendFrame(MuxOp.OPEN, id);
    return s;
  }

  /** close the connection; every open stream fails */
  close(err: Error = connReset('tunnel closed')): void {
    if (this.closedErr) return;
    try { this.ws.close(1000, 'mux closed'); } catch { /* ignore */ }
    this.shutdown(err);
    // do not wait for the close handshake forever
    setTimeout(() => { try { this.ws.terminate(); } catch { /* ignore */ } }, 2000).unref();
  }

  /** @internal */
  sendFrame(op: number, id: number, payload?: Buffer, cb?: (err?: Error) => void): void {
    if (this.closedErr || this.ws.readyState !== this.ws.OPEN) {
      const e = this.closedErr ?? connReset('tunnel closed');
      if (cb) process.nextTick(cb, e);
      return;
    }
    this.ws.send(frame(op, id, payload), { binary: true }, (err) => cb?.(err ?? undefined));
  }

  /** @internal */
  forget(id: number): void { this.streams.delete(id); }

  private onFrame(b: Buffer): void {
    if (b.length < 5) { this.close(new Error('mux: short frame')); return; }
    const op = b[0];
    const id = b.readUInt32BE(1);
    const payload = b.subarray(5);
    if (op === MuxOp.OPEN) {
      if (this.streams.has(id)) { this.close(new Error(`mux: stream ${id} opened twice`)); return; }
      const s = new MuxStream(this, id, this.window);
      this.streams.set(id, s);
      if (this.listenerCount('stream') === 0) { s.reset('no stream handler'); return; }
      this.emit('stream', s);
      return;
    }
    const s = this.streams.get(id);
    if (!s) {
      // a frame for a stream we already dropped: tell the peer (once per DATA/END) unless it is a RESET
      if (op === MuxOp.DATA || op === MuxOp.END) this.sendFrame(MuxOp.RESET, id, Buffer.from([1, ...Buffer.from('unknown stream')]));
      return;
    }
    switch (op) {
      case MuxOp.DATA: s.onData(payload, this.window); break;
      case MuxOp.END: s.onEnd(); break;
      case MuxOp.RESET: this.streams.delete(id); s.onReset(payload[0] ?? 1, payload.subarray(1).toString()); break;
      case MuxOp.WINDOW: if (payload.length >= 4) s.onWindow(payload.readUInt32BE(0)); break;
      default: this.close(new Error(`mux: unknown frame op ${op}`));
    }
  }

  private shutdown(err: Error): void {
    if (this.closedErr) return;
    this.closedErr = err;
    if (this.pingTimer) clearInterval(this.pingTimer);
    const all = [...this.streams.values()];
    this.streams.clear();
    for (const s of all) s.onMuxClosed(err);
    this.emit('close', err);
  }
}
