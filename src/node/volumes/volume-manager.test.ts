import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, mkdtempSync, statfsSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Pod, Volume } from 'kubernetes-types/core/v1.js';
import { RestClient } from '../../client/rest-client.js';
import { FakeApiServer } from '../../client/testing/fake-apiserver.js';
import { VolumeManager, VolumeSetUpError, resolveSubPath, PLACEHOLDER_TOKEN_PREFIX } from './volume-manager.js';
import { mountsUnder, listMounts, unmount } from './mounts.js';

const cms = { group: '', plural: 'configmaps' };
const secrets = { group: '', plural: 'secrets' };
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const isRoot = process.getuid?.() === 0;

let server: FakeApiServer;
let client: RestClient;
let root: string;
let vm: VolumeManager;
const pods: string[] = [];

/** the file system type of the mount that holds path (the deepest mount point above it) */
function fsTypeOf(path: string): string | undefined {
  let best: { mountPoint: string; fsType: string } | undefined;
  for (const m of listMounts()) {
    if ((path === m.mountPoint || path.startsWith(m.mountPoint.endsWith('/') ? m.mountPoint : `${m.mountPoint}/`)) && (!best || m.mountPoint.length > best.mountPoint.length)) best = m;
  }
  return best?.fsType;
}

before(async () => {
  server = await FakeApiServer.start();
  client = new RestClient({ server: server.url });
  root = mkdtempSync(join(tmpdir(), 'kyb-volumes-test-'));
  vm = new VolumeManager({ root, client, nodeName: 'node-a', nodeAllocatable: { cpu: '4', memory: '8Gi' } });
});
after(async () => {
  // whatever a failed test left: unmount and delete
  for (const uid of pods) await vm.tearDown(uid).catch(() => undefined);
  for (const m of mountsUnder(root)) await unmount(m.mountPoint).catch(() => undefined);
  await vm.cleanup(); // the node's secrets tmpfs
  assert.deepEqual(mountsUnder(root), []);
  await fs.rm(root, { recursive: true, force: true });
  client.close();
  await server.close();
});

function newPod(volumes: Volume[], extra: Partial<Pod['spec']> = {}, labels: Record<string, string> = { app: 'web' }): Pod {
  const uid = randomUUID();
  pods.push(uid);
  return {
    metadata: { name: 'web-' + uid.slice(0, 5), namespace: 'default', uid, labels, annotations: { 'example.com/note': 'line1\nline2' } },
    spec: {
      nodeName: 'node-a', serviceAccountName: 'builder', volumes,
      containers: [{ name: 'app', image: 'busybox', resources: { limits: { memory: '128Mi' }, requests: { cpu: '250m' } } }],
      ...extra,
    },
  };
}

async function read(p: string): Promise<string> { return fs.readFile(p, 'utf8'); }
async function mode(p: string): Promise<number> { return (await fs.stat(p)).mode & 0o7777; }

