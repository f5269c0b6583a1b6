// The registry-free busybox image: reproducible byte for byte, importable, and runnable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBusyboxImage } from './busybox.js';
import { ImageStore } from './image-store.js';

const skip = !existsSync('/bin/busybox') ? 'needs busybox-static' : false;

test('build-busybox is reproducible and its image imports and runs', { skip }, async (t) => {
  const d = mkdtempSync(join(tmpdir(), 'kyb-bb-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  const a = await buildBusyboxImage({ out: join(d, 'a.tar') });
  const b = await buildBusyboxImage({ out: join(d, 'b.tar') });
  assert.equal(a.ref, 'kyb.local/busybox:1.35');
  assert.ok(readFileSync(a.path).equals(readFileSync(b.path)), 'two builds are identical');
  const c = await buildBusyboxImage({ out: join(d, 'c.tar'), ref: 'kyb.local/web:1', files: { '/www/index.html': 'custom page\n', '/etc/motd': 'hi' }, cmd: ['httpd', '-f', '-p', '80', '-h', '/www'] });
  assert.notEqual(c.id, a.id);
  if (process.getuid?.() !== 0) return;

  const s = new ImageStore({ root: join(d, 'store') });
  assert.deepEqual(await s.importArchive(c.path), ['kyb.local/web:1']);
  const img = await s.ensure('kyb.local/web:1', 'Never');
  assert.equal(img.id, c.id);
  assert.deepEqual(img.config.cmd, ['httpd', '-f', '-p', '80', '-h', '/www']);
  const rootfs = img.layerDirs[0];
  assert.equal(statSync(join(rootfs, 'tmp')).mode & 0o7777, 0o1777);
  assert.equal(readFileSync(join(rootfs, 'etc/passwd'), 'utf8').split('\n').filter((l) => /^(root|nobody):x:(0|65534):/.test(l)).length, 2);
  const out = execFileSync('chroot', [rootfs, '/bin/sh', '-c', 'cat /www/index.html /etc/motd; echo; id -u nobody; ls /bin | wc -l']).toString().split('\n');
  assert.equal(out[0], 'custom page');
  assert.equal(out[1], 'hi');
  assert.equal(out[2], '65534');
  assert.ok(Number(out[3]) > 100, 'applet links in /bin');
});
