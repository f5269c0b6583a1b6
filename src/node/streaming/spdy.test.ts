// SPDY/3.1 session: dictionary, header blocks readable by a real inflater, stream lifecycle, ping echo,
// RST, flow control (waits on windows only once the peer does flow control), GOAWAY on close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import {
  adler32, decodeHeaderBlock, encodeHeaderBlock, FLAG_FIN, FrameType, HeaderCompressor, SPDY_DICTIONARY,
  SpdySession, type SpdyHeaders, type SpdyStream,
} from './spdy.js';
import { SpdyTestClient } from './spdy-test-client.js';

test('the SPDY/3 dictionary is the 1423 bytes of the spec', () => {
  assert.equal(SPDY_DICTIONARY.length, 1423);
  // zlib's DICTID for it, as Go's and Chrome's SPDY stacks send in their first header block
  assert.equal(adler32(SPDY_DICTIONARY).toString(16), 'e3c6a7c2');
  assert.equal(SPDY_DICTIONARY.subarray(0, 11).toString('latin1'), '\0\0\0\x07options');
  assert.ok(SPDY_DICTIONARY.toString('latin1').endsWith('utf-,*,enq=0.'));
});

test('header blocks: encode/decode, and our zlib stream inflates block by block', async () => {
  const h = { streamtype: 'data', port: '8080', requestid: '0' };
  assert.deepEqual(decodeHeaderBlock(encodeHeaderBlock(h)), h);
  assert.throws(() => decodeHeaderBlock(Buffer.from([0, 0, 0, 1, 0, 0, 0, 9, 1])), /truncated/);

  const c = new HeaderCompressor();
  const inf = zlib.createInflate({ dictionary: SPDY_DICTIONARY });
  const out: Buffer[] = [];
  inf.on('data', (d: Buffer) => out.push(d));
  const step = (b: Buffer): Promise<Buffer> => new Promise((resolve) => {
    inf.write(b);
    inf.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve(Buffer.concat(out.splice(0))));
  });
  const blocks: SpdyHeaders[] = [{}, h, { big: 'x'.repeat(70_000) }, { a: '1' }];
  for (const b of blocks) assert.deepEqual(decodeHeaderBlock(await step(c.compress(encodeHeaderBlock(b)))), b);
  inf.destroy();
});

async function pair(): Promise<{ client: SpdyTestClient; session: SpdySession; streams: SpdyStream[]; close(): Promise<void> }> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const sock = net.connect((srv.address() as AddressInfo).port, '127.0.0.1');
  const session = new SpdySession(await accepted);
  const streams: SpdyStream[] = [];
  session.on('stream', (s: SpdyStream) => { s.on('error', () => {}); streams.push(s); });
  const client = new SpdyTestClient(sock);
  return {
    client, session, streams,
    close: async () => { client.close(); session.destroy(); await new Promise((r) => srv.close(r)); },
  };
}

test('streams: headers, reply, data both ways, FIN, ping echo', async () => {
  const t = await pair();
  try {
    await t.client.synStream(1, { streamtype: 'data', port: '80' });
    await t.client.waitFor(() => t.streams.length === 1, 'stream');
    const s = t.streams[0];
    assert.deepEqual(s.headers, { streamtype: 'data', port: '80' });
    assert.equal(s.id, 1);
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    const ended = new Promise((r) => s.once('end', r));
    await t.client.dataFrame(1, 'hello ');
    await t.client.dataFrame(1, 'server', true);
    await ended;
    assert.equal(Buffer.concat(got).toString(), 'hello server');
    s.end('hi client'); // auto SYN_REPLY first
    await t.client.waitFor(() => t.client.data(1).fin, 'FIN');
    const reply = t.client.frames.find((f) => f.type === FrameType.SYN_REPLY);
    assert.ok(reply);
    assert.deepEqual(reply.headers, {});
    assert.equal(t.client.frames.indexOf(reply), 0, 'SYN_REPLY precedes DATA');
    assert.equal(t.client.data(1).bytes.toString(), 'hi client');
    assert.equal(t.session.streamCount, 0, 'both sides closed: forgotten');

    await t.client.ping(7);
    await t.client.waitFor((fs) => fs.some((f) => f.type === FrameType.PING), 'ping echo');
    assert.equal(t.client.frames.find((f) => f.type === FrameType.PING)!.body.readUInt32BE(0), 7);

    // a second stream reuses the compression context of the first
    await t.client.synStream(3, { streamtype: 'error', port: '80' }, FLAG_FIN);
    await t.client.waitFor(() => t.streams.length === 2, 'stream 3');
    assert.deepEqual(t.streams[1].headers, { streamtype: 'error', port: '80' });
    t.streams[1].reply({ answer: 'yes' });
    await t.client.waitFor((fs) => fs.some((f) => f.type === FrameType.SYN_REPLY && f.streamId === 3), 'reply 3');
    assert.deepEqual(t.client.frames.find((f) => f.type === FrameType.SYN_REPLY && f.streamId === 3)!.headers, { answer: 'yes' });
  } finally {
    await t.close();
  }
});

