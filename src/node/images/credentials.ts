// Registry credentials: which of the user's credentials apply to an image, and the parsing of
// `WWW-Authenticate` challenges.
//
// Credentials come from parsed `.dockerconfigjson` (`{"auths": {"<key>": {...}}}`) or legacy
// `.dockercfg` (`{"<key>": {...}}`) objects — the contents of imagePullSecrets — and from the
// `configs.<host>.auth` section of registries.yaml. An entry may hold `auth` (base64 of
// user:password), `username`/`password`, `identitytoken` (an OAuth2 refresh token) or
// `registrytoken` (a bearer token to use as is).
//
// Matching follows the kubelet's keyring: a key is `host[:port][/path]`, optionally with a scheme;
// `*` matches one DNS label; the port must be equal; the key's path must be a prefix of the
// repository path; Docker Hub's many names (`https://index.docker.io/v1/`, `index.docker.io`,
// `registry-1.docker.io`, `docker.io`) are one. More specific keys are tried first.

export interface RegistryCredential {
  username?: string;
  password?: string;
  identityToken?: string;
  registryToken?: string;
  /** where it came from, for messages (never the secret itself) */
  source: string;
}

const dockerHubAliases = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

export function canonicalRegistryHost(host: string): string {
  const h = host.toLowerCase();
  return dockerHubAliases.has(h) ? 'docker.io' : h;
}

function credentialFromEntry(v: unknown, source: string): RegistryCredential | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const e = v as Record<string, unknown>;
  const c: RegistryCredential = { source };
  if (typeof e.auth === 'string' && e.auth) {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i >= 0) {
      c.username = decoded.slice(0, i);
      c.password = decoded.slice(i + 1);
    }
  }
  if (typeof e.username === 'string' && e.username) c.username = e.username;
  if (typeof e.password === 'string' && e.password) c.password = e.password;
  if (typeof e.identitytoken === 'string' && e.identitytoken) c.identityToken = e.identitytoken;
  if (typeof e.identity_token === 'string' && e.identity_token) c.identityToken = e.identity_token;
  if (typeof e.registrytoken === 'string' && e.registrytoken) c.registryToken = e.registrytoken;
  if (typeof e.token === 'string' && e.token && !c.registryToken) c.registryToken = e.token;
  if (!c.username && !c.password && !c.identityToken && !c.registryToken) return undefined;
  return c;
}

interface ParsedKey { host: string; port: string; path: string }

function parseKey(key: string): ParsedKey | undefined {
  let k = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  if (!k) return undefined;
  const slash = k.indexOf('/');
  let hostport = slash >= 0 ? k.slice(0, slash) : k;
  let path = slash >= 0 ? k.slice(slash + 1) : '';
  path = path.replace(/\/+$/, '');
  let port = '';
  const m = /^(.*):(\d+)$/.exec(hostport);
  if (m && !hostport.endsWith(']')) {
    hostport = m[1];
    port = m[2];
  }
  const host = canonicalRegistryHost(hostport);
  if (host === 'docker.io' && (path === 'v1' || path === 'v2')) path = '';
  return { host, port, path };
}

function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.split('.');
  const h = host.split('.');
  if (p.length !== h.length) return false;
  return p.every((label, i) => label === '*' || label === h[i] || (label.includes('*') && new RegExp(`^${label.split('*').map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^.]*')}$`).test(h[i])));
}

/**
 * The credentials in `configs` (parsed dockerconfigjson/dockercfg objects) that apply to an image on
 * `registryHost` (host[:port]) with repository `repoPath`, most specific first.
 */
export function matchCredentials(configs: unknown[], registryHost: string, repoPath: string): RegistryCredential[] {
  const target = parseKey(registryHost);
  if (!target) return [];
  const found: { cred: RegistryCredential; specificity: [number, number, number] }[] = [];
  configs.forEach((cfg, ci) => {
    if (!cfg || typeof cfg !== 'object') return;
    const obj = cfg as Record<string, unknown>;
    const auths = obj.auths && typeof obj.auths === 'object' ? (obj.auths as Record<string, unknown>) : obj;
    for (const [key, entry] of Object.entries(auths)) {
      const k = parseKey(key);
      if (!k) continue;
      if (k.port !== target.port) continue;
      if (!hostMatches(k.host, target.host)) continue;
      if (k.path && !(repoPath === k.path || repoPath.startsWith(`${k.path}/`))) continue;
      const cred = credentialFromEntry(entry, `imagePullSecrets[${ci}] ${JSON.stringify(key)}`);
      if (cred) found.push({ cred, specificity: [k.host.includes('*') ? 0 : 1, k.path.length, -found.length] });
    }
  });
  found.sort((a, b) => b.specificity[0] - a.specificity[0] || b.specificity[1] - a.specificity[1] || b.specificity[2] - a.specificity[2]);
  return found.map((f) => f.cred);
}

/** A credential from registries.yaml `configs.<host>.auth`. */
export function credentialFromConfigAuth(auth: unknown, source: string): RegistryCredential | undefined {
  return credentialFromEntry(auth, source);
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `WWW-Authenticate` (RFC 7235): `Bearer realm="…",service="…",scope="…"`, `Basic realm="…"`. */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  if (!header) return [];
  const text = Array.isArray(header) ? header.join(', ') : header;
  const out: Challenge[] = [];
  let i = 0;
  const n = text.length;
  const skipWs = () => { while (i < n && /[\s,]/.test(text[i])) i++; };
  while (i < n) {
    skipWs();
    const m = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/.exec(text.slice(i));
    if (!m) break;
    const scheme = m[0];
    i += scheme.length;
    const ch: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(ch);
    for (;;) {
      const save = i;
      skipWs();
      const km = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*/.exec(text.slice(i));
      if (!km) { i = save; break; }
      i += km[0].length;
      let value = '';
      if (text[i] === '"') {
        i++;
        while (i < n && text[i] !== '"') {
          if (text[i] === '\\' && i + 1 < n) i++;
          value += text[i++];
        }
        i++;
      } else {
        const vm = /^[^\s,]*/.exec(text.slice(i))!;
        value = vm[0];
        i += value.length;
      }
      ch.params[km[1].toLowerCase()] = value;
    }
  }
  return out;
}

export function basicAuthHeader(c: RegistryCredential): string | undefined {
  if (c.username === undefined && c.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`).toString('base64')}`;
}
