// Writes a set of files into a volume directory so that a running container always sees either the
// whole old set or the whole new set, never a mix — the layout the kubelet uses for configMap,
// secret, downwardAPI and projected volumes, which applications (and tools that watch `..data`)
// rely on:
//
//   <dir>/..2025_01_02_03_04_05.Ab12Cd/   the files of one version (a "timestamped dir")
//   <dir>/..data -> ..2025_01_02_03_04_05.Ab12Cd
//   <dir>/<top-level name> -> ..data/<top-level name>      one symlink per user-visible entry
//
// An update writes a new timestamped dir, points a fresh `..data_tmp` symlink at it and renames that
// over `..data` (rename(2) is atomic), adds symlinks for new names, removes symlinks for names that
// went away, then deletes the old timestamped dir. When the payload equals what is on disk (content,
// mode, and group when one is asked for) nothing is touched.
import { promises as fs } from 'node:fs';
import { dirname, join, posix } from 'node:path';

export interface FileProjection {
  data: Buffer | string;
  /** permission bits, e.g. 0o644 */
  mode: number;
}

export const DATA_DIR_NAME = '..data';
const DATA_TMP_NAME = '..data_tmp';
const MAX_PATH_LENGTH = 4096;
const MAX_FILE_NAME_LENGTH = 255;

/** Checks a payload path as the kubelet's atomic writer does; returns it cleaned. */
export function validatePayloadPath(p: string): string {
  if (p.length === 0) throw new Error('invalid path: must not be empty');
  if (p.length > MAX_PATH_LENGTH) throw new Error(`invalid path: must be less than or equal to ${MAX_PATH_LENGTH} characters`);
  if (posix.isAbsolute(p)) throw new Error(`invalid path: must be relative path: ${p}`);
  const items = p.split('/');
  for (const item of items) {
    if (item === '..') throw new Error(`invalid path: must not contain '..': ${p}`);
    if (item.length > MAX_FILE_NAME_LENGTH) throw new Error(`invalid path: filenames must be less than or equal to ${MAX_FILE_NAME_LENGTH} characters`);
  }
  if (items[0]!.startsWith('..') && items[0]!.length > 2) throw new Error(`invalid path: must not start with '..': ${p}`);
  const clean = posix.normalize(p).replace(/\/+$/, '');
  if (clean === '.' || clean === '') throw new Error(`invalid path: ${p}`);
  return clean;
}

function tsPrefix(now: Date): string {
  const z = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `..${now.getUTCFullYear()}_${z(now.getUTCMonth() + 1)}_${z(now.getUTCDate())}_${z(now.getUTCHours())}_${z(now.getUTCMinutes())}_${z(now.getUTCSeconds())}.`;
}

async function readLinkOrUndefined(p: string): Promise<string | undefined> {
  try { return await fs.readlink(p); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
    throw e;
  }
}

interface OnDisk { data: Buffer; mode: number; gid: number }

