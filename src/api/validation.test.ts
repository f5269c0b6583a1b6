import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaulters } from './defaults.js';
import { validators } from './validation.js';
import type { KObject } from './types.js';

/** Default then validate, as the server does; returns `field: message` lines. */
function check(obj: KObject, old?: KObject): string[] {
  defaulters[obj.kind!]?.(obj);
  return validators[obj.kind!]!(obj, old).map((e) => `${e.field}: ${e.message}`);
}
const meta = (name = 'x') => ({ name, namespace: 'default' });
const pod = (spec: Record<string, unknown>): KObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: meta('web'), spec });
const ctr = (extra: Record<string, unknown> = {}) => ({ name: 'web', image: 'nginx', ...extra });

test('a valid pod has no errors', () => {
  assert.deepEqual(check(pod({ containers: [ctr({ ports: [{ containerPort: 80, name: 'http' }] })] })), []);
});

test('pod: containers and image required', () => {
  assert.deepEqual(check(pod({})), ['spec.containers: Required value']);
  assert.deepEqual(check(pod({ containers: [{ name: 'web' }] })), ['spec.containers[0].image: Required value']);
});

test('pod: container names are DNS labels and unique across init containers', () => {
  assert.deepEqual(check(pod({ containers: [ctr(), ctr()], initContainers: [ctr()] })), [
    'spec.containers[1].name: Duplicate value: "web"',
    'spec.initContainers[0].name: Duplicate value: "web"',
  ]);
  const errs = check(pod({ containers: [ctr({ name: 'Web_1' })] }));
  assert.equal(errs.length, 1);
  assert.match(errs[0]!, /^spec\.containers\[0\]\.name: Invalid value: "Web_1": a lowercase RFC 1123 label must consist of/);
});

test('pod: ports', () => {
  assert.deepEqual(check(pod({ containers: [ctr({ ports: [{ containerPort: 70000, protocol: 'HTTP', name: 'a' }, { containerPort: 81, name: 'a' }] })] })), [
    'spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive',
    'spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
    'spec.containers[0].ports[1].name: Duplicate value: "a"',
  ]);
});

test('pod: restartPolicy and dnsPolicy values', () => {
  assert.deepEqual(check(pod({ containers: [ctr()], restartPolicy: 'Sometimes', dnsPolicy: 'Google' })), [
    'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
    'spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"',
  ]);
});

test('pod: requests above limits, bad quantities', () => {
  assert.deepEqual(check(pod({ containers: [ctr({ resources: { requests: { cpu: '2000m' }, limits: { cpu: '1' } } })] })), [
    'spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal to cpu limit of 1',
  ]);
  assert.deepEqual(check(pod({ containers: [ctr({ resources: { requests: { memory: '1Gi' }, limits: { memory: '512Mi' } } })] })), [
    'spec.containers[0].resources.requests: Invalid value: "1Gi": must be less than or equal to memory limit of 512Mi',
  ]);
  const bad = check(pod({ containers: [ctr({ resources: { requests: { cpu: 'lots' } } })] }));
  assert.equal(bad.length, 1);
  assert.match(bad[0]!, /^spec\.containers\[0\]\.resources\.requests\[cpu\]: Invalid value: "lots": quantities must match/);
});

test('pod: volumes unique, mounts must name a volume', () => {
  assert.deepEqual(check(pod({ containers: [ctr({ volumeMounts: [{ name: 'x', mountPath: '/x' }] })], volumes: [{ name: 'a', emptyDir: {} }, { name: 'a', emptyDir: {} }] })), [
    'spec.volumes[1].name: Duplicate value: "a"',
    'spec.containers[0].volumeMounts[0].name: Not found: "x"',
  ]);
});

test('pod: negative grace period', () => {
  assert.deepEqual(check(pod({ containers: [ctr()], terminationGracePeriodSeconds: -1 })), ['spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0']);
});

test('pod update: image may change, ports may not', () => {
  const old = pod({ containers: [ctr({ image: 'nginx:1', ports: [{ containerPort: 80 }] })] });
  defaulters.Pod!(old);
  assert.deepEqual(check(pod({ containers: [ctr({ image: 'nginx:2', ports: [{ containerPort: 80 }] })] }), old), []);
  assert.deepEqual(check(pod({ containers: [ctr({ image: 'nginx:1', ports: [{ containerPort: 81 }] })] }), old), [
    'spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
  ]);
  assert.deepEqual(check(pod({ containers: [ctr({ image: 'nginx:1', ports: [{ containerPort: 80 }] })], tolerations: [{ key: 'k', operator: 'Exists' }] }), old), []);
});

const deployment = (spec: Record<string, unknown>): KObject => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta('web'), spec });
const template = (labels: Record<string, string>) => ({ metadata: { labels }, spec: { containers: [ctr()] } });

test('deployment: selector required and must match template labels', () => {
  assert.deepEqual(check(deployment({ selector: { matchLabels: { app: 'web' } }, template: template({ app: 'web' }) })), []);
  assert.deepEqual(check(deployment({ template: template({ app: 'web' }) })), ['spec.selector: Required value']);
  assert.deepEqual(check(deployment({ selector: { matchLabels: { app: 'web' } }, template: template({ app: 'x' }) })), [
    'spec.template.metadata.labels: Invalid value: map[string]string{"app":"x"}: `selector` does not match template `labels`',
  ]);
  assert.deepEqual(check(deployment({ selector: {}, template: template({ app: 'x' }) })), [
    'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment',
  ]);
});

