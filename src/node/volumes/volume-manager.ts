// The node agent's volume manager: makes the host directories a pod's containers mount, and removes
// them when the pod is gone. One directory per pod volume, laid out as the kubelet lays them out:
//
//   <root>/<podUID>/volumes/kubernetes.io~empty-dir/<name>     plain dir (0777), or a tmpfs for medium Memory
//   <root>/<podUID>/volumes/kubernetes.io~configmap/<name>     atomic-writer dir (see atomic-writer.ts)
//   <root>/<podUID>/volumes/kubernetes.io~secret/<name>        atomic-writer dir (on disk: only when not root)
//   <root>/<podUID>/volumes/kubernetes.io~downward-api/<name>  atomic-writer dir
//   <root>/<podUID>/volumes/kubernetes.io~projected/<name>     atomic-writer dir (on disk: only when not root)
//   <root>/.secrets/<podUID>/kubernetes.io~secret|projected/<name>
//                                                              the same, memory-backed (as root): never on disk
//   hostPath                                                   the host path itself, after its type check
//
// Secret and projected volumes live on one tmpfs per node, <root>/.secrets, mounted when the first
// one is set up, rather than on a tmpfs each as the kubelet mounts them: a `mount` is a process, and
// it was most of a pod's volume set-up time (every pod has the kube-api-access projected volume).
// The content is the same and never touches disk; the tmpfs is unmounted by cleanup().
//
// setUp() is idempotent (an agent restart calls it again for running pods: mounts are found, not
// doubled; unchanged content is left alone). refresh() re-projects configMap/secret/downwardAPI/
// projected content and swaps it in atomically when it changed, which is how a running container sees
// an updated ConfigMap. tearDown() unmounts everything under the pod's volumes dir and deletes it;
// it never follows into hostPath volumes (they are not under root) and refuses to delete while a mount
// remains.
//
// Errors carry the kubelet's wording (`configmap "x" not found`, `hostPath type check failed: /p is not
// a directory`); VolumeSetUpError.event gives the whole event text
// `MountVolume.SetUp failed for volume "v" : …`.
//
// serviceAccountToken projections: the token comes from the API server's TokenRequest API
// (POST serviceaccounts/<sa>/token, bound to the pod, with the projection's audience and lifetime); it
// is kept per pod and volume, and refresh() asks for a new one once 80% of its lifetime has passed (as
// the kubelet does). When the request fails the file gets a clearly labelled placeholder (not a JWT; see
// PLACEHOLDER_TOKEN_PREFIX), the failure is logged, and the next refresh tries again. The ca.crt and namespace files of the
// standard kube-api-access volume come from its configMap (kube-root-ca.crt) and downwardAPI sources,
// handled like any other projection.
import { promises as fs } from 'node:fs';
import { isAbsolute, join, sep } from 'node:path';
import type {
  ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, Volume,
} from 'kubernetes-types/core/v1.js';
import type { RestClient } from '../../client/rest-client.js';
import { isStatusError } from '../../machinery/status.js';
import { parseQuantity } from '../../machinery/quantity.js';
import { writeAtomic, chgrp, type FileProjection } from './atomic-writer.js';
import { containerResourceValue, findContainer, podFieldValue } from './downward-api.js';
import { mountTmpfs, mountsUnder, isMountPoint, unmount } from './mounts.js';

export const configMapsResource = { group: '', version: 'v1', plural: 'configmaps' };
export const secretsResource = { group: '', version: 'v1', plural: 'secrets' };
export const serviceAccountsResource = { group: '', version: 'v1', plural: 'serviceaccounts' };

/** A token obtained for a pod's serviceAccountToken projection. */
interface CachedToken { token: string; issuedAt: number; expiresAt: number; placeholder: boolean }

/** What a container mounts for one pod volume. */
export interface MountedVolume {
  hostPath: string;
  /** the volume itself is read-only (configMap, secret, downwardAPI, projected) */
  readOnly: boolean;
}

