// `--metric-resolution` values: Go durations as metrics-server takes them, at least 1 s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMetricResolution } from './metric-resolution.js';

test('--metric-resolution: Go durations, at least 1s, clear errors', () => {
  assert.equal(parseMetricResolution('15s'), 15_000);
  assert.equal(parseMetricResolution('1m30s'), 90_000);
  assert.equal(parseMetricResolution('1s'), 1000);
  assert.throws(() => parseMetricResolution('500ms'), /must be at least 1s, got 500ms/);
  assert.throws(() => parseMetricResolution('fast'), /invalid --metric-resolution "fast": use a duration such as 15s or 1m/);
});
