// Service-account tokens end to end, with a real `kyb server` and kubectl 1.32: `kubectl create token`
// issues a JWT the API server accepts as system:serviceaccount:<ns>:<name>; expired, garbled and
// wrong-audience tokens get 401; new namespaces get ConfigMap kube-root-ca.crt holding the serving CA;
// pods get the kube-api-access volume and mounts unless automountServiceAccountToken is false.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, fetchInsecure, type TestCluster } from './cluster.js';
import { RestClient } from '../../src/client/index.js';
import { VolumeManager } from '../../src/node/volumes/volume-manager.js';

let c: TestCluster;
const ns = 'satok-' + randomBytes(3).toString('hex');

before(async () => { c = await startCluster(); });
after(async () => { await c?.stop(); });

async function poll<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const api = (path: string, token: string, init: { method?: string; body?: string } = {}) =>
  fetchInsecure(`${c.server.api.url}${path}`, { ...init, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } });

test('kubectl create token prints a JWT the API server accepts as the service account; bad tokens get 401', async () => {
  await c.kubectl(['create', 'namespace', ns]);
  await poll('default ServiceAccount', async () => (await c.kubectl(['get', 'sa', 'default', '-n', ns], { allowFail: true })).code === 0 || undefined);
  const token = (await c.kubectl(['create', 'token', 'default', '-n', ns])).stdout.trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
  assert.equal(claims.iss, 'https://kubernetes.default.svc.cluster.local');
  assert.equal(claims.sub, `system:serviceaccount:${ns}:default`);
  assert.equal(claims.exp - claims.iat, 3600);

  // kubectl with only the token (no client certificate)
  const server = c.server.api.url;
  const r = await c.kubectl(['--kubeconfig=/dev/null', `--server=${server}`, '--insecure-skip-tls-verify', `--token=${token}`, 'get', 'pods', '-n', ns], { allowFail: true });
  // accepted as the service account, which RBAC lets list no pods (the default policy grants it discovery only)
  assert.match(r.stderr + r.stdout, new RegExp(`pods is forbidden: User "system:serviceaccount:${ns}:default" cannot list resource "pods" in API group "" in the namespace "${ns}"`));
  const who = await api('/apis/authentication.k8s.io/v1/selfsubjectreviews', token, { method: 'POST', body: JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }) });
  if (who.status === 201 || who.status === 200) {
    assert.equal(who.body.status.userInfo.username, `system:serviceaccount:${ns}:default`);
    assert.deepEqual(who.body.status.userInfo.groups, ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated']);
  }
  assert.equal((await api(`/api/v1/namespaces/${ns}/pods`, token)).status, 403);
  assert.equal((await api('/version', token)).status, 200);

  // garbled, tampered, another audience
  assert.equal((await api(`/api/v1/namespaces/${ns}/pods`, 'not-a-jwt')).status, 401);
  assert.equal((await api(`/api/v1/namespaces/${ns}/pods`, token.slice(0, -4) + 'AAAA')).status, 401);
  const vault = (await c.kubectl(['create', 'token', 'default', '-n', ns, '--audience=vault'])).stdout.trim();
  assert.equal((await api(`/api/v1/namespaces/${ns}/pods`, vault)).status, 401);

  // duration, minimum 10 minutes; a missing ServiceAccount is 404
  const long = (await c.kubectl(['create', 'token', 'default', '-n', ns, '--duration=2h'])).stdout.trim();
  const lc = JSON.parse(Buffer.from(long.split('.')[1]!, 'base64url').toString());
  assert.equal(lc.exp - lc.iat, 7200);
  const short = await c.kubectl(['create', 'token', 'default', '-n', ns, '--duration=1m'], { allowFail: true });
  assert.notEqual(short.code, 0);
  const missing = await c.kubectl(['create', 'token', 'nobody', '-n', ns], { allowFail: true });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /serviceaccounts "nobody" not found/);

  // a deleted ServiceAccount's tokens stop working
  await c.kubectl(['create', 'sa', 'temp', '-n', ns]);
  const temp = (await c.kubectl(['create', 'token', 'temp', '-n', ns])).stdout.trim();
  assert.equal((await api('/version', temp)).status, 200);
  await c.kubectl(['delete', 'sa', 'temp', '-n', ns]);
  await poll('401 after deletion', async () => (await api(`/api/v1/namespaces/${ns}/pods`, temp)).status === 401 || undefined);
});

test('an expired token gets 401', async () => {
  // the API's minimum lifetime is 10 minutes, so forge the expiry with the server's own signer
  const { TokenSigner } = await import('../../src/apiserver/serviceaccount-token.js');
  const signer = new TokenSigner(readFileSync(join(c.server.dataDir, 'tls', 'service-account.key'), 'utf8'));
  const sa = JSON.parse((await c.kubectl(['get', 'sa', 'default', '-n', 'default', '-o', 'json'])).stdout);
  const fresh = signer.issue({ namespace: 'default', name: 'default', uid: sa.metadata.uid });
  assert.equal((await api('/version', fresh.token)).status, 200);
  const old = signer.issue({ namespace: 'default', name: 'default', uid: sa.metadata.uid, now: Date.now() - 2 * 3600_000 });
  assert.equal((await api('/api/v1/namespaces/default/pods', old.token)).status, 401);
});