async function walk(root: string, rel = '', out = new Map<string, OnDisk>()): Promise<Map<string, OnDisk>> {
  for (const ent of await fs.readdir(join(root, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${ent.name}` : ent.name;
    if (ent.isDirectory()) await walk(root, r, out);
    else {
      const p = join(root, r);
      const st = await fs.lstat(p);
      out.set(r, { data: await fs.readFile(p), mode: st.mode & 0o7777, gid: st.gid });
    }
  }
  return out;
}

function sameContent(payload: Map<string, FileProjection>, disk: Map<string, OnDisk>, gid: number | undefined): boolean {
  if (payload.size !== disk.size) return false;
  for (const [p, f] of payload) {
    const d = disk.get(p);
    if (!d || d.mode !== (f.mode & 0o7777)) return false;
    if (gid !== undefined && d.gid !== gid) return false;
    const want = typeof f.data === 'string' ? Buffer.from(f.data) : f.data;
    if (!want.equals(d.data)) return false;
  }
  return true;
}

function topLevel(paths: Iterable<string>): Set<string> {
  const s = new Set<string>();
  for (const p of paths) s.add(p.split('/')[0]!);
  return s;
}

export interface WriteOptions {
  /** chown every file and dir to this group (pod securityContext.fsGroup) */
  gid?: number;
  /** clock for the timestamped dir's name */
  now?: Date;
}

/**
 * Makes `targetDir` hold exactly `payload` (path relative to the volume → content and mode) the
 * atomic way. Creates targetDir when missing. Returns true when something changed.
 */
export async function writeAtomic(targetDir: string, payload: Map<string, FileProjection>, o: WriteOptions = {}): Promise<boolean> {
  const clean = new Map<string, FileProjection>();
  for (const [p, f] of payload) clean.set(validatePayloadPath(p), f);
  await fs.mkdir(targetDir, { recursive: true });

  const dataLink = join(targetDir, DATA_DIR_NAME);
  const oldTs = await readLinkOrUndefined(dataLink);
  let oldFiles = new Map<string, OnDisk>();
  if (oldTs) {
    try { oldFiles = await walk(join(targetDir, oldTs)); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (sameContent(clean, oldFiles, o.gid)) {
      // content is current; make sure every user-visible link is there (a crash may have cut a write short)
      await ensureLinks(targetDir, topLevel(clean.keys()));
      return false;
    }
  }

  // 1. the new version in its own dir
  const tsDir = await fs.mkdtemp(join(targetDir, tsPrefix(o.now ?? new Date())));
  const tsName = tsDir.slice(targetDir.length + 1).replace(/^\/+/, '');
  try {
    await fs.chmod(tsDir, 0o755);
    if (o.gid !== undefined) await chgrp(tsDir, o.gid);
    for (const [p, f] of [...clean].sort(([a], [b]) => a.localeCompare(b))) {
      const file = join(tsDir, p);
      const parent = dirname(file);
      if (parent !== tsDir) {
        await fs.mkdir(parent, { recursive: true, mode: 0o755 });
        if (o.gid !== undefined) {
          for (let d = parent; d !== tsDir && d.startsWith(tsDir); d = dirname(d)) await chgrp(d, o.gid);
        }
      }
      await fs.writeFile(file, f.data, { mode: f.mode & 0o7777 });
      await fs.chmod(file, f.mode & 0o7777); // writeFile's mode is filtered by the umask
      if (o.gid !== undefined) await chgrp(file, o.gid);
    }
  } catch (e) {
    await fs.rm(tsDir, { recursive: true, force: true });
    throw e;
  }

  // 2. swap ..data atomically
  const tmpLink = join(targetDir, DATA_TMP_NAME);
  await fs.rm(tmpLink, { force: true });
  await fs.symlink(tsName, tmpLink);
  await fs.rename(tmpLink, dataLink);

  // 3. user-visible links: add new names, drop names that went away
  const now = topLevel(clean.keys());
  await ensureLinks(targetDir, now);
  for (const name of topLevel(oldFiles.keys())) {
    if (now.has(name)) continue;
    const p = join(targetDir, name);
    const st = await fs.lstat(p).catch(() => undefined);
    if (st?.isSymbolicLink()) await fs.unlink(p);
  }

  // 4. old version(s) away: every other timestamped dir (including ones a crash left behind)
  for (const ent of await fs.readdir(targetDir, { withFileTypes: true })) {
    if (ent.isDirectory() && ent.name.startsWith('..') && ent.name !== tsName && /^\.\.\d{4}_/.test(ent.name)) {
      await fs.rm(join(targetDir, ent.name), { recursive: true, force: true });
    }
  }
  return true;
}

/** chown to a group, keeping the owner. */
export async function chgrp(p: string, gid: number): Promise<void> {
  const st = await fs.lstat(p);
  if (st.gid !== gid) await fs.chown(p, st.uid, gid);
}

async function ensureLinks(targetDir: string, names: Set<string>): Promise<void> {
  for (const name of names) {
    const p = join(targetDir, name);
    const want = `${DATA_DIR_NAME}/${name}`;
    const cur = await readLinkOrUndefined(p);
    if (cur === want) continue;
    await fs.rm(p, { force: true, recursive: true });
    await fs.symlink(want, p);
  }
}
