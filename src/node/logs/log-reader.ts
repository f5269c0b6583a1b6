// Reads a container's CRI-format log file (written by conmon) and writes what `kubectl logs` shows:
// the content of each line, joined across partial (`P`) entries, optionally prefixed with its
// timestamp, limited to the last N lines / lines since a time / a byte budget, and — with follow —
// everything appended later until the container exits and the file is drained.
//
// Rotation. conmon's `--log-size-max N` (checked on this machine, conmon 2.1.6): when the file would
// exceed N bytes, conmon writes a new file and renames it over the path (a new inode; the old content
// is discarded, no `.1` file is kept). A follower therefore watches the path, and when the path names
// another inode, drains the old file descriptor to its end and continues from the start of the new
// file. A file truncated in place (size below the read position) is read again from the start.
// Inode numbers are recycled quickly (two rotations can give back the same number), so a size
// below the read position on the same inode also counts as a new file.
//
// Waking up: fs.watch on the log's directory (rename-over changes the inode a file watch would follow)
// plus a polling fallback, for file systems and limits where inotify does not work.
import { open, stat, type FileHandle } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Writable } from 'node:stream';
import type { LogSource } from '../streaming/backend.js';
import { formatRfc3339Nano, logTimeMs, parseCriLine, type CriEntry } from './cri-log.js';

export interface LogOptions {
  /** keep reading what is appended until the container exits (`LogSource.exited`) */
  follow?: boolean;
  /** only the last N lines (a line is one logical line: partial entries are joined) */
  tailLines?: number;
  /** only lines whose (first entry's) timestamp is at or after this time */
  since?: Date;
  /** prefix each line with its RFC3339Nano timestamp and a space, as kubelet does */
  timestamps?: boolean;
  /** stop after writing this many bytes (timestamps included) */
  limitBytes?: number;
  /** how often a follower checks the file when no change notification came (default 250 ms) */
  pollIntervalMs?: number;
}

const CHUNK = 64 * 1024;
const NL = 0x0a;

/**
 * Write the log of `source` to `out` according to `opts`. Resolves when done (or when `signal` aborts,
 * or `out` closes); never ends `out` itself.
 */
export async function streamLog(source: LogSource, opts: LogOptions, out: Writable, signal?: AbortSignal): Promise<void> {
  const r = new LogReader(source, opts, out, signal);
  try {
    await r.run();
  } finally {
    await r.dispose();
  }
}

/** Offset where the last `n` logical lines of the file start (a trailing incomplete line counts as one). */
export async function tailStart(fh: FileHandle, size: number, n: number): Promise<number> {
  if (n <= 0) return size;
  let bufStart = size;
  let buf = Buffer.alloc(0);
  const readBefore = async (): Promise<boolean> => {
    if (bufStart === 0) return false;
    const from = Math.max(0, bufStart - CHUNK);
    const chunk = Buffer.allocUnsafe(bufStart - from);
    const { bytesRead } = await fh.read(chunk, 0, chunk.length, from);
    buf = Buffer.concat([chunk.subarray(0, bytesRead), buf]);
    bufStart = from;
    return true;
  };
  // the end of the last complete entry (bytes after the last newline are an unfinished write)
  let lineEnd = -1;
  while (lineEnd < 0) {
    const i = buf.lastIndexOf(NL);
    if (i >= 0) { lineEnd = bufStart + i + 1; break; }
    if (!(await readBefore())) return 0;
  }
  let count = 0;
  let first = true;
  for (;;) {
    // find the start of the entry that ends at lineEnd
    let prev = -1;
    for (;;) {
      const searchFrom = lineEnd - 2 - bufStart;
      prev = searchFrom >= 0 ? buf.lastIndexOf(NL, searchFrom) : -1;
      if (prev >= 0) { prev += bufStart; break; }
      if (!(await readBefore())) { prev = -1; break; }
    }
    const entryStart = prev + 1;
    const e = parseCriLine(buf.subarray(entryStart - bufStart, lineEnd - 1 - bufStart));
    if (e) {
      if (!e.full && first) count = 1; // the unfinished last line
      if (e.full) {
        if (count >= n) return lineEnd;
        count++;
      }
      first = false;
    }
    if (entryStart === 0) return 0;
    lineEnd = entryStart;
    buf = buf.subarray(0, lineEnd - bufStart); // drop what has been looked at
  }
}

class LogReader {
  private fh: FileHandle | undefined;
  /** identity of the open file: inode and birth time (inode numbers are recycled) */
  private ino = -1;
  private birth = 0;
  /** a change notification arrived while we were not sleeping */
  private dirty = false;
  private pos = 0;
  private rest: Buffer = Buffer.alloc(0);
  private atLineStart = true;
  private skipping = false;
  private written = 0;
  private done = false;
  private exited = false;
  private wake: (() => void) | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly sinceMs: number | undefined;
  private readonly onAbort = () => this.stop();
  private readonly onOutClose = () => this.stop();

  constructor(private readonly source: LogSource, private readonly opts: LogOptions, private readonly out: Writable, private readonly signal?: AbortSignal) {
    this.sinceMs = opts.since?.getTime();
    signal?.addEventListener('abort', this.onAbort);
    out.on('close', this.onOutClose);
    if (signal?.aborted) this.done = true;
  }

