// A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 at a
// random free port, with its data in a temporary directory, run directly (not through its init
// script, which would listen on :5000; runtime-notes §1.3).
//
//   auth: 'none'      plain HTTP, anonymous
//   auth: 'htpasswd'  Basic auth from an htpasswd file (bcrypt, made with `htpasswd -B` from
//                     apache2-utils)
//   auth: 'token'     Bearer tokens from a tiny token server here (JWT signed RS256 with a throwaway
//                     key whose self-signed certificate, made with openssl, is the registry's
//                     rootcertbundle); anonymous tokens carry no access, like a private Docker Hub repo
//
// Clients are meant to talk to `host`, a recording proxy in front of the registry, so tests can
// count requests (e.g. "IfNotPresent did not pull twice"). Pushes go straight to the registry
// (monolithic blob uploads: POST uploads/ then PUT <location>&digest=…, runtime-notes §1.3).
//
// Prerequisites: apt-get install docker-registry apache2-utils openssl. When `docker-registry` is
// missing it is fetched with `apt-get download` and unpacked (dpkg-deb -x) into a cache directory,
// so no service gets started; a missing `htpasswd` is installed with apt-get.
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, createSign, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FixtureImage, FixtureIndex } from '../../src/node/images/testing/fixtures.js';

export interface RecordedRequest { method: string; path: string; status: number; authorization?: string }

export interface TestRegistry {
  /** 127.0.0.1:<port> of the recording proxy: name images with it */
  host: string;
  /** 127.0.0.1:<port> of the registry itself */
  directHost: string;
  requests: RecordedRequest[];
  tokenRequests: { scope: string[]; user?: string }[];
  /** user → password (htpasswd and token modes) */
  users: Record<string, string>;
  pushImage(repo: string, tag: string, img: FixtureImage): Promise<void>;
  pushIndex(repo: string, tag: string, index: FixtureIndex, images: FixtureImage[]): Promise<void>;
  pushBlob(repo: string, digest: string, data: Buffer): Promise<void>;
  pushManifest(repo: string, ref: string, body: Buffer, mediaType: string): Promise<void>;
  /** flips a byte of a stored blob (or manifest) in the registry's storage, keeping its length */
  corrupt(digest: string, offset?: number): void;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  auth?: 'none' | 'htpasswd' | 'token';
  users?: Record<string, string>;
}

