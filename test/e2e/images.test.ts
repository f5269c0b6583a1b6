// The node's image service against a real registry (Debian's docker-registry on 127.0.0.1, see
// registry.ts): pulls of OCI and Docker images and indexes, pull policies as the kubelet applies
// them, shared concurrent pulls, digest verification, clear errors, Basic and Bearer auth from
// imagePullSecrets and registries.yaml, mirrors, garbage collection, and the `kyb images` command.
// Needs root (layers are unpacked with owners, device whiteouts and xattrs) and the Debian
// packages docker-registry, apache2-utils and openssl.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore, ImagePullError, buildBusyboxImage } from '../../src/node/images/index.js';
import { makeImage, makeIndex, file, dir, type FixtureImage } from '../../src/node/images/testing/fixtures.js';
import { runImagesCommand } from '../../src/cli/images.js';
import { startRegistry, type TestRegistry } from './registry.js';

const skip = process.getuid?.() !== 0 ? 'needs root' : false;

let reg: TestRegistry;
let work: string;
const img1 = makeImage({ layers: [[dir('etc'), file('etc/hello', 'one\n')], [file('two', '2')]], cmd: ['/bin/true'], label: 'v1' });
const img2 = makeImage({ layers: [[dir('etc'), file('etc/hello', 'one\n')], [file('two', 'changed')]], label: 'v2' });
const dockerImg = makeImage({ layers: [[file('docker', 'yes')]], docker: true, label: 'docker' });
const amd = makeImage({ layers: [[file('arch', 'amd64')]], label: 'amd' });
const riscv = makeImage({ layers: [[file('arch', 'riscv64')]], arch: 'riscv64', label: 'riscv' });
const ociIndex = makeIndex([{ image: riscv, arch: 'riscv64' }, { image: amd, arch: 'amd64' }]);
const dockerAmd = makeImage({ layers: [[file('arch', 'amd64-docker')]], docker: true, label: 'damd' });
const dockerRiscv = makeImage({ layers: [[file('arch', 'riscv64-docker')]], docker: true, arch: 'riscv64', label: 'driscv' });
const dockerList = makeIndex([{ image: dockerRiscv, arch: 'riscv64' }, { image: dockerAmd, arch: 'amd64' }], true);
const corruptLayer = makeImage({ layers: [[file('big', 'x'.repeat(4096))]], label: 'corrupt-layer' });
const corruptManifest = makeImage({ layers: [[file('m', 'm')]], label: 'corrupt-manifest' });

function store(name: string, registriesConfig?: string): ImageStore {
  return new ImageStore({ root: join(work, name), registriesConfig });
}

function requestsSince(n: number): string[] {
  return reg.requests.slice(n).map((r) => `${r.method} ${r.path.replace(/sha256:[a-f0-9]{64}/, (d) => `<${d.slice(7, 15)}>`)}`);
}

function blobGets(img: FixtureImage, from = 0): number {
  return reg.requests.slice(from).filter((r) => r.method === 'GET' && img.layers.some((l) => r.path.endsWith(l.digest))).length;
}

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'kyb-images-e2e-'));
  reg = await startRegistry();
  await reg.pushImage('rt/app', 'v1', img1);
  await reg.pushImage('rt/docker', 'v1', dockerImg);
  await reg.pushIndex('rt/multi', 'oci', ociIndex, [riscv, amd]);
  await reg.pushIndex('rt/multi', 'docker', dockerList, [dockerRiscv, dockerAmd]);
  await reg.pushImage('rt/corrupt', 'layer', corruptLayer);
  reg.corrupt(corruptLayer.layers[0].digest);
  await reg.pushImage('rt/corrupt', 'manifest', corruptManifest);
  // a change inside a JSON string: still valid JSON, same length, different digest
  const at = corruptManifest.manifest.indexOf(corruptManifest.configDigest.slice(7)) + 3;
  reg.corrupt(corruptManifest.manifestDigest, at);
});

