import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Container, Probe } from 'kubernetes-types/core/v1.js';
import { FakeClock } from '../../client/clock.js';
import { ensurePki } from '../../apiserver/pki.js';
import { Prober, type ProbeResult, type ProbeSpec } from './prober.js';
import { probeHTTP, probeTCP } from './handlers.js';

/** Polls until cond() holds (real time), failing after a deadline. */
async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

interface Seen { method?: string; url?: string; headers: http.IncomingHttpHeaders }

// one HTTP server whose answers the tests change
let status = 200;
const seen: Seen[] = [];
let hang = false;
const hung: http.ServerResponse[] = [];
const server = http.createServer((req, res) => {
  seen.push({ method: req.method, url: req.url, headers: req.headers });
  const port = (server.address() as AddressInfo).port;
  if (hang) { hung.push(res); return; }
  if (req.url === '/redirect') { res.writeHead(302, { Location: '/healthz' }); res.end(); return; }
  if (req.url === '/away') { res.writeHead(301, { Location: `http://localhost:${port}/healthz` }); res.end('moved'); return; }
  if (req.url?.startsWith('/loop')) { res.writeHead(302, { Location: `/loop${Number(req.url.slice(5) || 0) + 1}` }); res.end(); return; }
  res.writeHead(status, { 'Content-Type': 'text/plain' });
  res.end(status < 400 ? 'ok' : 'bad');
});
let port = 0;
let closedPort = 0;

