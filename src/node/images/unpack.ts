// Unpacks one image layer into a directory that overlayfs can stack as a lower layer.
//
// The layer blob (gzip, zstd or plain tar, told apart by magic bytes rather than trusting the media
// type) is decompressed in a stream that is hashed on the way to the system `tar -x` (numeric
// owners, permissions and file capabilities preserved), so the uncompressed digest is checked
// against the config's diff_id in the same single pass. Extraction goes to a fresh temporary
// directory next to the final one; only after tar succeeded and the digest matched are the
// whiteouts converted and the directory renamed into place, so a half-written or forged layer is
// never visible under layers/<diffid>.
//
// Whiteouts, as overlayfs expects them in a lower layer:
//   <dir>/.wh.<name>     -> <dir>/<name> as a 0/0 character device ("deleted in this layer")
//   <dir>/.wh..wh..opq   -> xattr trusted.overlay.opaque=y on <dir> ("hide lower contents")
// Both are applied by feeding the system tar a small generated archive (tar-writer.ts): it creates
// the character devices and sets the trusted.* xattr (GNU tar restores xattrs on existing
// directories), so neither `mknod` per file nor `setfattr` (Debian's attr package) is needed.
// Needs root (CAP_MKNOD, CAP_SYS_ADMIN for trusted.*), as the agent runs.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, open, readdir, rename, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { createTar, type TarEntry } from './tar-writer.js';

export class LayerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LayerError';
  }
}

export type Compression = 'gzip' | 'zstd' | 'none';

export async function detectCompression(file: string): Promise<Compression> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    if (bytesRead >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
    if (bytesRead >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
    return 'none';
  } finally {
    await fh.close();
  }
}

/** Runs a command, feeding `input` (a stream or a buffer), and returns its exit code and stderr. */
function runTar(args: string[], input: Readable | Buffer, onChunk?: (c: Buffer) => void): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('tar', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    let exited: { code: number } | undefined;
    let inputDone = false;
    let inputError: Error | undefined;
    const finish = () => {
      if (!exited || !inputDone) return;
      if (inputError) reject(inputError);
      else resolve({ code: exited.code, stderr });
    };
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (d: string) => { if (stderr.length < 8192) stderr += d; });
    p.on('error', (e) => reject(new LayerError(`cannot run tar: ${e.message}`)));
    p.on('close', (code, sig) => { exited = { code: code ?? (sig ? 128 : 1) }; finish(); });
    // tar may stop reading at the end-of-archive marker; the rest of the input must still be read
    // (and hashed), so a closed stdin is not an error here.
    let stdinOpen = true;
    p.stdin.on('error', () => { stdinOpen = false; });
    if (Buffer.isBuffer(input)) {
      p.stdin.end(input);
      inputDone = true;
      return;
    }
    p.stdin.on('drain', () => input.resume());
    p.stdin.on('close', () => { stdinOpen = false; input.resume(); });
    input.on('data', (chunk: Buffer) => {
      onChunk?.(chunk);
      if (stdinOpen && !p.stdin.destroyed && !p.stdin.write(chunk)) input.pause();
    });
    input.on('end', () => { inputDone = true; if (stdinOpen) p.stdin.end(); finish(); });
    input.on('error', (e) => { inputError = e; inputDone = true; p.stdin.destroy(); p.kill('SIGKILL'); finish(); });
  });
}

function decompressed(file: string, c: Compression): Readable {
  if (c === 'gzip') return createReadStream(file).pipe(createGunzip());
  if (c === 'zstd') {
    const p = spawn('zstd', ['-d', '-c', '-q', '--', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (d: string) => { err += d; });
    const out = p.stdout;
    p.on('error', (e) => out.destroy(new LayerError(`zstd layers need the zstd command (apt-get install zstd): ${e.message}`)));
    p.on('close', (code) => { if (code !== 0) out.destroy(new LayerError(`zstd -d failed (exit ${code}): ${err.trim()}`)); });
    return out;
  }
  return createReadStream(file);
}

export interface UnpackResult {
  /** bytes of the uncompressed tar stream */
  size: number;
  /** true when another unpack got there first and this one was thrown away */
  existed: boolean;
}

/**
 * Unpacks `blobFile` into `dest` (which must not exist yet), verifying the uncompressed stream
 * against `diffId`. `tmpParent` must be on the same filesystem as `dest`.
 */
export async function unpackLayer(blobFile: string, dest: string, diffId: string, tmpParent: string): Promise<UnpackResult> {
  const c = await detectCompression(blobFile);
  await mkdir(tmpParent, { recursive: true });
  const tmp = await mkdtemp(join(tmpParent, 'unpack-'));
  try {
    await chmod(tmp, 0o755);
    const hash = createHash('sha256');
    let size = 0;
    const r = await runTar(
      ['-x', '-p', '--numeric-owner', '--xattrs', '--xattrs-include=security.capability', '--xattrs-include=user.*', '-C', tmp, '-f', '-'],
      decompressed(blobFile, c),
      (chunk) => { hash.update(chunk); size += chunk.length; },
    );
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== diffId) throw new LayerError(`layer ${diffId}: uncompressed content has digest ${got} (diff_id mismatch)`);
    if (r.code !== 0) throw new LayerError(`tar -x failed for layer ${diffId} (exit ${r.code}): ${r.stderr.trim()}`);
    await applyWhiteouts(tmp);
    try {
      await rename(tmp, dest);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTEMPTY') {
        await rm(tmp, { recursive: true, force: true });
        return { size, existed: true };
      }
      throw e;
    }
    return { size, existed: false };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}

/**
 * Converts AUFS-style whiteout files under `root` into overlayfs whiteouts (see the file comment).
 * Returns how many whiteouts and opaque directories were applied.
 */
export async function applyWhiteouts(root: string): Promise<{ whiteouts: number; opaque: number }> {
  const devices: string[] = [];
  const opaqueDirs: string[] = [];
  const markers: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.name.startsWith('.wh.')) {
        markers.push(p);
        if (e.name === '.wh..wh..opq') opaqueDirs.push(dir);
        else if (!e.name.startsWith('.wh..wh.')) devices.push(join(dir, e.name.slice(4)));
        continue;
      }
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(root);
  if (!markers.length) return { whiteouts: 0, opaque: 0 };
  for (const m of markers) await rm(m, { recursive: true, force: true });
  const entries: TarEntry[] = [];
  for (const d of devices) {
    await rm(d, { recursive: true, force: true });
    entries.push({ path: `./${relative(root, d)}`, type: 'char', mode: 0, devmajor: 0, devminor: 0 });
  }
  for (const d of opaqueDirs) {
    const st = await lstat(d);
    const rel = relative(root, d);
    entries.push({
      path: rel ? `./${rel}/` : './', type: 'dir', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid,
      mtime: Math.floor(st.mtimeMs / 1000), xattrs: { 'trusted.overlay.opaque': 'y' },
    });
  }
  const r = await runTar(
    ['-x', '-p', '--numeric-owner', '--xattrs', '--xattrs-include=trusted.overlay.opaque', '-C', root, '-f', '-'],
    createTar(entries),
  );
  if (r.code !== 0 || /xattr|Cannot/i.test(r.stderr)) {
    throw new LayerError(`applying whiteouts failed (tar exit ${r.code}): ${r.stderr.trim() || 'unknown error'}`);
  }
  return { whiteouts: devices.length, opaque: opaqueDirs.length };
}
