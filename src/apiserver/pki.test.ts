import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { ensurePki, ensureToken, ipBytes, type Pki } from './pki.js';

const DAY = 86_400_000;

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-pki-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const mode = (p: string): number => statSync(p).mode & 0o777;
const validity = (c: X509Certificate): { from: number; to: number } => ({ from: Date.parse(c.validFrom), to: Date.parse(c.validTo) });

test('ensurePki creates CAs, a serving certificate and an admin client certificate', (t) => {
  const dir = tempDir(t);
  const before = Date.now();
  const pki = ensurePki(dir, { hostnames: ['api.example.test', '192.0.2.7'], ips: ['198.51.100.9', 'fd00::10'] });

  const serverCa = new X509Certificate(pki.serverCaCert);
  const clientCa = new X509Certificate(pki.clientCaCert);
  const serving = new X509Certificate(pki.serverCert);
  const admin = new X509Certificate(pki.adminCert);

  assert.equal(serverCa.ca, true);
  assert.equal(clientCa.ca, true);
  assert.equal(serving.ca, false);
  assert.equal(admin.ca, false);
  assert.match(serverCa.subject, /^CN=kybernetes-server-ca@\d{10}$/);
  assert.match(clientCa.subject, /^CN=kybernetes-client-ca@\d{10}$/);
  assert.equal(serverCa.verify(serverCa.publicKey), true, 'server CA is self-signed');

  assert.equal(serving.subject, 'CN=kube-apiserver');
  assert.equal(serving.issuer, serverCa.subject);
  assert.equal(serving.verify(serverCa.publicKey), true);
  assert.equal(serving.verify(clientCa.publicKey), false);
  assert.equal(serving.checkIssued(serverCa), true);
  assert.deepEqual(serving.keyUsage, ['1.3.6.1.5.5.7.3.1']);
  const sans = serving.subjectAltName!.split(', ');
  for (const want of [
    'DNS:localhost',
    'DNS:kubernetes',
    'DNS:kubernetes.default',
    'DNS:kubernetes.default.svc',
    'DNS:kubernetes.default.svc.cluster.local',
    `DNS:${hostname().toLowerCase()}`,
    'DNS:api.example.test',
    'IP Address:127.0.0.1',
    'IP Address:10.43.0.1',
    'IP Address:192.0.2.7',
    'IP Address:198.51.100.9',
  ]) {
    assert.ok(sans.includes(want), `${want} in ${serving.subjectAltName}`);
  }
  assert.equal(serving.checkIP('::1'), '::1');
  assert.equal(serving.checkIP('fd00::10'), 'fd00::10');
  assert.equal(serving.checkIP('10.0.0.1'), undefined);
  assert.equal(serving.checkHost('api.example.test'), 'api.example.test');
  assert.equal(serving.checkHost('other.example.test'), undefined);

  assert.equal(admin.subject, 'O=system:masters\nCN=system:admin');
  assert.equal(admin.verify(clientCa.publicKey), true);
  assert.deepEqual(admin.keyUsage, ['1.3.6.1.5.5.7.3.2']);

  // Validity: CAs 10 years, leaves 1 year, starting (a few minutes before) now. Seconds precision.
  for (const [cert, days] of [[serverCa, 3650], [clientCa, 3650], [serving, 365], [admin, 365]] as const) {
    const v = validity(cert);
    assert.ok(v.from <= before && v.from > before - 10 * 60_000, `notBefore ${cert.validFrom}`);
    assert.ok(Math.abs(v.to - (before + days * DAY)) < 60_000, `notAfter ${cert.validTo} for ${days} days`);
  }

  // Keys match their certificates.
  assert.equal(serving.checkPrivateKey(createPrivateKey(pki.serverKey)), true);
  assert.equal(admin.checkPrivateKey(createPrivateKey(pki.adminKey)), true);
  assert.equal(serverCa.checkPrivateKey(createPrivateKey(pki.serverCaKey)), true);
  assert.equal(clientCa.checkPrivateKey(createPrivateKey(pki.clientCaKey)), true);

  // Files and modes.
  const tls = join(dir, 'tls');
  assert.equal(mode(tls), 0o700);
  for (const base of ['server-ca', 'client-ca', 'serving-kube-apiserver', 'client-admin']) {
    assert.equal(mode(join(tls, `${base}.key`)), 0o600, base);
    assert.equal(mode(join(tls, `${base}.crt`)), 0o644, base);
  }
  assert.equal(readFileSync(join(tls, 'serving-kube-apiserver.crt'), 'utf8'), pki.serverCert);
});

test('issueClientCert signs with the client CA', (t) => {
  const pki = ensurePki(tempDir(t), { hostnames: [], ips: [] });
  const { cert, key } = pki.issueClientCert('system:node:worker-1', ['system:nodes']);
  const c = new X509Certificate(cert);
  assert.equal(c.subject, 'O=system:nodes\nCN=system:node:worker-1');
  assert.equal(c.verify(new X509Certificate(pki.clientCaCert).publicKey), true);
  assert.equal(c.checkPrivateKey(createPrivateKey(key)), true);
});

