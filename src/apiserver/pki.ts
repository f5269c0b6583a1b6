// Certificates for `kyb server`, laid out the way k3s lays them out: a server CA that signs the API
// server's serving certificate, a client CA that signs client certificates (the admin's, later the
// node agents'), all kept under `<data-dir>/tls/` and reused across restarts.
//
// Why this file builds X.509 itself: Node 20's crypto can make keys, sign, and parse certificates
// (`X509Certificate`), but cannot *build* one, and no dependency-free X.509 library exists on npm
// (node-forge is large and does RSA in JavaScript, slowly; @peculiar/x509 pulls in a WebCrypto
// polyfill and an ASN.1 schema library; pkijs likewise). What we need is small: a DER encoder for
// one fixed TBSCertificate shape, ECDSA P-256 keys, signed with `crypto.sign`. It is below.

import {
  createHash,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';

// ---------------------------------------------------------------------------------------------
// DER encoding (ITU-T X.690), only what an X.509 v3 certificate needs.

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, ...items);
const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items);
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
const utf8 = (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8'));
/** BIT STRING holding whole bytes. */
const bits = (b: Buffer): Buffer => tlv(0x03, Buffer.from([0]), b);

/** Non-negative INTEGER from big-endian bytes, minimally encoded. */
function uint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return tlv(0x02, v);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [parts[0]! * 40 + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. Seconds precision. */
function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2025-01-02T03:04:05.678Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, ''); // 20250102030405
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(digits.slice(2) + 'Z')) : tlv(0x18, Buffer.from(digits + 'Z'));
}

/** A BIT STRING of named bits (bit 0 is the most significant bit of the first byte), DER-trimmed. */
function namedBits(positions: number[]): Buffer {
  const top = Math.max(...positions);
  const bytes = Buffer.alloc(Math.floor(top / 8) + 1);
  for (const p of positions) bytes[p >> 3]! |= 0x80 >> (p & 7);
  const unused = 7 - (top & 7);
  return tlv(0x03, Buffer.from([unused]), bytes);
}

const OID = {
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
};

/** KeyUsage bit positions (RFC 5280 §4.2.1.3). */
const KU = { digitalSignature: 0, keyEncipherment: 2, keyCertSign: 5, cRLSign: 6 };

