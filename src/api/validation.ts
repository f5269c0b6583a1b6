// Upstream's most common validation checks per kind (pkg/apis/*/validation), with upstream's field
// paths and wording. Each validator returns every problem found; an empty list means valid.
import { selectorFromLabelSelector, type MetaLabelSelector } from '../machinery/labels.js';
import { quantityFormatError, tryParseQuantity, type Quantity } from '../machinery/quantity.js';
import { field, type FieldError } from '../machinery/status.js';
import {
  isConfigMapKey, isDNS1123Label, isDNS1123Subdomain, isEnvVarName, isQualifiedName, isValidPortName,
  isValidPortNum, maxLenError, nameRuleFor, validateAnnotations, validateLabels, validateObjectMeta,
} from './names.js';
import type { KObject } from './types.js';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function asObj(v: unknown): Obj {
  return isObj(v) ? v : {};
}
function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

const negativeMsg = 'must be greater than or equal to 0';
const immutableMsg = 'field is immutable';

/** field.Invalid whose value is already printed (Go's %#v of a struct or map). */
function invalidRaw(f: string, printed: string, detail: string): FieldError {
  return { type: 'FieldValueInvalid', field: f, message: `Invalid value: ${printed}: ${detail}` };
}
const notFound = field.notFound;
function nonNegative(v: unknown, path: string): FieldError[] {
  return typeof v === 'number' && v < 0 ? [field.invalid(path, v, negativeMsg)] : [];
}

// ---- Go %#v printing of the few values upstream puts in messages --------------------------------

const goStr = (s: string): string => JSON.stringify(s);
export function goStringMap(m: unknown): string {
  if (!isObj(m)) return 'map[string]string(nil)';
  const keys = Object.keys(m).sort();
  return `map[string]string{${keys.map((k) => `${goStr(k)}:${goStr(String(m[k]))}`).join(', ')}}`;
}
function goStringSlice(v: unknown): string {
  if (!Array.isArray(v)) return '[]string(nil)';
  return `[]string{${v.map((x) => goStr(String(x))).join(', ')}}`;
}
export function goLabelSelector(sel: unknown): string {
  const s = asObj(sel);
  const exprs = Array.isArray(s.matchExpressions)
    ? `[]v1.LabelSelectorRequirement{${s.matchExpressions.map((e) => {
      const r = asObj(e);
      return `v1.LabelSelectorRequirement{Key:${goStr(str(r.key))}, Operator:${goStr(str(r.operator))}, Values:${goStringSlice(r.values)}}`;
    }).join(', ')}}`
    : '[]v1.LabelSelectorRequirement(nil)';
  return `v1.LabelSelector{MatchLabels:${goStringMap(s.matchLabels)}, MatchExpressions:${exprs}}`;
}
function goIntOrString(v: unknown): string {
  return typeof v === 'string'
    ? `intstr.IntOrString{Type:1, IntVal:0, StrVal:${goStr(v)}}`
    : `intstr.IntOrString{Type:0, IntVal:${typeof v === 'number' ? v : 0}, StrVal:""}`;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => deepEqual(x, b[i]));
  }
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    if (ka.length !== kb.length) return false;
    return ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

// ---- pod spec -----------------------------------------------------------------------------------

const standardContainerResources = new Set(['cpu', 'memory', 'ephemeral-storage']);
const overcommitAllowed = (name: string): boolean => standardContainerResources.has(name);
const supportedProtocols = ['SCTP', 'TCP', 'UDP'];

function validateResourceName(name: string, path: string): FieldError[] {
  if (standardContainerResources.has(name) || name.startsWith('hugepages-')) return [];
  if (!name.includes('/')) return [field.invalid(path, name, 'must be a standard resource for containers')];
  return isQualifiedName(name).map((m) => field.invalid(path, name, m));
}

function validateResources(res: unknown, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const r = asObj(res);
  const limits = asObj(r.limits);
  const requests = asObj(r.requests);
  const parsedLimits = new Map<string, Quantity>();
  const check = (bag: Obj, bagPath: string, into?: Map<string, Quantity>): Map<string, Quantity> => {
    const out = new Map<string, Quantity>();
    for (const [name, raw] of Object.entries(bag)) {
      const p = `${bagPath}[${name}]`;
      errs.push(...validateResourceName(name, p));
      const q = tryParseQuantity(String(raw));
      if (!q) { errs.push(field.invalid(p, String(raw), quantityFormatError)); continue; }
      if (q.sign() < 0) errs.push(field.invalid(p, q.toString(), negativeMsg));
      else if (!overcommitAllowed(name) && q.nanos % 1_000_000_000n !== 0n) errs.push(field.invalid(p, q.toString(), 'must be an integer'));
      (into ?? out).set(name, q);
    }
    return out;
  };
  check(limits, `${path}.limits`, parsedLimits);
  const reqPath = `${path}.requests`;
  const parsedRequests = check(requests, reqPath);
  for (const [name, q] of parsedRequests) {
    const lim = parsedLimits.get(name);
    if (lim) {
      if (q.cmp(lim) !== 0 && !overcommitAllowed(name)) errs.push(field.invalid(reqPath, q.toString(), `must be equal to ${name} limit of ${lim.toString()}`));
      else if (q.cmp(lim) > 0) errs.push(field.invalid(reqPath, q.toString(), `must be less than or equal to ${name} limit of ${lim.toString()}`));
    } else if (!overcommitAllowed(name)) {
      errs.push(field.required(`${path}.limits`, 'Limit must be set for non overcommitable resources'));
    }
  }
  return errs;
}

function validateProbe(probe: unknown, path: string, mustSucceedOnce: boolean): FieldError[] {
  if (!isObj(probe)) return [];
  const errs: FieldError[] = [];
  const handlers = ['exec', 'httpGet', 'tcpSocket', 'grpc'].filter((k) => probe[k] != null);
  if (handlers.length === 0) errs.push(field.required(path, 'must specify a handler type'));
  else if (handlers.length > 1) errs.push(field.forbidden(`${path}.${handlers[1]}`, 'may not specify more than 1 handler type'));
  for (const k of ['initialDelaySeconds', 'timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold']) {
    errs.push(...nonNegative(probe[k], `${path}.${k}`));
  }
  if (mustSucceedOnce && typeof probe.successThreshold === 'number' && probe.successThreshold !== 1) {
    errs.push(field.invalid(`${path}.successThreshold`, probe.successThreshold, 'must be 1'));
  }
  if (isObj(probe.httpGet)) errs.push(...validatePortNumOrName(probe.httpGet.port, `${path}.httpGet.port`));
  if (isObj(probe.tcpSocket)) errs.push(...validatePortNumOrName(probe.tcpSocket.port, `${path}.tcpSocket.port`));
  return errs;
}

function validatePortNumOrName(port: unknown, path: string): FieldError[] {
  if (typeof port === 'number') return isValidPortNum(port).map((m) => field.invalid(path, port, m));
  if (typeof port === 'string') {
    if (/^[0-9]+$/.test(port)) return isValidPortNum(Number(port)).map((m) => field.invalid(path, port, m));
    return isValidPortName(port).map((m) => field.invalid(path, port, m));
  }
  return [field.required(path)];
}

function validateEnv(env: unknown, path: string): FieldError[] {
  const errs: FieldError[] = [];
  arr(env).forEach((e, i) => {
    const ev = asObj(e);
    const p = `${path}[${i}]`;
    const name = str(ev.name);
    if (!name) errs.push(field.required(`${p}.name`));
    else for (const m of isEnvVarName(name)) errs.push(field.invalid(`${p}.name`, name, m));
    if (isObj(ev.valueFrom)) {
      const n = ['fieldRef', 'resourceFieldRef', 'configMapKeyRef', 'secretKeyRef', 'fileKeyRef'].filter((k) => (ev.valueFrom as Obj)[k] != null).length;
      if (n === 0) errs.push(field.invalid(`${p}.valueFrom`, '', 'must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`'));
      else if (n > 1) errs.push(field.invalid(`${p}.valueFrom`, '', 'may not have more than one field specified at a time'));
      if (str(ev.value) !== '') errs.push(field.invalid(`${p}.valueFrom`, '', 'may not be specified when `value` is not empty'));
    }
  });
  return errs;
}

interface ContainerContext {
  volumes: Set<string>;
  names: Set<string>;
  hostNetwork: boolean;
  init: boolean;
}

