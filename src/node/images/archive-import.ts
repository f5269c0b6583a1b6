// Importing images from files, for hosts without registry access (`kyb images import`, and the
// agent's directory of archives imported at start):
//   - OCI image layouts, as a directory or a tar (optionally gzip/zstd-compressed): oci-layout,
//     index.json, blobs/<alg>/<hex>. Names come from the `io.containerd.image.name` annotation, else
//     `org.opencontainers.image.ref.name` when it is a full reference; a bare tag there ("latest")
//     needs a repository name from the caller (ImportOptions.name). Indexes resolve to the node's
//     platform. The image keeps its manifest digest, so it also gets a repo digest (name@digest).
//   - `docker save` archives: manifest.json = [{Config, RepoTags, Layers}]. Layers may be plain or
//     compressed tars; a Docker schema-2 manifest is synthesized so the image is stored like a pulled
//     one. There is no registry digest, so no repo digest (as with `docker load`).
// Archives written by Docker 25+ are both; the OCI side is used and manifest.json lends RepoTags to
// entries without a name annotation.
//
// Every blob copied in is verified against its descriptor (OCI) and every layer against the
// config's diff_ids (both), exactly as for a pull.
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { BlobStore } from './blob-store.js';
import { ImportError } from './errors.js';
import type { LayerRecord } from './index-file.js';
import { MediaType, parseImageConfig, parseManifest, selectPlatform, sha256Digest, type Descriptor } from './manifest.js';
import { parseImageRef } from './reference.js';
import { detectCompression } from './unpack.js';

export interface ImportOptions {
  /** repository for entries that carry only a tag (or no name): e.g. 'kyb.local/app' */
  name?: string;
}

export interface CommitParams {
  tagRefs: string[];
  digestRefs: string[];
  target: string;
  manifest: string;
  manifestMediaType: string;
  config: string;
  configSize: number;
  layers: LayerRecord[];
  created?: string;
}