test('RST from the peer destroys the stream; stream ids must grow', async () => {
  const t = await pair();
  try {
    await t.client.synStream(1, {});
    await t.client.waitFor(() => t.streams.length === 1);
    const closed = new Promise((r) => t.streams[0].once('close', r));
    await t.client.rst(1, 5);
    await closed;
    assert.equal(t.streams[0].resetStatus, 5);
    await t.client.synStream(1, {}); // reused id: refused with RST PROTOCOL_ERROR
    await t.client.waitFor((fs) => fs.some((f) => f.type === FrameType.RST_STREAM), 'RST');
    const rst = t.client.frames.find((f) => f.type === FrameType.RST_STREAM)!;
    assert.deepEqual([rst.body.readUInt32BE(0), rst.body.readUInt32BE(4)], [1, 1]);
    // our reset() reaches the client
    await t.client.synStream(3, {});
    await t.client.waitFor(() => t.streams.length === 2);
    t.streams[1].reset();
    await t.client.waitFor((fs) => fs.some((f) => f.type === FrameType.RST_STREAM && f.streamId === 3), 'RST 3');
  } finally {
    await t.close();
  }
});

test('flow control: not enforced for peers that never send WINDOW_UPDATE (spdystream)', async () => {
  const t = await pair();
  try {
    await t.client.synStream(1, {});
    await t.client.waitFor(() => t.streams.length === 1);
    const big = Buffer.alloc(300_000, 7);
    t.streams[0].end(big);
    await t.client.waitFor(() => t.client.data(1).fin, 'all data');
    assert.equal(t.client.data(1).bytes.length, big.length);
  } finally {
    await t.close();
  }
});

test('flow control: a peer that sends WINDOW_UPDATE gets no more than its window', async () => {
  const t = await pair();
  try {
    await t.client.windowUpdate(0, 1_000_000); // plenty at connection level: the stream window decides
    await t.client.synStream(1, {});
    await t.client.waitFor(() => t.streams.length === 1);
    const big = Buffer.alloc(200_000, 7);
    t.streams[0].end(big);
    await t.client.waitFor(() => t.client.data(1).bytes.length >= 65536, '64 KiB');
    await new Promise((r) => setTimeout(r, 100)); // nothing more may come; a poll cannot show absence
    assert.equal(t.client.data(1).bytes.length, 65536);
    await t.client.windowUpdate(1, 200_000);
    await t.client.waitFor(() => t.client.data(1).fin, 'the rest');
    assert.equal(t.client.data(1).bytes.length, big.length);
  } finally {
    await t.close();
  }
});

test('we acknowledge consumed data: a sender that honours our 64 KiB windows never stalls', async () => {
  const t = await pair();
  try {
    await t.client.synStream(1, {});
    await t.client.waitFor(() => t.streams.length === 1);
    let received = 0;
    t.streams[0].on('data', (d: Buffer) => { received += d.length; });
    const acked = (id: number): number => t.client.frames
      .filter((f) => f.type === FrameType.WINDOW_UPDATE && f.body.readUInt32BE(0) === id)
      .reduce((n, f) => n + f.body.readUInt32BE(4), 0);
    const total = 400_000;
    let sent = 0;
    while (sent < total) {
      const window = Math.min(65_536 + acked(1), 65_536 + acked(0)) - sent;
      if (window <= 0) {
        await t.client.waitFor(() => Math.min(65_536 + acked(1), 65_536 + acked(0)) - sent > 0, `window after ${sent}`);
        continue;
      }
      const n = Math.min(window, 16_384, total - sent);
      await t.client.dataFrame(1, Buffer.alloc(n, 1));
      sent += n;
    }
    await t.client.waitFor(() => received === total, 'all data at the server');
  } finally {
    await t.close();
  }
});

test('close(): GOAWAY with the last stream id, then the transport closes', async () => {
  const t = await pair();
  try {
    await t.client.synStream(5, {});
    await t.client.waitFor(() => t.streams.length === 1);
    t.session.close(200);
    await t.client.waitFor((fs) => fs.some((f) => f.type === FrameType.GOAWAY), 'GOAWAY');
    assert.equal(t.client.frames.find((f) => f.type === FrameType.GOAWAY)!.body.readUInt32BE(0), 5);
    await t.client.waitFor(() => t.client.closed, 'close after the grace period');
    assert.ok(t.session.closed);
  } finally {
    await t.close();
  }
});
