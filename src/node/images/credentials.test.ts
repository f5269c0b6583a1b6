// Which pull-secret credentials apply to which image, challenge parsing, and registries.yaml
// endpoints (mirrors, rewrites, HTTP fallback for local registries).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchCredentials, parseChallenges } from './credentials.js';
import { endpointsFor, parseRegistriesConfig, RegistriesConfigError } from './registries-config.js';
import { parseImageRef } from './reference.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

test('dockerconfigjson credentials are matched by registry host, port and path prefix', () => {
  const secrets = [
    { auths: { '127.0.0.1:5000': { auth: b64('alice:pw1') } } },
    { auths: { 'https://index.docker.io/v1/': { username: 'hub', password: 'hubpw' } } },
    { auths: { 'registry.example.com/team': { auth: b64('team:tpw') }, 'registry.example.com': { auth: b64('any:apw') } } },
    { '*.corp.example:8443': { auth: b64('w:wpw') } }, // legacy .dockercfg shape
    { auths: { 'ghcr.io': { registrytoken: 'tok' } } },
  ];
  assert.deepEqual(matchCredentials(secrets, '127.0.0.1:5000', 'rt/bb').map((c) => [c.username, c.password]), [['alice', 'pw1']]);
  assert.deepEqual(matchCredentials(secrets, '127.0.0.1:5001', 'rt/bb'), []);
  assert.deepEqual(matchCredentials(secrets, 'docker.io', 'library/busybox').map((c) => c.username), ['hub']);
  assert.deepEqual(matchCredentials(secrets, 'registry.example.com', 'team/app').map((c) => c.username), ['team', 'any'], 'more specific first');
  assert.deepEqual(matchCredentials(secrets, 'registry.example.com', 'other/app').map((c) => c.username), ['any']);
  assert.deepEqual(matchCredentials(secrets, 'git.corp.example:8443', 'x').map((c) => c.username), ['w']);
  assert.deepEqual(matchCredentials(secrets, 'a.b.corp.example:8443', 'x'), [], '* is one label');
  assert.equal(matchCredentials(secrets, 'ghcr.io', 'o/r')[0].registryToken, 'tok');
  assert.match(matchCredentials(secrets, 'ghcr.io', 'o/r')[0].source, /imagePullSecrets\[4\]/);
  assert.deepEqual(matchCredentials([null, 'x', { auths: { 'h.io': {} } }], 'h.io', 'a'), []);
});

test('WWW-Authenticate challenges', () => {
  assert.deepEqual(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' } },
  ]);
  assert.deepEqual(parseChallenges('Basic realm="basic-realm"'), [{ scheme: 'basic', params: { realm: 'basic-realm' } }]);
  assert.deepEqual(parseChallenges('Bearer realm="r",error="insufficient_scope", Basic realm="x"').map((c) => c.scheme), ['bearer', 'basic']);
  assert.deepEqual(parseChallenges(undefined), []);
});

test('registries.yaml: mirrors first, then the registry; rewrites; HTTP fallback only for loopback', () => {
  const cfg = parseRegistriesConfig(`
mirrors:
  docker.io:
    endpoint: ["http://127.0.0.1:5000", "mirror.example.com/cache"]
    rewrite:
      "^library/(.*)": "hub/$1"
  "*":
    endpoint: ["https://catchall.example.com"]
  "127.0.0.1:6000":
    endpoint: ["http://127.0.0.1:6000"]
configs:
  "127.0.0.1:5000":
    auth: {username: u, password: p}
  mirror.example.com:
    tls: {insecure_skip_verify: true}
  docker.io:
    auth: {auth: ${b64('hu:hp')}}
`);
  const eps = endpointsFor(cfg, parseImageRef('busybox'));
  assert.deepEqual(eps.map((e) => [e.base.toString(), e.repo, e.mirror, e.plainHttpFallback]), [
    ['http://127.0.0.1:5000/v2/', 'hub/busybox', true, false],
    ['https://mirror.example.com/cache/v2/', 'hub/busybox', true, false],
    ['https://registry-1.docker.io/v2/', 'library/busybox', false, false],
  ]);
  assert.deepEqual([eps[0].auth?.username, eps[1].tls?.insecureSkipVerify, eps[2].auth?.username], ['u', true, 'hu']);
  assert.deepEqual(endpointsFor(cfg, parseImageRef('quay.io/a/b')).map((e) => e.base.toString()), ['https://catchall.example.com/v2/', 'https://quay.io/v2/']);
  assert.deepEqual(endpointsFor(cfg, parseImageRef('127.0.0.1:6000/a')).map((e) => e.base.toString()), ['http://127.0.0.1:6000/v2/'], 'explicit entry replaces the default endpoint');
  const local = endpointsFor(parseRegistriesConfig(''), parseImageRef('127.0.0.1:5000/rt/bb:v1'));
  assert.deepEqual(local.map((e) => [e.base.toString(), e.plainHttpFallback]), [['https://127.0.0.1:5000/v2/', true]]);
  assert.equal(endpointsFor(parseRegistriesConfig(''), parseImageRef('example.com/x'))[0].plainHttpFallback, false);
  assert.throws(() => parseRegistriesConfig('mirrors:\n  docker.io:\n    endpoint: 5\n'), RegistriesConfigError);
  assert.throws(() => parseRegistriesConfig('mirrors: ['), RegistriesConfigError);
});
