import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore, SqliteStore, openStore } from './index.js';

test('openStore picks the driver from the endpoint', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-open-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  const mem = openStore('memory://');
  assert.ok(mem instanceof MemoryStore);
  await mem.close();

  for (const [endpoint, sub] of [['', 'a'], ['sqlite://', 'b']] as const) {
    const s = openStore(endpoint, join(dir, sub));
    assert.ok(s instanceof SqliteStore);
    await s.create('/k', 'v');
    await s.close();
    assert.ok(existsSync(join(dir, sub, 'db', 'state.db')), `${endpoint || '(empty)'} → <dataDir>/db/state.db`);
  }

  const abs = join(dir, 'elsewhere', 'x.db');
  const s = openStore(`sqlite://${abs}?compactInterval=0&retainRevisions=50`, join(dir, 'unused'));
  await s.create('/k', 'v');
  await s.close();
  assert.ok(existsSync(abs));
  assert.ok(!existsSync(join(dir, 'unused')));
});

test('openStore refuses endpoints it cannot serve, saying why', () => {
  assert.throws(() => openStore('etcd://127.0.0.1:2379'), /etcd driver is not built yet/);
  assert.throws(() => openStore('https://10.0.0.1:2379'), /etcd driver is not built yet/);
  assert.throws(() => openStore('postgres://db/kine'), /unknown scheme "postgres"/);
  assert.throws(() => openStore('sqlite://'), /no data directory/);
  assert.throws(() => openStore('sqlite:///tmp/x.db?retain=5', '/tmp'), /unknown option "retain"/);
});
