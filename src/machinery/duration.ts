// Go-style durations as Kubernetes components take them on their command lines ("15s", "5m0s",
// "1h30m", "500ms", "1.5s"), parsed to milliseconds.
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a Go duration string; throws an Error naming the bad value. "0" is allowed. */
export function parseGoDuration(s: string): number {
  const str = s.trim();
  if (str === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(str)) !== null) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    matched = re.lastIndex;
  }
  if (!str || matched !== str.length) throw new Error(`invalid duration ${JSON.stringify(s)} (use e.g. 15s, 5m0s, 500ms)`);
  return total;
}
