// The agent's streaming server on its own (normally fed tunnel streams; here a loopback port): routing
// of kubelet paths, Status errors from the backend, streamed logs, and the hand-off of upgrade requests
// to the protocol handlers with the parsed parameters.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { errors } from '../../machinery/status.js';
import type { StreamingBackend } from './backend.js';
import { createStreamingServer, parseLogOptions, type ExecUpgradeParams, type PortForwardUpgradeParams } from './server.js';

const dir = mkdtempSync(join(tmpdir(), 'kyb-stream-srv-'));
const logPath = join(dir, 'app.log');
writeFileSync(logPath, '2026-11-22T07:37:20.1+00:00 stdout F hello\n2026-11-22T07:37:21.2+00:00 stderr F world\n');

const backend: StreamingBackend = {
  async logSource(ns, pod, container, previous) {
    if (pod !== 'web-1') throw errors.notFound('pods', pod);
    if (previous) throw errors.badRequest(`previous terminated container "${container}" in pod "${pod}" not found`);
    return { path: logPath, exited: Promise.resolve() };
  },
  exec: () => Promise.reject(errors.badRequest('no')),
  attach: () => Promise.reject(errors.badRequest('no')),
  portForward: () => Promise.reject(errors.badRequest('no')),
};

const seen: { kind: string; params: Omit<ExecUpgradeParams, 'backend'> | Omit<PortForwardUpgradeParams, 'backend'>; sameBackend: boolean }[] = [];
const server = createStreamingServer(backend, {
  handleExecUpgrade: (_req, socket, _head, { backend: b, ...params }) => {
    seen.push({ kind: 'exec', params, sameBackend: b === backend });
    socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n');
  },
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const port = (server.address() as AddressInfo).port;
after(() => { server.close(); rmSync(dir, { recursive: true, force: true }); });

function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; upgraded: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, upgraded: false }));
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode ?? 0, body: '', upgraded: true }); });
    req.on('error', reject);
    req.end();
  });
}
const upgrade = { Connection: 'Upgrade', Upgrade: 'websocket' };

test('logs, health, and errors as Status bodies', async () => {
  assert.deepEqual(await get('/healthz'), { status: 200, body: 'ok', upgraded: false });
  assert.equal((await get('/containerLogs/default/web-1/app')).body, 'hello\nworld\n');
  assert.equal((await get('/containerLogs/default/web-1/app?timestamps=true&tailLines=1')).body, '2026-11-22T07:37:21.2Z world\n');
  const missing = await get('/containerLogs/default/nope/app');
  assert.equal(missing.status, 404);
  assert.equal(JSON.parse(missing.body).message, 'pods "nope" not found');
  assert.equal((await get('/containerLogs/default/web-1/app?previous=true')).status, 400);
  assert.equal((await get('/nowhere/x/y')).status, 404);
  const plain = await get('/exec/default/web-1/app?command=ls&stdout=true');
  assert.equal(plain.status, 400);
  assert.equal(JSON.parse(plain.body).message, 'Upgrade request required');
});

test('upgrades reach the protocol handler with the parsed parameters; missing handlers and bad requests are refused', async () => {
  const r = await get('/exec/default/web-1/app?command=sh&command=-c&command=echo%20hi&stdin=true&stdout=1&tty=true', upgrade);
  assert.equal(r.upgraded, true);
  await get('/attach/default/web-1/app?stdout=true&stderr=true', upgrade);
  assert.deepEqual(seen, [
    { kind: 'exec', sameBackend: true, params: { namespace: 'default', pod: 'web-1', container: 'app', command: ['sh', '-c', 'echo hi'], stdin: true, stdout: true, stderr: false, tty: true, attach: false } },
    { kind: 'exec', sameBackend: true, params: { namespace: 'default', pod: 'web-1', container: 'app', command: [], stdin: false, stdout: true, stderr: true, tty: false, attach: true } },
  ]);
  const noStreams = await get('/exec/default/web-1/app?command=ls', upgrade);
  assert.equal(noStreams.status, 400);
  assert.equal(JSON.parse(noStreams.body).message, 'you must specify at least 1 of stdin, stdout, stderr');
  const noHandler = await get('/portForward/default/web-1', upgrade);
  assert.equal(noHandler.status, 500);
  assert.match(JSON.parse(noHandler.body).message, /port-forward is not supported by this node agent/);
});

test('log options from kubelet query parameters', () => {
  const now = new Date('2026-11-22T08:00:00Z');
  assert.deepEqual(parseLogOptions(new URLSearchParams('follow=true&sinceSeconds=60&limitBytes=5'), now),
    { follow: true, timestamps: false, tailLines: undefined, limitBytes: 5, since: new Date('2026-11-22T07:59:00Z') });
  assert.deepEqual(parseLogOptions(new URLSearchParams('sinceTime=2026-11-22T07:00:00Z&tailLines=0&timestamps=1'), now).since, new Date('2026-11-22T07:00:00Z'));
});
