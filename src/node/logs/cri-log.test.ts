// CRI log entries and kubelet's timestamp format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRfc3339Nano, parseCriLine, parseLogTime, formatCriLine } from './cri-log.js';

test('parses conmon entries: stream, full/partial tag, content with spaces, empty content', () => {
  const e = parseCriLine(Buffer.from('2026-11-22T07:37:20.270136357+00:00 stdout F hello  world '))!;
  assert.equal(e.stream, 'stdout');
  assert.equal(e.full, true);
  assert.equal(e.content.toString(), 'hello  world ');
  assert.deepEqual(e.time, { sec: Date.UTC(2026, 10, 22, 7, 37, 20) / 1000, nanos: 270136357 });
  const p = parseCriLine(Buffer.from('2026-11-22T07:37:21.272523513+00:00 stderr P partial'))!;
  assert.equal(p.stream, 'stderr');
  assert.equal(p.full, false);
  assert.equal(parseCriLine(Buffer.from('2026-11-22T07:37:21Z stdout F'))!.content.length, 0);
  assert.equal(parseCriLine(Buffer.from('2026-11-22T07:37:21Z stdout F '))!.content.length, 0);
  for (const bad of ['', 'garbage', '2026-11-22T07:37:21Z stdin F x', 'yesterday stdout F x', '2026-11-22T07:37:21Z stdout X x']) {
    assert.equal(parseCriLine(Buffer.from(bad)), undefined, bad);
  }
});

test('timestamps: offsets are converted to UTC and printed as Go RFC3339Nano (trailing zeros dropped)', () => {
  const t = parseLogTime('2026-11-22T09:37:20.270136357+02:00')!;
  assert.equal(formatRfc3339Nano(t), '2026-11-22T07:37:20.270136357Z');
  assert.equal(formatRfc3339Nano(parseLogTime('2026-11-22T07:37:20.270100000+00:00')!), '2026-11-22T07:37:20.2701Z');
  assert.equal(formatRfc3339Nano(parseLogTime('2026-11-22T07:37:20.000000000-05:30')!), '2026-11-22T13:07:20Z');
  assert.equal(formatRfc3339Nano(parseLogTime('2026-11-22T07:37:20Z')!), '2026-11-22T07:37:20Z');
  assert.equal(parseLogTime('2026-13-22T07:37:20Z'), undefined);
  assert.equal(parseLogTime('2026-11-22 07:37:20Z'), undefined);
  assert.equal(formatCriLine('2026-11-22T07:37:20.1+00:00', 'stdout', 'x', false), '2026-11-22T07:37:20.1+00:00 stdout P x\n');
});
