// Upstream's defaulting (SetDefaults_* in pkg/apis/*/v1, plus the few defaults upstream's registry
// strategies and default admission plugins fill), applied in place to create and update bodies.
// Only fields that are absent are filled; nothing a client sent is changed.
import type { KObject } from './types.js';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
/** The object at obj[key], created empty when absent. */
function child(obj: Obj, key: string): Obj {
  const v = obj[key];
  if (isObj(v)) return v;
  const c: Obj = {};
  obj[key] = c;
  return c;
}
function def(obj: Obj, key: string, value: unknown): void {
  if (obj[key] === undefined || obj[key] === null) obj[key] = value;
}
function defEmpty(obj: Obj, key: string, value: unknown): void {
  if (obj[key] === undefined || obj[key] === null || obj[key] === '') obj[key] = value;
}
/** for upstream's non-pointer integers, where 0 means unset */
function defZero(obj: Obj, key: string, value: number): void {
  if (obj[key] === undefined || obj[key] === null || obj[key] === 0) obj[key] = value;
}
function objs(v: unknown): Obj[] {
  return Array.isArray(v) ? v.filter(isObj) : [];
}
function spec(obj: KObject): Obj {
  return child(obj as Obj, 'spec');
}

// ---- pod spec -----------------------------------------------------------------------------------

/** imagePullPolicy default: Always for `:latest` or no tag, IfNotPresent for other tags and digests. */
export function defaultPullPolicy(image: string): 'Always' | 'IfNotPresent' {
  if (image.includes('@')) return 'IfNotPresent';
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  if (colon <= slash) return 'Always';
  return image.slice(colon + 1) === 'latest' ? 'Always' : 'IfNotPresent';
}

function defaultHTTPGet(h: unknown): void {
  if (!isObj(h)) return;
  defEmpty(h, 'path', '/');
  defEmpty(h, 'scheme', 'HTTP');
}

function defaultProbe(p: unknown): void {
  if (!isObj(p)) return;
  defZero(p, 'timeoutSeconds', 1);
  defZero(p, 'periodSeconds', 10);
  defZero(p, 'successThreshold', 1);
  defZero(p, 'failureThreshold', 3);
  defaultHTTPGet(p.httpGet);
}

function defaultFieldRef(ref: unknown): void {
  if (isObj(ref)) defEmpty(ref, 'apiVersion', 'v1');
}

function defaultContainer(c: Obj): void {
  if (typeof c.image === 'string') defEmpty(c, 'imagePullPolicy', defaultPullPolicy(c.image));
  defEmpty(c, 'terminationMessagePath', '/dev/termination-log');
  defEmpty(c, 'terminationMessagePolicy', 'File');
  def(c, 'resources', {});
  for (const p of objs(c.ports)) defEmpty(p, 'protocol', 'TCP');
  for (const e of objs(c.env)) if (isObj(e.valueFrom)) defaultFieldRef(e.valueFrom.fieldRef);
  for (const k of ['livenessProbe', 'readinessProbe', 'startupProbe']) defaultProbe(c[k]);
  if (isObj(c.lifecycle)) {
    for (const k of ['postStart', 'preStop']) {
      const h = c.lifecycle[k];
      if (isObj(h)) defaultHTTPGet(h.httpGet);
    }
  }
}

const volumeSources = [
  'hostPath', 'emptyDir', 'gcePersistentDisk', 'awsElasticBlockStore', 'gitRepo', 'secret', 'nfs', 'iscsi',
  'glusterfs', 'persistentVolumeClaim', 'rbd', 'flexVolume', 'cinder', 'cephfs', 'flocker', 'downwardAPI', 'fc',
  'azureFile', 'configMap', 'vsphereVolume', 'quobyte', 'azureDisk', 'photonPersistentDisk', 'projected',
  'portworxVolume', 'scaleIO', 'storageos', 'csi', 'ephemeral', 'image',
];

