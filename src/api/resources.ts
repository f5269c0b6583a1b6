// The resource table: every built-in resource the API server serves, as upstream's discovery
// describes it (group, version, kind, plural, scope, short names, categories, verbs, subresources),
// with its strategy (defaults, validation, status split, field selectors, table printing).
// Adding a resource is one entry in `resources`.
import { defaulters } from './defaults.js';
import { printers } from './printers.js';
import type { KObject, ResourceDef, Strategy, SubresourceDef } from './types.js';
import { validators } from './validation.js';

type Obj = Record<string, unknown>;
const CRUD = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const CREATE = ['create'];

// ---- subresources -------------------------------------------------------------------------------

const status: SubresourceDef = { name: 'status', verbs: ['get', 'patch', 'update'] };
const scale: SubresourceDef = { name: 'scale', group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] };
const proxy = (kind: string): SubresourceDef => ({ name: 'proxy', group: '', version: 'v1', kind, verbs: ['create', 'delete', 'get', 'patch', 'update'] });
const connect = (name: string, kind: string): SubresourceDef => ({ name, group: '', version: 'v1', kind, verbs: ['create', 'get'] });

// ---- field selectors ----------------------------------------------------------------------------

function o(v: unknown): Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};
}
function s(v: unknown): string {
  return v === undefined || v === null ? '' : String(v);
}

const fieldsByKind: Record<string, (obj: KObject) => Record<string, string>> = {
  Pod: (obj) => {
    const spec = o(obj.spec);
    const st = o(obj.status);
    return {
      'spec.nodeName': s(spec.nodeName),
      'spec.restartPolicy': s(spec.restartPolicy),
      'spec.schedulerName': s(spec.schedulerName),
      'spec.serviceAccountName': s(spec.serviceAccountName),
      'spec.hostNetwork': spec.hostNetwork === true ? 'true' : 'false',
      'status.phase': s(st.phase),
      'status.podIP': s(st.podIP),
      'status.nominatedNodeName': s(st.nominatedNodeName),
    };
  },
  // core/v1 and events.k8s.io/v1 share storage; read either shape
  Event: (obj) => {
    const e = obj as Obj;
    const io = o(e.involvedObject ?? e.regarding);
    const reportingController = s(e.reportingComponent ?? e.reportingController);
    return {
      'involvedObject.kind': s(io.kind),
      'involvedObject.namespace': s(io.namespace),
      'involvedObject.name': s(io.name),
      'involvedObject.uid': s(io.uid),
      'involvedObject.apiVersion': s(io.apiVersion),
      'involvedObject.resourceVersion': s(io.resourceVersion),
      'involvedObject.fieldPath': s(io.fieldPath),
      reason: s(e.reason),
      reportingComponent: reportingController,
      source: s(o(e.source ?? e.deprecatedSource).component) || reportingController,
      type: s(e.type),
    };
  },
  Namespace: (obj) => ({ 'status.phase': s(o(obj.status).phase) }),
  Secret: (obj) => ({ type: s(obj.type) }),
  Node: (obj) => ({ 'spec.unschedulable': o(obj.spec).unschedulable === true ? 'true' : 'false' }),
  ReplicaSet: (obj) => ({ 'status.replicas': s(o(obj.status).replicas ?? 0) }),
  ReplicationController: (obj) => ({ 'status.replicas': s(o(obj.status).replicas ?? 0) }),
  Job: (obj) => ({ 'status.successful': s(o(obj.status).succeeded ?? 0) }),
  Service: (obj) => ({ 'spec.clusterIP': s(o(obj.spec).clusterIP), 'spec.type': s(o(obj.spec).type) }),
};

// ---- extra strategy hooks -----------------------------------------------------------------------

/** Job: generate the selector and pod labels from the uid unless spec.manualSelector is true. */
function generateJobSelector(obj: KObject): void {
  const spec = o(obj.spec);
  const uid = obj.metadata?.uid;
  const name = obj.metadata?.name;
  if (spec.manualSelector === true || !uid || !name || !obj.spec) return;
  const template = o(spec.template);
  spec.template = template;
  const meta = o(template.metadata);
  template.metadata = meta;
  meta.labels = {
    ...o(meta.labels),
    'batch.kubernetes.io/controller-uid': uid,
    'batch.kubernetes.io/job-name': name,
    'controller-uid': uid,
    'job-name': name,
  };
  if (spec.selector == null) spec.selector = { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } };
}

const extraHooks: Record<string, Partial<Strategy>> = {
  Job: { prepareForCreate: generateJobSelector },
};

// ---- building entries ---------------------------------------------------------------------------

