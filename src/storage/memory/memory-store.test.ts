import { test } from 'node:test';
import assert from 'node:assert/strict';
import { storeConformance } from '../conformance.js';
import { MemoryStore } from './memory-store.js';

storeConformance('memory', () => new MemoryStore());

test('memory store compacts old history on its own beyond retainRevisions', async () => {
  const s = new MemoryStore({ retainRevisions: 10 });
  for (let i = 0; i < 25; i++) await s.create(`/k/${i}`, 'x');
  // history is trimmed in chunks: never fewer than 10 revisions kept, never more than 20
  const compacted = await s.compactedRevision();
  assert.ok(compacted >= 5 && compacted <= 15, `compacted ${compacted}`);
  assert.equal(await s.count('/k/'), 25);
  await s.close();
});