export interface VolumeManagerOptions {
  /** <agent-dir>/pods */
  root: string;
  client: RestClient;
  nodeName: string;
  /** node allocatable (cpu, memory, ephemeral-storage): stands in for limits a container does not set */
  nodeAllocatable?: Record<string, string>;
  /** keep secret and projected volumes on a tmpfs (default: when running as root) */
  memoryBackedSecrets?: boolean;
}

/** A volume could not be set up; message is the kubelet's reason text. */
export class VolumeSetUpError extends Error {
  constructor(readonly volume: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VolumeSetUpError';
  }
  /** the kubelet's FailedMount event message */
  get event(): string { return `MountVolume.SetUp failed for volume ${JSON.stringify(this.volume)} : ${this.message}`; }
}

/** First bytes of the placeholder written for serviceAccountToken projections. */
export const PLACEHOLDER_TOKEN_PREFIX = 'kybernetes-placeholder-token';

export const pluginDirs = {
  emptyDir: 'kubernetes.io~empty-dir',
  configMap: 'kubernetes.io~configmap',
  secret: 'kubernetes.io~secret',
  downwardAPI: 'kubernetes.io~downward-api',
  projected: 'kubernetes.io~projected',
} as const;

const DEFAULT_MODE = 0o644;
const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function decodeBase64(s: string): Buffer { return Buffer.from(s, 'base64'); }

async function exists(p: string): Promise<boolean> {
  try { await fs.lstat(p); return true; } catch { return false; }
}

/** The sum of the pod's memory limits (max with the largest init container), or undefined when a container has none. */
function podMemoryLimit(pod: Pod): bigint | undefined {
  const lim = (c: Container): bigint | undefined => {
    const v = c.resources?.limits?.memory;
    return v === undefined ? undefined : BigInt(parseQuantity(String(v)).value());
  };
  let sum = 0n;
  for (const c of pod.spec?.containers ?? []) {
    const l = lim(c);
    if (l === undefined) return undefined;
    sum += l;
  }
  for (const c of pod.spec?.initContainers ?? []) {
    const l = lim(c);
    if (l === undefined) return undefined;
    if (l > sum) sum = l;
  }
  return sum > 0n ? sum : undefined;
}

export class VolumeManager {
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly memoryBackedSecrets: boolean;
  /** tokens by `<podUID>/<volume>/<path>` */
  private readonly tokens = new Map<string, CachedToken>();
  /** the mount of <root>/.secrets, once started */
  private secretsTmpfs: Promise<void> | undefined;

  constructor(private readonly o: VolumeManagerOptions) {
    this.memoryBackedSecrets = o.memoryBackedSecrets ?? (process.getuid?.() === 0);
  }

  /** <root>/<podUID> */
  podDir(podUID: string): string {
    if (!podUID || podUID.includes('/') || podUID === '.' || podUID === '..') throw new Error(`invalid pod UID ${JSON.stringify(podUID)}`);
    return join(this.o.root, podUID);
  }

  /** <root>/<podUID>/volumes/<plugin dir>/<name>; memory-backed secret and projected volumes:
   *  <root>/.secrets/<podUID>/<plugin dir>/<name> */
  volumeDir(podUID: string, plugin: keyof typeof pluginDirs, name: string): string {
    if (this.inMemory(plugin)) { this.podDir(podUID); return join(this.secretsRoot(), podUID, pluginDirs[plugin], name); }
    return join(this.podDir(podUID), 'volumes', pluginDirs[plugin], name);
  }

  /** the node's tmpfs for secret and projected volumes */
  secretsRoot(): string { return join(this.o.root, '.secrets'); }

  private inMemory(plugin: keyof typeof pluginDirs): boolean {
    return (plugin === 'secret' || plugin === 'projected') && this.memoryBackedSecrets;
  }

  /** Mounts <root>/.secrets once (a mount left by an earlier agent is reused). */
  private ensureSecretsTmpfs(): Promise<void> {
    if (!this.secretsTmpfs) {
      const d = this.secretsRoot();
      const p = (async () => {
        await fs.mkdir(d, { recursive: true, mode: 0o700 });
        if (!isMountPoint(d)) await mountTmpfs(d, { mode: 0o700 });
      })();
      this.secretsTmpfs = p;
      p.catch(() => { if (this.secretsTmpfs === p) this.secretsTmpfs = undefined; });
    }
    return this.secretsTmpfs;
  }

