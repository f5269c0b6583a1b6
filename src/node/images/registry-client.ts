// A client for one repository at one registry endpoint, speaking the OCI distribution API
// (GET/HEAD /v2/<repo>/manifests/<ref>, GET /v2/<repo>/blobs/<digest>).
//
// Authentication is lazy, as containerd does it: a request goes out with whatever worked last;
// on 401 the `WWW-Authenticate` challenge decides: `Bearer realm,service,scope` → a token from the
// realm (anonymously or with Basic credentials; an identity token is exchanged with an OAuth2
// refresh_token POST), `Basic` → the credentials themselves. Candidate credentials (pull secrets
// first, then registries.yaml, then anonymous) are tried in order until one is accepted.
//
// Manifests are read whole (at most 4 MiB) and verified against the digest asked for, or against
// the registry's Docker-Content-Digest when asked by tag. Blobs are returned as streams; the
// caller verifies them while storing (see blob-store.ts).
import type { Readable } from 'node:stream';
import { basicAuthHeader, parseChallenges, type Challenge, type RegistryCredential } from './credentials.js';
import { httpRequest, readBody, readErrorText, TransportError, type HttpResponse } from './http.js';
import { MANIFEST_ACCEPT, parseManifest, sha256Digest, type Descriptor, type ImageIndex, type ImageManifest } from './manifest.js';
import type { Endpoint } from './registries-config.js';

export type RegistryErrorKind = 'notFound' | 'unauthorized' | 'transport' | 'integrity' | 'protocol';

export class RegistryError extends Error {
  constructor(message: string, readonly kind: RegistryErrorKind, readonly status?: number) {
    super(message);
    this.name = 'RegistryError';
  }
}

export interface FetchedManifest {
  digest: string;
  mediaType: string;
  body: Buffer;
  parsed: ImageManifest | ImageIndex;
}

const MAX_MANIFEST = 4 << 20;

/** Hosts (host:port) found to speak plain HTTP after an HTTPS attempt failed. */
const plainHttpHosts = new Set<string>();

function errorsSummary(text: string): string {
  try {
    const j = JSON.parse(text);
    const e = Array.isArray(j?.errors) ? j.errors[0] : undefined;
    if (e) return `${String(e.code ?? '').toLowerCase()}${e.message ? `: ${e.message}` : ''}`;
  } catch { /* not JSON */ }
  return text.trim().slice(0, 200);
}

export class RepositorySession {
  private authHeader: string | undefined;
  private readonly candidates: (RegistryCredential | undefined)[];
  /** the credential that was accepted, for messages */
  usedCredential: RegistryCredential | undefined;

  constructor(readonly endpoint: Endpoint, credentials: RegistryCredential[]) {
    const c: (RegistryCredential | undefined)[] = [...credentials];
    if (endpoint.auth) c.push(endpoint.auth);
    c.push(undefined);
    this.candidates = c;
    if (endpoint.plainHttpFallback && plainHttpHosts.has(endpoint.host)) this.usePlainHttp();
  }

  get repo(): string {
    return this.endpoint.repo;
  }

  /** A URL for messages: scheme://host/v2/<repo>/<path>. */
  url(path: string): URL {
    return new URL(`${this.endpoint.repo}/${path}`, this.endpoint.base);
  }

  private usePlainHttp(): void {
    const b = new URL(this.endpoint.base.toString());
    b.protocol = 'http:';
    this.endpoint.base = b;
    this.endpoint.plainHttpFallback = false;
  }

  private async send(method: string, path: string, headers: Record<string, string>): Promise<HttpResponse> {
    const fail = (e: unknown) => new RegistryError(`failed to do request: ${method} "${this.url(path)}": ${(e as Error).message}`, 'transport');
    try {
      return await httpRequest(this.url(path), { method, headers, tls: this.endpoint.tls });
    } catch (e) {
      if (!(e instanceof TransportError) || !this.endpoint.plainHttpFallback) throw fail(e);
      this.usePlainHttp();
      try {
        const r = await httpRequest(this.url(path), { method, headers, tls: this.endpoint.tls });
        plainHttpHosts.add(this.endpoint.host);
        return r;
      } catch (e2) {
        throw fail(e2);
      }
    }
  }

