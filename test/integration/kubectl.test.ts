// The real kubectl 1.32 drives the API server: every command a user reaches for first.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { startCluster, kubectlStream, fetchInsecure, type TestCluster } from './cluster.js';

let c: TestCluster;
before(async () => { c = await startCluster(); });
after(async () => { await c?.stop(); });

const MANIFEST = (replicas: number, image: string) => `
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  mode: fast
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
  namespace: shop
stringData:
  password: hunter2
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: ${replicas}
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: ${image}
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
`;

test('version, cluster-info, api-resources, api-versions', async () => {
  const v = JSON.parse((await c.kubectl(['version', '-o', 'json'])).stdout);
  assert.equal(v.serverVersion.minor, '32');
  const ci = await c.kubectl(['cluster-info']);
  assert.match(ci.stdout, /Kubernetes control plane.* is running at .*https:\/\/127\.0\.0\.1:\d+/);
  const ar = (await c.kubectl(['api-resources'])).stdout;
  for (const re of [/^pods\s+po\s+v1\s+true\s+Pod$/m, /^deployments\s+deploy\s+apps\/v1\s+true\s+Deployment$/m, /^nodes\s+no\s+v1\s+false\s+Node$/m, /^horizontalpodautoscalers\s+hpa\s+autoscaling\/v2\s+true/m, /^leases\s+coordination.k8s.io\/v1\s+true\s+Lease$/m]) {
    assert.match(ar, re);
  }
  const av = (await c.kubectl(['api-versions'])).stdout.split('\n');
  for (const gv of ['v1', 'apps/v1', 'batch/v1', 'autoscaling/v1', 'autoscaling/v2', 'rbac.authorization.k8s.io/v1', 'policy/v1', 'discovery.k8s.io/v1']) assert.ok(av.includes(gv), gv);
});

test('unauthenticated requests get 401', async () => {
  const empty = c.writeFile('empty-kubeconfig', '');
  const url = c.server.api.url;
  const r = await c.kubectl(['get', 'pods', `--kubeconfig=${empty}`, `--server=${url}`, '--insecure-skip-tls-verify', '--token=wrong'], { allowFail: true });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /You must be logged in to the server \(Unauthorized\)/);
  const res = await fetchInsecure(`${url}/api/v1/namespaces`);
  assert.equal(res.status, 401);
  assert.equal(res.body.kind, 'Status');
  assert.equal(res.body.reason, 'Unauthorized');
});

test('apply a multi-document file, then re-apply a change', async () => {
  const f = c.writeFile('app.yaml', MANIFEST(2, 'nginx:1.27'));
  const out = (await c.kubectl(['apply', '-f', f])).stdout;
  assert.match(out, /namespace\/shop created/);
  assert.match(out, /configmap\/settings created/);
  assert.match(out, /secret\/creds created/);
  assert.match(out, /deployment.apps\/web created/);
  assert.match(out, /service\/web created/);
  const again = (await c.kubectl(['apply', '-f', f])).stdout;
  assert.match(again, /deployment.apps\/web unchanged/);
  const f2 = c.writeFile('app2.yaml', MANIFEST(3, 'nginx:1.28'));
  const changed = (await c.kubectl(['apply', '-f', f2])).stdout;
  assert.match(changed, /deployment.apps\/web configured/);
  const d = JSON.parse((await c.kubectl(['get', 'deploy', 'web', '-n', 'shop', '-o', 'json'])).stdout);
  assert.equal(d.spec.replicas, 3);
  assert.equal(d.spec.template.spec.containers[0].image, 'nginx:1.28');
  assert.equal(d.metadata.generation, 2);
  // defaults as upstream
  assert.equal(d.spec.strategy.rollingUpdate.maxSurge, '25%');
  assert.equal(d.spec.revisionHistoryLimit, 10);
  assert.equal(d.spec.progressDeadlineSeconds, 600);
  assert.equal(d.spec.template.spec.restartPolicy, 'Always');
  assert.equal(d.spec.template.spec.containers[0].ports[0].protocol, 'TCP');
  const s = JSON.parse((await c.kubectl(['get', 'secret', 'creds', '-n', 'shop', '-o', 'json'])).stdout);
  assert.equal(Buffer.from(s.data.password, 'base64').toString(), 'hunter2');
  assert.equal(s.stringData, undefined);
});

test('apply of a kind: List (kubectl validates it against /openapi/v2)', async () => {
  const f = c.writeFile('list.yaml', 'apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: listed-a}\n  data: {x: "1"}\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: listed-b}\n');
  const out = (await c.kubectl(['apply', '-f', f])).stdout;
  assert.match(out, /configmap\/listed-a created/);
  assert.match(out, /configmap\/listed-b created/);
  await c.kubectl(['delete', '-f', f]);
});

