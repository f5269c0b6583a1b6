// The stream multiplexer over a real loopback WebSocket: concurrency, half-close, reset, flow
// control on large transfers, connection loss, and node:http riding on its streams.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, WebSocket } from 'ws';
import { Mux, MuxStream, DEFAULT_WINDOW } from './mux.js';

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
await once(wss, 'listening');
const port = (wss.address() as AddressInfo).port;
after(() => { for (const c of wss.clients) c.terminate(); wss.close(); });

/** a connected pair: `client` dialled, `server` accepted (the server has a 'stream' listener, so OPEN is accepted) */
async function pair(): Promise<{ client: Mux; server: Mux }> {
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  const ws = new WebSocket(`ws://127.0.0.1:${port}`);
  await once(ws, 'open');
  const [sws] = await accepted;
  const client = new Mux(ws, { role: 'client' });
  const server = new Mux(sws, { role: 'server' });
  // streams still open when a test closes its connection fail with 'tunnel closed'; tests that
  // care about errors add their own listeners
  const open = client.open.bind(client);
  client.open = () => open().on('error', () => {});
  server.on('stream', (st: MuxStream) => st.on('error', () => {}));
  return { client, server };
}

function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
  });
}

async function until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('many concurrent streams each carry their own bytes both ways', async () => {
  const { client, server } = await pair();
  // the server echoes every stream, upper-cased, after the client half-closes
  server.on('stream', (s: MuxStream) => {
    readAll(s).then((b) => s.end(b.toString().toUpperCase()));
  });
  const n = 200;
  const results = await Promise.all(Array.from({ length: n }, async (_, i) => {
    const s = client.open();
    const body = `stream-${i}-`.repeat(50 + (i % 17));
    const got = readAll(s);
    // write in a few pieces to interleave frames of different streams
    for (let k = 0; k < body.length; k += 97) s.write(body.slice(k, k + 97));
    s.end();
    return { expect: body.toUpperCase(), got: (await got).toString() };
  }));
  for (const r of results) assert.equal(r.got, r.expect);
  await until(() => client.streamCount === 0 && server.streamCount === 0, 'streams to be released');
  client.close();
});

test('half-close: after the client ends, the server can still write, and ends separately', async () => {
  const { client, server } = await pair();
  const serverSide = once(server, 'stream') as Promise<[MuxStream]>;
  const c = client.open();
  c.end('question');
  const [s] = await serverSide;
  assert.equal((await readAll(s)).toString(), 'question');
  // the client's write side is closed; its read side is still open
  const answer = readAll(c);
  s.write('answer, ');
  s.write('part 2');
  s.end();
  assert.equal((await answer).toString(), 'answer, part 2');
  await until(() => c.closed, 'the client stream to close');
  await until(() => client.streamCount === 0 && server.streamCount === 0, 'streams to be released');
  client.close();
});

test('reset: destroying a stream with an error fails the peer with ECONNRESET and the message', async () => {
  const { client, server } = await pair();
  const serverSide = once(server, 'stream') as Promise<[MuxStream]>;
  const c = client.open();
  c.write('hello');
  const [s] = await serverSide;
  const failed = new Promise<NodeJS.ErrnoException>((resolve) => s.on('error', resolve));
  s.resume();
  c.destroy(new Error('boom'));
  const err = await failed;
  assert.equal(err.code, 'ECONNRESET');
  assert.match(err.message, /boom/);
  // other streams are not affected
  const serverSide2 = once(server, 'stream') as Promise<[MuxStream]>;
  const c2 = client.open();
  c2.end('still works');
  const [s2] = await serverSide2;
  assert.equal((await readAll(s2)).toString(), 'still works');
  client.close();
});

test('a plain destroy after the peer finished writing is a clean close, not an error', async () => {
  const { client, server } = await pair();
  const serverSide = once(server, 'stream') as Promise<[MuxStream]>;
  const c = client.open();
  c.write('x'); // the client does not end its side
  const [s] = await serverSide;
  s.on('data', () => {});
  s.end('bye'); // server ends its writes, then drops the stream like http's destroySoon
  await once(s, 'finish');
  let clientErr: Error | undefined;
  c.on('error', (e) => { clientErr = e; });
  const got = readAll(c).catch(() => Buffer.from('ERR'));
  s.destroy();
  assert.equal((await got).toString(), 'bye');
  await until(() => c.closed, 'the client stream to close');
  assert.equal(clientErr, undefined);
  client.close();
});