/** What the importer needs from the store. */
export interface ImportTarget {
  readonly blobs: BlobStore;
  readonly arch: string;
  readonly tmpDir: string;
  /** unpacks (once) the layer whose blob is already in the store; returns its record */
  layerFromBlob(desc: Descriptor, diffId: string): Promise<LayerRecord>;
  commitImage(p: CommitParams): Promise<void>;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (d: string) => { err += d; });
    p.on('error', (e) => rej(new ImportError(`cannot run ${cmd}: ${e.message}`)));
    p.on('close', (code) => (code === 0 ? res() : rej(new ImportError(`${cmd} ${args.join(' ')} failed (exit ${code}): ${err.trim()}`))));
  });
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function readJson(p: string, what: string): Promise<any> {
  let text: string;
  try {
    text = await readFile(p, 'utf8');
  } catch (e) {
    throw new ImportError(`${what}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ImportError(`${what} is not valid JSON`);
  }
}

/** A path inside `dir`, refusing to leave it. */
function inside(dir: string, rel: string, what: string): string {
  const p = resolve(dir, rel);
  if (p !== dir && !p.startsWith(dir + sep)) throw new ImportError(`${what}: path ${JSON.stringify(rel)} leaves the archive`);
  return p;
}

/** Imports a file or directory; returns the names given to the images (or their IDs when nameless). */
export async function importArchive(target: ImportTarget, path: string, opts: ImportOptions = {}): Promise<string[]> {
  const st = await stat(path).catch((e) => { throw new ImportError(`${path}: ${(e as Error).message}`); });
  if (st.isDirectory()) return importDir(target, resolve(path), opts, path);
  await mkdir(target.tmpDir, { recursive: true });
  const tmp = await mkdtemp(join(target.tmpDir, 'import-'));
  try {
    await run('tar', ['-x', '--no-same-owner', '--no-same-permissions', '-f', resolve(path), '-C', tmp]);
    return await importDir(target, tmp, opts, path);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function importDir(t: ImportTarget, dir: string, opts: ImportOptions, label: string): Promise<string[]> {
  const hasLayout = await exists(join(dir, 'index.json'));
  const hasDockerManifest = await exists(join(dir, 'manifest.json'));
  if (hasLayout) return importOciLayout(t, dir, opts, label, hasDockerManifest ? await dockerTagsByConfig(dir, label) : new Map());
  if (hasDockerManifest) return importDockerSave(t, dir, label);
  throw new ImportError(`${label}: neither an OCI image layout (index.json) nor a docker save archive (manifest.json)`);
}

function normalizeName(s: string, what: string): string {
  try {
    return parseImageRef(s).ref;
  } catch (e) {
    throw new ImportError(`${what}: invalid image name ${JSON.stringify(s)}: ${(e as Error).message}`);
  }
}

async function dockerTagsByConfig(dir: string, label: string): Promise<Map<string, string[]>> {
  const m = new Map<string, string[]>();
  const j = await readJson(join(dir, 'manifest.json'), `${label}: manifest.json`);
  if (!Array.isArray(j)) return m;
  for (const e of j) {
    const c = typeof e?.Config === 'string' ? /([a-f0-9]{64})(?:\.json)?$/.exec(e.Config) : null;
    if (c && Array.isArray(e.RepoTags)) m.set(`sha256:${c[1]}`, e.RepoTags.filter((x: unknown) => typeof x === 'string'));
  }
  return m;
}

function layoutBlobPath(dir: string, d: Descriptor): string {
  const [alg, hex] = d.digest.split(':');
  return inside(dir, join('blobs', alg, hex), 'blob');
}

async function copyBlob(t: ImportTarget, dir: string, d: Descriptor, label: string): Promise<void> {
  if (await t.blobs.has(d.digest)) return;
  const p = layoutBlobPath(dir, d);
  if (!(await exists(p))) throw new ImportError(`${label}: blob ${d.digest} is missing from the archive`);
  try {
    await t.blobs.ingest(createReadStream(p), { digest: d.digest, size: d.size });
  } catch (e) {
    throw new ImportError(`${label}: ${(e as Error).message}`);
  }
}

async function importOciLayout(t: ImportTarget, dir: string, opts: ImportOptions, label: string, dockerTags: Map<string, string[]>): Promise<string[]> {
  const layoutFile = join(dir, 'oci-layout');
  if (await exists(layoutFile)) {
    const l = await readJson(layoutFile, `${label}: oci-layout`);
    if (l?.imageLayoutVersion && !String(l.imageLayoutVersion).startsWith('1.')) {
      throw new ImportError(`${label}: unsupported imageLayoutVersion ${JSON.stringify(l.imageLayoutVersion)}`);
    }
  }
  const indexBody = await readFile(join(dir, 'index.json'));
  let index;
  try {
    index = parseManifest(indexBody, MediaType.ociIndex);
  } catch (e) {
    throw new ImportError(`${label}: index.json: ${(e as Error).message}`);
  }
  if (index.kind !== 'index') throw new ImportError(`${label}: index.json is not an image index`);
  const out: string[] = [];
  for (const top of index.manifests) {
    await copyBlob(t, dir, top, label);
    const topBody = await t.blobs.read(top.digest);
    let parsed = parseManifest(topBody, top.mediaType);
    let manifestDigest = top.digest;
    for (let depth = 0; parsed.kind === 'index'; depth++) {
      if (depth > 2) throw new ImportError(`${label}: ${top.digest}: indexes nested too deep`);
      const d = selectPlatform(parsed, t.arch);
      if (!d) throw new ImportError(`${label}: ${top.digest}: no manifest for linux/${t.arch} in the index`);
      await copyBlob(t, dir, d, label);
      parsed = parseManifest(await t.blobs.read(d.digest), d.mediaType);
      manifestDigest = d.digest;
    }
    const m = parsed;
    await copyBlob(t, dir, m.config, label);
    const cfgBody = await t.blobs.read(m.config.digest);
    const cfg = parseImageConfig(cfgBody);
    if (cfg.diffIds.length !== m.layers.length) {
      throw new ImportError(`${label}: ${manifestDigest}: ${m.layers.length} layers but ${cfg.diffIds.length} diff_ids in the config`);
    }
    const layers: LayerRecord[] = [];
    for (let i = 0; i < m.layers.length; i++) {
      await copyBlob(t, dir, m.layers[i], label);
      layers.push(await t.layerFromBlob(m.layers[i], cfg.diffIds[i]));
    }
    const names: string[] = [];
    const a = top.annotations ?? {};
    const containerdName = a['io.containerd.image.name'];
    const refName = a['org.opencontainers.image.ref.name'];
    if (containerdName) names.push(normalizeName(containerdName, label));
    else if (refName && /[/:@]/.test(refName)) names.push(normalizeName(refName, label));
    else if (refName && opts.name) names.push(normalizeName(`${opts.name}:${refName}`, label));
    else if (dockerTags.has(m.config.digest)) for (const n of dockerTags.get(m.config.digest)!) names.push(normalizeName(n, label));
    else if (opts.name) names.push(normalizeName(opts.name, label));
    const digestRefs = [...new Set(names.map((n) => `${parseImageRef(n).name}@${top.digest}`))];
    await t.commitImage({
      tagRefs: names.filter((n) => !n.includes('@')), digestRefs, target: top.digest, manifest: manifestDigest,
      manifestMediaType: m.mediaType, config: m.config.digest, configSize: cfgBody.length, layers, created: cfg.created,
    });
    out.push(...(names.length ? names : [m.config.digest]));
  }
  return out;
}

async function importDockerSave(t: ImportTarget, dir: string, label: string): Promise<string[]> {
  const j = await readJson(join(dir, 'manifest.json'), `${label}: manifest.json`);
  if (!Array.isArray(j)) throw new ImportError(`${label}: manifest.json is not a list`);
  const out: string[] = [];
  for (const [i, e] of j.entries()) {
    if (typeof e?.Config !== 'string' || !Array.isArray(e?.Layers)) throw new ImportError(`${label}: manifest.json[${i}] needs Config and Layers`);
    const cfgBody = await readFile(inside(dir, e.Config, `${label}: manifest.json[${i}].Config`));
    const configDigest = await t.blobs.writeBuffer(cfgBody);
    let cfg;
    try {
      cfg = parseImageConfig(cfgBody);
    } catch (err) {
      throw new ImportError(`${label}: ${e.Config}: ${(err as Error).message}`);
    }
    if (cfg.diffIds.length !== e.Layers.length) {
      throw new ImportError(`${label}: manifest.json[${i}]: ${e.Layers.length} layers but ${cfg.diffIds.length} diff_ids in ${e.Config}`);
    }
    const layers: LayerRecord[] = [];
    const descs: Descriptor[] = [];
    for (const [li, lp] of (e.Layers as unknown[]).entries()) {
      if (typeof lp !== 'string') throw new ImportError(`${label}: manifest.json[${i}].Layers[${li}] is not a path`);
      const file = inside(dir, lp, `${label}: manifest.json[${i}].Layers[${li}]`);
      const { digest, size } = await t.blobs.ingest(createReadStream(file));
      const c = await detectCompression(t.blobs.path(digest));
      const mediaType = c === 'gzip' ? MediaType.dockerLayerGzip : c === 'zstd' ? MediaType.ociLayerZstd : MediaType.dockerLayer;
      const d: Descriptor = { mediaType, digest, size };
      descs.push(d);
      layers.push(await t.layerFromBlob(d, cfg.diffIds[li]));
    }
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MediaType.dockerManifest,
      config: { mediaType: MediaType.dockerConfig, size: cfgBody.length, digest: configDigest },
      layers: descs.map((d) => ({ mediaType: d.mediaType, size: d.size, digest: d.digest })),
    }));
    const manifestDigest = await t.blobs.writeBuffer(manifest);
    if (manifestDigest !== sha256Digest(manifest)) throw new ImportError('internal error: manifest digest');
    const names = Array.isArray(e.RepoTags) ? (e.RepoTags as unknown[]).filter((x): x is string => typeof x === 'string').map((n) => normalizeName(n, label)) : [];
    await t.commitImage({
      tagRefs: names, digestRefs: [], target: manifestDigest, manifest: manifestDigest, manifestMediaType: MediaType.dockerManifest,
      config: configDigest, configSize: cfgBody.length, layers, created: cfg.created,
    });
    out.push(...(names.length ? names : [configDigest]));
  }
  return out;
}