  /** Unmounts and removes the node's secrets tmpfs (agent cleanup, after every pod's tearDown). */
  async cleanup(): Promise<void> {
    const d = this.secretsRoot();
    this.secretsTmpfs = undefined;
    if (!(await exists(d))) return;
    for (const m of mountsUnder(d)) await unmount(m.mountPoint); // deepest first, d itself last
    if (mountsUnder(d).length) throw new Error(`cannot remove ${d}: still mounted`);
    await fs.rm(d, { recursive: true, force: true });
  }

  /** Sets up every volume of the pod; the map is keyed by volume name. */
  setUp(pod: Pod): Promise<Map<string, MountedVolume>> {
    const uid = pod.metadata?.uid ?? '';
    return this.serial(uid, async () => {
      await fs.mkdir(join(this.podDir(uid), 'volumes'), { recursive: true, mode: 0o750 });
      // all volumes at once (their API reads and mounts are independent); the first failure, in spec order, is reported
      const vols = pod.spec?.volumes ?? [];
      const res = await Promise.allSettled(vols.map((v) => this.setUpVolume(pod, v)));
      const out = new Map<string, MountedVolume>();
      res.forEach((r, i) => {
        const v = vols[i]!;
        if (r.status === 'fulfilled') { out.set(v.name, r.value); return; }
        const e = r.reason as unknown;
        if (e instanceof VolumeSetUpError) throw e;
        throw new VolumeSetUpError(v.name, e instanceof Error ? e.message : String(e), { cause: e });
      });
      return out;
    });
  }

  /**
   * setUp in two steps, for the pod start path: `mounts` as soon as every volume's directory exists
   * (emptyDir and hostPath volumes are complete then; a secret/projected volume's directory is on the
   * node's tmpfs), so that containers can be created; `ready` once the configMap, secret,
   * downwardAPI and projected content is written (the API reads, e.g. the service-account token).
   * A container must not start before `ready`; when it rejects (a missing configMap, …) the
   * directories made for it are gone again and the error is setUp's.
   */
  setUpEarly(pod: Pod): Promise<{ mounts: Map<string, MountedVolume>; ready: Promise<void> }> {
    const uid = pod.metadata?.uid ?? '';
    let early!: (m: Map<string, MountedVolume>) => void;
    const mountsP = new Promise<Map<string, MountedVolume>>((r) => { early = r; });
    const all = this.serial(uid, async () => {
      await fs.mkdir(join(this.podDir(uid), 'volumes'), { recursive: true, mode: 0o750 });
      const vols = pod.spec?.volumes ?? [];
      const started = vols.map((v) => this.setUpVolumeEarly(pod, v));
      const dirs = await Promise.allSettled(started.map((s) => s.mounted));
      const out = new Map<string, MountedVolume>();
      dirs.forEach((r, i) => {
        const v = vols[i]!;
        if (r.status === 'fulfilled') { out.set(v.name, r.value); return; }
        const e = r.reason as unknown;
        throw e instanceof VolumeSetUpError ? e : new VolumeSetUpError(v.name, e instanceof Error ? e.message : String(e), { cause: e });
      });
      early(out);
      const res = await Promise.allSettled(started.map((s) => s.filled));
      res.forEach((r, i) => {
        if (r.status === 'fulfilled') return;
        const e = r.reason as unknown;
        throw e instanceof VolumeSetUpError ? e : new VolumeSetUpError(vols[i]!.name, e instanceof Error ? e.message : String(e), { cause: e });
      });
    });
    all.catch(() => undefined);
    // a failure before the directories were all made rejects `mounts` too
    return Promise.race([mountsP, all.then(() => mountsP)]).then((mounts) => ({ mounts, ready: all }));
  }