test('large transfers keep their bytes and a stalled reader holds the sender at one window', async () => {
  const { client, server } = await pair();
  const serverSide = once(server, 'stream') as Promise<[MuxStream]>;
  const c = client.open();
  const data = randomBytes(8 * 1024 * 1024 + 123);
  const want = createHash('sha256').update(data).digest('hex');
  let written = false;
  c.end(data, () => { written = true; });
  const [s] = await serverSide;
  s.pause();
  // nobody reads: exactly one window arrives, then the sender waits for credit
  await until(() => s.readableLength >= DEFAULT_WINDOW, 'one window to arrive');
  await new Promise((r) => setTimeout(r, 50)); // would overrun the window now if flow control were broken
  assert.equal(s.readableLength, DEFAULT_WINDOW);
  assert.equal(written, false);
  // reading resumes the flow
  const h = createHash('sha256');
  let n = 0;
  s.on('data', (b: Buffer) => { h.update(b); n += b.length; });
  s.resume();
  await once(s, 'end');
  assert.equal(n, data.length);
  assert.equal(h.digest('hex'), want);
  // the other direction, concurrently with a second stream
  const serverSide2 = once(server, 'stream') as Promise<[MuxStream]>;
  const c2 = client.open();
  const [s2] = await serverSide2;
  const back = randomBytes(3 * 1024 * 1024);
  const got = readAll(c2);
  s2.end(back);
  c2.end();
  assert.ok((await got).equals(back));
  client.close();
});

test('closing the connection ends every open stream with an error', async () => {
  const { client, server } = await pair();
  const open: MuxStream[] = [];
  server.on('stream', (s: MuxStream) => { open.push(s); s.on('error', () => {}); });
  const streams = [client.open(), client.open(), client.open()];
  for (const s of streams) s.write('x');
  await until(() => open.length === 3, 'three streams to be accepted');
  const errors = streams.map((s) => new Promise<NodeJS.ErrnoException>((resolve) => s.on('error', resolve)));
  const serverErrors = open.map((s) => new Promise<Error>((resolve) => s.on('error', resolve)));
  const closed = once(server, 'close');
  client.close();
  for (const e of await Promise.all(errors)) assert.equal(e.code, 'ECONNRESET');
  await Promise.all(serverErrors);
  await closed;
  // a stream opened after close fails at once
  const late = client.open();
  const [e] = await once(late, 'error') as [NodeJS.ErrnoException];
  assert.equal(e.code, 'ECONNRESET');
});

test('the accepting side can open streams too', async () => {
  const { client, server } = await pair();
  client.on('stream', (s: MuxStream) => { s.end(`hi from client, stream ${s.id}`); s.resume(); });
  const s = server.open();
  s.end();
  assert.match((await readAll(s)).toString(), /^hi from client, stream \d*[02468]$/);
  client.close();
});

test('node:http serves and requests over mux streams, streaming a response as it is written', async () => {
  const { client, server } = await pair();
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const hs = http.createServer(async (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write(`first ${req.url}\n`);
    await gate;
    res.end('second\n');
  });
  client.on('stream', (s: MuxStream) => hs.emit('connection', s));
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request({ path: '/x?y=1', createConnection: () => server.open() }, resolve);
    req.on('error', reject);
    req.end();
  });
  assert.equal(res.statusCode, 200);
  const [first] = await once(res, 'data') as [Buffer];
  assert.equal(first.toString(), 'first /x?y=1\n'); // arrived before the response was complete
  const rest = readAll(res);
  release();
  assert.equal((await rest).toString(), 'second\n');
  await until(() => client.streamCount === 0 && server.streamCount === 0, 'streams to be released');
  client.close();
  hs.close();
});
