// Image reference normalization as docker/containerd do it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseImageRef, splitForDisplay, InvalidReferenceError } from './reference.js';

const D = `sha256:${'a'.repeat(64)}`;

test('short names become docker.io/library/<name>:latest', () => {
  const r = parseImageRef('busybox');
  assert.deepEqual(r, { domain: 'docker.io', path: 'library/busybox', name: 'docker.io/library/busybox', tag: 'latest', digest: undefined, ref: 'docker.io/library/busybox:latest' });
  assert.equal(parseImageRef('nginx:1.27').ref, 'docker.io/library/nginx:1.27');
  assert.equal(parseImageRef('bitnami/redis').ref, 'docker.io/bitnami/redis:latest');
  assert.equal(parseImageRef('index.docker.io/library/busybox:1').ref, 'docker.io/library/busybox:1');
  assert.equal(parseImageRef('docker.io/busybox').ref, 'docker.io/library/busybox:latest');
});

test('registries with ports, localhost and dotted hosts keep their domain', () => {
  const r = parseImageRef('127.0.0.1:5000/rt/bb:v1');
  assert.equal(r.domain, '127.0.0.1:5000');
  assert.equal(r.path, 'rt/bb');
  assert.equal(r.tag, 'v1');
  assert.equal(r.ref, '127.0.0.1:5000/rt/bb:v1');
  assert.equal(parseImageRef('localhost/x').ref, 'localhost/x:latest');
  assert.equal(parseImageRef('localhost:5000/x').domain, 'localhost:5000');
  assert.equal(parseImageRef('registry.k8s.io/pause:3.10').ref, 'registry.k8s.io/pause:3.10');
  assert.equal(parseImageRef('Registry.Example/app').domain, 'Registry.Example');
  assert.equal(parseImageRef('[::1]:5000/a/b').domain, '[::1]:5000');
});

test('digests: no :latest added; tag and digest together are kept', () => {
  const r = parseImageRef(`busybox@${D}`);
  assert.equal(r.ref, `docker.io/library/busybox@${D}`);
  assert.equal(r.tag, undefined);
  assert.equal(r.digest, D);
  assert.equal(parseImageRef(`127.0.0.1:5000/rt/bb:v1@${D}`).ref, `127.0.0.1:5000/rt/bb:v1@${D}`);
});

test('invalid references are rejected with the reference library wording', () => {
  const bad: [string, RegExp][] = [
    ['', /invalid reference format/],
    ['Busybox', /repository name \(library\/Busybox\) must be lowercase/],
    ['busybox:', /invalid reference format/],
    ['a//b', /invalid reference format/],
    ['busybox@sha256:abc', /invalid reference format/],
    [`busybox@sha256:${'a'.repeat(63)}`, /invalid checksum digest length/],
    [`busybox@md5:${'a'.repeat(32)}`, /unsupported digest algorithm/],
    ['a'.repeat(64), /cannot specify 64-byte hexadecimal strings/],
    ['-leading/dash', /invalid reference format/],
    [`x/${'a'.repeat(300)}`, /must not be more than 255 characters/],
    ['has space', /invalid reference format/],
  ];
  for (const [s, re] of bad) {
    assert.throws(() => parseImageRef(s), (e: unknown) => e instanceof InvalidReferenceError && re.test((e as Error).message), s);
  }
});

test('display split', () => {
  assert.deepEqual(splitForDisplay('127.0.0.1:5000/rt/bb:v1'), { repository: '127.0.0.1:5000/rt/bb', tag: 'v1', digest: '<none>' });
  assert.deepEqual(splitForDisplay(`docker.io/library/busybox@${D}`), { repository: 'docker.io/library/busybox', tag: '<none>', digest: D });
});
