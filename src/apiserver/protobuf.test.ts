import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeK8sProtobuf } from './protobuf.js';
import { StatusError } from '../machinery/status.js';

// Bodies captured from real kubectl 1.32.4 pointed at a logging server (testdata/*.hex).
function fixture(name: string): Buffer {
  return Buffer.from(readFileSync(new URL(`./testdata/${name}.hex`, import.meta.url), 'utf8').trim(), 'hex');
}

// A tiny protobuf encoder for hand-built bodies.
function varint(n: bigint | number): Buffer {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}
type Val = string | Buffer | number | bigint | boolean | Val[];
/** fields: [fieldNumber, value]; string/Buffer/nested arrays are length-delimited, numbers varints. */
function msg(...fields: [number, Val][]): Buffer {
  const parts: Buffer[] = [];
  for (const [n, v] of fields) {
    if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') {
      parts.push(varint(n * 8), varint(typeof v === 'boolean' ? (v ? 1 : 0) : v));
    } else {
      const b = typeof v === 'string' ? Buffer.from(v) : Buffer.isBuffer(v) ? v : msg(...(v as unknown as [number, Val][]));
      parts.push(varint(n * 8 + 2), varint(b.length), b);
    }
  }
  return Buffer.concat(parts);
}
const f = (n: number, v: Val): [number, Val] => [n, v];
const sub = (...fields: [number, Val][]): Buffer => msg(...fields);
function envelope(apiVersion: string, kind: string, raw: Buffer): Buffer {
  return Buffer.concat([Buffer.from('k8s\0', 'binary'), msg(f(1, sub(f(1, apiVersion), f(2, kind))), f(2, raw), f(3, ''), f(4, ''))]);
}
/** one map entry of map field n */
const entry = (n: number, k: string, v: string | Buffer) => f(n, sub(f(1, k), f(2, v)));

function assertBadRequest(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => e instanceof StatusError && e.code === 400 && e.reason === 'BadRequest');
}

test('kubectl create namespace demo: the exact body from the reference', () => {
  const hex = '6b387300' + '0a0f0a02763112094e616d657370616365' + '121c0a140a0464656d6f12001a0022002a003200380042001200' + '1a020a00' + '1a00' + '2200';
  assert.deepEqual(decodeK8sProtobuf(Buffer.from(hex, 'hex')), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } });
  assert.deepEqual(decodeK8sProtobuf(fixture('namespace')), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } });
});

test('kubectl create deployment web --image=nginx:1.27 --replicas=2 --port=80', () => {
  assert.deepEqual(decodeK8sProtobuf(fixture('deployment')), {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: 'web', labels: { app: 'web' } },
    spec: {
      replicas: 2, selector: { matchLabels: { app: 'web' } },
      template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'nginx', image: 'nginx:1.27', ports: [{ containerPort: 80 }] }] } },
    },
  });
  // replicas is a pointer: --replicas=0 must stay 0, not disappear
  const zero = decodeK8sProtobuf(fixture('deployment-zero')) as { spec: { replicas?: number } };
  assert.equal(zero.spec.replicas, 0);
});

test('configmaps and secrets: string data, binary data as base64, empty values kept', () => {
  assert.deepEqual(decodeK8sProtobuf(fixture('configmap')), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg' }, data: { a: '1', b: 'hello' } });
  assert.deepEqual(decodeK8sProtobuf(fixture('secret')), {
    apiVersion: 'v1', kind: 'Secret', metadata: { name: 's1' }, data: { empty: '', password: Buffer.from('p@ss').toString('base64') },
  });
  const bin = Buffer.from([0, 1, 2, 0xff, 0xfe]);
  const s = decodeK8sProtobuf(envelope('v1', 'Secret', msg(f(1, sub(f(1, 'b'))), entry(2, 'k', bin), f(3, 'Opaque'), f(5, false))));
  assert.deepEqual(s, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'b' }, data: { k: bin.toString('base64') }, type: 'Opaque', immutable: false });
  const cm = decodeK8sProtobuf(envelope('v1', 'ConfigMap', msg(f(1, sub(f(1, 'c'))), f(3, sub(f(1, 'raw'), f(2, bin))))));
  assert.deepEqual(cm, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, binaryData: { raw: bin.toString('base64') } });
});

