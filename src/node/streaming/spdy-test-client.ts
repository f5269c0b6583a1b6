// Test helper: the client half of SPDY/3.1, just enough to drive SpdySession in tests the way
// kubectl's spdystream does (and a little more: WINDOW_UPDATE, SETTINGS). Header blocks are compressed
// with a real zlib deflate primed with the SPDY dictionary and the server's replies are inflated with
// node:zlib, so the tests also check our stored-block header encoding against a real inflater.
import type { Duplex } from 'node:stream';
import zlib from 'node:zlib';
import { decodeHeaderBlock, encodeHeaderBlock, FLAG_FIN, FrameType, SPDY_DICTIONARY, type SpdyHeaders } from './spdy.js';

export interface ClientFrame {
  control: boolean;
  type: number;
  flags: number;
  streamId: number;
  body: Buffer;
  /** decoded header block of SYN_REPLY / HEADERS */
  headers?: SpdyHeaders;
}

function zlibStep(z: zlib.Deflate | zlib.Inflate, input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const onData = (c: Buffer): void => { out.push(c); };
    z.on('data', onData);
    z.once('error', reject);
    z.write(input);
    z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
      z.off('data', onData);
      z.off('error', reject);
      resolve(Buffer.concat(out));
    });
  });
}

export class SpdyTestClient {
  readonly frames: ClientFrame[] = [];
  private buf = Buffer.alloc(0);
  private readonly deflate = zlib.createDeflate({ dictionary: SPDY_DICTIONARY });
  private readonly inflate = zlib.createInflate({ dictionary: SPDY_DICTIONARY });
  private chain: Promise<void> = Promise.resolve();
  private waiters: { pred: (f: ClientFrame[]) => boolean; resolve: () => void }[] = [];
  closed = false;

  constructor(readonly socket: Duplex) {
    socket.on('data', (c: Buffer) => this.onData(c));
    socket.on('close', () => { this.closed = true; this.check(); });
    socket.on('error', () => {});
  }

  private onData(c: Buffer): void {
    this.buf = Buffer.concat([this.buf, c]);
    while (this.buf.length >= 8) {
      const w0 = this.buf.readUInt32BE(0);
      const w1 = this.buf.readUInt32BE(4);
      const len = w1 & 0xffffff;
      if (this.buf.length < 8 + len) break;
      const body = Buffer.from(this.buf.subarray(8, 8 + len));
      this.buf = this.buf.subarray(8 + len);
      const control = (w0 & 0x80000000) !== 0;
      const f: ClientFrame = control
        ? { control, type: w0 & 0xffff, flags: w1 >>> 24, streamId: body.length >= 4 ? body.readUInt32BE(0) & 0x7fffffff : 0, body }
        : { control, type: 0, flags: w1 >>> 24, streamId: w0 & 0x7fffffff, body };
      // keep order: header blocks inflate asynchronously
      this.chain = this.chain.then(async () => {
        if (f.control && (f.type === FrameType.SYN_REPLY || f.type === FrameType.HEADERS)) {
          f.headers = decodeHeaderBlock(await zlibStep(this.inflate, body.subarray(4)));
        }
        this.frames.push(f);
        this.check();
      });
    }
  }

  private check(): void {
    for (const w of [...this.waiters]) {
      if (w.pred(this.frames) || this.closed) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  /**
   * Resolve when pred holds (checked on every frame, and polled for conditions on other state), or
   * the connection closed; reject after ms.
   */
  waitFor(pred: (f: ClientFrame[]) => boolean, what = 'frames', ms = 10_000): Promise<void> {
    return new Promise((resolve, reject) => {
      if (pred(this.frames)) { resolve(); return; }
      const poll = setInterval(() => this.check(), 5);
      const t = setTimeout(() => { clearInterval(poll); reject(new Error(`timed out waiting for ${what}; got ${this.describe()}`)); }, ms);
      this.waiters.push({ pred, resolve: () => { clearTimeout(t); clearInterval(poll); resolve(); } });
    });
  }

  describe(): string {
    return this.frames.map((f) => (f.control ? `ctl${f.type}(${f.streamId},${f.flags})` : `data(${f.streamId},${f.body.length},${f.flags})`)).join(' ');
  }

  /** all DATA received on a stream, and whether it ended with FIN */
  data(id: number): { bytes: Buffer; fin: boolean } {
    const fs = this.frames.filter((f) => !f.control && f.streamId === id);
    return { bytes: Buffer.concat(fs.map((f) => f.body)), fin: fs.some((f) => (f.flags & FLAG_FIN) !== 0) };
  }

  private control(type: number, flags: number, body: Buffer): Buffer {
    const h = Buffer.alloc(8);
    h.writeUInt16BE(0x8000 | 3, 0);
    h.writeUInt16BE(type, 2);
    h.writeUInt32BE(((flags << 24) | body.length) >>> 0, 4);
    return Buffer.concat([h, body]);
  }

  private send(b: Buffer | (() => Promise<Buffer>)): Promise<void> {
    const p = this.chainOut.then(async () => {
      const bytes = typeof b === 'function' ? await b() : b;
      if (!this.socket.destroyed) this.socket.write(bytes);
    });
    this.chainOut = p;
    return p;
  }
  private chainOut: Promise<void> = Promise.resolve();

  synStream(id: number, headers: SpdyHeaders, flags = 0): Promise<void> {
    return this.send(async () => {
      const block = await zlibStep(this.deflate, encodeHeaderBlock(headers));
      const body = Buffer.alloc(10);
      body.writeUInt32BE(id, 0);
      return this.control(FrameType.SYN_STREAM, flags, Buffer.concat([body, block]));
    });
  }

  dataFrame(id: number, data: Buffer | string, fin = false): Promise<void> {
    const d = Buffer.from(data);
    const h = Buffer.alloc(8);
    h.writeUInt32BE(id, 0);
    h.writeUInt32BE((((fin ? FLAG_FIN : 0) << 24) | d.length) >>> 0, 4);
    return this.send(Buffer.concat([h, d]));
  }

  rst(id: number, status = 5): Promise<void> {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(id, 0);
    b.writeUInt32BE(status, 4);
    return this.send(this.control(FrameType.RST_STREAM, 0, b));
  }

  ping(id: number): Promise<void> {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(id);
    return this.send(this.control(FrameType.PING, 0, b));
  }

  windowUpdate(id: number, delta: number): Promise<void> {
    const b = Buffer.alloc(8);
    b.writeUInt32BE(id, 0);
    b.writeUInt32BE(delta, 4);
    return this.send(this.control(FrameType.WINDOW_UPDATE, 0, b));
  }

  goaway(): Promise<void> {
    return this.send(this.control(FrameType.GOAWAY, 0, Buffer.alloc(8)));
  }

  close(): void {
    this.deflate.destroy();
    this.inflate.destroy();
    this.socket.destroy();
  }
}
