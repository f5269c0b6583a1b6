// RBAC as a user of it sees it: users outside system:masters may do what their bindings allow and get
// 403 Forbidden, in upstream's words, for the rest; bindings count as soon as they are written;
// `kubectl auth can-i` (SelfSubjectAccessReview, sent as protobuf) and `kubectl auth can-i --list`
// (SelfSubjectRulesReview) answer from the same policy; the bootstrap roles exist.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApiServer, type ApiServer } from '../../src/apiserver/server.js';
import { MemoryStore } from '../../src/storage/memory/memory-store.js';
import { ensurePki, type Pki } from '../../src/apiserver/pki.js';
import { KUBECTL } from './cluster.js';
import { request } from 'node:https';

const ADMIN = 'admin-token', ALICE = 'alice-token', BOB = 'bob-token', SA = 'sa-token';
let api: ApiServer;
let cacheDir: string;
let pki: Pki;
let caFile: string;

// over TLS, as kubectl sends a bearer token only there
before(async () => {
  cacheDir = mkdtempSync(join(tmpdir(), 'kyb-rbac-'));
  pki = ensurePki(cacheDir, { hostnames: [], ips: ['127.0.0.1'] });
  caFile = join(cacheDir, 'ca.crt');
  writeFileSync(caFile, pki.serverCaCert);
  api = await startApiServer({
    store: new MemoryStore(), port: 0, requireAuth: true, tls: { cert: pki.serverCert, key: pki.serverKey },
    tokens: [
      { token: ADMIN, user: { username: 'system:admin', groups: ['system:masters', 'system:authenticated'] } },
      { token: ALICE, user: { username: 'alice', groups: ['system:authenticated'] } },
      { token: BOB, user: { username: 'bob', groups: ['devs', 'system:authenticated'] } },
      { token: SA, user: { username: 'system:serviceaccount:team:robot', groups: ['system:serviceaccounts', 'system:serviceaccounts:team', 'system:authenticated'] } },
    ],
  });
});
after(async () => {
  await api.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

/** one HTTPS request; the body parsed as JSON, or for a watch only the status */
function call(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(api.url + path, { method, ca: pki.serverCaCert, headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) } }, (res) => {
      if (path.includes('watch=true')) { resolve({ status: res.statusCode ?? 0, body: undefined }); res.destroy(); return; }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

function kubectl(token: string, ...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(KUBECTL, ['--server', api.url, '--certificate-authority', caFile, '--token', token, ...args], { env: { ...process.env, KUBECACHEDIR: join(cacheDir, 'kube'), KUBECONFIG: '/dev/null' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

const RBAC = '/apis/rbac.authorization.k8s.io/v1';

test('the bootstrap policy exists and an authenticated user may discover the API but not read objects', async () => {
  for (const name of ['cluster-admin', 'admin', 'edit', 'view', 'system:discovery', 'system:basic-user', 'system:public-info-viewer']) {
    const r = await call(ADMIN, 'GET', `${RBAC}/clusterroles/${name}`);
    assert.equal(r.status, 200, name);
    assert.equal(r.body.metadata.labels['kubernetes.io/bootstrapping'], 'rbac-defaults');
  }
  const crb = await call(ADMIN, 'GET', `${RBAC}/clusterrolebindings/cluster-admin`);
  assert.deepEqual(crb.body.subjects, [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:masters' }]);

  assert.equal((await call(ALICE, 'GET', '/version')).status, 200);
  assert.equal((await call(ALICE, 'GET', '/api')).status, 200);
  assert.equal((await call(ALICE, 'GET', '/apis/apps/v1')).status, 200);
  assert.equal((await call(ALICE, 'GET', '/openapi/v3')).status, 200);

  const list = await call(ALICE, 'GET', '/api/v1/namespaces/default/configmaps');
  assert.equal(list.status, 403);
  assert.equal(list.body.kind, 'Status');
  assert.equal(list.body.reason, 'Forbidden');
  assert.equal(list.body.message, 'configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" in the namespace "default"');
  const get = await call(ALICE, 'GET', '/apis/apps/v1/namespaces/default/deployments/web');
  assert.equal(get.body.message, 'deployments.apps "web" is forbidden: User "alice" cannot get resource "deployments" in API group "apps" in the namespace "default"');
  assert.deepEqual(get.body.details, { name: 'web', group: 'apps', kind: 'deployments' });
  const nodes = await call(ALICE, 'GET', '/api/v1/nodes');
  assert.equal(nodes.body.message, 'nodes is forbidden: User "alice" cannot list resource "nodes" in API group "" at the cluster scope');
  const metrics = await call(ALICE, 'GET', '/metrics');
  assert.equal(metrics.status, 403);
  assert.equal(metrics.body.message, 'forbidden: User "alice" cannot get path "/metrics"');
  // nothing written on a refused create
  const made = await call(ALICE, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'sneaky' } });
  assert.equal(made.status, 403);
  assert.equal((await call(ADMIN, 'GET', '/api/v1/namespaces/default/configmaps/sneaky')).status, 404);
  // bad credentials stay 401, not 403
  assert.equal((await call('nope', 'GET', '/api/v1/namespaces/default/configmaps')).status, 401);
});

test('a Role and RoleBinding grant exactly their verbs, resources, names and namespace, at once', async () => {
  await call(ADMIN, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } });
  await call(ADMIN, 'POST', '/api/v1/namespaces/team/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } });
  await call(ADMIN, 'POST', '/api/v1/namespaces/team/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'b' } });
  const role = await call(ADMIN, 'POST', `${RBAC}/namespaces/team/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'cm-reader' },
    rules: [
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['only-this'], verbs: ['get'] },
      { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
      { apiGroups: [''], resources: ['namespaces'], verbs: ['get'] },
    ],
  });
  assert.equal(role.status, 201, JSON.stringify(role.body));
  assert.equal((await call(ALICE, 'GET', '/api/v1/namespaces/team/configmaps')).status, 403);
  const rb = await call(ADMIN, 'POST', `${RBAC}/namespaces/team/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'alice-reads' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'cm-reader' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'alice' }, { kind: 'ServiceAccount', name: 'robot' }],
  });
  assert.equal(rb.status, 201, JSON.stringify(rb.body));
  const list = await call(ALICE, 'GET', '/api/v1/namespaces/team/configmaps');
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.items.map((i: { metadata: { name: string } }) => i.metadata.name).sort(), ['a', 'b']);
  assert.equal((await call(ALICE, 'GET', '/api/v1/namespaces/team/configmaps/a')).status, 200);
  assert.equal((await call(ALICE, 'GET', '/api/v1/namespaces/team/configmaps?watch=true&timeoutSeconds=1')).status, 200);
  assert.equal((await call(ALICE, 'DELETE', '/api/v1/namespaces/team/configmaps/a')).status, 403);
  assert.equal((await call(ALICE, 'GET', '/api/v1/namespaces/default/configmaps')).status, 403, 'another namespace');
  assert.equal((await call(ALICE, 'GET', '/api/v1/namespaces/team/secrets/only-this')).status, 404, 'allowed by name: not found');
  assert.equal((await call(ALICE, 'GET', '/api/v1/namespaces/team/secrets/other')).status, 403);
  assert.equal((await call(ALICE, 'GET', '/api/v1/namespaces/team/secrets')).status, 403, 'resourceNames never allow a list');
  assert.equal((await call(ALICE, 'GET', '/api/v1/namespaces/team/pods/p')).status, 403, 'pods/log does not give pods');
  assert.equal((await call(ALICE, 'GET', '/api/v1/namespaces/team')).status, 200, 'its own namespace, by a rule in it');
  assert.equal((await call(ALICE, 'GET', '/api/v1/namespaces/default')).status, 403);
  assert.equal((await call(ALICE, 'GET', '/api/v1/namespaces')).status, 403, 'a list of namespaces is cluster-scoped');
  // the ServiceAccount subject (namespace from the binding) and a user who is not bound
  assert.equal((await call(SA, 'GET', '/api/v1/namespaces/team/configmaps')).status, 200);
  assert.equal((await call(BOB, 'GET', '/api/v1/namespaces/team/configmaps')).status, 403);
  // deleting the binding takes the access away at once
  assert.equal((await call(ADMIN, 'DELETE', `${RBAC}/namespaces/team/rolebindings/alice-reads`)).status, 200);
  assert.equal((await call(ALICE, 'GET', '/api/v1/namespaces/team/configmaps')).status, 403);
});

test('a ClusterRoleBinding of view to a group: reads everywhere, no Secrets, no writes', async () => {
  const crb = await call(ADMIN, 'POST', `${RBAC}/clusterrolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'devs-view' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'devs' }],
  });
  assert.equal(crb.status, 201, JSON.stringify(crb.body));
  assert.equal((await call(BOB, 'GET', '/api/v1/pods')).status, 200);
  assert.equal((await call(BOB, 'GET', '/apis/apps/v1/namespaces/team/deployments')).status, 200);
  assert.equal((await call(BOB, 'GET', '/api/v1/namespaces/team/secrets')).status, 403);
  assert.equal((await call(BOB, 'POST', '/api/v1/namespaces/team/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } })).status, 403);
  assert.equal((await call(ALICE, 'GET', '/api/v1/pods')).status, 403, 'alice is not in devs');
});

test('kubectl auth can-i and can-i --list answer from the policy', async () => {
  const no = await kubectl(ALICE, 'auth', 'can-i', 'create', 'deployments', '-n', 'team');
  assert.equal(no.out.trim(), 'no');
  assert.equal(no.code, 1);
  const yes = await kubectl(BOB, 'auth', 'can-i', 'list', 'pods', '-n', 'team');
  assert.equal(yes.out.trim(), 'yes');
  const admin = await kubectl(ADMIN, 'auth', 'can-i', '*', '*');
  assert.equal(admin.out.trim(), 'yes');
  const secrets = await kubectl(BOB, 'auth', 'can-i', 'get', 'secrets', '-n', 'team');
  assert.equal(secrets.out.trim(), 'no');
  const list = await kubectl(BOB, 'auth', 'can-i', '--list', '-n', 'team');
  assert.equal(list.code, 0, list.out);
  assert.match(list.out, /deployments\.apps\s+\[\]\s+\[\]\s+\[get list watch\]/);
  assert.match(list.out, /selfsubjectaccessreviews\.authorization\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]/);
  assert.doesNotMatch(list.out, /^secrets\s/m);
  // impersonation (kubectl --as, --as-group): the admin may, and the answer is the impersonated user's
  assert.equal((await kubectl(ADMIN, 'auth', 'can-i', 'list', 'pods', '-n', 'team', '--as=bob')).out.trim(), 'no', 'groups come from the headers, not from bob\'s token');
  assert.equal((await kubectl(ADMIN, 'auth', 'can-i', 'list', 'pods', '-n', 'team', '--as=bob', '--as-group=devs')).out.trim(), 'yes');
  const who = await kubectl(ADMIN, 'auth', 'whoami', '--as=system:serviceaccount:team:robot', '-o', 'jsonpath={.status.userInfo.username} {.status.userInfo.groups}');
  assert.equal(who.out.trim(), 'system:serviceaccount:team:robot ["system:serviceaccounts","system:serviceaccounts:team","system:authenticated"]');
  const sneaky = await kubectl(ALICE, 'get', 'pods', '-n', 'team', '--as=bob', '--as-group=devs');
  assert.notEqual(sneaky.code, 0);
  assert.match(sneaky.out, /users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope/);
  // kubectl's own error for a forbidden get
  const get = await kubectl(ALICE, 'get', 'configmaps', '-n', 'team');
  assert.notEqual(get.code, 0);
  assert.match(get.out, /Error from server \(Forbidden\): configmaps is forbidden: User "alice" cannot list resource "configmaps" in API group "" in the namespace "team"/);
});
