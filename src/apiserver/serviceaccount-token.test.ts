// Unit tests: service-account JWT signing/verification and the kube-api-access admission mutation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenSigner, ensureServiceAccountKey, userOf, DEFAULT_ISSUER } from './serviceaccount-token.js';
import { admitServiceAccountToken, SERVICE_ACCOUNT_MOUNT_PATH } from './admission.js';
import type { KObject } from '../api/types.js';

const pem = (type: 'ec' | 'rsa'): string => (type === 'ec'
  ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 })).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

test('ensureServiceAccountKey: made once (0600), reused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kyb-sakey-'));
  try {
    const a = ensureServiceAccountKey(dir);
    assert.match(a, /BEGIN PRIVATE KEY/);
    assert.equal(statSync(join(dir, 'tls', 'service-account.key')).mode & 0o777, 0o600);
    assert.equal(ensureServiceAccountKey(dir), a);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

for (const kind of ['ec', 'rsa'] as const) {
  test(`TokenSigner (${kind}): issue → verify gives upstream's claims; expiry, audience, tampering, other key rejected`, () => {
    const s = new TokenSigner(pem(kind));
    const now = Date.UTC(2026, 0, 1);
    const { token, exp } = s.issue({ namespace: 'ns1', name: 'sa1', uid: 'u-sa', expirationSeconds: 100, pod: { name: 'p', uid: 'u-p' }, now });
    const [h, b] = token.split('.');
    assert.deepEqual(JSON.parse(Buffer.from(h!, 'base64url').toString()), { alg: kind === 'ec' ? 'ES256' : 'RS256', kid: s.kid });
    const c = JSON.parse(Buffer.from(b!, 'base64url').toString());
    assert.equal(c.iss, DEFAULT_ISSUER);
    assert.deepEqual(c.aud, [DEFAULT_ISSUER]);
    assert.equal(c.sub, 'system:serviceaccount:ns1:sa1');
    assert.equal(exp, now / 1000 + 600, 'expirationSeconds below 600 is raised to 600');
    assert.deepEqual(c['kubernetes.io'], { namespace: 'ns1', pod: { name: 'p', uid: 'u-p' }, serviceaccount: { name: 'sa1', uid: 'u-sa' } });
    const claims = s.verify(token, now + 1000);
    assert.ok(claims);
    assert.deepEqual(userOf(claims).groups, ['system:serviceaccounts', 'system:serviceaccounts:ns1', 'system:authenticated']);
    assert.equal(userOf(claims).username, 'system:serviceaccount:ns1:sa1');
    assert.equal(s.verify(token, now + 600_000), undefined, 'expired');
    const tampered = token.slice(0, token.indexOf('.') + 1) + Buffer.from(JSON.stringify({ ...c, sub: 'x' })).toString('base64url') + token.slice(token.lastIndexOf('.'));
    assert.equal(s.verify(tampered, now), undefined, 'tampered payload');
    assert.equal(s.verify('garbage', now), undefined);
    assert.equal(s.verify('a.b.c', now), undefined);
    assert.equal(new TokenSigner(pem(kind)).verify(token, now), undefined, 'other key');
    const vault = s.issue({ namespace: 'ns1', name: 'sa1', uid: 'u', audiences: ['vault'], now });
    assert.equal(s.verify(vault.token, now), undefined, 'audience not the API server');
    assert.equal(vault.exp, now / 1000 + 3600, 'default lifetime 1h');
  });
}

function pod(spec: Record<string, unknown>): KObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'd' }, spec: { containers: [{ name: 'a' }], ...spec } };
}

test('admission: kube-api-access volume and read-only mounts in every container and init container', () => {
  const p = pod({
    initContainers: [{ name: 'i' }],
    containers: [{ name: 'a', volumeMounts: [{ name: 'x', mountPath: '/x' }] }, { name: 'b', volumeMounts: [{ name: 'own', mountPath: SERVICE_ACCOUNT_MOUNT_PATH }] }],
    volumes: [{ name: 'x', emptyDir: {} }, { name: 'own', emptyDir: {} }],
  });
  admitServiceAccountToken(p, undefined, 'abcde');
  const spec = p.spec as any;
  assert.deepEqual(spec.volumes[2], {
    name: 'kube-api-access-abcde',
    projected: {
      sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
      defaultMode: 420,
    },
  });
  const m = { name: 'kube-api-access-abcde', readOnly: true, mountPath: SERVICE_ACCOUNT_MOUNT_PATH };
  assert.deepEqual(spec.initContainers[0].volumeMounts, [m]);
  assert.deepEqual(spec.containers[0].volumeMounts, [{ name: 'x', mountPath: '/x' }, m]);
  assert.deepEqual(spec.containers[1].volumeMounts, [{ name: 'own', mountPath: SERVICE_ACCOUNT_MOUNT_PATH }], 'its own mount is kept');
});

test('admission: automountServiceAccountToken false on the pod or its ServiceAccount; the pod wins', () => {
  const off = pod({ automountServiceAccountToken: false });
  admitServiceAccountToken(off, undefined);
  assert.equal((off.spec as any).volumes, undefined);
  const saOff = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' }, automountServiceAccountToken: false } as KObject;
  const bySa = pod({});
  admitServiceAccountToken(bySa, saOff);
  assert.equal((bySa.spec as any).volumes, undefined);
  const podWins = pod({ automountServiceAccountToken: true });
  admitServiceAccountToken(podWins, saOff);
  assert.match((podWins.spec as any).volumes[0].name, /^kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
});
