// Built-in admission, as kube-apiserver's default plugins do it for the kinds that need it:
// ServiceAccount (default account name), DefaultTolerationSeconds, Priority (0), and the
// initial Pod status (phase Pending, QoS class).
import type { KObject } from '../api/types.js';

interface Container { resources?: { requests?: Record<string, string>; limits?: Record<string, string> } }
interface Toleration { key?: string; operator?: string; value?: string; effect?: string; tolerationSeconds?: number }

const DEFAULT_TOLERATION_SECONDS = 300;

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
    if (!has) tols.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: DEFAULT_TOLERATION_SECONDS });
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
