// Service-account tokens, as kube-apiserver issues them: the `serviceaccounts/<name>/token`
// subresource (authentication.k8s.io/v1 TokenRequest) signs a JWT with the cluster's service-account
// key, and the authenticator accepts such JWTs as `system:serviceaccount:<ns>:<name>`.
//
// The key is an ECDSA P-256 key kept in `<data-dir>/tls/service-account.key` (mode 0600), created once
// and reused across restarts like the rest of the PKI; tokens are ES256 JWTs (RFC 7515/7519) made with
// node:crypto directly (a JWT is three base64url parts; no library needed for one algorithm).
// Claims follow upstream: iss, sub, aud, exp, iat, nbf, jti and the `kubernetes.io` claim with the
// namespace, the service account {name, uid} and, for pod-bound tokens, the pod {name, uid}.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KObject, ResourceDef } from '../api/types.js';
import { findResource } from '../api/resources.js';
import { errors, StatusError } from '../machinery/status.js';
import type { Registry } from './registry.js';
import { readBody, decodeObject, mediaType, sendJson, type RequestInfo } from './request.js';
import type { UserInfo } from './auth.js';

export const DEFAULT_ISSUER = 'https://kubernetes.default.svc.cluster.local';
export const DEFAULT_EXPIRATION_SECONDS = 3600;
export const MIN_EXPIRATION_SECONDS = 600;

/** Returns the PEM of `<dir>/tls/service-account.key`, creating it (P-256, PKCS#8) when missing. */
export function ensureServiceAccountKey(dir: string): string {
  const tls = join(dir, 'tls');
  mkdirSync(tls, { recursive: true, mode: 0o700 });
  const path = join(tls, 'service-account.key');
  if (existsSync(path)) {
    const pem = readFileSync(path, 'utf8');
    try { createPrivateKey(pem); chmodSync(path, 0o600); return pem; } catch { /* unreadable: make a new one */ }
  }
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, pem, { mode: 0o600 });
  renameSync(tmp, path);
  return pem;
}

export interface ServiceAccountClaims {
  iss: string; sub: string; aud: string[]; exp: number; iat: number; nbf: number; jti: string;
  'kubernetes.io': {
    namespace: string;
    serviceaccount: { name: string; uid: string };
    pod?: { name: string; uid: string };
  };
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** Signs and verifies service-account JWTs (ES256 for EC keys, RS256 for RSA keys). */
export class TokenSigner {
  private readonly priv: KeyObject;
  private readonly pub: KeyObject;
  private readonly alg: 'ES256' | 'RS256';
  readonly kid: string;

  constructor(keyPem: string, readonly issuer = DEFAULT_ISSUER, readonly apiAudiences: string[] = [issuer]) {
    this.priv = createPrivateKey(keyPem);
    this.pub = createPublicKey(this.priv);
    this.alg = this.priv.asymmetricKeyType === 'rsa' ? 'RS256' : 'ES256';
    // upstream's key id: base64url(sha256(DER SubjectPublicKeyInfo))
    this.kid = b64url(createHash('sha256').update(this.pub.export({ type: 'spki', format: 'der' })).digest());
  }

  sign(claims: ServiceAccountClaims): string {
    const head = b64url(JSON.stringify({ alg: this.alg, kid: this.kid }));
    const body = b64url(JSON.stringify(claims));
    const input = `${head}.${body}`;
    const sig = sign('sha256', Buffer.from(input), this.alg === 'ES256' ? { key: this.priv, dsaEncoding: 'ieee-p1363' } : this.priv);
    return `${input}.${b64url(sig)}`;
  }

  /** The claims of a token this signer made, or undefined when it is not one, expired, or for another audience. */
  verify(token: string, now = Date.now()): ServiceAccountClaims | undefined {
    const parts = token.split('.');
    if (parts.length !== 3) return undefined;
    let header: { alg?: string }; let claims: ServiceAccountClaims;
    try {
      header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as { alg?: string };
      if (header.alg !== this.alg) return undefined;
      const ok = verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), this.alg === 'ES256' ? { key: this.pub, dsaEncoding: 'ieee-p1363' } : this.pub, Buffer.from(parts[2]!, 'base64url'));
      if (!ok) return undefined;
      claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as ServiceAccountClaims;
    } catch { return undefined; }
    if (claims.iss !== this.issuer) return undefined;
    const secs = Math.floor(now / 1000);
    if (typeof claims.exp !== 'number' || secs >= claims.exp) return undefined;
    if (typeof claims.nbf === 'number' && secs + 60 < claims.nbf) return undefined; // 60 s clock-skew leeway
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud as unknown as string];
    if (!aud.some((a) => this.apiAudiences.includes(a))) return undefined;
    const k = claims['kubernetes.io'];
    if (!k?.namespace || !k.serviceaccount?.name) return undefined;
    return claims;
  }

  /** Issues a token for the service account, optionally bound to a pod. */
  issue(opts: { namespace: string; name: string; uid: string; audiences?: string[]; expirationSeconds?: number; pod?: { name: string; uid: string }; now?: number }): { token: string; exp: number } {
    const now = Math.floor((opts.now ?? Date.now()) / 1000);
    const exp = now + Math.max(opts.expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS, MIN_EXPIRATION_SECONDS);
    const claims: ServiceAccountClaims = {
      aud: opts.audiences?.length ? opts.audiences : this.apiAudiences,
      exp, iat: now, iss: this.issuer, jti: randomUUID(), nbf: now,
      sub: `system:serviceaccount:${opts.namespace}:${opts.name}`,
      'kubernetes.io': {
        namespace: opts.namespace,
        ...(opts.pod ? { pod: opts.pod } : {}),
        serviceaccount: { name: opts.name, uid: opts.uid },
      },
    };
    return { token: this.sign(claims), exp };
  }
}

