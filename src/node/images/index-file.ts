// The image index: one JSON file (<root>/index.json) saying which references name which image.
//
//   refs:   "docker.io/library/busybox:latest" -> { target, manifest, config }
//           "docker.io/library/busybox@sha256:<target>" -> the same (the repo digest)
//           target = what the name resolved to (an index or a manifest), manifest = the platform
//           manifest, config = the image ID.
//   images: "sha256:<config>" -> { manifest, layers [{digest, diffId, size, ...}], size, times }
//
// Writes are atomic (temporary file, flush, rename) and serialized twice: within the process by a
// promise queue, and across processes (the agent and a `kyb images import` next to it) by a lock
// file taken with O_EXCL; a lock left by a dead process is taken over. Every update re-reads the
// file under the lock, so two writers never lose each other's changes. Reads are cached until the
// file's mtime or size changes.
import { readFileSync, statSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface RefEntry { target: string; manifest: string; config: string }
export interface LayerRecord {
  /** digest of the blob as stored/pulled (compressed or not) */
  digest: string;
  /** digest of the uncompressed tar: the name of its directory under layers/ */
  diffId: string;
  size: number;
  mediaType: string;
  /** bytes of the uncompressed tar, once unpacked */
  unpackedSize?: number;
}
export interface ImageRecord {
  /** the platform manifest */
  manifest: string;
  mediaType: string;
  configSize: number;
  layers: LayerRecord[];
  /** config + compressed layers, as the kubelet reports image size */
  size: number;
  created?: string;
  added: string;
  lastUsed: string;
}
export interface IndexData {
  version: 1;
  refs: Record<string, RefEntry>;
  images: Record<string, ImageRecord>;
}

export function emptyIndex(): IndexData {
  return { version: 1, refs: {}, images: {} };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class IndexFile {
  private cache: { key: string; data: IndexData } | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly lockPath: string;

  constructor(readonly path: string, private readonly lockTimeoutMs = 30_000) {
    this.lockPath = `${path}.lock`;
  }

  private statKey(): string | undefined {
    try {
      const st = statSync(this.path, { bigint: true });
      return `${st.mtimeNs}:${st.size}:${st.ino}`;
    } catch {
      return undefined;
    }
  }

  /** The current index (a shared object: do not mutate; use update()). */
  read(): IndexData {
    const key = this.statKey();
    if (key === undefined) return (this.cache = { key: '', data: emptyIndex() }).data;
    if (this.cache?.key === key) return this.cache.data;
    let data: IndexData;
    try {
      const j = JSON.parse(readFileSync(this.path, 'utf8'));
      data = { version: 1, refs: j.refs ?? {}, images: j.images ?? {} };
    } catch (e) {
      throw new Error(`image index ${this.path} is unreadable: ${(e as Error).message}`);
    }
    this.cache = { key, data };
    return data;
  }

  private async lock(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const deadline = Date.now() + this.lockTimeoutMs;
    for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
      try {
        const fh = await open(this.lockPath, 'wx');
        await fh.writeFile(`${process.pid}\n`);
        await fh.close();
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let holder = NaN;
      try {
        holder = parseInt(await readFile(this.lockPath, 'utf8'), 10);
      } catch { /* gone meanwhile, or half written */ }
      if (Number.isInteger(holder) && holder !== process.pid && !alive(holder)) {
        await rm(this.lockPath, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`image index is locked by process ${holder} (${this.lockPath})`);
      await sleep(delay);
    }
  }

  /** Read-modify-write under both locks; `fn` mutates the fresh copy it is given. */
  update<T>(fn: (d: IndexData) => T | Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      await this.lock();
      try {
        this.cache = undefined;
        const data = structuredClone(this.read());
        const result = await fn(data);
        const tmp = `${this.path}.${randomBytes(6).toString('hex')}.tmp`;
        await writeFile(tmp, JSON.stringify(data, null, 1), { flush: true, mode: 0o600 });
        await rename(tmp, this.path);
        this.cache = undefined;
        return result;
      } finally {
        await rm(this.lockPath, { force: true });
      }
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }
}