function defaultVolume(v: Obj): void {
  if (!volumeSources.some((k) => v[k] != null)) v.emptyDir = {};
  for (const k of ['secret', 'configMap', 'downwardAPI', 'projected']) {
    const src = v[k];
    if (isObj(src)) def(src, 'defaultMode', 420);
  }
  if (isObj(v.hostPath)) def(v.hostPath, 'type', '');
  if (isObj(v.downwardAPI)) for (const it of objs(v.downwardAPI.items)) defaultFieldRef(it.fieldRef);
  if (isObj(v.projected)) {
    for (const s of objs(v.projected.sources)) {
      if (isObj(s.downwardAPI)) for (const it of objs(s.downwardAPI.items)) defaultFieldRef(it.fieldRef);
      if (isObj(s.serviceAccountToken)) def(s.serviceAccountToken, 'expirationSeconds', 3600);
    }
  }
  if (isObj(v.ephemeral) && isObj(v.ephemeral.volumeClaimTemplate)) {
    defaultPVCSpec(child(v.ephemeral.volumeClaimTemplate, 'spec'));
  }
}

export interface PodSpecDefaultOptions {
  /** default restartPolicy to Always (false for Job and CronJob templates, which must set it) */
  restartPolicy?: boolean;
}

/** SetDefaults_PodSpec and everything nested in it (containers, probes, volumes). */
export function defaultPodSpec(ps: Obj, opts: PodSpecDefaultOptions = {}): void {
  defEmpty(ps, 'dnsPolicy', 'ClusterFirst');
  if (opts.restartPolicy !== false) defEmpty(ps, 'restartPolicy', 'Always');
  def(ps, 'securityContext', {});
  def(ps, 'terminationGracePeriodSeconds', 30);
  defEmpty(ps, 'schedulerName', 'default-scheduler');
  for (const k of ['containers', 'initContainers', 'ephemeralContainers']) for (const c of objs(ps[k])) defaultContainer(c);
  for (const v of objs(ps.volumes)) defaultVolume(v);
}

function defaultPodTemplate(holder: Obj, opts: PodSpecDefaultOptions = {}): void {
  const t = holder.template;
  if (!isObj(t)) return;
  defaultPodSpec(child(t, 'spec'), opts);
}

/** SetDefaults_Pod: pod-only defaults on top of the pod spec ones, plus Priority admission's. */
function defaultPod(obj: KObject): void {
  const ps = spec(obj);
  defaultPodSpec(ps);
  def(ps, 'enableServiceLinks', true);
  // requests default to limits for every resource that has a limit and no request
  for (const k of ['containers', 'initContainers']) {
    for (const c of objs(ps[k])) {
      const r = child(c, 'resources');
      if (isObj(r.limits) && Object.keys(r.limits).length > 0) {
        const req = child(r, 'requests');
        for (const [name, q] of Object.entries(r.limits)) def(req, name, q);
      }
      if (ps.hostNetwork === true) {
        for (const p of objs(c.ports)) if (!p.hostPort) p.hostPort = p.containerPort;
      }
    }
  }
  // the Priority admission plugin: no class named and no global default class
  if (!ps.priorityClassName) {
    def(ps, 'priority', 0);
    def(ps, 'preemptionPolicy', 'PreemptLowerPriority');
  }
}

// ---- other kinds --------------------------------------------------------------------------------

function defaultPVCSpec(s: Obj): void {
  defEmpty(s, 'volumeMode', 'Filesystem');
}

function defaultPVC(pvc: Obj): void {
  defaultPVCSpec(child(pvc, 'spec'));
  defEmpty(child(pvc, 'status'), 'phase', 'Pending');
}

function isIntOrStringZero(v: unknown): boolean {
  return v === undefined || v === null || v === 0 || v === '';
}

/**
 * upstream's SetDefaults_Service, plus the create-time half of its normalizeClusterIPs (a body that
 * gives only the singular clusterIP gets clusterIPs = [clusterIP]). IP families, ipFamilyPolicy,
 * cluster IPs and node ports are not defaults: the API server's allocator fills them
 * (src/apiserver/service-alloc.ts), knowing the old object on update, as upstream's registry does.
 */
