// Streaming through the API server, judged by the real kubectl 1.32: `logs` (tail, timestamps, since,
// limit-bytes, previous, -c, all containers, -f until the container exits), `exec` and `port-forward`
// reach a node agent's streaming server through the tunnel the agent dialled out to the API server.
// The agent here is the real streaming server and tunnel client over a fake StreamingBackend: logs
// come from CRI files the test writes, exec runs a host process, port-forward connects to a loopback
// server the test starts — so no root, runc or CNI is needed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { request as httpsRequest } from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { startCluster, fetchInsecure, KUBECTL, type TestCluster } from './cluster.js';
import { errors } from '../../src/machinery/status.js';
import type { ExecProcess, LogSource, StreamingBackend } from '../../src/node/streaming/backend.js';
import { createStreamingServer } from '../../src/node/streaming/server.js';
import { TunnelClient } from '../../src/node/streaming/tunnel-client.js';
import { handleExecUpgrade } from '../../src/node/streaming/exec-ws.js';
import { handlePortForwardUpgrade } from '../../src/node/streaming/portforward.js';

const SUFFIX = Math.random().toString(36).slice(2, 8);
const NODE = `stream-node-${SUFFIX}`;
const GHOST = `ghost-node-${SUFFIX}`;
const NS = `streaming-${SUFFIX}`;

let c: TestCluster;
let logDir: string;
let tunnel: TunnelClient;
let tunnelAc: AbortController;
let tunnelRun: Promise<void>;
let target: net.Server;
const logs = new Map<string, LogSource>(); // `${pod}/${container}` or `${pod}/${container}/previous`
let exitFollow!: () => void;

const cri = (d: Date, stream: 'stdout' | 'stderr', text: string, full = true) =>
  `${d.toISOString().replace('Z', '000000+00:00')} ${stream} ${full ? 'F' : 'P'} ${text}\n`;
/** log lines are stamped relative to a whole second, so `--since-time` (whole seconds) can split them exactly */
const BASE = Math.floor(Date.now() / 1000) * 1000;
const ago = (s: number) => new Date(BASE - s * 1000);

function backend(): StreamingBackend {
  const pods: Record<string, string[]> = { 'web-1': ['app'], duo: ['a', 'b'], 'follow-1': ['app'], 'forever-1': ['app'] };
  const container = (pod: string, name: string | undefined): string => {
    const cs = pods[pod];
    if (!cs) throw errors.notFound('pods', pod);
    if (!name) {
      if (cs.length === 1) return cs[0];
      throw errors.badRequest(`a container name must be specified for pod ${pod}, choose one of: [${cs.join(' ')}]`);
    }
    if (!cs.includes(name)) throw errors.badRequest(`container ${name} is not valid for pod ${pod}`);
    return name;
  };
  return {
    async logSource(ns, pod, name, previous) {
      if (ns !== NS) throw errors.notFound('pods', pod);
      const cname = container(pod, name);
      const src = logs.get(`${pod}/${cname}${previous ? '/previous' : ''}`);
      if (!src) throw errors.badRequest(`previous terminated container "${cname}" in pod "${pod}" not found`);
      return src;
    },
    // a host process stands in for the container's
    async exec(ns, pod, name, command, opts): Promise<ExecProcess> {
      container(pod, name);
      const child = spawn(command[0], command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
      if (!opts.stdin) child.stdin.end();
      child.stdin.on('error', () => {});
      const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 137)));
      return { stdin: opts.stdin ? child.stdin : null, stdout: child.stdout, stderr: child.stderr, exited, kill: () => child.kill('SIGKILL') };
    },
    async attach() { throw errors.badRequest('attach is not part of this test'); },
    async portForward(_ns, _pod, _port): Promise<Duplex> {
      return await new Promise<Duplex>((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port: (target.address() as AddressInfo).port });
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      });
    },
  };
}

const streamingServer = createStreamingServer(backend(), { handleExecUpgrade, handlePortForwardUpgrade });

function newTunnel(nodeName: string, token: string, log: (m: string) => void = () => {}): TunnelClient {
  return new TunnelClient({
    server: c.server.api.url, nodeName, token, caPem: c.server.caPem, handler: streamingServer,
    minBackoffMs: 50, maxBackoffMs: 200, log,
  });
}

