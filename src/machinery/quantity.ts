// resource.Quantity, with upstream's parsing, rounding and canonical printing
// (k8s.io/apimachinery/pkg/api/resource). A quantity is held exactly as a bigint count of
// nano-units (10^-9), rounded away from zero at parse time as upstream rounds to nano scale.

import { errors } from './status.js';

export type QuantityFormat = 'DecimalExponent' | 'BinarySI' | 'DecimalSI';

const splitREString = '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$';
export const quantityFormatError = `quantities must match the regular expression '${splitREString}'`;
const errNumeric = 'unable to parse numeric part of quantity';
const errSuffix = "unable to parse quantity's suffix";

const NANO = 1_000_000_000n;
const MAX_INT64 = 2n ** 63n - 1n;
/** Decimal exponents larger than this are refused (upstream has no bound; a bigint of 10^N would). */
const MAX_DECIMAL_EXPONENT = 1000;

const decimalSuffixes: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const decimalSuffixByExp = new Map(Object.entries(decimalSuffixes).map(([s, e]) => [e, s]));
const binarySuffixes: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const binarySuffixByPow = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];

function pow10(n: number): bigint {
  return 10n ** BigInt(n);
}

/** a / b rounded away from zero (b > 0). */
function divAway(a: bigint, b: bigint): bigint {
  const q = a / b;
  if (q * b === a) return q;
  return a > 0n ? q + 1n : q - 1n;
}

function abs(a: bigint): bigint {
  return a < 0n ? -a : a;
}

export class Quantity {
  /**
   * @param nanos the exact value in units of 10^-9
   * @param format how the canonical form prints
   * @param s the string to print instead of the canonical form (upstream keeps the input when it
   *          is already in a canonical-like shape, e.g. `100m`, `1Ki`, `1.500`)
   */
  constructor(readonly nanos: bigint, readonly format: QuantityFormat, private readonly s?: string) {}

  isZero(): boolean { return this.nanos === 0n; }
  sign(): -1 | 0 | 1 { return this.nanos === 0n ? 0 : this.nanos > 0n ? 1 : -1; }

  /** The value in whole units, rounded away from zero (upstream's Value()). */
  value(): number { return Number(divAway(this.nanos, NANO)); }
  /** The value in thousandths, rounded away from zero (upstream's MilliValue()). */
  milliValue(): number { return Number(divAway(this.nanos, 1_000_000n)); }
  /** The value in units of 10^scale, rounded away from zero (upstream's ScaledValue). */
  scaledValue(scale: number): number {
    const k = scale + 9;
    return Number(k >= 0 ? divAway(this.nanos, pow10(k)) : this.nanos * pow10(-k));
  }
  asApproximateFloat64(): number { return Number(this.nanos) / 1e9; }

  cmp(other: Quantity): -1 | 0 | 1 {
    return this.nanos === other.nanos ? 0 : this.nanos < other.nanos ? -1 : 1;
  }
  equals(other: Quantity): boolean { return this.nanos === other.nanos; }

  /** Sum; takes the other's format when this one is zero, as upstream's Add. */
  add(other: Quantity): Quantity {
    return new Quantity(this.nanos + other.nanos, this.isZero() ? other.format : this.format);
  }
  sub(other: Quantity): Quantity {
    return new Quantity(this.nanos - other.nanos, this.isZero() ? other.format : this.format);
  }
  neg(): Quantity { return new Quantity(-this.nanos, this.format); }

  /** The string upstream would serialize: the kept input, or the canonical form. */
  toString(): string { return this.s ?? canonicalize(this.nanos, this.format); }
  toJSON(): string { return this.toString(); }
}

function canonicalize(nanos: bigint, format: QuantityFormat): string {
  if (nanos === 0n) return '0';
  if (format === 'BinarySI') {
    if (abs(nanos) >= 1024n * NANO && nanos % NANO === 0n) {
      let units = nanos / NANO;
      let k = 0;
      while (k < 6 && units % 1024n === 0n) { units /= 1024n; k++; }
      return `${units}${binarySuffixByPow[k]}`;
    }
    format = 'DecimalSI';
  }
  let m = nanos;
  let e = -9;
  while (m % 10n === 0n) { m /= 10n; e++; }
  while (((e % 3) + 3) % 3 !== 0) { m *= 10n; e--; }
  if (format === 'DecimalExponent') return `${m}${e === 0 ? '' : `e${e}`}`;
  const suffix = decimalSuffixByExp.get(e);
  // beyond E upstream prints no suffix at all (a bug); fall back to an exponent
  return `${m}${suffix ?? `e${e}`}`;
}

interface Parts { positive: boolean; num: string; denom: string; suffix: string }

