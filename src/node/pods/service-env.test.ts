// Service variables as a container sees them (`env | grep WEB_`), upstream's names and values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Service } from 'kubernetes-types/core/v1.js';
import { serviceEnvFor } from './service-env.js';

const svc = (ns: string, name: string, ip: string, ports: { name?: string; port: number; protocol?: string }[], type?: string): Service =>
  ({ metadata: { namespace: ns, name }, spec: { clusterIP: ip, ports: ports as Service['spec'] extends infer S ? S extends { ports?: infer P } ? P : never : never, ...(type ? { type } : {}) } });

test('service links for the pod namespace and the kubernetes service', () => {
  const services = [
    svc('default', 'kubernetes', '10.43.0.1', [{ name: 'https', port: 443 }]),
    svc('shop', 'web-front', '10.43.1.5', [{ name: 'http', port: 80 }, { name: 'metrics', port: 9090, protocol: 'TCP' }]),
    svc('shop', 'headless', 'None', [{ port: 80 }]),
    svc('other', 'db', '10.43.1.9', [{ port: 5432 }]),
  ];
  const env = serviceEnvFor({ metadata: { namespace: 'shop' }, spec: { containers: [] } }, services);
  assert.equal(env.KUBERNETES_SERVICE_HOST, '10.43.0.1');
  assert.equal(env.KUBERNETES_SERVICE_PORT, '443');
  assert.equal(env.KUBERNETES_SERVICE_PORT_HTTPS, '443');
  assert.equal(env.WEB_FRONT_SERVICE_HOST, '10.43.1.5');
  assert.equal(env.WEB_FRONT_SERVICE_PORT, '80');
  assert.equal(env.WEB_FRONT_SERVICE_PORT_METRICS, '9090');
  assert.equal(env.WEB_FRONT_PORT, 'tcp://10.43.1.5:80');
  assert.equal(env.WEB_FRONT_PORT_9090_TCP, 'tcp://10.43.1.5:9090');
  assert.equal(env.WEB_FRONT_PORT_9090_TCP_ADDR, '10.43.1.5');
  assert.equal(env.WEB_FRONT_PORT_9090_TCP_PROTO, 'tcp');
  assert.equal(env.HEADLESS_SERVICE_HOST, undefined);
  assert.equal(env.DB_SERVICE_HOST, undefined);
  const off = serviceEnvFor({ metadata: { namespace: 'shop' }, spec: { containers: [], enableServiceLinks: false } }, services);
  assert.deepEqual(Object.keys(off).filter((k) => !k.startsWith('KUBERNETES_')), []);
  assert.equal(off.KUBERNETES_SERVICE_HOST, '10.43.0.1');
});
