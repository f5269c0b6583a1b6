// Strategic-merge-patch metadata for the built-in kinds (upstream's patchStrategy/patchMergeKey
// struct tags, as listed in kubectl-api.md §10.2). Lists not named here are atomic (replaced whole).

export interface ListMeta {
  /** 'merge': merge elements by mergeKey (or as a set for primitive lists); 'replace': atomic */
  strategy: 'merge' | 'replace';
  /** the key that identifies an element of a list of maps; absent for primitive lists merged as sets */
  mergeKey?: string;
  /** the field also carries retainKeys (volumes, strategy) */
  retainKeys?: boolean;
}

/** Looks up a list field by its path of field names from the object root, list indices left out,
 *  e.g. ['spec','template','spec','containers']. */
export type PatchMetaLookup = (path: readonly string[]) => ListMeta | undefined;

const podSpec: Record<string, ListMeta> = {
  containers: { strategy: 'merge', mergeKey: 'name' },
  initContainers: { strategy: 'merge', mergeKey: 'name' },
  ephemeralContainers: { strategy: 'merge', mergeKey: 'name' },
  volumes: { strategy: 'merge', mergeKey: 'name', retainKeys: true },
  imagePullSecrets: { strategy: 'merge', mergeKey: 'name' },
  hostAliases: { strategy: 'merge', mergeKey: 'ip' },
  topologySpreadConstraints: { strategy: 'merge', mergeKey: 'topologyKey' },
  schedulingGates: { strategy: 'merge', mergeKey: 'name' },
  resourceClaims: { strategy: 'merge', mergeKey: 'name', retainKeys: true },
};
const container: Record<string, ListMeta> = {
  ports: { strategy: 'merge', mergeKey: 'containerPort' },
  env: { strategy: 'merge', mergeKey: 'name' },
  volumeMounts: { strategy: 'merge', mergeKey: 'mountPath' },
  volumeDevices: { strategy: 'merge', mergeKey: 'devicePath' },
};
const containerLists = new Set(['containers', 'initContainers', 'ephemeralContainers']);

/** Paths (from the root) at which a PodSpec sits, per kind. */
const podSpecPaths: Record<string, string[][]> = {
  Pod: [['spec']],
  PodTemplate: [['template', 'spec']],
  ReplicationController: [['spec', 'template', 'spec']],
  Deployment: [['spec', 'template', 'spec']],
  ReplicaSet: [['spec', 'template', 'spec']],
  StatefulSet: [['spec', 'template', 'spec']],
  DaemonSet: [['spec', 'template', 'spec']],
  Job: [['spec', 'template', 'spec']],
  CronJob: [['spec', 'jobTemplate', 'spec', 'template', 'spec']],
};

function startsWith(path: readonly string[], prefix: string[]): boolean {
  if (path.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (path[i] !== prefix[i]) return false;
  return true;
}

function lookupCommon(kind: string, path: readonly string[]): ListMeta | undefined {
  const last = path[path.length - 1];
  // metadata, at any depth (object metadata and template metadata)
  const parent = path[path.length - 2];
  if (parent === 'metadata') {
    if (last === 'ownerReferences') return { strategy: 'merge', mergeKey: 'uid' };
    if (last === 'finalizers') return { strategy: 'merge' };
  }
  // status conditions everywhere merge on type
  if (last === 'conditions' && path[0] === 'status') return { strategy: 'merge', mergeKey: 'type' };
  if (kind === 'Node') {
    if (path.length === 2 && path[0] === 'status' && last === 'addresses') return { strategy: 'merge', mergeKey: 'type' };
    if (path.length === 2 && path[0] === 'spec' && last === 'taints') return { strategy: 'merge', mergeKey: 'key' };
  }
  if (kind === 'Pod' && path.length === 2 && path[0] === 'status' && (last === 'podIPs' || last === 'hostIPs')) {
    return { strategy: 'merge', mergeKey: 'ip' };
  }
  if (kind === 'Service' && path.length === 2 && path[0] === 'spec' && last === 'ports') {
    return { strategy: 'merge', mergeKey: 'port' };
  }
  for (const base of podSpecPaths[kind] ?? []) {
    if (!startsWith(path, base)) continue;
    const rest = path.slice(base.length);
    if (rest.length === 1 && podSpec[rest[0]]) return podSpec[rest[0]];
    if (rest.length === 2 && containerLists.has(rest[0]) && container[rest[1]]) return container[rest[1]];
  }
  return undefined;
}

/** Maps that carry `retainKeys` (besides list elements flagged above). */
export function mapRetainsKeys(kind: string, path: readonly string[]): boolean {
  return (kind === 'Deployment' && path.length === 2 && path[0] === 'spec' && path[1] === 'strategy')
    || (kind === 'DaemonSet' && path.length === 2 && path[0] === 'spec' && path[1] === 'updateStrategy');
}

/** The lookup for one kind. Unknown kinds (CRDs) get no merge keys: every list is atomic. */
export function patchMetaFor(kind: string): PatchMetaLookup {
  return (path) => lookupCommon(kind, path);
}