test('unknown fields: rejected under kubectl\'s default --validate=strict, warned with warn, accepted with false', async () => {
  const typo = (name: string) => `apiVersion: apps/v1
kind: Deployment
metadata: {name: ${name}, labelz: {a: b}}
spec:
  replicas: 1
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      containers: [{name: app, image: "nginx:1.27", imagee: "nginx:1.28", ports: [{containerPort: 80, protocool: TCP}]}]
`;
  const strict = await c.kubectl(['apply', '-f', c.writeFile('typo1.yaml', typo('typo-strict'))], { allowFail: true });
  assert.notEqual(strict.code, 0);
  assert.match(strict.stderr, /Error from server \(BadRequest\).*Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "metadata\.labelz", unknown field "spec\.template\.spec\.containers\[0\]\.imagee", unknown field "spec\.template\.spec\.containers\[0\]\.ports\[0\]\.protocool"/);
  assert.equal((await c.kubectl(['get', 'deployment', 'typo-strict'], { allowFail: true })).code, 1, 'nothing was written');
  const warn = await c.kubectl(['apply', '--validate=warn', '-f', c.writeFile('typo2.yaml', typo('typo-warn'))]);
  assert.match(warn.stderr, /Warning: unknown field "spec\.template\.spec\.containers\[0\]\.imagee"/);
  assert.match(warn.stdout, /deployment.apps\/typo-warn created/);
  const off = await c.kubectl(['apply', '--validate=false', '-f', c.writeFile('typo3.yaml', typo('typo-off'))]);
  assert.doesNotMatch(off.stderr, /unknown field/);
  // kubectl patch sends no fieldValidation: the server's default, Warn, as upstream; directives are not fields
  const badPatch = await c.kubectl(['patch', 'deployment', 'typo-off', '-p', '{"spec":{"replicaz":2}}']);
  assert.match(badPatch.stderr, /Warning: unknown field "spec\.replicaz"/);
  await c.kubectl(['patch', 'deployment', 'typo-off', '-p', '{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"app"}],"containers":[{"name":"app","image":"nginx:1.28"}]}}}}']);
  await c.kubectl(['delete', 'deployment', 'typo-warn', 'typo-off']);
});

test('apply --server-side creates and updates', async () => {
  const f = c.writeFile('ssa.yaml', `apiVersion: v1
kind: ConfigMap
metadata:
  name: ssa
  namespace: default
data:
  a: "1"
`);
  assert.match((await c.kubectl(['apply', '--server-side', '-f', f])).stdout, /configmap\/ssa serverside-applied/);
  c.writeFile('ssa.yaml', `apiVersion: v1
kind: ConfigMap
metadata:
  name: ssa
  namespace: default
data:
  b: "2"
`);
  await c.kubectl(['apply', '--server-side', '-f', f]);
  const cm = JSON.parse((await c.kubectl(['get', 'cm', 'ssa', '-o', 'json'])).stdout);
  assert.deepEqual(cm.data, { b: '2' });
});

test('get in every output format, short names, get all', async () => {
  const table = (await c.kubectl(['get', 'deploy', '-n', 'shop'])).stdout;
  assert.match(table, /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE$/m);
  assert.match(table, /^web\s+0\/3\s+\d+\s+0\s+\d+s$/m); // no nodes: nothing becomes available
  const wide = (await c.kubectl(['get', 'deploy', '-n', 'shop', '-o', 'wide'])).stdout;
  assert.match(wide, /CONTAINERS\s+IMAGES\s+SELECTOR/);
  assert.match(wide, /web\s+nginx:1\.28\s+app=web/);
  const y = (await c.kubectl(['get', 'cm', 'settings', '-n', 'shop', '-o', 'yaml'])).stdout;
  assert.match(y, /mode: fast/);
  assert.match(y, /resourceVersion: "\d+"/);
  const jp = (await c.kubectl(['get', 'cm', 'settings', '-n', 'shop', '-o', 'jsonpath={.data.mode}'])).stdout;
  assert.equal(jp, 'fast');
  const cc = (await c.kubectl(['get', 'svc', '-n', 'shop', '-o', 'custom-columns=NAME:.metadata.name,PORT:.spec.ports[0].port'])).stdout;
  assert.match(cc, /^web\s+80$/m);
  const cm = (await c.kubectl(['get', 'cm', '-n', 'shop'])).stdout;
  assert.match(cm, /^settings\s+1\s+\d+s$/m);
  const all = (await c.kubectl(['get', 'all', '-n', 'shop'])).stdout;
  assert.match(all, /deployment.apps\/web/);
  assert.match(all, /service\/web\s+ClusterIP/);
  const po = (await c.kubectl(['get', 'po', '-n', 'shop'])).stdout; // no nodes: the pods wait
  assert.match(po, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/m);
  assert.match(po, /^web-[a-z0-9]+-[a-z0-9]{5}\s+0\/1\s+Pending\s+0\s+\d+s$/m);
  const none = await c.kubectl(['get', 'po', '-n', 'kube-public']);
  assert.match(none.stderr, /No resources found in kube-public namespace/);
  const ns = (await c.kubectl(['get', 'ns'])).stdout;
  for (const n of ['default', 'kube-system', 'kube-public', 'kube-node-lease', 'shop']) assert.match(ns, new RegExp(`^${n}\\s+Active`, 'm'));
});

