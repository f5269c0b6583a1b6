// Image references, parsed and normalized the way docker and containerd do it
// (github.com/distribution/reference: ParseNormalizedNamed + TagNameOnly), so that the names the
// agent stores, reports in pod status and matches against imagePullSecrets are the same ones a
// Kubernetes user sees elsewhere:
//   busybox                      -> docker.io/library/busybox:latest
//   127.0.0.1:5000/rt/bb:v1      -> 127.0.0.1:5000/rt/bb:v1
//   busybox@sha256:<64 hex>      -> docker.io/library/busybox@sha256:<64 hex>   (no :latest added)
//   localhost/x                  -> localhost/x:latest
// The first path component is a registry host when it contains '.' or ':', is 'localhost', or has
// upper-case letters; otherwise the image lives on docker.io (and a one-component name gets
// 'library/'). Errors carry the same wording as the reference library ("invalid reference format").

export interface ImageRef {
  /** registry host[:port], e.g. 'docker.io', '127.0.0.1:5000' */
  domain: string;
  /** repository path inside the registry, e.g. 'library/busybox' */
  path: string;
  /** domain + '/' + path */
  name: string;
  tag?: string;
  /** 'sha256:<hex>' */
  digest?: string;
  /** the normalized reference: name[:tag][@digest]; ':latest' is added when neither tag nor digest is given */
  ref: string;
}

export class InvalidReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidReferenceError';
  }
}

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const NAME_TOTAL_LENGTH_MAX = 255;

// The grammar of distribution/reference (regexp.go), as JS regular expressions.
const alphaNumeric = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alphaNumeric}(?:${separator}${alphaNumeric})*`;
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const ipv6address = '\\[(?:[a-fA-F0-9:]+)\\]';
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`;
const host = `(?:${domainName}|${ipv6address})`;
const domainAndPort = `${host}(?::[0-9]+)?`;
const tagPattern = '[\\w][\\w.-]{0,127}';
const digestPattern = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}';
const namePattern = `(?:${domainAndPort}/)?${pathComponent}(?:/${pathComponent})*`;
const referenceRe = new RegExp(`^(${namePattern})(?::(${tagPattern}))?(?:@(${digestPattern}))?$`);
const anchoredIdentifierRe = /^[a-f0-9]{64}$/;
const tagRe = new RegExp(`^${tagPattern}$`);

const digestLengths: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** Checks 'algo:hex' the way go-digest does; returns it unchanged or throws. */
export function validateDigest(d: string): string {
  const i = d.indexOf(':');
  if (i <= 0 || i === d.length - 1) throw new InvalidReferenceError('invalid checksum digest format');
  const alg = d.slice(0, i);
  const hex = d.slice(i + 1);
  const want = digestLengths[alg];
  if (!want) throw new InvalidReferenceError('unsupported digest algorithm');
  if (!/^[a-f0-9]+$/.test(hex)) throw new InvalidReferenceError('invalid checksum digest format');
  if (hex.length !== want) throw new InvalidReferenceError('invalid checksum digest length');
  return d;
}

function splitDockerDomain(s: string): [string, string] {
  const i = s.indexOf('/');
  let domain: string;
  let remainder: string;
  if (i === -1 || (!/[.:]/.test(s.slice(0, i)) && s.slice(0, i) !== 'localhost' && s.slice(0, i).toLowerCase() === s.slice(0, i))) {
    domain = DEFAULT_DOMAIN;
    remainder = s;
  } else {
    domain = s.slice(0, i);
    remainder = s.slice(i + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = `library/${remainder}`;
  return [domain, remainder];
}

/**
 * Parses an image reference as Kubernetes users write it and returns its normalized form.
 * Throws InvalidReferenceError with the reference library's wording.
 */
export function parseImageRef(s: string): ImageRef {
  if (typeof s !== 'string' || s === '') throw new InvalidReferenceError('invalid reference format: repository name must have at least one component');
  if (anchoredIdentifierRe.test(s)) {
    throw new InvalidReferenceError(`invalid repository name (${s}), cannot specify 64-byte hexadecimal strings`);
  }
  const [domain, remainder] = splitDockerDomain(s);
  const tagSep = remainder.indexOf(':');
  const at = remainder.indexOf('@');
  const remoteName = tagSep > -1 ? remainder.slice(0, tagSep) : at > -1 ? remainder.slice(0, at) : remainder;
  if (remoteName.toLowerCase() !== remoteName) {
    throw new InvalidReferenceError(`invalid reference format: repository name (${remoteName}) must be lowercase`);
  }
  const full = `${domain}/${remainder}`;
  const m = referenceRe.exec(full);
  if (!m) {
    if (referenceRe.test(full.toLowerCase())) throw new InvalidReferenceError('invalid reference format: repository name must be lowercase');
    throw new InvalidReferenceError('invalid reference format');
  }
  const name = m[1];
  if (name.length > NAME_TOTAL_LENGTH_MAX) {
    throw new InvalidReferenceError(`invalid reference format: repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  const tag = m[2];
  const digest = m[3] ? validateDigest(m[3]) : undefined;
  const path = name.slice(domain.length + 1);
  const effectiveTag = tag ?? (digest ? undefined : 'latest');
  const ref = `${name}${effectiveTag ? `:${effectiveTag}` : ''}${digest ? `@${digest}` : ''}`;
  return { domain, path, name, tag: effectiveTag, digest, ref };
}

/** True for a valid tag (the part after ':'). */
export function isValidTag(t: string): boolean {
  return tagRe.test(t);
}

/** `name@digest`, the repo digest form Kubernetes reports in imageID. */
export function repoDigestOf(ref: ImageRef | string, digest: string): string {
  const name = typeof ref === 'string' ? ref : ref.name;
  return `${name}@${digest}`;
}

/** Splits a normalized reference into repository and tag/digest parts for display ('<none>' when absent). */
export function splitForDisplay(ref: string): { repository: string; tag: string; digest: string } {
  const at = ref.indexOf('@');
  const digest = at >= 0 ? ref.slice(at + 1) : '<none>';
  const nameTag = at >= 0 ? ref.slice(0, at) : ref;
  const slash = nameTag.lastIndexOf('/');
  const colon = nameTag.lastIndexOf(':');
  if (colon > slash) return { repository: nameTag.slice(0, colon), tag: nameTag.slice(colon + 1), digest };
  return { repository: nameTag, tag: '<none>', digest };
}
