import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { parse } from 'yaml';
import { renderKubeconfig, writeKubeconfig } from './kubeconfig.js';
import { ensurePki } from './pki.js';

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-kubeconfig-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const CA = '-----BEGIN CERTIFICATE-----\nQ0E=\n-----END CERTIFICATE-----\n';

test('renderKubeconfig writes the k3s shape with client certificate data', () => {
  const doc = parse(
    renderKubeconfig({ server: 'https://127.0.0.1:6443', caPem: CA, clientCertPem: 'CERT', clientKeyPem: 'KEY' }),
  );
  assert.deepEqual(doc, {
    apiVersion: 'v1',
    clusters: [{ cluster: { 'certificate-authority-data': b64(CA), server: 'https://127.0.0.1:6443' }, name: 'default' }],
    contexts: [{ context: { cluster: 'default', user: 'default' }, name: 'default' }],
    'current-context': 'default',
    kind: 'Config',
    preferences: {},
    users: [{ name: 'default', user: { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY') } }],
  });
});

test('renderKubeconfig with a token and a name', () => {
  const doc = parse(renderKubeconfig({ server: 'https://10.0.0.1:6443', caPem: CA, token: 'abc', name: 'lab' }));
  assert.equal(doc['current-context'], 'lab');
  assert.deepEqual(doc.contexts, [{ context: { cluster: 'lab', user: 'lab' }, name: 'lab' }]);
  assert.deepEqual(doc.users, [{ name: 'lab', user: { token: 'abc' } }]);
  assert.equal(doc.clusters[0].name, 'lab');
  assert.throws(() => renderKubeconfig({ server: 'https://x', caPem: CA, clientCertPem: 'CERT' }), /together/);
});

test('writeKubeconfig creates parent directories and sets the mode even on an existing file', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'a', 'b', 'kubeconfig.yaml');
  writeKubeconfig(path, 'one\n');
  assert.equal(readFileSync(path, 'utf8'), 'one\n');
  assert.equal(statSync(path).mode & 0o777, 0o600);

  const existing = join(dir, 'k3s.yaml');
  writeFileSync(existing, 'old contents that are longer\n', { mode: 0o644 });
  writeKubeconfig(existing, 'new\n');
  assert.equal(readFileSync(existing, 'utf8'), 'new\n');
  assert.equal(statSync(existing).mode & 0o777, 0o600);
  writeKubeconfig(existing, 'newer\n', 0o640);
  assert.equal(statSync(existing).mode & 0o777, 0o640);
});

// --- real kubectl (Go's TLS stack) against our certificates ---------------------------------------

const KUBECTL = '/usr/bin/kubectl';

test('kubectl accepts the certificates and authenticates with a token or the admin certificate', { skip: !existsSync(KUBECTL) && `${KUBECTL} not installed` }, async (t) => {
  const dir = tempDir(t);
  const pki = ensurePki(join(dir, 'data'), { hostnames: [], ips: [] });
  const seen: Array<{ authorization?: string; cn?: string; authorized: boolean }> = [];
  const server = createServer(
    { key: pki.serverKey, cert: pki.serverCert, ca: pki.clientCaCert, requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      const cn = socket.getPeerCertificate().subject?.CN;
      seen.push({ authorization: req.headers.authorization, cn: Array.isArray(cn) ? cn.join(',') : cn, authorized: socket.authorized });
      if (req.method === 'GET' && req.url?.split('?')[0] === '/version') {
        res.setHeader('Content-Type', 'application/json');
        res.end(JSON.stringify({ major: '1', minor: '32', gitVersion: 'v1.32.0-kyb' }));
      } else {
        res.statusCode = 404;
        res.end();
      }
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;

  const kubectl = (kubeconfig: string): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(
        KUBECTL,
        ['--kubeconfig', kubeconfig, 'version', '-o', 'json'],
        { env: { ...process.env, HOME: dir, KUBECACHEDIR: join(dir, 'cache') }, timeout: 20_000 },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });

  // Token, server addressed by IP.
  const tokenConfig = join(dir, 'token.yaml');
  writeKubeconfig(tokenConfig, renderKubeconfig({ server: `https://127.0.0.1:${port}`, caPem: pki.serverCaCert, token: 'secret-token' }));
  const r1 = await kubectl(tokenConfig);
  assert.equal(r1.code, 0, r1.stderr);
  assert.equal(JSON.parse(r1.stdout).serverVersion.gitVersion, 'v1.32.0-kyb');
  assert.ok(seen.length > 0);
  assert.ok(seen.every((s) => s.authorization === 'Bearer secret-token'), JSON.stringify(seen));

  // Client certificate, server addressed by name (checked against the DNS SANs).
  seen.length = 0;
  const certConfig = join(dir, 'cert.yaml');
  writeKubeconfig(
    certConfig,
    renderKubeconfig({ server: `https://localhost:${port}`, caPem: pki.serverCaCert, clientCertPem: pki.adminCert, clientKeyPem: pki.adminKey }),
  );
  const r2 = await kubectl(certConfig);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(JSON.parse(r2.stdout).serverVersion.gitVersion, 'v1.32.0-kyb');
  assert.ok(seen.length > 0);
  assert.ok(seen.every((s) => s.cn === 'system:admin' && s.authorized && s.authorization === undefined), JSON.stringify(seen));

  // A CA that did not sign the serving certificate: kubectl refuses the server.
  const other = ensurePki(join(dir, 'other'), { hostnames: [], ips: [] });
  const badConfig = join(dir, 'bad.yaml');
  writeKubeconfig(badConfig, renderKubeconfig({ server: `https://127.0.0.1:${port}`, caPem: other.serverCaCert, token: 'x' }));
  const r3 = await kubectl(badConfig);
  assert.notEqual(r3.code, 0);
  assert.match(r3.stderr, /certificate signed by unknown authority/);
});
