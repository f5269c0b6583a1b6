// The exec/attach WebSocket protocol at the byte level, against a fake backend (no containers needed):
// channels, the exact Status kubectl reads, Close 1000, stdin EOF ([255,0]), resize, ping/pong,
// backend errors, a client that goes away, refused upgrades — and @kubernetes/client-node's Exec.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { PassThrough, type Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { Exec, KubeConfig, type V1Status } from '@kubernetes/client-node';
import { errors } from '../../machinery/status.js';
import type { ExecProcess, StreamingBackend } from './backend.js';
import { handleExecUpgrade } from './exec-ws.js';

class FakeProc implements ExecProcess {
  stdin: PassThrough | null;
  stdout = new PassThrough();
  stderr: PassThrough | null;
  resizes: [number, number][] = [];
  killed = 0;
  exited: Promise<number>;
  exit!: (code: number) => void;
  constructor(readonly command: string[], readonly tty: boolean, stdin: boolean) {
    this.stdin = stdin ? new PassThrough() : null;
    this.stderr = tty ? null : new PassThrough();
    this.exited = new Promise((resolve) => {
      let done = false;
      this.exit = (code) => {
        if (done) return;
        done = true;
        this.stdout.end();
        this.stderr?.end();
        resolve(code);
      };
    });
  }
  get stdinEnded(): boolean { return this.stdin?.writableEnded ?? false; }
  resize(cols: number, rows: number): void { this.resizes.push([cols, rows]); }
  kill(): void { this.killed++; this.exit(137); }
}

/** Commands the fake understands: echo (stdin → stdout until EOF), fail N, sleep, big. */
function start(p: FakeProc): void {
  const [cmd, arg] = p.command;
  if (cmd === 'echo') {
    p.stdin?.pipe(p.stdout, { end: false });
    p.stdin?.on('end', () => p.exit(0));
    if (!p.stdin) p.exit(0);
  } else if (cmd === 'fail') {
    p.stdout.write('out\n');
    p.stderr?.write('err\n');
    setImmediate(() => p.exit(Number(arg)));
  } else if (cmd === 'big') {
    p.stdout.write(Buffer.alloc(1 << 20, 'z'));
    p.exit(0);
  }
  // 'sleep': runs until killed
}

const procs: FakeProc[] = [];
let gate: Promise<void> = Promise.resolve();
const backend: StreamingBackend = {
  logSource: () => Promise.reject(errors.badRequest('no logs here')),
  exec: async (_ns, pod, _c, command, o) => {
    await gate;
    if (pod !== 'web') throw errors.notFound('pods', pod);
    const p = new FakeProc(command, o.tty, o.stdin);
    procs.push(p);
    start(p);
    return p;
  },
  attach: async (_ns, pod, _c, o) => {
    if (pod !== 'web') throw errors.notFound('pods', pod);
    const p = new FakeProc(['sleep'], o.tty, o.stdin);
    procs.push(p);
    return p;
  },
  portForward: () => Promise.reject(errors.badRequest('no port-forward here')),
};

let server: http.Server;
let base: string;
const sockets = new Set<Duplex>();
before(async () => {
  server = http.createServer((_req, res) => { res.writeHead(404); res.end(); });
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const url = new URL(req.url ?? '', 'http://x');
    // kubelet paths (/exec/{ns}/{pod}/{container}) and API paths (client-node)
    const k = /^\/(exec|attach)\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    const a = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|attach)$/.exec(url.pathname);
    const m = k ? { sub: k[1], ns: k[2], pod: k[3], container: k[4] } : a ? { sub: a[3], ns: a[1], pod: a[2], container: undefined } : null;
    if (!m) { socket.destroy(); return; }
    const q = url.searchParams;
    const flag = (k: string): boolean => q.get(k) === 'true' || q.get(k) === '1';
    handleExecUpgrade(req, socket, head, {
      backend, namespace: m.ns, pod: m.pod, container: m.container ?? q.get('container') ?? undefined, command: q.getAll('command'),
      stdin: flag('stdin'), stdout: flag('stdout'), stderr: flag('stderr'), tty: flag('tty'), attach: m.sub === 'attach',
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => server.close(r));
});

interface Session {
  ws: WebSocket;
  messages: Buffer[];
  closed: Promise<number>;
  text(ch: number): string;
  send(ch: number, data: string | Buffer): void;
}

