// OCI and Docker (schema 2) image manifests, indexes/manifest lists and configs: media types, the
// parsing the pull and import paths share, choosing the node's platform from an index, and turning an
// image config into the fields a container needs (entrypoint, cmd, env, workingDir, user).
import { createHash } from 'node:crypto';
import { validateDigest } from './reference.js';

export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** What a pull sends in Accept: all four, or a registry may answer 404 for an OCI manifest. */
export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerList, MediaType.dockerManifest].join(', ');

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
  urls?: string[];
}

export interface ImageManifest { kind: 'manifest'; mediaType: string; config: Descriptor; layers: Descriptor[] }
export interface ImageIndex { kind: 'index'; mediaType: string; manifests: Descriptor[] }

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

export function sha256Digest(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export function isIndexType(mt: string): boolean {
  return mt === MediaType.ociIndex || mt === MediaType.dockerList;
}

function descriptor(x: unknown, where: string): Descriptor {
  const d = x as Partial<Descriptor> | null;
  if (!d || typeof d !== 'object' || typeof d.digest !== 'string') throw new ManifestError(`${where}: missing digest`);
  try {
    validateDigest(d.digest);
  } catch (e) {
    throw new ManifestError(`${where}: ${(e as Error).message} (${JSON.stringify(d.digest)})`);
  }
  if (!d.digest.startsWith('sha256:')) throw new ManifestError(`${where}: unsupported digest algorithm in ${d.digest}`);
  const size = typeof d.size === 'number' && Number.isSafeInteger(d.size) && d.size >= 0 ? d.size : -1;
  return {
    mediaType: typeof d.mediaType === 'string' ? d.mediaType : '',
    digest: d.digest, size,
    platform: d.platform && typeof d.platform === 'object' ? d.platform : undefined,
    annotations: d.annotations && typeof d.annotations === 'object' ? d.annotations : undefined,
    urls: Array.isArray(d.urls) ? d.urls : undefined,
  };
}

/**
 * Parses a manifest or index body. `contentType` is the registry's Content-Type (or the descriptor's
 * mediaType); when it is missing or generic the body's own mediaType, then its shape, decide.
 */
export function parseManifest(body: Buffer, contentType?: string): ImageManifest | ImageIndex {
  let j: any;
  try {
    j = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ManifestError('manifest is not valid JSON');
  }
  if (!j || typeof j !== 'object') throw new ManifestError('manifest is not a JSON object');
  const ct = (contentType ?? '').split(';')[0].trim();
  let mt = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerList, MediaType.dockerManifest, MediaType.dockerSchema1, MediaType.dockerSchema1Signed]
    .includes(ct as never) ? ct : '';
  if (!mt && typeof j.mediaType === 'string') mt = j.mediaType;
  if (j.schemaVersion === 1 || mt === MediaType.dockerSchema1 || mt === MediaType.dockerSchema1Signed) {
    throw new ManifestError('Docker Image Format v1 and Docker Image manifest version 2, schema 1 are not supported');
  }
  if (!mt) mt = Array.isArray(j.manifests) ? MediaType.ociIndex : MediaType.ociManifest;
  if (isIndexType(mt)) {
    if (!Array.isArray(j.manifests)) throw new ManifestError('index has no manifests');
    return { kind: 'index', mediaType: mt, manifests: j.manifests.map((m: unknown, i: number) => descriptor(m, `manifests[${i}]`)) };
  }
  if (mt !== MediaType.ociManifest && mt !== MediaType.dockerManifest) throw new ManifestError(`unsupported manifest media type ${JSON.stringify(mt)}`);
  if (!Array.isArray(j.layers)) throw new ManifestError('manifest has no layers');
  return {
    kind: 'manifest', mediaType: mt,
    config: descriptor(j.config, 'config'),
    layers: j.layers.map((l: unknown, i: number) => descriptor(l, `layers[${i}]`)),
  };
}

/** The node's platform in OCI words: process.arch → GOARCH. */
export function nodeArch(arch: string = process.arch): string {
  const m: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle' };
  return m[arch] ?? arch;
}

function defaultVariant(arch: string): string | undefined {
  return arch === 'arm64' ? 'v8' : arch === 'arm' ? 'v7' : undefined;
}

/** Picks the linux/<arch> entry of an index (exact variant first), or undefined. */
export function selectPlatform(index: ImageIndex, arch: string): Descriptor | undefined {
  const want = defaultVariant(arch);
  const candidates = index.manifests.filter((m) => {
    if (m.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') return false;
    const p = m.platform;
    return !!p && (p.os ?? 'linux') === 'linux' && p.architecture === arch;
  });
  return candidates.find((m) => (m.platform?.variant ?? want) === want) ?? candidates[0];
}

export interface ImageConfig {
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workingDir: string;
  user: string;
}

export interface ParsedConfig {
  architecture?: string;
  os?: string;
  created?: string;
  diffIds: string[];
  config: ImageConfig;
}

function strings(x: unknown): string[] {
  return Array.isArray(x) ? x.filter((s): s is string => typeof s === 'string') : [];
}

export function parseImageConfig(body: Buffer): ParsedConfig {
  let j: any;
  try {
    j = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ManifestError('image config is not valid JSON');
  }
  if (!j || typeof j !== 'object') throw new ManifestError('image config is not a JSON object');
  const diffIds = strings(j.rootfs?.diff_ids);
  for (const d of diffIds) {
    try {
      validateDigest(d);
    } catch (e) {
      throw new ManifestError(`image config: rootfs.diff_ids: ${(e as Error).message} (${JSON.stringify(d)})`);
    }
    if (!d.startsWith('sha256:')) throw new ManifestError(`image config: unsupported diff_id algorithm in ${d}`);
  }
  const c = j.config && typeof j.config === 'object' ? j.config : {};
  return {
    architecture: typeof j.architecture === 'string' ? j.architecture : undefined,
    os: typeof j.os === 'string' ? j.os : undefined,
    created: typeof j.created === 'string' ? j.created : undefined,
    diffIds,
    config: {
      entrypoint: strings(c.Entrypoint),
      cmd: strings(c.Cmd),
      env: strings(c.Env),
      workingDir: typeof c.WorkingDir === 'string' ? c.WorkingDir : '',
      user: typeof c.User === 'string' ? c.User : '',
    },
  };
}