test('get -w sees updates and deletes', async () => {
  await c.kubectl(['create', 'configmap', 'watched', '--from-literal=k=v']);
  const w = kubectlStream(c, ['get', 'cm', '-w', '--output-watch-events']);
  try {
    await w.waitFor((l) => l.some((x) => /ADDED\s+watched/.test(x)));
    await c.kubectl(['label', 'cm', 'watched', 'x=y']);
    await w.waitFor((l) => l.some((x) => /MODIFIED\s+watched/.test(x)));
    await c.kubectl(['delete', 'cm', 'watched']);
    await w.waitFor((l) => l.some((x) => /DELETED\s+watched/.test(x)));
  } finally { w.stop(); }
});

test('describe, label, annotate', async () => {
  await c.kubectl(['label', 'deploy', 'web', '-n', 'shop', 'tier=frontend']);
  await c.kubectl(['annotate', 'deploy', 'web', '-n', 'shop', 'note=hello']);
  const d = (await c.kubectl(['describe', 'deploy', 'web', '-n', 'shop'])).stdout;
  assert.match(d, /^Name:\s+web$/m);
  assert.match(d, /tier=frontend/);
  assert.match(d, /note: hello/);
  assert.match(d, /StrategyType:\s+RollingUpdate/);
  assert.match(d, /RollingUpdateStrategy:\s+25% max unavailable, 25% max surge/);
  await c.kubectl(['label', 'deploy', 'web', '-n', 'shop', 'tier-']);
  const l = JSON.parse((await c.kubectl(['get', 'deploy', 'web', '-n', 'shop', '-o', 'json'])).stdout).metadata.labels;
  assert.deepEqual(l, { app: 'web' });
  const svc = (await c.kubectl(['describe', 'svc', 'web', '-n', 'shop'])).stdout;
  assert.match(svc, /Port:\s+<unset>\s+80\/TCP/);
});

test('patch with each patch type', async () => {
  await c.kubectl(['patch', 'cm', 'settings', '-n', 'shop', '--type=merge', '-p', '{"data":{"m":"1"}}']);
  await c.kubectl(['patch', 'cm', 'settings', '-n', 'shop', '--type=json', '-p', '[{"op":"add","path":"/data/j","value":"2"}]']);
  await c.kubectl(['patch', 'deploy', 'web', '-n', 'shop', '-p', '{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"A","value":"1"}]}]}}}}']);
  const cm = JSON.parse((await c.kubectl(['get', 'cm', 'settings', '-n', 'shop', '-o', 'json'])).stdout);
  assert.deepEqual(cm.data, { mode: 'fast', m: '1', j: '2' });
  const d = JSON.parse((await c.kubectl(['get', 'deploy', 'web', '-n', 'shop', '-o', 'json'])).stdout);
  assert.equal(d.spec.template.spec.containers.length, 1);
  assert.equal(d.spec.template.spec.containers[0].image, 'nginx:1.28');
  assert.deepEqual(d.spec.template.spec.containers[0].env, [{ name: 'A', value: '1' }]);
  const bad = await c.kubectl(['patch', 'cm', 'settings', '-n', 'shop', '--type=json', '-p', '[{"op":"test","path":"/data/mode","value":"slow"}]'], { allowFail: true });
  assert.notEqual(bad.code, 0);
});

test('edit through KUBE_EDITOR', async () => {
  const editor = c.writeFile('editor.sh', '#!/bin/sh\nsed -i "s/mode: fast/mode: edited/" "$1"\n');
  chmodSync(editor, 0o755);
  const r = await c.kubectl(['edit', 'cm', 'settings', '-n', 'shop'], { env: { KUBE_EDITOR: editor } });
  assert.match(r.stdout, /configmap\/settings edited/);
  const v = (await c.kubectl(['get', 'cm', 'settings', '-n', 'shop', '-o', 'jsonpath={.data.mode}'])).stdout;
  assert.equal(v, 'edited');
});

