// The registries configuration file, in k3s's registries.yaml shape:
//
//   mirrors:
//     docker.io:
//       endpoint: ["http://127.0.0.1:5000", "https://mirror.example.com"]
//       rewrite: {"^library/(.*)": "mirrored/$1"}      # optional, applied to the repository path
//     "*":                                             # any registry without its own entry
//       endpoint: ["https://cache.example.com"]
//   configs:
//     "127.0.0.1:5000":                                # keyed by endpoint (or registry) host[:port]
//       auth: {username: u, password: p}               # or auth: base64(u:p), identity_token, token
//       tls: {insecure_skip_verify: true, ca_file: /x.pem, cert_file: /c.pem, key_file: /k.pem}
//
// As in k3s, a registry's mirrors are tried in order and the registry itself last. An endpoint
// without a scheme is HTTPS; one on 127.0.0.1/localhost/[::1] (and the default endpoint of such a
// registry) falls back to plain HTTP when HTTPS fails, as containerd does for local registries.
// Docker Hub's own endpoint is https://registry-1.docker.io.
import { readFileSync, statSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { credentialFromConfigAuth, type RegistryCredential } from './credentials.js';
import type { TlsSettings } from './http.js';
import type { ImageRef } from './reference.js';

export interface MirrorConfig { endpoint: string[]; rewrite?: Record<string, string> }
export interface RegistryHostConfig {
  auth?: Record<string, unknown>;
  tls?: { insecure_skip_verify?: boolean; ca_file?: string; cert_file?: string; key_file?: string };
}
export interface RegistriesConfig {
  mirrors: Record<string, MirrorConfig>;
  configs: Record<string, RegistryHostConfig>;
}

export interface Endpoint {
  /** base URL ending in '/v2/' */
  base: URL;
  /** host[:port] of the endpoint */
  host: string;
  /** repository path to use at this endpoint (after rewrites) */
  repo: string;
  tls?: TlsSettings;
  /** try http:// when https:// fails at the network level */
  plainHttpFallback: boolean;
  /** credential from registries.yaml for this endpoint, if any */
  auth?: RegistryCredential;
  mirror: boolean;
}

export class RegistriesConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistriesConfigError';
  }
}

export function emptyRegistriesConfig(): RegistriesConfig {
  return { mirrors: {}, configs: {} };
}

/** Parses registries.yaml text; throws RegistriesConfigError naming the bad field. */
export function parseRegistriesConfig(text: string, source = 'registries.yaml'): RegistriesConfig {
  let doc: any;
  try {
    doc = parseYaml(text) ?? {};
  } catch (e) {
    throw new RegistriesConfigError(`${source}: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new RegistriesConfigError(`${source}: expected a mapping at the top level`);
  const out = emptyRegistriesConfig();
  for (const [host, m] of Object.entries((doc.mirrors ?? {}) as Record<string, any>)) {
    const ep = m?.endpoint ?? m?.endpoints;
    if (!Array.isArray(ep) || !ep.every((x) => typeof x === 'string')) {
      throw new RegistriesConfigError(`${source}: mirrors.${host}.endpoint must be a list of URLs`);
    }
    const rewrite = m.rewrite && typeof m.rewrite === 'object' ? m.rewrite as Record<string, string> : undefined;
    for (const re of Object.keys(rewrite ?? {})) {
      try {
        new RegExp(re);
      } catch {
        throw new RegistriesConfigError(`${source}: mirrors.${host}.rewrite: invalid regular expression ${JSON.stringify(re)}`);
      }
    }
    out.mirrors[host] = { endpoint: ep, rewrite };
  }
  for (const [host, c] of Object.entries((doc.configs ?? {}) as Record<string, any>)) {
    if (c !== null && typeof c !== 'object') throw new RegistriesConfigError(`${source}: configs.${host} must be a mapping`);
    out.configs[host] = { auth: c?.auth ?? undefined, tls: c?.tls ?? undefined };
  }
  return out;
}

/** Reads the file, re-reading only when its mtime/size change; a missing file is an empty config. */
export class RegistriesConfigFile {
  private cached: { key: string; cfg: RegistriesConfig } | undefined;
  constructor(readonly path?: string) {}

  get(): RegistriesConfig {
    if (!this.path) return emptyRegistriesConfig();
    let key: string;
    try {
      const st = statSync(this.path);
      key = `${st.mtimeMs}:${st.size}`;
    } catch {
      return emptyRegistriesConfig();
    }
    if (this.cached?.key !== key) this.cached = { key, cfg: parseRegistriesConfig(readFileSync(this.path, 'utf8'), this.path) };
    return this.cached.cfg;
  }
}

export function isLoopbackHost(hostport: string): boolean {
  const h = hostport.replace(/:\d+$/, '').toLowerCase();
  return h === 'localhost' || h === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function tlsFor(cfg: RegistryHostConfig | undefined): TlsSettings | undefined {
  const t = cfg?.tls;
  if (!t) return undefined;
  const read = (f: string | undefined, what: string) => {
    if (!f) return undefined;
    try {
      return readFileSync(f);
    } catch (e) {
      throw new RegistriesConfigError(`registries config: cannot read ${what} ${f}: ${(e as Error).message}`);
    }
  };
  return { insecureSkipVerify: !!t.insecure_skip_verify, ca: read(t.ca_file, 'ca_file'), cert: read(t.cert_file, 'cert_file'), key: read(t.key_file, 'key_file') };
}

function baseUrl(endpoint: string): { base: URL; explicitScheme: boolean } {
  const explicitScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint);
  const u = new URL(explicitScheme ? endpoint : `https://${endpoint}`);
  let p = u.pathname.replace(/\/+$/, '');
  if (!p.endsWith('/v2')) p += '/v2';
  u.pathname = `${p}/`;
  u.search = '';
  u.hash = '';
  return { base: u, explicitScheme };
}

function rewriteRepo(repo: string, rewrite: Record<string, string> | undefined): string {
  for (const [re, repl] of Object.entries(rewrite ?? {})) {
    const r = new RegExp(re);
    if (r.test(repo)) return repo.replace(r, repl);
  }
  return repo;
}

/** The endpoints to try, in order, for an image on `ref.domain`. */
export function endpointsFor(cfg: RegistriesConfig, ref: ImageRef): Endpoint[] {
  const out: Endpoint[] = [];
  const mirror = cfg.mirrors[ref.domain] ?? cfg.mirrors['*'];
  const make = (endpoint: string, repo: string, isMirror: boolean, extraConfigKeys: string[]): Endpoint => {
    const { base, explicitScheme } = baseUrl(endpoint);
    const host = base.host;
    const hc = cfg.configs[host] ?? extraConfigKeys.map((k) => cfg.configs[k]).find(Boolean);
    const auth = hc?.auth ? credentialFromConfigAuth(hc.auth, `registries config "${host}"`) : undefined;
    return {
      base, host, repo, tls: tlsFor(hc), auth, mirror: isMirror,
      plainHttpFallback: base.protocol === 'https:' && !explicitScheme && isLoopbackHost(host),
    };
  };
  for (const e of mirror?.endpoint ?? []) out.push(make(e, rewriteRepo(ref.path, mirror?.rewrite), true, []));
  const defaultEndpoint = ref.domain === 'docker.io' ? 'registry-1.docker.io' : ref.domain;
  const ep = make(defaultEndpoint, ref.path, false, [ref.domain]);
  // an explicit mirror entry for the registry itself (e.g. "myreg:5000": ["http://myreg:5000"])
  // already covers the default endpoint
  if (!out.some((e) => e.host === ep.host)) out.push(ep);
  return out;
}