const POD = (name: string, containers: string[], extra = '') => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${NS}}
spec:
${extra}  containers:
${containers.map((n) => `  - {name: ${n}, image: busybox}`).join('\n')}
`;

before(async () => {
  c = await startCluster();
  logDir = join(c.dir, 'pod-logs');
  mkdirSync(logDir);
  target = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.end('HTTP/1.1 200 OK\r\nContent-Length: 24\r\nConnection: close\r\n\r\nhello through the tunnel'));
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));

  const file = (name: string, content: string) => { const p = join(logDir, name); writeFileSync(p, content); return p; };
  const done = Promise.resolve();
  logs.set('web-1/app', { path: file('web-1-app.log', [
    cri(ago(7200), 'stdout', 'old line'),
    cri(ago(10), 'stdout', 'recent 1'),
    cri(ago(9), 'stderr', 'recent ', false), cri(ago(9), 'stderr', '2'),
    cri(ago(8), 'stdout', 'recent 3'),
  ].join('')), exited: done });
  logs.set('web-1/app/previous', { path: file('web-1-app-prev.log', cri(ago(3600), 'stdout', 'the instance before')), exited: done });
  logs.set('duo/a', { path: file('duo-a.log', cri(ago(5), 'stdout', 'from a')), exited: done });
  logs.set('duo/b', { path: file('duo-b.log', cri(ago(5), 'stdout', 'from b')), exited: done });
  logs.set('forever-1/app', { path: file('forever-1.log', cri(ago(1), 'stdout', 'still running')), exited: new Promise(() => {}) });
  logs.set('follow-1/app', { path: file('follow-1.log', cri(ago(1), 'stdout', 'first')), exited: new Promise((r) => { exitFollow = r; }) });

  await c.kubectl(['apply', '-f', c.writeFile('objects.yaml', `
apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
apiVersion: v1
kind: Node
metadata: {name: ${NODE}}
---${POD('web-1', ['app'], `  nodeName: ${NODE}\n`)}---${POD('duo', ['a', 'b'], `  nodeName: ${NODE}\n`)}---${POD('follow-1', ['app'], `  nodeName: ${NODE}\n`)}---${POD('forever-1', ['app'], `  nodeName: ${NODE}\n`)}---${POD('ghost-1', ['app'], `  nodeName: ${GHOST}\n`)}---${POD('pending-1', ['app'], '  nodeSelector: {no-such-label: "x"}\n')}`)]);
  for (const p of ['web-1', 'duo', 'follow-1', 'forever-1', 'ghost-1']) {
    await c.kubectl(['-n', NS, 'patch', 'pod', p, '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Running"}}']);
  }
  tunnel = newTunnel(NODE, c.server.token);
  tunnelAc = new AbortController();
  tunnelRun = tunnel.run(tunnelAc.signal);
  await tunnel.waitConnected();
});

after(async () => {
  tunnelAc?.abort();
  await tunnelRun;
  await c?.stop();
  target?.close();
});

async function until(pred: () => boolean, what: () => string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const k = (args: string[], opts?: Parameters<TestCluster['kubectl']>[1]) => c.kubectl(['-n', NS, ...args], opts);

test('kubectl logs: the whole log, --tail, --timestamps, --since, --since-time, --limit-bytes', async () => {
  assert.equal((await k(['logs', 'web-1'])).stdout, 'old line\nrecent 1\nrecent 2\nrecent 3\n');
  assert.equal((await k(['logs', 'web-1', '--tail=2'])).stdout, 'recent 2\nrecent 3\n');
  const ts = (await k(['logs', 'web-1', '--timestamps', '--tail=1'])).stdout;
  // RFC3339Nano in UTC; a whole second has no fraction (Go drops trailing zeros)
  assert.equal(ts, `${ago(8).toISOString().slice(0, 19)}Z recent 3\n`);
  assert.equal((await k(['logs', 'web-1', '--since=1h'])).stdout, 'recent 1\nrecent 2\nrecent 3\n');
  assert.equal((await k(['logs', 'web-1', `--since-time=${ago(9).toISOString()}`])).stdout, 'recent 2\nrecent 3\n');
  assert.equal((await k(['logs', 'web-1', '--limit-bytes=12'])).stdout, 'old line\nrec');
});

test('kubectl logs --previous and -c; a two-container pod without -c', async () => {
  assert.equal((await k(['logs', 'web-1', '--previous'])).stdout, 'the instance before\n');
  const none = await k(['logs', 'duo', '-c', 'a', '--previous'], { allowFail: true });
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /previous terminated container "a" in pod "duo" not found/);
  assert.equal((await k(['logs', 'duo', '-c', 'b'])).stdout, 'from b\n');
  // kubectl picks the first container itself and says so
  const d = await k(['logs', 'duo']);
  assert.equal(d.stdout, 'from a\n');
  assert.match(d.stderr, /Defaulted container "a" out of: a, b/);
  assert.equal((await k(['logs', 'duo', '--all-containers'])).stdout.split('\n').sort().join('\n'), '\nfrom a\nfrom b');
  // the API without a container: upstream's error
  const raw = await fetchInsecure(`${c.server.api.url}/api/v1/namespaces/${NS}/pods/duo/log`, { headers: { Authorization: `Bearer ${c.server.token}` } });
  assert.equal(raw.status, 400);
  assert.equal(raw.body.message, 'a container name must be specified for pod duo, choose one of: [a b]');
  const bad = await k(['logs', 'duo', '-c', 'nope'], { allowFail: true });
  assert.match(bad.stderr, /container nope is not valid for pod duo/);
});

test('kubectl logs -f shows lines as they are written and exits when the container exits', async () => {
  const child = spawn(KUBECTL, ['-n', NS, 'logs', '-f', 'follow-1'], { env: c.env });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  try {
    const waitFor = async (s: string) => {
      const end = Date.now() + 15_000;
      while (!out.includes(s)) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${JSON.stringify(s)}; stdout ${JSON.stringify(out)}, stderr ${err}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await waitFor('first\n');
    const path = logs.get('follow-1/app')!.path;
    appendFileSync(path, cri(new Date(), 'stdout', 'second'));
    await waitFor('second\n');
    appendFileSync(path, cri(new Date(), 'stderr', 'last words'));
    exitFollow();
    assert.equal(await exited, 0, err);
    assert.equal(out, 'first\nsecond\nlast words\n');
  } finally {
    child.kill();
  }
});

test('when kubectl logs -f goes away, the agent stops following', async () => {
  const child = spawn(KUBECTL, ['-n', NS, 'logs', '-f', 'forever-1'], { env: c.env });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  try {
    await until(() => out.includes('still running\n'), () => `the first line; got ${JSON.stringify(out)}`);
    assert.ok(tunnel.activeStreams >= 1);
  } finally {
    child.kill();
  }
  // the client's connection closes → the API server drops its tunnel stream → the agent's reader ends
  await until(() => tunnel.activeStreams === 0, () => `the agent's stream to close (${tunnel.activeStreams} open)`);
});

