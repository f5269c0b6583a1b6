// The CRI container log format, as conmon (`-l k8s-file:PATH`) and containerd write it: one entry per
// line, `<timestamp> <stream> <tag> <content>\n`, e.g.
//   2026-11-22T07:37:20.270136357+00:00 stdout F started
//   2026-11-22T07:37:21.272523513+00:00 stdout P partial-no-newline
// The timestamp is RFC 3339 with nanoseconds (conmon writes the local offset, containerd `Z`); the tag is
// `F` for a full line (the container wrote a newline, which the entry omits) or `P` for a partial one
// (more of the same line follows in the next entry of that stream). This file parses entries and
// formats timestamps the way kubelet prints them for `kubectl logs --timestamps` (Go's RFC3339Nano in
// UTC: trailing zeros of the fraction dropped, `Z`).

export interface LogTime {
  /** whole seconds since the epoch (UTC) */
  sec: number;
  /** 0..999999999 */
  nanos: number;
}

export interface CriEntry {
  time: LogTime;
  stream: 'stdout' | 'stderr';
  /** false for a `P` entry: the line continues in the next entry */
  full: boolean;
  /** the content, without the newline */
  content: Buffer;
}

const TS_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** Parse an RFC 3339 timestamp with up to nanosecond precision; undefined if malformed. */
export function parseLogTime(s: string): LogTime | undefined {
  const m = TS_RE.exec(s);
  if (!m) return undefined;
  if (+m[2] < 1 || +m[2] > 12 || +m[3] < 1 || +m[3] > 31 || +m[4] > 23 || +m[5] > 59 || +m[6] > 60) return undefined;
  let ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  if (Number.isNaN(ms)) return undefined;
  if (m[8] !== 'Z') {
    const sign = m[8][0] === '-' ? -1 : 1;
    ms -= sign * (+m[8].slice(1, 3) * 60 + +m[8].slice(4, 6)) * 60_000;
  }
  const nanos = m[7] ? Number(m[7].padEnd(9, '0')) : 0;
  return { sec: Math.floor(ms / 1000), nanos };
}

/** Go's time.RFC3339Nano of the time in UTC, as kubelet prefixes lines with `--timestamps`. */
export function formatRfc3339Nano(t: LogTime): string {
  const base = new Date(t.sec * 1000).toISOString().slice(0, 19);
  if (t.nanos === 0) return `${base}Z`;
  return `${base}.${String(t.nanos).padStart(9, '0').replace(/0+$/, '')}Z`;
}

/** milliseconds since the epoch (fractional) for comparisons with `sinceTime` */
export function logTimeMs(t: LogTime): number {
  return t.sec * 1000 + t.nanos / 1e6;
}

const SPACE = 0x20;

/**
 * Parse one entry (a line without its trailing newline). Returns undefined for a malformed line,
 * which readers skip, as kubelet does.
 */
export function parseCriLine(line: Buffer): CriEntry | undefined {
  const a = line.indexOf(SPACE);
  if (a < 0) return undefined;
  const b = line.indexOf(SPACE, a + 1);
  if (b < 0) return undefined;
  const time = parseLogTime(line.toString('latin1', 0, a));
  if (!time) return undefined;
  const stream = line.toString('latin1', a + 1, b);
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  // the tag: `F`/`P`, possibly with more `:`-separated tags in future CRI versions; content may be empty
  let c = line.indexOf(SPACE, b + 1);
  if (c < 0) c = line.length;
  const tags = line.toString('latin1', b + 1, c).split(':');
  if (tags[0] !== 'F' && tags[0] !== 'P') return undefined;
  return { time, stream, full: tags[0] === 'F', content: line.subarray(Math.min(c + 1, line.length)) };
}

/** Format an entry (for tests and tools that write CRI logs). */
export function formatCriLine(time: Date | string, stream: 'stdout' | 'stderr', content: string, full = true): string {
  const ts = typeof time === 'string' ? time : time.toISOString().replace('Z', '000000+00:00');
  return `${ts} ${stream} ${full ? 'F' : 'P'} ${content}\n`;
}