function validateContainer(c: Obj, p: string, ctx: ContainerContext): FieldError[] {
  const errs: FieldError[] = [];
  const name = str(c.name);
  if (!name) errs.push(field.required(`${p}.name`));
  else {
    for (const m of isDNS1123Label(name)) errs.push(field.invalid(`${p}.name`, name, m));
    if (ctx.names.has(name)) errs.push(field.duplicate(`${p}.name`, name));
    else ctx.names.add(name);
  }
  const image = str(c.image);
  if (!image) errs.push(field.required(`${p}.image`));
  else if (image.trim() !== image) errs.push(field.invalid(`${p}.image`, image, 'must not have leading or trailing whitespace'));
  if (!ctx.init) {
    errs.push(...validateProbe(c.livenessProbe, `${p}.livenessProbe`, true));
    errs.push(...validateProbe(c.readinessProbe, `${p}.readinessProbe`, false));
    errs.push(...validateProbe(c.startupProbe, `${p}.startupProbe`, true));
  }
  // ports
  const portNames = new Set<string>();
  arr(c.ports).forEach((raw, i) => {
    const port = asObj(raw);
    const pp = `${p}.ports[${i}]`;
    const pname = str(port.name);
    if (pname) {
      for (const m of isValidPortName(pname)) errs.push(field.invalid(`${pp}.name`, pname, m));
      if (portNames.has(pname)) errs.push(field.duplicate(`${pp}.name`, pname));
      else portNames.add(pname);
    }
    if (port.containerPort == null || port.containerPort === 0) errs.push(field.required(`${pp}.containerPort`));
    else for (const m of isValidPortNum(Number(port.containerPort))) errs.push(field.invalid(`${pp}.containerPort`, port.containerPort, m));
    if (port.hostPort != null && port.hostPort !== 0) {
      for (const m of isValidPortNum(Number(port.hostPort))) errs.push(field.invalid(`${pp}.hostPort`, port.hostPort, m));
      if (ctx.hostNetwork && port.hostPort !== port.containerPort) errs.push(field.invalid(`${pp}.hostPort`, port.hostPort, 'must match `containerPort` when `hostNetwork` is true'));
    }
    const proto = str(port.protocol);
    if (!proto) errs.push(field.required(`${pp}.protocol`));
    else if (!supportedProtocols.includes(proto)) errs.push(field.notSupported(`${pp}.protocol`, proto, supportedProtocols));
  });
  errs.push(...validateEnv(c.env, `${p}.env`));
  // volume mounts
  const mountPaths = new Set<string>();
  arr(c.volumeMounts).forEach((raw, i) => {
    const vm = asObj(raw);
    const mp = `${p}.volumeMounts[${i}]`;
    const vname = str(vm.name);
    if (!vname) errs.push(field.required(`${mp}.name`));
    if (!ctx.volumes.has(vname)) errs.push(notFound(`${mp}.name`, vname));
    const mountPath = str(vm.mountPath);
    if (!mountPath) errs.push(field.required(`${mp}.mountPath`));
    else if (mountPaths.has(mountPath)) errs.push(field.invalid(`${mp}.mountPath`, mountPath, 'must be unique'));
    else mountPaths.add(mountPath);
  });
  errs.push(...validateResources(c.resources, `${p}.resources`));
  return errs;
}

const volumeSourceKeys = [
  'hostPath', 'emptyDir', 'gcePersistentDisk', 'awsElasticBlockStore', 'gitRepo', 'secret', 'nfs', 'iscsi',
  'glusterfs', 'persistentVolumeClaim', 'rbd', 'flexVolume', 'cinder', 'cephfs', 'flocker', 'downwardAPI', 'fc',
  'azureFile', 'configMap', 'vsphereVolume', 'quobyte', 'azureDisk', 'photonPersistentDisk', 'projected',
  'portworxVolume', 'scaleIO', 'storageos', 'csi', 'ephemeral', 'image',
];

function validateVolumes(vols: unknown, path: string, names: Set<string>): FieldError[] {
  const errs: FieldError[] = [];
  arr(vols).forEach((raw, i) => {
    const v = asObj(raw);
    const p = `${path}[${i}]`;
    const name = str(v.name);
    if (!name) errs.push(field.required(`${p}.name`));
    else {
      for (const m of isDNS1123Label(name)) errs.push(field.invalid(`${p}.name`, name, m));
      if (names.has(name)) errs.push(field.duplicate(`${p}.name`, name));
      else names.add(name);
    }
    const sources = volumeSourceKeys.filter((k) => v[k] != null);
    if (sources.length === 0) errs.push(field.required(p, 'must specify a volume type'));
    else if (sources.length > 1) errs.push(field.forbidden(`${p}.${sources[1]}`, 'may not specify more than 1 volume type'));
    if (isObj(v.persistentVolumeClaim) && !str(v.persistentVolumeClaim.claimName)) errs.push(field.required(`${p}.persistentVolumeClaim.claimName`));
    if (isObj(v.hostPath) && !str(v.hostPath.path)) errs.push(field.required(`${p}.hostPath.path`));
  });
  return errs;
}

const restartPolicies = ['Always', 'OnFailure', 'Never'];
const dnsPolicies = ['ClusterFirstWithHostNet', 'ClusterFirst', 'Default', 'None'];

/** ValidatePodSpec for a pod spec found at `path` (`spec`, `spec.template.spec`, ...). */
export function validatePodSpec(specIn: unknown, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const s = asObj(specIn);
  const volumes = new Set<string>();
  errs.push(...validateVolumes(s.volumes, `${path}.volumes`, volumes));
  const ctx: ContainerContext = { volumes, names: new Set(), hostNetwork: s.hostNetwork === true, init: false };
  const containers = arr(s.containers);
  if (containers.length === 0) errs.push(field.required(`${path}.containers`));
  containers.forEach((c, i) => errs.push(...validateContainer(asObj(c), `${path}.containers[${i}]`, ctx)));
  arr(s.initContainers).forEach((c, i) => errs.push(...validateContainer(asObj(c), `${path}.initContainers[${i}]`, { ...ctx, init: true })));
  const rp = str(s.restartPolicy);
  if (!rp) errs.push(field.required(`${path}.restartPolicy`));
  else if (!restartPolicies.includes(rp)) errs.push(field.notSupported(`${path}.restartPolicy`, rp, restartPolicies));
  const dp = str(s.dnsPolicy);
  if (!dp) errs.push(field.required(`${path}.dnsPolicy`));
  else if (!dnsPolicies.includes(dp)) errs.push(field.notSupported(`${path}.dnsPolicy`, dp, dnsPolicies));
  else if (dp === 'None' && !isObj(s.dnsConfig)) errs.push(field.required(`${path}.dnsConfig`, 'must provide `dnsConfig` when `dnsPolicy` is None'));
  errs.push(...validateLabels(s.nodeSelector, `${path}.nodeSelector`));
  for (const k of ['serviceAccountName', 'nodeName']) {
    const v = str(s[k]);
    if (v) for (const m of isDNS1123Subdomain(v)) errs.push(field.invalid(`${path}.${k}`, v, m));
  }
  for (const k of ['hostname', 'subdomain']) {
    const v = str(s[k]);
    if (v) for (const m of isDNS1123Label(v)) errs.push(field.invalid(`${path}.${k}`, v, m));
  }
  if (typeof s.activeDeadlineSeconds === 'number' && (s.activeDeadlineSeconds < 1 || s.activeDeadlineSeconds > 2147483647)) {
    errs.push(field.invalid(`${path}.activeDeadlineSeconds`, s.activeDeadlineSeconds, 'must be between 1 and 2147483647, inclusive'));
  }
  errs.push(...nonNegative(s.terminationGracePeriodSeconds, `${path}.terminationGracePeriodSeconds`));
  return errs;
}

/** ValidatePodTemplateSpec: template metadata labels/annotations and the pod spec. */
export function validatePodTemplateSpec(template: unknown, path: string): FieldError[] {
  if (!isObj(template)) return [field.required(path)];
  const meta = asObj(template.metadata);
  return [
    ...validateLabels(meta.labels, `${path}.metadata.labels`),
    ...validateAnnotations(meta.annotations, `${path}.metadata.annotations`),
    ...validatePodSpec(template.spec, `${path}.spec`),
  ];
}

const podUpdateMsg = 'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';

function validatePodUpdate(obj: KObject, old: KObject): FieldError[] {
  const errs: FieldError[] = [];
  const ns = asObj(obj.spec);
  const os = asObj(old.spec);
  // activeDeadlineSeconds may be set, or lowered, never raised or removed
  const nad = ns.activeDeadlineSeconds;
  const oad = os.activeDeadlineSeconds;
  if (typeof nad === 'number') {
    if (nad < 0 || nad > 2147483647) return [field.invalid('spec.activeDeadlineSeconds', nad, 'must be between 0 and 2147483647, inclusive')];
    if (typeof oad === 'number' && oad < nad) return [field.invalid('spec.activeDeadlineSeconds', nad, 'must be less than or equal to previous value')];
  } else if (typeof oad === 'number') {
    errs.push({ type: 'FieldValueInvalid', field: 'spec.activeDeadlineSeconds', message: 'Invalid value: "null": must not update from a positive integer to nil value' });
  }
  // tolerations: only additions (tolerationSeconds may change)
  const sansSeconds = (t: unknown): Obj => { const { tolerationSeconds: _, ...rest } = asObj(t); return rest; };
  const newTols = arr(ns.tolerations);
  arr(os.tolerations).forEach((t, i) => {
    if (!newTols.some((n) => deepEqual(sansSeconds(n), sansSeconds(t)))) {
      errs.push(field.forbidden(`spec.tolerations[${i}]`, 'existing toleration can not be modified except its tolerationSeconds'));
    }
  });
  // everything else: compare with the mutable fields copied over from the new spec
  const munged: Obj = structuredClone(os);
  const copyImages = (key: string): void => {
    const nc = arr(ns[key]);
    const oc = arr(munged[key]);
    if (nc.length !== oc.length) return;
    oc.forEach((c, i) => { if (isObj(c)) c.image = asObj(nc[i]).image; });
  };
  copyImages('containers');
  copyImages('initContainers');
  munged.activeDeadlineSeconds = ns.activeDeadlineSeconds;
  munged.tolerations = ns.tolerations;
  munged.ephemeralContainers = ns.ephemeralContainers;
  if (typeof os.terminationGracePeriodSeconds === 'number' && os.terminationGracePeriodSeconds < 0 && ns.terminationGracePeriodSeconds === 1) {
    munged.terminationGracePeriodSeconds = 1;
  }
  // scheduling gates may only be removed
  const oldGates = arr(os.schedulingGates).map((g) => str(asObj(g).name));
  const newGates = arr(ns.schedulingGates).map((g) => str(asObj(g).name));
  for (const g of newGates) {
    if (!oldGates.includes(g)) errs.push(field.forbidden('spec.schedulingGates', `only deletion is allowed, but found new scheduling gate '${g}'`));
  }
  munged.schedulingGates = ns.schedulingGates;
  if (!deepEqual(munged, ns)) errs.push(field.forbidden('spec', podUpdateMsg));
  return errs;
}