function open(path: string, protocols: string[] = ['v5.channel.k8s.io']): Promise<Session> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base}${path}`, protocols);
    const messages: Buffer[] = [];
    ws.on('message', (d: Buffer) => messages.push(d));
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.once('open', () => resolve({
      ws, messages, closed,
      text: (ch) => Buffer.concat(messages.filter((m) => m[0] === ch).map((m) => m.subarray(1))).toString(),
      send: (ch, data) => ws.send(Buffer.concat([Buffer.from([ch]), Buffer.from(data)])),
    }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode, body })));
    });
    ws.once('error', (e) => reject(e));
  });
}

async function until(pred: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('exit code: stdout, stderr, then the NonZeroExitCode Status on channel 3, then Close 1000', async () => {
  const s = await open('/exec/default/web/c?command=fail&command=3&stdout=true&stderr=true');
  assert.equal(s.ws.protocol, 'v5.channel.k8s.io');
  assert.equal(await s.closed, 1000);
  assert.equal(s.text(1), 'out\n');
  assert.equal(s.text(2), 'err\n');
  const last = s.messages[s.messages.length - 1];
  assert.equal(last[0], 3, 'the status is the last message');
  assert.deepEqual(JSON.parse(last.subarray(1).toString()), {
    metadata: {}, status: 'Failure',
    message: 'command terminated with non-zero exit code: error executing command [fail 3], exit code 3',
    reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] },
  });
});

test('success and stdin: data on channel 0, EOF as [255, 0]', async () => {
  const s = await open('/exec/default/web/c?command=echo&stdin=true&stdout=true&stderr=true');
  s.send(0, 'hello ');
  s.send(0, 'there');
  s.ws.send(Buffer.from([255, 0]));
  assert.equal(await s.closed, 1000);
  assert.equal(s.text(1), 'hello there');
  assert.equal(s.text(3), '{"metadata":{},"status":"Success"}');
  assert.ok(procs.at(-1)!.stdinEnded);
});

test('large output arrives whole, in order', async () => {
  const s = await open('/exec/default/web/c?command=big&stdout=true');
  assert.equal(await s.closed, 1000);
  assert.equal(s.text(1), 'z'.repeat(1 << 20));
});

test('tty: resizes (also those sent before the process started) reach the process; no stderr', async () => {
  let open_!: () => void;
  gate = new Promise((r) => { open_ = r; });
  try {
    const s = await open('/exec/default/web/c?command=sleep&stdin=true&stdout=true&stderr=true&tty=true');
    s.send(4, '{"Width":100,"Height":30}\n');
    s.send(4, '{"Width":120,"Height":40}\n');
    open_();
    await until(() => procs.at(-1)?.command[0] === 'sleep' && procs.at(-1)!.resizes.length === 2, 'early resizes');
    const p = procs.at(-1)!;
    assert.equal(p.stderr, null);
    s.send(4, '{"Width":80,"Height":24}');
    await until(() => p.resizes.length === 3, 'later resize');
    assert.deepEqual(p.resizes, [[100, 30], [120, 40], [80, 24]]);
    s.send(0, 'typed');
    p.stdout.write('output');
    await until(() => s.text(1) === 'output', 'output');
    p.exit(0);
    assert.equal(await s.closed, 1000);
    assert.ok(!s.messages.some((m) => m[0] === 2));
  } finally {
    open_();
    gate = Promise.resolve();
  }
});

test('backend errors travel as the Status on channel 3', async () => {
  const s = await open('/exec/default/nope/c?command=ls&stdout=true&stderr=true');
  assert.equal(await s.closed, 1000);
  const st = JSON.parse(s.text(3));
  assert.equal(st.status, 'Failure');
  assert.equal(st.reason, 'NotFound');
  assert.equal(st.code, 404);
  assert.equal(st.message, 'pods "nope" not found');
});

test('pings are answered with pongs carrying the same payload; text frames are ignored', async () => {
  const s = await open('/exec/default/web/c?command=sleep&stdout=true');
  const pong = new Promise<Buffer>((r) => s.ws.once('pong', r));
  s.ws.ping(Buffer.from('are you there'));
  assert.equal((await pong).toString(), 'are you there');
  s.ws.send('text is not part of the protocol');
  await until(() => procs.at(-1)?.command[0] === 'sleep', 'process');
  procs.at(-1)!.exit(0);
  assert.equal(await s.closed, 1000);
});

test('a client that goes away: exec is killed, attach is only let go', async () => {
  const s = await open('/exec/default/web/c?command=sleep&stdin=true&stdout=true');
  await until(() => procs.at(-1)?.command[0] === 'sleep' && procs.at(-1)!.killed === 0, 'exec');
  const execProc = procs.at(-1)!;
  s.ws.terminate();
  await until(() => execProc.killed > 0, 'kill');

  const a = await open('/attach/default/web/c?stdin=true&stdout=true&stderr=true');
  await until(() => procs.at(-1) !== execProc, 'attach');
  const attached = procs.at(-1)!;
  a.ws.close();
  await until(() => attached.stdinEnded, 'attach stdin ended');
  assert.equal(attached.killed, 0);
  assert.ok(attached.stdout.destroyed);
});

test('refused upgrades are HTTP errors with a Status body (so kubectl falls back to SPDY)', async () => {
  await assert.rejects(open('/exec/default/web/c?command=ls&stdout=true', ['v3.channel.k8s.io']), (e: { statusCode?: number; body?: string }) => {
    assert.equal(e.statusCode, 400);
    assert.match(JSON.parse(e.body!).message, /no supported WebSocket subprotocol/);
    return true;
  });
  await assert.rejects(open('/exec/default/web/c?command=ls'), (e: { statusCode?: number; body?: string }) => {
    assert.equal(e.statusCode, 400);
    assert.equal(JSON.parse(e.body!).message, 'you must specify at least 1 of stdin, stdout, stderr');
    return true;
  });
  await assert.rejects(open('/exec/default/web/c?stdout=true'), (e: { statusCode?: number }) => e.statusCode === 400);
});

test('v4.channel.k8s.io is accepted too', async () => {
  const s = await open('/exec/default/web/c?command=fail&command=0&stdout=true&stderr=true', ['v4.channel.k8s.io']);
  assert.equal(s.ws.protocol, 'v4.channel.k8s.io');
  assert.equal(await s.closed, 1000);
  assert.equal(s.text(1), 'out\n');
  assert.equal(s.text(3), '{"metadata":{},"status":"Success"}');
});

test('@kubernetes/client-node Exec: output and exit status', async () => {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: base.replace('ws://', 'http://'), skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d) => { stdout += d; });
  err.on('data', (d) => { stderr += d; });
  const status = await new Promise<V1Status>((resolve, reject) => {
    new Exec(kc).exec('default', 'web', 'c', ['fail', '2'], out, err, null, false, resolve).catch(reject);
  });
  assert.equal(status.status, 'Failure');
  assert.equal(status.reason, 'NonZeroExitCode');
  assert.deepEqual(status.details?.causes, [{ reason: 'ExitCode', message: '2' }]);
  assert.equal(stdout, 'out\n');
  assert.equal(stderr, 'err\n');
});