  /**
   * Re-projects configMap, secret, downwardAPI and projected volumes that were set up, swapping in new
   * content atomically where it changed. Returns the names of the volumes that changed. A volume whose
   * source cannot be read keeps its old content; the first such error is thrown after the others ran.
   */
  refresh(pod: Pod): Promise<string[]> {
    const uid = pod.metadata?.uid ?? '';
    return this.serial(uid, async () => {
      const changed: string[] = [];
      let firstError: unknown;
      for (const v of pod.spec?.volumes ?? []) {
        const plugin = v.configMap ? 'configMap' : v.secret ? 'secret' : v.downwardAPI ? 'downwardAPI' : v.projected ? 'projected' : undefined;
        if (!plugin) continue;
        const dir = this.volumeDir(uid, plugin, v.name);
        if (!(await exists(join(dir, '..data')))) continue;
        try {
          const payload = await this.payloadFor(pod, v);
          if (payload && await writeAtomic(dir, payload, { gid: this.fsGroup(pod) })) changed.push(v.name);
        } catch (e) {
          firstError ??= e instanceof VolumeSetUpError ? e : new VolumeSetUpError(v.name, e instanceof Error ? e.message : String(e), { cause: e });
        }
      }
      if (firstError) throw firstError;
      return changed;
    });
  }

  /** Unmounts and removes everything under <root>/<podUID>/volumes; a no-op when already gone. */
  tearDown(podUID: string): Promise<void> {
    return this.serial(podUID, async () => {
      const podDir = this.podDir(podUID);
      const volumes = join(podDir, 'volumes');
      if (await exists(volumes)) {
        for (const m of mountsUnder(volumes)) await unmount(m.mountPoint);
        const left = mountsUnder(volumes);
        if (left.length) throw new Error(`cannot remove ${volumes}: still mounted: ${left.map((m) => m.mountPoint).join(', ')}`);
        await fs.rm(volumes, { recursive: true, force: true });
      }
      const inMemory = join(this.secretsRoot(), podUID);
      if (await exists(inMemory)) {
        const left = mountsUnder(inMemory);
        if (left.length) throw new Error(`cannot remove ${inMemory}: still mounted: ${left.map((m) => m.mountPoint).join(', ')}`);
        await fs.rm(inMemory, { recursive: true, force: true });
      }
      await fs.rmdir(podDir).catch(() => undefined); // only when nothing else lives there
      for (const k of [...this.tokens.keys()]) if (k.startsWith(`${podUID}/`)) this.tokens.delete(k);
    });
  }

  // ---- internals ----

  /** Runs fn after every earlier call for the same pod finished (setUp/refresh/tearDown never overlap). */
  private serial<T>(uid: string, fn: () => Promise<T>): Promise<T> {
    if (!uid) return Promise.reject(new Error('pod has no metadata.uid'));
    const prev = this.locks.get(uid) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(uid, tail);
    void tail.then(() => { if (this.locks.get(uid) === tail) this.locks.delete(uid); });
    return next;
  }

  private fsGroup(pod: Pod): number | undefined {
    const g = pod.spec?.securityContext?.fsGroup;
    return typeof g === 'number' ? g : undefined;
  }

  /** One volume for setUpEarly: `mounted` once its directory exists, `filled` once its content is written. */
  private setUpVolumeEarly(pod: Pod, v: Volume): { mounted: Promise<MountedVolume>; filled: Promise<void> } {
    const plugin = v.configMap ? 'configMap' : v.secret ? 'secret' : v.downwardAPI ? 'downwardAPI' : v.projected ? 'projected' : undefined;
    if (!plugin || !dnsLabel.test(v.name)) {
      const whole = this.setUpVolume(pod, v);
      return { mounted: whole, filled: whole.then(() => undefined) };
    }
    const dir = this.volumeDir(pod.metadata!.uid!, plugin, v.name);
    const existedP = exists(dir);
    const payloadP = this.payloadFor(pod, v);
    payloadP.catch(() => undefined);
    const mounted = (async (): Promise<MountedVolume> => {
      await existedP;
      if (this.inMemory(plugin)) await this.ensureSecretsTmpfs();
      await fs.mkdir(dir, { recursive: true });
      await fs.chmod(dir, plugin === 'secret' || plugin === 'projected' ? 0o1777 : 0o777);
      return { hostPath: dir, readOnly: true };
    })();
    const filled = (async () => {
      // on a failed read the (empty) directory stays: a container may already be created with it
      // bound in (it is removed before it starts); tearDown removes it with the pod
      const payload = await payloadP;
      await mounted;
      await writeAtomic(dir, payload ?? new Map(), { gid: this.fsGroup(pod) });
    })();
    filled.catch(() => undefined);
    return { mounted, filled };
  }

