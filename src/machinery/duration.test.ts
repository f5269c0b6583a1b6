import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGoDuration } from './duration.js';

test('Go durations parse to milliseconds', () => {
  assert.equal(parseGoDuration('15s'), 15_000);
  assert.equal(parseGoDuration('5m0s'), 300_000);
  assert.equal(parseGoDuration('1h30m'), 5_400_000);
  assert.equal(parseGoDuration('500ms'), 500);
  assert.equal(parseGoDuration('1.5s'), 1500);
  assert.equal(parseGoDuration('0'), 0);
  assert.equal(parseGoDuration('1500000us'), 1500);
});

test('bad durations are errors that name the value', () => {
  for (const bad of ['', '15', 's', '5x', '1h 2m', '-1s']) {
    assert.throws(() => parseGoDuration(bad), new RegExp(`invalid duration ${JSON.stringify(bad).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  }
});