test('scale', async () => {
  assert.match((await c.kubectl(['scale', 'deploy', 'web', '-n', 'shop', '--replicas=5'])).stdout, /deployment.apps\/web scaled/);
  const d = JSON.parse((await c.kubectl(['get', 'deploy', 'web', '-n', 'shop', '-o', 'json'])).stdout);
  assert.equal(d.spec.replicas, 5);
  await c.kubectl(['scale', 'deploy', 'web', '-n', 'shop', '--replicas=4', '--current-replicas=5']);
  const r = await c.kubectl(['scale', 'deploy', 'web', '-n', 'shop', '--replicas=1', '--current-replicas=9'], { allowFail: true });
  assert.notEqual(r.code, 0);
});

test('create deployment|configmap|secret|namespace (protobuf bodies)', async () => {
  assert.match((await c.kubectl(['create', 'namespace', 'demo'])).stdout, /namespace\/demo created/);
  assert.match((await c.kubectl(['create', 'deployment', 'api', '-n', 'demo', '--image=nginx:1.27', '--replicas=2', '--port=80'])).stdout, /deployment.apps\/api created/);
  assert.match((await c.kubectl(['create', 'configmap', 'cfg', '-n', 'demo', '--from-literal=a=b'])).stdout, /configmap\/cfg created/);
  assert.match((await c.kubectl(['create', 'secret', 'generic', 'sec', '-n', 'demo', '--from-literal=p=q'])).stdout, /secret\/sec created/);
  const d = JSON.parse((await c.kubectl(['get', 'deploy', 'api', '-n', 'demo', '-o', 'json'])).stdout);
  assert.equal(d.spec.replicas, 2);
  assert.equal(d.spec.template.spec.containers[0].ports[0].containerPort, 80);
  const s = JSON.parse((await c.kubectl(['get', 'secret', 'sec', '-n', 'demo', '-o', 'json'])).stdout);
  assert.equal(Buffer.from(s.data.p, 'base64').toString(), 'q');
  const can = await c.kubectl(['auth', 'can-i', 'create', 'pods']);
  assert.equal(can.stdout.trim(), 'yes');
});

test('invalid objects get 422 with field causes; missing namespace is 404', async () => {
  const f = c.writeFile('bad.yaml', `apiVersion: v1
kind: Pod
metadata:
  name: bad
spec:
  containers:
  - name: c
`);
  const r = await c.kubectl(['create', '-f', f], { allowFail: true });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /The Pod "bad" is invalid: spec.containers\[0\].image: Required value/);
  const r2 = await c.kubectl(['create', 'configmap', 'x', '-n', 'nope', '--from-literal=a=b'], { allowFail: true });
  assert.match(r2.stderr, /namespaces "nope" not found/);
});

test('delete -f, by name and by selector', async () => {
  await c.kubectl(['create', 'configmap', 'del1', '-n', 'demo']);
  await c.kubectl(['create', 'configmap', 'del2', '-n', 'demo']);
  await c.kubectl(['label', 'cm', 'del2', '-n', 'demo', 'gone=yes']);
  assert.match((await c.kubectl(['delete', 'cm', 'del1', '-n', 'demo'])).stdout, /configmap "del1" deleted/);
  assert.match((await c.kubectl(['delete', 'cm', '-l', 'gone=yes', '-n', 'demo'])).stdout, /configmap "del2" deleted/);
  const nf = await c.kubectl(['get', 'cm', 'del1', '-n', 'demo'], { allowFail: true });
  assert.match(nf.stderr, /Error from server \(NotFound\): configmaps "del1" not found/);
  const f = c.writeFile('cm.yaml', 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: byfile\n  namespace: demo\n');
  await c.kubectl(['apply', '-f', f]);
  assert.match((await c.kubectl(['delete', '-f', f])).stdout, /configmap "byfile" deleted/);
});

test('a new namespace gets a default ServiceAccount; deleting a namespace empties and removes it', async () => {
  await c.kubectl(['create', 'namespace', 'doomed']);
  await c.kubectl(['create', 'configmap', 'x', '-n', 'doomed', '--from-literal=a=b']);
  await c.kubectl(['create', 'deployment', 'd', '-n', 'doomed', '--image=nginx:1.27']);
  await c.kubectl(['wait', '--for=jsonpath={.metadata.name}=default', 'serviceaccount/default', '-n', 'doomed', '--timeout=30s']);
  const r = await c.kubectl(['delete', 'namespace', 'doomed', '--timeout=60s']);
  assert.match(r.stdout, /namespace "doomed" deleted/);
  const gone = await c.kubectl(['get', 'namespace', 'doomed'], { allowFail: true });
  assert.match(gone.stderr, /namespaces "doomed" not found/);
});