  private stop(): void {
    this.done = true;
    this.kick();
  }

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    if (w) w(); else this.dirty = true;
  }

  async run(): Promise<void> {
    if (this.opts.limitBytes !== undefined && this.opts.limitBytes <= 0) return;
    const follow = !!this.opts.follow;
    if (follow) {
      this.source.exited.then(() => { this.exited = true; this.kick(); }, () => { this.exited = true; this.kick(); });
      this.startWatching();
    }
    // open the file (a follower waits for it to appear)
    while (!this.done && !(await this.openCurrent())) {
      if (!follow || this.exited) return;
      await this.sleep();
    }
    if (this.done) return;
    if (this.opts.tailLines !== undefined) {
      const st = await this.fh!.stat();
      this.pos = await tailStart(this.fh!, st.size, this.opts.tailLines);
    }
    for (;;) {
      await this.drain();
      if (this.done || !follow) return;
      const changed = await this.checkRotation();
      if (changed) continue;
      if (this.exited) {
        // the container is gone: one last look, then stop once nothing more arrives
        await this.drain();
        if (!(await this.checkRotation())) return;
        continue;
      }
      await this.sleep();
    }
  }

  async dispose(): Promise<void> {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.out.off('close', this.onOutClose);
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
    await this.fh?.close().catch(() => {});
    this.fh = undefined;
  }

  /** open the path; false if it does not exist (yet) */
  private async openCurrent(): Promise<boolean> {
    try {
      const fh = await open(this.source.path, 'r');
      const st = await fh.stat();
      await this.fh?.close().catch(() => {});
      this.fh = fh;
      this.ino = st.ino;
      this.birth = st.birthtimeMs;
      this.pos = 0;
      this.rest = Buffer.alloc(0);
      // a new file (after rotation) continues the same logical stream: atLineStart/skipping carry over
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  /** true when the reader moved to a new file (rotation or truncation) */
  private async checkRotation(): Promise<boolean> {
    let st;
    try {
      st = await stat(this.source.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false; // removed: nothing more to read
      throw e;
    }
    const sameFile = st.ino === this.ino && st.birthtimeMs === this.birth;
    if (!sameFile || st.size < this.pos) {
      await this.drain(); // whatever the old file still holds comes first
      if (this.done) return false;
      if (sameFile) { this.pos = 0; this.rest = Buffer.alloc(0); return true; } // truncated in place
      return this.openCurrent();
    }
    return false;
  }

  /** read from pos to the end of the open file, writing what it holds */
  private async drain(): Promise<void> {
    const fh = this.fh;
    if (!fh) return;
    const buf = Buffer.allocUnsafe(CHUNK);
    while (!this.done) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, this.pos);
      if (bytesRead === 0) return;
      this.pos += bytesRead;
      let data = this.rest.length ? Buffer.concat([this.rest, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
      const parts: Buffer[] = [];
      let start = 0;
      for (;;) {
        const nl = data.indexOf(NL, start);
        if (nl < 0) break;
        const e = parseCriLine(data.subarray(start, nl));
        if (e) this.render(e, parts);
        start = nl + 1;
        if (this.done) break;
      }
      this.rest = Buffer.from(data.subarray(start)); // copy: `buf` is reused
      data = Buffer.alloc(0);
      if (parts.length) await this.write(Buffer.concat(parts));
    }
  }

  private render(e: CriEntry, parts: Buffer[]): void {
    if (this.atLineStart) {
      this.skipping = this.sinceMs !== undefined && logTimeMs(e.time) < this.sinceMs;
      if (!this.skipping && this.opts.timestamps) this.emit(Buffer.from(`${formatRfc3339Nano(e.time)} `), parts);
    }
    if (!this.skipping) {
      this.emit(e.content, parts);
      if (e.full) this.emit(Buffer.from('\n'), parts);
    }
    this.atLineStart = e.full;
  }

  private emit(b: Buffer, parts: Buffer[]): void {
    if (this.done) return;
    const limit = this.opts.limitBytes;
    if (limit !== undefined && this.written + b.length >= limit) {
      parts.push(b.subarray(0, limit - this.written));
      this.written = limit;
      this.done = true;
      return;
    }
    this.written += b.length;
    parts.push(b);
  }

  private async write(b: Buffer): Promise<void> {
    if (this.out.destroyed) { this.done = true; return; }
    if (this.out.write(b)) return;
    await new Promise<void>((resolve) => {
      const fin = () => { this.out.off('drain', fin); this.out.off('close', fin); resolve(); };
      this.out.on('drain', fin);
      this.out.on('close', fin);
    });
  }

  private startWatching(): void {
    try {
      const name = basename(this.source.path);
      this.watcher = watch(dirname(this.source.path), { persistent: false }, (_ev, f) => {
        if (!f || f === name || f.startsWith(`${name}.`)) this.kick();
      });
      this.watcher.on('error', () => { this.watcher?.close(); this.watcher = undefined; });
    } catch {
      this.watcher = undefined; // no inotify here: polling alone
    }
  }

  private sleep(): Promise<void> {
    if (this.done) return Promise.resolve();
    if (this.dirty) { this.dirty = false; return Promise.resolve(); }
    const ms = this.opts.pollIntervalMs ?? (this.watcher ? 250 : 100);
    return new Promise<void>((resolve) => {
      this.wake = () => { if (this.timer) clearTimeout(this.timer); this.timer = undefined; resolve(); };
      this.timer = setTimeout(() => this.kick(), ms);
    });
  }
}