/** The user a verified token authenticates as. */
export function userOf(claims: ServiceAccountClaims): UserInfo {
  const k = claims['kubernetes.io'];
  const extra: Record<string, string[]> = {};
  if (k.pod) { extra['authentication.kubernetes.io/pod-name'] = [k.pod.name]; extra['authentication.kubernetes.io/pod-uid'] = [k.pod.uid]; }
  extra['authentication.kubernetes.io/credential-id'] = [`JTI=${claims.jti}`];
  return {
    username: `system:serviceaccount:${k.namespace}:${k.serviceaccount.name}`,
    uid: k.serviceaccount.uid,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${k.namespace}`, 'system:authenticated'],
    extra,
  };
}

/**
 * A bearer-token check for the Authenticator: valid signature, not expired, an API audience, the
 * service account still present with the same uid and, for pod-bound tokens, the pod still present
 * with the same uid (read from the watch cache, synchronously).
 */
export function serviceAccountTokenAuthenticator(signer: TokenSigner, registry: Registry): (token: string) => UserInfo | undefined {
  const saDef = findResource('', 'v1', 'serviceaccounts')!;
  const podDef = findResource('', 'v1', 'pods')!;
  return (token) => {
    if (token.split('.').length !== 3) return undefined;
    const claims = signer.verify(token);
    if (!claims) return undefined;
    const k = claims['kubernetes.io'];
    const sa = registry.peek(saDef, k.namespace, k.serviceaccount.name);
    if (!sa || (k.serviceaccount.uid && sa.obj.metadata?.uid !== k.serviceaccount.uid) || sa.obj.metadata?.deletionTimestamp) return undefined;
    if (k.pod) {
      const pod = registry.peek(podDef, k.namespace, k.pod.name);
      if (!pod || pod.obj.metadata?.uid !== k.pod.uid || pod.obj.metadata?.deletionTimestamp) return undefined;
    }
    return userOf(claims);
  };
}

interface TokenRequestSpec { audiences?: string[]; expirationSeconds?: number; boundObjectRef?: { kind?: string; apiVersion?: string; name?: string; uid?: string } }

/** The `serviceaccounts/token` subresource handler (POST only). */
export function tokenRequestHandler(signer: TokenSigner, registry: Registry) {
  return async (req: IncomingMessage, res: ServerResponse, def: ResourceDef, info: RequestInfo, _user: UserInfo): Promise<void> => {
    if (req.method !== 'POST') throw errors.methodNotAllowed('the server does not allow this method on the requested resource');
    const ns = info.namespace ?? 'default';
    const name = info.name ?? '';
    const raw = await readBody(req);
    const body: KObject = raw.length ? decodeObject(raw, mediaType(req)) : { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest' };
    const sa = (await registry.get(def, ns, name)).obj; // 404 serviceaccounts "x" not found
    const spec = (body.spec ?? {}) as TokenRequestSpec;
    const exp = spec.expirationSeconds ?? DEFAULT_EXPIRATION_SECONDS;
    if (typeof exp !== 'number' || !Number.isInteger(exp) || exp < MIN_EXPIRATION_SECONDS || exp > 2 ** 32) {
      throw errors.invalid('TokenRequest', 'tokenrequests', name, [{ type: 'FieldValueInvalid', field: 'spec.expirationSeconds', message: `Invalid value: ${exp}: may not specify a duration less than 10 minutes` }], 'authentication.k8s.io');
    }
    let pod: { name: string; uid: string } | undefined;
    const ref = spec.boundObjectRef;
    if (ref?.name) {
      if (ref.kind !== 'Pod') throw new StatusError(400, 'BadRequest', `cannot bind token to object of type ${ref.kind ?? ''}`);
      const podDef = findResource('', 'v1', 'pods')!;
      const p = (await registry.get(podDef, ns, ref.name)).obj;
      if (ref.uid && ref.uid !== p.metadata?.uid) throw new StatusError(409, 'Conflict', `the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated`);
      pod = { name: ref.name, uid: p.metadata?.uid ?? '' };
    }
    const issued = signer.issue({ namespace: ns, name, uid: sa.metadata?.uid ?? '', audiences: spec.audiences, expirationSeconds: exp, pod });
    const out: KObject = {
      kind: 'TokenRequest', apiVersion: 'authentication.k8s.io/v1',
      metadata: { name, namespace: ns, creationTimestamp: null as unknown as string },
      spec: {
        audiences: spec.audiences?.length ? spec.audiences : signer.apiAudiences,
        expirationSeconds: exp,
        boundObjectRef: ref ? { kind: ref.kind, apiVersion: ref.apiVersion ?? 'v1', name: ref.name, uid: pod?.uid } : null,
      },
      status: { token: issued.token, expirationTimestamp: new Date(issued.exp * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') },
    };
    sendJson(res, 201, out);
  };
}