after(async () => {
  await reg?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('pulls from a plain-HTTP local registry (OCI and Docker media types), verified and unpacked', { skip }, async () => {
  const s = store('plain');
  const r = await s.ensure(`${reg.host}/rt/app:v1`, 'IfNotPresent');
  assert.equal(r.id, img1.configDigest);
  assert.equal(r.ref, `${reg.host}/rt/app:v1`);
  assert.equal(r.repoDigest, `${reg.host}/rt/app@${img1.manifestDigest}`);
  assert.deepEqual(r.config.cmd, ['/bin/true']);
  assert.equal(readFileSync(join(r.layerDirs[0], 'etc/hello'), 'utf8'), 'one\n');
  assert.equal(readFileSync(join(r.layerDirs[1], 'two'), 'utf8'), '2');
  const d = await s.ensure(`${reg.host}/rt/docker:v1`, 'IfNotPresent');
  assert.equal(d.id, dockerImg.configDigest);
  assert.equal(readFileSync(join(d.layerDirs[0], 'docker'), 'utf8'), 'yes');
  const list = await s.list();
  assert.deepEqual(list.find((i) => i.id === img1.configDigest)?.repoTags, [`${reg.host}/rt/app:v1`]);
});

test('IfNotPresent and Never do not contact the registry; Always only checks an unchanged tag and re-pulls a moved one', { skip }, async () => {
  const s = store('policy');
  const ref = `${reg.host}/rt/policy:v1`;
  await reg.pushImage('rt/policy', 'v1', img1);
  let n = reg.requests.length;
  assert.equal((await s.ensure(ref, 'IfNotPresent')).id, img1.configDigest);
  assert.ok(blobGets(img1, n) === 2, 'first pull fetches both layers');

  n = reg.requests.length;
  assert.equal((await s.ensure(ref, 'IfNotPresent')).id, img1.configDigest);
  assert.equal((await s.ensure(ref, 'Never')).id, img1.configDigest);
  assert.deepEqual(requestsSince(n), [], 'no request for a present image');

  n = reg.requests.length;
  assert.equal((await s.ensure(ref, 'Always')).id, img1.configDigest);
  assert.deepEqual(requestsSince(n), ['HEAD /v2/rt/policy/manifests/v1'], 'an unchanged tag costs one HEAD');

  await reg.pushImage('rt/policy', 'v1', img2);
  n = reg.requests.length;
  const moved = await s.ensure(ref, 'Always');
  assert.equal(moved.id, img2.configDigest);
  assert.equal(blobGets(img2, n), 1, 'only the changed layer is downloaded');
  assert.equal(readFileSync(join(moved.layerDirs[1], 'two'), 'utf8'), 'changed');
  // the old image keeps its repo digest until garbage-collected, as with containerd
  const old = (await s.list()).find((i) => i.id === img1.configDigest);
  assert.deepEqual(old?.repoTags, []);
  assert.deepEqual(old?.repoDigests, [`${reg.host}/rt/policy@${img1.manifestDigest}`]);
  // and a pull by digest of a present image needs nothing
  n = reg.requests.length;
  assert.equal((await s.ensure(`${reg.host}/rt/policy@${img1.manifestDigest}`, 'IfNotPresent')).id, img1.configDigest);
  assert.deepEqual(requestsSince(n), []);
});

test('concurrent ensure() of the same image share one pull', { skip }, async () => {
  const s = store('concurrent');
  const n = reg.requests.length;
  const rs = await Promise.all(Array.from({ length: 6 }, () => s.ensure(`${reg.host}/rt/app:v1`, 'IfNotPresent')));
  assert.deepEqual(new Set(rs.map((r) => r.id)), new Set([img1.configDigest]));
  assert.equal(blobGets(img1, n), 2, 'each layer fetched once');
  assert.equal(requestsSince(n).filter((r) => r.includes('/manifests/')).length, 2, 'one HEAD and one GET of the manifest');
});

test('an OCI index and a Docker manifest list resolve to linux/amd64', { skip }, async () => {
  const s = new ImageStore({ root: join(work, 'multi'), arch: 'amd64' });
  const n = reg.requests.length;
  const o = await s.ensure(`${reg.host}/rt/multi:oci`, 'IfNotPresent');
  assert.equal(o.id, amd.configDigest);
  assert.equal(o.repoDigest, `${reg.host}/rt/multi@${ociIndex.digest}`, 'the repo digest is the index digest');
  assert.equal(readFileSync(join(o.layerDirs[0], 'arch'), 'utf8'), 'amd64');
  const d = await s.ensure(`${reg.host}/rt/multi:docker`, 'IfNotPresent');
  assert.equal(d.id, dockerAmd.configDigest);
  assert.equal(readFileSync(join(d.layerDirs[0], 'arch'), 'utf8'), 'amd64-docker');
  assert.equal(blobGets(riscv, n) + blobGets(dockerRiscv, n), 0, 'other platforms are not downloaded');
  // a node of another architecture gets the other image
  const other = new ImageStore({ root: join(work, 'multi-riscv'), arch: 'riscv64' });
  assert.equal((await other.ensure(`${reg.host}/rt/multi:oci`, 'IfNotPresent')).id, riscv.configDigest);
  // and an architecture nobody built for is an error
  const none = new ImageStore({ root: join(work, 'multi-s390x'), arch: 's390x' });
  await assert.rejects(none.ensure(`${reg.host}/rt/multi:oci`, 'IfNotPresent'), /no match for platform in manifest: not found/);
});

test('content that does not match its digest is rejected and nothing of it is kept', { skip }, async () => {
  const s = store('corrupt');
  await assert.rejects(s.ensure(`${reg.host}/rt/corrupt:layer`, 'IfNotPresent'), (e: unknown) => {
    assert.ok(e instanceof ImagePullError);
    assert.equal(e.reason, 'ErrImagePull');
    assert.match(e.message, new RegExp(`^failed to pull and unpack image "${reg.host}/rt/corrupt:layer": failed to copy: blob ${corruptLayer.layers[0].digest}: digest mismatch: content has digest sha256:`));
    return true;
  });
  assert.equal(existsSync(join(work, 'corrupt', 'blobs', 'sha256', corruptLayer.layers[0].digest.slice(7))), false);
  assert.deepEqual(existsSync(join(work, 'corrupt', 'layers')) ? readdirSync(join(work, 'corrupt', 'layers')) : [], []);
  await assert.rejects(s.ensure(`${reg.host}/rt/corrupt:manifest`, 'IfNotPresent'), /failed to resolve reference .*digest mismatch/);
  assert.deepEqual(await s.list(), []);
  assert.deepEqual(readdirSync(join(work, 'corrupt', 'tmp')), []);
});

test('a missing tag or repository is ErrImagePull with the kubelet\'s message', { skip }, async () => {
  const s = store('missing');
  for (const ref of [`${reg.host}/rt/app:nope`, `${reg.host}/rt/nothing:v1`]) {
    await assert.rejects(s.ensure(ref, 'IfNotPresent'), (e: unknown) => {
      assert.ok(e instanceof ImagePullError);
      assert.equal(e.reason, 'ErrImagePull');
      assert.equal(e.message, `failed to pull and unpack image "${ref}": failed to resolve reference "${ref}": ${ref}: not found`);
      return true;
    });
  }
  // Always with the registry saying no: fails even though nothing is cached
  await assert.rejects(s.ensure(`${reg.host}/rt/app:nope`, 'Always'), /not found/);
});

test('Basic auth (htpasswd): credentials from an imagePullSecret or from registries.yaml', { skip }, async (t) => {
  const r = await startRegistry({ auth: 'htpasswd' });
  t.after(() => r.stop());
  await r.pushImage('private/app', 'v1', img1);
  const ref = `${r.host}/private/app:v1`;
  const [user, pass] = Object.entries(r.users)[0];
  const s = store('basic');
  await assert.rejects(s.ensure(ref, 'IfNotPresent'), /failed to resolve reference .*401 Unauthorized/);
  await assert.rejects(s.ensure(ref, 'IfNotPresent', [{ auths: { [r.host]: { username: user, password: 'wrong' } } }]), /401 Unauthorized \(with credentials from imagePullSecrets\[0\]/);
  const secret = { auths: { [r.host]: { auth: Buffer.from(`${user}:${pass}`).toString('base64') } } };
  assert.equal((await s.ensure(ref, 'IfNotPresent', [{ auths: { 'other.example': { auth: 'eDp5' } } }, secret])).id, img1.configDigest);
  assert.ok(r.requests.some((q) => q.authorization === 'Basic' && q.status === 200));

  const cfg = join(work, 'registries-basic.yaml');
  writeFileSync(cfg, `configs:\n  "${r.host}":\n    auth:\n      username: ${user}\n      password: ${pass}\n`);
  assert.equal((await store('basic-config', cfg).ensure(ref, 'IfNotPresent')).id, img1.configDigest);
});

test('Bearer token flow: anonymous is denied, a pull secret gets a scoped token', { skip }, async (t) => {
  const r = await startRegistry({ auth: 'token' });
  t.after(() => r.stop());
  await r.pushImage('private/app', 'v1', img1);
  const ref = `${r.host}/private/app:v1`;
  const [user, pass] = Object.entries(r.users)[0];
  const s = store('bearer');
  await assert.rejects(s.ensure(ref, 'IfNotPresent'), (e: unknown) => {
    assert.ok(e instanceof ImagePullError);
    assert.match(e.message, new RegExp(`^failed to pull and unpack image "${ref}": failed to resolve reference "${ref}": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope`));
    return true;
  });
  await assert.rejects(s.ensure(ref, 'IfNotPresent', [{ auths: { [r.host]: { username: user, password: 'wrong' } } }]), /failed to authorize: failed to fetch token: unexpected status from GET request to http:\/\/127\.0\.0\.1:\d+\/token: 401 Unauthorized/);
  const got = await s.ensure(ref, 'IfNotPresent', [{ auths: { [`http://${r.host}`]: { username: user, password: pass } } }]);
  assert.equal(got.id, img1.configDigest);
  assert.deepEqual(r.tokenRequests.at(-1), { scope: ['repository:private/app:pull'], user });
  assert.ok(r.requests.filter((q) => q.path.includes('/blobs/')).every((q) => q.authorization === 'Bearer'));
});

test('a docker.io image comes from the mirror in registries.yaml (no traffic to Docker Hub)', { skip }, async () => {
  const bb = await buildBusyboxImage({ out: join(work, 'bb.tar') });
  // push the busybox image as library/busybox:latest
  const s0 = store('mirror-src');
  await s0.importArchive(bb.path);
  const blobs = join(work, 'mirror-src', 'blobs', 'sha256');
  const m = JSON.parse(readFileSync(join(blobs, bb.manifestDigest.slice(7)), 'utf8'));
  for (const d of [m.config, ...m.layers]) await reg.pushBlob('library/busybox', d.digest, readFileSync(join(blobs, d.digest.slice(7))));
  await reg.pushManifest('library/busybox', 'latest', readFileSync(join(blobs, bb.manifestDigest.slice(7))), m.mediaType);

  const cfg = join(work, 'registries-mirror.yaml');
  writeFileSync(cfg, `mirrors:\n  docker.io:\n    endpoint:\n      - "http://${reg.host}"\n`);
  const s = store('mirror', cfg);
  const n = reg.requests.length;
  const r = await s.ensure('busybox', 'IfNotPresent');
  assert.equal(r.ref, 'docker.io/library/busybox:latest');
  assert.equal(r.id, bb.id);
  assert.equal(r.repoDigest, `docker.io/library/busybox@${bb.manifestDigest}`);
  assert.ok(requestsSince(n).includes('HEAD /v2/library/busybox/manifests/latest'));
  assert.ok(existsSync(join(r.layerDirs[0], 'bin', 'busybox')));
});

test('gc removes unused pulled images; a later ensure pulls again', { skip }, async () => {
  const s = store('gc');
  const a = await s.ensure(`${reg.host}/rt/app:v1`, 'IfNotPresent');
  const b = await s.ensure(`${reg.host}/rt/docker:v1`, 'IfNotPresent');
  const res = await s.gc(new Set([a.id]), Infinity);
  assert.deepEqual(res.removedImages, [b.id]);
  assert.ok(res.freedBytes > 0);
  assert.equal(existsSync(b.layerDirs[0]), false);
  assert.deepEqual((await s.list()).map((i) => i.id), [a.id]);
  const n = reg.requests.length;
  assert.equal((await s.ensure(`${reg.host}/rt/docker:v1`, 'IfNotPresent')).id, b.id);
  assert.equal(blobGets(dockerImg, n), 1, 'pulled again');
});

test('kyb images build-busybox --import, ls, import, rm', { skip }, async () => {
  const dataDir = join(work, 'cli');
  const out: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const run = async (...args: string[]) => {
    out.length = 0;
    (process.stdout as any).write = (s: string) => { out.push(String(s)); return true; };
    try {
      return await runImagesCommand(args);
    } finally {
      (process.stdout as any).write = write;
    }
  };
  assert.equal(await run('build-busybox', '-o', join(work, 'cli-bb.tar'), '--tag', 'kyb.local/bb:cli', '--import', '--data-dir', dataDir), 0);
  assert.match(out.join(''), /imported kyb\.local\/bb:cli/);
  assert.equal(await run('ls', '--data-dir', dataDir), 0);
  assert.match(out.join(''), /^IMAGE\s+TAG\s+IMAGE ID\s+SIZE\nkyb\.local\/bb\s+cli\s+[a-f0-9]{13}\s+1\.\d+MB\n$/);
  const img = makeImage({ layers: [[file('f', 'f')]], docker: true });
  const { writeDockerSave } = await import('../../src/node/images/testing/fixtures.js');
  await writeDockerSave(join(work, 'cli-save.tar'), [{ image: img, repoTags: ['kyb.local/saved:1'] }]);
  assert.equal(await run('import', '--data-dir', dataDir, join(work, 'cli-save.tar')), 0);
  assert.equal(out.join(''), 'imported kyb.local/saved:1\n');
  assert.equal(await run('rm', '--data-dir', dataDir, 'kyb.local/bb:cli'), 0);
  assert.match(out.join(''), /Untagged: kyb\.local\/bb:cli\n.*Deleted: sha256:/s);
  assert.equal(await run('ls', '-q', '--data-dir', dataDir), 0);
  assert.equal(out.join(''), `${img.configDigest}\n`);
  assert.ok(existsSync(join(dataDir, 'agent', 'images', 'index.json')));
});
