// Child process for durability.test.ts: opens the store at argv[2] and writes as fast as it can with
// several concurrent writers, printing "ack <key> <revision> <value>" for each write the store has
// acknowledged. The parent kills it with SIGKILL part-way through.
import { SqliteStore } from './sqlite-store.js';

const path = process.argv[2];
const writers = Number(process.argv[3] ?? 8);
if (!path) throw new Error('usage: durability-child.ts <db path> [writers]');

const store = SqliteStore.open(path, { compactInterval: 0 });
let next = 0;

async function writer(): Promise<never> {
  for (;;) {
    const i = next++;
    const key = `/d/${String(i).padStart(8, '0')}`;
    const value = `value-${i}-${'x'.repeat(i % 200)}`;
    const kv = await store.create(key, value);
    process.stdout.write(`ack ${key} ${kv.modRevision} ${value}\n`);
    // every tenth key is rewritten too, so updates are covered as well as creates
    if (i % 10 === 0) {
      const u = await store.update(key, `${value}-updated`, kv.modRevision);
      process.stdout.write(`ack ${key} ${u.modRevision} ${value}-updated\n`);
    }
  }
}

process.stdout.write('ready\n');
for (let w = 0; w < writers; w++) void writer();
