import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storeConformance } from '../conformance.js';
import { SqliteStore } from './sqlite-store.js';
import type { WatchEvent } from '../store.js';

let dir = '';
let n = 0;
before(() => { dir = mkdtempSync(join(tmpdir(), 'kyb-sqlite-')); });
after(() => { rmSync(dir, { recursive: true, force: true }); });
const fresh = () => join(dir, `s${n++}`, 'state.db');

storeConformance('sqlite', () => SqliteStore.open(fresh()));

test('sqlite store creates the parent directory and keeps state, revision and compaction across reopen', async () => {
  const path = join(dir, 'nested', 'deeper', 'state.db');
  let s = SqliteStore.open(path);
  assert.ok(existsSync(path));
  const a = await s.create('/a', 'a1');
  await s.create('/b', 'b1');
  await s.update('/a', 'a2', a.modRevision);
  await s.delete('/b');
  await s.create('/c', 'c1');
  await s.compact(2);
  await s.close();

  s = SqliteStore.open(path);
  assert.equal(await s.currentRevision(), 5);
  assert.equal(await s.compactedRevision(), 2);
  assert.deepEqual((await s.list('/')).items.map((kv) => [kv.key, kv.value, kv.createRevision, kv.modRevision]),
    [['/a', 'a2', 1, 3], ['/c', 'c1', 5, 5]]);
  // the log survived too: a watch from the compacted revision replays it
  const events: WatchEvent[] = [];
  const w = s.watch('/', 2, { onEvents: (evs) => events.push(...evs) });
  const d = await s.create('/d', 'd1');
  assert.equal(d.modRevision, 6);
  const deadline = Date.now() + 3000;
  while (events.length < 4 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  w.stop();
  assert.deepEqual(events.map((e) => [e.type, e.kv.key, e.revision]),
    [['update', '/a', 3], ['delete', '/b', 4], ['create', '/c', 5], ['create', '/d', 6]]);
  assert.equal(events[1].prevKv?.value, 'b1');
  await s.close();
});

test('compacting everything keeps the revision counter across reopen', async () => {
  const path = fresh();
  let s = SqliteStore.open(path);
  await s.create('/a', '1');
  await s.create('/b', '1');
  await s.compact(2);
  await s.close();
  s = SqliteStore.open(path);
  assert.equal(await s.currentRevision(), 2);
  assert.equal((await s.create('/c', '1')).modRevision, 3);
  await s.close();
});

test('a second open of the same database fails while the first holds it', async () => {
  const path = fresh();
  const s = SqliteStore.open(path);
  assert.throws(() => SqliteStore.open(path), /in use by another process/);
  await s.create('/a', 'x');
  await s.close();
  const again = SqliteStore.open(path);
  assert.equal((await again.get('/a'))?.value, 'x');
  await again.close();
});

test('writes arriving together are committed in one transaction', async () => {
  const s = SqliteStore.open(fresh());
  const before = s.stats;
  const results = await Promise.allSettled([
    ...Array.from({ length: 50 }, (_, i) => s.create(`/g/${i}`, 'x')),
    s.update('/g/0', 'y', 999),
  ]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 50);
  assert.equal(s.stats.transactions - before.transactions, 1);
  assert.equal(s.stats.writes - before.writes, 50);
  // one at a time, each write is its own transaction
  await s.create('/g/x', 'x');
  await s.create('/g/y', 'x');
  assert.equal(s.stats.transactions - before.transactions, 3);
  await s.close();
});

test('close commits writes still queued', async () => {
  const path = fresh();
  const s = SqliteStore.open(path);
  const pending = s.create('/late', 'v');
  await s.close();
  assert.equal((await pending).modRevision, 1);
  const again = SqliteStore.open(path);
  assert.equal((await again.get('/late'))?.value, 'v');
  await again.close();
});

test('automatic compaction keeps the last retainRevisions revisions', async () => {
  const s = SqliteStore.open(fresh(), { compactInterval: 10, retainRevisions: 5 });
  for (let i = 0; i < 12; i++) await s.create(`/k/${i}`, 'x');
  const deadline = Date.now() + 3000;
  while ((await s.compactedRevision()) !== 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.equal(await s.compactedRevision(), 7);
  assert.equal(await s.count('/k/'), 12);
  await s.close();
});

test('the store checkpoints the WAL itself: it stays bounded, and every write survives reopen', async () => {
  const path = fresh();
  let s = SqliteStore.open(path, { compactInterval: 0 });
  const big = 'v'.repeat(20_000);
  // ~24 MB of values (twice that with the log), in batches of 20 concurrent writes
  for (let b = 0; b < 60; b++) {
    await Promise.all(Array.from({ length: 20 }, (_, i) => s.create(`/big/${String(b * 20 + i).padStart(5, '0')}`, `${b * 20 + i}:${big}`)));
  }
  const rev = await s.currentRevision();
  assert.equal(rev, 1200);
  // without checkpoints the WAL would hold every page written (> 48 MB)
  assert.ok(statSync(`${path}-wal`).size < 16 << 20, `WAL is ${statSync(`${path}-wal`).size} bytes`);
  await s.close();
  s = SqliteStore.open(path, { compactInterval: 0 });
  assert.equal(await s.currentRevision(), 1200);
  assert.equal(await s.count('/big/'), 1200);
  assert.equal((await s.get('/big/00777'))?.value, `777:${big}`);
  assert.equal((await s.create('/after', 'x')).modRevision, 1201);
  await s.close();
});
