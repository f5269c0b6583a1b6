// Content-addressed blob storage: <root>/blobs/sha256/<hex>.
//
// Every write is verified: content is streamed through sha256 (and a byte count) into a temporary
// file in <root>/tmp, flushed, and renamed into place only when digest and size match what the
// descriptor promised, so blobs/ never holds a partial or forged blob. A stream longer than its
// descriptor is cut off as soon as it overflows.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';

export class DigestMismatchError extends Error {
  constructor(readonly expected: string, readonly actual: string, what = 'blob') {
    super(`${what} ${expected}: digest mismatch: content has digest ${actual}`);
    this.name = 'DigestMismatchError';
  }
}

const DIGEST_RE = /^sha256:([a-f0-9]{64})$/;

export function digestHex(digest: string): string {
  const m = DIGEST_RE.exec(digest);
  if (!m) throw new Error(`unsupported or malformed digest ${JSON.stringify(digest)}`);
  return m[1];
}

export class BlobStore {
  readonly dir: string;
  constructor(root: string, readonly tmpDir: string) {
    this.dir = join(root, 'blobs', 'sha256');
  }

  path(digest: string): string {
    return join(this.dir, digestHex(digest));
  }

  async has(digest: string): Promise<boolean> {
    return (await this.size(digest)) !== undefined;
  }

  async size(digest: string): Promise<number | undefined> {
    try {
      return (await stat(this.path(digest))).size;
    } catch {
      return undefined;
    }
  }

  /** Reads a (small) blob whole and checks its digest. */
  async read(digest: string): Promise<Buffer> {
    const b = await readFile(this.path(digest));
    const got = `sha256:${createHash('sha256').update(b).digest('hex')}`;
    if (got !== digest) throw new DigestMismatchError(digest, got, 'stored blob');
    return b;
  }

  private async tmpFile(): Promise<string> {
    await mkdir(this.tmpDir, { recursive: true });
    await mkdir(this.dir, { recursive: true });
    return join(this.tmpDir, `blob-${randomBytes(8).toString('hex')}`);
  }

  private async commit(tmp: string, digest: string): Promise<void> {
    await rename(tmp, this.path(digest));
  }

  /** Stores a buffer whose digest must be `digest` (when given); returns the digest. */
  async writeBuffer(b: Buffer, digest?: string): Promise<string> {
    const got = `sha256:${createHash('sha256').update(b).digest('hex')}`;
    if (digest && got !== digest) throw new DigestMismatchError(digest, got);
    if (await this.has(got)) return got;
    const tmp = await this.tmpFile();
    try {
      await writeFile(tmp, b, { flush: true });
      await this.commit(tmp, got);
    } finally {
      await rm(tmp, { force: true });
    }
    return got;
  }

  /**
   * Streams `src` into the store. With `expected`, the content must have that digest (and size, when
   * known, i.e. >= 0); without, the digest is computed. Returns digest and size.
   */
  async ingest(src: Readable, expected?: { digest: string; size: number }): Promise<{ digest: string; size: number }> {
    if (expected) digestHex(expected.digest);
    const tmp = await this.tmpFile();
    const hash = createHash('sha256');
    let n = 0;
    const limit = expected && expected.size >= 0 ? expected.size : Infinity;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        n += chunk.length;
        if (n > limit) return cb(new DigestMismatchError(expected!.digest, `(more than the ${limit} bytes its descriptor says)`));
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(src, counter, createWriteStream(tmp, { flush: true }));
      const got = `sha256:${hash.digest('hex')}`;
      if (expected && got !== expected.digest) throw new DigestMismatchError(expected.digest, got);
      if (n < limit && limit !== Infinity) throw new DigestMismatchError(expected!.digest, `${got} (only ${n} of ${limit} bytes)`);
      await this.commit(tmp, got);
      return { digest: got, size: n };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  async delete(digest: string): Promise<number> {
    const s = await this.size(digest);
    await rm(this.path(digest), { force: true });
    return s ?? 0;
  }

  async list(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
    } catch {
      return [];
    }
  }
}