test('ensurePki loads existing files instead of regenerating them', (t) => {
  const dir = tempDir(t);
  const first = ensurePki(dir, { hostnames: ['a.example.test'], ips: [] });
  const second = ensurePki(dir, { hostnames: ['a.example.test'], ips: [] });
  for (const k of ['serverCaCert', 'serverCaKey', 'clientCaCert', 'clientCaKey', 'serverCert', 'serverKey', 'adminCert', 'adminKey'] as const) {
    assert.equal(second[k], first[k], k);
  }
  // A subset of names already covered does not re-issue either.
  assert.equal(ensurePki(dir, { hostnames: [], ips: ['127.0.0.1'] }).serverCert, first.serverCert);
});

test('a missing SAN re-issues the serving certificate and keeps the CAs and the admin certificate', (t) => {
  const dir = tempDir(t);
  const first = ensurePki(dir, { hostnames: [], ips: [] });
  const second = ensurePki(dir, { hostnames: ['new.example.test'], ips: ['203.0.113.4'] });
  assert.notEqual(second.serverCert, first.serverCert);
  assert.notEqual(second.serverKey, first.serverKey);
  assert.equal(second.serverCaCert, first.serverCaCert);
  assert.equal(second.clientCaCert, first.clientCaCert);
  assert.equal(second.adminCert, first.adminCert);
  const serving = new X509Certificate(second.serverCert);
  assert.equal(serving.checkHost('new.example.test'), 'new.example.test');
  assert.equal(serving.checkIP('203.0.113.4'), '203.0.113.4');
  assert.equal(serving.verify(new X509Certificate(first.serverCaCert).publicKey), true);
});

test('leaf certificates within 90 days of expiry are re-issued; CAs are kept', (t) => {
  const dir = tempDir(t);
  const real = Date.now();
  const old = ensurePki(dir, { hostnames: [], ips: [], now: () => real - 300 * DAY }); // 65 days left
  const renewed = ensurePki(dir, { hostnames: [], ips: [] });
  assert.equal(renewed.serverCaCert, old.serverCaCert);
  assert.equal(renewed.clientCaCert, old.clientCaCert);
  assert.notEqual(renewed.serverCert, old.serverCert);
  assert.notEqual(renewed.adminCert, old.adminCert);
  assert.ok(Math.abs(validity(new X509Certificate(renewed.adminCert)).to - (real + 365 * DAY)) < 60_000);

  // 100 days left: kept.
  const dir2 = tempDir(t);
  const young = ensurePki(dir2, { hostnames: [], ips: [], now: () => real - 265 * DAY });
  assert.equal(ensurePki(dir2, { hostnames: [], ips: [] }).serverCert, young.serverCert);
});

test('corrupt or foreign files are replaced', (t) => {
  const dir = tempDir(t);
  const first = ensurePki(dir, { hostnames: [], ips: [] });
  // A key that does not belong to the admin certificate.
  const stray = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'sec1', format: 'pem' });
  writeFileSync(join(dir, 'tls', 'client-admin.key'), stray);
  writeFileSync(join(dir, 'tls', 'serving-kube-apiserver.crt'), 'not a certificate');
  const second = ensurePki(dir, { hostnames: [], ips: [] });
  assert.equal(second.serverCaCert, first.serverCaCert);
  assert.notEqual(second.adminCert, first.adminCert);
  assert.equal(new X509Certificate(second.adminCert).checkPrivateKey(createPrivateKey(second.adminKey)), true);
  assert.equal(new X509Certificate(second.serverCert).verify(new X509Certificate(first.serverCaCert).publicKey), true);

  // A new server CA re-issues the serving certificate it signed.
  rmSync(join(dir, 'tls', 'server-ca.crt'));
  const third = ensurePki(dir, { hostnames: [], ips: [] });
  assert.notEqual(third.serverCaCert, second.serverCaCert);
  assert.equal(third.clientCaCert, second.clientCaCert);
  assert.equal(third.adminCert, second.adminCert);
  assert.equal(new X509Certificate(third.serverCert).verify(new X509Certificate(third.serverCaCert).publicKey), true);
});

test('invalid SAN input is rejected with the offending value', (t) => {
  const dir = tempDir(t);
  assert.throws(() => ensurePki(dir, { hostnames: [], ips: ['not-an-ip'] }), /"not-an-ip"/);
  assert.throws(() => ensurePki(dir, { hostnames: ['bad host'], ips: [] }), /"bad host"/);
});

test('ipBytes encodes IPv4 and IPv6 forms', () => {
  assert.equal(ipBytes('10.43.0.1').toString('hex'), '0a2b0001');
  assert.equal(ipBytes('::1').toString('hex'), '00000000000000000000000000000001');
  assert.equal(ipBytes('1::').toString('hex'), '00010000000000000000000000000000');
  assert.equal(ipBytes('fe80::1:2').toString('hex'), 'fe800000000000000000000000010002');
  assert.equal(ipBytes('::ffff:1.2.3.4').toString('hex'), '00000000000000000000ffff01020304');
  assert.equal(ipBytes('1:2:3:4:5:6:7:8').toString('hex'), '00010002000300040005000600070008');
});