interface Opts {
  singular?: string;
  listKind?: string;
  cluster?: boolean;
  shortNames?: string[];
  all?: boolean;
  verbs?: string[];
  subresources?: SubresourceDef[];
  virtual?: boolean;
  storageKey?: string;
}

function strategyFor(kind: string, subresources: SubresourceDef[]): Strategy {
  const st: Strategy = {};
  const d = defaulters[kind];
  if (d) st.defaults = d;
  const v = validators[kind];
  if (v) st.validate = v;
  if (subresources.some((x) => x.name === 'status')) st.statusSubresource = true;
  const f = fieldsByKind[kind];
  if (f) st.fields = f;
  const p = printers[kind];
  if (p) {
    st.columns = p.columns;
    st.row = p.row;
  }
  Object.assign(st, extraHooks[kind]);
  return st;
}

function res(group: string, version: string, kind: string, plural: string, opts: Opts = {}): ResourceDef {
  const subresources = opts.subresources ?? [];
  const def: ResourceDef = {
    group,
    version,
    kind,
    listKind: opts.listKind ?? `${kind}List`,
    plural,
    singular: opts.singular ?? kind.toLowerCase(),
    namespaced: !opts.cluster,
    verbs: opts.verbs ?? CRUD,
    strategy: strategyFor(kind, subresources),
    storageKey: opts.storageKey ?? `${group || 'core'}/${plural}`,
  };
  if (opts.shortNames) def.shortNames = opts.shortNames;
  if (opts.all) def.categories = ['all'];
  if (subresources.length) def.subresources = subresources;
  if (opts.virtual) def.virtual = true;
  return def;
}

const hpaKey = 'autoscaling/horizontalpodautoscalers';

