import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Container, Pod } from 'kubernetes-types/core/v1.js';
import { RestClient } from '../../client/rest-client.js';
import { FakeApiServer } from '../../client/testing/fake-apiserver.js';
import { ContainerConfigError, containerEnv, containerVariables, expandCommandAndArgs, expandVars, lookupIn, mergeEnv } from './env.js';

const cms = { group: '', plural: 'configmaps' };
const secrets = { group: '', plural: 'secrets' };
const b64 = (s: string): string => Buffer.from(s).toString('base64');

let server: FakeApiServer;
let client: RestClient;
before(async () => {
  server = await FakeApiServer.start();
  client = new RestClient({ server: server.url });
  server.put(cms, { metadata: { namespace: 'default', name: 'app-config' }, data: { LOG_LEVEL: 'debug', MODE: 'fast', '1bad': 'x', 'with=eq': 'y' } });
  server.put(cms, { metadata: { namespace: 'default', name: 'other' }, data: { greeting: 'hello' } });
  server.put(secrets, { metadata: { namespace: 'default', name: 'db' }, data: { password: b64('s3cr3t'), user: b64('admin') } });
});
after(async () => { client.close(); await server.close(); });

function pod(container: Container, extra: Partial<Pod['spec']> = {}): Pod {
  return {
    metadata: { name: 'web-1', namespace: 'default', uid: 'uid-123', labels: { app: 'web', tier: 'front' }, annotations: { note: 'a "quoted" value' } },
    spec: { nodeName: 'node-a', serviceAccountName: 'builder', containers: [container], ...extra },
    status: { podIP: '10.42.0.7', podIPs: [{ ip: '10.42.0.7' }, { ip: 'fd00::7' }], hostIP: '192.168.1.5' },
  };
}

test('expansion follows upstream: $$ escapes, unknown and unclosed references stay as written', () => {
  const look = lookupIn({ A: 'a', EMPTY: '' });
  assert.equal(expandVars('$(A)-$(A)', look), 'a-a');
  assert.equal(expandVars('$$(A)', look), '$(A)');
  assert.equal(expandVars('$(MISSING)', look), '$(MISSING)');
  assert.equal(expandVars('x$(EMPTY)y', look), 'xy');
  assert.equal(expandVars('$(A', look), '$(A');
  assert.equal(expandVars('$A and $', look), '$A and $');
  assert.equal(expandVars('$$$$', look), '$$');
  assert.equal(expandVars('$()', look), '$()');
  assert.equal(expandVars('no refs', look), 'no refs');
});

test('image env, then envFrom with prefix, then env overriding, $(VAR) against earlier values and services', async () => {
  const c: Container = {
    name: 'app', image: 'busybox',
    envFrom: [{ configMapRef: { name: 'app-config' } }, { prefix: 'DB_', secretRef: { name: 'db' } }],
    env: [
      { name: 'MODE', value: 'slow' },
      { name: 'URL', value: 'postgres://$(DB_user):$(DB_password)@$(DB_SERVICE_HOST)/$(UNKNOWN)' },
      { name: 'PATH', value: '/app/bin' },
      { name: 'LITERAL', value: '$$(MODE)' },
    ],
  };
  const invalid: string[] = [];
  const env = await containerEnv(pod(c), c, {
    client, imageEnv: ['PATH=/usr/bin:/bin', 'HOME=/root'], hostname: 'web-1',
    serviceEnv: { DB_SERVICE_HOST: '10.43.0.10', KUBERNETES_SERVICE_HOST: '10.43.0.1', MODE: 'from-service' },
    onInvalidKeys: (m) => invalid.push(m),
  });
  assert.deepEqual(env, [
    'HOSTNAME=web-1',
    'PATH=/app/bin', // replaced in place
    'HOME=/root',
    'LOG_LEVEL=debug',
    'MODE=slow', // env overrides envFrom, and a service variable does not override either
    '1bad=x', // a valid name under the relaxed rule of 1.32
    'DB_password=s3cr3t',
    'DB_user=admin',
    'URL=postgres://admin:s3cr3t@10.43.0.10/$(UNKNOWN)',
    'LITERAL=$(MODE)',
    'DB_SERVICE_HOST=10.43.0.10',
    'KUBERNETES_SERVICE_HOST=10.43.0.1',
  ]);
  assert.deepEqual(invalid, ['Keys [with=eq] from the EnvFrom configMap default/app-config were skipped since they are considered invalid environment variable names.']);
});

