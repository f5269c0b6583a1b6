import { test } from 'node:test';
import assert from 'node:assert/strict';
import { JSONStreamDecoder } from './watch-decoder.js';

const events = [
  { type: 'ADDED', object: { metadata: { name: 'a', annotations: { note: 'braces } { and "quotes" \\ and newline\n' } } } },
  { type: 'MODIFIED', object: { metadata: { name: 'b', labels: { 'app': 'ünïcødé-✓-😀' } }, spec: { list: [1, [2, { x: 3 }]] } } },
  { type: 'BOOKMARK', object: { metadata: { resourceVersion: '42' } } },
];
const wire = Buffer.from(events.map((e) => JSON.stringify(e) + '\n').join(''));

test('decodes every event whatever byte the chunks are split at, including inside multi-byte characters', () => {
  for (let i = 0; i <= wire.length; i++) {
    for (const j of [i, Math.min(wire.length, i + 1), Math.min(wire.length, i + 7)]) {
      const d = new JSONStreamDecoder();
      const got = [...d.push(wire.subarray(0, i)), ...d.push(wire.subarray(i, j)), ...d.push(wire.subarray(j))];
      assert.deepEqual(got, events, `split at ${i}/${j}`);
      assert.equal(d.hasPartial(), false);
    }
  }
});

test('byte-at-a-time feeding yields each event as soon as it is complete', () => {
  const d = new JSONStreamDecoder();
  const got: unknown[] = [];
  const firstEnd = Buffer.byteLength(JSON.stringify(events[0]));
  for (let i = 0; i < wire.length; i++) {
    got.push(...d.push(wire.subarray(i, i + 1)));
    if (i === firstEnd - 2) assert.equal(got.length, 0);
    if (i === firstEnd - 1) assert.equal(got.length, 1);
  }
  assert.deepEqual(got, events);
});

test('a stream cut in the middle of an event reports a partial object; garbage between events throws', () => {
  const d = new JSONStreamDecoder();
  d.push(wire.subarray(0, 10));
  assert.equal(d.hasPartial(), true);
  assert.throws(() => new JSONStreamDecoder().push('{"a":1} xyz'), SyntaxError);
});

test('lines that are not exactly one object (pretty-printed, two on a line) fall back to the scanner', () => {
  const d = new JSONStreamDecoder();
  const text = '{"type":"ADDED","n":1}\n{\n  "type": "MODIFIED",\n  "n": 2\n}\n{"n":3}{"n":4}\n\n{"n":"five\\nlines"}\n';
  assert.deepEqual(d.push(text).map((e) => (e as { n: unknown }).n), [1, 2, 3, 4, 'five\nlines']);
  assert.equal(d.hasPartial(), false);
  assert.throws(() => new JSONStreamDecoder().push('{"n":1}\n42\n'), /unexpected "4" between watch events/);
});
