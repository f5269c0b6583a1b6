// The copy fallback for a container's root filesystem, where an overlayfs mount is not possible
// (a kernel without overlay, a data dir on a filesystem overlay cannot use as upper, a nested
// overlay): the image's unpacked layers are copied, lowest first, into one directory of the
// container's own.
//
// The layers are stored for overlayfs (unpack.ts): a deleted path is a 0/0 character device and a
// directory that hides the layers below it carries the xattr trusted.overlay.opaque=y. Copying
// applies them as overlayfs would: before a layer is copied, its opaque directories are emptied in
// the destination and the paths it deletes are removed; after `cp -a` (ownership, modes, times,
// xattrs such as file capabilities, hard links kept; reflinks where the filesystem has them) the
// whiteout devices it brought along are removed again.
//
// Node has no xattr API and Debian's `attr` tools may be absent, so opaque directories are found
// with the system tar: `tar --xattrs --no-recursion` over the layer's directories (headers only, no
// file data) and the SCHILY.xattr.trusted.overlay.opaque records of its PAX headers.
import { spawn } from 'node:child_process';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

interface LayerMarks { whiteouts: string[]; dirs: string[] }

/** Whiteout devices and directories of one layer, as paths relative to it. */
async function scan(root: string): Promise<LayerMarks> {
  const out: LayerMarks = { whiteouts: [], dirs: [] };
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) { out.dirs.push(p); await walk(p); } else if (e.isCharacterDevice()) {
        const st = await lstat(join(root, p));
        if (st.rdev === 0) out.whiteouts.push(p);
      }
    }
  };
  await walk('');
  return out;
}

function runCollect(cmd: string, args: string[], input: string): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr }));
    p.stdin.on('error', () => undefined);
    p.stdin.end(input);
  });
}

/** Directories of the layer (relative) whose trusted.overlay.opaque xattr is "y". */
async function opaqueDirs(root: string, dirs: string[]): Promise<string[]> {
  if (!dirs.length) return [];
  const r = await runCollect('tar', ['-C', root, '--xattrs', '--xattrs-include=trusted.overlay.opaque', '--no-recursion', '--null', '-T', '-', '-cf', '-'],
    dirs.map((d) => `./${d}\0`).join(''));
  if (r.code !== 0) throw new Error(`tar over the directories of ${root} failed: ${r.stderr.trim()}`);
  const tar = r.stdout;
  const found: string[] = [];
  let pax: Map<string, string> | undefined;
  for (let off = 0; off + 512 <= tar.length;) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const size = Number.parseInt(h.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
    const type = String.fromCharCode(h[156]!);
    const body = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      // records: "<len> <key>=<value>\n"
      pax = new Map();
      let i = 0;
      while (i < body.length) {
        const sp = body.indexOf(0x20, i);
        if (sp < 0) break;
        const len = Number(body.subarray(i, sp).toString('latin1'));
        if (!len) break;
        const rec = body.subarray(sp + 1, i + len - 1).toString('utf8');
        const eq = rec.indexOf('=');
        if (eq > 0) pax.set(rec.slice(0, eq), rec.slice(eq + 1));
        i += len;
      }
      continue;
    }
    const name = pax?.get('path') ?? (() => {
      const n = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
      const prefix = h.subarray(345, 500).toString('utf8').replace(/\0.*$/s, '');
      return prefix ? `${prefix}/${n}` : n;
    })();
    if (pax?.get('SCHILY.xattr.trusted.overlay.opaque') === 'y') found.push(name.replace(/^\.\//, '').replace(/\/$/, ''));
    pax = undefined;
  }
  return found;
}

/** A relative path inside dest, refusing anything that climbs out. */
function inside(dest: string, rel: string): string {
  if (rel.split('/').some((s) => s === '..')) throw new Error(`layer path ${JSON.stringify(rel)} leaves the root`);
  return join(dest, rel);
}

/**
 * Copies the unpacked layers (lowest first) into dest (created if needed), applying each layer's
 * whiteouts and opaque directories to what the layers below left there.
 */
export async function copyLayers(layerDirs: string[], dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  for (const [i, layer] of layerDirs.entries()) {
    const marks = await scan(layer);
    if (i > 0) {
      for (const d of await opaqueDirs(layer, marks.dirs)) {
        const target = inside(dest, d);
        let names: string[] = [];
        try { names = await readdir(target); } catch { /* not in the layers below */ }
        for (const n of names) await rm(join(target, n), { recursive: true, force: true });
      }
      for (const w of marks.whiteouts) await rm(inside(dest, w), { recursive: true, force: true });
    }
    const r = await runCollect('cp', ['-a', '--reflink=auto', `${layer}/.`, `${dest}/`], '');
    if (r.code !== 0) throw new Error(`copying layer ${layer} failed: ${r.stderr.trim()}`);
    for (const w of marks.whiteouts) await rm(inside(dest, w), { force: true });
  }
}
