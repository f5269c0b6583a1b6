// Built-in admission, as kube-apiserver's default plugins do it for the kinds that need it:
// ServiceAccount (default account name), DefaultTolerationSeconds, Priority (0), and the
// initial Pod status (phase Pending, QoS class).
import type { KObject } from '../api/types.js';

interface Container { resources?: { requests?: Record<string, string>; limits?: Record<string, string> } }
interface Toleration { key?: string; operator?: string; value?: string; effect?: string; tolerationSeconds?: number }

/** DefaultTolerationSeconds: what pods get for the not-ready and unreachable NoExecute taints
 *  (kube-apiserver's --default-not-ready-toleration-seconds / --default-unreachable-toleration-seconds,
 *  300 s each). Process-wide: `kyb server` sets it once from its flags. */
export const defaultTolerations = { notReadySeconds: 300, unreachableSeconds: 300 };

/** Mutations applied to a Pod on create, before validation. */
export function admitPodCreate(pod: KObject): void {
  const spec = (pod.spec ?? {}) as {
    serviceAccountName?: string; serviceAccount?: string; tolerations?: Toleration[];
    containers?: Container[]; initContainers?: Container[]; priority?: number;
  };
  if (!spec.serviceAccountName) spec.serviceAccountName = spec.serviceAccount || 'default';
  spec.serviceAccount = spec.serviceAccountName;
  const tols = (spec.tolerations ??= []);
  for (const key of ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']) {
    const has = tols.some((t) => (t.key === key || (!t.key && t.operator === 'Exists')) && (!t.effect || t.effect === 'NoExecute'));
    const tolerationSeconds = key === 'node.kubernetes.io/not-ready' ? defaultTolerations.notReadySeconds : defaultTolerations.unreachableSeconds;
    if (!has) tols.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds });
  }
  pod.spec = spec;
  pod.status = { phase: 'Pending', qosClass: qosClass(spec.containers ?? [], spec.initContainers ?? []) };
}

/** Upstream's QoS classification: Guaranteed, Burstable or BestEffort. */
export function qosClass(containers: Container[], initContainers: Container[] = []): 'Guaranteed' | 'Burstable' | 'BestEffort' {
  const all = [...containers, ...initContainers];
  let any = false;
  let guaranteed = true;
  for (const c of all) {
    const req = c.resources?.requests ?? {};
    const lim = c.resources?.limits ?? {};
    for (const r of ['cpu', 'memory']) {
      if (req[r] !== undefined || lim[r] !== undefined) any = true;
      if (lim[r] === undefined) guaranteed = false;
      else if (req[r] !== undefined && req[r] !== lim[r]) guaranteed = false;
    }
  }
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

// ---------------------------------------------------------------------------------------------
// ServiceAccount admission, the token volume part: unless automountServiceAccountToken is false (the
// pod's setting wins over its ServiceAccount's), add the projected `kube-api-access-xxxxx` volume
// (a bound token, the cluster CA from ConfigMap kube-root-ca.crt, the namespace) and mount it
// read-only at /var/run/secrets/kubernetes.io/serviceaccount in every container and init container
// that does not mount that path already. Nothing is added when some volume already mounts there
// through a container, matching upstream's "already mounted" check per container.

export const SERVICE_ACCOUNT_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
export const KUBE_API_ACCESS_PREFIX = 'kube-api-access-';
const RAND_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789'; // upstream's utilrand alphabet (no vowels, no look-alikes)

interface MountedContainer { volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[] }
interface PodVolume { name: string; projected?: { sources?: { serviceAccountToken?: unknown }[] } }

function randomSuffix(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += RAND_ALPHABET[Math.floor(Math.random() * RAND_ALPHABET.length)];
  return s;
}

/** Adds the kube-api-access volume and its mounts to a Pod being created (see above). */
export function admitServiceAccountToken(pod: KObject, serviceAccount: KObject | undefined, suffix = randomSuffix(5)): void {
  const spec = (pod.spec ?? {}) as {
    automountServiceAccountToken?: boolean; volumes?: PodVolume[];
    containers?: MountedContainer[]; initContainers?: MountedContainer[];
  };
  const saSetting = (serviceAccount as { automountServiceAccountToken?: boolean } | undefined)?.automountServiceAccountToken;
  const automount = spec.automountServiceAccountToken ?? saSetting ?? true;
  if (!automount) return;
  const all = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
  const needing = all.filter((c) => !(c.volumeMounts ?? []).some((m) => m.mountPath === SERVICE_ACCOUNT_MOUNT_PATH));
  if (!needing.length) return;
  const volumes = (spec.volumes ??= []);
  // reuse a kube-api-access volume the pod already has (a re-submitted manifest), else add one
  let vol = volumes.find((v) => v.name.startsWith(KUBE_API_ACCESS_PREFIX) && v.projected?.sources?.some((s) => s.serviceAccountToken));
  if (!vol) {
    let name = KUBE_API_ACCESS_PREFIX + suffix;
    while (volumes.some((v) => v.name === name)) name = KUBE_API_ACCESS_PREFIX + randomSuffix(5);
    vol = {
      name,
      projected: {
        sources: [
          { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
        ],
        defaultMode: 420,
      } as PodVolume['projected'],
    };
    volumes.push(vol);
  }
  for (const c of needing) (c.volumeMounts ??= []).push({ name: vol.name, readOnly: true, mountPath: SERVICE_ACCOUNT_MOUNT_PATH });
  pod.spec = spec;
}