/** Upstream's parseQuantityString, step by step. */
function splitQuantity(str: string): Parts {
  let positive = true;
  let pos = 0;
  const end = str.length;
  if (str[0] === '-') { positive = false; pos++; } else if (str[0] === '+') pos++;
  while (pos < end && str[pos] === '0') pos++;
  if (pos >= end) return { positive, num: '0', denom: '', suffix: '' };
  let i = pos;
  while (i < end && str[i] >= '0' && str[i] <= '9') i++;
  let num = str.slice(pos, i);
  if (i >= end) return { positive, num, denom: '', suffix: '' };
  pos = i;
  if (num.length === 0) num = '0';
  let denom = '';
  if (str[pos] === '.') {
    pos++;
    i = pos;
    while (i < end && str[i] >= '0' && str[i] <= '9') i++;
    denom = str.slice(pos, i);
    if (i >= end) return { positive, num, denom, suffix: '' };
    pos = i;
  }
  const suffixStart = pos;
  i = pos;
  while (i < end && 'eEinumkKMGTP'.includes(str[i])) i++;
  if (i >= end) return { positive, num, denom, suffix: str.slice(suffixStart) };
  pos = i;
  if (str[pos] === '-' || str[pos] === '+') pos++;
  for (i = pos; i < end; i++) {
    if (str[i] < '0' || str[i] > '9') throw errors.badRequest(quantityFormatError);
  }
  return { positive, num, denom, suffix: str.slice(suffixStart) };
}

function interpretSuffix(s: string): { base: 10 | 2; exponent: number; format: QuantityFormat } {
  if (Object.prototype.hasOwnProperty.call(decimalSuffixes, s)) return { base: 10, exponent: decimalSuffixes[s], format: 'DecimalSI' };
  if (Object.prototype.hasOwnProperty.call(binarySuffixes, s)) return { base: 2, exponent: binarySuffixes[s], format: 'BinarySI' };
  if (s.length > 1 && (s[0] === 'e' || s[0] === 'E') && /^[+-]?[0-9]+$/.test(s.slice(1))) {
    const exponent = Number(s.slice(1));
    if (Math.abs(exponent) > MAX_DECIMAL_EXPONENT) throw errors.badRequest(errNumeric);
    return { base: 10, exponent, format: 'DecimalExponent' };
  }
  throw errors.badRequest(errSuffix);
}

/** Parses a quantity (`250m`, `1.5Gi`, `2`, `1e3`). Invalid → 400 BadRequest with upstream's message. */
export function parseQuantity(str: string): Quantity {
  if (str.length === 0) throw errors.badRequest(quantityFormatError);
  if (str === '0') return new Quantity(0n, 'DecimalSI', '0');
  const { positive, num, denom, suffix } = splitQuantity(str);
  const { base, exponent, format: parsedFormat } = interpretSuffix(suffix);
  let format = parsedFormat;

  const digits = BigInt(num + denom);
  let nanos: bigint;
  if (base === 10) {
    const k = exponent - denom.length + 9;
    if (k >= 0) nanos = digits * pow10(k);
    else if (-k > num.length + denom.length + 1) nanos = digits === 0n ? 0n : 1n;
    else nanos = divAway(digits, pow10(-k));
  } else {
    const scaled = digits << BigInt(exponent);
    const k = 9 - denom.length;
    nanos = k >= 0 ? scaled * pow10(k) : divAway(scaled, pow10(-k));
  }
  if (format === 'BinarySI' && nanos > MAX_INT64 * NANO) nanos = MAX_INT64 * NANO;
  if (format === 'BinarySI' && nanos > 0n && nanos < NANO) format = 'DecimalSI';
  if (!positive) nanos = -nanos;

  return new Quantity(nanos, format, keptString(str, num, denom, exponent, parsedFormat));
}

/** Whether upstream keeps the input string as the serialized form (its int64 fast path). */
function keptString(str: string, num: string, denom: string, exponent: number, format: QuantityFormat): string | undefined {
  const shifted = num + denom;
  if (format === 'BinarySI') {
    if (exponent < 0 || denom.length > 0) return undefined;
    const precision = 15 - num.length - Math.trunc((exponent * 3) / 10) - 1;
    if (precision < 0) return undefined;
    return (BigInt(num) & 7n) !== 0n ? str : undefined;
  }
  const precision = 18 - shifted.length;
  const scale = exponent - denom.length;
  if (precision < 0 || scale < -9) return undefined;
  return scale % 3 === 0 && !shifted.endsWith('000') && shifted[0] !== '0' ? str : undefined;
}

/** parseQuantity that returns undefined instead of throwing. */
export function tryParseQuantity(str: string): Quantity | undefined {
  try {
    return parseQuantity(str);
  } catch {
    return undefined;
  }
}

function toBigInt(v: number | bigint): bigint {
  if (typeof v === 'bigint') return v;
  if (!Number.isFinite(v)) throw new RangeError(`not a finite number: ${v}`);
  return BigInt(v < 0 ? Math.floor(v) : Math.ceil(v));
}

/** upstream's NewMilliQuantity */
export function quantityFromMilli(milli: number | bigint, format: QuantityFormat): Quantity {
  return new Quantity(toBigInt(milli) * 1_000_000n, format);
}

/** upstream's NewQuantity */
export function quantityFromValue(value: number | bigint, format: QuantityFormat): Quantity {
  return new Quantity(toBigInt(value) * NANO, format);
}

/** Canonical string for a milli-value: `formatQuantity(250, 'DecimalSI')` → `250m`;
 *  `formatQuantity(1536 * 2**20 * 1000, 'BinarySI')` → `1536Mi`. Fractions round away from zero. */
export function formatQuantity(milli: number | bigint, format: QuantityFormat): string {
  return canonicalize(toBigInt(milli) * 1_000_000n, format);
}
