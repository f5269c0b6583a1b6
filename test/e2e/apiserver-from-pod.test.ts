// A pod talks to its API server the way in-cluster clients do: https://$KUBERNETES_SERVICE_HOST:
// $KUBERNETES_SERVICE_PORT (the `kubernetes` Service, the first address of the service CIDR at port
// 443: 10.43.0.1:443 by default) with the service-account token
// of its kube-api-access volume. That needs `kyb server` to listen on more than loopback (k3s's
// default --bind-address 0.0.0.0), default/kubernetes' endpoints to carry the advertise address
// (default: the node's internal IP) and the real port, and the serving certificate to name the
// Service's IP and DNS names. Real kubectl, real containers (runc, CNI bridge, the service proxy).
//
// The client in the pod: busybox's wget speaks TLS itself only with what its small built-in TLS
// offers, and the API server (Node 20 / OpenSSL 3, ECDSA P-256 certificate) refuses that handshake
// ("no shared cipher"; the same happens from the host with openssl out of PATH). With an `openssl`
// binary in PATH busybox wget hands TLS to `openssl s_client`, so the pod gets the host's openssl
// and its libraries through read-only hostPath volumes; openssl s_client is also used directly to
// verify the server certificate against the pod's ca.crt, by IP and by the kubernetes.default.svc name.
//
// The cluster gets a service CIDR of its own (a random 10.<150-199>.<x>.0/24), not 10.43.0.0/16:
// other clusters on this host (parallel tests) program 10.43.0.1:443 towards *their* API servers in
// tables of their own, and whichever table's DNAT runs first would win.
//
// Traffic: the pod reaches the host's own internal IP through the proxy's DNAT; the test itself
// talks to that address and to 10.43.0.1 from the host, verifying the certificate against the
// server CA. Everything made here (pods, bridge, rules, cgroups, data dir) is removed in `after`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';
import { request } from 'node:https';
import type { TestCluster } from '../integration/cluster.js';
import { internalIP } from '../../src/node/host-info.js';
import { canRunContainers, poll, startAgentCluster, type AgentCluster } from './agent-cluster.js';

const canRun = canRunContainers(['/usr/bin/openssl']);
const skip = !canRun && 'needs root, runc, conmon, CNI plugins, nft, busybox, openssl';

const svcSeed = randomBytes(2);
const svcNet = `10.${150 + (svcSeed[0]! % 50)}.${svcSeed[1]}`;
const SERVICE_IP = `${svcNet}.1`;
let k: AgentCluster;
let c: TestCluster;
let node = '';