test('errors: unbound pod, node without a tunnel, missing pod, invalid options', async () => {
  const unbound = await k(['logs', 'pending-1'], { allowFail: true });
  assert.match(unbound.stderr, /Error from server \(BadRequest\): pod pending-1 does not have a host assigned/);
  const ghost = await k(['logs', 'ghost-1'], { allowFail: true });
  assert.match(ghost.stderr, new RegExp(`Error from server \\(ServiceUnavailable\\): no connection to the node agent of node "${GHOST}"`));
  const missing = await k(['logs', 'nope'], { allowFail: true });
  assert.match(missing.stderr, /pods "nope" not found/);
  const auth = { headers: { Authorization: `Bearer ${c.server.token}` } };
  const neg = await fetchInsecure(`${c.server.api.url}/api/v1/namespaces/${NS}/pods/web-1/log?tailLines=-1`, auth);
  assert.equal(neg.status, 422);
  assert.equal(neg.body.reason, 'Invalid');
  assert.equal(neg.body.message, 'PodLogOptions "web-1" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0');
  const both = await fetchInsecure(`${c.server.api.url}/api/v1/namespaces/${NS}/pods/web-1/log?sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z`, auth);
  assert.equal(both.status, 422);
  const noUpgrade = await fetchInsecure(`${c.server.api.url}/api/v1/namespaces/${NS}/pods/web-1/exec?command=true&stdout=true`, { ...auth, method: 'POST' });
  assert.equal(noUpgrade.status, 400);
  assert.equal(noUpgrade.body.message, 'Upgrade request required');
  const exUnbound = await k(['exec', 'pending-1', '--', 'true'], { allowFail: true });
  assert.match(exUnbound.stderr, /pod pending-1 does not have a host assigned/);
  // an upgrade the agent refuses (no subprotocol offered): its answer is relayed as it is
  const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpsRequest(`${c.server.api.url}/api/v1/namespaces/${NS}/pods/web-1/exec?command=true&stdout=true`, {
      ca: c.server.caPem,
      headers: { Authorization: `Bearer ${c.server.token}`, Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    req.on('upgrade', () => reject(new Error('upgraded without a subprotocol')));
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(refused.status, 400);
  assert.match(JSON.parse(refused.body).message, /no supported WebSocket subprotocol/);
});

const SPDY_EXEC = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' };
const SPDY_PF = { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' };

for (const [proto, env] of [['WebSocket', {}], ['SPDY', SPDY_EXEC]] as const) {
  test(`kubectl exec through the tunnel (${proto}): output, stderr, exit code, stdin`, async () => {
    const r = await k(['exec', 'web-1', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3'], { allowFail: true, env });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, 'out\n');
    assert.match(r.stderr, /err\n/);
    assert.match(r.stderr, /command terminated with exit code 3/);
    const cat = await k(['exec', '-i', 'web-1', '--', 'cat'], { input: 'piped through\n', env });
    assert.equal(cat.stdout, 'piped through\n');
    // refused by the API server (kubectl tries WebSocket, then SPDY, and shows the error)
    const bad = await k(['exec', 'duo', '-c', 'nope', '--', 'true'], { allowFail: true, env });
    assert.match(bad.stderr, /container nope is not valid for pod duo/);
    await until(() => tunnel.activeStreams === 0, () => `the tunnel streams to be released (${tunnel.activeStreams} open)`);
  });
}

test('kubectl cp both ways through the tunnel, a few MB (flow control end to end)', async () => {
  // the fake "container" is the host, so the pod's paths are paths under the test's directory
  const big = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
  const src = join(c.dir, 'cp-src.bin');
  writeFileSync(src, big);
  const fromPod = join(c.dir, 'cp-from-pod.bin');
  await k(['cp', `${NS}/web-1:${src}`, fromPod]);
  assert.ok(readFileSync(fromPod).equals(big));
  const intoDir = join(c.dir, 'cp-into-pod');
  mkdirSync(intoDir);
  await k(['cp', fromPod, `${NS}/web-1:${intoDir}/copy.bin`]);
  assert.ok(readFileSync(join(intoDir, 'copy.bin')).equals(big));
});

for (const [proto, env] of [['SPDY in WebSocket', {}], ['SPDY', SPDY_PF]] as const) {
  test(`kubectl port-forward through the tunnel (${proto})`, async () => {
    const child = spawn(KUBECTL, ['-n', NS, 'port-forward', 'pod/web-1', ':8080'], { env: { ...c.env, ...env } });
    try {
      let out = '';
      const port = await new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`port-forward did not start: ${out}`)), 15_000);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /Forwarding from 127\.0\.0\.1:(\d+) -> 8080/.exec(out);
          if (m) { clearTimeout(t); resolve(Number(m[1])); }
        });
        child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      });
      const body = await new Promise<string>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/' }, (res) => {
          let b = '';
          res.on('data', (d: Buffer) => { b += d.toString(); });
          res.on('end', () => resolve(b));
        }).on('error', reject);
      });
      assert.equal(body, 'hello through the tunnel');
    } finally {
      child.kill();
    }
    await until(() => tunnel.activeStreams === 0, () => `the tunnel streams to be released (${tunnel.activeStreams} open)`);
  });
}

