// Test fixtures: small images made in memory (layers from tar entries, OCI or Docker media types,
// gzip/zstd/plain), written as OCI layouts (directory or tar) or hand-made `docker save` archives,
// and the pieces a test pushes to a registry. Used by the unit tests here and by test/e2e.
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { MediaType, nodeArch, sha256Digest } from '../manifest.js';
import { createTar, type TarEntry } from '../tar-writer.js';

export interface FixtureLayer { blob: Buffer; digest: string; diffId: string; mediaType: string; tar: Buffer }
export interface FixtureImage {
  config: Buffer;
  configDigest: string;
  layers: FixtureLayer[];
  manifest: Buffer;
  manifestDigest: string;
  manifestMediaType: string;
}

export interface MakeImageOptions {
  layers: TarEntry[][];
  compression?: 'gzip' | 'zstd' | 'none';
  /** Docker schema-2 media types instead of OCI */
  docker?: boolean;
  arch?: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  /** extra text in the config so otherwise equal images differ */
  label?: string;
}

export function makeImage(o: MakeImageOptions): FixtureImage {
  const compression = o.compression ?? 'gzip';
  const layers: FixtureLayer[] = o.layers.map((entries) => {
    const tar = createTar(entries);
    const blob = compression === 'gzip' ? gzipSync(tar) : compression === 'zstd' ? execFileSync('zstd', ['-q', '-c'], { input: tar }) : tar;
    const mediaType = o.docker
      ? (compression === 'gzip' ? MediaType.dockerLayerGzip : MediaType.dockerLayer)
      : compression === 'gzip' ? MediaType.ociLayerGzip : compression === 'zstd' ? MediaType.ociLayerZstd : MediaType.ociLayer;
    return { blob, digest: sha256Digest(blob), diffId: sha256Digest(tar), mediaType, tar };
  });
  const config = Buffer.from(JSON.stringify({
    created: '1970-01-01T00:00:00Z', architecture: o.arch ?? nodeArch(), os: 'linux',
    config: {
      Env: o.env ?? ['PATH=/bin'], Cmd: o.cmd ?? ['/bin/sh'], ...(o.entrypoint ? { Entrypoint: o.entrypoint } : {}),
      WorkingDir: o.workingDir ?? '/', ...(o.user ? { User: o.user } : {}),
      ...(o.label ? { Labels: { fixture: o.label } } : {}),
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  }));
  const manifestMediaType = o.docker ? MediaType.dockerManifest : MediaType.ociManifest;
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: manifestMediaType,
    config: { mediaType: o.docker ? MediaType.dockerConfig : MediaType.ociConfig, digest: sha256Digest(config), size: config.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.blob.length })),
  }));
  return { config, configDigest: sha256Digest(config), layers, manifest, manifestDigest: sha256Digest(manifest), manifestMediaType };
}

export interface FixtureIndex { body: Buffer; digest: string; mediaType: string }

export function makeIndex(entries: { image: FixtureImage; arch: string; variant?: string }[], docker = false): FixtureIndex {
  const mediaType = docker ? MediaType.dockerList : MediaType.ociIndex;
  const body = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType,
    manifests: entries.map((e) => ({
      mediaType: e.image.manifestMediaType, digest: e.image.manifestDigest, size: e.image.manifest.length,
      platform: { os: 'linux', architecture: e.arch, ...(e.variant ? { variant: e.variant } : {}) },
    })),
  }));
  return { body, digest: sha256Digest(body), mediaType };
}

/** All blobs of an image (config, layers, manifest) keyed by digest. */
export function imageBlobs(img: FixtureImage): Map<string, Buffer> {
  const m = new Map<string, Buffer>([[img.configDigest, img.config], [img.manifestDigest, img.manifest]]);
  for (const l of img.layers) m.set(l.digest, l.blob);
  return m;
}

export interface LayoutEntry {
  image: FixtureImage;
  /** an index to put in index.json instead of the image manifest (its images must be in `also`) */
  index?: FixtureIndex;
  also?: FixtureImage[];
  annotations?: Record<string, string>;
}

function layoutFiles(entries: LayoutEntry[]): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const blob = (d: string, b: Buffer) => files.set(`blobs/sha256/${d.slice(7)}`, b);
  const manifests = [];
  for (const e of entries) {
    for (const img of [e.image, ...(e.also ?? [])]) for (const [d, b] of imageBlobs(img)) blob(d, b);
    if (e.index) blob(e.index.digest, e.index.body);
    const top = e.index
      ? { mediaType: e.index.mediaType, digest: e.index.digest, size: e.index.body.length }
      : { mediaType: e.image.manifestMediaType, digest: e.image.manifestDigest, size: e.image.manifest.length };
    manifests.push({ ...top, ...(e.annotations ? { annotations: e.annotations } : {}) });
  }
  files.set('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  files.set('index.json', Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests })));
  return files;
}

export async function writeOciLayoutDir(dir: string, entries: LayoutEntry[]): Promise<void> {
  for (const [p, b] of layoutFiles(entries)) {
    await mkdir(join(dir, p, '..'), { recursive: true });
    await writeFile(join(dir, p), b);
  }
}

function tarOfFiles(files: Map<string, Buffer>): Buffer {
  const dirs = new Set<string>();
  for (const p of files.keys()) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return createTar([
    ...[...dirs].sort().map((d): TarEntry => ({ path: `${d}/`, type: 'dir' })),
    ...[...files.keys()].sort().map((p): TarEntry => ({ path: p, type: 'file', data: files.get(p)! })),
  ]);
}

export async function writeOciArchive(file: string, entries: LayoutEntry[]): Promise<void> {
  await writeFile(file, tarOfFiles(layoutFiles(entries)));
}

/** A `docker save` archive in the classic layout: <id>/layer.tar (uncompressed), <config>.json, manifest.json. */
export async function writeDockerSave(file: string, images: { image: FixtureImage; repoTags: string[] }[]): Promise<void> {
  const files = new Map<string, Buffer>();
  const manifest = [];
  for (const { image, repoTags } of images) {
    const cfgName = `${image.configDigest.slice(7)}.json`;
    files.set(cfgName, image.config);
    const layers = [];
    for (const l of image.layers) {
      const id = l.diffId.slice(7);
      files.set(`${id}/layer.tar`, l.tar);
      files.set(`${id}/VERSION`, Buffer.from('1.0'));
      layers.push(`${id}/layer.tar`);
    }
    manifest.push({ Config: cfgName, RepoTags: repoTags, Layers: layers });
  }
  files.set('manifest.json', Buffer.from(JSON.stringify(manifest)));
  await writeFile(file, tarOfFiles(files));
}

/** Shorthand for a file entry. */
export function file(path: string, data: string, mode = 0o644): TarEntry {
  return { path, type: 'file', data, mode };
}

export function dir(path: string, mode = 0o755): TarEntry {
  return { path, type: 'dir', mode };
}
