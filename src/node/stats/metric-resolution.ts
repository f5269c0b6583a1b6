// The `--metric-resolution` flag of `kyb agent` and `kyb server` (metrics-server's name): a Go duration
// such as `15s`, `1m30s` or `500ms`, turned into milliseconds. Kept in its own tiny module so that the
// CLI can parse flags without loading the agent.
import { parseGoDuration } from '../../machinery/duration.js';

/** A `--metric-resolution` value in ms; at least 1 s (cgroup counters make shorter windows noisy). */
export function parseMetricResolution(s: string): number {
  let ms: number;
  try { ms = Math.round(parseGoDuration(s)); } catch { throw new Error(`invalid --metric-resolution ${JSON.stringify(s)}: use a duration such as 15s or 1m`); }
  if (ms < 1000) throw new Error(`--metric-resolution must be at least 1s, got ${s}`);
  return ms;
}