function validatePod(obj: KObject, old?: KObject): FieldError[] {
  const errs = [...meta(obj, 'Pod', true), ...validatePodSpec(obj.spec, 'spec')];
  if (old) errs.push(...validatePodUpdate(obj, old));
  return errs;
}

// ---- workloads ----------------------------------------------------------------------------------

function meta(obj: KObject, kind: string, namespaced: boolean): FieldError[] {
  return validateObjectMeta(obj.metadata, namespaced, nameRuleFor(kind));
}

/** The selector of a workload: required, non-empty, valid, and matching the template's labels. */
function validateSelectorAndTemplate(s: Obj, path: string, what: string, opts: { required: boolean; emptyMsg?: string }): FieldError[] {
  const errs: FieldError[] = [];
  const sel = s.selector;
  const tmplPath = `${path}.template`;
  if (sel == null) {
    if (opts.required) errs.push(field.required(`${path}.selector`));
  } else {
    const se = asObj(sel);
    errs.push(...validateLabels(se.matchLabels, `${path}.selector.matchLabels`));
    const count = Object.keys(asObj(se.matchLabels)).length + arr(se.matchExpressions).length;
    if (count === 0 && opts.emptyMsg) errs.push(invalidRaw(`${path}.selector`, goLabelSelector(sel), opts.emptyMsg));
  }
  if (sel != null) {
    let matches = true;
    try {
      const selector = selectorFromLabelSelector(sel as MetaLabelSelector);
      const labels = asObj(asObj(asObj(s.template).metadata).labels) as Record<string, string>;
      matches = selector.empty || selector.matches(labels);
    } catch {
      errs.push(invalidRaw(`${path}.selector`, goLabelSelector(sel), 'invalid label selector'));
    }
    if (!matches) {
      errs.push(invalidRaw(`${tmplPath}.metadata.labels`, goStringMap(asObj(s.template).metadata ? asObj(asObj(s.template).metadata).labels : undefined), '`selector` does not match template `labels`'));
    }
  }
  if (s.template == null) {
    errs.push(field.required(tmplPath));
    return errs;
  }
  errs.push(...validatePodTemplateSpec(s.template, tmplPath));
  const ts = asObj(asObj(s.template).spec);
  if (what) {
    const rp = str(ts.restartPolicy);
    if (rp && rp !== 'Always') errs.push(field.notSupported(`${tmplPath}.spec.restartPolicy`, rp, ['Always']));
    if (ts.activeDeadlineSeconds != null) errs.push(field.forbidden(`${tmplPath}.spec.activeDeadlineSeconds`, `activeDeadlineSeconds in ${what} is not Supported`));
  }
  return errs;
}

function validatePercentOrInt(v: unknown, path: string): FieldError[] {
  if (typeof v === 'string') {
    if (!/^[0-9]+%$/.test(v)) return [invalidRaw(path, goIntOrString(v), "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")];
    if (Number(v.slice(0, -1)) > 100) return [invalidRaw(path, goIntOrString(v), 'must not be greater than 100%')];
    return [];
  }
  return nonNegative(v, path);
}
const intOrPercentIsZero = (v: unknown): boolean => v === 0 || v === '0%' || v == null;

function selectorImmutable(obj: KObject, old: KObject | undefined): FieldError[] {
  if (!old) return [];
  const ns = asObj(obj.spec).selector;
  const os = asObj(old.spec).selector;
  return deepEqual(ns, os) ? [] : [invalidRaw('spec.selector', goLabelSelector(ns), immutableMsg)];
}

function validateDeployment(obj: KObject, old?: KObject): FieldError[] {
  const s = asObj(obj.spec);
  const errs = [...meta(obj, 'Deployment', true), ...nonNegative(s.replicas, 'spec.replicas')];
  errs.push(...validateSelectorAndTemplate(s, 'spec', 'ReplicaSet', { required: true, emptyMsg: 'empty selector is invalid for deployment' }));
  const st = asObj(s.strategy);
  const type = str(st.type);
  if (type === 'Recreate') {
    if (st.rollingUpdate != null) errs.push(field.forbidden('spec.strategy.rollingUpdate', "may not be specified when strategy `type` is 'Recreate'"));
  } else if (type === 'RollingUpdate') {
    const ru = asObj(st.rollingUpdate);
    errs.push(...validatePercentOrInt(ru.maxUnavailable, 'spec.strategy.rollingUpdate.maxUnavailable'));
    errs.push(...validatePercentOrInt(ru.maxSurge, 'spec.strategy.rollingUpdate.maxSurge'));
    if (intOrPercentIsZero(ru.maxUnavailable) && intOrPercentIsZero(ru.maxSurge)) {
      errs.push(invalidRaw('spec.strategy.rollingUpdate.maxUnavailable', goIntOrString(ru.maxUnavailable ?? 0), 'may not be 0 when `maxSurge` is 0'));
    }
  } else {
    errs.push(field.notSupported('spec.strategy.type', type, ['Recreate', 'RollingUpdate']));
  }
  errs.push(...nonNegative(s.minReadySeconds, 'spec.minReadySeconds'));
  errs.push(...nonNegative(s.revisionHistoryLimit, 'spec.revisionHistoryLimit'));
  if (typeof s.progressDeadlineSeconds === 'number') {
    errs.push(...nonNegative(s.progressDeadlineSeconds, 'spec.progressDeadlineSeconds'));
    if (s.progressDeadlineSeconds <= (typeof s.minReadySeconds === 'number' ? s.minReadySeconds : 0)) {
      errs.push(field.invalid('spec.progressDeadlineSeconds', s.progressDeadlineSeconds, 'must be greater than minReadySeconds'));
    }
  }
  errs.push(...selectorImmutable(obj, old));
  return errs;
}

function validateReplicaSet(obj: KObject, old?: KObject): FieldError[] {
  const s = asObj(obj.spec);
  const errs = [...meta(obj, 'ReplicaSet', true), ...nonNegative(s.replicas, 'spec.replicas'), ...nonNegative(s.minReadySeconds, 'spec.minReadySeconds')];
  errs.push(...validateSelectorAndTemplate(s, 'spec', 'ReplicaSet', { required: true, emptyMsg: 'empty selector is invalid for deployment' }));
  errs.push(...selectorImmutable(obj, old));
  return errs;
}

const stsMutable = ['replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy', 'minReadySeconds'];

function validateStatefulSet(obj: KObject, old?: KObject): FieldError[] {
  const s = asObj(obj.spec);
  const errs = [...meta(obj, 'StatefulSet', true)];
  const pmp = str(s.podManagementPolicy);
  if (pmp !== 'OrderedReady' && pmp !== 'Parallel') {
    errs.push(pmp ? field.invalid('spec.podManagementPolicy', pmp, "must be 'OrderedReady' or 'Parallel'") : field.required('spec.podManagementPolicy'));
  }
  const us = asObj(s.updateStrategy);
  const ut = str(us.type);
  if (!ut) errs.push(field.required('spec.updateStrategy'));
  else if (ut === 'RollingUpdate') errs.push(...nonNegative(asObj(us.rollingUpdate).partition, 'spec.updateStrategy.rollingUpdate.partition'));
  else if (ut === 'OnDelete') {
    if (us.rollingUpdate != null) errs.push(field.invalid('spec.updateStrategy.rollingUpdate', 'OnDelete', "only allowed for updateStrategy 'RollingUpdate'"));
  } else errs.push(field.invalid('spec.updateStrategy', ut, "must be 'RollingUpdate' or 'OnDelete'"));
  errs.push(...nonNegative(s.replicas, 'spec.replicas'), ...nonNegative(s.minReadySeconds, 'spec.minReadySeconds'));
  errs.push(...validateSelectorAndTemplate(s, 'spec', 'StatefulSet', { required: true, emptyMsg: 'empty selector is invalid for statefulset' }));
  if (old) {
    const strip = (o: KObject): Obj => { const c = { ...asObj(o.spec) }; for (const k of stsMutable) delete c[k]; return c; };
    if (!deepEqual(strip(obj), strip(old))) {
      errs.push(field.forbidden('spec', "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"));
    }
  }
  return errs;
}

