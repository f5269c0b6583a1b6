// The real kubectl 1.32 is the judge: exec (plain, -i, exit codes, errors, -it through a pty with
// resize), cp both ways, attach and port-forward (WebSocket-tunnelled SPDY and direct SPDY), against a
// minimal fake API server (discovery, one Running pod) whose upgrade requests go straight to our
// handlers, with a backend that runs commands in a real busybox container through runcExec.
// Needs root and runc; skipped otherwise.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type * as NodePty from 'node-pty';
import { errors } from '../../machinery/status.js';
import { runcExec } from '../runtime/runc-exec.js';
import { runcUnavailable, startBusyboxContainer, type TestContainer } from '../runtime/runc-exec.fixture.js';
import type { StreamingBackend } from './backend.js';
import { handleExecUpgrade } from './exec-ws.js';
import { handlePortForwardUpgrade } from './portforward.js';

const KUBECTL = process.env.KUBECTL ?? '/usr/lib/google-cloud-sdk/bin/kubectl.1.32';
const skip = runcUnavailable() ?? (existsSync(KUBECTL) ? null : 'needs kubectl 1.32');
const BIG = 'abcdefghij'.repeat(200_000); // 2 MB: far beyond SPDY's 64 KiB initial window

let c: TestContainer;
let server: http.Server;
let dir: string;
let env: NodeJS.ProcessEnv;
const sockets = new Set<Duplex>();
/** `exec:websocket`, `portforward:SPDY/3.1`, … for every upgrade request the fake API server saw */
const upgrades: string[] = [];
const children = new Set<ChildProcess>();

/** A TCP connection inside the container's network namespace (busybox nc under nsenter). */
function connectInContainer(pid: number, port: number): Duplex {
  const child = spawn('nsenter', ['-t', String(pid), '-n', '/bin/busybox', 'nc', '127.0.0.1', String(port)], { stdio: ['pipe', 'pipe', 'ignore'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.stdin.on('error', () => {});
  // not Duplex.from: nc exiting must not throw away output that is still buffered
  const d = new Duplex({
    read() { child.stdout.resume(); },
    write(chunk: Buffer, _enc, cb) { if (child.stdin.writable) child.stdin.write(chunk, () => cb()); else cb(); },
    final(cb) { child.stdin.end(); cb(); },
    destroy(err, cb) { child.kill('SIGKILL'); cb(err); },
  });
  child.stdout.on('data', (chunk: Buffer) => { if (!d.push(chunk)) child.stdout.pause(); });
  child.stdout.on('end', () => d.push(null));
  return d;
}

function backend(): StreamingBackend {
  const check = (ns: string, pod: string): void => {
    if (ns !== 'default' || pod !== 'box') throw errors.notFound('pods', pod);
  };
  return {
    logSource: () => Promise.reject(errors.badRequest('not in this test')),
    exec: async (ns, pod, _container, command, o) => {
      check(ns, pod);
      return runcExec({ root: c.root, id: c.id, command, tty: o.tty, stdin: o.stdin });
    },
    // stands in for the container's main process: greets, then echoes stdin
    attach: async (ns, pod, _container, o) => {
      check(ns, pod);
      return runcExec({ root: c.root, id: c.id, command: ['sh', '-c', 'echo attached; exec cat'], tty: o.tty, stdin: o.stdin });
    },
    portForward: async (ns, pod, port) => {
      check(ns, pod);
      if (port === 8080) return connectInContainer(c.pid, port);
      // any other port: a host loopback port nobody listens on → connection refused
      return await new Promise<Duplex>((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port });
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    },
  };
}

function fakeApiServer(b: StreamingBackend): http.Server {
  const pod = {
    kind: 'Pod', apiVersion: 'v1',
    metadata: { name: 'box', namespace: 'default', uid: '5e1d1a8e-0000-4000-8000-000000000001', creationTimestamp: '2026-01-01T00:00:00Z', resourceVersion: '1' },
    spec: { containers: [{ name: 'main', image: 'busybox', stdin: true }], nodeName: 'node-1' },
    status: { phase: 'Running', podIP: '10.42.0.5', containerStatuses: [{ name: 'main', ready: true, restartCount: 0, image: 'busybox', imageID: '', state: { running: { startedAt: '2026-01-01T00:00:00Z' } } }] },
  };
  const resources = {
    kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'v1',
    resources: [
      { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get', 'list'], shortNames: ['po'] },
      { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] },
      { name: 'pods/attach', singularName: '', namespaced: true, kind: 'PodAttachOptions', verbs: ['create', 'get'] },
      { name: 'pods/portforward', singularName: '', namespaced: true, kind: 'PodPortForwardOptions', verbs: ['create', 'get'] },
    ],
  };
  const json = (res: http.ServerResponse, code: number, body: unknown): void => {
    res.writeHead(code, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const s = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/version') return json(res, 200, { major: '1', minor: '32', gitVersion: 'v1.32.0', platform: 'linux/amd64' });
    if (path === '/api') return json(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
    if (path === '/apis') return json(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
    if (path === '/api/v1') return json(res, 200, resources);
    if (path === '/api/v1/namespaces/default/pods/box') return json(res, 200, pod);
    return json(res, 404, errors.notFound('pods', path.split('/').pop() ?? '').toStatus());
  });
  s.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    const url = new URL(req.url ?? '', 'http://x');
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|attach|portforward)$/.exec(url.pathname);
    if (!m) { socket.destroy(); return; }
    const [, namespace, name, sub] = m;
    upgrades.push(`${sub}:${req.headers.upgrade}`);
    if (sub === 'portforward') { handlePortForwardUpgrade(req, socket, head, { backend: b, namespace, pod: name }); return; }
    const q = url.searchParams;
    const flag = (k: string): boolean => q.get(k) === 'true' || q.get(k) === '1';
    handleExecUpgrade(req, socket, head, {
      backend: b, namespace, pod: name, container: q.get('container') ?? undefined, command: q.getAll('command'),
      stdin: flag('stdin'), stdout: flag('stdout'), stderr: flag('stderr'), tty: flag('tty'), attach: sub === 'attach',
    });
  });
  return s;
}

before(async () => {
  if (skip) return;
  c = await startBusyboxContainer({ files: { 'www/index.html': 'hello from busybox httpd\n', 'www/big.txt': BIG } });
  // the "pod's" web server, in the container's own network namespace
  const httpd = runcExec({ root: c.root, id: c.id, command: ['httpd', '-p', '127.0.0.1:8080', '-h', '/www'], tty: false, stdin: false });
  httpd.stdout.resume();
  httpd.stderr?.resume();
  assert.equal(await httpd.exited, 0); // busybox httpd daemonizes
  server = fakeApiServer(backend());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  dir = mkdtempSync(join(tmpdir(), 'kyb-streaming-kubectl-'));
  const port = (server.address() as AddressInfo).port;
  writeFileSync(join(dir, 'kubeconfig'), `apiVersion: v1
kind: Config
clusters: [{name: t, cluster: {server: "http://127.0.0.1:${port}"}}]
users: [{name: u, user: {}}]
contexts: [{name: t, context: {cluster: t, user: u, namespace: default}}]
current-context: t
`);
  env = { ...process.env, KUBECONFIG: join(dir, 'kubeconfig'), KUBECACHEDIR: join(dir, 'cache'), HOME: dir };
});

after(async () => {
  for (const ch of children) ch.kill('SIGKILL');
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await c?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function kubectl(args: string[], o: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(KUBECTL, args, { env: { ...env, ...o.env } });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const t = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`kubectl ${args.join(' ')} timed out\n${stderr}`)); }, o.timeoutMs ?? 30_000);
    child.on('close', (code) => {
      clearTimeout(t);
      children.delete(child);
      resolve({ stdout, stderr, code: code ?? -1 });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(o.input ?? '');
  });
}