test('services: int and string targetPort', () => {
  assert.deepEqual(decodeK8sProtobuf(fixture('service-clusterip')), {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', labels: { app: 'web' } },
    spec: { ports: [{ name: '80-8080', protocol: 'TCP', port: 80, targetPort: 8080 }], selector: { app: 'web' }, type: 'ClusterIP' },
  });
  const np = decodeK8sProtobuf(fixture('service-nodeport')) as { spec: { ports: unknown[] } };
  assert.deepEqual(np.spec.ports, [{ name: '8080-http', protocol: 'TCP', port: 8080, targetPort: 'http', nodePort: 30080 }]);
});

test('auth can-i / can-i --list / whoami reviews', () => {
  assert.deepEqual(decodeK8sProtobuf(fixture('can-i')), {
    apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview',
    spec: { resourceAttributes: { namespace: 'default', verb: 'create', resource: 'pods' } },
  });
  assert.deepEqual((decodeK8sProtobuf(fixture('can-i-all')) as { spec: unknown }).spec, { resourceAttributes: { verb: '*', resource: '*' } });
  assert.deepEqual(decodeK8sProtobuf(fixture('can-i-list')), { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectRulesReview', spec: { namespace: 'default' } });
  assert.deepEqual(decodeK8sProtobuf(fixture('whoami')), { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
  const nonResource = decodeK8sProtobuf(envelope('authorization.k8s.io/v1', 'SelfSubjectAccessReview', msg(f(2, sub(f(2, sub(f(1, '/healthz'), f(2, 'get'))))))));
  assert.deepEqual(nonResource.spec, { nonResourceAttributes: { path: '/healthz', verb: 'get' } });
});

test('the other kubectl create generators', () => {
  const d = (n: string) => decodeK8sProtobuf(fixture(n)) as Record<string, any>;
  assert.deepEqual(d('role').rules, [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['pods'], resourceNames: ['a'] }]);
  assert.deepEqual(d('clusterrole').rules, [{ verbs: ['get'], nonResourceURLs: ['/healthz'] }]);
  assert.deepEqual(d('rolebinding').subjects, [
    { kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'alice' }, { kind: 'ServiceAccount', name: 'robot', namespace: 'default' }]);
  assert.deepEqual(d('clusterrolebinding').roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cr' });
  assert.equal(d('clusterrolebinding').kind, 'ClusterRoleBinding');
  assert.deepEqual(d('job').spec, { template: { spec: { containers: [{ name: 'j1', image: 'busybox', command: ['echo', 'hi'] }], restartPolicy: 'Never' } } });
  assert.equal(d('cronjob').spec.schedule, '*/5 * * * *');
  assert.equal(d('cronjob').spec.jobTemplate.spec.template.spec.restartPolicy, 'OnFailure');
  assert.deepEqual(d('quota').spec, { hard: { cpu: '1', memory: '1Gi', pods: '10' }, scopes: ['BestEffort'] });
  assert.deepEqual(d('pdb').spec, { minAvailable: 0, selector: { matchLabels: { app: 'web' } } });
  assert.deepEqual(d('priorityclass'), { apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: 'high' }, value: 1000, description: 'important', preemptionPolicy: 'Never' });
  assert.deepEqual(d('ingress').spec.rules, [{ host: 'foo.com', http: { paths: [{ path: '/bar', pathType: 'Exact', backend: { service: { name: 'svc1', port: { number: 8080 } } } }] } }]);
  assert.deepEqual(d('token').spec, { audiences: ['api'], expirationSeconds: 600 });
  assert.deepEqual(d('serviceaccount').metadata, { name: 'robot' });
  assert.equal(d('secret-dockercfg').type, 'kubernetes.io/dockerconfigjson');
  const pod = d('pod-debug-sysadmin');
  assert.deepEqual(pod.spec.volumes, [{ name: 'host-root', hostPath: { path: '/' } }]);
  assert.deepEqual(pod.spec.containers[0].securityContext, { privileged: true });
  assert.equal(pod.spec.hostPID, true);
  assert.deepEqual(pod.spec.tolerations, [{ operator: 'Exists' }]);
});

test('a full pod: env, envFrom, probes, resources, volumes, metadata with ownerReferences and time', () => {
  const container = sub(
    f(1, 'app'), f(2, 'img:1'), f(3, 'sh'), f(3, '-c'), f(5, ''),
    f(7, sub(f(1, 'A'), f(2, 'x'))),
    f(7, sub(f(1, 'B'), f(2, ''), f(3, sub(f(3, sub(f(1, sub(f(1, 'cm'))), f(2, 'k'), f(3, true))))))),
    f(7, sub(f(1, 'NODE'), f(3, sub(f(1, sub(f(1, 'v1'), f(2, 'spec.nodeName'))))))),
    f(19, sub(f(1, 'P_'), f(3, sub(f(1, sub(f(1, 'sec'))))))),
    f(8, sub(f(1, sub(f(1, 'cpu'), f(2, sub(f(1, '500m'))))), f(2, sub(f(1, 'memory'), f(2, sub(f(1, '64Mi'))))))),
    f(9, sub(f(1, 'data'), f(2, false), f(3, '/data'))),
    f(10, sub(f(1, sub(f(2, sub(f(1, '/healthz'), f(2, sub(f(1, 1), f(2, 0), f(3, 'http'))), f(4, 'HTTP'))))), f(2, 3), f(3, 1), f(4, 10), f(5, 1), f(6, 3))),
    f(11, sub(f(1, sub(f(3, sub(f(1, sub(f(1, 0), f(2, 8080))))))), f(2, 0))),
    f(16, false), f(17, false), f(18, false),
    f(15, sub(f(4, -1), f(5, true))), // runAsUser -1 is a 10-byte varint
  );
  const raw = msg(
    f(1, sub(
      f(1, 'p'), f(3, 'ns'), f(7, 0), f(8, sub(f(1, 1700000000), f(2, 0))),
      entry(11, 'app', 'p'),
      f(13, sub(f(5, 'apps/v1'), f(1, 'ReplicaSet'), f(3, 'rs'), f(4, 'uid-1'), f(6, true), f(7, true))),
      f(14, 'example.com/fin'),
    )),
    f(2, sub(
      f(1, sub(f(1, 'data'), f(2, sub(f(2, sub(f(1, ''))))))),
      f(1, sub(f(1, 'cfg'), f(2, sub(f(19, sub(f(1, sub(f(1, 'cm'))), f(3, 0o644))))))),
      f(2, container),
      f(3, 'Always'), f(4, 30), f(6, 'ClusterFirst'), f(11, false), f(12, false), f(13, false),
      f(7, sub(f(1, 'disk'), f(2, 'ssd'))),
      f(14, sub(f(2, 1000), f(4, 0), f(4, 5))), // supplementalGroups keeps a 0 element
    )),
    f(3, sub(f(1, 'Pending'))),
  );
  const pod = decodeK8sProtobuf(envelope('v1', 'Pod', raw)) as Record<string, any>;
  assert.deepEqual(pod.metadata, {
    name: 'p', namespace: 'ns', creationTimestamp: '2023-11-14T22:13:20Z', labels: { app: 'p' },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'uid-1', controller: true, blockOwnerDeletion: true }],
    finalizers: ['example.com/fin'],
  });
  assert.equal(pod.status, undefined);
  assert.deepEqual(pod.spec.volumes, [{ name: 'data', emptyDir: {} }, { name: 'cfg', configMap: { name: 'cm', defaultMode: 0o644 } }]);
  assert.equal(pod.spec.terminationGracePeriodSeconds, 30);
  assert.deepEqual(pod.spec.nodeSelector, { disk: 'ssd' });
  assert.equal(pod.spec.hostNetwork, undefined);
  assert.deepEqual(pod.spec.securityContext, { runAsUser: 1000, supplementalGroups: [0, 5] });
  const c = pod.spec.containers[0];
  assert.deepEqual(c.command, ['sh', '-c']);
  assert.equal(c.workingDir, undefined);
  assert.deepEqual(c.env, [
    { name: 'A', value: 'x' },
    { name: 'B', valueFrom: { configMapKeyRef: { name: 'cm', key: 'k', optional: true } } },
    { name: 'NODE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'spec.nodeName' } } },
  ]);
  assert.deepEqual(c.envFrom, [{ prefix: 'P_', secretRef: { name: 'sec' } }]);
  assert.deepEqual(c.resources, { limits: { cpu: '500m' }, requests: { memory: '64Mi' } });
  assert.deepEqual(c.volumeMounts, [{ name: 'data', mountPath: '/data' }]);
  assert.deepEqual(c.livenessProbe, { httpGet: { path: '/healthz', port: 'http', scheme: 'HTTP' }, initialDelaySeconds: 3, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 });
  assert.deepEqual(c.readinessProbe, { tcpSocket: { port: 8080 } });
  assert.deepEqual(c.securityContext, { runAsUser: -1, runAsNonRoot: true });
  assert.equal(c.stdin, undefined);
});

test('unknown fields of every wire type are skipped', () => {
  const fixed64 = Buffer.concat([varint(99 * 8 + 1), Buffer.alloc(8, 7)]);
  const fixed32 = Buffer.concat([varint(98 * 8 + 5), Buffer.alloc(4, 7)]);
  const raw = Buffer.concat([fixed64, msg(f(1, Buffer.concat([msg(f(1, 'x'), f(50, 'junk'), f(51, 12345)), fixed32])), f(77, sub(f(1, 'y'))))]);
  assert.deepEqual(decodeK8sProtobuf(envelope('v1', 'Namespace', raw)), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } });
});