  private async setUpVolume(pod: Pod, v: Volume): Promise<MountedVolume> {
    if (!dnsLabel.test(v.name)) throw new Error(`invalid volume name ${JSON.stringify(v.name)}`);
    const uid = pod.metadata!.uid!;
    if (v.hostPath) {
      await checkHostPathType(v.hostPath.path, v.hostPath.type ?? '');
      return { hostPath: v.hostPath.path, readOnly: false };
    }
    if (v.emptyDir) {
      const dir = this.volumeDir(uid, 'emptyDir', v.name);
      await fs.mkdir(dir, { recursive: true });
      const medium = v.emptyDir.medium ?? '';
      if (medium === 'Memory') {
        if (!isMountPoint(dir)) await mountTmpfs(dir, { sizeBytes: this.memoryEmptyDirSize(pod, v.emptyDir.sizeLimit) });
      } else if (medium !== '') {
        throw new Error(`emptyDir medium ${JSON.stringify(medium)} is not supported`);
      }
      await fs.chmod(dir, 0o777);
      const gid = this.fsGroup(pod);
      if (gid !== undefined) { await chgrp(dir, gid); await fs.chmod(dir, 0o2777); }
      return { hostPath: dir, readOnly: false };
    }
    const plugin = v.configMap ? 'configMap' : v.secret ? 'secret' : v.downwardAPI ? 'downwardAPI' : v.projected ? 'projected' : undefined;
    if (!plugin) {
      const kind = Object.keys(v).find((k) => k !== 'name') ?? 'unknown';
      throw new Error(`volume type ${kind} is not supported by this node`);
    }
    const dir = this.volumeDir(uid, plugin, v.name);
    // the directory (and its tmpfs) while the sources are read; a missing configMap must not leave a
    // half-made volume behind, so one made here is removed again when the read fails
    const existed = await exists(dir);
    const made = (async () => {
      if (this.inMemory(plugin)) await this.ensureSecretsTmpfs();
      await fs.mkdir(dir, { recursive: true });
    })();
    let payload: Map<string, FileProjection> | undefined;
    try {
      payload = await this.payloadFor(pod, v);
    } catch (e) {
      await made.catch(() => undefined);
      if (!existed && !isMountPoint(dir)) await fs.rm(dir, { recursive: true, force: true });
      throw e;
    }
    await made;
    await fs.chmod(dir, plugin === 'secret' || plugin === 'projected' ? 0o1777 : 0o777);
    await writeAtomic(dir, payload ?? new Map(), { gid: this.fsGroup(pod) });
    return { hostPath: dir, readOnly: true };
  }

  private memoryEmptyDirSize(pod: Pod, sizeLimit: unknown): bigint | undefined {
    let size: bigint | undefined;
    const alloc = this.o.nodeAllocatable?.memory;
    const podLimit = podMemoryLimit(pod) ?? (alloc ? BigInt(parseQuantity(alloc).value()) : undefined);
    if (podLimit !== undefined) size = podLimit;
    if (sizeLimit !== undefined && sizeLimit !== null && String(sizeLimit) !== '') {
      const s = BigInt(parseQuantity(String(sizeLimit)).value());
      if (s > 0n && (size === undefined || s < size)) size = s;
    }
    return size;
  }