test('emptyDir on disk and in memory (tmpfs with the size limit); tearDown unmounts and removes, twice is fine', { skip: !isRoot && 'needs root for tmpfs' }, async () => {
  const pod = newPod([
    { name: 'scratch', emptyDir: {} },
    { name: 'cache', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
    { name: 'shm', emptyDir: { medium: 'Memory' } }, // no limit → the pod's memory limit (128Mi)
  ]);
  const uid = pod.metadata!.uid!;
  const vols = await vm.setUp(pod);
  const scratch = vols.get('scratch')!;
  assert.equal(scratch.hostPath, join(root, uid, 'volumes/kubernetes.io~empty-dir/scratch'));
  assert.equal(scratch.readOnly, false);
  assert.equal(await mode(scratch.hostPath), 0o777);

  const cache = vols.get('cache')!.hostPath;
  const mounts = listMounts().filter((m) => m.mountPoint === cache);
  assert.equal(mounts.length, 1);
  assert.equal(mounts[0]!.fsType, 'tmpfs');
  const sfs = statfsSync(cache);
  assert.equal(sfs.blocks * sfs.bsize, 16 * 1024 * 1024);
  const shm = statfsSync(vols.get('shm')!.hostPath);
  assert.equal(shm.blocks * shm.bsize, 128 * 1024 * 1024);
  await fs.writeFile(join(cache, 'f'), 'x');

  // setUp again (agent restart): nothing is mounted twice
  await vm.setUp(pod);
  assert.equal(listMounts().filter((m) => m.mountPoint === cache).length, 1);
  assert.equal(await read(join(cache, 'f')), 'x');

  await vm.tearDown(uid);
  assert.deepEqual(mountsUnder(join(root, uid)), []);
  await assert.rejects(fs.stat(join(root, uid)), /ENOENT/);
  await vm.tearDown(uid); // idempotent
});

test('configMap: all keys or chosen items with modes, binaryData, the ..data layout; updates swap atomically', async () => {
  const name = 'cfg-' + randomUUID().slice(0, 6);
  server.put(cms, { metadata: { namespace: 'default', name }, data: { 'app.conf': 'v=1\n', other: 'o' }, binaryData: { 'blob.bin': Buffer.from([0, 1, 2, 255]).toString('base64') } });
  const pod = newPod([
    { name: 'all', configMap: { name, defaultMode: 0o640 } },
    { name: 'some', configMap: { name, items: [{ key: 'app.conf', path: 'conf/app.conf', mode: 0o600 }, { key: 'other', path: 'o.txt' }] } },
  ]);
  const vols = await vm.setUp(pod);
  const all = vols.get('all')!;
  assert.equal(all.readOnly, true);
  assert.equal(await read(join(all.hostPath, 'app.conf')), 'v=1\n');
  assert.deepEqual([...await fs.readFile(join(all.hostPath, 'blob.bin'))], [0, 1, 2, 255]);
  assert.equal(await mode(join(all.hostPath, 'app.conf')), 0o640);
  // layout: key -> ..data/key, ..data -> ..<timestamp>
  assert.equal(await fs.readlink(join(all.hostPath, 'app.conf')), '..data/app.conf');
  const ts1 = await fs.readlink(join(all.hostPath, '..data'));
  assert.match(ts1, /^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\./);

  const some = vols.get('some')!.hostPath;
  assert.equal(await read(join(some, 'conf/app.conf')), 'v=1\n');
  assert.equal(await mode(join(some, 'conf/app.conf')), 0o600);
  assert.equal(await mode(join(some, 'o.txt')), 0o644);
  assert.deepEqual((await fs.readdir(some)).filter((n) => !n.startsWith('..')).sort(), ['conf', 'o.txt']);

  // nothing changed → nothing touched
  assert.deepEqual(await vm.refresh(pod), []);
  assert.equal(await fs.readlink(join(all.hostPath, '..data')), ts1);

  // change one key, drop another: new version swapped in, stale link removed, old version deleted
  server.put(cms, { metadata: { namespace: 'default', name }, data: { 'app.conf': 'v=2\n', added: 'a' } });
  await assert.rejects(vm.refresh(pod), (e: unknown) => e instanceof VolumeSetUpError && e.volume === 'some' && e.message === 'configmap references non-existent config key: other');
  // 'all' was still refreshed although 'some' failed
  assert.equal(await read(join(all.hostPath, 'app.conf')), 'v=2\n');
  assert.equal(await read(join(all.hostPath, 'added')), 'a');
  await assert.rejects(fs.lstat(join(all.hostPath, 'other')), /ENOENT/);
  await assert.rejects(fs.lstat(join(all.hostPath, 'blob.bin')), /ENOENT/);
  const ts2 = await fs.readlink(join(all.hostPath, '..data'));
  assert.notEqual(ts2, ts1);
  await assert.rejects(fs.stat(join(all.hostPath, ts1)), /ENOENT/);
  assert.equal(await read(join(some, 'o.txt')), 'o'); // the failed volume keeps its old content
  await vm.tearDown(pod.metadata!.uid!);
});

test('a reader never sees a missing or torn file while updates are swapped in', async () => {
  const name = 'live-' + randomUUID().slice(0, 6);
  const big = (c: string): string => c.repeat(64 * 1024);
  server.put(cms, { metadata: { namespace: 'default', name }, data: { a: big('0') } });
  const pod = newPod([{ name: 'live', configMap: { name } }]);
  const dir = (await vm.setUp(pod)).get('live')!.hostPath;
  let stop = false;
  let reads = 0;
  const reader = (async () => {
    while (!stop) {
      const text = await read(join(dir, 'a'));
      assert.ok(/^(0+|1+|2+|3+|4+|5+|6+|7+|8+|9+)$/.test(text) && text.length === 64 * 1024, 'torn read');
      reads++;
    }
  })();
  for (let i = 1; i <= 20; i++) {
    server.put(cms, { metadata: { namespace: 'default', name }, data: { a: big(String(i % 10)) } });
    assert.deepEqual(await vm.refresh(pod), ['live']);
  }
  stop = true;
  await reader;
  assert.ok(reads > 0);
  await vm.tearDown(pod.metadata!.uid!);
});

test('missing configMap or secret: the kubelet\'s message, unless optional (then an empty volume)', async () => {
  const pod = newPod([{ name: 'cfg', configMap: { name: 'does-not-exist' } }]);
  await assert.rejects(vm.setUp(pod), (e: unknown) => {
    assert.ok(e instanceof VolumeSetUpError);
    assert.equal(e.message, 'configmap "does-not-exist" not found');
    assert.equal(e.event, 'MountVolume.SetUp failed for volume "cfg" : configmap "does-not-exist" not found');
    return true;
  });
  const pod2 = newPod([{ name: 'sec', secret: { secretName: 'nope' } }]);
  await assert.rejects(vm.setUp(pod2), { message: 'secret "nope" not found' });
  const pod3 = newPod([{ name: 'opt', configMap: { name: 'does-not-exist', optional: true } }, { name: 'opt2', secret: { secretName: 'nope', optional: true } }]);
  const vols = await vm.setUp(pod3);
  const entries = await fs.readdir(vols.get('opt')!.hostPath);
  assert.equal(entries.length, 2); // ..data and the (empty) version it points at
  assert.ok(entries.every((n) => n.startsWith('..')));
  assert.deepEqual(await fs.readdir(join(vols.get('opt')!.hostPath, '..data')), []);
  for (const p of [pod, pod2, pod3]) await vm.tearDown(p.metadata!.uid!);
});

test('secret: decoded, items and modes, kept on a tmpfs when root', async () => {
  const name = 'sec-' + randomUUID().slice(0, 6);
  server.put(secrets, { metadata: { namespace: 'default', name }, type: 'Opaque', data: { password: b64('s3cr3t'), 'tls.key': b64('KEY') } });
  const pod = newPod([{ name: 'creds', secret: { secretName: name, defaultMode: 0o400, items: [{ key: 'password', path: 'pw' }] } }], { securityContext: { fsGroup: 2000 } });
  const v = (await vm.setUp(pod)).get('creds')!;
  assert.equal(v.hostPath, isRoot ? join(root, '.secrets', pod.metadata!.uid!, 'kubernetes.io~secret/creds') : join(root, pod.metadata!.uid!, 'volumes/kubernetes.io~secret/creds'));
  assert.equal(await read(join(v.hostPath, 'pw')), 's3cr3t');
  assert.equal(await mode(join(v.hostPath, 'pw')), 0o440); // fsGroup adds group read
  assert.equal((await fs.stat(join(v.hostPath, 'pw'))).gid, 2000);
  await assert.rejects(fs.lstat(join(v.hostPath, 'tls.key')), /ENOENT/);
  if (isRoot) assert.equal(fsTypeOf(v.hostPath), 'tmpfs');
  await vm.tearDown(pod.metadata!.uid!);
  assert.deepEqual(mountsUnder(root).filter((m) => m.mountPoint.includes(pod.metadata!.uid!)), []);
  await assert.rejects(fs.lstat(v.hostPath), /ENOENT/);
});

test('downwardAPI: labels/annotations files, fields, resources with divisor; refresh follows label changes', async () => {
  const pod = newPod([{
    name: 'podinfo', downwardAPI: {
      items: [
        { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
        { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
        { path: 'name', fieldRef: { fieldPath: 'metadata.name' } },
        { path: 'ns', fieldRef: { fieldPath: 'metadata.namespace' } },
        { path: 'uid', fieldRef: { fieldPath: 'metadata.uid' }, mode: 0o600 },
        { path: 'app', fieldRef: { fieldPath: "metadata.labels['app']" } },
        { path: 'mem_limit_mi', resourceFieldRef: { containerName: 'app', resource: 'limits.memory', divisor: '1Mi' } },
        { path: 'cpu_limit', resourceFieldRef: { containerName: 'app', resource: 'limits.cpu' } }, // unset → node allocatable 4
        { path: 'cpu_request_m', resourceFieldRef: { containerName: 'app', resource: 'requests.cpu', divisor: '1m' } },
      ],
    },
  }], {}, { tier: 'front', app: 'web' });
  const dir = (await vm.setUp(pod)).get('podinfo')!.hostPath;
  assert.match(dir, /kubernetes\.io~downward-api\/podinfo$/);
  assert.equal(await read(join(dir, 'labels')), 'app="web"\ntier="front"');
  assert.equal(await read(join(dir, 'annotations')), 'example.com/note="line1\\nline2"');
  assert.equal(await read(join(dir, 'name')), pod.metadata!.name);
  assert.equal(await read(join(dir, 'ns')), 'default');
  assert.equal(await read(join(dir, 'uid')), pod.metadata!.uid);
  assert.equal(await mode(join(dir, 'uid')), 0o600);
  assert.equal(await read(join(dir, 'app')), 'web');
  assert.equal(await read(join(dir, 'mem_limit_mi')), '128');
  assert.equal(await read(join(dir, 'cpu_limit')), '4');
  assert.equal(await read(join(dir, 'cpu_request_m')), '250');

  pod.metadata!.labels = { app: 'web', tier: 'back' };
  assert.deepEqual(await vm.refresh(pod), ['podinfo']);
  assert.equal(await read(join(dir, 'labels')), 'app="web"\ntier="back"');
  await vm.tearDown(pod.metadata!.uid!);
});

test('projected: configMap + secret + downwardAPI + a labelled placeholder service-account token', async () => {
  server.put(cms, { metadata: { namespace: 'default', name: 'kube-root-ca.crt' }, data: { 'ca.crt': '-----BEGIN CERTIFICATE-----\n' } });
  const sname = 'psec-' + randomUUID().slice(0, 6);
  server.put(secrets, { metadata: { namespace: 'default', name: sname }, data: { user: b64('admin') } });
  const pod = newPod([{
    name: 'kube-api-access', projected: {
      defaultMode: 0o644,
      sources: [
        { serviceAccountToken: { path: 'token', expirationSeconds: 3607 } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }] } },
        { secret: { name: sname, items: [{ key: 'user', path: 'creds/user', mode: 0o400 }] } },
        { configMap: { name: 'missing-but-optional', optional: true } },
      ],
    },
  }]);
  const v = (await vm.setUp(pod)).get('kube-api-access')!;
  assert.equal(v.readOnly, true);
  assert.match(v.hostPath, /kubernetes\.io~projected\/kube-api-access$/);
  const token = await read(join(v.hostPath, 'token'));
  assert.ok(token.startsWith(PLACEHOLDER_TOKEN_PREFIX), token);
  assert.match(token, /serviceaccount=default\/builder/);
  assert.equal(await read(join(v.hostPath, 'ca.crt')), '-----BEGIN CERTIFICATE-----\n');
  assert.equal(await read(join(v.hostPath, 'namespace')), 'default');
  assert.equal(await read(join(v.hostPath, 'creds/user')), 'admin');
  assert.equal(await mode(join(v.hostPath, 'creds/user')), 0o400);
  if (isRoot) assert.equal(fsTypeOf(v.hostPath), 'tmpfs');
  await vm.tearDown(pod.metadata!.uid!);
});