function defaultService(obj: KObject): void {
  const s = spec(obj);
  defEmpty(s, 'sessionAffinity', 'None');
  if (s.sessionAffinity === 'None') delete s.sessionAffinityConfig;
  if (s.sessionAffinity === 'ClientIP') {
    const cfg = s.sessionAffinityConfig;
    if (!isObj(cfg) || !isObj(cfg.clientIP) || cfg.clientIP.timeoutSeconds == null) {
      s.sessionAffinityConfig = { clientIP: { timeoutSeconds: 10800 } };
    }
  }
  defEmpty(s, 'type', 'ClusterIP');
  for (const p of objs(s.ports)) {
    defEmpty(p, 'protocol', 'TCP');
    if (isIntOrStringZero(p.targetPort)) p.targetPort = p.port;
  }
  const externallyAccessible = s.type === 'NodePort' || s.type === 'LoadBalancer'
    || (s.type === 'ClusterIP' && Array.isArray(s.externalIPs) && s.externalIPs.length > 0);
  if (externallyAccessible) defEmpty(s, 'externalTrafficPolicy', 'Cluster');
  if (s.type === 'NodePort' || s.type === 'LoadBalancer' || s.type === 'ClusterIP') def(s, 'internalTrafficPolicy', 'Cluster');
  if (s.type === 'LoadBalancer') def(s, 'allocateLoadBalancerNodePorts', true);
  if (typeof s.clusterIP === 'string' && s.clusterIP !== '' && (!Array.isArray(s.clusterIPs) || s.clusterIPs.length === 0)) {
    s.clusterIPs = [s.clusterIP];
  }
}

function defaultDeployment(obj: KObject): void {
  const s = spec(obj);
  def(s, 'replicas', 1);
  const st = child(s, 'strategy');
  defEmpty(st, 'type', 'RollingUpdate');
  if (st.type === 'RollingUpdate') {
    const ru = child(st, 'rollingUpdate');
    def(ru, 'maxUnavailable', '25%');
    def(ru, 'maxSurge', '25%');
  }
  def(s, 'revisionHistoryLimit', 10);
  def(s, 'progressDeadlineSeconds', 600);
  defaultPodTemplate(s);
}

function defaultReplicaSet(obj: KObject): void {
  const s = spec(obj);
  def(s, 'replicas', 1);
  defaultPodTemplate(s);
}

function defaultStatefulSet(obj: KObject): void {
  const s = spec(obj);
  defEmpty(s, 'podManagementPolicy', 'OrderedReady');
  const us = child(s, 'updateStrategy');
  defEmpty(us, 'type', 'RollingUpdate');
  if (us.type === 'RollingUpdate') def(child(us, 'rollingUpdate'), 'partition', 0);
  def(s, 'replicas', 1);
  def(s, 'revisionHistoryLimit', 10);
  const pol = child(s, 'persistentVolumeClaimRetentionPolicy');
  defEmpty(pol, 'whenDeleted', 'Retain');
  defEmpty(pol, 'whenScaled', 'Retain');
  for (const t of objs(s.volumeClaimTemplates)) defaultPVC(t);
  defaultPodTemplate(s);
}

function defaultDaemonSet(obj: KObject): void {
  const s = spec(obj);
  const us = child(s, 'updateStrategy');
  defEmpty(us, 'type', 'RollingUpdate');
  if (us.type === 'RollingUpdate') {
    const ru = child(us, 'rollingUpdate');
    def(ru, 'maxUnavailable', 1);
    def(ru, 'maxSurge', 0);
  }
  def(s, 'revisionHistoryLimit', 10);
  defaultPodTemplate(s);
}

function defaultReplicationController(obj: KObject): void {
  const s = spec(obj);
  const t = s.template;
  const labels = isObj(t) && isObj(t.metadata) && isObj(t.metadata.labels) ? t.metadata.labels : undefined;
  if (labels) {
    if (!isObj(s.selector) || Object.keys(s.selector).length === 0) s.selector = { ...labels };
    const meta = child(obj as Obj, 'metadata');
    if (!isObj(meta.labels) || Object.keys(meta.labels).length === 0) meta.labels = { ...labels };
  }
  def(s, 'replicas', 1);
  defaultPodTemplate(s);
}

