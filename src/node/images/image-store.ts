// The node agent's image service: pulls, imports, lists, removes and garbage-collects images, and
// hands the pod workers what they need to run a container from one (`ResolvedImage`: the image
// config and the unpacked layer directories to stack with overlayfs, lowest first).
//
// On disk, under the root given to the constructor (the agent uses <data-dir>/agent/images):
//   blobs/sha256/<hex>      manifests, configs and layer blobs, content-addressed (blob-store.ts)
//   layers/<diffid-hex>/    each layer unpacked once, whiteouts converted for overlayfs (unpack.ts)
//   index.json              refs -> {target, manifest, config}; images by config digest (index-file.ts)
//   leases/<pid>.<n>        "content created since <mtime> is being written by a live process":
//                           garbage collection never deletes such content (another process, e.g.
//                           `kyb images import`, may be about to reference it)
//   tmp/                    partial downloads and extractions (renamed into place when verified)
//
// ensure() implements the kubelet's imagePullPolicy: Always pulls every time (a HEAD of the tag is
// enough when the image has not changed), IfNotPresent pulls only when no local image has the name,
// Never never pulls. Concurrent ensure() calls for the same reference (and credentials) share one
// pull; concurrent pulls of images sharing layers unpack each layer once.
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { importArchive as importArchiveFiles, type CommitParams, type ImportOptions, type ImportTarget } from './archive-import.js';
import { BlobStore, DigestMismatchError, digestHex } from './blob-store.js';
import { matchCredentials } from './credentials.js';
import { ImageNotFoundError, ImagePullError } from './errors.js';
import { IndexFile, type IndexData, type LayerRecord, type RefEntry } from './index-file.js';
import {
  nodeArch, parseImageConfig, selectPlatform, type Descriptor, type ImageConfig, type ImageManifest, type ParsedConfig,
} from './manifest.js';
import { parseImageRef, type ImageRef } from './reference.js';
import { endpointsFor, RegistriesConfigFile } from './registries-config.js';
import { RegistryError, RepositorySession, type FetchedManifest } from './registry-client.js';
import { unpackLayer } from './unpack.js';

export type { ImageConfig } from './manifest.js';
export type { ImportOptions } from './archive-import.js';
export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface ResolvedImage {
  /** the image ID: digest of its config, 'sha256:…' */
  id: string;
  /** the normalized reference asked for */
  ref: string;
  /** name@sha256:… of what the name resolved to at the registry, when known */
  repoDigest?: string;
  config: ImageConfig;
  /** absolute unpacked layer directories, lowest (base) first */
  layerDirs: string[];
  /** bytes: config plus compressed layers */
  size: number;
}

export interface ImageSummary {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: number;
  created?: string;
  lastUsed: string;
}

export interface GcResult {
  freedBytes: number;
  removedImages: string[];
}

export interface ImageStoreOptions {
  root: string;
  /** path of a registries.yaml (k3s shape); missing file = no mirrors, no extra auth */
  registriesConfig?: string;
  /** OCI architecture of the node (default: this host's) */
  arch?: string;
}

/** Marks a failure with the pull stage it happened in, for the kubelet-style message. */
class StageError extends Error {
  constructor(readonly stage: 'resolve' | 'fetch' | 'unpack', override readonly cause: unknown) {
    super((cause as Error)?.message ?? String(cause));
  }
}

async function stage<T>(s: StageError['stage'], p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw e instanceof StageError ? e : new StageError(s, e);
  }
}

