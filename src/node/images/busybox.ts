// A small image made without any registry, for quick starts, tests and air-gapped hosts:
// Debian's busybox-static (/bin/busybox, statically linked) plus its applet symlinks in /bin,
// /etc/passwd and /etc/group (root, nobody 65534), /tmp (1777), /root, and /www/index.html for
// `httpd -f -p 80 -h /www`. Written as an OCI image layout in a tar (`kyb images import` and
// `skopeo` read it), annotated with the image name the way containerd exports images.
//
// Reproducible: entries sorted by path, owner 0:0, mtime 0, fixed modes, gzip without name or
// time (what `gzip -n` does); two builds from the same busybox binary and options are identical
// byte for byte, so the image ID is stable. Equivalent shell (runtime-notes §1.1):
//   tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf layer.tar . && gzip -n layer.tar
//
// Usage: `kyb images build-busybox -o busybox.tar --import` or buildBusyboxImage({ out }).
import { execFile } from 'node:child_process';
import { readFile, rename, writeFile, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { MediaType, nodeArch, sha256Digest } from './manifest.js';
import { parseImageRef } from './reference.js';
import { createTar, type TarEntry } from './tar-writer.js';

export interface BusyboxImageOptions {
  /** path of the OCI archive (.tar) to write */
  out: string;
  /** image name (default 'kyb.local/busybox:1.35') */
  ref?: string;
  /** extra files: absolute path in the image → content (e.g. {'/www/index.html': 'hi'}) */
  files?: Record<string, string>;
  /** the image's Cmd (default ['/bin/sh']) */
  cmd?: string[];
  /** path of a static busybox (default /bin/busybox) */
  busybox?: string;
}

export const DEFAULT_BUSYBOX_REF = 'kyb.local/busybox:1.35';
const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

async function applets(busybox: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)(busybox, ['--list'], { maxBuffer: 1 << 20 });
  return stdout.split('\n').map((s) => s.trim()).filter((s) => s && s !== 'busybox' && !s.includes('/'));
}

/** The root filesystem as tar entries (sorted, so the layer is reproducible). */
export async function busyboxRootfs(opts: { busybox?: string; files?: Record<string, string> } = {}): Promise<TarEntry[]> {
  const bin = opts.busybox ?? '/bin/busybox';
  let data: Buffer;
  try {
    data = await readFile(bin);
  } catch (e) {
    throw new Error(`cannot read ${bin} (apt-get install busybox-static): ${(e as Error).message}`);
  }
  const files = new Map<string, string | Buffer>([
    ['etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n'],
    ['etc/group', 'root:x:0:\nnobody:x:65534:\n'],
    ['www/index.html', 'hello from kybernetes busybox\n'],
  ]);
  for (const [p, content] of Object.entries(opts.files ?? {})) {
    const rel = p.replace(/^\/+/, '');
    if (!rel || rel.split('/').some((c) => c === '..' || c === '.' || c === '')) throw new Error(`bad file path ${JSON.stringify(p)}`);
    files.set(rel, content);
  }
  const entries = new Map<string, TarEntry>();
  const dir = (p: string, mode = 0o755) => { if (!entries.has(p)) entries.set(p, { path: `${p}/`, type: 'dir', mode }); };
  for (const d of ['bin', 'dev', 'etc', 'proc', 'sys', 'www', 'usr', 'usr/bin', 'usr/sbin', 'sbin', 'var']) dir(d);
  dir('tmp', 0o1777);
  dir('root', 0o700);
  entries.set('bin/busybox', { path: 'bin/busybox', type: 'file', mode: 0o755, data });
  for (const a of await applets(bin)) {
    if (!entries.has(`bin/${a}`)) entries.set(`bin/${a}`, { path: `bin/${a}`, type: 'symlink', linkname: 'busybox' });
  }
  for (const [rel, content] of files) {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) dir(parts.slice(0, i).join('/'));
    entries.set(rel, { path: rel, type: 'file', mode: 0o644, data: typeof content === 'string' ? Buffer.from(content) : content });
  }
  return [...entries.keys()].sort().map((k) => entries.get(k)!);
}

/** Builds the image and writes it as an OCI archive at `out` (atomically). */
export async function buildBusyboxImage(opts: BusyboxImageOptions): Promise<{ ref: string; path: string; id: string; manifestDigest: string }> {
  const ref = parseImageRef(opts.ref ?? DEFAULT_BUSYBOX_REF);
  if (ref.digest) throw new Error('the image name of a build cannot have a digest');
  const layerTar = createTar(await busyboxRootfs({ busybox: opts.busybox, files: opts.files }));
  const diffId = sha256Digest(layerTar);
  const layer = gzipSync(layerTar, { level: 9 });
  const layerDigest = sha256Digest(layer);
  const config = Buffer.from(JSON.stringify({
    created: '1970-01-01T00:00:00Z', architecture: nodeArch(), os: 'linux',
    config: { Env: [PATH_ENV], Cmd: opts.cmd ?? ['/bin/sh'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created: '1970-01-01T00:00:00Z', created_by: 'kyb images build-busybox' }],
  }));
  const configDigest = sha256Digest(config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: configDigest, size: config.length },
    layers: [{ mediaType: MediaType.ociLayerGzip, digest: layerDigest, size: layer.length }],
  }));
  const manifestDigest = sha256Digest(manifest);
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MediaType.ociIndex,
    manifests: [{
      mediaType: MediaType.ociManifest, digest: manifestDigest, size: manifest.length,
      annotations: { 'io.containerd.image.name': ref.ref, 'org.opencontainers.image.ref.name': ref.tag },
    }],
  }));
  const blob = (digest: string, data: Buffer): TarEntry => ({ path: `blobs/sha256/${digest.slice(7)}`, type: 'file', data });
  const archive = createTar([
    { path: 'blobs/', type: 'dir' },
    { path: 'blobs/sha256/', type: 'dir' },
    ...[blob(configDigest, config), blob(layerDigest, layer), blob(manifestDigest, manifest)].sort((a, b) => (a.path < b.path ? -1 : 1)),
    { path: 'index.json', type: 'file', data: index },
    { path: 'oci-layout', type: 'file', data: '{"imageLayoutVersion":"1.0.0"}' },
  ]);
  const out = resolve(opts.out);
  await mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  await writeFile(tmp, archive);
  await rename(tmp, out);
  return { ref: ref.ref, path: out, id: configDigest, manifestDigest };
}
