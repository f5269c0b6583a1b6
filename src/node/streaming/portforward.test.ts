// Port-forward protocols against local TCP servers (no containers needed): SPDY stream pairs as kubectl
// opens them (direct SPDY upgrade; the WebSocket-tunnelled form is covered with real kubectl in
// exec-ws-kubectl.test.ts), errors on the error stream, resets, and the channel protocol that
// @kubernetes/client-node's PortForward speaks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { PassThrough, type Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { KubeConfig, PortForward } from '@kubernetes/client-node';
import type WebSocket from 'ws';
import { errors } from '../../machinery/status.js';
import type { StreamingBackend } from './backend.js';
import { handlePortForwardUpgrade } from './portforward.js';
import { FrameType } from './spdy.js';
import { SpdyTestClient } from './spdy-test-client.js';

let server: http.Server;
let port: number;
/** a target that greets, then echoes upper-cased; `bye` makes it close */
let target: net.Server;
let targetPort: number;
let closedPort: number;
const targetSockets = new Set<net.Socket>();
const sockets = new Set<Duplex>();

const backend: StreamingBackend = {
  logSource: () => Promise.reject(errors.badRequest('no logs')),
  exec: () => Promise.reject(errors.badRequest('no exec')),
  attach: () => Promise.reject(errors.badRequest('no attach')),
  portForward: async (_ns, pod, p) => {
    if (pod !== 'web') throw errors.notFound('pods', pod);
    return await new Promise<Duplex>((resolve, reject) => {
      const s = net.connect(p, '127.0.0.1');
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
  },
};

before(async () => {
  target = net.createServer((s) => {
    targetSockets.add(s);
    s.once('close', () => targetSockets.delete(s));
    s.write('hello\n');
    s.on('data', (d) => {
      if (d.toString().includes('bye')) s.end('goodbye\n');
      else s.write(d.toString().toUpperCase());
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  targetPort = (target.address() as AddressInfo).port;
  const tmp = net.createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
  closedPort = (tmp.address() as AddressInfo).port;
  await new Promise((r) => tmp.close(r));

  server = http.createServer((_q, res) => { res.writeHead(404); res.end(); });
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const m = /^\/(?:portForward\/([^/]+)\/([^/?]+)|api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/portforward)/.exec(req.url ?? '');
    if (!m) { socket.destroy(); return; }
    handlePortForwardUpgrade(req, socket, head, { backend, namespace: m[1] ?? m[3], pod: m[2] ?? m[4] });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  for (const s of [...sockets, ...targetSockets]) s.destroy();
  await new Promise((r) => server.close(r));
  await new Promise((r) => target.close(r));
});

/** the direct SPDY upgrade kubectl falls back to */
async function spdyConnect(pod = 'web'): Promise<SpdyTestClient> {
  const sock = net.connect(port, '127.0.0.1');
  sock.write(`POST /portForward/default/${pod} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n`);
  const rest = await new Promise<Buffer>((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const on = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      sock.off('data', on);
      const head = buf.subarray(0, i).toString();
      if (!/^HTTP\/1\.1 101 /.test(head) || !/X-Stream-Protocol-Version: portforward\.k8s\.io/i.test(head)) reject(new Error(head));
      else resolve(buf.subarray(i + 4));
    };
    sock.on('data', on);
    sock.once('error', reject);
  });
  const c = new SpdyTestClient(sock);
  if (rest.length) sock.emit('data', rest);
  return c;
}

/** open an error+data pair as kubectl does: error first (and half-closed at once), then data */
async function openPair(c: SpdyTestClient, errId: number, p: number, requestId: string): Promise<number> {
  await c.synStream(errId, { streamtype: 'error', port: String(p), requestid: requestId });
  await c.dataFrame(errId, '', true);
  await c.synStream(errId + 2, { streamtype: 'data', port: String(p), requestid: requestId });
  return errId + 2;
}

const replied = (c: SpdyTestClient, id: number) => (): boolean => c.frames.some((f) => f.type === FrameType.SYN_REPLY && f.streamId === id);

test('SPDY: a pair is forwarded both ways; when the target closes, FIN on data and error', async () => {
  const c = await spdyConnect();
  try {
    const data = await openPair(c, 1, targetPort, '0');
    await c.waitFor(replied(c, 1), 'reply to error');
    await c.waitFor(replied(c, data), 'reply to data');
    await c.waitFor(() => c.data(data).bytes.toString() === 'hello\n', 'greeting');
    await c.dataFrame(data, 'abc');
    await c.waitFor(() => c.data(data).bytes.toString() === 'hello\nABC', 'echo');
    await c.ping(1);
    await c.waitFor((fs) => fs.some((f) => f.type === FrameType.PING), 'ping echo');
    await c.dataFrame(data, 'bye');
    await c.waitFor(() => c.data(data).fin && c.data(1).fin, 'FIN on both');
    assert.equal(c.data(data).bytes.toString(), 'hello\nABCgoodbye\n');
    assert.equal(c.data(1).bytes.length, 0, 'nothing on the error stream');
    // kubectl then resets both; nothing comes back for a reset of a finished stream
    await c.rst(1);
    await c.rst(data);

    // the next connection on the same session
    const data2 = await openPair(c, 5, targetPort, '1');
    await c.waitFor(() => c.data(data2).bytes.toString() === 'hello\n', 'second greeting');
    assert.ok(!c.frames.some((f) => f.type === FrameType.RST_STREAM));
  } finally {
    c.close();
  }
});

test('SPDY: a refused connection is reported on the error stream', async () => {
  const c = await spdyConnect();
  try {
    const data = await openPair(c, 1, closedPort, '0');
    await c.waitFor(() => c.data(1).fin && c.data(data).fin, 'FINs');
    assert.match(c.data(1).bytes.toString(), new RegExp(`^error forwarding port ${closedPort} to pod default/web: .*ECONNREFUSED`));
  } finally {
    c.close();
  }
});

test('SPDY: an unknown pod is reported on the error stream', async () => {
  const c = await spdyConnect('nope');
  try {
    await openPair(c, 1, targetPort, '0');
    await c.waitFor(() => c.data(1).fin, 'FIN');
    assert.equal(c.data(1).bytes.toString(), `error forwarding port ${targetPort} to pod default/nope: pods "nope" not found`);
  } finally {
    c.close();
  }
});

test('SPDY: a reset data stream drops the target connection; other pairs go on', async () => {
  const c = await spdyConnect();
  try {
    const a = await openPair(c, 1, targetPort, '0');
    const b = await openPair(c, 5, targetPort, '1');
    await c.waitFor(() => c.data(a).bytes.length > 0 && c.data(b).bytes.length > 0, 'both greetings');
    assert.equal(targetSockets.size, 2);
    await c.rst(a);
    await c.waitFor(() => targetSockets.size === 1, 'target connection closed');
    await c.dataFrame(b, 'still here');
    await c.waitFor(() => c.data(b).bytes.toString() === 'hello\nSTILL HERE', 'other pair');
  } finally {
    c.close();
  }
});

test('SPDY: streams that are not error/data are refused; a bad port is an error', async () => {
  const c = await spdyConnect();
  try {
    await c.synStream(1, { streamtype: 'stdin', port: '80', requestid: '0' });
    await c.waitFor((fs) => fs.some((f) => f.type === FrameType.RST_STREAM && f.streamId === 1), 'RST');
    const data = await openPair(c, 3, 99999, '1');
    await c.waitFor(() => c.data(3).fin && c.data(data).fin, 'FIN on both');
    assert.equal(c.data(3).bytes.toString(), 'invalid port "99999"');
  } finally {
    c.close();
  }
});

test('SPDY upgrade without portforward.k8s.io is refused', async () => {
  const res = await new Promise<http.IncomingMessage>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/portForward/default/web', headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' } });
    req.on('response', resolve);
    req.end();
  });
  assert.equal(res.statusCode, 403);
  res.resume();
});

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

test('@kubernetes/client-node PortForward (channel protocol): both ways, then closed with the target', async () => {
  const input = new PassThrough();
  const output = new PassThrough();
  let got = '';
  output.on('data', (d) => { got += d; });
  const ws = await new PortForward(kubeConfig()).portForward('default', 'web', [targetPort], output, null, input) as WebSocket;
  const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
  assert.equal(ws.protocol, 'v5.channel.k8s.io');
  input.write('xyz');
  const deadline = Date.now() + 5000;
  while (got !== 'hello\nXYZ' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(got, 'hello\nXYZ');
  input.write('bye');
  assert.equal(await closed, 1000);
  assert.equal(got, 'hello\nXYZgoodbye\n');
});

test('client-node PortForward: a refused connection arrives on the error channel', async () => {
  const output = new PassThrough();
  const err = new PassThrough();
  let errText = '';
  err.on('data', (d) => { errText += d; });
  const ws = await new PortForward(kubeConfig(), false).portForward('default', 'web', [closedPort], output, err, new PassThrough()) as WebSocket;
  await new Promise((r) => ws.on('close', r));
  assert.match(errText, new RegExp(`error forwarding port ${closedPort} to pod default/web: .*ECONNREFUSED`));
});