async function pool<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < tasks.length && failed === undefined) {
      const i = next++;
      try {
        out[i] = await tasks[i]();
      } catch (e) {
        failed ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failed !== undefined) throw failed;
  return out;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function treeSize(p: string): Promise<number> {
  let n = 0;
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const q = join(d, e.name);
      if (e.isDirectory()) await walk(q);
      else if (e.isFile()) n += (await lstat(q).catch(() => ({ size: 0 }))).size;
    }
  };
  await walk(p);
  return n;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class ImageStore {
  readonly root: string;
  readonly arch: string;
  readonly blobs: BlobStore;
  readonly layersDir: string;
  readonly tmpDir: string;
  private readonly leasesDir: string;
  private readonly index: IndexFile;
  private readonly registries: RegistriesConfigFile;
  private readonly pulls = new Map<string, Promise<ResolvedImage>>();
  private readonly unpacks = new Map<string, Promise<number | undefined>>();
  private readonly downloads = new Map<string, Promise<void>>();
  private readonly lastUsed = new Map<string, string>();
  private readonly configs = new Map<string, ParsedConfig>();
  private leaseSeq = 0;

  constructor(opts: ImageStoreOptions) {
    this.root = resolve(opts.root);
    this.arch = opts.arch ?? nodeArch();
    this.tmpDir = join(this.root, 'tmp');
    this.blobs = new BlobStore(this.root, this.tmpDir);
    this.layersDir = join(this.root, 'layers');
    this.leasesDir = join(this.root, 'leases');
    this.index = new IndexFile(join(this.root, 'index.json'));
    this.registries = new RegistriesConfigFile(opts.registriesConfig);
  }

  layerDir(diffId: string): string {
    return join(this.layersDir, digestHex(diffId));
  }

  // ---- lookups -------------------------------------------------------------------------------

  private findEntry(d: IndexData, ref: ImageRef): { id: string; key?: string; entry?: RefEntry } | undefined {
    const hit = d.refs[ref.ref];
    if (hit && d.images[hit.config]) return { id: hit.config, key: ref.ref, entry: hit };
    if (ref.digest) {
      const byDigest = d.refs[`${ref.name}@${ref.digest}`];
      if (byDigest && d.images[byDigest.config]) return { id: byDigest.config, key: `${ref.name}@${ref.digest}`, entry: byDigest };
      for (const [k, e] of Object.entries(d.refs)) {
        if ((k.startsWith(`${ref.name}@`) || k.startsWith(`${ref.name}:`)) && (e.target === ref.digest || e.manifest === ref.digest) && d.images[e.config]) {
          return { id: e.config, key: k, entry: e };
        }
      }
    }
    return undefined;
  }

  /** An image ID (or unique prefix of at least 12 hex digits) → the full ID. */
  private findId(d: IndexData, s: string): string | undefined {
    const m = /^(?:sha256:)?([a-f0-9]{12,64})$/.exec(s);
    if (!m) return undefined;
    const ids = Object.keys(d.images).filter((id) => id.slice(7).startsWith(m[1]));
    return ids.length === 1 ? ids[0] : undefined;
  }

  private async parsedConfig(id: string): Promise<ParsedConfig> {
    let c = this.configs.get(id);
    if (!c) {
      c = parseImageConfig(await this.blobs.read(id));
      this.configs.set(id, c);
    }
    return c;
  }

  private async resolved(d: IndexData, id: string, ref: string, entry?: RefEntry, name?: string): Promise<ResolvedImage | undefined> {
    const rec = d.images[id];
    if (!rec) return undefined;
    let cfg: ParsedConfig;
    try {
      cfg = await this.parsedConfig(id);
    } catch {
      return undefined;
    }
    const layerDirs: string[] = [];
    for (const l of rec.layers) {
      const dir = this.layerDir(l.diffId);
      if (!(await exists(dir))) {
        // unpacked layer gone (removed by hand?): unpack again from the blob if we still have it
        if (!(await this.blobs.has(l.digest))) return undefined;
        try {
          await this.withLease(() => this.unpackOnce(l.digest, l.diffId));
        } catch {
          return undefined;
        }
      }
      layerDirs.push(dir);
    }
    // the repo digest of the name asked for, else any the image has (none for docker-save imports)
    const mine = entry && name ? `${name}@${entry.target}` : undefined;
    const repoDigest = mine && d.refs[mine] ? mine : Object.keys(d.refs).find((r) => r.includes('@') && d.refs[r].config === id);
    return { id, ref, repoDigest, config: structuredClone(cfg.config), layerDirs, size: rec.size };
  }

  /** The local image a reference names, or undefined; never pulls. Throws InvalidReferenceError. */
  async get(image: string): Promise<ResolvedImage | undefined> {
    const ref = parseImageRef(image);
    const d = this.index.read();
    const hit = this.findEntry(d, ref);
    if (!hit) return undefined;
    return this.resolved(d, hit.id, ref.ref, hit.entry, ref.name);
  }

  // ---- ensure / pull -------------------------------------------------------------------------

  /**
   * Makes the image available per the pull policy (undefined policy: Always for ':latest' or no tag,
   * else IfNotPresent, as the API server defaults it). `credentials` are parsed .dockerconfigjson
   * (or .dockercfg) objects from the pod's imagePullSecrets. Throws ImagePullError.
   */
  async ensure(image: string, policy?: PullPolicy, credentials: unknown[] = []): Promise<ResolvedImage> {
    let ref: ImageRef;
    try {
      ref = parseImageRef(image);
    } catch (e) {
      throw new ImagePullError('InvalidImageName', `Failed to apply default image tag "${image}": couldn't parse image name "${image}": ${(e as Error).message}`, image);
    }
    const p: PullPolicy = policy ?? (ref.tag === 'latest' && !ref.digest ? 'Always' : 'IfNotPresent');
    if (p !== 'Always') {
      const local = await this.get(image);
      if (local) {
        this.touch(local.id);
        return local;
      }
      if (p === 'Never') throw new ImagePullError('ErrImageNeverPull', `Container image "${image}" is not present with pull policy of Never`, image);
    }
    const r = await this.pullShared(ref, credentials, image);
    this.touch(r.id);
    return r;
  }

  /** Pulls unconditionally (blobs already present are not fetched again). Throws ImagePullError. */
  async pull(image: string, credentials: unknown[] = []): Promise<ResolvedImage> {
    let ref: ImageRef;
    try {
      ref = parseImageRef(image);
    } catch (e) {
      throw new ImagePullError('InvalidImageName', `Failed to apply default image tag "${image}": couldn't parse image name "${image}": ${(e as Error).message}`, image);
    }
    return this.pullShared(ref, credentials, image);
  }

  private pullShared(ref: ImageRef, credentials: unknown[], image: string): Promise<ResolvedImage> {
    const key = `${ref.ref}\0${JSON.stringify(credentials)}`;
    let p = this.pulls.get(key);
    if (!p) {
      p = this.withLease(() => this.doPull(ref, credentials)).catch((e) => { throw this.pullError(ref, image, e); })
        .finally(() => this.pulls.delete(key));
      this.pulls.set(key, p);
    }
    return p;
  }

  private pullError(ref: ImageRef, image: string, e: unknown): ImagePullError {
    if (e instanceof ImagePullError) return e;
    const prefix = `failed to pull and unpack image "${ref.ref}"`;
    const st = e instanceof StageError ? e.stage : 'resolve';
    const cause = e instanceof StageError ? e.cause : e;
    const msg = (cause as Error)?.message ?? String(cause);
    let text: string;
    if (cause instanceof RegistryError && cause.kind === 'notFound' && st === 'resolve') {
      text = msg === 'not found' ? `failed to resolve reference "${ref.ref}": ${ref.ref}: not found` : msg;
    } else if (st === 'resolve') text = `failed to resolve reference "${ref.ref}": ${msg}`;
    else if (st === 'fetch') text = `failed to copy: ${msg}`;
    else text = `failed to extract layer: ${msg}`;
    return new ImagePullError('ErrImagePull', `${prefix}: ${text}`, image);
  }

  private async doPull(ref: ImageRef, credentials: unknown[]): Promise<ResolvedImage> {
    const endpoints = await stage('resolve', (async () => endpointsFor(this.registries.get(), ref))());
    let last: unknown;
    for (const ep of endpoints) {
      const creds = matchCredentials(credentials, ep.mirror ? ep.host : ref.domain, ep.mirror ? ep.repo : ref.path);
      const s = new RepositorySession(ep, creds);
      try {
        return await this.pullFrom(s, ref);
      } catch (e) {
        // a network failure at a later endpoint (e.g. the real registry of an air-gapped host)
        // does not hide what an earlier one (the mirror) said
        const cause = e instanceof StageError ? e.cause : e;
        const lastCause = last instanceof StageError ? last.cause : last;
        if (!(last && cause instanceof RegistryError && cause.kind === 'transport' && !(lastCause instanceof RegistryError && lastCause.kind === 'transport'))) last = e;
      }
    }
    throw last;
  }

  /** Is everything for this image on disk (record, config, all layers unpacked)? */
  private async complete(d: IndexData, id: string): Promise<boolean> {
    const rec = d.images[id];
    if (!rec || !(await this.blobs.has(id))) return false;
    for (const l of rec.layers) if (!(await exists(this.layerDir(l.diffId)))) return false;
    return true;
  }

  private async pullFrom(s: RepositorySession, ref: ImageRef): Promise<ResolvedImage> {
    let topDigest = ref.digest;
    if (!topDigest) {
      const h = await stage('resolve', s.headManifest(ref.tag!));
      topDigest = h.digest;
    }
    if (topDigest) {
      // unchanged at the registry and complete here: nothing to fetch
      const d = this.index.read();
      const known = Object.values(d.refs).find((e) => e.target === topDigest || e.manifest === topDigest);
      if (known && (await this.complete(d, known.config))) {
        await this.commitImage({
          ...this.commitFromRecord(d, known.config),
          tagRefs: ref.digest ? [] : [ref.ref], digestRefs: [`${ref.name}@${topDigest}`], target: topDigest, manifest: known.manifest,
        });
        return this.mustResolve(known.config, ref, topDigest);
      }
    }
    const top = await stage('resolve', s.getManifest(topDigest ?? ref.tag!, topDigest ? { digest: topDigest, size: -1, mediaType: '' } : undefined));
    let manifest: FetchedManifest = top;
    for (let depth = 0; manifest.parsed.kind === 'index'; depth++) {
      const idx = manifest.parsed;
      const d = selectPlatform(idx, this.arch);
      if (!d || depth > 2) throw new StageError('resolve', new RegistryError(`no match for platform in manifest: not found`, 'notFound'));
      manifest = await stage('resolve', s.getManifest(d.digest, d));
    }
    const m = manifest.parsed as ImageManifest;
    await stage('fetch', this.fetchBlob(s, m.config));
    const cfgBody = await stage('fetch', this.blobs.read(m.config.digest));
    const cfg = await stage('resolve', (async () => parseImageConfig(cfgBody))());
    if (top === manifest && cfg.architecture && cfg.architecture !== this.arch) {
      throw new StageError('resolve', new RegistryError(`no match for platform in manifest: image is ${cfg.os ?? 'linux'}/${cfg.architecture}, this node is linux/${this.arch}: not found`, 'notFound'));
    }
    if (cfg.diffIds.length !== m.layers.length) {
      throw new StageError('resolve', new RegistryError(`manifest ${manifest.digest}: ${m.layers.length} layers but ${cfg.diffIds.length} diff_ids in config ${m.config.digest}`, 'protocol'));
    }
    const layers = await pool(m.layers.map((l, i) => async (): Promise<LayerRecord> => {
      const dir = this.layerDir(cfg.diffIds[i]);
      if (!(await exists(dir))) {
        if (!(await this.blobs.has(l.digest))) await stage('fetch', this.fetchBlob(s, l));
        const size = await stage('unpack', this.unpackOnce(l.digest, cfg.diffIds[i]));
        return { digest: l.digest, diffId: cfg.diffIds[i], size: l.size, mediaType: l.mediaType, unpackedSize: size };
      }
      return { digest: l.digest, diffId: cfg.diffIds[i], size: l.size, mediaType: l.mediaType, unpackedSize: this.knownUnpackedSize(cfg.diffIds[i]) };
    }), 3);
    await this.blobs.writeBuffer(top.body, top.digest);
    if (manifest !== top) await this.blobs.writeBuffer(manifest.body, manifest.digest);
    await this.commitImage({
      tagRefs: ref.digest ? [] : [ref.ref], digestRefs: [`${ref.name}@${top.digest}`], target: top.digest, manifest: manifest.digest,
      manifestMediaType: m.mediaType, config: m.config.digest, configSize: cfgBody.length, layers, created: cfg.created,
    });
    return this.mustResolve(m.config.digest, ref, top.digest);
  }

  private async mustResolve(id: string, ref: ImageRef, target: string): Promise<ResolvedImage> {
    const d = this.index.read();
    const r = await this.resolved(d, id, ref.ref, d.refs[`${ref.name}@${target}`], ref.name);
    if (!r) throw new StageError('unpack', new Error(`image ${id} was removed while it was being pulled`));
    return r;
  }

  private knownUnpackedSize(diffId: string): number | undefined {
    for (const rec of Object.values(this.index.read().images)) {
      const l = rec.layers.find((x) => x.diffId === diffId && x.unpackedSize !== undefined);
      if (l) return l.unpackedSize;
    }
    return undefined;
  }

  private commitFromRecord(d: IndexData, id: string): CommitParams {
    const rec = d.images[id];
    return {
      tagRefs: [], digestRefs: [], target: rec.manifest, manifest: rec.manifest, manifestMediaType: rec.mediaType,
      config: id, configSize: rec.configSize, layers: rec.layers, created: rec.created,
    };
  }

  /** Downloads a blob into the store (once, even for concurrent callers), verifying it. */
  private fetchBlob(s: RepositorySession, d: Descriptor): Promise<void> {
    let p = this.downloads.get(d.digest);
    if (!p) {
      p = (async () => {
        if (await this.blobs.has(d.digest)) return;
        const body = await s.getBlob(d);
        try {
          await this.blobs.ingest(body, { digest: d.digest, size: d.size });
        } catch (e) {
          body.destroy();
          if (e instanceof DigestMismatchError) throw new RegistryError(e.message, 'integrity');
          throw e;
        }
      })().finally(() => this.downloads.delete(d.digest));
      this.downloads.set(d.digest, p);
    }
    return p;
  }

  /** Unpacks a stored layer blob into layers/<diffid> once; returns the uncompressed size. */
  private unpackOnce(blobDigest: string, diffId: string): Promise<number | undefined> {
    let p = this.unpacks.get(diffId);
    if (!p) {
      p = (async () => {
        const dir = this.layerDir(diffId);
        if (await exists(dir)) return this.knownUnpackedSize(diffId);
        await mkdir(this.layersDir, { recursive: true });
        const r = await unpackLayer(this.blobs.path(blobDigest), dir, diffId, this.tmpDir);
        return r.size;
      })().finally(() => this.unpacks.delete(diffId));
      this.unpacks.set(diffId, p);
    }
    return p;
  }

  /** Records an image and points its names at it. */
  async commitImage(p: CommitParams): Promise<void> {
    await this.mutate((d) => {
      const now = new Date().toISOString();
      const prev = d.images[p.config];
      const layers = p.layers.map((l, i) => ({ ...l, unpackedSize: l.unpackedSize ?? prev?.layers[i]?.unpackedSize }));
      d.images[p.config] = {
        manifest: p.manifest, mediaType: p.manifestMediaType, configSize: p.configSize, layers,
        size: p.configSize + p.layers.reduce((n, l) => n + Math.max(0, l.size), 0),
        created: p.created, added: prev?.added ?? now, lastUsed: now,
      };
      for (const r of [...p.tagRefs, ...p.digestRefs]) d.refs[r] = { target: p.target, manifest: p.manifest, config: p.config };
    });
  }

  private touch(id: string): void {
    this.lastUsed.set(id, new Date().toISOString());
  }

  /** index.update() that also persists in-memory lastUsed times. */
  private mutate<T>(fn: (d: IndexData) => T | Promise<T>): Promise<T> {
    return this.index.update((d) => {
      for (const [id, t] of this.lastUsed) {
        const rec = d.images[id];
        if (rec && rec.lastUsed < t) rec.lastUsed = t;
      }
      this.lastUsed.clear();
      return fn(d);
    });
  }

  /** Runs `fn` holding a lease: content created meanwhile is safe from any process's GC. */
  private async withLease<T>(fn: () => Promise<T>): Promise<T> {
    await mkdir(this.leasesDir, { recursive: true });
    const f = join(this.leasesDir, `${process.pid}.${++this.leaseSeq}.${randomBytes(3).toString('hex')}`);
    await writeFile(f, `${process.pid}\n`);
    const t = new Date(Date.now() - 2000);
    await utimes(f, t, t);
    try {
      return await fn();
    } finally {
      await rm(f, { force: true });
    }
  }

  // ---- import --------------------------------------------------------------------------------

  /** Imports an OCI layout (dir or tar) or a docker save archive; returns the image names (IDs when nameless). */
  async importArchive(path: string, opts: ImportOptions = {}): Promise<string[]> {
    const target: ImportTarget = {
      blobs: this.blobs, arch: this.arch, tmpDir: this.tmpDir,
      layerFromBlob: async (desc, diffId) => {
        const size = await this.unpackOnce(desc.digest, diffId);
        return { digest: desc.digest, diffId, size: desc.size, mediaType: desc.mediaType, unpackedSize: size };
      },
      commitImage: (p) => this.commitImage(p),
    };
    return this.withLease(() => importArchiveFiles(target, path, opts));
  }

  /**
   * Imports every archive (*.tar, *.tar.gz, *.tgz, *.tar.zst, OCI layout directories) in `dir` not
   * imported before in the same version (size and mtime), as k3s does with agent/images/ on
   * air-gapped hosts. Failures are reported per file, not thrown.
   */
  async importDirectory(dir: string): Promise<{ file: string; refs: string[]; error?: string }[]> {
    const stampFile = join(this.root, 'imported.json');
    let stamps: Record<string, string> = {};
    try {
      stamps = JSON.parse(await readFile(stampFile, 'utf8'));
    } catch { /* first time */ }
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch {
      return [];
    }
    const out: { file: string; refs: string[]; error?: string }[] = [];
    for (const n of names) {
      const file = resolve(dir, n);
      const st = await stat(file).catch(() => undefined);
      if (!st) continue;
      const isArchive = st.isFile() && /\.(tar|tar\.gz|tgz|tar\.zst|tar\.zstd|oci)$/.test(n);
      const isLayout = st.isDirectory() && ((await exists(join(file, 'index.json'))) || (await exists(join(file, 'manifest.json'))));
      if (!isArchive && !isLayout) continue;
      const stamp = `${st.size}:${st.mtimeMs}`;
      if (stamps[file] === stamp) continue;
      try {
        const refs = await this.importArchive(file);
        stamps[file] = stamp;
        out.push({ file, refs });
      } catch (e) {
        out.push({ file, refs: [], error: (e as Error).message });
      }
    }
    await mkdir(this.root, { recursive: true });
    await writeFile(stampFile, JSON.stringify(stamps, null, 1));
    return out;
  }

  // ---- list / remove / gc --------------------------------------------------------------------

  async list(): Promise<ImageSummary[]> {
    const d = this.index.read();
    const out: ImageSummary[] = [];
    for (const [id, rec] of Object.entries(d.images)) {
      const names = Object.keys(d.refs).filter((r) => d.refs[r].config === id).sort();
      const mem = this.lastUsed.get(id);
      out.push({
        id, repoTags: names.filter((r) => !r.includes('@')), repoDigests: names.filter((r) => r.includes('@')),
        size: rec.size, created: rec.created, lastUsed: mem && mem > rec.lastUsed ? mem : rec.lastUsed,
      });
    }
    return out.sort((a, b) => (a.repoTags[0] ?? a.id).localeCompare(b.repoTags[0] ?? b.id));
  }

  /**
   * Removes a name, or an image by ID (all its names). Removing the last tag of an image removes
   * the image (and its repo digests), as `docker rmi` does. Unreferenced content is then deleted,
   * except layers mounted somewhere (a running container's overlay). Throws ImageNotFoundError.
   */
  async remove(refOrId: string): Promise<{ untagged: string[]; deleted: string[] }> {
    const res = await this.mutate((d) => {
      const untagged: string[] = [];
      const deleted: string[] = [];
      let ref: ImageRef | undefined;
      try {
        ref = parseImageRef(refOrId);
      } catch { /* maybe an ID */ }
      const hit = ref ? this.findEntry(d, ref) : undefined;
      const dropImage = (id: string) => {
        for (const [k, e] of Object.entries(d.refs)) if (e.config === id) { delete d.refs[k]; untagged.push(k); }
        delete d.images[id];
        deleted.push(id);
      };
      if (hit?.key) {
        delete d.refs[hit.key];
        untagged.push(hit.key);
        const rest = Object.entries(d.refs).filter(([k, e]) => e.config === hit.id && !k.includes('@'));
        if (!rest.length) dropImage(hit.id);
      } else {
        const id = this.findId(d, refOrId);
        if (!id) throw new ImageNotFoundError(refOrId);
        dropImage(id);
      }
      return { untagged: [...new Set(untagged)], deleted };
    });
    await this.sweep();
    return res;
  }

  /**
   * Removes images not in `inUse` (image IDs; names are accepted too), least recently used first,
   * until about `bytesToFree` bytes are freed (Infinity: all unused ones), then deletes unreferenced
   * content. Images used within `minAgeMs` are kept.
   */
  async gc(inUse: Set<string>, bytesToFree: number, opts: { minAgeMs?: number } = {}): Promise<GcResult> {
    const removedImages: string[] = [];
    await this.mutate((d) => {
      const used = new Set<string>();
      for (const u of inUse) {
        if (d.images[u]) used.add(u);
        else if (d.refs[u]) used.add(d.refs[u].config);
        else {
          try {
            const hit = this.findEntry(d, parseImageRef(u));
            if (hit) used.add(hit.id);
          } catch { /* not a name */ }
        }
      }
      const now = Date.now();
      const candidates = Object.entries(d.images)
        .filter(([id, rec]) => !used.has(id) && now - Date.parse(rec.lastUsed) >= (opts.minAgeMs ?? 0))
        .sort(([, a], [, b]) => a.lastUsed.localeCompare(b.lastUsed));
      let estimate = 0;
      for (const [id, rec] of candidates) {
        if (estimate >= bytesToFree) break;
        for (const [k, e] of Object.entries(d.refs)) if (e.config === id) delete d.refs[k];
        delete d.images[id];
        removedImages.push(id);
        const stillUsed = new Set(Object.values(d.images).flatMap((r) => r.layers.map((l) => l.diffId)));
        for (const l of rec.layers) if (!stillUsed.has(l.diffId)) estimate += Math.max(0, l.size) + (l.unpackedSize ?? 0);
        estimate += rec.configSize;
      }
    });
    const freedBytes = await this.sweep();
    return { freedBytes, removedImages };
  }

  /** Layer directories of this store that some mount (overlay lowerdir, bind) uses. */
  private async mountedLayers(): Promise<Set<string>> {
    const out = new Set<string>();
    let text = '';
    try {
      text = await readFile('/proc/self/mountinfo', 'utf8');
    } catch {
      return out;
    }
    const re = new RegExp(`${this.layersDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/([a-f0-9]{64})`, 'g');
    for (const m of text.matchAll(re)) out.add(m[1]);
    return out;
  }

  /** The oldest start time of a live lease (ms), or Infinity. Stale lease files are removed. */
  private async leaseFloor(): Promise<number> {
    let floor = Infinity;
    let names: string[] = [];
    try {
      names = await readdir(this.leasesDir);
    } catch {
      return floor;
    }
    for (const n of names) {
      const f = join(this.leasesDir, n);
      const pid = parseInt(n, 10);
      if (!Number.isInteger(pid) || !pidAlive(pid)) {
        await rm(f, { force: true });
        continue;
      }
      const st = await stat(f).catch(() => undefined);
      if (st) floor = Math.min(floor, st.mtimeMs);
    }
    return floor;
  }

  /** Deletes blobs and layers no image or name refers to; returns the bytes freed. */
  private async sweep(): Promise<number> {
    const d = this.index.read();
    const blobs = new Set<string>();
    const layers = new Set<string>();
    for (const e of Object.values(d.refs)) {
      blobs.add(e.target);
      blobs.add(e.manifest);
      blobs.add(e.config);
    }
    for (const [id, rec] of Object.entries(d.images)) {
      blobs.add(id);
      blobs.add(rec.manifest);
      for (const l of rec.layers) {
        blobs.add(l.digest);
        layers.add(digestHex(l.diffId));
      }
    }
    const floor = await this.leaseFloor();
    const young = (ctimeMs: number) => ctimeMs >= floor;
    let freed = 0;
    for (const digest of await this.blobs.list()) {
      if (blobs.has(digest)) continue;
      const st = await stat(this.blobs.path(digest)).catch(() => undefined);
      if (!st || young(st.ctimeMs)) continue;
      freed += await this.blobs.delete(digest);
      this.configs.delete(digest);
    }
    const mounted = await this.mountedLayers();
    let names: string[] = [];
    try {
      names = await readdir(this.layersDir);
    } catch { /* none yet */ }
    for (const n of names) {
      if (!/^[a-f0-9]{64}$/.test(n) || layers.has(n) || mounted.has(n)) continue;
      const dir = join(this.layersDir, n);
      const st = await stat(dir).catch(() => undefined);
      if (!st || young(st.ctimeMs)) continue;
      freed += await treeSize(dir);
      await rm(dir, { recursive: true, force: true });
    }
    // leftovers of crashed downloads/extractions
    try {
      for (const n of await readdir(this.tmpDir)) {
        const p = join(this.tmpDir, n);
        const st = await stat(p).catch(() => undefined);
        if (st && !young(st.ctimeMs) && Date.now() - st.mtimeMs > 3600_000) await rm(p, { recursive: true, force: true });
      }
    } catch { /* no tmp */ }
    return freed;
  }
}