before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  // a port with nothing listening: bind, note, close
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  closedPort = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
});
after(async () => {
  for (const r of hung) r.destroy();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

const container = (): Container => ({ name: 'app', image: 'x', ports: [{ name: 'http', containerPort: port }] });

function start(prober: Prober, key: string, probe: Probe, kind: ProbeSpec['kind'], extra: Partial<ProbeSpec> = {}) {
  const results: ProbeResult[] = [];
  const attempts: ProbeResult[] = [];
  const handle = prober.add(key, { probe, kind, podIP: '127.0.0.1', container: container(), ...extra }, (r) => results.push(r), (a) => attempts.push(a));
  return { results, attempts, handle };
}

test('httpGet liveness: named port, kube-probe headers, failure only after failureThreshold, then it holds', async () => {
  status = 200;
  seen.length = 0;
  const clock = new FakeClock();
  const prober = new Prober({ clock });
  const { results, attempts, handle } = start(prober, 'p/app/liveness', {
    httpGet: { path: '/healthz', port: 'http', httpHeaders: [{ name: 'X-Custom', value: 'yes' }, { name: 'Host', value: 'example.test' }] },
    periodSeconds: 10, timeoutSeconds: 1, failureThreshold: 3,
  }, 'liveness');
  assert.equal(handle.ok, true); // liveness starts healthy
  await waitFor(() => attempts.length === 1, 'first probe at once');
  assert.deepEqual(attempts[0], { ok: true, message: 'Liveness probe succeeded' });
  assert.equal(seen[0]!.url, '/healthz');
  assert.equal(seen[0]!.headers['user-agent'], 'kube-probe/1.32');
  assert.equal(seen[0]!.headers.accept, '*/*');
  assert.equal(seen[0]!.headers['x-custom'], 'yes');
  assert.equal(seen[0]!.headers.host, 'example.test');
  assert.deepEqual(results, []);

  status = 500;
  for (let i = 2; i <= 3; i++) {
    clock.step(10_000);
    await waitFor(() => attempts.length === i, `probe ${i}`);
    assert.deepEqual(results, [], 'below the failure threshold nothing is reported');
  }
  assert.equal(attempts[1]!.message, 'Liveness probe failed: HTTP probe failed with statuscode: 500');
  clock.step(10_000);
  await waitFor(() => results.length === 1, 'thresholded failure');
  assert.deepEqual(results[0], { ok: false, message: 'Liveness probe failed: HTTP probe failed with statuscode: 500' });
  assert.equal(handle.ok, false);
  assert.equal(handle.active, false); // on hold until the container is restarted
  assert.equal(clock.pending(), 0);
  assert.equal(prober.size, 0);
});

test('readiness starts not-ready, needs successThreshold successes, and flips on each thresholded change', async () => {
  status = 200;
  const clock = new FakeClock();
  const prober = new Prober({ clock });
  const { results, attempts, handle } = start(prober, 'p/app/readiness', { httpGet: { path: '/healthz', port }, periodSeconds: 5, successThreshold: 2, failureThreshold: 1 }, 'readiness');
  assert.equal(handle.ok, false);
  await waitFor(() => attempts.length === 1, 'first probe');
  assert.deepEqual(results, []);
  clock.step(5000);
  await waitFor(() => results.length === 1, 'ready');
  assert.deepEqual(results[0], { ok: true, message: 'Readiness probe succeeded' });
  status = 503;
  clock.step(5000);
  await waitFor(() => results.length === 2, 'not ready');
  assert.deepEqual(results[1], { ok: false, message: 'Readiness probe failed: HTTP probe failed with statuscode: 503' });
  assert.equal(handle.active, true); // readiness keeps probing
  status = 200;
  clock.step(5000);
  await waitFor(() => attempts.length === 4, 'probe 4');
  assert.equal(results.length, 2);
  clock.step(5000);
  await waitFor(() => results.length === 3, 'ready again');
  handle.stop();
  handle.stop();
  assert.equal(clock.pending(), 0);
});

test('initialDelaySeconds counts from container start; ticks before it are skipped', async () => {
  status = 200;
  seen.length = 0;
  const clock = new FakeClock();
  const prober = new Prober({ clock });
  const { attempts } = start(prober, 'k1', { httpGet: { path: '/healthz', port }, initialDelaySeconds: 15, periodSeconds: 10 }, 'readiness');
  await new Promise((r) => setImmediate(r));
  clock.step(10_000); // 10 s < 15 s: skipped
  await new Promise((r) => setImmediate(r));
  assert.equal(attempts.length, 0);
  clock.step(10_000); // 20 s: runs
  await waitFor(() => attempts.length === 1, 'first probe after the delay');

  // a container that started 30 s ago is past its delay: probed at once
  const late = start(prober, 'k2', { httpGet: { path: '/healthz', port }, initialDelaySeconds: 15 }, 'liveness', { startedAt: clock.now() - 30_000 });
  await waitFor(() => late.attempts.length === 1, 'immediate probe');
  prober.stopAll();
  assert.equal(prober.size, 0);
});

test('redirects: followed on the same host, a redirect elsewhere is a success with a warning, loops stop after 10', async () => {
  status = 200;
  const ctx = { podIP: '127.0.0.1', container: container(), timeoutMs: 1000 };
  assert.deepEqual(await probeHTTP({ path: '/redirect', port }, ctx), { result: 'success', output: 'ok' });
  assert.deepEqual(await probeHTTP({ path: '/away', port }, ctx), { result: 'warning', output: 'Probe terminated redirects, Response body: moved' });
  const loop = await probeHTTP({ path: '/loop', port }, ctx);
  assert.equal(loop.result, 'failure');
  assert.match(loop.output, /^Get "http:\/\/127\.0\.0\.1:\d+\/loop10": stopped after 10 redirects$/);
  status = 404;
  assert.deepEqual(await probeHTTP({ path: '/healthz', port, host: '127.0.0.1' }, ctx), { result: 'failure', output: 'HTTP probe failed with statuscode: 404' });
  status = 200;
});

test('connection refused and timeouts read like the kubelet\'s events', async () => {
  const clock = new FakeClock();
  const prober = new Prober({ clock });
  const refused = start(prober, 'r', { httpGet: { path: '/', port: closedPort }, failureThreshold: 1 }, 'readiness');
  await waitFor(() => refused.attempts.length === 1, 'refused');
  assert.equal(refused.attempts[0]!.message, `Readiness probe failed: Get "http://127.0.0.1:${closedPort}/": dial tcp 127.0.0.1:${closedPort}: connect: connection refused`);

  const tcp = start(prober, 't', { tcpSocket: { port: closedPort } }, 'readiness');
  await waitFor(() => tcp.attempts.length === 1, 'tcp refused');
  assert.equal(tcp.attempts[0]!.message, `Readiness probe failed: dial tcp 127.0.0.1:${closedPort}: connect: connection refused`);
  prober.stopAll();

  // a server that never answers: the timeout fires on the fake clock
  hang = true;
  seen.length = 0;
  const slowClock = new FakeClock();
  const slow = start(new Prober({ clock: slowClock }), 's', { httpGet: { path: '/slow', port }, timeoutSeconds: 2, failureThreshold: 1 }, 'liveness');
  await waitFor(() => seen.length === 1, 'request reached the server');
  slowClock.step(1999);
  await new Promise((r) => setImmediate(r));
  assert.equal(slow.attempts.length, 0);
  slowClock.step(1);
  await waitFor(() => slow.results.length === 1, 'timeout');
  assert.equal(slow.results[0]!.message, `Liveness probe failed: Get "http://127.0.0.1:${port}/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`);
  hang = false;
});

test('tcpSocket: success against a listener, host defaults to the pod IP', async () => {
  const ctx = { podIP: '127.0.0.1', container: container(), timeoutMs: 1000 };
  assert.deepEqual(await probeTCP({ port: 'http' }, ctx), { result: 'success', output: '' });
  assert.deepEqual(await probeTCP({ port: closedPort, host: '127.0.0.1' }, ctx), { result: 'failure', output: `dial tcp 127.0.0.1:${closedPort}: connect: connection refused` });
});

test('HTTPS probes do not verify the certificate', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-probe-pki-'));
  const pki = ensurePki(dir, { hostnames: ['localhost'], ips: ['127.0.0.1'] });
  const srv = https.createServer({ cert: pki.serverCert, key: pki.serverKey }, (_req, res) => { res.writeHead(204); res.end(); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const p = (srv.address() as AddressInfo).port;
    assert.deepEqual(await probeHTTP({ scheme: 'HTTPS', path: '/', port: p }, { podIP: '127.0.0.1', container: container(), timeoutMs: 2000 }), { result: 'success', output: '' });
  } finally {
    srv.closeAllConnections();
    await new Promise<void>((r) => srv.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('exec through the worker\'s callback: exit codes, output, timeout on the clock; errors are not counted', async () => {
  const clock = new FakeClock();
  const calls: { command: string[]; timeoutMs: number }[] = [];
  let exitCode = 0;
  let never = false;
  const prober = new Prober({
    clock,
    exec: (key, command, timeoutMs) => {
      calls.push({ command, timeoutMs });
      if (never) return new Promise(() => undefined);
      return Promise.resolve({ exitCode, output: exitCode ? `${key}: not healthy\n` : '' });
    },
  });
  const p = start(prober, 'pod/app/liveness', { exec: { command: ['sh', '-c', 'test -f /tmp/healthy'] }, periodSeconds: 3, timeoutSeconds: 4, failureThreshold: 1 }, 'liveness');
  await waitFor(() => p.attempts.length === 1, 'exec 1');
  assert.deepEqual(calls[0], { command: ['sh', '-c', 'test -f /tmp/healthy'], timeoutMs: 4000 });
  exitCode = 1;
  clock.step(3000);
  await waitFor(() => p.results.length === 1, 'exec failure');
  assert.deepEqual(p.results[0], { ok: false, message: 'Liveness probe failed: pod/app/liveness: not healthy\n' });

  never = true;
  const t = start(prober, 't', { exec: { command: ['sh', '-c', 'sleep 10'] }, timeoutSeconds: 1, failureThreshold: 1 }, 'readiness');
  await waitFor(() => calls.length === 3, 'exec started');
  clock.step(1000);
  await waitFor(() => t.attempts.length === 1, 'exec timeout');
  assert.equal(t.attempts[0]!.message, 'Readiness probe failed: command "sh -c sleep 10" timed out');
  t.handle.stop();

  // per-spec callback wins; a throwing callback or a missing named port is an error, thrown away
  const e = start(prober, 'e', { exec: { command: ['true'] }, failureThreshold: 1 }, 'liveness', { exec: () => Promise.reject(new Error('container not running')) });
  await waitFor(() => e.attempts.length === 1, 'exec error');
  assert.deepEqual(e.attempts[0], { ok: false, message: 'Liveness probe errored: container not running' });
  assert.deepEqual(e.results, []);
  assert.equal(e.handle.ok, true);
  const np = start(prober, 'np', { httpGet: { path: '/', port: 'metrics' }, failureThreshold: 1 }, 'liveness');
  await waitFor(() => np.attempts.length === 1, 'port error');
  assert.deepEqual(np.attempts[0], { ok: false, message: 'Liveness probe errored: port metrics not found' });
  assert.equal(np.handle.active, true);
  prober.stopAll();
});

test('startup: reports its first thresholded result either way and stops; liveness added afterwards', async () => {
  const clock = new FakeClock();
  let code = 1;
  const prober = new Prober({ clock, exec: () => Promise.resolve({ exitCode: code, output: code ? 'starting' : '' }) });
  const failing = start(prober, 's1', { exec: { command: ['check'] }, periodSeconds: 1, failureThreshold: 2 }, 'startup');
  assert.equal(failing.handle.ok, false);
  await waitFor(() => failing.attempts.length === 1, 'startup 1');
  assert.deepEqual(failing.results, []);
  clock.step(1000);
  await waitFor(() => failing.results.length === 1, 'startup failure');
  assert.deepEqual(failing.results[0], { ok: false, message: 'Startup probe failed: starting' });
  assert.equal(failing.handle.active, false);

  const ok = start(prober, 's2', { exec: { command: ['check'] }, periodSeconds: 1, failureThreshold: 5 }, 'startup');
  await waitFor(() => ok.attempts.length === 1, 'startup attempt');
  code = 0;
  clock.step(1000);
  await waitFor(() => ok.results.length === 1, 'started');
  assert.deepEqual(ok.results[0], { ok: true, message: 'Startup probe succeeded' });
  assert.equal(ok.handle.active, false);
  assert.equal(prober.size, 0);
});

test('grpc: grpc.health.v1.Health/Check over HTTP/2', async () => {
  let serving = 1;
  let implemented = true;
  const seenServices: string[] = [];
  const srv = http2.createServer();
  srv.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      seenServices.push(body.length > 7 ? body.subarray(7).toString() : '');
      if (!implemented || headers[':path'] !== '/grpc.health.v1.Health/Check') {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unknown service grpc.health.v1.Health' }, { endStream: true });
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      const msg = Buffer.from([0x08, serving]);
      const head = Buffer.alloc(5); head.writeUInt32BE(msg.length, 1);
      stream.end(Buffer.concat([head, msg]));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const gport = (srv.address() as AddressInfo).port;
  const clock = new FakeClock();
  const prober = new Prober({ clock });
  try {
    const g = start(prober, 'g', { grpc: { port: gport, service: 'web' }, periodSeconds: 1, failureThreshold: 1 }, 'readiness');
    await waitFor(() => g.results.length === 1, 'serving');
    assert.deepEqual(g.results[0], { ok: true, message: 'Readiness probe succeeded' });
    assert.equal(seenServices[0], 'web');
    serving = 2;
    clock.step(1000);
    await waitFor(() => g.results.length === 2, 'not serving');
    assert.equal(g.results[1]!.message, 'Readiness probe failed: service unhealthy (responded with "NOT_SERVING")');
    implemented = false;
    clock.step(1000);
    await waitFor(() => g.attempts.length === 3, 'unimplemented');
    assert.equal(g.attempts[2]!.message, 'Readiness probe failed: error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health');
    prober.stopAll();
    const refused = start(prober, 'gr', { grpc: { port: closedPort }, failureThreshold: 1 }, 'readiness');
    await waitFor(() => refused.attempts.length === 1, 'grpc refused');
    assert.equal(refused.attempts[0]!.message, `Readiness probe failed: error: failed to connect service at "127.0.0.1:${closedPort}": dial tcp 127.0.0.1:${closedPort}: connect: connection refused`);
    prober.stopAll();
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});
