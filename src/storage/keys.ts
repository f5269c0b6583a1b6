// Key-range helpers shared by the drivers. A prefix P selects the keys in [P, end(P)), where end(P)
// is the least string greater than every string that starts with P. The order matters: the memory
// driver sorts by JavaScript's own comparison (UTF-16 code units), SQLite compares TEXT as UTF-8
// bytes, which is code point order. For keys without characters above U+D7FF the two agree.

/** end of the prefix range in UTF-16 code unit order; undefined when the range is unbounded */
export function prefixEndCodeUnit(prefix: string): string | undefined {
  let p = prefix;
  while (p.length > 0) {
    const last = p.charCodeAt(p.length - 1);
    if (last < 0xffff) return p.slice(0, -1) + String.fromCharCode(last + 1);
    p = p.slice(0, -1);
  }
  return undefined;
}

/** end of the prefix range in code point (UTF-8 byte) order; undefined when the range is unbounded */
export function prefixEndCodePoint(prefix: string): string | undefined {
  const cps = Array.from(prefix, (c) => c.codePointAt(0) as number);
  while (cps.length > 0) {
    const last = cps.pop() as number;
    if (last < 0x10ffff) {
      // skip the surrogate block: they are not characters and cannot be stored as text
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return String.fromCodePoint(...cps, next);
    }
  }
  return undefined;
}

/** compare two strings in code point order (the order of their UTF-8 bytes) */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // a surrogate (a character above U+FFFF) sorts after every BMP character in code point order
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}
