// A real `kyb server` process on the default SQLite store: every ConfigMap the API acknowledged
// (201) survives `kill -9` in the middle of a burst of concurrent creates, and resourceVersions
// keep increasing after the restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request, Agent } from 'node:https';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');

interface Kyb { child: ChildProcess; url: string; exited: Promise<NodeJS.Signals | number | null>; stderr(): string; agent?: Agent }

/** Start `kyb server` from source on `dir`; resolves once /readyz answers ok. */
async function startKyb(dir: string): Promise<Kyb> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'kyb-entry.ts'), 'server',
    '--data-dir', dir, '--https-listen-port', '0', '--bind-address', '127.0.0.1', '--datastore-endpoint', '', '--disable-agent'], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kyb server did not start: ${err}`)), 20_000);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      const m = /API at (https:\/\/\S+?),/.exec(err);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    void exited.then((s) => { clearTimeout(timer); reject(new Error(`kyb server exited (${s}): ${err}`)); });
  });
  const k: Kyb = { child, url, exited, stderr: () => err };
  const ca = readFileSync(join(dir, 'tls', 'server-ca.crt'), 'utf8');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await req(k, ca, '', 'GET', '/readyz').catch(() => undefined);
    if (r?.status === 200 && r.text === 'ok') return k;
    if (Date.now() > deadline) throw new Error(`kyb server not ready: ${err}`);
    await new Promise((r2) => setTimeout(r2, 50));
  }
}

function req(k: Kyb, ca: string, token: string, method: string, path: string, body?: unknown): Promise<{ status: number; text: string; body: any }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const r = request(`${k.url}${path}`, {
      method, ca, agent: k.agent ??= new Agent({ keepAlive: true, ca, maxSockets: 32 }),
      headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(payload ? { 'Content-Type': 'application/json' } : {}) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: unknown;
        try { parsed = JSON.parse(text); } catch { parsed = undefined; }
        resolve({ status: res.statusCode ?? 0, text, body: parsed });
      });
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end(payload);
  });
}

test('acknowledged writes survive kill -9 of kyb server (sqlite)', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-durable-'));
  let current: Kyb | undefined;
  t.after(async () => {
    if (current && current.child.exitCode === null && current.child.signalCode === null) {
      current.child.kill('SIGKILL');
      await current.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  current = await startKyb(dir);
  const ca = readFileSync(join(dir, 'tls', 'server-ca.crt'), 'utf8');
  const token = readFileSync(join(dir, 'token'), 'utf8').trim();
  const P = '/api/v1/namespaces/default/configmaps';
  assert.equal((await req(current, ca, '', 'GET', P)).status, 401, 'credentials are required');

  const acked = new Map<string, { rv: number; value: string }>();
  let maxRv = 0;
  let onAck: (() => void) | undefined;
  const create = async (k: Kyb, i: number): Promise<void> => {
    const name = `cm-${String(i).padStart(3, '0')}`;
    const value = `value-${i}-${'x'.repeat(i % 50)}`;
    try {
      const r = await req(k, ca, token, 'POST', P, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { v: value } });
      if (r.status === 201) {
        const rv = Number(r.body.metadata.resourceVersion);
        acked.set(name, { rv, value });
        maxRv = Math.max(maxRv, rv);
        onAck?.();
      } else assert.fail(`create ${name}: ${r.status} ${r.text}`);
    } catch (e) {
      // connection reset by the kill: not acknowledged, may or may not exist
      if (!/ECONNRESET|ECONNREFUSED|socket hang up|EPIPE/.test(String((e as Error).message ?? e))) throw e;
    }
  };

  // 200 creates by 20 concurrent workers; kill -9 as soon as 150 are acknowledged, with the
  // workers' next requests in flight
  const TOTAL = 200, CONCURRENCY = 20, KILL_AT = 150;
  const t0 = Date.now();
  let killed = false;
  let next = 0;
  const k = current;
  onAck = () => { if (acked.size >= KILL_AT && !killed) { k.child.kill('SIGKILL'); killed = true; } };
  const worker = async () => { while (!killed && next < TOTAL) await create(k, next++); };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  assert.ok(killed);
  assert.equal(await k.exited, 'SIGKILL');
  k.agent?.destroy();
  const attempted = next;
  assert.ok(acked.size >= KILL_AT && acked.size < TOTAL, `acknowledged ${acked.size}`);
  t.diagnostic(`acknowledged ${acked.size} of ${attempted} attempted, max resourceVersion ${maxRv}`);
  t.diagnostic(`creates took ${Date.now() - t0} ms`);
  const t1 = Date.now();
  current = await startKyb(dir);
  t.diagnostic(`restart took ${Date.now() - t1} ms`);
  const list = await req(current, ca, token, 'GET', P);
  assert.equal(list.status, 200);
  const byName = new Map<string, any>(list.body.items.map((i: any) => [i.metadata.name, i]));
  for (const [name, a] of acked) {
    const o = byName.get(name);
    assert.ok(o, `acknowledged ${name} is missing after the restart`);
    assert.equal(o.data.v, a.value);
    assert.equal(Number(o.metadata.resourceVersion), a.rv);
  }
  // unacknowledged creates either happened completely or not at all
  for (const [name, o] of byName) {
    if (!name.startsWith('cm-') || acked.has(name)) continue;
    const i = Number(name.slice(3));
    assert.equal(o.data.v, `value-${i}-${'x'.repeat(i % 50)}`);
  }
  assert.ok(Number(list.body.metadata.resourceVersion) >= maxRv);

  // resourceVersions keep increasing after the restart
  const after = await req(current, ca, token, 'POST', P, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after-restart' } });
  assert.equal(after.status, 201, after.text);
  assert.ok(Number(after.body.metadata.resourceVersion) > Number(list.body.metadata.resourceVersion));
  const upd = await req(current, ca, token, 'PUT', `${P}/cm-000`, { ...byName.get('cm-000'), data: { v: 'updated' } });
  assert.equal(upd.status, 200, upd.text);
  assert.ok(Number(upd.body.metadata.resourceVersion) > Number(after.body.metadata.resourceVersion));

  current.agent?.destroy();
  current.child.kill('SIGTERM');
  await current.exited;
});