function name(cn: string, orgs: string[]): Buffer {
  // Organizations first, then CN, the order Go's crypto/x509 writes.
  const rdn = (type: string, value: string): Buffer => set(seq(oid(type), utf8(value)));
  return seq(...orgs.map((o) => rdn(OID.organization, o)), rdn(OID.commonName, cn));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

/** The bytes of an IPv4 or IPv6 address, as a subjectAltName iPAddress holds them. */
export function ipBytes(ip: string): Buffer {
  const family = isIP(ip);
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  if (family !== 6) throw new Error(`invalid IP address: ${JSON.stringify(ip)}`);
  let text = ip;
  let tail: number[] = [];
  const dotted = /:(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = dotted[1]!.split('.').map(Number);
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    text = text.slice(0, dotted.index + 1) + '0'; // placeholder group, dropped below
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  let words: number[];
  if (rest === undefined) words = groups(head);
  else {
    const left = groups(head);
    const right = groups(rest);
    words = [...left, ...new Array<number>(8 - left.length - right.length - (tail.length ? 1 : 0)).fill(0), ...right];
  }
  if (tail.length) words = [...words.slice(0, -1), ...tail];
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

interface CertSpec {
  cn: string;
  orgs?: string[];
  publicKey: KeyObject;
  /** The signer; omitted for a self-signed CA. */
  issuer?: X509Certificate;
  signingKey: KeyObject;
  days: number;
  /** Issue time, ms since the epoch. */
  now: number;
  ca: boolean;
  extKeyUsage?: string[];
  dnsNames?: string[];
  ips?: string[];
}

/** Key identifier: SHA-1 of the subjectPublicKey bits (RFC 5280 §4.2.1.2, method 1). */
function keyId(publicKey: KeyObject): Buffer {
  const jwk = publicKey.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  return createHash('sha1').update(point).digest();
}

/** Builds and signs an X.509 v3 certificate; returns PEM. */
function buildCert(spec: CertSpec): string {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x40; // positive, 16 significant bytes
  const now = spec.now;
  const notBefore = new Date(now - 5 * 60_000); // tolerate a little clock skew between hosts
  const notAfter = new Date(now + spec.days * 86_400_000);
  const algorithm = seq(oid(OID.ecdsaWithSHA256));
  const subject = name(spec.cn, spec.orgs ?? []);
  const issuerName = spec.issuer ? subjectNameDer(spec.issuer.raw) : subject;
  const exts: Buffer[] = [
    extension(
      OID.keyUsage,
      true,
      namedBits(spec.ca ? [KU.digitalSignature, KU.keyCertSign, KU.cRLSign] : [KU.digitalSignature, KU.keyEncipherment]),
    ),
  ];
  if (spec.extKeyUsage?.length) exts.push(extension(OID.extKeyUsage, false, seq(...spec.extKeyUsage.map(oid))));
  exts.push(extension(OID.basicConstraints, true, spec.ca ? seq(bool(true)) : seq()));
  if (spec.ca) exts.push(extension(OID.subjectKeyIdentifier, false, octets(keyId(spec.publicKey))));
  if (spec.issuer) exts.push(extension(OID.authorityKeyIdentifier, false, seq(tlv(0x80, keyId(spec.issuer.publicKey)))));
  const sans = [
    ...(spec.dnsNames ?? []).map((d) => tlv(0x82, Buffer.from(d, 'ascii'))),
    ...(spec.ips ?? []).map((ip) => tlv(0x87, ipBytes(ip))),
  ];
  if (sans.length) exts.push(extension(OID.subjectAltName, false, seq(...sans)));

  const tbs = seq(
    tlv(0xa0, uint(Buffer.from([2]))), // version v3
    uint(serial),
    algorithm,
    issuerName,
    seq(time(notBefore), time(notAfter)),
    subject,
    spec.publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq(...exts)),
  );
  const signature = sign('sha256', tbs, spec.signingKey); // DER-encoded ECDSA-Sig-Value
  const der = seq(tbs, algorithm, bits(signature));
  return toPem('CERTIFICATE', der);
}

// ---------------------------------------------------------------------------------------------
// A minimal DER reader, only to lift the issuer's subject Name out of its certificate byte for
// byte (the issuer field must equal the CA's subject exactly for chain building).

function readTlv(buf: Buffer, at: number): { tag: number; start: number; end: number; next: number } {
  const tag = buf[at]!;
  let len = buf[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    start += n;
  }
  return { tag, start, end: start + len, next: start + len };
}

/** Given a whole certificate's DER, returns the DER of its subject Name. */
function subjectNameDer(certDer: Buffer): Buffer {
  const cert = readTlv(certDer, 0);
  const tbs = readTlv(certDer, cert.start);
  let at = tbs.start;
  const fields: Array<{ start: number; next: number }> = [];
  while (at < tbs.end) {
    const f = readTlv(certDer, at);
    fields.push({ start: at, next: f.next });
    at = f.next;
  }
  // [0] version, serial, signature, issuer, validity, subject
  const offset = certDer[tbs.start] === 0xa0 ? 1 : 0;
  const subject = fields[offset + 4]!;
  return certDer.subarray(subject.start, subject.next);
}

function toPem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

function newKey(): { privateKey: KeyObject; publicKey: KeyObject; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privateKey, publicKey, pem: privateKey.export({ type: 'sec1', format: 'pem' }) as string };
}

// ---------------------------------------------------------------------------------------------
// The PKI of one server.

export interface Pki {
  serverCaCert: string;
  serverCaKey: string;
  clientCaCert: string;
  clientCaKey: string;
  /** The API server's serving certificate, signed by the server CA. */
  serverCert: string;
  serverKey: string;
  /** `system:admin` in `system:masters`, signed by the client CA. */
  adminCert: string;
  adminKey: string;
  /** Issues a client certificate signed by the client CA (1 year). Not written to disk. */
  issueClientCert(cn: string, orgs: string[]): { cert: string; key: string };
}

export const CA_DAYS = 3650;
export const LEAF_DAYS = 365;
/** Leaf certificates this close to expiry are re-issued on start. */
export const RENEW_BEFORE_DAYS = 90;

export const DEFAULT_DNS_NAMES = [
  'localhost',
  'kubernetes',
  'kubernetes.default',
  'kubernetes.default.svc',
  'kubernetes.default.svc.cluster.local',
];
/** Loopback, and the first address of the default Service range (the `kubernetes` Service). */
export const DEFAULT_IPS = ['127.0.0.1', '::1', '10.43.0.1'];

const FILES = {
  serverCa: 'server-ca',
  clientCa: 'client-ca',
  serving: 'serving-kube-apiserver',
  admin: 'client-admin',
};

interface Pair {
  cert: X509Certificate;
  certPem: string;
  key: KeyObject;
  keyPem: string;
}

/** Writes through a temporary file and a rename, so a crash never leaves half a key behind. */
function writeFileAtomic(path: string, content: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

function loadPair(tls: string, base: string): Pair | undefined {
  const certPath = join(tls, `${base}.crt`);
  const keyPath = join(tls, `${base}.key`);
  if (!existsSync(certPath) || !existsSync(keyPath)) return undefined;
  try {
    const certPem = readFileSync(certPath, 'utf8');
    const keyPem = readFileSync(keyPath, 'utf8');
    const cert = new X509Certificate(certPem);
    const key = createPrivateKey(keyPem);
    if (!cert.checkPrivateKey(key)) return undefined;
    return { cert, certPem, key, keyPem };
  } catch {
    return undefined; // unreadable or corrupt: issue a new one
  }
}

function savePair(tls: string, base: string, certPem: string, keyPem: string): Pair {
  writeFileAtomic(join(tls, `${base}.key`), keyPem, 0o600);
  writeFileAtomic(join(tls, `${base}.crt`), certPem, 0o644);
  return { cert: new X509Certificate(certPem), certPem, key: createPrivateKey(keyPem), keyPem };
}

const msLeft = (cert: X509Certificate, now: number): number => Date.parse(cert.validTo) - now;

function ensureCa(tls: string, base: string, cnPrefix: string, now: number): Pair {
  const existing = loadPair(tls, base);
  if (existing && existing.cert.ca && msLeft(existing.cert, now) > 0) return existing;
  const k = newKey();
  const certPem = buildCert({
    cn: `${cnPrefix}@${Math.floor(now / 1000)}`,
    publicKey: k.publicKey,
    signingKey: k.privateKey,
    days: CA_DAYS,
    now,
    ca: true,
  });
  return savePair(tls, base, certPem, k.pem);
}

function issue(ca: Pair, now: number, leaf: Omit<CertSpec, 'publicKey' | 'signingKey' | 'issuer' | 'days' | 'now' | 'ca'>): { cert: string; key: string } {
  const k = newKey();
  const cert = buildCert({ ...leaf, publicKey: k.publicKey, signingKey: ca.key, issuer: ca.cert, days: LEAF_DAYS, now, ca: false });
  return { cert, key: k.pem };
}

/** A loaded leaf is kept only if the current CA signed it, it is not near expiry, and `covers` agrees. */
function leafUsable(leaf: Pair | undefined, ca: Pair, now: number, covers: (c: X509Certificate) => boolean): leaf is Pair {
  return (
    leaf !== undefined &&
    !leaf.cert.ca &&
    leaf.cert.checkIssued(ca.cert) &&
    leaf.cert.verify(ca.cert.publicKey) &&
    msLeft(leaf.cert, now) > RENEW_BEFORE_DAYS * 86_400_000 &&
    covers(leaf.cert)
  );
}

function dnsSans(cert: X509Certificate): Set<string> {
  const out = new Set<string>();
  for (const entry of (cert.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) out.add(entry.slice(4).toLowerCase());
  }
  return out;
}

export interface PkiOptions {
  /** extra names for the serving certificate (IP addresses among them go in as IP SANs) */
  hostnames: string[];
  /** extra IP addresses for the serving certificate (the bind and advertise addresses) */
  ips: string[];
  /** the `kubernetes` Service's cluster IP (the service CIDR's first address; default 10.43.0.1) */
  serviceIP?: string;
  /** the cluster domain: `kubernetes.default.svc.<domain>` is a SAN (default cluster.local) */
  clusterDomain?: string;
  now?: () => number;
}

/**
 * Loads the server's certificates from `${dir}/tls/`, creating whatever is missing, invalid, near
 * expiry, or (for the serving certificate) lacking one of the requested names. `now` (ms since the
 * epoch) is the clock, for tests. CAs are kept when present and unexpired; a new CA re-issues every
 * certificate it signs. A data dir made before a name was wanted (a new advertise address, service
 * CIDR or cluster domain) thus gets a new serving certificate from the same CA, so kubeconfigs and
 * pods' ca.crt stay valid.
 *
 * The serving certificate always names what a pod uses to reach the API: `kubernetes`,
 * `kubernetes.default`, `kubernetes.default.svc`, `kubernetes.default.svc.<cluster domain>` and the
 * `kubernetes` Service's cluster IP; plus localhost, 127.0.0.1, ::1 and this host's name.
 */
export function ensurePki(dir: string, opts: PkiOptions): Pki {
  const clock = opts.now ?? Date.now;
  const now = clock();
  const tls = join(dir, 'tls');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync(tls, { recursive: true, mode: 0o700 });
  chmodSync(tls, 0o700);

  // Names given as hostnames that are really IP addresses go in as IP SANs, as k3s's --tls-san does.
  const domain = (opts.clusterDomain ?? 'cluster.local').trim().replace(/\.$/, '').toLowerCase();
  if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(domain)) throw new Error(`invalid cluster domain for the serving certificate: ${JSON.stringify(opts.clusterDomain)}`);
  const dnsNames = new Set<string>([...DEFAULT_DNS_NAMES, `kubernetes.default.svc.${domain}`, osHostname().toLowerCase()]);
  const ips = new Set<string>(DEFAULT_IPS);
  if (opts.serviceIP !== undefined) {
    if (!isIP(opts.serviceIP.trim())) throw new Error(`invalid service IP for the serving certificate: ${JSON.stringify(opts.serviceIP)}`);
    ips.add(opts.serviceIP.trim());
  }
  for (const h of opts.hostnames) {
    const v = h.trim();
    if (v === '') continue;
    if (isIP(v)) ips.add(v);
    else if (/^[\x21-\x7e]+$/.test(v)) dnsNames.add(v.toLowerCase());
    else throw new Error(`invalid hostname for the serving certificate: ${JSON.stringify(h)}`);
  }
  for (const ip of opts.ips) {
    if (!isIP(ip.trim())) throw new Error(`invalid IP address for the serving certificate: ${JSON.stringify(ip)}`);
    ips.add(ip.trim());
  }

  const serverCa = ensureCa(tls, FILES.serverCa, 'kybernetes-server-ca', now);
  const clientCa = ensureCa(tls, FILES.clientCa, 'kybernetes-client-ca', now);

  let serving = loadPair(tls, FILES.serving);
  const coversSans = (c: X509Certificate): boolean => {
    const have = dnsSans(c);
    return [...dnsNames].every((d) => have.has(d)) && [...ips].every((ip) => c.checkIP(ip) !== undefined);
  };
  if (!leafUsable(serving, serverCa, now, coversSans)) {
    const { cert, key } = issue(serverCa, now, { cn: 'kube-apiserver', extKeyUsage: [OID.serverAuth], dnsNames: [...dnsNames], ips: [...ips] });
    serving = savePair(tls, FILES.serving, cert, key);
  }

  let admin = loadPair(tls, FILES.admin);
  if (!leafUsable(admin, clientCa, now, () => true)) {
    const { cert, key } = issue(clientCa, now, { cn: 'system:admin', orgs: ['system:masters'], extKeyUsage: [OID.clientAuth] });
    admin = savePair(tls, FILES.admin, cert, key);
  }

  return {
    serverCaCert: serverCa.certPem,
    serverCaKey: serverCa.keyPem,
    clientCaCert: clientCa.certPem,
    clientCaKey: clientCa.keyPem,
    serverCert: serving.certPem,
    serverKey: serving.keyPem,
    adminCert: admin.certPem,
    adminKey: admin.keyPem,
    issueClientCert: (cn, orgs) => issue(clientCa, clock(), { cn, orgs, extKeyUsage: [OID.clientAuth] }),
  };
}

/**
 * The admin bearer token, kept in `${dir}/token` (mode 0600). `given` replaces whatever is stored;
 * otherwise the stored one is used, or a new random one (32 bytes, hex) is made.
 */
export function ensureToken(dir: string, given?: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'token');
  if (given !== undefined) {
    const token = given.trim();
    if (token === '' || /\s/.test(token)) throw new Error('token must be non-empty and contain no whitespace');
    writeFileAtomic(path, token + '\n', 0o600);
    return token;
  }
  if (existsSync(path)) {
    const stored = readFileSync(path, 'utf8').trim();
    if (stored !== '') {
      chmodSync(path, 0o600);
      return stored;
    }
  }
  const token = randomBytes(32).toString('hex');
  writeFileAtomic(path, token + '\n', 0o600);
  return token;
}