/** GET over HTTPS verifying the server certificate against the cluster CA (as `servername`). */
function verifiedGet(host: string, port: number, path: string, servername?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, ca: c.server.caPem, servername, agent: false, timeout: 5000, headers: { authorization: `Bearer ${c.server.token}` } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** The directories holding openssl's shared libraries and its loader (from ldd), to mount into the pod. */
function opensslLibDirs(): string[] {
  const out = execFileSync('ldd', ['/usr/bin/openssl']).toString();
  const paths = [...out.matchAll(/(?:=> )?(\/\S+) \(0x/g)].map((m) => m[1]);
  return [...new Set(paths.map((p) => dirname(p)))].sort();
}

const json = async (args: string[]) => JSON.parse((await c.kubectl([...args, '-o', 'json'])).stdout);
const inPod = (script: string) => c.kubectl(['exec', 'api-client', '--', '/bin/sh', '-c', script], { allowFail: true });

before(async () => {
  if (!canRun) return;
  // kyb's default bind address (the test clusters use 127.0.0.1 unless asked)
  k = await startAgentCluster({
    name: 'apf', octets: [225, 25], images: [{ ref: 'kyb.local/busybox:apf' }],
    args: ['--bind-address', '0.0.0.0', '--service-cidr', `${svcNet}.0/24`, '--cluster-dns', `${svcNet}.10`],
  });
  c = k.c;
  node = k.node;
});

after(async () => { if (canRun) await k?.stop(); });

test('default/kubernetes advertises the node IP and the real port; the certificate names the Service', { skip }, async () => {
  const advertise = internalIP();
  const port = c.server.api.port;
  const ep = await json(['get', 'endpoints', 'kubernetes']);
  assert.deepEqual(ep.subsets, [{ addresses: [{ ip: advertise }], ports: [{ name: 'https', port, protocol: 'TCP' }] }]);
  const slice = await json(['get', 'endpointslice', 'kubernetes']);
  assert.deepEqual(slice.endpoints.map((e: any) => e.addresses), [[advertise]]);
  // the kubeconfig still points at loopback
  assert.match((await c.kubectl(['config', 'view', '-o', 'jsonpath={.clusters[0].cluster.server}'])).stdout, new RegExp(`^https://127\\.0\\.0\\.1:${port}$`));
  // the advertise address answers, and the certificate is valid for the in-cluster names
  for (const name of ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local']) {
    const r = await verifiedGet(advertise, port, '/version', name);
    assert.equal(r.status, 200, `${name}: ${r.body}`);
  }
  assert.equal((await verifiedGet(advertise, port, '/version')).status, 200, 'IP SAN: the advertise address');
});

test('a pod reaches its API at the kubernetes Service (first service IP, port 443) with its service-account token', { skip }, async () => {
  await poll('node registered', async () => (await c.kubectl(['get', 'node', node], { allowFail: true })).code === 0);
  await c.kubectl(['wait', '--for=condition=Ready', `node/${node}`, '--timeout=90s']);
  // the host reaches the Service through the proxy; the certificate holds its IP
  const viaService = await poll(`${SERVICE_IP}:443 from the host`, async () => { const r = await verifiedGet(SERVICE_IP, 443, '/version'); return r.status === 200 ? r : undefined; }, 20_000);
  assert.match(viaService.body, /"gitVersion"/);
  await poll('default ServiceAccount', async () => (await c.kubectl(['get', 'serviceaccount', 'default'], { allowFail: true })).code === 0);
  const libs = opensslLibDirs();
  const pod = {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'api-client' },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [{
        name: 'client', image: 'kyb.local/busybox:apf', imagePullPolicy: 'IfNotPresent', command: ['/bin/sleep', '3600'],
        volumeMounts: [
          { name: 'openssl', mountPath: '/usr/bin/openssl', readOnly: true },
          ...libs.map((d, i) => ({ name: `lib${i}`, mountPath: d, readOnly: true })),
        ],
      }],
      volumes: [
        { name: 'openssl', hostPath: { path: '/usr/bin/openssl', type: 'File' } },
        ...libs.map((d, i) => ({ name: `lib${i}`, hostPath: { path: d, type: 'Directory' } })),
      ],
    },
  };
  await c.kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) });
  await c.kubectl(['wait', '--for=condition=Ready', 'pod/api-client', '--timeout=90s']);
  const sa = '/var/run/secrets/kubernetes.io/serviceaccount';
  const env = (await inPod('echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT')).stdout.trim();
  assert.equal(env, `${SERVICE_IP}:443`);
  assert.equal((await inPod(`cat ${sa}/ca.crt`)).stdout.trim(), c.server.caPem.trim(), 'the pod can verify the server');
  // busybox wget (TLS through openssl s_client) cannot be given a CA: --no-check-certificate here,
  // and the certificate is verified with openssl s_client below
  const wget = `timeout 10 wget -q -O - --no-check-certificate`;
  const url = 'https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT';
  let last = '';
  await poll('401 without a token', async () => {
    const r = await inPod(`${wget} -S ${url}/api 2>&1`);
    last = `${r.stdout}${r.stderr}`;
    return /401 Unauthorized/.test(r.stdout);
  }, 30_000).catch((e: Error) => { throw new Error(`${e.message}; last answer: ${last}`); });
  const auth = `--header "Authorization: Bearer $(cat ${sa}/token)"`;
  const review = await inPod(`${wget} ${auth} --header 'Content-Type: application/json' --post-data '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' ${url}/apis/authentication.k8s.io/v1/selfsubjectreviews`);
  assert.equal(review.code, 0, `${review.stdout}${review.stderr}`);
  const who = JSON.parse(review.stdout);
  assert.equal(who.status.userInfo.username, 'system:serviceaccount:default:default');
  assert.ok(who.status.userInfo.groups.includes('system:authenticated'));
  const version = await inPod(`${wget} ${auth} ${url}/version`);
  assert.equal(version.code, 0, `${version.stdout}${version.stderr}`);
  assert.match(JSON.parse(version.stdout).gitVersion, /^v1\./);
  // the certificate verifies against the pod's ca.crt, for the Service IP and for its DNS name
  const request = `printf 'GET /version HTTP/1.0\\r\\nAuthorization: Bearer %s\\r\\n\\r\\n' "$(cat ${sa}/token)"`;
  const sClient = `timeout 10 openssl s_client -quiet -connect $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT -CAfile ${sa}/ca.crt -verify_return_error`;
  for (const check of ['-verify_ip $KUBERNETES_SERVICE_HOST', '-servername kubernetes.default.svc -verify_hostname kubernetes.default.svc']) {
    const r = await inPod(`${request} | ${sClient} ${check} 2>&1`);
    assert.match(r.stdout, /verify return:1/, `${check}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /HTTP\/1\.1 200 OK[\s\S]*"gitVersion"/, `${check}: ${r.stdout}${r.stderr}`);
  }
  const wrong = await inPod(`${request} | ${sClient} -servername elsewhere.example -verify_hostname elsewhere.example 2>&1`);
  assert.doesNotMatch(wrong.stdout, /HTTP\/1\.1 200/, 'a name the certificate lacks fails verification');
});