test('hostPath type checks, creating for the *OrCreate types', async () => {
  const base = await fs.mkdtemp(join(root, 'host-'));
  await fs.writeFile(join(base, 'file'), 'f');
  const sockPath = join(base, 'sock');
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(sockPath, r));
  try {
    const ok = newPod([
      { name: 'a', hostPath: { path: join(base, 'new/dir'), type: 'DirectoryOrCreate' } },
      { name: 'b', hostPath: { path: join(base, 'new-file'), type: 'FileOrCreate' } },
      { name: 'c', hostPath: { path: join(base, 'file'), type: 'File' } },
      { name: 'd', hostPath: { path: base, type: 'Directory' } },
      { name: 'e', hostPath: { path: sockPath, type: 'Socket' } },
      { name: 'f', hostPath: { path: '/dev/null', type: 'CharDevice' } },
      { name: 'g', hostPath: { path: join(base, 'anything') } },
    ]);
    const vols = await vm.setUp(ok);
    assert.deepEqual(vols.get('a'), { hostPath: join(base, 'new/dir'), readOnly: false });
    assert.ok((await fs.stat(join(base, 'new/dir'))).isDirectory());
    assert.ok((await fs.stat(join(base, 'new-file'))).isFile());
    assert.equal(await mode(join(base, 'new-file')), 0o644);

    const bad: [Volume, string][] = [
      [{ name: 'x', hostPath: { path: join(base, 'file'), type: 'Directory' } }, `hostPath type check failed: ${join(base, 'file')} is not a directory`],
      [{ name: 'x', hostPath: { path: join(base, 'nope'), type: 'Directory' } }, `hostPath type check failed: ${join(base, 'nope')} is not a directory`],
      [{ name: 'x', hostPath: { path: base, type: 'File' } }, `hostPath type check failed: ${base} is not a file`],
      [{ name: 'x', hostPath: { path: join(base, 'file'), type: 'DirectoryOrCreate' } }, `hostPath type check failed: ${join(base, 'file')} is not a directory`],
      [{ name: 'x', hostPath: { path: join(base, 'file'), type: 'Socket' } }, `hostPath type check failed: ${join(base, 'file')} is not a socket file`],
      [{ name: 'x', hostPath: { path: join(base, 'file'), type: 'BlockDevice' } }, `hostPath type check failed: ${join(base, 'file')} is not a block device`],
      [{ name: 'x', hostPath: { path: join(base, 'no-parent/f'), type: 'FileOrCreate' } }, ''],
    ];
    for (const [vol, msg] of bad) {
      const p = newPod([vol]);
      await assert.rejects(vm.setUp(p), (e: unknown) => e instanceof VolumeSetUpError && e.volume === 'x' && (msg === '' || e.message === msg));
      await vm.tearDown(p.metadata!.uid!);
    }
    await vm.tearDown(ok.metadata!.uid!);
    assert.equal(await read(join(base, 'file')), 'f'); // tearDown never touches host paths
  } finally {
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

test('unsupported volume types are refused by name', async () => {
  const pod = newPod([{ name: 'data', persistentVolumeClaim: { claimName: 'pvc-1' } }]);
  await assert.rejects(vm.setUp(pod), { message: 'volume type persistentVolumeClaim is not supported by this node' });
  await vm.tearDown(pod.metadata!.uid!);
});

test('resolveSubPath: creates missing dirs, refuses .. and absolute paths and symlinks out of the volume', async () => {
  const vol = await fs.mkdtemp(join(root, 'subpath-vol-'));
  await fs.chmod(vol, 0o750);
  const outside = await fs.mkdtemp(join(root, 'outside-'));
  await fs.symlink(outside, join(vol, 'escape'));
  await fs.mkdir(join(vol, 'real'));
  await fs.symlink('real', join(vol, 'inside'));
  await fs.writeFile(join(vol, 'real/file'), 'x');

  const p = await resolveSubPath(vol, 'a/b');
  assert.equal(p, join(await fs.realpath(vol), 'a/b'));
  assert.equal(await mode(p), 0o750);
  assert.equal(await resolveSubPath(vol, 'inside/file'), join(await fs.realpath(vol), 'real/file'));
  assert.equal(await resolveSubPath(vol, ''), vol);
  await assert.rejects(resolveSubPath(vol, '../x'), { message: "unable to provision SubPath `../x`: must not contain '..'" });
  await assert.rejects(resolveSubPath(vol, 'a/../../x'), /must not contain '\.\.'/);
  await assert.rejects(resolveSubPath(vol, '/etc'), /must be a relative path/);
  await assert.rejects(resolveSubPath(vol, 'escape/x'), /not within volume path/);
  await assert.rejects(fs.stat(join(outside, 'x')), /ENOENT/); // nothing was created outside
});

test('secret and projected volumes of every pod share one tmpfs, which cleanup() unmounts', { skip: !isRoot && 'needs root for tmpfs' }, async () => {
  const name = 'shared-' + randomUUID().slice(0, 6);
  server.put(secrets, { metadata: { namespace: 'default', name }, type: 'Opaque', data: { k: b64('v') } });
  const a = newPod([{ name: 's', secret: { secretName: name } }]);
  const b = newPod([{ name: 's', secret: { secretName: name } }]);
  const va = (await vm.setUp(a)).get('s')!;
  const vb = (await vm.setUp(b)).get('s')!;
  assert.equal(await read(join(va.hostPath, 'k')), 'v');
  assert.equal(await read(join(vb.hostPath, 'k')), 'v');
  const tmpfs = mountsUnder(root).filter((m) => m.fsType === 'tmpfs');
  assert.deepEqual(tmpfs.map((m) => m.mountPoint), [vm.secretsRoot()]);
  await vm.tearDown(a.metadata!.uid!);
  await vm.tearDown(b.metadata!.uid!);
  await vm.cleanup();
  assert.deepEqual(mountsUnder(root), []);
  await assert.rejects(fs.lstat(vm.secretsRoot()), /ENOENT/);
});
