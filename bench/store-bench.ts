// Store figures: SQLite create throughput with 1 and 32 concurrent writers (the group-commit effect),
// and get/list latency over 10,000 keys, with the memory store beside it for scale.
// Run: node --import tsx bench/store-bench.ts [directory for the database files]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore } from '../src/storage/memory/memory-store.js';
import { SqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import type { Store } from '../src/storage/store.js';

const base = process.argv[2] ?? tmpdir();
const dir = mkdtempSync(join(base, 'kyb-store-bench-'));
const value = JSON.stringify({ kind: 'Pod', metadata: { name: 'x', labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'nginx:1.27' }] }, pad: 'p'.repeat(1200) });

/** create keys for about `ms` milliseconds with `writers` concurrent loops; creates per second */
async function createRate(store: Store, writers: number, ms: number, tag: string): Promise<number> {
  let n = 0;
  const end = performance.now() + ms;
  const start = performance.now();
  await Promise.all(Array.from({ length: writers }, async (_, w) => {
    while (performance.now() < end) await store.create(`/bench/${tag}/${w}/${n++}`, value);
  }));
  return n / ((performance.now() - start) / 1000);
}

function quantiles(samples: number[]): string {
  samples.sort((a, b) => a - b);
  const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))];
  return `p50 ${fmt(q(0.5))}  p99 ${fmt(q(0.99))}`;
}
function fmt(ms: number): string { return ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(2)} ms`; }

async function latency(label: string, times: number, op: (i: number) => Promise<unknown>): Promise<void> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const t = performance.now();
    await op(i);
    samples.push(performance.now() - t);
  }
  console.log(`  ${label.padEnd(34)} ${quantiles(samples)}`);
}

async function reads(store: Store, name: string): Promise<void> {
  // 10,000 keys in 100 "namespaces" of 100, filled with many writers so group commit makes it quick
  const keys: string[] = [];
  for (let ns = 0; ns < 100; ns++) for (let i = 0; i < 100; i++) keys.push(`/registry/pods/ns${String(ns).padStart(3, '0')}/pod-${i}`);
  for (let i = 0; i < keys.length; i += 500) await Promise.all(keys.slice(i, i + 500).map((k) => store.create(k, value)));
  console.log(`${name}, 10,000 keys of ${value.length} bytes:`);
  await latency('get (random key)', 2000, () => store.get(keys[Math.floor(Math.random() * keys.length)]));
  await latency('list one namespace (100 keys)', 200, (i) => store.list(`/registry/pods/ns${String(i % 100).padStart(3, '0')}/`));
  await latency('list page of 500 (startAfter)', 100, (i) => store.list('/registry/pods/', { limit: 500, startAfter: keys[(i * 97) % keys.length] }));
  await latency('list all 10,000', 10, () => store.list('/registry/pods/'));
  await latency('count all 10,000', 50, () => store.count('/registry/pods/'));
}

try {
  const sqlite = SqliteStore.open(join(dir, 'writes.db'), { compactInterval: 0 });
  const t0 = sqlite.stats;
  const one = await createRate(sqlite, 1, 2000, 'one');
  const t1 = sqlite.stats;
  const many = await createRate(sqlite, 32, 2000, 'many');
  const t2 = sqlite.stats;
  await sqlite.close();
  const perTx = (a: typeof t0, b: typeof t0) => ((b.writes - a.writes) / Math.max(1, b.transactions - a.transactions)).toFixed(1);
  console.log(`sqlite creates (${value.length}-byte values, synchronous=FULL, in ${base}):`);
  console.log(`  1 writer     ${one.toFixed(0).padStart(7)} creates/s   (${perTx(t0, t1)} writes per transaction)`);
  console.log(`  32 writers   ${many.toFixed(0).padStart(7)} creates/s   (${perTx(t1, t2)} writes per transaction)`);
  console.log(`  group commit gain: ${(many / one).toFixed(1)}x`);

  const readStore = SqliteStore.open(join(dir, 'reads.db'), { compactInterval: 0 });
  await reads(readStore, 'sqlite');
  await readStore.close();
  const mem = new MemoryStore();
  await reads(mem, 'memory');
  await mem.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