function defaultJob(obj: KObject): void {
  const s = spec(obj);
  if (s.completions == null && s.parallelism == null) {
    s.completions = 1;
    s.parallelism = 1;
  }
  def(s, 'parallelism', 1);
  def(s, 'backoffLimit', s.backoffLimitPerIndex != null ? 2147483647 : 6);
  defEmpty(s, 'completionMode', 'NonIndexed');
  def(s, 'suspend', false);
  defEmpty(s, 'podReplacementPolicy', s.podFailurePolicy != null ? 'Failed' : 'TerminatingOrFailed');
  defaultPodTemplate(s, { restartPolicy: false });
}

function defaultCronJob(obj: KObject): void {
  const s = spec(obj);
  defEmpty(s, 'concurrencyPolicy', 'Allow');
  def(s, 'suspend', false);
  def(s, 'successfulJobsHistoryLimit', 3);
  def(s, 'failedJobsHistoryLimit', 1);
  const jt = s.jobTemplate;
  if (isObj(jt) && isObj(jt.spec)) defaultPodTemplate(jt.spec, { restartPolicy: false });
}

// HorizontalPodAutoscaler (upstream's autoscaling/v2 SetDefaults_HorizontalPodAutoscaler): minReplicas 1,
// a cpu 80% target when no metric is given, and a given `behavior` filled rule by rule (scale-up: no
// window, Max of 4 pods or 100% per 15 s; scale-down: Max of 100% per 15 s, the window left to the
// controller's --horizontal-pod-autoscaler-downscale-stabilization). autoscaling/v1 gets minReplicas.
function hpaScalingRules(from: unknown, defaults: Obj): Obj {
  if (!isObj(from)) return defaults;
  const out: Obj = { ...defaults };
  for (const k of ['selectPolicy', 'stabilizationWindowSeconds', 'policies']) if (from[k] !== undefined && from[k] !== null) out[k] = from[k];
  for (const [k, v] of Object.entries(from)) if (!(k in out)) out[k] = v;
  return out;
}

function defaultHPA(obj: KObject): void {
  const s = spec(obj);
  def(s, 'minReplicas', 1);
  if (obj.apiVersion === 'autoscaling/v1') return;
  if ((!Array.isArray(s.metrics) || s.metrics.length === 0) && s.targetCPUUtilizationPercentage == null) {
    s.metrics = [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }];
  }
  if (isObj(s.behavior)) {
    const b = s.behavior;
    b.scaleUp = hpaScalingRules(b.scaleUp, {
      stabilizationWindowSeconds: 0, selectPolicy: 'Max',
      policies: [{ type: 'Pods', value: 4, periodSeconds: 15 }, { type: 'Percent', value: 100, periodSeconds: 15 }],
    });
    b.scaleDown = hpaScalingRules(b.scaleDown, { selectPolicy: 'Max', policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] });
  }
}

function defaultNamespace(obj: KObject): void {
  const meta = child(obj as Obj, 'metadata');
  if (typeof meta.name === 'string' && meta.name) {
    const labels = child(meta, 'labels');
    labels['kubernetes.io/metadata.name'] = meta.name;
  }
  const s = spec(obj);
  if (!Array.isArray(s.finalizers)) s.finalizers = ['kubernetes'];
  defEmpty(child(obj as Obj, 'status'), 'phase', 'Active');
}

function defaultSecret(obj: KObject): void {
  const o = obj as Obj;
  defEmpty(o, 'type', 'Opaque');
  // v1 stringData is write-only: merged into data (stringData wins) and dropped
  if (isObj(o.stringData)) {
    const data = child(o, 'data');
    for (const [k, v] of Object.entries(o.stringData)) data[k] = Buffer.from(String(v), 'utf8').toString('base64');
  }
  delete o.stringData;
}