function sh(cmd: string, args: string[], opts: { cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.error?.message}`);
  return r.stdout;
}

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** The docker-registry binary: installed, or unpacked from the Debian package without installing it. */
export function registryBinary(): string {
  const installed = which('docker-registry');
  if (installed) return installed;
  const cache = join(tmpdir(), 'kyb-docker-registry-pkg');
  const bin = join(cache, 'usr', 'bin', 'docker-registry');
  if (existsSync(bin)) return bin;
  mkdirSync(cache, { recursive: true });
  sh('apt-get', ['download', 'docker-registry'], { cwd: cache });
  const deb = execFileSync('sh', ['-c', 'ls docker-registry_*.deb | head -1'], { cwd: cache, encoding: 'utf8' }).trim();
  sh('dpkg-deb', ['-x', deb, cache]);
  return bin;
}

function htpasswdBinary(): string {
  const h = which('htpasswd');
  if (h) return h;
  sh('apt-get', ['install', '-y', '-q', 'apache2-utils']);
  return which('htpasswd') ?? 'htpasswd';
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = http.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const users = opts.users ?? { alice: `pw-${randomBytes(4).toString('hex')}` };
  const bin = registryBinary();
  const dir = mkdtempSync(join(tmpdir(), 'kyb-registry-'));
  const servers: http.Server[] = [];
  let proc: ChildProcess | undefined;
  const cleanup = async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const p = proc;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const regPort = await freePort();
    const directHost = `127.0.0.1:${regPort}`;
    const service = 'kyb-test-registry';
    const issuer = 'kyb-test-issuer';
    const tokenRequests: { scope: string[]; user?: string }[] = [];
    let authYaml = '';
    let signingKey = '';
    let certDer = '';
    if (auth === 'htpasswd') {
      const hp = htpasswdBinary();
      const lines = Object.entries(users).map(([u, p]) => sh(hp, ['-nbB', u, p]).trim()).join('\n');
      writeFileSync(join(dir, 'htpasswd'), `${lines}\n`);
      authYaml = `auth:\n  htpasswd:\n    realm: kyb-test\n    path: ${join(dir, 'htpasswd')}\n`;
    }
    // mints a token for `access` (what the token server and the push path both use)
    const mint = (sub: string, access: { type: string; name: string; actions: string[] }[]) => {
      const now = Math.floor(Date.now() / 1000);
      const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [certDer] }));
      const claims = b64url(JSON.stringify({ iss: issuer, sub, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access }));
      const sig = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(signingKey);
      return `${header}.${claims}.${b64url(sig)}`;
    };
    if (auth === 'token') {
      sh('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'token.key'), '-out', join(dir, 'token.crt'), '-days', '1', '-subj', '/CN=kyb-test-token']);
      signingKey = readFileSync(join(dir, 'token.key'), 'utf8');
      const pem = readFileSync(join(dir, 'token.crt'), 'utf8');
      certDer = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
      const tokenServer = http.createServer((req, res) => {
        const u = new URL(req.url ?? '/', 'http://x');
        const scope = u.searchParams.getAll('scope');
        let user: string | undefined;
        const h = req.headers.authorization;
        if (h?.startsWith('Basic ')) {
          const [name, ...rest] = Buffer.from(h.slice(6), 'base64').toString().split(':');
          if (users[name] !== rest.join(':')) {
            tokenRequests.push({ scope, user: `${name} (bad password)` });
            res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"incorrect username or password"}');
            return;
          }
          user = name;
        }
        tokenRequests.push({ scope, user });
        // anonymous: a token without access, as for a private repository
        const access = user ? scope.map((s) => { const [type, name, actions] = s.split(':'); return { type, name, actions: actions.split(',') }; }) : [];
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: mint(user ?? '', access), expires_in: 300 }));
      });
      servers.push(tokenServer);
      const tokenPort = await listen(tokenServer);
      authYaml = `auth:\n  token:\n    realm: http://127.0.0.1:${tokenPort}/token\n    service: ${service}\n    issuer: ${issuer}\n    rootcertbundle: ${join(dir, 'token.crt')}\n`;
    }
    writeFileSync(join(dir, 'config.yml'), [
      'version: 0.1',
      'log:\n  level: warn\n  accesslog:\n    disabled: true',
      `storage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true`,
      `http:\n  addr: ${directHost}\n  secret: ${randomBytes(8).toString('hex')}`,
      authYaml,
    ].join('\n'));
    let log = '';
    proc = spawn(bin, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d) => { log += d; });
    proc.stderr!.on('data', (d) => { log += d; });
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`docker-registry exited (${proc.exitCode}): ${log}`);
      const ok = await fetch(`http://${directHost}/v2/`).then((r) => r.status === 200 || r.status === 401, () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`docker-registry did not come up on ${directHost}: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }

    // the recording proxy
    const requests: RecordedRequest[] = [];
    const proxy = http.createServer((req, res) => {
      const up = http.request({ host: '127.0.0.1', port: regPort, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        requests.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0], status: ur.statusCode ?? 0, authorization: req.headers.authorization?.split(' ')[0] });
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => { res.writeHead(502).end(); });
      req.pipe(up);
    });
    servers.push(proxy);
    const proxyPort = await listen(proxy);

    const pushAuth = (repo: string): Record<string, string> => {
      if (auth === 'htpasswd') {
        const [u, p] = Object.entries(users)[0];
        return { authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` };
      }
      if (auth === 'token') return { authorization: `Bearer ${mint('pusher', [{ type: 'repository', name: repo, actions: ['pull', 'push'] }])}` };
      return {};
    };
    const pushBlob = async (repo: string, digest: string, data: Buffer) => {
      const h = pushAuth(repo);
      const head = await fetch(`http://${directHost}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: h });
      if (head.status === 200) return;
      const start = await fetch(`http://${directHost}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: h });
      if (start.status !== 202) throw new Error(`upload start for ${repo}: ${start.status} ${await start.text()}`);
      const loc = new URL(start.headers.get('location')!, `http://${directHost}`);
      loc.searchParams.set('digest', digest);
      const put = await fetch(loc, { method: 'PUT', headers: { ...h, 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) });
      if (put.status !== 201) throw new Error(`upload of ${digest} to ${repo}: ${put.status} ${await put.text()}`);
    };
    const pushManifest = async (repo: string, ref: string, body: Buffer, mediaType: string) => {
      const r = await fetch(`http://${directHost}/v2/${repo}/manifests/${ref}`, { method: 'PUT', headers: { ...pushAuth(repo), 'content-type': mediaType }, body: new Uint8Array(body) });
      if (r.status !== 201) throw new Error(`manifest PUT ${repo}:${ref}: ${r.status} ${await r.text()}`);
    };
    const pushImageBlobs = async (repo: string, img: FixtureImage) => {
      await pushBlob(repo, img.configDigest, img.config);
      for (const l of img.layers) await pushBlob(repo, l.digest, l.blob);
    };
    return {
      host: `127.0.0.1:${proxyPort}`, directHost, requests, tokenRequests, users,
      pushBlob, pushManifest,
      async pushImage(repo, tag, img) {
        await pushImageBlobs(repo, img);
        await pushManifest(repo, tag, img.manifest, img.manifestMediaType);
      },
      async pushIndex(repo, tag, index, images) {
        for (const img of images) {
          await pushImageBlobs(repo, img);
          await pushManifest(repo, img.manifestDigest, img.manifest, img.manifestMediaType);
        }
        await pushManifest(repo, tag, index.body, index.mediaType);
      },
      corrupt(digest, offset) {
        const hex = digest.slice(7);
        const f = join(dir, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
        const b = readFileSync(f);
        const i = offset ?? Math.floor(b.length / 2);
        b[i] ^= 0x01;
        if (createHash('sha256').update(b).digest('hex') === hex) throw new Error('corruption did not change the digest');
        writeFileSync(f, b);
      },
      stop: cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