test('garbage, truncation and unknown kinds are 400 BadRequest', () => {
  assertBadRequest(() => decodeK8sProtobuf(Buffer.from('{"kind":"Namespace"}')));
  assertBadRequest(() => decodeK8sProtobuf(Buffer.alloc(0)));
  const good = fixture('deployment');
  for (let n = 5; n < good.length; n += 7) {
    // every prefix either decodes (a prefix can end on a field boundary) or is a BadRequest
    try { decodeK8sProtobuf(good.subarray(0, n)); } catch (e) { assert.ok(e instanceof StatusError && e.code === 400, `prefix ${n}: ${e}`); }
  }
  assertBadRequest(() => decodeK8sProtobuf(Buffer.concat([Buffer.from('k8s\0', 'binary'), Buffer.from([0x0a, 0x50, 0x01])])));
  assertBadRequest(() => decodeK8sProtobuf(Buffer.concat([Buffer.from('k8s\0', 'binary'), Buffer.from([0x0b, 0x00])]))); // group wire type
  assertBadRequest(() => decodeK8sProtobuf(Buffer.concat([Buffer.from('k8s\0', 'binary'), Buffer.alloc(12, 0xff)]))); // over-long varint
  assertBadRequest(() => decodeK8sProtobuf(envelope('example.com/v1', 'Widget', msg(f(1, sub(f(1, 'w')))))));
  assertBadRequest(() => decodeK8sProtobuf(envelope('v1', 'Namespace', msg([1, 5])))); // metadata as a varint
  // random bytes after the magic never throw anything but a StatusError
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256;
  for (let i = 0; i < 200; i++) {
    const body = Buffer.concat([Buffer.from('k8s\0', 'binary'), Buffer.from(Array.from({ length: 1 + (i % 40) }, rnd))]);
    try { decodeK8sProtobuf(body); } catch (e) { assert.ok(e instanceof StatusError && e.code === 400); }
  }
});
