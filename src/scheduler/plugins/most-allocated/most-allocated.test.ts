import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mostRequestedScore } from './most-allocated.js';

test('mostRequestedScore: requested share of capacity, capped at 100, 0 without capacity', () => {
  assert.equal(mostRequestedScore(1000, 4000), 25);
  assert.equal(mostRequestedScore(3999, 4000), 99);
  assert.equal(mostRequestedScore(5000, 4000), 100);
  assert.equal(mostRequestedScore(5, 0), 0);
});
