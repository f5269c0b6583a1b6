import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPercent, resolveIntOrPercent } from './intstr.js';

test('percentages of a total, rounded up or down', () => {
  assert.equal(resolveIntOrPercent('25%', 10, true), 3);
  assert.equal(resolveIntOrPercent('25%', 10, false), 2);
  assert.equal(resolveIntOrPercent('25%', 4, true), 1);
  assert.equal(resolveIntOrPercent('0%', 10, true), 0);
  assert.equal(resolveIntOrPercent('100%', 7, false), 7);
  assert.equal(resolveIntOrPercent('150%', 2, true), 3);
  assert.equal(resolveIntOrPercent('33%', 1, true), 1);
  assert.equal(resolveIntOrPercent('33%', 1, false), 0);
});

test('integers pass through whatever the total', () => {
  assert.equal(resolveIntOrPercent(1, 10, true), 1);
  assert.equal(resolveIntOrPercent(0, 10, false), 0);
  assert.equal(resolveIntOrPercent(15, 10, true), 15);
});

test('invalid values throw with upstream messages', () => {
  assert.throws(() => resolveIntOrPercent(undefined, 10, true), { message: 'nil value for IntOrString' });
  assert.throws(() => resolveIntOrPercent('25', 10, true), { message: 'invalid value for IntOrString: invalid type: string is not a percentage' });
  assert.throws(() => resolveIntOrPercent('abc%', 10, true), { message: 'invalid value for IntOrString: invalid value "abc%": strconv.Atoi: parsing "abc": invalid syntax' });
  assert.throws(() => resolveIntOrPercent('2.5%', 10, true), /invalid syntax/);
  assert.throws(() => resolveIntOrPercent(1.5, 10, true), /neither int nor percentage/);
});

test('isPercent', () => {
  assert.equal(isPercent('25%'), true);
  assert.equal(isPercent('25'), false);
  assert.equal(isPercent(25), false);
});