  /** One request with authentication handled (see the file comment). */
  async request(method: string, path: string, headers: Record<string, string> = {}): Promise<HttpResponse> {
    const h = { ...headers };
    if (this.authHeader) h.authorization = this.authHeader;
    let res = await this.send(method, path, h);
    if (res.status !== 401) return res;
    const challenges = parseChallenges(res.headers['www-authenticate']);
    let lastText = await readErrorText(res.body);
    let last: RegistryError | undefined;
    for (const cred of this.candidates) {
      let auth: string | undefined;
      try {
        auth = await this.authorize(challenges, cred);
      } catch (e) {
        // what went wrong with the user's credentials says more than the anonymous attempt after them
        if (!last || cred) last = e instanceof RegistryError ? e : new RegistryError((e as Error).message, 'unauthorized');
        continue;
      }
      if (!auth || auth === this.authHeader) continue;
      res = await this.send(method, path, { ...headers, authorization: auth });
      if (res.status !== 401 && res.status !== 403) {
        this.authHeader = auth;
        this.usedCredential = cred;
        return res;
      }
      lastText = await readErrorText(res.body);
      if (last && !cred) continue;
      const ch = parseChallenges(res.headers['www-authenticate']).find((c) => c.scheme === 'bearer');
      const bearer = challenges.some((c) => c.scheme === 'bearer');
      last = new RegistryError(
        bearer
          ? `pull access denied, repository does not exist or may require authorization: server message: ${ch?.params.error || errorsSummary(lastText) || 'authorization failed'}${cred ? ` (with credentials from ${cred.source})` : ''}`
          : `unexpected status from ${method} request to ${this.url(path)}: ${res.status} ${res.statusText}${cred ? ` (with credentials from ${cred.source})` : ''}`,
        'unauthorized', res.status,
      );
    }
    throw last ?? new RegistryError(
      challenges.length
        ? `unexpected status from ${method} request to ${this.url(path)}: 401 Unauthorized (no credentials for ${this.endpoint.host}${lastText ? `; ${errorsSummary(lastText)}` : ''})`
        : `unexpected status from ${method} request to ${this.url(path)}: 401 Unauthorized (no WWW-Authenticate challenge)`,
      'unauthorized', 401,
    );
  }