const SPDY_EXEC = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' };
const SPDY_PF = { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' };

for (const [proto, extraEnv] of [['websocket', {}], ['spdy', SPDY_EXEC]] as const) {
  test(`kubectl exec (${proto}): output, stderr, exit code`, { skip: skip ?? false }, async () => {
    upgrades.length = 0;
    const r = await kubectl(['exec', 'box', '--', 'sh', '-c', 'echo out; echo err >&2; hostname; exit 3'], { env: extraEnv });
    assert.equal(r.stdout, 'out\nbusybox-test\n');
    assert.match(r.stderr, /^err\n/);
    assert.match(r.stderr, /command terminated with exit code 3/);
    assert.equal(r.code, 3);
    const ok = await kubectl(['exec', 'box', '--', 'true'], { env: extraEnv });
    assert.deepEqual([ok.code, ok.stdout, ok.stderr], [0, '', '']);
    // each command upgraded once, with the protocol under test (no silent fallback)
    assert.deepEqual(upgrades, Array(2).fill(proto === 'websocket' ? 'exec:websocket' : 'exec:SPDY/3.1'));
  });

  test(`kubectl exec -i (${proto}): stdin reaches the process and its end is seen`, { skip: skip ?? false }, async () => {
    const r = await kubectl(['exec', '-i', 'box', '--', 'sh', '-c', 'wc -c; echo done'], { input: BIG, env: extraEnv });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split(/\s+/).join(' '), `${BIG.length} done`);
  });

  test(`kubectl exec (${proto}): errors arrive as kubectl messages`, { skip: skip ?? false }, async () => {
    const r = await kubectl(['exec', 'box', '--', 'no-such-command'], { env: extraEnv });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /executable file not found in \$PATH/);
  });
}

test('kubectl exec: a large output arrives whole', { skip: skip ?? false }, async () => {
  const r = await kubectl(['exec', 'box', '--', 'cat', '/www/big.txt']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.length, BIG.length);
  assert.equal(r.stdout, BIG);
});