function validateDaemonSet(obj: KObject, old?: KObject): FieldError[] {
  const s = asObj(obj.spec);
  const errs = [...meta(obj, 'DaemonSet', true)];
  errs.push(...validateSelectorAndTemplate(s, 'spec', 'DaemonSet', { required: true, emptyMsg: 'empty selector is invalid for daemonset' }));
  const us = asObj(s.updateStrategy);
  const ut = str(us.type);
  if (ut === 'RollingUpdate') {
    const ru = asObj(us.rollingUpdate);
    errs.push(...validatePercentOrInt(ru.maxUnavailable, 'spec.updateStrategy.rollingUpdate.maxUnavailable'));
    errs.push(...validatePercentOrInt(ru.maxSurge, 'spec.updateStrategy.rollingUpdate.maxSurge'));
    if (intOrPercentIsZero(ru.maxUnavailable) && intOrPercentIsZero(ru.maxSurge)) {
      errs.push(invalidRaw('spec.updateStrategy.rollingUpdate.maxUnavailable', goIntOrString(ru.maxUnavailable ?? 0), 'may not be 0 when `maxSurge` is 0'));
    }
  } else if (ut !== 'OnDelete') {
    errs.push(field.notSupported('spec.updateStrategy.type', ut, ['OnDelete', 'RollingUpdate']));
  }
  errs.push(...nonNegative(s.minReadySeconds, 'spec.minReadySeconds'), ...nonNegative(s.revisionHistoryLimit, 'spec.revisionHistoryLimit'));
  errs.push(...selectorImmutable(obj, old));
  return errs;
}

function validateReplicationController(obj: KObject): FieldError[] {
  const s = asObj(obj.spec);
  const errs = [...meta(obj, 'ReplicationController', true), ...nonNegative(s.replicas, 'spec.replicas'), ...nonNegative(s.minReadySeconds, 'spec.minReadySeconds')];
  const sel = asObj(s.selector);
  if (Object.keys(sel).length === 0) errs.push(field.required('spec.selector'));
  else errs.push(...validateLabels(sel, 'spec.selector'));
  const labelSelector = Object.keys(sel).length ? { matchLabels: sel } : undefined;
  errs.push(...validateSelectorAndTemplate({ ...s, selector: labelSelector }, 'spec', 'ReplicationController', { required: false }));
  return errs;
}

function validateJobSpec(s: Obj, path: string, inTemplate: boolean): FieldError[] {
  const errs: FieldError[] = [];
  for (const k of ['parallelism', 'completions', 'activeDeadlineSeconds', 'backoffLimit', 'ttlSecondsAfterFinished']) errs.push(...nonNegative(s[k], `${path}.${k}`));
  const cm = s.completionMode;
  if (cm != null && cm !== 'NonIndexed' && cm !== 'Indexed') errs.push(field.notSupported(`${path}.completionMode`, cm, ['NonIndexed', 'Indexed']));
  if (cm === 'Indexed' && s.completions == null) errs.push(field.required(`${path}.completions`, 'when completion mode is Indexed'));
  if (inTemplate && s.selector != null) errs.push(invalidRaw(`${path}.selector`, goLabelSelector(s.selector), '`selector` will be auto-generated'));
  // the selector is generated by the server unless manualSelector is set
  errs.push(...validateSelectorAndTemplate(s, path, '', { required: !inTemplate && s.manualSelector === true }));
  const rp = str(asObj(asObj(s.template).spec).restartPolicy);
  const tp = `${path}.template.spec.restartPolicy`;
  if (rp === '' || rp === 'Always') errs.push(field.required(tp, 'valid values: "OnFailure", "Never"'));
  else if (rp !== 'OnFailure' && rp !== 'Never') errs.push(field.notSupported(tp, rp, ['OnFailure', 'Never']));
  return errs.filter((e) => !(e.field === tp && e.type === 'FieldValueRequired' && e.message === 'Required value'));
}

function validateJob(obj: KObject, old?: KObject): FieldError[] {
  const s = asObj(obj.spec);
  const errs = [...meta(obj, 'Job', true), ...validateJobSpec(s, 'spec', false)];
  if (old) {
    const os = asObj(old.spec);
    if (os.selector != null) errs.push(...selectorImmutable(obj, old));
    if (s.completionMode !== 'Indexed' && !deepEqual(s.completions, os.completions)) errs.push(field.invalid('spec.completions', s.completions ?? null, immutableMsg));
    if (!deepEqual(s.completionMode, os.completionMode)) errs.push(field.invalid('spec.completionMode', s.completionMode ?? null, immutableMsg));
  }
  return errs;
}

function validateCronJob(obj: KObject): FieldError[] {
  const s = asObj(obj.spec);
  const errs = meta(obj, 'CronJob', true);
  const name = obj.metadata?.name ?? '';
  if (name.length > 52) errs.push(field.invalid('metadata.name', name, maxLenError(52)));
  const sched = str(s.schedule);
  if (!sched) errs.push(field.required('spec.schedule'));
  else {
    const fields = sched.replace(/^(TZ|CRON_TZ)=\S+\s+/, '').trim().split(/\s+/);
    if (!sched.startsWith('@') && fields.length !== 5) errs.push(field.invalid('spec.schedule', sched, `expected exactly 5 fields, found ${fields.length}: ${sched}`));
  }
  const cp = str(s.concurrencyPolicy);
  if (!cp) errs.push(field.required('spec.concurrencyPolicy'));
  else if (!['Allow', 'Forbid', 'Replace'].includes(cp)) errs.push(field.notSupported('spec.concurrencyPolicy', cp, ['Allow', 'Forbid', 'Replace']));
  for (const k of ['startingDeadlineSeconds', 'successfulJobsHistoryLimit', 'failedJobsHistoryLimit']) errs.push(...nonNegative(s[k], `spec.${k}`));
  const jt = asObj(s.jobTemplate);
  errs.push(...validateLabels(asObj(jt.metadata).labels, 'spec.jobTemplate.metadata.labels'));
  errs.push(...validateJobSpec(asObj(jt.spec), 'spec.jobTemplate.spec', true));
  return errs;
}

// ---- services -----------------------------------------------------------------------------------
// Upstream's ValidateService / ValidateServiceUpdate (pkg/apis/core/validation), in its order and
// wording. ClusterIP and NodePort *allocation* errors (range, already allocated) come from the API
// server's allocator (src/apiserver/service-alloc.ts), which also calls
// validateServiceClusterIPsRelatedFields first, as upstream's allocator does.

const serviceTypes = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort'];
const sessionAffinityTypes = ['ClientIP', 'None'];
const serviceIPFamilies = ['IPv4', 'IPv6'];
const serviceIPFamilyPolicies = ['PreferDualStack', 'RequireDualStack', 'SingleStack'];
const serviceTrafficPolicies = ['Cluster', 'Local'];
const maxClientIPServiceAffinitySeconds = 86400;
const topologyModeAnnotation = 'service.kubernetes.io/topology-mode';
const topologyHintsAnnotation = 'service.kubernetes.io/topology-aware-hints';
const lbSourceRangesAnnotation = 'service.beta.kubernetes.io/load-balancer-source-ranges';
const validIPMsg = 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)';
const validCIDRMsg = 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)';
const onlyForLB = "may only be used when `type` is 'LoadBalancer'";

/** Go's ParseIPSloppy for IPv4: four decimal parts 0-255 (leading zeros allowed). */
function parseIPv4Sloppy(s: string): number[] | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? parts : undefined;
}

/** Go's ParseIP for IPv6 text: 16 bytes, or undefined (a trailing dotted IPv4 part is allowed). */
function parseIPv6(s: string): number[] | undefined {
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    const parts = h.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(p) ? p.split('.').map(Number) : undefined;
        if (!v4 || v4.some((x) => x > 255)) return undefined;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(p)) out.push(parseInt(p, 16));
      else return undefined;
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  return [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
}

/** The IP family of an address as Go's net package sees it ('IPv4' also for ::ffff:a.b.c.d), or undefined. */
export function serviceIPFamilyOf(ip: string): 'IPv4' | 'IPv6' | undefined {
  if (parseIPv4Sloppy(ip)) return 'IPv4';
  const g = parseIPv6(ip);
  if (!g) return undefined;
  return g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff ? 'IPv4' : 'IPv6';
}