  private async getConfigMap(ns: string, name: string): Promise<ConfigMap | undefined> {
    try {
      return (await this.o.client.get(configMapsResource, ns, name)) as unknown as ConfigMap;
    } catch (e) {
      if (isStatusError(e, 'NotFound')) return undefined;
      throw new Error(`failed to fetch configmap ${JSON.stringify(name)}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  private async getSecret(ns: string, name: string): Promise<Secret | undefined> {
    try {
      return (await this.o.client.get(secretsResource, ns, name)) as unknown as Secret;
    } catch (e) {
      if (isStatusError(e, 'NotFound')) return undefined;
      throw new Error(`failed to fetch secret ${JSON.stringify(name)}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }

  /** The files a configMap/secret/downwardAPI/projected volume should hold now; undefined for other kinds. */
  private async payloadFor(pod: Pod, v: Volume): Promise<Map<string, FileProjection> | undefined> {
    const ns = pod.metadata?.namespace ?? 'default';
    const gid = this.fsGroup(pod);
    const withGroup = (mode: number): number => (gid !== undefined ? mode | 0o440 : mode);
    const out = new Map<string, FileProjection>();
    const put = (path: string, data: Buffer | string, mode: number): void => { out.set(path, { data, mode: withGroup(mode) }); };

    const addConfigMap = async (name: string, items: KeyToPath[] | undefined, optional: boolean, defaultMode: number, pre?: { got: ConfigMap | undefined }): Promise<void> => {
      const cm = pre ? pre.got : await this.getConfigMap(ns, name);
      if (!cm) {
        if (optional) return;
        throw new Error(`configmap ${JSON.stringify(name)} not found`);
      }
      const content = (k: string): Buffer | string | undefined => {
        if (cm.data && Object.prototype.hasOwnProperty.call(cm.data, k)) return cm.data[k]!;
        if (cm.binaryData && Object.prototype.hasOwnProperty.call(cm.binaryData, k)) return decodeBase64(cm.binaryData[k]!);
        return undefined;
      };
      if (!items?.length) {
        for (const k of [...Object.keys(cm.data ?? {}), ...Object.keys(cm.binaryData ?? {})]) put(k, content(k)!, defaultMode);
        return;
      }
      for (const it of items) {
        const c = content(it.key);
        if (c === undefined) {
          if (optional) continue;
          throw new Error(`configmap references non-existent config key: ${it.key}`);
        }
        put(it.path, c, it.mode ?? defaultMode);
      }
    };

    const addSecret = async (name: string, items: KeyToPath[] | undefined, optional: boolean, defaultMode: number, pre?: { got: Secret | undefined }): Promise<void> => {
      const s = pre ? pre.got : await this.getSecret(ns, name);
      if (!s) {
        if (optional) return;
        throw new Error(`secret ${JSON.stringify(name)} not found`);
      }
      const data = new Map<string, Buffer>();
      for (const [k, val] of Object.entries(s.data ?? {})) data.set(k, decodeBase64(val));
      for (const [k, val] of Object.entries((s as { stringData?: Record<string, string> }).stringData ?? {})) data.set(k, Buffer.from(val));
      if (!items?.length) {
        for (const [k, b] of data) put(k, b, defaultMode);
        return;
      }
      for (const it of items) {
        const b = data.get(it.key);
        if (b === undefined) {
          if (optional) continue;
          throw new Error(`references non-existent secret key: ${it.key}`);
        }
        put(it.path, b, it.mode ?? defaultMode);
      }
    };

    const addDownward = (items: DownwardAPIVolumeFile[] | undefined, defaultMode: number): void => {
      for (const it of items ?? []) {
        let value: string;
        if (it.fieldRef) value = podFieldValue(pod, it.fieldRef.fieldPath);
        else if (it.resourceFieldRef) {
          const cname = it.resourceFieldRef.containerName ?? '';
          const c = findContainer(pod, cname);
          if (!c) throw new Error(`container ${cname} not found`);
          value = containerResourceValue(it.resourceFieldRef, c, this.o.nodeAllocatable);
        } else throw new Error(`downwardAPI item ${JSON.stringify(it.path)} has neither fieldRef nor resourceFieldRef`);
        put(it.path, value, it.mode ?? defaultMode);
      }
    };

    if (v.configMap) {
      await addConfigMap(v.configMap.name ?? '', v.configMap.items, v.configMap.optional === true, v.configMap.defaultMode ?? DEFAULT_MODE);
      return out;
    }
    if (v.secret) {
      await addSecret(v.secret.secretName ?? '', v.secret.items, v.secret.optional === true, v.secret.defaultMode ?? DEFAULT_MODE);
      return out;
    }
    if (v.downwardAPI) {
      addDownward(v.downwardAPI.items, v.downwardAPI.defaultMode ?? DEFAULT_MODE);
      return out;
    }
    if (v.projected) {
      const mode = v.projected.defaultMode ?? DEFAULT_MODE;
      const sources = v.projected.sources ?? [];
      for (const src of sources) {
        if (!src.configMap && !src.secret && !src.downwardAPI && !src.serviceAccountToken) {
          const kind = Object.keys(src)[0] ?? 'unknown';
          throw new Error(`projected volume source ${kind} is not supported by this node`);
        }
      }
      // the sources' API reads (configMap, secret, TokenRequest) at once; their files are put in source order
      const fetched = await Promise.allSettled(sources.map((src) =>
        src.configMap ? this.getConfigMap(ns, src.configMap.name ?? '')
          : src.secret ? this.getSecret(ns, src.secret.name ?? '')
            : src.serviceAccountToken ? this.serviceAccountToken(pod, v.name, src.serviceAccountToken)
              : Promise.resolve(undefined)));
      for (let i = 0; i < sources.length; i++) {
        const src = sources[i]!;
        const f = fetched[i]!;
        if (f.status === 'rejected') throw f.reason;
        if (src.configMap) await addConfigMap(src.configMap.name ?? '', src.configMap.items, src.configMap.optional === true, mode, { got: f.value as ConfigMap | undefined });
        else if (src.secret) await addSecret(src.secret.name ?? '', src.secret.items, src.secret.optional === true, mode, { got: f.value as Secret | undefined });
        else if (src.downwardAPI) addDownward(src.downwardAPI.items, mode);
        else if (src.serviceAccountToken) put(src.serviceAccountToken.path, f.value as string, mode);
      }
      return out;
    }
    return undefined;
  }

  /** The token for one serviceAccountToken projection: the cached one while under 80% of its lifetime, else a new one. */
  private async serviceAccountToken(pod: Pod, volume: string, proj: { path: string; audience?: string; expirationSeconds?: number }): Promise<string> {
    const ns = pod.metadata?.namespace ?? 'default';
    const sa = pod.spec?.serviceAccountName || 'default';
    const key = `${pod.metadata?.uid ?? ''}/${volume}/${proj.path}`;
    const now = Date.now();
    const cur = this.tokens.get(key);
    if (cur && !cur.placeholder && now < cur.issuedAt + 0.8 * (cur.expiresAt - cur.issuedAt)) return cur.token;
    const expirationSeconds = proj.expirationSeconds ?? 3600;
    try {
      const tr = await this.o.client.createSubresource<{ status?: { token?: string; expirationTimestamp?: string } }>(serviceAccountsResource, ns, sa, 'token', {
        apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
        spec: {
          ...(proj.audience ? { audiences: [proj.audience] } : {}),
          expirationSeconds,
          boundObjectRef: { kind: 'Pod', apiVersion: 'v1', name: pod.metadata?.name, uid: pod.metadata?.uid },
        },
      });
      const token = tr.status?.token;
      if (!token) throw new Error('TokenRequest returned no token');
      const exp = Date.parse(tr.status?.expirationTimestamp ?? '');
      this.tokens.set(key, { token, issuedAt: now, expiresAt: Number.isFinite(exp) ? exp : now + expirationSeconds * 1000, placeholder: false });
      return token;
    } catch (e) {
      if (cur && !cur.placeholder && now < cur.expiresAt) return cur.token; // still valid: keep it, retry on the next refresh
      process.stderr.write(`volume manager: pod ${ns}/${pod.metadata?.name}: requesting a token for serviceaccount ${ns}/${sa} failed, writing a placeholder: ${e instanceof Error ? e.message : String(e)}\n`);
      const aud = proj.audience ?? '';
      // Not a credential, labelled so nobody mistakes it for one.
      const token = `${PLACEHOLDER_TOKEN_PREFIX}.TokenRequest-failed.serviceaccount=${ns}/${sa}${aud ? `.audience=${aud}` : ''}`;
      this.tokens.set(key, { token, issuedAt: now, expiresAt: now, placeholder: true });
      return token;
    }
  }
}

/** The hostPath `type` check, creating the directory or file for the *OrCreate types. */
export async function checkHostPathType(path: string, type: string): Promise<void> {
  if (!isAbsolute(path)) throw new Error(`hostPath ${JSON.stringify(path)} must be an absolute path`);
  const st = await fs.stat(path).catch(() => undefined);
  switch (type) {
    case '':
      return;
    case 'DirectoryOrCreate':
      if (!st) { await fs.mkdir(path, { recursive: true, mode: 0o755 }); return; }
      if (!st.isDirectory()) throw new Error(`hostPath type check failed: ${path} is not a directory`);
      return;
    case 'Directory':
      if (!st?.isDirectory()) throw new Error(`hostPath type check failed: ${path} is not a directory`);
      return;
    case 'FileOrCreate':
      if (!st) {
        // like upstream, the parent directory is not created
        const fh = await fs.open(path, 'a', 0o644);
        await fh.close();
        return;
      }
      if (!st.isFile()) throw new Error(`hostPath type check failed: ${path} is not a file`);
      return;
    case 'File':
      if (!st?.isFile()) throw new Error(`hostPath type check failed: ${path} is not a file`);
      return;
    case 'Socket':
      if (!st?.isSocket()) throw new Error(`hostPath type check failed: ${path} is not a socket file`);
      return;
    case 'CharDevice':
      if (!st?.isCharacterDevice()) throw new Error(`hostPath type check failed: ${path} is not a character device`);
      return;
    case 'BlockDevice':
      if (!st?.isBlockDevice()) throw new Error(`hostPath type check failed: ${path} is not a block device`);
      return;
    default:
      throw new Error(`hostPath type check failed: unknown type ${JSON.stringify(type)}`);
  }
}

function within(base: string, p: string): boolean {
  return p === base || p.startsWith(base.endsWith(sep) ? base : base + sep);
}

/**
 * The host path a `volumeMounts[].subPath` refers to. Refuses absolute paths and `..` components,
 * creates missing directories (with the volume root's mode, as the kubelet does), and follows
 * symlinks only while they stay inside the volume; the result has symlinks resolved, so the caller
 * bind-mounts exactly what was checked. subPath '' → the volume path itself.
 */
export async function resolveSubPath(volumeHostPath: string, subPath: string): Promise<string> {
  if (!subPath) return volumeHostPath;
  if (isAbsolute(subPath)) throw new Error(`unable to provision SubPath \`${subPath}\`: must be a relative path`);
  if (subPath.split('/').includes('..')) throw new Error(`unable to provision SubPath \`${subPath}\`: must not contain '..'`);
  const base = await fs.realpath(volumeHostPath);
  const mode = (await fs.stat(base)).mode & 0o7777;
  const escape = (): Error => new Error(`subpath ${JSON.stringify(subPath)} not within volume path ${JSON.stringify(volumeHostPath)}`);
  let cur = base;
  for (const part of subPath.split('/').filter((p) => p !== '' && p !== '.')) {
    const next = join(cur, part);
    const st = await fs.lstat(next).catch(() => undefined);
    if (!st) {
      await fs.mkdir(next, { mode }).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; });
      await fs.chmod(next, mode);
    }
    const r = await fs.realpath(next);
    if (!within(base, r)) throw escape();
    cur = r;
  }
  return cur;
}
