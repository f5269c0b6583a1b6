// Decodes the Kubernetes protobuf request bodies that kubectl's typed clients send
// (`Content-Type: application/vnd.kubernetes.protobuf`, kubectl-api.md §3.2, §10.1) into the JSON form
// of the object. A generic protobuf wire reader plus hand-written field tables for the kinds kubectl
// creates; unknown fields are skipped by wire type. Zero values that gogo emits for non-pointer fields
// are dropped so the result looks like what kubectl would have sent as JSON.
import type { KObject } from '../api/types.js';
import { errors, StatusError } from '../machinery/status.js';

// ---------------------------------------------------------------------------------------------
// Wire reader

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

class Truncated extends Error {}

export class ProtoReader {
  pos: number;
  constructor(readonly buf: Buffer, start = 0, readonly end = buf.length) {
    this.pos = start;
  }
  done(): boolean {
    return this.pos >= this.end;
  }
  /** A varint as an unsigned 64-bit bigint (callers narrow it to the field's type). */
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Truncated('truncated varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw new Truncated('varint longer than 10 bytes');
  }
  /** A varint small enough for a JS number (tags, lengths). */
  uint(): number {
    const v = this.varint();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Truncated('length out of range');
    return Number(v);
  }
  bytes(): Buffer {
    const n = this.uint();
    if (this.pos + n > this.end) throw new Truncated('truncated length-delimited field');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** A sub-reader over the next length-delimited field, without copying. */
  sub(): ProtoReader {
    const n = this.uint();
    if (this.pos + n > this.end) throw new Truncated('truncated length-delimited field');
    const r = new ProtoReader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }
  fixed64(): Buffer {
    if (this.pos + 8 > this.end) throw new Truncated('truncated fixed64');
    const b = this.buf.subarray(this.pos, this.pos + 8);
    this.pos += 8;
    return b;
  }
  fixed32(): Buffer {
    if (this.pos + 4 > this.end) throw new Truncated('truncated fixed32');
    const b = this.buf.subarray(this.pos, this.pos + 4);
    this.pos += 4;
    return b;
  }
  tag(): { field: number; wire: number } {
    const t = this.uint();
    const field = Math.floor(t / 8);
    if (field === 0) throw new Truncated('field number 0');
    return { field, wire: t & 7 };
  }
  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT: this.varint(); return;
      case WIRE_FIXED64: this.fixed64(); return;
      case WIRE_LEN: this.bytes(); return;
      case WIRE_FIXED32: this.fixed32(); return;
      default: throw new Truncated(`unsupported wire type ${wire}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Schema DSL

export type FieldType = 'string' | 'bytes' | 'int32' | 'int64' | 'bool' | 'double' | 'message' | 'map'
  | 'time' | 'intstr' | 'quantity' | 'rawjson';

export interface FieldDef {
  /** JSON field name */
  name: string;
  type: FieldType;
  repeated?: boolean;
  /** message name for type 'message' */
  msg?: string;
  /** value type for type 'map' (key is always string) */
  value?: 'string' | 'bytes' | 'quantity';
  /** a pointer in Go: zero values and empty messages are meaningful and kept */
  ptr?: boolean;
  /** an embedded Go struct: its fields appear at this level of the JSON */
  inline?: boolean;
}
export type MessageDef = Record<number, FieldDef>;

const scalarTypes = new Set(['string', 'bytes', 'int32', 'int64', 'bool', 'double', 'time', 'intstr', 'quantity', 'rawjson']);

/** Parses the compact notation used below into a MessageDef:
 *  `N name[:type]` separated by commas; type defaults to string; `[]T` repeated; trailing `*` = pointer;
 *  `map` / `map<bytes>` / `map<quantity>`; a capitalised type is a message; name `...` = embedded. */
function message(spec: string): MessageDef {
  const def: MessageDef = {};
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+) ([\w.]+)(?::(\S+?))?(\*)?$/.exec(part);
    if (!m) throw new Error(`bad schema entry ${part}`);
    let t = m[3] ?? 'string';
    const f: FieldDef = { name: m[2], type: 'string' };
    if (m[2] === '...') f.inline = true;
    if (m[4]) f.ptr = true;
    if (t.startsWith('[]')) { f.repeated = true; t = t.slice(2); }
    if (t === 'map') { f.type = 'map'; f.value = 'string'; }
    else if (t.startsWith('map<')) { f.type = 'map'; f.value = t.slice(4, -1) as FieldDef['value']; }
    else if (scalarTypes.has(t)) f.type = t as FieldType;
    else if (/^[A-Z]/.test(t)) { f.type = 'message'; f.msg = t; }
    else throw new Error(`bad schema type ${t}`);
    def[Number(m[1])] = f;
  }
  return def;
}

// Field numbers from k8s.io/api and k8s.io/apimachinery generated.proto (v0.32).
const specs: Record<string, string> = {
  // meta
  ObjectMeta: '1 name, 2 generateName, 3 namespace, 4 selfLink, 5 uid, 6 resourceVersion, 7 generation:int64, 8 creationTimestamp:time, 9 deletionTimestamp:time, 10 deletionGracePeriodSeconds:int64*, 11 labels:map, 12 annotations:map, 13 ownerReferences:[]OwnerReference, 14 finalizers:[]string, 17 managedFields:[]ManagedFieldsEntry',
  OwnerReference: '5 apiVersion, 1 kind, 3 name, 4 uid, 6 controller:bool*, 7 blockOwnerDeletion:bool*',
  ManagedFieldsEntry: '1 manager, 2 operation, 3 apiVersion, 4 time:time, 6 fieldsType, 7 fieldsV1:rawjson, 8 subresource',
  LabelSelector: '1 matchLabels:map, 2 matchExpressions:[]LabelSelectorRequirement',
  LabelSelectorRequirement: '1 key, 2 operator, 3 values:[]string',
  // core
  Namespace: '1 metadata:ObjectMeta, 2 spec:NamespaceSpec',
  NamespaceSpec: '1 finalizers:[]string',
  ConfigMap: '1 metadata:ObjectMeta, 2 data:map, 3 binaryData:map<bytes>, 4 immutable:bool*',
  Secret: '1 metadata:ObjectMeta, 2 data:map<bytes>, 3 type, 4 stringData:map, 5 immutable:bool*',
  ServiceAccount: '1 metadata:ObjectMeta, 2 secrets:[]ObjectReference, 3 imagePullSecrets:[]LocalObjectReference, 4 automountServiceAccountToken:bool*',
  ObjectReference: '1 kind, 2 namespace, 3 name, 4 uid, 5 apiVersion, 6 resourceVersion, 7 fieldPath',
  LocalObjectReference: '1 name',
  TypedLocalObjectReference: '1 apiGroup*, 2 kind, 3 name',
  Service: '1 metadata:ObjectMeta, 2 spec:ServiceSpec',
  ServiceSpec: '1 ports:[]ServicePort, 2 selector:map, 3 clusterIP, 18 clusterIPs:[]string, 4 type, 5 externalIPs:[]string, 7 sessionAffinity, 8 loadBalancerIP, 9 loadBalancerSourceRanges:[]string, 10 externalName, 11 externalTrafficPolicy, 12 healthCheckNodePort:int32, 13 publishNotReadyAddresses:bool, 14 sessionAffinityConfig:SessionAffinityConfig, 17 ipFamilyPolicy, 19 ipFamilies:[]string, 20 allocateLoadBalancerNodePorts:bool*, 21 loadBalancerClass, 22 internalTrafficPolicy, 23 trafficDistribution',
  ServicePort: '1 name, 2 protocol, 6 appProtocol, 3 port:int32, 4 targetPort:intstr, 5 nodePort:int32',
  SessionAffinityConfig: '1 clientIP:ClientIPConfig',
  ClientIPConfig: '1 timeoutSeconds:int32*',
  ResourceQuota: '1 metadata:ObjectMeta, 2 spec:ResourceQuotaSpec',
  ResourceQuotaSpec: '1 hard:map<quantity>, 2 scopes:[]string, 3 scopeSelector:ScopeSelector',
  ScopeSelector: '1 matchExpressions:[]ScopedResourceSelectorRequirement',
  ScopedResourceSelectorRequirement: '1 scopeName, 2 operator, 3 values:[]string',
  PersistentVolumeClaim: '1 metadata:ObjectMeta, 2 spec:PersistentVolumeClaimSpec',
  PersistentVolumeClaimSpec: '1 accessModes:[]string, 4 selector:LabelSelector, 2 resources:VolumeResourceRequirements, 3 volumeName, 5 storageClassName*, 6 volumeMode*, 7 dataSource:TypedLocalObjectReference, 9 volumeAttributesClassName*',
  VolumeResourceRequirements: '1 limits:map<quantity>, 2 requests:map<quantity>',
  // pods
  Pod: '1 metadata:ObjectMeta, 2 spec:PodSpec',
  PodTemplateSpec: '1 metadata:ObjectMeta, 2 spec:PodSpec',
  PodSpec: '1 volumes:[]Volume, 20 initContainers:[]Container, 2 containers:[]Container, 34 ephemeralContainers:[]EphemeralContainer, 3 restartPolicy, 4 terminationGracePeriodSeconds:int64*, 5 activeDeadlineSeconds:int64*, 6 dnsPolicy, 7 nodeSelector:map, 8 serviceAccountName, 9 serviceAccount, 21 automountServiceAccountToken:bool*, 10 nodeName, 11 hostNetwork:bool, 12 hostPID:bool, 13 hostIPC:bool, 27 shareProcessNamespace:bool*, 14 securityContext:PodSecurityContext, 15 imagePullSecrets:[]LocalObjectReference, 16 hostname, 17 subdomain, 19 schedulerName, 22 tolerations:[]Toleration, 23 hostAliases:[]HostAlias, 24 priorityClassName, 25 priority:int32*, 26 dnsConfig:PodDNSConfig, 28 readinessGates:[]PodReadinessGate, 29 runtimeClassName*, 30 enableServiceLinks:bool*, 31 preemptionPolicy*, 32 overhead:map<quantity>, 33 topologySpreadConstraints:[]TopologySpreadConstraint, 35 setHostnameAsFQDN:bool*, 36 os:PodOS, 37 hostUsers:bool*, 38 schedulingGates:[]PodSchedulingGate, 40 resources:ResourceRequirements',
  Container: '1 name, 2 image, 3 command:[]string, 4 args:[]string, 5 workingDir, 6 ports:[]ContainerPort, 19 envFrom:[]EnvFromSource, 7 env:[]EnvVar, 8 resources:ResourceRequirements, 23 resizePolicy:[]ContainerResizePolicy, 24 restartPolicy*, 9 volumeMounts:[]VolumeMount, 21 volumeDevices:[]VolumeDevice, 10 livenessProbe:Probe, 11 readinessProbe:Probe, 22 startupProbe:Probe, 12 lifecycle:Lifecycle, 13 terminationMessagePath, 20 terminationMessagePolicy, 14 imagePullPolicy, 15 securityContext:SecurityContext, 16 stdin:bool, 17 stdinOnce:bool, 18 tty:bool',
  EphemeralContainer: '1 ...:Container, 2 targetContainerName',
  ContainerPort: '1 name, 2 hostPort:int32, 3 containerPort:int32, 4 protocol, 5 hostIP',
  ContainerResizePolicy: '1 resourceName, 2 restartPolicy',
  EnvVar: '1 name, 2 value, 3 valueFrom:EnvVarSource',
  EnvVarSource: '1 fieldRef:ObjectFieldSelector, 2 resourceFieldRef:ResourceFieldSelector, 3 configMapKeyRef:ConfigMapKeySelector, 4 secretKeyRef:SecretKeySelector',
  ObjectFieldSelector: '1 apiVersion, 2 fieldPath',
  ResourceFieldSelector: '1 containerName, 2 resource, 3 divisor:quantity',
  ConfigMapKeySelector: '1 ...:LocalObjectReference, 2 key, 3 optional:bool*',
  SecretKeySelector: '1 ...:LocalObjectReference, 2 key, 3 optional:bool*',
  EnvFromSource: '1 prefix, 2 configMapRef:ConfigMapEnvSource, 3 secretRef:SecretEnvSource',
  ConfigMapEnvSource: '1 ...:LocalObjectReference, 2 optional:bool*',
  SecretEnvSource: '1 ...:LocalObjectReference, 2 optional:bool*',
  ResourceRequirements: '1 limits:map<quantity>, 2 requests:map<quantity>, 3 claims:[]ResourceClaim',
  ResourceClaim: '1 name, 2 request',
  VolumeMount: '1 name, 2 readOnly:bool, 7 recursiveReadOnly*, 3 mountPath, 4 subPath, 5 mountPropagation*, 6 subPathExpr',
  VolumeDevice: '1 name, 2 devicePath',
  Probe: '1 ...:ProbeHandler, 2 initialDelaySeconds:int32, 3 timeoutSeconds:int32, 4 periodSeconds:int32, 5 successThreshold:int32, 6 failureThreshold:int32, 7 terminationGracePeriodSeconds:int64*',
  ProbeHandler: '1 exec:ExecAction, 2 httpGet:HTTPGetAction, 3 tcpSocket:TCPSocketAction, 4 grpc:GRPCAction',
  LifecycleHandler: '1 exec:ExecAction, 2 httpGet:HTTPGetAction, 3 tcpSocket:TCPSocketAction, 4 sleep:SleepAction',
  Lifecycle: '1 postStart:LifecycleHandler, 2 preStop:LifecycleHandler',
  ExecAction: '1 command:[]string',
  HTTPGetAction: '1 path, 2 port:intstr, 3 host, 4 scheme, 5 httpHeaders:[]HTTPHeader',
  HTTPHeader: '1 name, 2 value',
  TCPSocketAction: '1 port:intstr, 2 host',
  GRPCAction: '1 port:int32, 2 service*',
  SleepAction: '1 seconds:int64',
  SecurityContext: '1 capabilities:Capabilities, 2 privileged:bool*, 3 seLinuxOptions:SELinuxOptions, 4 runAsUser:int64*, 8 runAsGroup:int64*, 5 runAsNonRoot:bool*, 6 readOnlyRootFilesystem:bool*, 7 allowPrivilegeEscalation:bool*, 9 procMount*, 11 seccompProfile:SeccompProfile, 12 appArmorProfile:AppArmorProfile',
  PodSecurityContext: '1 seLinuxOptions:SELinuxOptions, 2 runAsUser:int64*, 6 runAsGroup:int64*, 3 runAsNonRoot:bool*, 4 supplementalGroups:[]int64, 12 supplementalGroupsPolicy*, 5 fsGroup:int64*, 7 sysctls:[]Sysctl, 9 fsGroupChangePolicy*, 10 seccompProfile:SeccompProfile, 11 appArmorProfile:AppArmorProfile, 13 seLinuxChangePolicy*',
  Capabilities: '1 add:[]string, 2 drop:[]string',
  SELinuxOptions: '1 user, 2 role, 3 type, 4 level',
  SeccompProfile: '1 type, 2 localhostProfile*',
  AppArmorProfile: '1 type, 2 localhostProfile*',
  Sysctl: '1 name, 2 value',
  Toleration: '1 key, 2 operator, 3 value, 4 effect, 5 tolerationSeconds:int64*',
  HostAlias: '1 ip, 2 hostnames:[]string',
  PodDNSConfig: '1 nameservers:[]string, 2 searches:[]string, 3 options:[]PodDNSConfigOption',
  PodDNSConfigOption: '1 name, 2 value*',
  PodReadinessGate: '1 conditionType',
  PodSchedulingGate: '1 name',
  PodOS: '1 name',
  TopologySpreadConstraint: '1 maxSkew:int32*, 2 topologyKey, 3 whenUnsatisfiable, 4 labelSelector:LabelSelector, 5 minDomains:int32*, 6 nodeAffinityPolicy*, 7 nodeTaintsPolicy*, 8 matchLabelKeys:[]string',
  Volume: '1 name, 2 ...:VolumeSource',
  // every volume source is a pointer: `emptyDir: {}` is meaningful
  VolumeSource: '1 hostPath:HostPathVolumeSource*, 2 emptyDir:EmptyDirVolumeSource*, 6 secret:SecretVolumeSource*, 7 nfs:NFSVolumeSource*, 10 persistentVolumeClaim:PersistentVolumeClaimVolumeSource*, 16 downwardAPI:DownwardAPIVolumeSource*, 19 configMap:ConfigMapVolumeSource*, 26 projected:ProjectedVolumeSource*, 28 csi:CSIVolumeSource*, 30 image:ImageVolumeSource*',
  HostPathVolumeSource: '1 path, 2 type*',
  EmptyDirVolumeSource: '1 medium, 2 sizeLimit:quantity',
  SecretVolumeSource: '1 secretName, 2 items:[]KeyToPath, 3 defaultMode:int32*, 4 optional:bool*',
  ConfigMapVolumeSource: '1 ...:LocalObjectReference, 2 items:[]KeyToPath, 3 defaultMode:int32*, 4 optional:bool*',
  KeyToPath: '1 key, 2 path, 3 mode:int32*',
  NFSVolumeSource: '1 server, 2 path, 3 readOnly:bool',
  PersistentVolumeClaimVolumeSource: '1 claimName, 2 readOnly:bool',
  DownwardAPIVolumeSource: '1 items:[]DownwardAPIVolumeFile, 2 defaultMode:int32*',
  DownwardAPIVolumeFile: '1 path, 2 fieldRef:ObjectFieldSelector, 3 resourceFieldRef:ResourceFieldSelector, 4 mode:int32*',
  ProjectedVolumeSource: '1 sources:[]VolumeProjection, 2 defaultMode:int32*',
  VolumeProjection: '1 secret:SecretProjection*, 2 downwardAPI:DownwardAPIProjection*, 3 configMap:ConfigMapProjection*, 4 serviceAccountToken:ServiceAccountTokenProjection*',
  SecretProjection: '1 ...:LocalObjectReference, 2 items:[]KeyToPath, 4 optional:bool*',
  ConfigMapProjection: '1 ...:LocalObjectReference, 2 items:[]KeyToPath, 4 optional:bool*',
  DownwardAPIProjection: '1 items:[]DownwardAPIVolumeFile',
  ServiceAccountTokenProjection: '1 audience, 2 expirationSeconds:int64*, 3 path',
  CSIVolumeSource: '1 driver, 2 readOnly:bool*, 3 fsType*, 4 volumeAttributes:map, 5 nodePublishSecretRef:LocalObjectReference',
  ImageVolumeSource: '1 reference, 2 pullPolicy',
  // apps
  Deployment: '1 metadata:ObjectMeta, 2 spec:DeploymentSpec',
  DeploymentSpec: '1 replicas:int32*, 2 selector:LabelSelector, 3 template:PodTemplateSpec, 4 strategy:DeploymentStrategy, 5 minReadySeconds:int32, 6 revisionHistoryLimit:int32*, 7 paused:bool, 9 progressDeadlineSeconds:int32*',
  DeploymentStrategy: '1 type, 2 rollingUpdate:RollingUpdateDeployment',
  RollingUpdateDeployment: '1 maxUnavailable:intstr, 2 maxSurge:intstr',
  ReplicaSet: '1 metadata:ObjectMeta, 2 spec:ReplicaSetSpec',
  ReplicaSetSpec: '1 replicas:int32*, 4 minReadySeconds:int32, 2 selector:LabelSelector, 3 template:PodTemplateSpec',
  StatefulSet: '1 metadata:ObjectMeta, 2 spec:StatefulSetSpec',
  StatefulSetSpec: '1 replicas:int32*, 2 selector:LabelSelector, 3 template:PodTemplateSpec, 4 volumeClaimTemplates:[]PersistentVolumeClaim, 5 serviceName, 6 podManagementPolicy, 7 updateStrategy:StatefulSetUpdateStrategy, 8 revisionHistoryLimit:int32*, 9 minReadySeconds:int32, 10 persistentVolumeClaimRetentionPolicy:StatefulSetPersistentVolumeClaimRetentionPolicy, 11 ordinals:StatefulSetOrdinals',
  StatefulSetUpdateStrategy: '1 type, 2 rollingUpdate:RollingUpdateStatefulSetStrategy',
  RollingUpdateStatefulSetStrategy: '1 partition:int32*, 2 maxUnavailable:intstr',
  StatefulSetPersistentVolumeClaimRetentionPolicy: '1 whenDeleted, 2 whenScaled',
  StatefulSetOrdinals: '1 start:int32',
  DaemonSet: '1 metadata:ObjectMeta, 2 spec:DaemonSetSpec',
  DaemonSetSpec: '1 selector:LabelSelector, 2 template:PodTemplateSpec, 3 updateStrategy:DaemonSetUpdateStrategy, 4 minReadySeconds:int32, 6 revisionHistoryLimit:int32*',
  DaemonSetUpdateStrategy: '1 type, 2 rollingUpdate:RollingUpdateDaemonSet',
  RollingUpdateDaemonSet: '1 maxUnavailable:intstr, 2 maxSurge:intstr',
  // batch
  Job: '1 metadata:ObjectMeta, 2 spec:JobSpec',
  JobSpec: '1 parallelism:int32*, 2 completions:int32*, 3 activeDeadlineSeconds:int64*, 7 backoffLimit:int32*, 12 backoffLimitPerIndex:int32*, 13 maxFailedIndexes:int32*, 4 selector:LabelSelector, 5 manualSelector:bool*, 6 template:PodTemplateSpec, 8 ttlSecondsAfterFinished:int32*, 9 completionMode*, 10 suspend:bool*, 14 podReplacementPolicy*, 15 managedBy*',
  CronJob: '1 metadata:ObjectMeta, 2 spec:CronJobSpec',
  CronJobSpec: '1 schedule, 8 timeZone*, 2 startingDeadlineSeconds:int64*, 3 concurrencyPolicy, 4 suspend:bool*, 5 jobTemplate:JobTemplateSpec, 6 successfulJobsHistoryLimit:int32*, 7 failedJobsHistoryLimit:int32*',
  JobTemplateSpec: '1 metadata:ObjectMeta, 2 spec:JobSpec',
  // autoscaling (v1: what `kubectl autoscale` sends)
  HorizontalPodAutoscaler: '1 metadata:ObjectMeta, 2 spec:HorizontalPodAutoscalerSpec',
  HorizontalPodAutoscalerSpec: '1 scaleTargetRef:CrossVersionObjectReference, 2 minReplicas:int32*, 3 maxReplicas:int32, 4 targetCPUUtilizationPercentage:int32*',
  CrossVersionObjectReference: '1 kind, 2 name, 3 apiVersion',
  // rbac
  Role: '1 metadata:ObjectMeta, 2 rules:[]PolicyRule',
  ClusterRole: '1 metadata:ObjectMeta, 2 rules:[]PolicyRule, 3 aggregationRule:AggregationRule',
  PolicyRule: '1 verbs:[]string, 2 apiGroups:[]string, 3 resources:[]string, 4 resourceNames:[]string, 5 nonResourceURLs:[]string',
  AggregationRule: '1 clusterRoleSelectors:[]LabelSelector',
  RoleBinding: '1 metadata:ObjectMeta, 2 subjects:[]Subject, 3 roleRef:RoleRef',
  Subject: '1 kind, 2 apiGroup, 3 name, 4 namespace',
  RoleRef: '1 apiGroup, 2 kind, 3 name',
  // policy, scheduling, networking
  PodDisruptionBudget: '1 metadata:ObjectMeta, 2 spec:PodDisruptionBudgetSpec',
  PodDisruptionBudgetSpec: '1 minAvailable:intstr, 2 selector:LabelSelector*, 3 maxUnavailable:intstr, 4 unhealthyPodEvictionPolicy*',
  PriorityClass: '1 metadata:ObjectMeta, 2 value:int32*, 3 globalDefault:bool, 4 description, 5 preemptionPolicy*',
  Ingress: '1 metadata:ObjectMeta, 2 spec:IngressSpec',
  IngressSpec: '4 ingressClassName*, 1 defaultBackend:IngressBackend, 2 tls:[]IngressTLS, 3 rules:[]IngressRule',
  IngressBackend: '4 service:IngressServiceBackend, 3 resource:TypedLocalObjectReference',
  IngressServiceBackend: '1 name, 2 port:ServiceBackendPort',
  ServiceBackendPort: '1 name, 2 number:int32',
  IngressTLS: '1 hosts:[]string, 2 secretName',
  IngressRule: '1 host, 2 ...:IngressRuleValue',
  IngressRuleValue: '1 http:HTTPIngressRuleValue',
  HTTPIngressRuleValue: '1 paths:[]HTTPIngressPath',
  HTTPIngressPath: '1 path, 3 pathType*, 2 backend:IngressBackend',
  // authentication, authorization
  TokenRequest: '1 metadata:ObjectMeta, 2 spec:TokenRequestSpec',
  TokenRequestSpec: '1 audiences:[]string, 4 expirationSeconds:int64*, 3 boundObjectRef:BoundObjectReference',
  BoundObjectReference: '1 kind, 2 apiVersion, 3 name, 4 uid',
  SelfSubjectReview: '1 metadata:ObjectMeta',
  SelfSubjectAccessReview: '1 metadata:ObjectMeta, 2 spec:SelfSubjectAccessReviewSpec',
  SelfSubjectAccessReviewSpec: '1 resourceAttributes:ResourceAttributes, 2 nonResourceAttributes:NonResourceAttributes',
  ResourceAttributes: '1 namespace, 2 verb, 3 group, 4 version, 5 resource, 6 subresource, 7 name, 8 fieldSelector:FieldSelectorAttributes, 9 labelSelector:LabelSelectorAttributes',
  FieldSelectorAttributes: '1 rawSelector, 2 requirements:[]LabelSelectorRequirement',
  LabelSelectorAttributes: '1 rawSelector, 2 requirements:[]LabelSelectorRequirement',
  NonResourceAttributes: '1 path, 2 verb',
  SelfSubjectRulesReview: '1 metadata:ObjectMeta, 2 spec:SelfSubjectRulesReviewSpec',
  SelfSubjectRulesReviewSpec: '1 namespace',
};

export const schemas: Record<string, MessageDef> = Object.fromEntries(
  Object.entries(specs).map(([name, spec]) => [name, message(spec)]),
);
for (const [name, def] of Object.entries(schemas)) {
  for (const f of Object.values(def)) {
    if (f.msg && !schemas[f.msg]) throw new Error(`protobuf schema ${name}.${f.name}: unknown message ${f.msg}`);
  }
}

/** The top-level kinds accepted, by `apiVersion kind`; the value is the message name. */
const kinds: Record<string, string> = {};
for (const [apiVersion, list] of Object.entries({
  v1: ['Namespace', 'ConfigMap', 'Secret', 'ServiceAccount', 'Service', 'Pod', 'ResourceQuota', 'PersistentVolumeClaim'],
  'apps/v1': ['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet'],
  'batch/v1': ['Job', 'CronJob'],
  'autoscaling/v1': ['HorizontalPodAutoscaler'],
  'rbac.authorization.k8s.io/v1': ['Role', 'ClusterRole', 'RoleBinding', 'ClusterRoleBinding'],
  'policy/v1': ['PodDisruptionBudget'],
  'scheduling.k8s.io/v1': ['PriorityClass'],
  'networking.k8s.io/v1': ['Ingress'],
  'authentication.k8s.io/v1': ['TokenRequest', 'SelfSubjectReview'],
  'authorization.k8s.io/v1': ['SelfSubjectAccessReview', 'SelfSubjectRulesReview'],
})) {
  for (const k of list) kinds[`${apiVersion} ${k}`] = k === 'ClusterRoleBinding' ? 'RoleBinding' : k;
}

/** Whether a body for this apiVersion/kind can be decoded. */
export function protobufKindSupported(apiVersion: string, kind: string): boolean {
  return Object.hasOwn(kinds, `${apiVersion} ${kind}`);
}

// ---------------------------------------------------------------------------------------------
// Decoding

function wireFor(f: FieldDef): number {
  switch (f.type) {
    case 'int32': case 'int64': case 'bool': return WIRE_VARINT;
    case 'double': return WIRE_FIXED64;
    default: return WIRE_LEN;
  }
}

function isEmptyObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
}

function utf8(b: Buffer): string {
  return b.toString('utf8');
}

function scalarFromVarint(f: FieldDef, v: bigint): number | boolean {
  if (f.type === 'bool') return v !== 0n;
  if (f.type === 'int32') return Number(BigInt.asIntN(32, v));
  return Number(BigInt.asIntN(64, v));
}

function decodeTime(r: ProtoReader): string | null {
  let seconds = 0n;
  let nanos = 0;
  while (!r.done()) {
    const { field, wire } = r.tag();
    if (field === 1 && wire === WIRE_VARINT) seconds = BigInt.asIntN(64, r.varint());
    else if (field === 2 && wire === WIRE_VARINT) nanos = Number(BigInt.asIntN(32, r.varint()));
    else r.skip(wire);
  }
  if (seconds === 0n && nanos === 0) return null;
  const ms = Number(seconds) * 1000;
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) throw new Truncated('time out of range');
  // RFC3339 with seconds, as metav1.Time marshals (sub-second part dropped)
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function decodeIntOrString(r: ProtoReader): number | string {
  let type = 0n;
  let intVal = 0;
  let strVal = '';
  while (!r.done()) {
    const { field, wire } = r.tag();
    if (field === 1 && wire === WIRE_VARINT) type = r.varint();
    else if (field === 2 && wire === WIRE_VARINT) intVal = Number(BigInt.asIntN(32, r.varint()));
    else if (field === 3 && wire === WIRE_LEN) strVal = utf8(r.bytes());
    else r.skip(wire);
  }
  return type === 1n ? strVal : intVal;
}

/** Quantity {1:string}; RawExtension / FieldsV1 {1:raw}. */
function decodeField1Bytes(r: ProtoReader): Buffer {
  let out: Buffer = Buffer.alloc(0);
  while (!r.done()) {
    const { field, wire } = r.tag();
    if (field === 1 && wire === WIRE_LEN) out = r.bytes();
    else r.skip(wire);
  }
  return out;
}

function decodeRawJSON(r: ProtoReader): unknown {
  const raw = decodeField1Bytes(r);
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(utf8(raw));
  } catch {
    throw errors.badRequest('protobuf body: embedded raw JSON is not valid JSON');
  }
}

function decodeMapValue(r: ProtoReader, value: FieldDef['value']): [string, unknown] {
  let key = '';
  let val: unknown = value === 'quantity' ? '0' : '';
  while (!r.done()) {
    const { field, wire } = r.tag();
    if (field === 1 && wire === WIRE_LEN) key = utf8(r.bytes());
    else if (field === 2 && wire === WIRE_LEN) {
      if (value === 'bytes') val = r.bytes().toString('base64');
      else if (value === 'quantity') val = utf8(decodeField1Bytes(r.sub()));
      else val = utf8(r.bytes());
    } else r.skip(wire);
  }
  return [key, val];
}

/** Decodes a length-delimited or scalar value of a known field; undefined means "omit". */
function decodeValue(r: ProtoReader, f: FieldDef, wire: number): unknown {
  switch (f.type) {
    case 'int32': case 'int64': case 'bool':
      return scalarFromVarint(f, r.varint());
    case 'double': return r.fixed64().readDoubleLE(0);
    case 'string': return utf8(r.bytes());
    case 'bytes': return r.bytes().toString('base64');
    case 'time': return decodeTime(r.sub());
    case 'intstr': return decodeIntOrString(r.sub());
    case 'quantity': return utf8(decodeField1Bytes(r.sub()));
    case 'rawjson': return decodeRawJSON(r.sub());
    case 'message': return decodeMessage(r.sub(), schemas[f.msg!]);
    default: throw new Truncated(`unexpected wire type ${wire} for ${f.name}`);
  }
}

function isZero(v: unknown): boolean {
  return v === undefined || v === null || v === '' || v === 0 || v === false || isEmptyObject(v);
}

/** Decodes one message into its JSON form, dropping zero values of non-pointer fields. */
function decodeMessage(r: ProtoReader, def: MessageDef): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  while (!r.done()) {
    const { field, wire } = r.tag();
    const f = def[field];
    if (!f) { r.skip(wire); continue; }
    if (f.type === 'map') {
      if (wire !== WIRE_LEN) throw new Truncated(`wrong wire type for map ${f.name}`);
      const [k, v] = decodeMapValue(r.sub(), f.value);
      const m = (out[f.name] ??= {}) as Record<string, unknown>;
      // defineProperty: a key named "__proto__" stays an ordinary key
      Object.defineProperty(m, k, { value: v, enumerable: true, writable: true, configurable: true });
      continue;
    }
    const want = wireFor(f);
    if (f.repeated) {
      const list = (out[f.name] ??= []) as unknown[];
      if (wire === WIRE_LEN && want !== WIRE_LEN) {
        // packed repeated scalars
        const p = r.sub();
        while (!p.done()) list.push(decodeValue(p, f, want));
      } else if (wire === want) {
        const v = decodeValue(r, f, wire);
        list.push(v === undefined || v === null ? (f.type === 'message' ? {} : v) : v);
      } else throw new Truncated(`wrong wire type for ${f.name}`);
      continue;
    }
    if (wire !== want) throw new Truncated(`wrong wire type for ${f.name}`);
    const v = decodeValue(r, f, wire);
    if (f.inline) {
      if (v && typeof v === 'object') Object.assign(out, v);
      continue;
    }
    // an IntOrString that was sent at all is meaningful, even 0 (e.g. a PDB's minAvailable: 0)
    const keep = f.ptr || f.type === 'intstr' ? v !== undefined && v !== null : !isZero(v);
    if (keep) out[f.name] = v;
    else delete out[f.name];
  }
  return out;
}

/** Reads runtime.Unknown after the magic. */
function readUnknown(body: Buffer): { apiVersion: string; kind: string; raw: ProtoReader } {
  const r = new ProtoReader(body, 4);
  let apiVersion = '';
  let kind = '';
  let raw: ProtoReader | undefined;
  while (!r.done()) {
    const { field, wire } = r.tag();
    if (field === 1 && wire === WIRE_LEN) {
      const t = r.sub();
      while (!t.done()) {
        const tg = t.tag();
        if (tg.field === 1 && tg.wire === WIRE_LEN) apiVersion = utf8(t.bytes());
        else if (tg.field === 2 && tg.wire === WIRE_LEN) kind = utf8(t.bytes());
        else t.skip(tg.wire);
      }
    } else if (field === 2 && wire === WIRE_LEN) raw = r.sub();
    else if ((field === 3 || field === 4) && wire === WIRE_LEN) {
      const v = r.bytes();
      if (field === 3 && v.length > 0) throw errors.badRequest(`protobuf body: unsupported contentEncoding ${JSON.stringify(utf8(v))}`);
    } else r.skip(wire);
  }
  return { apiVersion, kind, raw: raw ?? new ProtoReader(Buffer.alloc(0)) };
}

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** Decodes a `application/vnd.kubernetes.protobuf` request body into the object's JSON form.
 *  Throws a 400 BadRequest StatusError for anything that is not a well-formed body of a known kind. */
export function decodeK8sProtobuf(body: Buffer): KObject {
  if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) {
    throw errors.badRequest('the protobuf body does not start with the Kubernetes magic prefix "k8s\\x00"');
  }
  try {
    const { apiVersion, kind, raw } = readUnknown(body);
    if (!apiVersion || !kind) throw errors.badRequest('protobuf body: the envelope has no apiVersion/kind');
    const msg = Object.hasOwn(kinds, `${apiVersion} ${kind}`) ? kinds[`${apiVersion} ${kind}`] : undefined;
    if (!msg) throw errors.badRequest(`protobuf body: decoding ${apiVersion}, Kind=${kind} from protobuf is not supported; send JSON`);
    const decoded = decodeMessage(raw, schemas[msg]);
    delete decoded.status;
    return { apiVersion, kind, ...decoded } as KObject;
  } catch (e) {
    if (e instanceof StatusError) throw e;
    const detail = e instanceof Error ? e.message : String(e);
    throw errors.badRequest(`unable to decode protobuf body: ${detail}`);
  }
}