test('deployment: replicas, strategy, template pod spec paths', () => {
  assert.deepEqual(check(deployment({ replicas: -1, selector: { matchLabels: { app: 'web' } }, strategy: { type: 'Blue' }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web' }], restartPolicy: 'Never' } } })), [
    'spec.replicas: Invalid value: -1: must be greater than or equal to 0',
    'spec.template.spec.containers[0].image: Required value',
    'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"',
    'spec.strategy.type: Unsupported value: "Blue": supported values: "Recreate", "RollingUpdate"',
  ]);
});

test('deployment update: selector is immutable', () => {
  const old = deployment({ selector: { matchLabels: { app: 'web' } }, template: template({ app: 'web' }) });
  defaulters.Deployment!(old);
  assert.deepEqual(check(deployment({ selector: { matchLabels: { app: 'web2' } }, template: template({ app: 'web2' }) }), old), [
    'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable',
  ]);
});

test('statefulset and daemonset reuse the selector checks', () => {
  const sts: KObject = { kind: 'StatefulSet', metadata: meta('db'), spec: { selector: { matchLabels: { app: 'db' } }, template: template({ app: 'other' }) } };
  assert.deepEqual(check(sts), ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: `selector` does not match template `labels`']);
  const ds: KObject = { kind: 'DaemonSet', metadata: meta('agent'), spec: { selector: { matchLabels: { app: 'a' } }, template: template({ app: 'a' }) } };
  assert.deepEqual(check(ds), []);
});

test('job: restartPolicy must be OnFailure or Never', () => {
  const job = (rp?: string): KObject => ({ kind: 'Job', metadata: meta('j'), spec: { template: { spec: { containers: [ctr()], ...(rp ? { restartPolicy: rp } : {}) } } } });
  assert.deepEqual(check(job('Never')), []);
  assert.deepEqual(check(job()), ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"']);
  // as upstream: the pod spec check and the Job check both report it
  assert.deepEqual(check(job('Sometimes')), [
    'spec.template.spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
    'spec.template.spec.restartPolicy: Unsupported value: "Sometimes": supported values: "OnFailure", "Never"',
  ]);
});

test('service: ports, names, protocol, type', () => {
  const svc = (spec: Record<string, unknown>, name = 'web'): KObject => ({ kind: 'Service', metadata: meta(name), spec });
  assert.deepEqual(check(svc({ ports: [{ port: 80 }] })), []);
  assert.deepEqual(check(svc({})), ['spec.ports: Required value']);
  assert.deepEqual(check(svc({ clusterIP: 'None' })), []);
  assert.deepEqual(check(svc({ type: 'Magic', ports: [{ port: 0, protocol: 'ICMP' }, { name: 'b', port: 81 }] })), [
    'spec.ports[0].name: Required value',
    'spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive',
    'spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
    // targetPort defaults to port, so it is invalid too (as upstream)
    'spec.ports[0].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive',
    'spec.type: Unsupported value: "Magic": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
  ]);
  assert.deepEqual(check(svc({ ports: [{ name: 'a', port: 80 }, { name: 'a', port: 81 }] })), ['spec.ports[1].name: Duplicate value: "a"']);
  const bad = check(svc({ ports: [{ port: 80 }] }, '1web'));
  assert.match(bad[0]!, /^metadata\.name: Invalid value: "1web": a DNS-1035 label must consist of/);
});

test('configmap: keys, immutable', () => {
  const cm = (data: Record<string, string>, immutable?: boolean): KObject => ({ kind: 'ConfigMap', metadata: meta('c'), data, ...(immutable ? { immutable } : {}) });
  assert.deepEqual(check(cm({ 'a b': 'x' })), [
    "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
  ]);
  assert.deepEqual(check(cm({ a: '2' }, true), cm({ a: '1' }, true)), ['data: Forbidden: field is immutable when `immutable` is set']);
  assert.deepEqual(check(cm({ a: '1' }), cm({ a: '1' }, true)), ['immutable: Forbidden: field is immutable when `immutable` is set']);
  assert.deepEqual(check(cm({ a: 'x'.repeat(1024 * 1024 + 1) })), [': Too long: may not be more than 1048576 bytes']);
});

test('secret: base64 values, type rules', () => {
  assert.deepEqual(check({ kind: 'Secret', metadata: meta('s'), data: { a: 'aGk=' } }), []);
  assert.deepEqual(check({ kind: 'Secret', metadata: meta('s'), data: { a: 'not base64!' } }), ['data[a]: Invalid value: "<secret contents redacted>": illegal base64 data']);
  assert.deepEqual(check({ kind: 'Secret', metadata: meta('s'), type: 'kubernetes.io/tls', data: { 'tls.crt': 'eA==' } }), ['data[tls.key]: Required value']);
});

test('namespace names are DNS labels', () => {
  const errs = check({ kind: 'Namespace', metadata: { name: 'a.b' } });
  assert.equal(errs.length, 1);
  assert.match(errs[0]!, /^metadata\.name: Invalid value: "a\.b": a lowercase RFC 1123 label must consist of/);
});
