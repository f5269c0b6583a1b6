import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatQuantity, parseQuantity, quantityFormatError, quantityFromMilli, quantityFromValue, tryParseQuantity } from './quantity.js';
import { StatusError } from './status.js';

test('cpu quantities: milli values and canonical form', () => {
  const cases: [string, number, string][] = [
    ['250m', 250, '250m'], ['2', 2000, '2'], ['0.5', 500, '500m'], ['1.5', 1500, '1500m'],
    ['1000m', 1000, '1'], ['100m', 100, '100m'], ['0.1', 100, '100m'], ['1k', 1_000_000, '1k'],
    ['0', 0, '0'], ['1500', 1_500_000, '1500'], ['2000', 2_000_000, '2k'], ['+1', 1000, '+1'],
    ['-250m', -250, '-250m'], ['1.500', 1500, '1.500'], ['12e3', 12_000_000, '12e3'], ['1.5e3', 1_500_000, '1500'],
  ];
  for (const [s, milli, str] of cases) {
    const q = parseQuantity(s);
    assert.equal(q.milliValue(), milli, s);
    assert.equal(q.toString(), str, s);
  }
});

test('memory quantities: binary suffixes and canonical form', () => {
  const cases: [string, number, string][] = [
    ['128Mi', 128 * 2 ** 20, '128Mi'], ['1Gi', 2 ** 30, '1Gi'], ['1.5Gi', 1.5 * 2 ** 30, '1536Mi'],
    ['1024Mi', 2 ** 30, '1Gi'], ['1025Ki', 1025 * 1024, '1025Ki'], ['8Ki', 8192, '8Ki'],
    ['0.5Ki', 512, '512'], ['100M', 100e6, '100M'], ['1e6', 1e6, '1e6'], ['1E', 1e18, '1E'], ['2Ei', 2 * 2 ** 60, '2Ei'],
  ];
  for (const [s, value, str] of cases) {
    const q = parseQuantity(s);
    assert.equal(q.value(), value, s);
    assert.equal(q.toString(), str, s);
  }
  assert.equal(parseQuantity('1.5Gi').format, 'BinarySI');
  assert.equal(parseQuantity('0.5Ki').format, 'BinarySI');
  assert.equal(parseQuantity('0.1Ki').toString(), '102400m', 'below 1024 a binary quantity prints in DecimalSI');
});

test('values round up (away from zero) as upstream', () => {
  assert.equal(parseQuantity('1.1').value(), 2);
  assert.equal(parseQuantity('100m').value(), 1);
  assert.equal(parseQuantity('0.0001').milliValue(), 1);
  assert.equal(parseQuantity('1n').milliValue(), 1);
  assert.equal(parseQuantity('-1.1').value(), -2);
  assert.equal(parseQuantity('0.0000000001').toString(), '1n', 'rounded up to nano');
  assert.equal(parseQuantity('1u').scaledValue(-6), 1);
});

test('cmp, add and sub', () => {
  assert.equal(parseQuantity('1').cmp(parseQuantity('1000m')), 0);
  assert.equal(parseQuantity('1Gi').cmp(parseQuantity('1G')), 1);
  assert.equal(parseQuantity('500m').cmp(parseQuantity('0.6')), -1);
  assert.equal(parseQuantity('250m').add(parseQuantity('750m')).toString(), '1');
  assert.equal(parseQuantity('1Gi').sub(parseQuantity('512Mi')).toString(), '512Mi');
  assert.equal(parseQuantity('0').add(parseQuantity('1Ki')).toString(), '1Ki', 'zero takes the other format');
  assert.equal(JSON.stringify({ cpu: parseQuantity('0.25') }), '{"cpu":"250m"}');
});

test('formatQuantity of milli-values', () => {
  assert.equal(formatQuantity(250, 'DecimalSI'), '250m');
  assert.equal(formatQuantity(2000, 'DecimalSI'), '2');
  assert.equal(formatQuantity(0, 'DecimalSI'), '0');
  assert.equal(formatQuantity(1500 * 2 ** 20 * 1000, 'BinarySI'), '1500Mi');
  assert.equal(formatQuantity(2 ** 30 * 1000, 'BinarySI'), '1Gi');
  assert.equal(formatQuantity(1000 * 1000, 'BinarySI'), '1k', 'under 1Ki a binary quantity prints in DecimalSI');
  assert.equal(formatQuantity(1500, 'BinarySI'), '1500m');
  assert.equal(formatQuantity(12_000_000, 'DecimalExponent'), '12e3');
  assert.equal(quantityFromMilli(100, 'DecimalSI').toString(), '100m');
  assert.equal(quantityFromValue(3 * 2 ** 20, 'BinarySI').toString(), '3Mi');
});

test('invalid quantities are rejected with upstream messages', () => {
  for (const s of ['', 'abc', '1.2.3', ' 1', '1 ', '1Gi-x', '1KiB']) {
    assert.throws(() => parseQuantity(s), (e: unknown) => e instanceof StatusError && e.message === quantityFormatError, JSON.stringify(s));
  }
  assert.equal(quantityFormatError, "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'");
  for (const s of ['1K', '1mi', '1e', '1Mm', '1Gi1']) {
    assert.throws(() => parseQuantity(s), { message: "unable to parse quantity's suffix" }, s);
  }
  assert.equal(tryParseQuantity('nope'), undefined);
  assert.equal(tryParseQuantity('1')?.value(), 1);
});