  private async authorize(challenges: Challenge[], cred: RegistryCredential | undefined): Promise<string | undefined> {
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      if (cred?.registryToken) return `Bearer ${cred.registryToken}`;
      return `Bearer ${await this.fetchToken(bearer.params, cred)}`;
    }
    if (challenges.some((c) => c.scheme === 'basic') && cred) return basicAuthHeader(cred);
    return undefined;
  }

  private async fetchToken(params: Record<string, string>, cred: RegistryCredential | undefined): Promise<string> {
    if (!params.realm) throw new RegistryError('failed to authorize: bearer challenge without realm', 'unauthorized');
    const realm = new URL(params.realm, this.endpoint.base);
    const scope = params.scope ?? `repository:${this.endpoint.repo}:pull`;
    const tls = realm.host === this.endpoint.base.host ? this.endpoint.tls : undefined;
    const who = cred ? '' : 'anonymous ';
    let res: HttpResponse;
    let method = 'GET';
    try {
      if (cred?.identityToken) {
        method = 'POST';
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken, service: params.service ?? '', scope, client_id: 'kybernetes' });
        res = await httpRequest(realm, { method, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString(), tls });
      } else {
        const u = new URL(realm);
        if (params.service) u.searchParams.set('service', params.service);
        for (const s of scope.split(' ')) if (s) u.searchParams.append('scope', s);
        const headers: Record<string, string> = {};
        const basic = cred ? basicAuthHeader(cred) : undefined;
        if (basic) headers.authorization = basic;
        res = await httpRequest(u, { headers, tls });
      }
    } catch (e) {
      throw new RegistryError(`failed to authorize: failed to fetch ${who}token: ${method} "${realm}": ${(e as Error).message}`, 'transport');
    }
    if (res.status !== 200) {
      const text = await readErrorText(res.body);
      throw new RegistryError(
        `failed to authorize: failed to fetch ${who}token: unexpected status from ${method} request to ${realm.origin}${realm.pathname}: ${res.status} ${res.statusText}${text ? ` (${errorsSummary(text)})` : ''}`,
        'unauthorized', res.status,
      );
    }
    let j: any;
    try {
      j = JSON.parse((await readBody(res.body, 1 << 20)).toString('utf8'));
    } catch {
      throw new RegistryError('failed to authorize: token response is not JSON', 'protocol');
    }
    const token = j?.token ?? j?.access_token;
    if (typeof token !== 'string' || !token) throw new RegistryError('failed to authorize: token response has no token', 'protocol');
    return token;
  }

  private async unexpected(res: HttpResponse, method: string, path: string): Promise<RegistryError> {
    const text = await readErrorText(res.body);
    return new RegistryError(`unexpected status from ${method} request to ${this.url(path)}: ${res.status} ${res.statusText}${text ? ` (${errorsSummary(text)})` : ''}`, 'protocol', res.status);
  }

  /** HEAD a manifest: its digest if the registry says it (undefined if the registry does not tell). */
  async headManifest(reference: string): Promise<{ digest?: string; mediaType?: string }> {
    const path = `manifests/${reference}`;
    const res = await this.request('HEAD', path, { accept: MANIFEST_ACCEPT });
    res.body.resume();
    if (res.status === 404) throw new RegistryError('not found', 'notFound', 404);
    if (res.status === 405 || res.status === 501) return {};
    if (res.status !== 200) throw await this.unexpected(res, 'HEAD', path);
    const d = res.headers['docker-content-digest'];
    return { digest: typeof d === 'string' && /^sha256:[a-f0-9]{64}$/.test(d) ? d : undefined, mediaType: res.headers['content-type'] };
  }

  /** GET a manifest or index by tag or digest, verified. */
  async getManifest(reference: string, expected?: Descriptor): Promise<FetchedManifest> {
    const path = `manifests/${reference}`;
    const res = await this.request('GET', path, { accept: MANIFEST_ACCEPT });
    if (res.status === 404) {
      await readErrorText(res.body);
      throw new RegistryError('not found', 'notFound', 404);
    }
    if (res.status !== 200) throw await this.unexpected(res, 'GET', path);
    const body = await readBody(res.body, MAX_MANIFEST).catch((e) => {
      throw new RegistryError(`manifest ${reference}: ${(e as Error).message}`, 'protocol');
    });
    const digest = sha256Digest(body);
    const want = expected?.digest ?? (reference.startsWith('sha256:') ? reference : undefined);
    if (want && digest !== want) {
      throw new RegistryError(`manifest ${want}: digest mismatch: content has digest ${digest}`, 'integrity');
    }
    const header = res.headers['docker-content-digest'];
    if (typeof header === 'string' && header.startsWith('sha256:') && header !== digest) {
      throw new RegistryError(`manifest ${reference}: digest mismatch: registry says ${header}, content has digest ${digest}`, 'integrity');
    }
    if (expected && expected.size >= 0 && body.length !== expected.size) {
      throw new RegistryError(`manifest ${digest}: size ${body.length} does not match descriptor size ${expected.size}`, 'integrity');
    }
    let parsed;
    try {
      parsed = parseManifest(body, expected?.mediaType || res.headers['content-type']);
    } catch (e) {
      throw new RegistryError(`manifest ${digest}: ${(e as Error).message}`, 'protocol');
    }
    return { digest, mediaType: parsed.mediaType, body, parsed };
  }

  /** GET a blob; the caller verifies the stream. */
  async getBlob(d: Descriptor): Promise<Readable> {
    const path = `blobs/${d.digest}`;
    const res = await this.request('GET', path);
    if (res.status === 404) {
      await readErrorText(res.body);
      throw new RegistryError(`blob ${d.digest} not found`, 'notFound', 404);
    }
    if (res.status !== 200) throw await this.unexpected(res, 'GET', path);
    return res.body;
  }
}