test('ensureToken keeps a random token, and a given one replaces it', (t) => {
  const dir = tempDir(t);
  const token = ensureToken(dir);
  assert.match(token, /^[0-9a-f]{64}$/);
  assert.equal(mode(join(dir, 'token')), 0o600);
  assert.equal(ensureToken(dir), token);
  assert.notEqual(ensureToken(tempDir(t)), token);
  assert.equal(ensureToken(dir, 'chosen-secret'), 'chosen-secret');
  assert.equal(ensureToken(dir), 'chosen-secret');
  assert.equal(readFileSync(join(dir, 'token'), 'utf8').trim(), 'chosen-secret');
  assert.equal(mode(join(dir, 'token')), 0o600);
  assert.throws(() => ensureToken(dir, ''), /non-empty/);
});

// --- a real TLS handshake with Node's own TLS stack ---------------------------------------------

interface Seen {
  cn?: string;
  authorized?: boolean;
}

async function startServer(t: { after(fn: () => Promise<void> | void): void }, pki: Pki): Promise<{ port: number; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server: Server = createServer(
    { key: pki.serverKey, cert: pki.serverCert, ca: pki.clientCaCert, requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      const cn = socket.getPeerCertificate().subject?.CN;
      seen.push({ cn: Array.isArray(cn) ? cn.join(',') : cn, authorized: socket.authorized });
      res.end('ok');
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, seen };
}

function get(opts: { host: string; port: number; ca: string; cert?: string; key?: string; servername?: string; family?: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: opts.host, family: opts.family, port: opts.port, path: '/', ca: opts.ca, cert: opts.cert, key: opts.key, servername: opts.servername, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('TLS handshake: the server certificate verifies and the admin client certificate authenticates', async (t) => {
  const pki = ensurePki(tempDir(t), { hostnames: [], ips: [] });
  const { port, seen } = await startServer(t, pki);

  // By IP (127.0.0.1 is an IP SAN), with the admin client certificate.
  assert.equal(await get({ host: '127.0.0.1', port, ca: pki.serverCaCert, cert: pki.adminCert, key: pki.adminKey }), 'ok');
  assert.deepEqual(seen.at(-1), { cn: 'system:admin', authorized: true });

  // By name: `localhost` is checked against the DNS SANs (IPv4, where the server listens).
  assert.equal(await get({ host: 'localhost', family: 4, port, ca: pki.serverCaCert, cert: pki.adminCert, key: pki.adminKey }), 'ok');
  await assert.rejects(get({ host: '127.0.0.1', servername: 'not-in-the-cert.example', port, ca: pki.serverCaCert }), {
    code: 'ERR_TLS_CERT_ALTNAME_INVALID',
  });

  // A client trusting a different CA refuses the server.
  const other = ensurePki(tempDir(t), { hostnames: [], ips: [] });
  await assert.rejects(get({ host: '127.0.0.1', port, ca: other.serverCaCert }));

  // A client certificate from another CA is presented but not authorized.
  assert.equal(await get({ host: '127.0.0.1', port, ca: pki.serverCaCert, cert: other.adminCert, key: other.adminKey }), 'ok');
  assert.deepEqual(seen.at(-1), { cn: 'system:admin', authorized: false });
});

test('the service IP, the cluster domain and the advertise address are SANs; an older data dir gets a new serving certificate from the same CA', (t) => {
  const dir = tempDir(t);
  const old = ensurePki(dir, { hostnames: [], ips: [] });
  const now = ensurePki(dir, { hostnames: [], ips: ['192.0.2.44'], serviceIP: '10.99.0.1', clusterDomain: 'corp.example.' });
  assert.notEqual(now.serverCert, old.serverCert, 'the serving certificate is re-issued');
  assert.equal(now.serverCaCert, old.serverCaCert, 'the CA is kept');
  assert.equal(now.serverCaKey, old.serverCaKey);
  assert.equal(now.adminCert, old.adminCert);
  const serving = new X509Certificate(now.serverCert);
  for (const ip of ['10.99.0.1', '192.0.2.44', '10.43.0.1', '127.0.0.1']) assert.equal(serving.checkIP(ip), ip, ip);
  for (const name of ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.corp.example', 'kubernetes.default.svc.cluster.local']) {
    assert.equal(serving.checkHost(name, { subject: 'never' }), name, name);
  }
  assert.equal(serving.verify(new X509Certificate(old.serverCaCert).publicKey), true);
  // the same wishes again: nothing new
  assert.equal(ensurePki(dir, { hostnames: [], ips: ['192.0.2.44'], serviceIP: '10.99.0.1', clusterDomain: 'corp.example' }).serverCert, now.serverCert);
  assert.throws(() => ensurePki(dir, { hostnames: [], ips: [], clusterDomain: 'bad domain' }), /cluster domain/);
  assert.throws(() => ensurePki(dir, { hostnames: [], ips: [], serviceIP: '10.99.0' }), /service IP/);
});