export const resources: ResourceDef[] = [
  // core/v1
  res('', 'v1', 'Binding', 'bindings', { verbs: CREATE }),
  res('', 'v1', 'ComponentStatus', 'componentstatuses', { cluster: true, shortNames: ['cs'], verbs: ['get', 'list'], virtual: true }),
  res('', 'v1', 'ConfigMap', 'configmaps', { shortNames: ['cm'] }),
  res('', 'v1', 'Endpoints', 'endpoints', { shortNames: ['ep'], listKind: 'EndpointsList' }),
  res('', 'v1', 'Event', 'events', { shortNames: ['ev'], storageKey: 'core/events' }),
  res('', 'v1', 'LimitRange', 'limitranges', { shortNames: ['limits'] }),
  res('', 'v1', 'Namespace', 'namespaces', {
    cluster: true, shortNames: ['ns'], verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    subresources: [{ name: 'finalize', verbs: ['update'] }, status],
  }),
  res('', 'v1', 'Node', 'nodes', { cluster: true, shortNames: ['no'], subresources: [proxy('NodeProxyOptions'), status] }),
  res('', 'v1', 'PersistentVolumeClaim', 'persistentvolumeclaims', { shortNames: ['pvc'], subresources: [status] }),
  res('', 'v1', 'PersistentVolume', 'persistentvolumes', { cluster: true, shortNames: ['pv'], subresources: [status] }),
  res('', 'v1', 'Pod', 'pods', {
    shortNames: ['po'], all: true,
    subresources: [
      connect('attach', 'PodAttachOptions'),
      { name: 'binding', group: '', version: 'v1', kind: 'Binding', verbs: ['create'] },
      { name: 'ephemeralcontainers', verbs: ['get', 'patch', 'update'] },
      { name: 'eviction', group: 'policy', version: 'v1', kind: 'Eviction', verbs: ['create'] },
      connect('exec', 'PodExecOptions'),
      { name: 'log', verbs: ['get'] },
      connect('portforward', 'PodPortForwardOptions'),
      proxy('PodProxyOptions'),
      status,
    ],
  }),
  res('', 'v1', 'PodTemplate', 'podtemplates'),
  res('', 'v1', 'ReplicationController', 'replicationcontrollers', { shortNames: ['rc'], all: true, subresources: [scale, status] }),
  res('', 'v1', 'ResourceQuota', 'resourcequotas', { shortNames: ['quota'], subresources: [status] }),
  res('', 'v1', 'Secret', 'secrets'),
  res('', 'v1', 'ServiceAccount', 'serviceaccounts', {
    shortNames: ['sa'],
    subresources: [{ name: 'token', group: 'authentication.k8s.io', version: 'v1', kind: 'TokenRequest', verbs: ['create'] }],
  }),
  res('', 'v1', 'Service', 'services', { shortNames: ['svc'], all: true, subresources: [proxy('ServiceProxyOptions'), status] }),

  // apps/v1
  res('apps', 'v1', 'ControllerRevision', 'controllerrevisions'),
  res('apps', 'v1', 'DaemonSet', 'daemonsets', { shortNames: ['ds'], all: true, subresources: [status] }),
  res('apps', 'v1', 'Deployment', 'deployments', { shortNames: ['deploy'], all: true, subresources: [scale, status] }),
  res('apps', 'v1', 'ReplicaSet', 'replicasets', { shortNames: ['rs'], all: true, subresources: [scale, status] }),
  res('apps', 'v1', 'StatefulSet', 'statefulsets', { shortNames: ['sts'], all: true, subresources: [scale, status] }),

  // authentication.k8s.io/v1, authorization.k8s.io/v1: create-only reviews
  res('authentication.k8s.io', 'v1', 'SelfSubjectReview', 'selfsubjectreviews', { cluster: true, verbs: CREATE, virtual: true }),
  res('authentication.k8s.io', 'v1', 'TokenReview', 'tokenreviews', { cluster: true, verbs: CREATE, virtual: true }),
  res('authorization.k8s.io', 'v1', 'LocalSubjectAccessReview', 'localsubjectaccessreviews', { verbs: CREATE, virtual: true }),
  res('authorization.k8s.io', 'v1', 'SelfSubjectAccessReview', 'selfsubjectaccessreviews', { cluster: true, verbs: CREATE, virtual: true }),
  res('authorization.k8s.io', 'v1', 'SelfSubjectRulesReview', 'selfsubjectrulesreviews', { cluster: true, verbs: CREATE, virtual: true }),
  res('authorization.k8s.io', 'v1', 'SubjectAccessReview', 'subjectaccessreviews', { cluster: true, verbs: CREATE, virtual: true }),

  // autoscaling: v2 is preferred (listed first); both versions are one stored resource
  res('autoscaling', 'v2', 'HorizontalPodAutoscaler', 'horizontalpodautoscalers', { shortNames: ['hpa'], all: true, subresources: [status], storageKey: hpaKey }),
  res('autoscaling', 'v1', 'HorizontalPodAutoscaler', 'horizontalpodautoscalers', { shortNames: ['hpa'], all: true, subresources: [status], storageKey: hpaKey }),

  // batch/v1
  res('batch', 'v1', 'CronJob', 'cronjobs', { shortNames: ['cj'], all: true, subresources: [status] }),
  res('batch', 'v1', 'Job', 'jobs', { all: true, subresources: [status] }),

  // coordination.k8s.io/v1, discovery.k8s.io/v1, events.k8s.io/v1
  res('coordination.k8s.io', 'v1', 'Lease', 'leases'),
  res('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices'),
  res('events.k8s.io', 'v1', 'Event', 'events', { shortNames: ['ev'], storageKey: 'core/events' }),

  // networking.k8s.io/v1
  res('networking.k8s.io', 'v1', 'IngressClass', 'ingressclasses', { cluster: true }),
  res('networking.k8s.io', 'v1', 'Ingress', 'ingresses', { shortNames: ['ing'], subresources: [status] }),
  res('networking.k8s.io', 'v1', 'NetworkPolicy', 'networkpolicies', { shortNames: ['netpol'] }),

  // policy/v1
  res('policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets', { shortNames: ['pdb'], subresources: [status] }),

  // rbac.authorization.k8s.io/v1
  res('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', { cluster: true }),
  res('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', { cluster: true }),
  res('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings'),
  res('rbac.authorization.k8s.io', 'v1', 'Role', 'roles'),

  // scheduling.k8s.io/v1, storage.k8s.io/v1
  res('scheduling.k8s.io', 'v1', 'PriorityClass', 'priorityclasses', { cluster: true, shortNames: ['pc'] }),
  res('storage.k8s.io', 'v1', 'StorageClass', 'storageclasses', { cluster: true, shortNames: ['sc'] }),
];

// ---- lookups ------------------------------------------------------------------------------------

const byPlural = new Map<string, ResourceDef>();
const byKind = new Map<string, ResourceDef>();
for (const r of resources) {
  byPlural.set(`${r.group}/${r.version}/${r.plural}`, r);
  byKind.set(`${r.group}/${r.version}/${r.kind}`, r);
}

export function findResource(group: string, version: string, plural: string): ResourceDef | undefined {
  return byPlural.get(`${group}/${version}/${plural}`);
}

export function findByKind(group: string, version: string, kind: string): ResourceDef | undefined {
  return byKind.get(`${group}/${version}/${kind}`);
}

/** Every group with its versions, preferred version first, in table order (core group first). */
export function groupVersions(): { group: string; versions: string[] }[] {
  const out: { group: string; versions: string[] }[] = [];
  for (const r of resources) {
    let g = out.find((x) => x.group === r.group);
    if (!g) out.push((g = { group: r.group, versions: [] }));
    if (!g.versions.includes(r.version)) g.versions.push(r.version);
  }
  return out;
}
