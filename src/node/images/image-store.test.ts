// The image store without a registry: importing OCI layouts and docker-save archives, whiteouts as
// overlayfs sees them, integrity checks, pull policies, remove and garbage collection.
// Needs root (character devices, trusted.* xattrs, overlay mounts), as the node agent does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore } from './image-store.js';
import { ImagePullError } from './errors.js';
import { makeImage, makeIndex, writeDockerSave, writeOciArchive, writeOciLayoutDir, file, dir } from './testing/fixtures.js';

const root = process.getuid?.() === 0;
const skip = root ? false : 'needs root';

/** A temporary directory removed after the test, with anything still mounted under it unmounted first. */
function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), 'kyb-images-'));
  t.after(() => {
    const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m && m.startsWith(`${d}/`));
    for (const m of mounts.reverse()) spawnSync('umount', [m]);
    rmSync(d, { recursive: true, force: true });
  });
  return d;
}

/** Mounts the layers read-only with overlayfs, as a container's rootfs would see them. */
function mountOverlay(lower: string[], at: string): void {
  mkdirSync(at, { recursive: true });
  // overlay wants the topmost layer first
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${[...lower].reverse().join(':')}`, at]);
}

test('OCI layouts (directory and tar) import with their names; ensure uses them without a registry', { skip }, async (t) => {
  const d = tmp(t);
  const img = makeImage({ layers: [[dir('app'), file('app/hello.txt', 'hello\n'), file('app/run.sh', '#!/bin/sh\n', 0o755)]], entrypoint: ['/app/run.sh'], cmd: ['a'], env: ['PATH=/bin', 'X=1'], workingDir: '/app', user: '65534' });
  await writeOciLayoutDir(join(d, 'layout'), [{ image: img, annotations: { 'io.containerd.image.name': 'kyb.test/app:v1', 'org.opencontainers.image.ref.name': 'v1' } }]);
  const s = new ImageStore({ root: join(d, 'store') });
  assert.deepEqual(await s.importArchive(join(d, 'layout')), ['kyb.test/app:v1']);

  const r = await s.ensure('kyb.test/app:v1', 'Never');
  assert.equal(r.id, img.configDigest);
  assert.equal(r.ref, 'kyb.test/app:v1');
  assert.equal(r.repoDigest, `kyb.test/app@${img.manifestDigest}`);
  assert.deepEqual(r.config, { entrypoint: ['/app/run.sh'], cmd: ['a'], env: ['PATH=/bin', 'X=1'], workingDir: '/app', user: '65534' });
  assert.equal(r.layerDirs.length, 1);
  assert.equal(r.layerDirs[0], join(d, 'store', 'layers', img.layers[0].diffId.slice(7)));
  assert.equal(readFileSync(join(r.layerDirs[0], 'app/hello.txt'), 'utf8'), 'hello\n');
  assert.equal(statSync(join(r.layerDirs[0], 'app/run.sh')).mode & 0o777, 0o755);
  assert.equal(r.size, img.config.length + img.layers[0].blob.length);
  // by digest, and IfNotPresent, also without a registry
  assert.equal((await s.ensure(`kyb.test/app@${img.manifestDigest}`, 'IfNotPresent')).id, img.configDigest);

  // a tar whose index says only "v2": the repository comes from the caller; without one the image is nameless
  const img2 = makeImage({ layers: [[file('two', '2')]], label: 'two' });
  await writeOciArchive(join(d, 'two.tar'), [{ image: img2, annotations: { 'org.opencontainers.image.ref.name': 'v2' } }]);
  assert.deepEqual(await s.importArchive(join(d, 'two.tar'), { name: 'kyb.test/other' }), ['kyb.test/other:v2']);
  const img3 = makeImage({ layers: [[file('three', '3')]], label: 'three' });
  await writeOciArchive(join(d, 'three.tar'), [{ image: img3 }]);
  assert.deepEqual(await s.importArchive(join(d, 'three.tar')), [img3.configDigest]);

  const list = await s.list();
  assert.deepEqual(list.map((i) => [i.id, i.repoTags]).sort(), [
    [img.configDigest, ['kyb.test/app:v1']], [img2.configDigest, ['kyb.test/other:v2']], [img3.configDigest, []],
  ].sort());
  assert.deepEqual(readdirSync(join(d, 'store', 'tmp')), [], 'no temporary files left');
});

test('an index in a layout resolves to this node\'s platform only', { skip }, async (t) => {
  const d = tmp(t);
  const amd = makeImage({ layers: [[file('arch', 'mine')]], label: 'mine' });
  const other = makeImage({ layers: [[file('arch', 'other')]], arch: 'riscv64', label: 'other' });
  const idx = makeIndex([{ image: other, arch: 'riscv64' }, { image: amd, arch: new ImageStore({ root: d }).arch }]);
  await writeOciLayoutDir(join(d, 'layout'), [{ image: amd, index: idx, also: [other], annotations: { 'io.containerd.image.name': 'kyb.test/multi:1' } }]);
  // the other platform's layer is not needed: remove it from the layout to prove it
  rmSync(join(d, 'layout', 'blobs', 'sha256', other.layers[0].digest.slice(7)));
  const s = new ImageStore({ root: join(d, 'store') });
  assert.deepEqual(await s.importArchive(join(d, 'layout')), ['kyb.test/multi:1']);
  const r = await s.ensure('kyb.test/multi:1', 'Never');
  assert.equal(r.id, amd.configDigest);
  assert.equal(r.repoDigest, `kyb.test/multi@${idx.digest}`, 'the repo digest is the index digest, as the registry would say');
  assert.equal(readFileSync(join(r.layerDirs[0], 'arch'), 'utf8'), 'mine');
});

test('a docker save archive made by hand imports with its RepoTags', { skip }, async (t) => {
  const d = tmp(t);
  const img = makeImage({ layers: [[dir('etc'), file('etc/os-release', 'ID=test\n')], [file('etc/extra', 'x')]], docker: true, cmd: ['sleep', '1'] });
  await writeDockerSave(join(d, 'save.tar'), [{ image: img, repoTags: ['app:1', '127.0.0.1:5000/x/y:2'] }]);
  const s = new ImageStore({ root: join(d, 'store') });
  assert.deepEqual(await s.importArchive(join(d, 'save.tar')), ['docker.io/library/app:1', '127.0.0.1:5000/x/y:2']);
  const [info] = await s.list();
  assert.deepEqual(info.repoTags, ['127.0.0.1:5000/x/y:2', 'docker.io/library/app:1']);
  assert.deepEqual(info.repoDigests, [], 'docker save archives carry no registry digest');
  const r = await s.ensure('app:1', 'Never');
  assert.equal(r.id, img.configDigest);
  assert.equal(r.repoDigest, undefined);
  assert.deepEqual(r.config.cmd, ['sleep', '1']);
  assert.equal(r.layerDirs.length, 2);
  assert.equal(readFileSync(join(r.layerDirs[0], 'etc/os-release'), 'utf8'), 'ID=test\n');
  assert.equal(readFileSync(join(r.layerDirs[1], 'etc/extra'), 'utf8'), 'x');
});

test('whiteouts across two layers: deleted files and opaque directories, as overlayfs shows them', { skip }, async (t) => {
  const d = tmp(t);
  const img = makeImage({
    layers: [
      [dir('a'), file('a/keep', 'k'), file('a/gone', 'g'), dir('o'), file('o/old', 'old'), file('top', 't'), dir('deldir'), file('deldir/f', 'f')],
      [dir('a'), file('a/.wh.gone', ''), dir('o'), file('o/.wh..wh..opq', ''), file('o/new', 'new'), file('.wh.top', ''), file('.wh.deldir', '')],
    ],
  });
  await writeOciLayoutDir(join(d, 'layout'), [{ image: img, annotations: { 'io.containerd.image.name': 'kyb.test/wh:1' } }]);
  const s = new ImageStore({ root: join(d, 'store') });
  await s.importArchive(join(d, 'layout'));
  const r = await s.ensure('kyb.test/wh:1', 'Never');
  const upper = r.layerDirs[1];
  assert.equal(upper, join(d, 'store', 'layers', img.layers[1].diffId.slice(7)));
  for (const p of ['a/gone', 'top', 'deldir']) {
    const st = statSync(join(upper, p));
    assert.ok(st.isCharacterDevice(), `${p} is a character device`);
    assert.equal(st.rdev, 0, `${p} is 0/0`);
  }
  const names = execFileSync('find', [upper, '-name', '.wh.*']).toString();
  assert.equal(names, '', 'no .wh. files remain');

  const merged = join(d, 'merged');
  mountOverlay(r.layerDirs, merged);
  assert.deepEqual(readdirSync(join(merged, 'a')), ['keep']);
  assert.deepEqual(readdirSync(join(merged, 'o')), ['new'], 'opaque directory hides the lower contents');
  assert.equal(existsSync(join(merged, 'top')), false);
  assert.equal(existsSync(join(merged, 'deldir')), false);
  assert.deepEqual(readdirSync(merged).sort(), ['a', 'o']);
});

test('zstd layers unpack (with the zstd command)', { skip: skip || (spawnSync('zstd', ['--version']).status !== 0 && 'zstd not installed') }, async (t) => {
  const d = tmp(t);
  const img = makeImage({ layers: [[file('z', 'zstd!')]], compression: 'zstd' });
  await writeOciLayoutDir(join(d, 'layout'), [{ image: img, annotations: { 'io.containerd.image.name': 'kyb.test/z:1' } }]);
  const s = new ImageStore({ root: join(d, 'store') });
  await s.importArchive(join(d, 'layout'));
  assert.equal(readFileSync(join((await s.ensure('kyb.test/z:1', 'Never')).layerDirs[0], 'z'), 'utf8'), 'zstd!');
});

test('content that does not match its digest is rejected and leaves nothing behind', { skip }, async (t) => {
  const d = tmp(t);
  const s = new ImageStore({ root: join(d, 'store') });
  // a layer blob changed in the archive (same length)
  const img = makeImage({ layers: [[file('f', 'original')]] });
  await writeOciLayoutDir(join(d, 'l1'), [{ image: img, annotations: { 'io.containerd.image.name': 'kyb.test/bad:1' } }]);
  const blobPath = join(d, 'l1', 'blobs', 'sha256', img.layers[0].digest.slice(7));
  const b = readFileSync(blobPath);
  b[b.length - 5] ^= 0xff;
  writeFileSync(blobPath, b);
  await assert.rejects(s.importArchive(join(d, 'l1')), /digest mismatch/);

  // a config whose diff_id does not describe the layer
  const good = makeImage({ layers: [[file('f', 'x')]] });
  const lie = JSON.parse(good.config.toString());
  lie.rootfs.diff_ids = [`sha256:${'0'.repeat(64)}`];
  const liar = makeImage({ layers: [[file('f', 'x')]] });
  liar.config = Buffer.from(JSON.stringify(lie));
  const { sha256Digest } = await import('./manifest.js');
  liar.configDigest = sha256Digest(liar.config);
  const m = JSON.parse(liar.manifest.toString());
  m.config.digest = liar.configDigest;
  m.config.size = liar.config.length;
  liar.manifest = Buffer.from(JSON.stringify(m));
  liar.manifestDigest = sha256Digest(liar.manifest);
  await writeOciLayoutDir(join(d, 'l2'), [{ image: liar, annotations: { 'io.containerd.image.name': 'kyb.test/liar:1' } }]);
  await assert.rejects(s.importArchive(join(d, 'l2')), /diff_id mismatch/);

  assert.deepEqual(existsSync(join(d, 'store', 'layers')) ? readdirSync(join(d, 'store', 'layers')) : [], []);
  assert.deepEqual(readdirSync(join(d, 'store', 'tmp')), []);
  assert.deepEqual(await s.list(), []);
});

test('pull policies and names: InvalidImageName, ErrImageNeverPull, ErrImagePull', { skip }, async (t) => {
  const d = tmp(t);
  const s = new ImageStore({ root: join(d, 'store') });
  await assert.rejects(s.ensure('Bad:Name', 'IfNotPresent'), (e: unknown) => {
    assert.ok(e instanceof ImagePullError);
    assert.equal(e.reason, 'InvalidImageName');
    assert.match(e.message, /^Failed to apply default image tag "Bad:Name": couldn't parse image name "Bad:Name": invalid reference format/);
    return true;
  });
  await assert.rejects(s.ensure('kyb.test/missing:1', 'Never'), (e: unknown) => {
    assert.ok(e instanceof ImagePullError);
    assert.equal(e.reason, 'ErrImageNeverPull');
    assert.equal(e.message, 'Container image "kyb.test/missing:1" is not present with pull policy of Never');
    return true;
  });
  // nothing listens on port 1: HTTPS fails, the plain HTTP fallback fails too
  await assert.rejects(s.ensure('127.0.0.1:1/missing:1', 'IfNotPresent'), (e: unknown) => {
    assert.ok(e instanceof ImagePullError);
    assert.equal(e.reason, 'ErrImagePull');
    assert.match(e.message, /^failed to pull and unpack image "127\.0\.0\.1:1\/missing:1": failed to resolve reference "127\.0\.0\.1:1\/missing:1": failed to do request: HEAD "http:\/\/127\.0\.0\.1:1\/v2\/missing\/manifests\/1": connect ECONNREFUSED/);
    return true;
  });
});

test('remove and gc delete unreferenced content but keep shared and mounted layers', { skip }, async (t) => {
  const d = tmp(t);
  const base = [dir('base'), file('base/lib', 'shared')];
  const a = makeImage({ layers: [base, [file('a', 'A')]] });
  const b = makeImage({ layers: [base, [file('b', 'B')]] });
  await writeOciLayoutDir(join(d, 'layout'), [
    { image: a, annotations: { 'io.containerd.image.name': 'kyb.test/a:1' } },
    { image: b, annotations: { 'io.containerd.image.name': 'kyb.test/b:1' } },
  ]);
  const store = join(d, 'store');
  const s = new ImageStore({ root: store });
  await s.importArchive(join(d, 'layout'));
  const layer = (img: typeof a, i: number) => join(store, 'layers', img.layers[i].diffId.slice(7));
  const blob = (digest: string) => join(store, 'blobs', 'sha256', digest.slice(7));
  assert.equal(a.layers[0].diffId, b.layers[0].diffId, 'the base layer is shared');
  assert.equal(readdirSync(join(store, 'layers')).length, 3, 'the shared layer is unpacked once');

  // gc keeps what is in use, removes the rest, and frees about what it says
  const r = await s.gc(new Set([a.configDigest]), Infinity);
  assert.deepEqual(r.removedImages, [b.configDigest]);
  assert.ok(r.freedBytes >= b.layers[1].blob.length, `freed ${r.freedBytes}`);
  assert.equal(existsSync(layer(b, 1)), false);
  assert.equal(existsSync(blob(b.layers[1].digest)), false);
  assert.equal(existsSync(blob(b.configDigest)), false);
  assert.equal(existsSync(blob(b.manifestDigest)), false);
  assert.equal(existsSync(layer(a, 0)), true, 'shared layer kept');
  assert.deepEqual((await s.list()).map((i) => i.id), [a.configDigest]);
  assert.equal((await s.gc(new Set(['kyb.test/a:1']), Infinity)).removedImages.length, 0, 'names count as in use too');

  // a layer a running container has mounted survives remove; a later gc takes it
  const merged = join(d, 'merged');
  mountOverlay((await s.ensure('kyb.test/a:1', 'Never')).layerDirs, merged);
  const rm1 = await s.remove('kyb.test/a:1');
  assert.deepEqual(rm1.deleted, [a.configDigest]);
  assert.deepEqual(rm1.untagged.sort(), [`kyb.test/a:1`, `kyb.test/a@${a.manifestDigest}`].sort());
  assert.equal(existsSync(layer(a, 0)), true, 'mounted layer kept');
  assert.equal(existsSync(blob(a.configDigest)), false);
  assert.equal(readFileSync(join(merged, 'a'), 'utf8'), 'A');
  spawnSync('umount', [merged]);
  await s.gc(new Set(), 0);
  assert.deepEqual(readdirSync(join(store, 'layers')), []);
  assert.deepEqual(readdirSync(join(store, 'blobs', 'sha256')), []);
  await assert.rejects(s.remove('kyb.test/a:1'), /image "kyb.test\/a:1": not found/);
});

test('removing one of two tags keeps the image; removing by ID removes every name', { skip }, async (t) => {
  const d = tmp(t);
  const img = makeImage({ layers: [[file('x', 'x')]], docker: true });
  await writeDockerSave(join(d, 's.tar'), [{ image: img, repoTags: ['kyb.test/t:1', 'kyb.test/t:2'] }]);
  const s = new ImageStore({ root: join(d, 'store') });
  await s.importArchive(join(d, 's.tar'));
  assert.deepEqual(await s.remove('kyb.test/t:1'), { untagged: ['kyb.test/t:1'], deleted: [] });
  assert.ok(await s.get('kyb.test/t:2'));
  assert.deepEqual(await s.remove(img.configDigest.slice(7, 19)), { untagged: ['kyb.test/t:2'], deleted: [img.configDigest] });
  assert.deepEqual(await s.list(), []);
});

test('importDirectory imports each archive once and reports bad ones; two stores on one root do not lose updates', { skip }, async (t) => {
  const d = tmp(t);
  mkdirSync(join(d, 'airgap'));
  const imgs = [1, 2, 3, 4].map((i) => makeImage({ layers: [[file(`f${i}`, String(i))]], docker: true, label: String(i) }));
  await writeDockerSave(join(d, 'airgap', 'one.tar'), [{ image: imgs[0], repoTags: ['kyb.test/one:1'] }]);
  await writeOciArchive(join(d, 'airgap', 'two.tar'), [{ image: imgs[1], annotations: { 'io.containerd.image.name': 'kyb.test/two:1' } }]);
  writeFileSync(join(d, 'airgap', 'broken.tar'), 'not a tar');
  writeFileSync(join(d, 'airgap', 'notes.txt'), 'ignored');
  const s = new ImageStore({ root: join(d, 'store') });
  const first = await s.importDirectory(join(d, 'airgap'));
  assert.deepEqual(first.map((r) => [r.file.split('/').pop(), r.refs, !!r.error]), [
    ['broken.tar', [], true], ['one.tar', ['kyb.test/one:1'], false], ['two.tar', ['kyb.test/two:1'], false],
  ]);
  assert.deepEqual((await s.importDirectory(join(d, 'airgap'))).map((r) => r.file.split('/').pop()), ['broken.tar'], 'imported archives are not imported again');

  // another store object on the same root (as `kyb images import` next to the agent): the index
  // lock serializes the writers and each re-reads the index, so both images are kept
  await writeDockerSave(join(d, 'three.tar'), [{ image: imgs[2], repoTags: ['kyb.test/three:1'] }]);
  await writeDockerSave(join(d, 'four.tar'), [{ image: imgs[3], repoTags: ['kyb.test/four:1'] }]);
  const other = new ImageStore({ root: join(d, 'store') });
  await Promise.all([s.importArchive(join(d, 'three.tar')), other.importArchive(join(d, 'four.tar'))]);
  assert.deepEqual((await s.list()).flatMap((i) => i.repoTags).sort(), ['kyb.test/four:1', 'kyb.test/one:1', 'kyb.test/three:1', 'kyb.test/two:1']);
  assert.ok(await other.get('kyb.test/three:1'), 'a store sees images another one imported');
});