function defaultNode(obj: KObject): void {
  const st = (obj as Obj).status;
  if (isObj(st) && isObj(st.capacity) && st.allocatable == null) st.allocatable = { ...st.capacity };
}

function defaultPV(obj: KObject): void {
  const s = spec(obj);
  defEmpty(s, 'persistentVolumeReclaimPolicy', 'Retain');
  defEmpty(s, 'volumeMode', 'Filesystem');
  defEmpty(child(obj as Obj, 'status'), 'phase', 'Pending');
}

function defaultLimitRange(obj: KObject): void {
  for (const item of objs(spec(obj).limits)) {
    if (item.type !== 'Container') continue;
    const d = child(item, 'default');
    const dr = child(item, 'defaultRequest');
    if (isObj(item.max)) for (const [k, v] of Object.entries(item.max)) def(d, k, v);
    for (const [k, v] of Object.entries(d)) def(dr, k, v);
    if (isObj(item.min)) for (const [k, v] of Object.entries(item.min)) def(dr, k, v);
  }
}

function defaultEndpoints(obj: KObject): void {
  for (const ss of objs((obj as Obj).subsets)) for (const p of objs(ss.ports)) defEmpty(p, 'protocol', 'TCP');
}

function defaultEndpointSlice(obj: KObject): void {
  for (const p of objs((obj as Obj).ports)) {
    def(p, 'name', '');
    defEmpty(p, 'protocol', 'TCP');
  }
}

function defaultNetworkPolicy(obj: KObject): void {
  const s = spec(obj);
  for (const dir of ['ingress', 'egress']) {
    for (const rule of objs(s[dir])) for (const p of objs(rule.ports)) defEmpty(p, 'protocol', 'TCP');
  }
  if (!Array.isArray(s.policyTypes) || s.policyTypes.length === 0) {
    s.policyTypes = Array.isArray(s.egress) && s.egress.length > 0 ? ['Ingress', 'Egress'] : ['Ingress'];
  }
}

function defaultBinding(obj: KObject): void {
  const o = obj as Obj;
  if (isObj(o.roleRef)) defEmpty(o.roleRef, 'apiGroup', 'rbac.authorization.k8s.io');
  for (const sub of objs(o.subjects)) {
    if (sub.apiGroup != null) continue;
    if (sub.kind === 'ServiceAccount') sub.apiGroup = '';
    else if (sub.kind === 'User' || sub.kind === 'Group') sub.apiGroup = 'rbac.authorization.k8s.io';
  }
}

/** Defaulting per Kind. Kinds with nothing to default are absent. */
export const defaulters: Record<string, (obj: KObject) => void> = {
  Pod: defaultPod,
  PodTemplate: (obj) => defaultPodTemplate(obj as Obj),
  Service: defaultService,
  Deployment: defaultDeployment,
  ReplicaSet: defaultReplicaSet,
  StatefulSet: defaultStatefulSet,
  DaemonSet: defaultDaemonSet,
  ReplicationController: defaultReplicationController,
  Job: defaultJob,
  CronJob: defaultCronJob,
  HorizontalPodAutoscaler: defaultHPA,
  Namespace: defaultNamespace,
  Secret: defaultSecret,
  Node: defaultNode,
  PersistentVolume: defaultPV,
  PersistentVolumeClaim: (obj) => defaultPVC(obj as Obj),
  LimitRange: defaultLimitRange,
  Endpoints: defaultEndpoints,
  EndpointSlice: defaultEndpointSlice,
  NetworkPolicy: defaultNetworkPolicy,
  RoleBinding: defaultBinding,
  ClusterRoleBinding: defaultBinding,
  PriorityClass: (obj) => defEmpty(obj as Obj, 'preemptionPolicy', 'PreemptLowerPriority'),
  StorageClass: (obj) => {
    defEmpty(obj as Obj, 'reclaimPolicy', 'Delete');
    defEmpty(obj as Obj, 'volumeBindingMode', 'Immediate');
  },
};