function isValidCIDR(v: string): boolean {
  const i = v.indexOf('/');
  if (i < 0) return false;
  const fam = serviceIPFamilyOf(v.slice(0, i));
  const bits = v.slice(i + 1);
  if (!fam || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (fam === 'IPv4' && parseIPv4Sloppy(v.slice(0, i)) ? 32 : 128);
}

function isHeadlessService(s: Obj): boolean {
  const ips = arr(s.clusterIPs);
  return ips.length === 1 && ips[0] === 'None';
}

/** upstream's ExternallyAccessible: NodePort, LoadBalancer, or ClusterIP with external IPs. */
function externallyAccessible(s: Obj): boolean {
  return s.type === 'LoadBalancer' || s.type === 'NodePort' || (s.type === 'ClusterIP' && arr(s.externalIPs).length > 0);
}

/** upstream's NeedsHealthCheck: a LoadBalancer with externalTrafficPolicy Local. */
function needsHealthCheck(s: Obj): boolean {
  return s.type === 'LoadBalancer' && s.externalTrafficPolicy === 'Local';
}

/** A pointer value as Go prints it in an Invalid message: the value, or null. */
function goPtr(v: unknown): string {
  return v === undefined || v === null ? 'null' : typeof v === 'string' ? goStr(v) : String(v);
}

/** Go's %#v of the core.ServicePort key upstream uses for duplicate (protocol, port) pairs. */
function goServicePortKey(protocol: string, port: unknown): string {
  return `core.ServicePort{Name:"", Protocol:${goStr(protocol)}, AppProtocol:(*string)(nil), Port:${typeof port === 'number' ? port : 0}, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}`;
}

/** upstream's ValidateNonSpecialIP (external IPs may not be unspecified, loopback or link-local). */
function validateNonSpecialIP(ip: string, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const g6 = parseIPv6(ip);
  const mapped = g6 && g6.slice(0, 5).every((x) => x === 0) && g6[5] === 0xffff;
  const v4 = parseIPv4Sloppy(ip) ?? (g6 && mapped ? [g6[6] >> 8, g6[6] & 255, g6[7] >> 8, g6[7] & 255] : undefined);
  const g = v4 ? undefined : g6;
  const unspecified = v4 ? v4.every((p) => p === 0) : !!g && g.every((x) => x === 0);
  const loopback = v4 ? v4[0] === 127 : !!g && g.slice(0, 7).every((x) => x === 0) && g[7] === 1;
  const linkLocal = v4 ? v4[0] === 169 && v4[1] === 254 : !!g && (g[0] & 0xffc0) === 0xfe80;
  const linkLocalMulticast = v4 ? v4[0] === 224 && v4[1] === 0 && v4[2] === 0 : !!g && (g[0] & 0xff0f) === 0xff02;
  if (unspecified) errs.push(field.invalid(path, ip, `may not be unspecified (${ip})`));
  if (loopback) errs.push(field.invalid(path, ip, 'may not be in the loopback range (127.0.0.0/8, ::1/128)'));
  if (linkLocal) errs.push(field.invalid(path, ip, 'may not be in the link-local range (169.254.0.0/16, fe80::/10)'));
  if (linkLocalMulticast) errs.push(field.invalid(path, ip, 'may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)'));
  return errs;
}

/**
 * upstream's ValidateServiceClusterIPsRelatedFields: clusterIP / clusterIPs agree, families and
 * policy are known values, IPs are valid, at most one per family, and match ipFamilies.
 */
export function validateServiceClusterIPsRelatedFields(obj: KObject): FieldError[] {
  const s = asObj(obj.spec);
  if (s.type === 'ExternalName') return [];
  const errs: FieldError[] = [];
  const ips = arr(s.clusterIPs).map(str);
  const families = arr(s.ipFamilies).map(str);
  const cip = str(s.clusterIP);
  const ipsValue = goStringSlice(s.clusterIPs);
  if (cip) {
    if (ips.length === 0) errs.push(field.required('spec.clusterIPs'));
    else if (ips[0] !== cip) errs.push(invalidRaw('spec.clusterIPs', ipsValue, 'first value must match `clusterIP`'));
  } else if (ips.length !== 0) {
    errs.push(invalidRaw('spec.clusterIPs', ipsValue, 'must be empty when `clusterIP` is not specified'));
  }
  const seen = new Set<string>();
  families.forEach((f, i) => {
    if (!serviceIPFamilies.includes(f)) errs.push(field.notSupported(`spec.ipFamilies[${i}]`, f, serviceIPFamilies));
    if (seen.has(f)) errs.push(field.duplicate(`spec.ipFamilies[${i}]`, f));
    seen.add(f);
  });
  if (s.ipFamilyPolicy != null && !serviceIPFamilyPolicies.includes(str(s.ipFamilyPolicy))) {
    errs.push(field.notSupported('spec.ipFamilyPolicy', s.ipFamilyPolicy, serviceIPFamilyPolicies));
  }
  let hasInvalidIPs = false;
  ips.forEach((ip, i) => {
    if (i === 0 && ip === 'None') {
      if (ips.length > 1) {
        hasInvalidIPs = true;
        errs.push(invalidRaw('spec.clusterIPs', ipsValue, "'None' must be the first and only value"));
      }
      return;
    }
    if (!serviceIPFamilyOf(ip)) {
      hasInvalidIPs = true;
      errs.push(field.invalid(`spec.clusterIPs[${i}]`, ip, validIPMsg));
    }
  });
  if (ips.length > 2) errs.push(invalidRaw('spec.clusterIPs', ipsValue, 'may only hold up to 2 values'));
  if (hasInvalidIPs) return errs;
  if (ips.length > 1 && (ips.length !== 2 || serviceIPFamilyOf(ips[0]) === serviceIPFamilyOf(ips[1]))) {
    errs.push(invalidRaw('spec.clusterIPs', ipsValue, 'may specify no more than one IP for each IP family'));
  }
  if (!isHeadlessService(s) && ips.length > 0 && families.length > 0) {
    ips.forEach((ip, i) => {
      if (i >= families.length) return;
      const fam = serviceIPFamilyOf(ip);
      if (families[i] === 'IPv4' && fam === 'IPv6') errs.push(field.invalid(`spec.clusterIPs[${i}]`, ip, `expected an IPv4 value as indicated by \`ipFamilies[${i}]\``));
      if (families[i] === 'IPv6' && fam !== 'IPv6') errs.push(field.invalid(`spec.clusterIPs[${i}]`, ip, `expected an IPv6 value as indicated by \`ipFamilies[${i}]\``));
    });
  }
  return errs;
}

function validateServicePort(p: Obj, pp: string, requireName: boolean, names: Set<string>): FieldError[] {
  const errs: FieldError[] = [];
  const name = str(p.name);
  if (requireName && !name) errs.push(field.required(`${pp}.name`));
  else if (name) {
    for (const m of isDNS1123Label(name)) errs.push(field.invalid(`${pp}.name`, name, m));
    if (names.has(name)) errs.push(field.duplicate(`${pp}.name`, name));
    else names.add(name);
  }
  const port = typeof p.port === 'number' ? p.port : 0;
  for (const m of isValidPortNum(port)) errs.push(field.invalid(`${pp}.port`, port, m));
  const proto = str(p.protocol);
  if (!proto) errs.push(field.required(`${pp}.protocol`));
  else if (!supportedProtocols.includes(proto)) errs.push(field.notSupported(`${pp}.protocol`, proto, supportedProtocols));
  // targetPort is an IntOrString: a JSON number is a port number, a JSON string an IANA port name
  const tp = p.targetPort;
  if (typeof tp === 'string') for (const m of isValidPortName(tp)) errs.push(field.invalid(`${pp}.targetPort`, tp, m));
  else {
    const n = typeof tp === 'number' ? tp : 0;
    for (const m of isValidPortNum(n)) errs.push(field.invalid(`${pp}.targetPort`, n, m));
  }
  if (p.appProtocol != null) for (const m of isQualifiedName(str(p.appProtocol))) errs.push(field.invalid(`${pp}.appProtocol`, p.appProtocol, m));
  return errs;
}

function validateClientIPAffinityConfig(cfg: unknown): FieldError[] {
  const path = 'spec.sessionAffinityConfig';
  const when = 'when session affinity type is ClientIP';
  if (!isObj(cfg)) return [field.required(path, when)];
  if (!isObj(cfg.clientIP)) return [field.required(`${path}.clientIP`, when)];
  const t = cfg.clientIP.timeoutSeconds;
  if (t == null) return [field.required(`${path}.clientIP.timeoutSeconds`, when)];
  if (typeof t !== 'number' || t <= 0 || t > maxClientIPServiceAffinitySeconds) {
    return [field.invalid(`${path}.clientIP.timeoutSeconds`, t, `must be greater than 0 and less than ${maxClientIPServiceAffinitySeconds}`)];
  }
  return [];
}

function validateLoadBalancerClass(s: Obj, old: Obj | undefined): FieldError[] {
  const errs: FieldError[] = [];
  const isLB = s.type === 'LoadBalancer';
  if (old && old.type === 'LoadBalancer' && isLB && (old.loadBalancerClass ?? null) !== (s.loadBalancerClass ?? null)) {
    errs.push(invalidRaw('spec.loadBalancerClass', goPtr(s.loadBalancerClass), 'may not change once set'));
  }
  if (isLB) {
    if (s.loadBalancerClass != null) for (const m of isQualifiedName(str(s.loadBalancerClass))) errs.push(field.invalid('spec.loadBalancerClass', s.loadBalancerClass, m));
  } else if (s.loadBalancerClass != null) {
    errs.push(field.forbidden('spec.loadBalancerClass', onlyForLB));
  }
  return errs;
}

/** upstream's validateUpgradeDowngradeClusterIPs and validateUpgradeDowngradeIPFamilies. */
function validateClusterIPsUpdate(s: Obj, o: Obj): FieldError[] {
  const errs: FieldError[] = [];
  if (s.type === 'ExternalName' || o.type === 'ExternalName') return errs;
  const ips = arr(s.clusterIPs).map(str);
  const oips = arr(o.clusterIPs).map(str);
  const ipsValue = goStringSlice(s.clusterIPs);
  const newHeadless = isHeadlessService(s);
  const oldHeadless = isHeadlessService(o);
  if (!(newHeadless && oldHeadless)) {
    if (oips.length === ips.length) {
      oips.forEach((ip, i) => { if (ip !== ips[i]) errs.push(invalidRaw(`spec.clusterIPs[${i}]`, ipsValue, 'may not change once set')); });
    } else if (oips.length > ips.length) {
      if (ips.length === 0) errs.push(invalidRaw('spec.clusterIPs[0]', ipsValue, 'primary clusterIP can not be unset'));
      if (oips.length > 0 && ips.length > 0 && ips[0] !== oips[0]) errs.push(invalidRaw('spec.clusterIPs[0]', ipsValue, 'may not change once set'));
      if (ips.length === 1 && s.ipFamilyPolicy !== 'SingleStack') errs.push(invalidRaw('spec.ipFamilyPolicy', goPtr(s.ipFamilyPolicy), "must be set to 'SingleStack' when releasing the secondary clusterIP"));
    } else if (oips.length > 0 && ips[0] !== oips[0]) {
      errs.push(invalidRaw('spec.clusterIPs[0]', ipsValue, 'may not change once set'));
    }
  }
  if (newHeadless !== oldHeadless || newHeadless) return errs;
  const fams = arr(s.ipFamilies).map(str);
  const ofams = arr(o.ipFamilies).map(str);
  const famsValue = `[]core.IPFamily{${fams.map(goStr).join(', ')}}`;
  if (ofams.length === fams.length) {
    ofams.forEach((f, i) => { if (f !== fams[i]) errs.push(invalidRaw('spec.ipFamilies[0]', famsValue, 'may not change once set')); });
  } else if (ofams.length > fams.length) {
    if (ips.length === 0) errs.push(invalidRaw('spec.ipFamilies[0]', famsValue, 'primary ipFamily can not be unset'));
    if (fams.length > 0 && fams[0] !== ofams[0]) errs.push(invalidRaw('spec.ipFamilies[0]', ipsValue, 'may not change once set'));
    if (fams.length === 1 && s.ipFamilyPolicy !== 'SingleStack') errs.push(invalidRaw('spec.ipFamilyPolicy', goPtr(s.ipFamilyPolicy), "must be set to 'SingleStack' when releasing the secondary ipFamily"));
  } else if (ofams.length > 0 && fams.length > 0 && fams[0] !== ofams[0]) {
    errs.push(invalidRaw('spec.ipFamilies[0]', ipsValue, 'may not change once set'));
  }
  return errs;
}

function validateService(obj: KObject, old?: KObject): FieldError[] {
  const s = asObj(obj.spec);
  const o = old ? asObj(old.spec) : undefined;
  const errs: FieldError[] = [];
  if (o) {
    // ValidateServiceUpdate: what may not change, then everything ValidateService checks
    errs.push(...validateClusterIPsUpdate(s, o));
    errs.push(...validateLoadBalancerClass(s, o));
    if (needsHealthCheck(o) && needsHealthCheck(s) && s.healthCheckNodePort !== o.healthCheckNodePort) {
      errs.push(field.forbidden('spec.healthCheckNodePort', immutableMsg));
    }
  }
  errs.push(...meta(obj, 'Service', true));
  const annotations = obj.metadata?.annotations ?? {};
  const mode = annotations[topologyModeAnnotation];
  const hints = annotations[topologyHintsAnnotation];
  if (mode !== undefined && hints !== undefined && mode !== hints) {
    errs.push(field.invalid(`metadata.annotations[${topologyModeAnnotation}]`, mode, `must match annotations[${topologyHintsAnnotation}] when both are specified`));
  }
  const type = str(s.type);
  const ports = arr(s.ports);
  const headless = isHeadlessService(s);
  if (ports.length === 0 && !headless && type !== 'ExternalName') errs.push(field.required('spec.ports'));
  if ((type === 'LoadBalancer' || type === 'NodePort') && headless) {
    errs.push(field.invalid('spec.clusterIPs[0]', 'None', `may not be set to 'None' for ${type} services`));
  }
  if (type === 'ExternalName') {
    if (arr(s.clusterIPs).length > 0) errs.push(field.forbidden('spec.clusterIPs', 'may not be set for ExternalName services'));
    if (arr(s.ipFamilies).length > 0) errs.push(field.forbidden('spec.ipFamilies', 'may not be set for ExternalName services'));
    if (s.ipFamilyPolicy != null) errs.push(field.forbidden('spec.ipFamilyPolicy', 'may not be set for ExternalName services'));
    // the value (a CNAME) may end in a dot to say it is fully qualified
    const cname = str(s.externalName).replace(/\.$/, '');
    if (cname) for (const m of isDNS1123Subdomain(cname)) errs.push(field.invalid('spec.externalName', cname, m));
    else errs.push(field.required('spec.externalName'));
  }
  const names = new Set<string>();
  ports.forEach((p, i) => errs.push(...validateServicePort(asObj(p), `spec.ports[${i}]`, ports.length > 1, names)));
  if (s.selector != null) errs.push(...validateLabels(s.selector, 'spec.selector'));
  const sa = str(s.sessionAffinity);
  if (!sa) errs.push(field.required('spec.sessionAffinity'));
  else if (!sessionAffinityTypes.includes(sa)) errs.push(field.notSupported('spec.sessionAffinity', sa, sessionAffinityTypes));
  if (sa === 'ClientIP') errs.push(...validateClientIPAffinityConfig(s.sessionAffinityConfig));
  else if (sa === 'None' && s.sessionAffinityConfig != null) errs.push(field.forbidden('spec.sessionAffinityConfig', 'must not be set when session affinity is None'));
  errs.push(...validateServiceClusterIPsRelatedFields(obj));
  arr(s.externalIPs).forEach((raw, i) => {
    const ip = str(raw);
    if (!serviceIPFamilyOf(ip)) errs.push(field.invalid(`spec.externalIPs[${i}]`, ip, validIPMsg));
    else errs.push(...validateNonSpecialIP(ip, `spec.externalIPs[${i}]`));
  });
  if (!type) errs.push(field.required('spec.type'));
  else if (!serviceTypes.includes(type)) errs.push(field.notSupported('spec.type', type, serviceTypes));
  if (type === 'ClusterIP') {
    ports.forEach((p, i) => { if (asObj(p).nodePort) errs.push(field.forbidden(`spec.ports[${i}].nodePort`, "may not be used when `type` is 'ClusterIP'")); });
  }
  const nodePorts = new Set<string>();
  const portKeys = new Set<string>();
  ports.forEach((raw, i) => {
    const p = asObj(raw);
    if (p.nodePort) {
      const key = `${str(p.protocol)}/${String(p.nodePort)}`;
      if (nodePorts.has(key)) errs.push(field.duplicate(`spec.ports[${i}].nodePort`, p.nodePort));
      nodePorts.add(key);
    }
  });
  ports.forEach((raw, i) => {
    const p = asObj(raw);
    const key = `${str(p.protocol)}/${String(p.port)}`;
    if (portKeys.has(key)) errs.push({ type: 'FieldValueDuplicate', field: `spec.ports[${i}]`, message: `Duplicate value: ${goServicePortKey(str(p.protocol), p.port)}` });
    portKeys.add(key);
  });
  const ranges = arr(s.loadBalancerSourceRanges);
  if (ranges.length > 0) {
    const path = 'spec.LoadBalancerSourceRanges'; // sic: upstream's path is capitalized
    if (type !== 'LoadBalancer') errs.push(field.forbidden(path, onlyForLB));
    ranges.forEach((r, i) => { const v = str(r).trim(); if (!isValidCIDR(v)) errs.push(field.invalid(`${path}[${i}]`, v, validCIDRMsg)); });
  } else if (annotations[lbSourceRangesAnnotation] !== undefined) {
    const path = `metadata.annotations[${lbSourceRangesAnnotation}]`;
    if (type !== 'LoadBalancer') errs.push(field.forbidden(path, onlyForLB));
    const val = annotations[lbSourceRangesAnnotation].trim();
    if (val) for (const r of val.split(',')) { const v = r.trim(); if (!isValidCIDR(v)) errs.push(field.invalid(path, v, validCIDRMsg)); }
  }
  if (s.allocateLoadBalancerNodePorts != null && type !== 'LoadBalancer') errs.push(field.forbidden('spec.allocateLoadBalancerNodePorts', onlyForLB));
  // sic: upstream reports this one without the spec. prefix
  if (type === 'LoadBalancer' && s.allocateLoadBalancerNodePorts == null) errs.push(field.required('allocateLoadBalancerNodePorts'));
  errs.push(...validateLoadBalancerClass(s, undefined));
  // externalTrafficPolicy and healthCheckNodePort
  const etp = str(s.externalTrafficPolicy);
  if (!externallyAccessible(s)) {
    if (etp) errs.push(field.invalid('spec.externalTrafficPolicy', etp, 'may only be set for externally-accessible services'));
  } else if (!etp) errs.push(field.required('spec.externalTrafficPolicy'));
  else if (!serviceTrafficPolicies.includes(etp)) errs.push(field.notSupported('spec.externalTrafficPolicy', etp, serviceTrafficPolicies));
  const hc = typeof s.healthCheckNodePort === 'number' ? s.healthCheckNodePort : 0;
  if (!needsHealthCheck(s)) {
    if (hc !== 0) errs.push(field.invalid('spec.healthCheckNodePort', hc, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"));
  } else if (hc === 0) errs.push(field.required('spec.healthCheckNodePort'));
  else for (const m of isValidPortNum(hc)) errs.push(field.invalid('spec.healthCheckNodePort', hc, m));
  // internalTrafficPolicy (required for the types that have cluster IPs), trafficDistribution
  if (s.internalTrafficPolicy == null) {
    if (type === 'NodePort' || type === 'LoadBalancer' || type === 'ClusterIP') errs.push(field.required('spec.internalTrafficPolicy'));
  } else if (!serviceTrafficPolicies.includes(str(s.internalTrafficPolicy))) {
    errs.push(field.notSupported('spec.internalTrafficPolicy', s.internalTrafficPolicy, serviceTrafficPolicies));
  }
  if (s.trafficDistribution != null && s.trafficDistribution !== 'PreferClose') errs.push(field.notSupported('spec.trafficDistribution', s.trafficDistribution, ['PreferClose']));
  return errs;
}

// ---- config -------------------------------------------------------------------------------------

const maxDataSize = 1024 * 1024;
const immutableSetMsg = 'field is immutable when `immutable` is set';
const base64Re = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function validateDataKeys(bag: unknown, path: string, other: unknown, otherName: string): { errs: FieldError[]; keys: string[] } {
  const errs: FieldError[] = [];
  const b = asObj(bag);
  for (const k of Object.keys(b)) {
    for (const m of isConfigMapKey(k)) errs.push(field.invalid(`${path}[${k}]`, k, m));
    if (other && Object.prototype.hasOwnProperty.call(other, k)) errs.push(field.invalid(`${path}[${k}]`, k, `duplicate of key present in ${otherName}`));
  }
  return { errs, keys: Object.keys(b) };
}

function immutableDataChecks(obj: KObject, old: KObject | undefined, keys: string[]): FieldError[] {
  if (!old || old.immutable !== true) return [];
  const errs: FieldError[] = [];
  if (obj.immutable !== true) errs.push(field.forbidden('immutable', immutableSetMsg));
  for (const k of keys) if (!deepEqual(obj[k] ?? undefined, old[k] ?? undefined)) errs.push(field.forbidden(k, immutableSetMsg));
  return errs;
}

function validateConfigMap(obj: KObject, old?: KObject): FieldError[] {
  const errs = meta(obj, 'ConfigMap', true);
  errs.push(...validateDataKeys(obj.data, 'data', obj.binaryData, 'binaryData').errs);
  errs.push(...validateDataKeys(obj.binaryData, 'binaryData', obj.data, 'data').errs);
  let size = 0;
  for (const v of Object.values(asObj(obj.data))) size += Buffer.byteLength(String(v));
  for (const [k, v] of Object.entries(asObj(obj.binaryData))) {
    const s = String(v);
    if (!base64Re.test(s)) errs.push(field.invalid(`binaryData[${k}]`, '<binary data redacted>', 'illegal base64 data'));
    size += Buffer.from(s, 'base64').length;
  }
  if (size > maxDataSize) errs.push(field.tooLong('', maxDataSize));
  errs.push(...immutableDataChecks(obj, old, ['data', 'binaryData']));
  return errs;
}

function validateSecret(obj: KObject, old?: KObject): FieldError[] {
  const errs = meta(obj, 'Secret', true);
  const data = asObj(obj.data);
  errs.push(...validateDataKeys(data, 'data', undefined, '').errs);
  let size = 0;
  for (const [k, v] of Object.entries(data)) {
    const s = String(v);
    if (!base64Re.test(s)) errs.push(field.invalid(`data[${k}]`, '<secret contents redacted>', 'illegal base64 data'));
    size += Buffer.from(s, 'base64').length;
  }
  if (size > maxDataSize) errs.push(field.tooLong('data', maxDataSize));
  const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(data, k);
  switch (str(obj.type)) {
    case 'kubernetes.io/service-account-token':
      if (!obj.metadata?.annotations?.['kubernetes.io/service-account.name']) errs.push(field.required('metadata.annotations[kubernetes.io/service-account.name]'));
      break;
    case 'kubernetes.io/dockercfg':
    case 'kubernetes.io/dockerconfigjson': {
      const key = obj.type === 'kubernetes.io/dockercfg' ? '.dockercfg' : '.dockerconfigjson';
      if (!has(key)) errs.push(field.required(`data[${key}]`));
      else {
        try { JSON.parse(Buffer.from(String(data[key]), 'base64').toString('utf8')); } catch (e) {
          errs.push(field.invalid(`data[${key}]`, '<secret contents redacted>', (e as Error).message));
        }
      }
      break;
    }
    case 'kubernetes.io/basic-auth':
      if (!has('username') && !has('password')) {
        errs.push(field.required('data[username]'), field.required('data[password]'));
      }
      break;
    case 'kubernetes.io/ssh-auth':
      if (!has('ssh-privatekey')) errs.push(field.required('data[ssh-privatekey]'));
      break;
    case 'kubernetes.io/tls':
      if (!has('tls.crt')) errs.push(field.required('data[tls.crt]'));
      if (!has('tls.key')) errs.push(field.required('data[tls.key]'));
      break;
    default:
  }
  if (old && str(old.type) !== str(obj.type)) errs.push(field.invalid('type', str(obj.type), immutableMsg));
  errs.push(...immutableDataChecks(obj, old, ['data']));
  return errs;
}

// ---- the rest -----------------------------------------------------------------------------------

// HorizontalPodAutoscaler (upstream's pkg/apis/autoscaling/validation): replica bounds, the scale
// target, metric sources and targets, and behavior rules, with upstream's paths and wording. An
// autoscaling/v1 object carries its one CPU target in targetCPUUtilizationPercentage.
function pathSegmentErrs(path: string, v: string): FieldError[] {
  // upstream's IsValidPathSegmentName
  const msgs: string[] = [];
  if (v === '.' || v === '..') msgs.push(`may not be '${v}'`);
  else {
    if (v.includes('/')) msgs.push("may not contain '/'");
    if (v.includes('%')) msgs.push("may not contain '%'");
  }
  return msgs.map((m) => field.invalid(path, v, m));
}

function validateCrossVersionObjectReference(ref: Obj, path: string): FieldError[] {
  const errs: FieldError[] = [];
  if (!str(ref.kind)) errs.push(field.required(`${path}.kind`));
  else errs.push(...pathSegmentErrs(`${path}.kind`, str(ref.kind)));
  if (!str(ref.name)) errs.push(field.required(`${path}.name`));
  else errs.push(...pathSegmentErrs(`${path}.name`, str(ref.name)));
  return errs;
}

function quantitySign(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  const q = tryParseQuantity(String(v));
  return q ? q.sign() : 0;
}

function validateMetricTarget(t: Obj, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const type = str(t.type);
  if (!type) errs.push(field.required(`${path}.type`, 'must specify a metric target type'));
  if (!['Utilization', 'Value', 'AverageValue'].includes(type)) errs.push(field.invalid(`${path}.type`, type, 'must be either Utilization, Value, or AverageValue'));
  if (t.value != null && quantitySign(t.value) !== 1) errs.push(field.invalid(`${path}.value`, String(t.value), 'must be positive'));
  if (t.averageValue != null && quantitySign(t.averageValue) !== 1) errs.push(field.invalid(`${path}.averageValue`, String(t.averageValue), 'must be positive'));
  if (typeof t.averageUtilization === 'number' && t.averageUtilization < 1) errs.push(field.invalid(`${path}.averageUtilization`, t.averageUtilization, 'must be greater than 0'));
  return errs;
}

function validateMetricIdentifier(id: Obj, path: string): FieldError[] {
  if (!str(id.name)) return [field.required(`${path}.name`, 'must specify a metric name')];
  return pathSegmentErrs(`${path}.name`, str(id.name));
}

const metricSourceTypes = ['ContainerResource', 'External', 'Object', 'Pods', 'Resource'];

function validateMetricSpec(m: Obj, path: string): FieldError[] {
  const errs: FieldError[] = [];
  const type = str(m.type);
  if (!type) errs.push(field.required(`${path}.type`, 'must specify a metric source type'));
  if (!metricSourceTypes.includes(type)) errs.push(field.notSupported(`${path}.type`, type, metricSourceTypes));
  const present: string[] = [];
  const source = (key: string, check: (src: Obj, p: string) => FieldError[]): void => {
    if (m[key] == null) return;
    present.push(key);
    if (present.length === 1) errs.push(...check(asObj(m[key]), `${path}.${key}`));
  };
  source('object', (src, p) => {
    const e = [...validateCrossVersionObjectReference(asObj(src.describedObject), `${p}.describedObject`), ...validateMetricIdentifier(asObj(src.metric), `${p}.metric`), ...validateMetricTarget(asObj(src.target), `${p}.target`)];
    const t = asObj(src.target);
    if (t.value == null && t.averageValue == null) e.push(field.required(`${p}.target.averageValue`, 'must set either a target value or averageValue'));
    return e;
  });
  source('external', (src, p) => {
    const e = [...validateMetricIdentifier(asObj(src.metric), `${p}.metric`), ...validateMetricTarget(asObj(src.target), `${p}.target`)];
    const t = asObj(src.target);
    if (t.value == null && t.averageValue == null) e.push(field.required(`${p}.target.averageValue`, 'must set either a target value for metric or a per-pod target'));
    if (t.value != null && t.averageValue != null) e.push(field.forbidden(`${p}.target.value`, 'may not set both a target value for metric and a per-pod target'));
    return e;
  });
  source('pods', (src, p) => {
    const e = [...validateMetricIdentifier(asObj(src.metric), `${p}.metric`), ...validateMetricTarget(asObj(src.target), `${p}.target`)];
    if (asObj(src.target).averageValue == null) e.push(field.required(`${p}.target.averageValue`, 'must specify a positive target averageValue'));
    return e;
  });
  const resourceChecks = (src: Obj, p: string, container: boolean): FieldError[] => {
    const e: FieldError[] = [];
    if (!str(src.name)) e.push(field.required(`${p}.name`, 'must specify a resource name'));
    if (container) {
      if (!str(src.container)) e.push(field.required(`${p}.container`, 'must specify a container'));
      else if (!isDNS1123Label(str(src.container))) e.push(field.invalid(`${p}.container`, str(src.container), "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"));
    }
    e.push(...validateMetricTarget(asObj(src.target), `${p}.target`));
    const t = asObj(src.target);
    if (t.averageUtilization == null && t.averageValue == null) e.push(field.required(`${p}.target.averageUtilization`, 'must set either a target raw value or a target utilization'));
    if (t.averageUtilization != null && t.averageValue != null) e.push(field.forbidden(`${p}.target.averageValue`, 'may not set both a target raw value and a target utilization'));
    return e;
  };
  source('resource', (src, p) => resourceChecks(src, p, false));
  source('containerResource', (src, p) => resourceChecks(src, p, true));
  const expected: Record<string, string> = { Object: 'object', Pods: 'pods', Resource: 'resource', External: 'external', ContainerResource: 'containerResource' };
  const want = expected[type];
  if (want && m[want] == null) errs.push(field.required(`${path}.${want}`, 'must populate information for the given metric source'));
  if (!want && type) errs.push(field.notSupported(`${path}.type`, type, metricSourceTypes));
  if (present.length > 1) for (const k of present.filter((x) => x !== want).sort()) errs.push(field.forbidden(`${path}.${k}`, 'must populate the given metric source only'));
  return errs;
}

function validateScalingRules(rules: unknown, path: string): FieldError[] {
  if (rules == null) return [];
  const r = asObj(rules);
  const errs: FieldError[] = [];
  const w = r.stabilizationWindowSeconds;
  if (typeof w === 'number' && w < 0) errs.push(field.invalid(`${path}.stabilizationWindowSeconds`, w, 'must be greater than or equal to zero'));
  if (typeof w === 'number' && w > 3600) errs.push(field.invalid(`${path}.stabilizationWindowSeconds`, w, 'must be less than or equal to 3600'));
  if (r.selectPolicy != null && !['Disabled', 'Max', 'Min'].includes(str(r.selectPolicy))) errs.push(field.notSupported(`${path}.selectPolicy`, r.selectPolicy, ['Disabled', 'Max', 'Min']));
  const policies = arr(r.policies);
  if (policies.length === 0) errs.push(field.required(`${path}.policies`, 'must specify at least one Policy'));
  policies.forEach((pv, i) => {
    const p = asObj(pv);
    const pp = `${path}.policies[${i}]`;
    if (p.type !== 'Pods' && p.type !== 'Percent') errs.push(field.notSupported(`${pp}.type`, str(p.type), ['Percent', 'Pods']));
    const value = typeof p.value === 'number' ? p.value : 0;
    if (value <= 0) errs.push(field.invalid(`${pp}.value`, value, 'must be greater than zero'));
    const period = typeof p.periodSeconds === 'number' ? p.periodSeconds : 0;
    if (period <= 0) errs.push(field.invalid(`${pp}.periodSeconds`, period, 'must be greater than zero'));
    if (period > 1800) errs.push(field.invalid(`${pp}.periodSeconds`, period, 'must be less than or equal to 1800'));
  });
  return errs;
}

function validateHPA(obj: KObject, old?: KObject): FieldError[] {
  const s = asObj(obj.spec);
  const errs = meta(obj, 'HorizontalPodAutoscaler', true);
  const min = s.minReplicas;
  const max = typeof s.maxReplicas === 'number' ? s.maxReplicas : 0;
  // 0 is allowed on update when the object already had it (upstream: HPAScaleToZero off)
  const oldMin = old ? asObj(old.spec).minReplicas : undefined;
  const lower = oldMin === 0 ? 0 : 1;
  if (typeof min === 'number' && min < lower) errs.push(field.invalid('spec.minReplicas', min, `must be greater than or equal to ${lower}`));
  if (max < 1) errs.push(field.invalid('spec.maxReplicas', max, 'must be greater than 0'));
  if (typeof min === 'number' && max < min) errs.push(field.invalid('spec.maxReplicas', max, 'must be greater than or equal to `minReplicas`'));
  errs.push(...validateCrossVersionObjectReference(asObj(s.scaleTargetRef), 'spec.scaleTargetRef'));
  if (obj.apiVersion === 'autoscaling/v1') {
    const t = s.targetCPUUtilizationPercentage;
    if (typeof t === 'number' && t < 1) errs.push(field.invalid('spec.metrics[0].resource.target.averageUtilization', t, 'must be greater than 0'));
    return errs;
  }
  const metrics = arr(s.metrics);
  metrics.forEach((m, i) => errs.push(...validateMetricSpec(asObj(m), `spec.metrics[${i}]`)));
  if (min === 0 && !metrics.some((m) => ['Object', 'External'].includes(str(asObj(m).type)))) {
    errs.push(field.forbidden('spec.metrics', 'must specify at least one Object or External metric to support scaling to zero replicas'));
  }
  if (s.behavior != null) {
    const b = asObj(s.behavior);
    errs.push(...validateScalingRules(b.scaleUp, 'spec.behavior.scaleUp'), ...validateScalingRules(b.scaleDown, 'spec.behavior.scaleDown'));
  }
  return errs;
}

function validateIngress(obj: KObject): FieldError[] {
  const errs = meta(obj, 'Ingress', true);
  arr(asObj(obj.spec).rules).forEach((r, i) => {
    arr(asObj(asObj(r).http).paths).forEach((p, j) => {
      const pp = `spec.rules[${i}].http.paths[${j}]`;
      const pt = asObj(p).pathType;
      if (pt == null) errs.push(field.required(`${pp}.pathType`, 'pathType must be specified'));
      else if (!['Exact', 'Prefix', 'ImplementationSpecific'].includes(String(pt))) errs.push(field.notSupported(`${pp}.pathType`, pt, ['Exact', 'Prefix', 'ImplementationSpecific']));
    });
  });
  return errs;
}

function validateBinding(obj: KObject): FieldError[] {
  const errs = meta(obj, 'Binding', true);
  const t = asObj((obj as Obj).target);
  if (str(t.kind) && t.kind !== 'Node') errs.push(field.notSupported('target.kind', t.kind, ['Node', '<empty>']));
  if (!str(t.name)) errs.push(field.required('target.name'));
  return errs;
}

function metaOnly(kind: string, namespaced: boolean): (obj: KObject) => FieldError[] {
  return (obj) => meta(obj, kind, namespaced);
}

/** Validation per Kind (create when old is absent, update otherwise). */
export const validators: Record<string, (obj: KObject, old?: KObject) => FieldError[]> = {
  Pod: validatePod,
  PodTemplate: (obj) => [...meta(obj, 'PodTemplate', true), ...validatePodTemplateSpec((obj as Obj).template, 'template')],
  Binding: validateBinding,
  Service: validateService,
  ConfigMap: validateConfigMap,
  Secret: validateSecret,
  Namespace: metaOnly('Namespace', false),
  Node: metaOnly('Node', false),
  Deployment: validateDeployment,
  ReplicaSet: validateReplicaSet,
  StatefulSet: validateStatefulSet,
  DaemonSet: validateDaemonSet,
  ReplicationController: validateReplicationController,
  Job: validateJob,
  CronJob: validateCronJob,
  HorizontalPodAutoscaler: validateHPA,
  Ingress: validateIngress,
  Endpoints: metaOnly('Endpoints', true),
  Event: metaOnly('Event', true),
  ServiceAccount: metaOnly('ServiceAccount', true),
  PersistentVolume: metaOnly('PersistentVolume', false),
  PersistentVolumeClaim: metaOnly('PersistentVolumeClaim', true),
  ResourceQuota: metaOnly('ResourceQuota', true),
  LimitRange: metaOnly('LimitRange', true),
  ControllerRevision: metaOnly('ControllerRevision', true),
  Lease: metaOnly('Lease', true),
  EndpointSlice: metaOnly('EndpointSlice', true),
  Role: metaOnly('Role', true),
  RoleBinding: metaOnly('RoleBinding', true),
  ClusterRole: metaOnly('ClusterRole', false),
  ClusterRoleBinding: metaOnly('ClusterRoleBinding', false),
  IngressClass: metaOnly('IngressClass', false),
  NetworkPolicy: metaOnly('NetworkPolicy', true),
  StorageClass: metaOnly('StorageClass', false),
  PodDisruptionBudget: metaOnly('PodDisruptionBudget', true),
  PriorityClass: metaOnly('PriorityClass', false),
};