test('kubectl cp: to the container and back', { skip: skip ?? false }, async () => {
  const local = join(dir, 'up.txt');
  writeFileSync(local, 'copied up\n');
  const up = await kubectl(['cp', local, 'box:/tmp/up.txt']);
  assert.equal(up.code, 0, up.stderr);
  const check = await kubectl(['exec', 'box', '--', 'cat', '/tmp/up.txt']);
  assert.equal(check.stdout, 'copied up\n');
  const down = await kubectl(['cp', 'box:/www/big.txt', join(dir, 'down.txt')]);
  assert.equal(down.code, 0, down.stderr);
  assert.equal(readFileSync(join(dir, 'down.txt'), 'utf8'), BIG);
});

test('kubectl attach -i', { skip: skip ?? false }, async () => {
  const r = await kubectl(['attach', '-i', 'box', '-c', 'main'], { input: 'typed line\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /attached\ntyped line\n/);
});

for (const [proto, extraEnv] of [['websocket', {}], ['spdy', SPDY_EXEC]] as const) {
  test(`kubectl exec -it (${proto}) through a pseudo terminal: echo, resize, exit code`, { skip: skip ?? false }, async () => {
    const pty = createRequire(import.meta.url)('node-pty') as typeof NodePty;
    const term = pty.spawn(KUBECTL, ['exec', '-it', 'box', '--', 'sh'], { cols: 91, rows: 31, env: { ...env, ...extraEnv } as Record<string, string>, name: 'xterm' });
    let out = '';
    const waiters: { pred: (s: string) => boolean; resolve: () => void }[] = [];
    term.onData((d) => {
      out += d;
      for (const w of [...waiters]) if (w.pred(out)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
    });
    const until = (pred: (s: string) => boolean, what: string): Promise<void> => new Promise((resolve, reject) => {
      if (pred(out)) { resolve(); return; }
      const t = setTimeout(() => reject(new Error(`waiting for ${what}; output so far: ${JSON.stringify(out)}`)), 15_000);
      waiters.push({ pred, resolve: () => { clearTimeout(t); resolve(); } });
    });
    const exit = new Promise<number>((r) => term.onExit((e) => r(e.exitCode)));
    try {
      await until((s) => s.includes('# '), 'the prompt');
      term.write('echo $((6*7)); stty size\r');
      await until((s) => /\r+\n42\r+\n31 91\r+\n/.test(s), 'the answer and the first size');
      term.resize(120, 40); // kubectl sees SIGWINCH and sends the new size on the resize channel
      const ask = setInterval(() => term.write('stty size\r'), 300);
      try { await until((s) => s.includes('40 120'), 'the new size'); } finally { clearInterval(ask); }
      term.write('exit 4\r');
      assert.equal(await exit, 4);
    } finally {
      try { term.kill(); } catch { /* already gone */ }
    }
  });
}

/** Run `kubectl port-forward box :8080` (or other ports) and return the local port it chose. */
async function portForward(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ port: number; child: ChildProcess; stderr: () => string; exited: Promise<number> }> {
  const child = spawn(KUBECTL, ['port-forward', 'box', ...args], { env: { ...env, ...extraEnv } });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise<number>((r) => child.on('close', (code) => { children.delete(child); r(code ?? -1); }));
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`port-forward did not start: ${stdout} ${stderr}`)), 15_000);
    child.stdout.on('data', (d) => {
      stdout += d;
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(stdout);
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    });
    child.once('close', () => { clearTimeout(t); reject(new Error(`port-forward exited: ${stdout} ${stderr}`)); });
  });
  return { port, child, stderr: () => stderr, exited };
}

for (const [proto, extraEnv] of [['websocket tunnel', {}], ['direct spdy', SPDY_PF]] as const) {
  test(`kubectl port-forward (${proto}): pages from httpd in the container, several connections, 2 MB`, { skip: skip ?? false }, async () => {
    upgrades.length = 0;
    const pf = await portForward([':8080'], extraEnv);
    try {
      const base = `http://127.0.0.1:${pf.port}`;
      for (let i = 0; i < 3; i++) {
        const r = await fetch(`${base}/index.html`);
        assert.equal(r.status, 200);
        assert.equal(await r.text(), 'hello from busybox httpd\n');
      }
      const all = await Promise.all([1, 2, 3].map(() => fetch(`${base}/big.txt`).then((r) => r.text())));
      for (const t of all) assert.equal(t, BIG);
      assert.doesNotMatch(pf.stderr(), /error/i);
      assert.deepEqual(upgrades, [proto === 'direct spdy' ? 'portforward:SPDY/3.1' : 'portforward:websocket']);
    } finally {
      pf.child.kill('SIGINT');
      await pf.exited;
    }
  });
}

test('kubectl port-forward: a refused connection is reported by kubectl', { skip: skip ?? false }, async () => {
  // a loopback port nobody listens on
  const free = await new Promise<number>((r) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as AddressInfo).port; s.close(() => r(p)); }); });
  const pf = await portForward([`:${free}`]);
  try {
    await fetch(`http://127.0.0.1:${pf.port}/`).then((r) => r.text()).catch(() => '');
    assert.equal(await pf.exited, 1);
    assert.match(pf.stderr(), new RegExp(`error forwarding port ${free} to pod default/box: .*ECONNREFUSED`));
  } finally {
    pf.child.kill('SIGKILL');
  }
});