test('valueFrom: fieldRef, resourceFieldRef with divisor and node allocatable fallback, configMap and secret keys', async () => {
  const c: Container = {
    name: 'app', image: 'busybox',
    resources: { limits: { cpu: '1500m' }, requests: { cpu: '250m', memory: '64Mi' } },
    env: [
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
      { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
      { name: 'NOTE', valueFrom: { fieldRef: { fieldPath: "metadata.annotations['note']" } } },
      { name: 'NOPE', valueFrom: { fieldRef: { fieldPath: "metadata.labels['absent']" } } },
      { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      { name: 'SA', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
      { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'POD_IPS', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } },
      { name: 'CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } }, // ceil(1.5) = 2
      { name: 'CPU_LIMIT_M', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } } },
      { name: 'CPU_REQ_M', valueFrom: { resourceFieldRef: { resource: 'requests.cpu', divisor: '1m' } } },
      { name: 'MEM_REQ_MI', valueFrom: { resourceFieldRef: { resource: 'requests.memory', divisor: '1Mi' } } },
      { name: 'MEM_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.memory' } } }, // unset → node allocatable
      { name: 'GREETING', valueFrom: { configMapKeyRef: { name: 'other', key: 'greeting' } } },
      { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } },
      { name: 'OPT_KEY', valueFrom: { configMapKeyRef: { name: 'other', key: 'absent', optional: true } } },
      { name: 'OPT_CM', valueFrom: { configMapKeyRef: { name: 'absent', key: 'x', optional: true } } },
      { name: 'OPT_SECRET', valueFrom: { secretKeyRef: { name: 'absent', key: 'x', optional: true } } },
      { name: 'EMPTY', value: '' },
    ],
  };
  const vars = await containerVariables(pod(c), c, { client, nodeAllocatable: { cpu: '4', memory: '2Gi' } });
  assert.deepEqual(Object.fromEntries(vars), {
    POD_NAME: 'web-1', POD_NS: 'default', POD_UID: 'uid-123', APP: 'web', NOTE: 'a "quoted" value', NOPE: '',
    NODE: 'node-a', SA: 'builder', HOST_IP: '192.168.1.5', POD_IP: '10.42.0.7', POD_IPS: '10.42.0.7,fd00::7',
    CPU_LIMIT: '2', CPU_LIMIT_M: '1500', CPU_REQ_M: '250', MEM_REQ_MI: '64', MEM_LIMIT: String(2 * 1024 ** 3),
    GREETING: 'hello', PASSWORD: 's3cr3t', EMPTY: '',
  });

  // IPs given by the worker win over a status not written yet
  const v2 = await containerVariables({ ...pod(c), status: {} }, { name: 'app', env: [{ name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }] }, { client, podIPs: ['10.42.0.9'] });
  assert.equal(v2.get('IP'), '10.42.0.9');
});

test('errors name what is missing in the kubelet\'s words', async () => {
  const cases: [Container, RegExp][] = [
    [{ name: 'a', envFrom: [{ configMapRef: { name: 'nope' } }] }, /^configmap "nope" not found$/],
    [{ name: 'a', envFrom: [{ secretRef: { name: 'nope' } }] }, /^secret "nope" not found$/],
    [{ name: 'a', env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'other', key: 'x' } } }] }, /^couldn't find key x in ConfigMap default\/other$/],
    [{ name: 'a', env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'y', key: 'x' } } }] }, /^configmap "y" not found$/],
    [{ name: 'a', env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'db', key: 'token' } } }] }, /^couldn't find key token in Secret default\/db$/],
    [{ name: 'a', env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'gone', key: 'token' } } }] }, /^secret "gone" not found$/],
    [{ name: 'a', env: [{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'spec.bogus' } } }] }, /^unsupported fieldPath: spec.bogus$/],
    [{ name: 'a', env: [{ name: 'X', valueFrom: { resourceFieldRef: { resource: 'limits.gpu' } } }] }, /^unsupported container resource : limits.gpu$/],
  ];
  for (const [c, re] of cases) {
    await assert.rejects(containerEnv(pod(c), c, { client, imageEnv: [] }), (e: unknown) => {
      assert.ok(e instanceof ContainerConfigError, String(e));
      assert.equal(e.reason, 'CreateContainerConfigError');
      assert.match(e.message, re);
      return true;
    });
  }
  // optional envFrom sources that are missing are skipped
  const c: Container = { name: 'a', envFrom: [{ configMapRef: { name: 'nope', optional: true } }, { secretRef: { name: 'nope', optional: true } }], env: [{ name: 'K', value: 'v' }] };
  assert.deepEqual(await containerEnv(pod(c), c, { client, imageEnv: [] }), ['K=v']);
});

test('a transient API failure is a config error too (the worker retries on its next sync)', async () => {
  server.injectFailure({ method: 'GET', pathIncludes: '/configmaps/other', status: 500, body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'boom', reason: 'InternalError', code: 500 } });
  const c: Container = { name: 'a', envFrom: [{ configMapRef: { name: 'other', optional: true } }] };
  await assert.rejects(containerEnv(pod(c), c, { client, imageEnv: [] }), (e: unknown) => e instanceof ContainerConfigError && /failed to fetch configmap "other"/.test(e.message));
});

test('command and args expand against the container variables only', () => {
  const vars = new Map([['GREETING', 'hi'], ['N', '3']]);
  const got = expandCommandAndArgs({ name: 'a', command: ['sh', '-c', 'echo $(GREETING) $(N) $(PATH) $$(N)'], args: ['$(N)'] }, vars);
  assert.deepEqual(got, { command: ['sh', '-c', 'echo hi 3 $(PATH) $(N)'], args: ['3'] });
  assert.deepEqual(mergeEnv(['A=1', 'B=2', 'A=3', 'BARE'], { B: 'x', C: 'y' }), ['A=3', 'B=x', 'BARE', 'C=y']);
});