test('every namespace gets ConfigMap kube-root-ca.crt with the serving CA', async () => {
  const other = ns + '-x';
  await c.kubectl(['create', 'namespace', other]);
  try {
    const cm = await poll('kube-root-ca.crt', async () => {
      const r = await c.kubectl(['get', 'configmap', 'kube-root-ca.crt', '-n', other, '-o', 'json'], { allowFail: true });
      return r.code === 0 ? JSON.parse(r.stdout) : undefined;
    });
    assert.equal(cm.data['ca.crt'], c.server.caPem);
    assert.match(cm.metadata.annotations['kubernetes.io/description'], /verify the kube-apiserver/);
    // deleted → put back; edited → repaired
    await c.kubectl(['delete', 'configmap', 'kube-root-ca.crt', '-n', other]);
    await poll('recreated', async () => (await c.kubectl(['get', 'configmap', 'kube-root-ca.crt', '-n', other], { allowFail: true })).code === 0 || undefined);
    await c.kubectl(['patch', 'configmap', 'kube-root-ca.crt', '-n', other, '--type=merge', '-p', '{"data":{"ca.crt":"junk"}}']);
    await poll('repaired', async () => JSON.parse((await c.kubectl(['get', 'configmap', 'kube-root-ca.crt', '-n', other, '-o', 'json'])).stdout).data['ca.crt'] === c.server.caPem || undefined);
  } finally {
    await c.kubectl(['delete', 'namespace', other, '--wait=false'], { allowFail: true });
  }
});

test('pods get the kube-api-access volume and mounts; automountServiceAccountToken false skips it', async () => {
  await c.kubectl(['create', 'namespace', ns], { allowFail: true });
  const manifest = (name: string, extra: string) => `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}}
spec:
${extra}  initContainers: [{name: init, image: busybox}]
  containers: [{name: app, image: busybox}, {name: side, image: busybox}]
`;
  await c.kubectl(['apply', '-f', c.writeFile('p1.yaml', manifest('p1', ''))]);
  const p1 = JSON.parse((await c.kubectl(['get', 'pod', 'p1', '-n', ns, '-o', 'json'])).stdout);
  const vol = p1.spec.volumes.find((v: { name: string }) => v.name.startsWith('kube-api-access-'));
  assert.ok(vol, JSON.stringify(p1.spec.volumes));
  assert.match(vol.name, /^kube-api-access-[a-z0-9]{5}$/);
  assert.equal(vol.projected.defaultMode, 420);
  assert.deepEqual(vol.projected.sources[0], { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } });
  for (const ct of [...p1.spec.initContainers, ...p1.spec.containers]) {
    assert.deepEqual(ct.volumeMounts, [{ name: vol.name, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }]);
  }
  // a token bound to the pod works while the pod exists
  const bound = (await c.kubectl(['create', 'token', 'default', '-n', ns, '--bound-object-kind=Pod', '--bound-object-name=p1'])).stdout.trim();
  const bc = JSON.parse(Buffer.from(bound.split('.')[1]!, 'base64url').toString());
  assert.deepEqual(bc['kubernetes.io'].pod, { name: 'p1', uid: p1.metadata.uid });
  assert.equal((await api('/version', bound)).status, 200);

  // the node agent's volume manager fills the volume with a real token bound to the pod
  await poll('kube-root-ca.crt', async () => (await c.kubectl(['get', 'configmap', 'kube-root-ca.crt', '-n', ns], { allowFail: true })).code === 0 || undefined);
  const root = mkdtempSync(join(tmpdir(), 'kyb-satok-vol-'));
  const client = new RestClient({ server: c.server.api.url, caPem: c.server.caPem, token: c.server.token });
  const vm = new VolumeManager({ root, client, nodeName: 'n1', memoryBackedSecrets: false });
  try {
    const mounted = (await vm.setUp(p1)).get(vol.name)!;
    const podToken = readFileSync(join(mounted.hostPath, 'token'), 'utf8');
    const pc = JSON.parse(Buffer.from(podToken.split('.')[1]!, 'base64url').toString());
    assert.deepEqual(pc['kubernetes.io'].pod, { name: 'p1', uid: p1.metadata.uid });
    assert.equal(pc.exp - pc.iat, 3607);
    assert.equal(readFileSync(join(mounted.hostPath, 'ca.crt'), 'utf8'), c.server.caPem);
    assert.equal(readFileSync(join(mounted.hostPath, 'namespace'), 'utf8'), ns);
    assert.equal((await api('/version', podToken)).status, 200);
    assert.deepEqual(await vm.refresh(p1), [], 'a fresh token is not replaced');
    await vm.tearDown(p1.metadata.uid);
  } finally {
    client.close();
    rmSync(root, { recursive: true, force: true });
  }

  await c.kubectl(['apply', '-f', c.writeFile('p2.yaml', manifest('p2', '  automountServiceAccountToken: false\n'))]);
  const p2 = JSON.parse((await c.kubectl(['get', 'pod', 'p2', '-n', ns, '-o', 'json'])).stdout);
  assert.equal(p2.spec.volumes, undefined);
  assert.equal(p2.spec.containers[0].volumeMounts, undefined);

  await c.kubectl(['create', 'sa', 'quiet', '-n', ns]);
  await c.kubectl(['patch', 'sa', 'quiet', '-n', ns, '--type=merge', '-p', '{"automountServiceAccountToken":false}']);
  await c.kubectl(['apply', '-f', c.writeFile('p3.yaml', manifest('p3', '  serviceAccountName: quiet\n'))]);
  const p3 = JSON.parse((await c.kubectl(['get', 'pod', 'p3', '-n', ns, '-o', 'json'])).stdout);
  assert.equal(p3.spec.volumes, undefined);

  // the bound pod is gone (no node agent here: force the delete) → its token is rejected
  await c.kubectl(['delete', 'pod', 'p1', '-n', ns, '--grace-period=0', '--force']);
  await poll('401 after pod deletion', async () => (await api(`/api/v1/namespaces/${ns}/pods`, bound)).status === 401 || undefined);
});