test('a tunnel without valid credentials is refused; the node keeps its authenticated tunnel', async () => {
  // no credentials at all
  const ws = new WebSocket(`${c.server.api.url.replace('https:', 'wss:')}/kyb/v1/node-tunnel?node=${NODE}`, { ca: c.server.caPem });
  const status = await new Promise<number>((resolve, reject) => {
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); ws.terminate(); });
    ws.on('open', () => reject(new Error('the tunnel was accepted without credentials')));
    ws.on('error', () => {});
  });
  assert.equal(status, 401);
  // a wrong token, through the agent's own client: it reports the refusal and keeps retrying
  const messages: string[] = [];
  const bad = newTunnel(NODE, 'not-the-token', (m) => messages.push(m));
  const ac = new AbortController();
  const run = bad.run(ac.signal);
  const end = Date.now() + 10_000;
  while (messages.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  ac.abort();
  await run;
  assert.ok(messages.length >= 2, 'it retried');
  assert.match(messages[0], /refused with 401: Unauthorized/);
  assert.equal(bad.connected, false);
  assert.equal((await k(['logs', 'duo', '-c', 'a'])).stdout, 'from a\n');
});

test('the agent reconnects after its tunnel is dropped, and a new connection for a node replaces the old', async () => {
  let disconnected = false;
  tunnel.once('disconnected', () => { disconnected = true; });
  c.server.api.tunnels.drop(NODE);
  await new Promise<void>((resolve) => tunnel.once('connected', resolve));
  assert.ok(disconnected);
  assert.equal((await k(['logs', 'duo', '-c', 'b'])).stdout, 'from b\n');
  // a second agent for the same node takes over
  const second = newTunnel(NODE, c.server.token);
  const ac2 = new AbortController();
  const run2 = second.run(ac2.signal);
  const replaced = new Promise<void>((resolve) => tunnel.once('disconnected', () => resolve()));
  await second.waitConnected();
  await replaced;
  // retire the first so the two do not take turns
  tunnelAc.abort();
  await tunnelRun;
  const end = Date.now() + 10_000;
  while (!(second.connected && c.server.api.tunnels.has(NODE)) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.equal((await k(['logs', 'duo', '-c', 'a'])).stdout, 'from a\n');
  tunnel = second; tunnelAc = ac2; tunnelRun = run2;
});
