// Server-side printing: the columns and cells of `kubectl get` (the Table protocol) for every
// built-in kind, with the same column names, order and cell formats as kube-apiserver.
// The API server always prints the wide form; kubectl hides columns with priority 1 unless -o wide.
import { age, humanDuration } from '../machinery/human-duration.js';
import type { KObject, TableColumn } from './types.js';

export interface Printer {
  columns: TableColumn[];
  /** Cells for one object, one per column; `now` is the clock for ages. */
  row(obj: KObject, now: Date): unknown[];
}

// Objects arrive as parsed JSON of any shape; read them loosely and fall back like the Go
// zero values do.
type J = any;

// ---------------------------------------------------------------------------------------------
// Column helpers

const NAME_DESCRIPTION =
  'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names';
const CREATION_DESCRIPTION =
  'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata';
const CONTAINERS_DESCRIPTION = 'Names of each container in the template.';
const IMAGES_DESCRIPTION = 'Images referenced by each container in the template.';

function col(
  name: string, type: TableColumn['type'], description: string, priority = 0,
): TableColumn {
  return { name, type, format: '', description, priority };
}
const str = (name: string, description: string, priority = 0) => col(name, 'string', description, priority);
const int = (name: string, description: string, priority = 0) => col(name, 'integer', description, priority);
const bool = (name: string, description: string, priority = 0) => col(name, 'boolean', description, priority);
const wide = (name: string, description: string) => col(name, 'string', description, 1);
const nameCol = (priority = 0): TableColumn =>
  ({ name: 'Name', type: 'string', format: 'name', description: NAME_DESCRIPTION, priority });
const ageCol = (): TableColumn => str('Age', CREATION_DESCRIPTION);

// ---------------------------------------------------------------------------------------------
// Cell helpers

const nameOf = (o: J): string => o?.metadata?.name ?? '';
const ageOf = (o: J, now: Date): string => age(o?.metadata?.creationTimestamp, now);
const list = (v: J): J[] => (Array.isArray(v) ? v : []);
const count = (v: J): number => (v && typeof v === 'object' ? Object.keys(v).length : 0);
const n = (v: J): number => (typeof v === 'number' && Number.isFinite(v) ? Math.trunc(v) : 0);
const s = (v: J): string => (v === undefined || v === null ? '' : String(v));
/** A resource.Quantity's printed form; JSON already carries the canonical string. */
const quantity = (v: J): string => (v === undefined || v === null || v === '' ? '0' : String(v));
/** An IntOrString as upstream prints it. */
const intOrString = (v: J): string => (typeof v === 'number' ? String(Math.trunc(v)) : s(v));
const boolCell = (v: J): string => (v ? 'True' : 'False');
const boolPtr = (v: J): string => (v === undefined || v === null ? '<unset>' : boolCell(v));

/** labels.FormatLabels: `a=1,b=2` sorted by key, `<none>` when empty. */
export function formatLabels(labels: Record<string, string> | undefined | null): string {
  const keys = Object.keys(labels ?? {}).sort();
  if (keys.length === 0) return '<none>';
  return keys.map((k) => `${k}=${labels![k]}`).join(',');
}

/**
 * A metav1.LabelSelector in selector syntax (`app=web,tier in (a,b),!gone`), requirements sorted
 * by key; `undefined` when the selector is not valid.
 */
function labelSelectorString(sel: J): string | undefined {
  if (!sel || typeof sel !== 'object') return '';
  const reqs: { key: string; text: string }[] = [];
  for (const [key, value] of Object.entries((sel.matchLabels ?? {}) as Record<string, unknown>)) {
    reqs.push({ key, text: `${key}=${s(value)}` });
  }
  for (const expr of list(sel.matchExpressions)) {
    const key = s(expr?.key);
    const values = [...new Set(list(expr?.values).map(s))].sort();
    switch (expr?.operator) {
      case 'In':
        if (values.length === 0) return undefined;
        reqs.push({ key, text: `${key} in (${values.join(',')})` });
        break;
      case 'NotIn':
        if (values.length === 0) return undefined;
        reqs.push({ key, text: `${key} notin (${values.join(',')})` });
        break;
      case 'Exists':
        if (values.length) return undefined;
        reqs.push({ key, text: key });
        break;
      case 'DoesNotExist':
        if (values.length) return undefined;
        reqs.push({ key, text: `!${key}` });
        break;
      default:
        return undefined;
    }
  }
  // stable sort by key, as labels.Selector keeps its requirements
  reqs.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return reqs.map((r) => r.text).join(',');
}

/** metav1.FormatLabelSelector: `<none>` for an empty or missing selector, `<error>` if invalid. */
export function formatLabelSelector(sel: J): string {
  const text = labelSelectorString(sel);
  if (text === undefined) return '<error>';
  return text === '' ? '<none>' : text;
}

/** Container names and images of a pod template, comma-joined. */
function containerCells(podSpec: J): [string, string] {
  const containers = list(podSpec?.containers);
  return [containers.map((c) => s(c?.name)).join(','), containers.map((c) => s(c?.image)).join(',')];
}

/** net.JoinHostPort: brackets around IPv6 hosts. */
function joinHostPort(host: string, port: number | string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Up to three items, then ` + N more...`; `<unset>` when there are none. */
function listWithMore(items: string[], max = 3): string {
  const shown = items.slice(0, max).join(',');
  if (items.length > max) return `${shown} + ${items.length - max} more...`;
  return shown === '' ? '<unset>' : shown;
}

/** IPs (or hostnames) of a load-balancer status, de-duplicated and sorted, comma-joined. */
function loadBalancerIngress(lb: J): string {
  const set = new Set<string>();
  for (const ing of list(lb?.ingress)) {
    if (ing?.ip) set.add(String(ing.ip));
    else if (ing?.hostname) set.add(String(ing.hostname));
  }
  return [...set].sort().join(',');
}

const hasCondition = (conditions: J, type: string): boolean => {
  for (const c of list(conditions)) if (c?.type === type) return c?.status === 'True';
  return false;
};

// ---------------------------------------------------------------------------------------------
// Pod

const NODE_UNREACHABLE_POD_REASON = 'NodeLost';

function podStatusAndCounts(pod: J, now: Date): { ready: string; reason: string; restarts: string } {
  const spec = pod?.spec ?? {};
  const status = pod?.status ?? {};
  const initSpecs = list(spec.initContainers);
  const restartable = new Set(initSpecs.filter((c) => c?.restartPolicy === 'Always').map((c) => s(c?.name)));
  const total = list(spec.containers).length + restartable.size;
  let ready = 0;
  let restarts = 0;
  let restartableRestarts = 0;
  let lastRestart = 0; // ms since epoch; 0 = never
  let lastRestartableRestart = 0;
  const finishedAt = (cs: J): number => {
    const t = cs?.lastState?.terminated?.finishedAt;
    const ms = t ? Date.parse(t) : NaN;
    return Number.isNaN(ms) ? 0 : ms;
  };

  const phase = s(status.phase);
  let reason = status.reason ? s(status.reason) : phase;
  for (const c of list(status.conditions)) {
    if (c?.type === 'PodScheduled' && c?.reason === 'SchedulingGated') reason = 'SchedulingGated';
  }

  let initializing = false;
  const initStatuses = list(status.initContainerStatuses);
  for (let i = 0; i < initStatuses.length; i++) {
    const cs = initStatuses[i] ?? {};
    restarts += n(cs.restartCount);
    lastRestart = Math.max(lastRestart, finishedAt(cs));
    const isRestartable = restartable.has(s(cs.name));
    if (isRestartable) {
      restartableRestarts += n(cs.restartCount);
      lastRestartableRestart = Math.max(lastRestartableRestart, finishedAt(cs));
    }
    const terminated = cs.state?.terminated;
    const waiting = cs.state?.waiting;
    if (terminated && n(terminated.exitCode) === 0) continue;
    if (isRestartable && cs.started === true) {
      if (cs.ready) ready++;
      continue;
    }
    if (terminated) {
      if (!terminated.reason) {
        reason = n(terminated.signal) !== 0
          ? `Init:Signal:${n(terminated.signal)}`
          : `Init:ExitCode:${n(terminated.exitCode)}`;
      } else {
        reason = `Init:${terminated.reason}`;
      }
    } else if (waiting?.reason && waiting.reason !== 'PodInitializing') {
      reason = `Init:${waiting.reason}`;
    } else {
      reason = `Init:${i}/${initSpecs.length}`;
    }
    initializing = true;
    break;
  }

  if (!initializing || hasCondition(status.conditions, 'Initialized')) {
    restarts = restartableRestarts;
    lastRestart = lastRestartableRestart;
    let hasRunning = false;
    const statuses = list(status.containerStatuses);
    for (let i = statuses.length - 1; i >= 0; i--) {
      const cs = statuses[i] ?? {};
      restarts += n(cs.restartCount);
      lastRestart = Math.max(lastRestart, finishedAt(cs));
      const waiting = cs.state?.waiting;
      const terminated = cs.state?.terminated;
      if (waiting?.reason) {
        reason = s(waiting.reason);
      } else if (terminated?.reason) {
        reason = s(terminated.reason);
      } else if (terminated) {
        reason = n(terminated.signal) !== 0 ? `Signal:${n(terminated.signal)}` : `ExitCode:${n(terminated.exitCode)}`;
      } else if (cs.ready && cs.state?.running) {
        hasRunning = true;
        ready++;
      }
    }
    // a pod whose container reports Completed while another still runs is still running
    if (reason === 'Completed' && hasRunning) {
      reason = hasCondition(status.conditions, 'Ready') ? 'Running' : 'NotReady';
    }
  }

  const deleting = !!pod?.metadata?.deletionTimestamp;
  if (deleting && status.reason === NODE_UNREACHABLE_POD_REASON) {
    reason = 'Unknown';
  } else if (deleting && phase !== 'Succeeded' && phase !== 'Failed') {
    reason = 'Terminating';
  }

  let restartsCell = String(restarts);
  if (restarts !== 0 && lastRestart !== 0) {
    restartsCell = `${restarts} (${humanDuration(now.getTime() - lastRestart)} ago)`;
  }
  return { ready: `${ready}/${total}`, reason, restarts: restartsCell };
}

const pod: Printer = {
  columns: [
    nameCol(),
    str('Ready', 'The aggregate readiness state of this pod for accepting traffic.'),
    str('Status', 'The aggregate status of the containers in this pod.'),
    str('Restarts', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'),
    ageCol(),
    wide('IP', 'podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.'),
    wide('Node', 'NodeName indicates in which node this pod is scheduled.'),
    wide('Nominated Node', 'nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.'),
    wide('Readiness Gates', 'If specified, all readiness gates will be evaluated for pod readiness.'),
  ],
  row(obj, now) {
    const p = obj as J;
    const { ready, reason, restarts } = podStatusAndCounts(p, now);
    const podIP = s(list(p.status?.podIPs)[0]?.ip ?? p.status?.podIP) || '<none>';
    const nodeName = s(p.spec?.nodeName) || '<none>';
    const nominated = s(p.status?.nominatedNodeName) || '<none>';
    let gates = '<none>';
    const readinessGates = list(p.spec?.readinessGates);
    if (readinessGates.length > 0) {
      let trueCount = 0;
      for (const gate of readinessGates) {
        const c = list(p.status?.conditions).find((x) => x?.type === gate?.conditionType);
        if (c?.status === 'True') trueCount++;
      }
      gates = `${trueCount}/${readinessGates.length}`;
    }
    return [nameOf(p), ready, reason, restarts, ageOf(p, now), podIP, nodeName, nominated, gates];
  },
};

// ---------------------------------------------------------------------------------------------
// Node

function nodeRoles(labels: Record<string, string> | undefined): string {
  const roles = new Set<string>();
  for (const [k, v] of Object.entries(labels ?? {})) {
    if (k.startsWith('node-role.kubernetes.io/')) {
      const role = k.slice('node-role.kubernetes.io/'.length);
      if (role) roles.add(role);
    } else if (k === 'kubernetes.io/role' && v) {
      roles.add(v);
    }
  }
  return roles.size ? [...roles].sort().join(',') : '<none>';
}

function nodeAddress(node: J, type: string): string {
  const a = list(node?.status?.addresses).find((x) => x?.type === type);
  return a ? s(a.address) : '<none>';
}

const node: Printer = {
  columns: [
    nameCol(),
    str('Status', 'The status of the node'),
    str('Roles', 'The roles of the node'),
    ageCol(),
    str('Version', 'Kubelet Version reported by the node.'),
    wide('Internal-IP', 'List of addresses reachable to the node.'),
    wide('External-IP', 'List of addresses reachable to the node.'),
    wide('OS-Image', 'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).'),
    wide('Kernel-Version', "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
    wide('Container-Runtime', 'ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).'),
  ],
  row(obj, now) {
    const o = obj as J;
    const status: string[] = [];
    // the last Ready condition wins, as a map keyed by type would keep it
    let readyCond: J;
    for (const c of list(o.status?.conditions)) if (c?.type === 'Ready') readyCond = c;
    if (readyCond) status.push(readyCond.status === 'True' ? 'Ready' : 'NotReady');
    else status.push('Unknown');
    if (o.spec?.unschedulable) status.push('SchedulingDisabled');
    const info = o.status?.nodeInfo ?? {};
    return [
      nameOf(o), status.join(','), nodeRoles(o.metadata?.labels), ageOf(o, now), s(info.kubeletVersion),
      nodeAddress(o, 'InternalIP'), nodeAddress(o, 'ExternalIP'),
      s(info.osImage) || '<unknown>', s(info.kernelVersion) || '<unknown>', s(info.containerRuntimeVersion) || '<unknown>',
    ];
  },
};

// ---------------------------------------------------------------------------------------------
// Service, Endpoints, EndpointSlice, Ingress

function serviceExternalIP(svc: J): string {
  const externalIPs = list(svc?.spec?.externalIPs).map(s);
  switch (svc?.spec?.type ?? 'ClusterIP') {
    case 'ClusterIP':
    case 'NodePort':
      return externalIPs.length ? externalIPs.join(',') : '<none>';
    case 'LoadBalancer': {
      const lb = loadBalancerIngress(svc?.status?.loadBalancer);
      if (externalIPs.length) return [...(lb ? lb.split(',') : []), ...externalIPs].join(',');
      return lb || '<pending>';
    }
    case 'ExternalName':
      return s(svc?.spec?.externalName);
    default:
      return '<unknown>';
  }
}

function servicePorts(ports: J): string {
  return list(ports).map((p) => {
    const protocol = s(p?.protocol) || 'TCP';
    return n(p?.nodePort) > 0 ? `${n(p?.port)}:${n(p?.nodePort)}/${protocol}` : `${n(p?.port)}/${protocol}`;
  }).join(',');
}

const service: Printer = {
  columns: [
    nameCol(),
    str('Type', 'type determines how the Service is exposed.'),
    str('Cluster-IP', 'clusterIP is the IP address of the service and is usually assigned randomly.'),
    str('External-IP', 'externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.'),
    str('Port(s)', 'The list of ports that are exposed by this service.'),
    ageCol(),
    wide('Selector', 'Route service traffic to pods with label keys and values matching this selector.'),
  ],
  row(obj, now) {
    const o = obj as J;
    const clusterIP = s(list(o.spec?.clusterIPs)[0] ?? o.spec?.clusterIP) || '<none>';
    return [
      nameOf(o), s(o.spec?.type ?? 'ClusterIP'), clusterIP, serviceExternalIP(o),
      servicePorts(o.spec?.ports) || '<none>', ageOf(o, now), formatLabels(o.spec?.selector),
    ];
  },
};

function formatEndpoints(ep: J): string {
  const subsets = list(ep?.subsets);
  if (subsets.length === 0) return '<none>';
  const max = 3;
  const shown: string[] = [];
  let total = 0;
  for (const ss of subsets) {
    const addresses = list(ss?.addresses);
    const ports = list(ss?.ports);
    if (ports.length === 0) {
      // headless services may have no ports
      total += addresses.length;
      for (const a of addresses) if (shown.length < max) shown.push(s(a?.ip));
      continue;
    }
    for (const port of ports) {
      total += addresses.length;
      for (const a of addresses) if (shown.length < max) shown.push(joinHostPort(s(a?.ip), n(port?.port)));
    }
  }
  const text = shown.join(',');
  return total > max ? `${text} + ${total - max} more...` : text;
}

const endpoints: Printer = {
  columns: [nameCol(), str('Endpoints', 'The set of all endpoints is the union of all subsets.'), ageCol()],
  row: (obj, now) => [nameOf(obj), formatEndpoints(obj), ageOf(obj, now)],
};

const endpointSlice: Printer = {
  columns: [
    nameCol(),
    str('AddressType', 'addressType specifies the type of address carried by this EndpointSlice.'),
    str('Ports', 'ports specifies the list of network ports exposed by each endpoint in this slice.'),
    str('Endpoints', 'endpoints is a list of unique endpoints in this slice.'),
    ageCol(),
  ],
  row(obj, now) {
    const o = obj as J;
    const ports = list(o.ports).map((p) =>
      typeof p?.port === 'number' ? String(p.port) : p?.name !== undefined && p?.name !== null ? s(p.name) : '*');
    const addrs = list(o.endpoints).flatMap((e) => list(e?.addresses).map(s));
    return [nameOf(o), s(o.addressType), listWithMore(ports), listWithMore(addrs), ageOf(o, now)];
  },
};

function ingressHosts(rules: J): string {
  const all = list(rules);
  const max = 3;
  const hosts: string[] = [];
  let more = false;
  for (const rule of all) {
    if (hosts.length === max) more = true;
    if (!more && rule?.host) hosts.push(s(rule.host));
  }
  if (hosts.length === 0) return '*';
  return more ? `${hosts.join(',')} + ${all.length - max} more...` : hosts.join(',');
}

const ingress: Printer = {
  columns: [
    nameCol(),
    str('Class', 'The name of the IngressClass resource that should be used for additional configuration'),
    str('Hosts', 'Hosts that incoming requests are matched against before the ingress rule'),
    str('Address', 'Address is a list containing ingress points for the load-balancer'),
    str('Ports', 'Ports of TLS configurations that open'),
    ageCol(),
  ],
  row(obj, now) {
    const o = obj as J;
    return [
      nameOf(o), s(o.spec?.ingressClassName) || '<none>', ingressHosts(o.spec?.rules),
      loadBalancerIngress(o.status?.loadBalancer), list(o.spec?.tls).length ? '80, 443' : '80', ageOf(o, now),
    ];
  },
};

const ingressClass: Printer = {
  columns: [
    nameCol(),
    str('Controller', 'Controller that is responsible for handling this class'),
    str('Parameters', 'A reference to a resource with additional parameters'),
    ageCol(),
  ],
  row(obj, now) {
    const o = obj as J;
    const p = o.spec?.parameters;
    let parameters = '<none>';
    if (p) parameters = `${s(p.kind)}${p.apiGroup ? `.${p.apiGroup}` : ''}/${s(p.name)}`;
    return [nameOf(o), s(o.spec?.controller), parameters, ageOf(o, now)];
  },
};

const networkPolicy: Printer = {
  columns: [nameCol(), str('Pod-Selector', 'podSelector selects the pods to which this NetworkPolicy object applies.'), ageCol()],
  row: (obj, now) => [nameOf(obj), formatLabelSelector((obj as J).spec?.podSelector ?? {}), ageOf(obj, now)],
};

// ---------------------------------------------------------------------------------------------
// Events (core/v1 and events.k8s.io/v1 share the printer)

function eventSource(component: string, host: string): string {
  return host ? `${component}, ${host}` : component;
}

const event: Printer = {
  columns: [
    str('Last Seen', 'The time at which the most recent occurrence of this event was recorded.'),
    str('Type', 'Type of this event (Normal, Warning), new types could be added in the future'),
    str('Reason', 'This should be a short, machine understandable string that gives the reason for the transition into the object\'s current status.'),
    str('Object', 'The object that this event is about.'),
    wide('Subobject', 'If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].'),
    wide('Source', 'The component reporting this event. Should be a short machine understandable string.'),
    str('Message', 'A human-readable description of the status of this operation.'),
    wide('First Seen', 'The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)'),
    wide('Count', 'The number of times this event has occurred.'),
    nameCol(1),
  ],
  row(obj, now) {
    const e = obj as J;
    // events.k8s.io/v1 spells the core/v1 fields differently
    const eventsApi = 'regarding' in e || 'note' in e || 'deprecatedCount' in e || String(e.apiVersion ?? '').startsWith('events.k8s.io/');
    const involved = (eventsApi ? e.regarding : e.involvedObject) ?? {};
    const firstTimestamp = eventsApi ? e.deprecatedFirstTimestamp : e.firstTimestamp;
    const lastTimestamp = eventsApi ? e.deprecatedLastTimestamp : e.lastTimestamp;
    const source = (eventsApi ? e.deprecatedSource : e.source) ?? {};
    const reportingController = eventsApi ? e.reportingController : e.reportingComponent;
    const message = eventsApi ? e.note : e.message;
    let cnt = n(eventsApi ? e.deprecatedCount : e.count);

    const first = firstTimestamp ? age(firstTimestamp, now) : age(e.eventTime, now);
    let last = lastTimestamp ? age(lastTimestamp, now) : first;
    if (e.series) {
      last = age(e.series.lastObservedTime, now);
      cnt = n(e.series.count);
    } else if (cnt === 0) {
      cnt = 1; // singleton events of the new API have no count
    }
    const kind = s(involved.kind).toLowerCase();
    const target = involved.name ? `${kind}/${involved.name}` : kind;
    return [
      last, s(e.type), s(e.reason), target, s(involved.fieldPath),
      eventSource(s(source.component) || s(reportingController), s(source.host) || s(e.reportingInstance)),
      s(message).trim(), first, cnt, nameOf(e),
    ];
  },
};

// ---------------------------------------------------------------------------------------------
// Simple core kinds

const namespace: Printer = {
  columns: [nameCol(), str('Status', 'The status of the namespace'), ageCol()],
  row: (obj, now) => [nameOf(obj), s((obj as J).status?.phase), ageOf(obj, now)],
};

const configMap: Printer = {
  columns: [nameCol(), str('Data', 'Data contains the configuration data.'), ageCol()],
  row: (obj, now) => [nameOf(obj), count((obj as J).data) + count((obj as J).binaryData), ageOf(obj, now)],
};

const secret: Printer = {
  columns: [
    nameCol(),
    str('Type', 'Used to facilitate programmatic handling of secret data.'),
    str('Data', 'Data contains the secret data.'),
    ageCol(),
  ],
  row(obj, now) {
    const o = obj as J;
    // stringData is merged into data on write; count the union in case it has not been yet
    const keys = new Set([...Object.keys(o.data ?? {}), ...Object.keys(o.stringData ?? {})]);
    return [nameOf(o), s(o.type), keys.size, ageOf(o, now)];
  },
};

const serviceAccount: Printer = {
  columns: [nameCol(), str('Secrets', 'Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.'), ageCol()],
  row: (obj, now) => [nameOf(obj), list((obj as J).secrets).length, ageOf(obj, now)],
};

/** helper.GetAccessModesAsString: RWO, ROX, RWX, RWOP in that order, de-duplicated. */
function accessModes(modes: J): string {
  const set = new Set(list(modes));
  const out: string[] = [];
  if (set.has('ReadWriteOnce')) out.push('RWO');
  if (set.has('ReadOnlyMany')) out.push('ROX');
  if (set.has('ReadWriteMany')) out.push('RWX');
  if (set.has('ReadWriteOncePod')) out.push('RWOP');
  return out.join(',');
}

const BETA_STORAGE_CLASS_ANNOTATION = 'volume.beta.kubernetes.io/storage-class';

const persistentVolume: Printer = {
  columns: [
    nameCol(),
    str('Capacity', 'capacity is the description of the persistent volume\'s resources and capacity.'),
    str('Access Modes', 'accessModes contains all ways the volume can be mounted.'),
    str('Reclaim Policy', 'persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.'),
    str('Status', 'phase indicates if a volume is available, bound to a claim, or released by a claim.'),
    str('Claim', 'claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.'),
    str('StorageClass', 'StorageClass of the pv'),
    str('VolumeAttributesClass', 'VolumeAttributesClass of the pv'),
    str('Reason', 'reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.'),
    ageCol(),
    wide('VolumeMode', 'volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.'),
  ],
  row(obj, now) {
    const o = obj as J;
    const claim = o.spec?.claimRef ? `${s(o.spec.claimRef.namespace)}/${s(o.spec.claimRef.name)}` : '';
    const phase = o.metadata?.deletionTimestamp ? 'Terminating' : s(o.status?.phase);
    const storageClass = s(o.metadata?.annotations?.[BETA_STORAGE_CLASS_ANNOTATION] ?? o.spec?.storageClassName);
    return [
      nameOf(o), quantity(o.spec?.capacity?.storage), accessModes(o.spec?.accessModes),
      s(o.spec?.persistentVolumeReclaimPolicy), phase, claim, storageClass,
      s(o.spec?.volumeAttributesClassName ?? '<unset>'), s(o.status?.reason), ageOf(o, now),
      s(o.spec?.volumeMode ?? '<unset>'),
    ];
  },
};

const persistentVolumeClaim: Printer = {
  columns: [
    nameCol(),
    str('Status', 'phase represents the current phase of PersistentVolumeClaim.'),
    str('Volume', 'volumeName is the binding reference to the PersistentVolume backing this claim.'),
    str('Capacity', 'capacity represents the actual resources of the underlying volume.'),
    str('Access Modes', 'accessModes contains the actual access modes the volume backing the PVC has.'),
    str('StorageClass', 'StorageClass of the pvc'),
    str('VolumeAttributesClass', 'VolumeAttributesClass of the pvc'),
    ageCol(),
    wide('VolumeMode', 'volumeMode defines what type of volume is required by the claim.'),
  ],
  row(obj, now) {
    const o = obj as J;
    const phase = o.metadata?.deletionTimestamp ? 'Terminating' : s(o.status?.phase);
    const bound = !!o.spec?.volumeName;
    const storageClass = s(o.metadata?.annotations?.[BETA_STORAGE_CLASS_ANNOTATION] ?? o.spec?.storageClassName);
    return [
      nameOf(o), phase, s(o.spec?.volumeName),
      bound ? quantity(o.status?.capacity?.storage) : '', bound ? accessModes(o.status?.accessModes) : '',
      storageClass, s(o.spec?.volumeAttributesClassName ?? '<unset>'), ageOf(o, now),
      s(o.spec?.volumeMode ?? '<unset>'),
    ];
  },
};

const resourceQuota: Printer = {
  columns: [
    nameCol(),
    ageCol(),
    str('Request', 'Request represents a minimum amount of cpu/memory that a container may consume.'),
    str('Limit', 'Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.'),
  ],
  row(obj, now) {
    const o = obj as J;
    const hard = (o.status?.hard ?? {}) as Record<string, unknown>;
    const used = (o.status?.used ?? {}) as Record<string, unknown>;
    const requests: string[] = [];
    const limits: string[] = [];
    for (const resource of Object.keys(hard).sort()) { // SortableResourceNames: by name
      const piece = `${resource}: ${quantity(used[resource])}/${quantity(hard[resource])}`;
      const parts = resource.split('.');
      (parts.length > 1 && parts[0] === 'limits' ? limits : requests).push(piece);
    }
    return [nameOf(o), ageOf(o, now), requests.join(', '), limits.join(', ')];
  },
};

const replicationController: Printer = {
  columns: [
    nameCol(),
    int('Desired', 'Replicas is the number of desired replicas.'),
    int('Current', 'Replicas is the most recently observed number of replicas.'),
    int('Ready', 'The number of ready replicas for this replication controller.'),
    ageCol(),
    wide('Containers', CONTAINERS_DESCRIPTION),
    wide('Images', IMAGES_DESCRIPTION),
    wide('Selector', 'Selector is a label query over pods that should match the Replicas count.'),
  ],
  row(obj, now) {
    const o = obj as J;
    const [names, images] = containerCells(o.spec?.template?.spec);
    return [
      nameOf(o), n(o.spec?.replicas ?? 1), n(o.status?.replicas), n(o.status?.readyReplicas), ageOf(o, now),
      names, images, formatLabels(o.spec?.selector),
    ];
  },
};

const podTemplate: Printer = {
  columns: [
    nameCol(),
    str('Containers', CONTAINERS_DESCRIPTION),
    str('Images', IMAGES_DESCRIPTION),
    str('Pod Labels', 'The labels for the pod template.'),
  ],
  row(obj) {
    const o = obj as J;
    const [names, images] = containerCells(o.template?.spec);
    return [nameOf(o), names, images, formatLabels(o.template?.metadata?.labels)];
  },
};

const componentStatus: Printer = {
  columns: [
    nameCol(),
    str('Status', 'Status of the component conditions'),
    str('Message', 'Message of the component conditions'),
    str('Error', 'Error of the component conditions'),
  ],
  row(obj) {
    const o = obj as J;
    let status = 'Unknown';
    let message = '';
    let error = '';
    const c = list(o.conditions).find((x) => x?.type === 'Healthy');
    if (c) {
      status = c.status === 'True' ? 'Healthy' : 'Unhealthy';
      message = s(c.message);
      error = s(c.error);
    }
    return [nameOf(o), status, message, error];
  },
};

// ---------------------------------------------------------------------------------------------
// apps

const deployment: Printer = {
  columns: [
    nameCol(),
    str('Ready', 'Number of the pod with ready state'),
    str('Up-to-date', 'Total number of non-terminated pods targeted by this deployment that have the desired template spec.'),
    str('Available', 'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.'),
    ageCol(),
    wide('Containers', CONTAINERS_DESCRIPTION),
    wide('Images', IMAGES_DESCRIPTION),
    wide('Selector', 'Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.'),
  ],
  row(obj, now) {
    const o = obj as J;
    const [names, images] = containerCells(o.spec?.template?.spec);
    const selector = labelSelectorString(o.spec?.selector);
    return [
      nameOf(o), `${n(o.status?.readyReplicas)}/${n(o.spec?.replicas ?? 1)}`,
      n(o.status?.updatedReplicas), n(o.status?.availableReplicas), ageOf(o, now),
      names, images, selector === undefined ? '<invalid>' : selector,
    ];
  },
};

const replicaSet: Printer = {
  columns: [
    nameCol(),
    int('Desired', 'Replicas is the number of desired replicas.'),
    int('Current', 'Replicas is the most recently observed number of replicas.'),
    int('Ready', 'The number of ready replicas for this replica set.'),
    ageCol(),
    wide('Containers', CONTAINERS_DESCRIPTION),
    wide('Images', IMAGES_DESCRIPTION),
    wide('Selector', 'Selector is a label query over pods that should match the replica count.'),
  ],
  row(obj, now) {
    const o = obj as J;
    const [names, images] = containerCells(o.spec?.template?.spec);
    return [
      nameOf(o), n(o.spec?.replicas ?? 1), n(o.status?.replicas), n(o.status?.readyReplicas), ageOf(o, now),
      names, images, formatLabelSelector(o.spec?.selector),
    ];
  },
};

const statefulSet: Printer = {
  columns: [
    nameCol(),
    str('Ready', 'Number of the pod with ready state'),
    ageCol(),
    wide('Containers', CONTAINERS_DESCRIPTION),
    wide('Images', IMAGES_DESCRIPTION),
  ],
  row(obj, now) {
    const o = obj as J;
    const [names, images] = containerCells(o.spec?.template?.spec);
    return [nameOf(o), `${n(o.status?.readyReplicas)}/${n(o.spec?.replicas ?? 1)}`, ageOf(o, now), names, images];
  },
};

const daemonSet: Printer = {
  columns: [
    nameCol(),
    int('Desired', 'The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).'),
    int('Current', 'The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.'),
    int('Ready', 'The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.'),
    int('Up-to-date', 'The total number of nodes that are running updated daemon pod'),
    int('Available', 'The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)'),
    str('Node Selector', 'NodeSelector is a selector which must be true for the pod to fit on a node.'),
    ageCol(),
    wide('Containers', CONTAINERS_DESCRIPTION),
    wide('Images', IMAGES_DESCRIPTION),
    wide('Selector', 'A label query over pods that are managed by the daemon set.'),
  ],
  row(obj, now) {
    const o = obj as J;
    const st = o.status ?? {};
    const [names, images] = containerCells(o.spec?.template?.spec);
    return [
      nameOf(o), n(st.desiredNumberScheduled), n(st.currentNumberScheduled), n(st.numberReady),
      n(st.updatedNumberScheduled), n(st.numberAvailable), formatLabels(o.spec?.template?.spec?.nodeSelector),
      ageOf(o, now), names, images, formatLabelSelector(o.spec?.selector),
    ];
  },
};

/** GroupKind as `kind.group` lower-cased, or `kind` for the core group. */
function groupKindLower(apiVersion: string, kind: string): string {
  const slash = apiVersion.indexOf('/');
  const group = slash >= 0 ? apiVersion.slice(0, slash) : '';
  return (group ? `${kind}.${group}` : kind).toLowerCase();
}

const controllerRevision: Printer = {
  columns: [
    nameCol(),
    str('Controller', 'Controller of the object'),
    str('Revision', 'Revision indicates the revision of the state represented by Data.'),
    ageCol(),
  ],
  row(obj, now) {
    const o = obj as J;
    const ref = list(o.metadata?.ownerReferences).find((r) => r?.controller === true);
    let controller = '<none>';
    if (ref) {
      const gk = groupKindLower(s(ref.apiVersion), s(ref.kind));
      controller = gk ? `${gk}/${s(ref.name)}` : s(ref.name);
    }
    return [nameOf(o), controller, n(o.revision), ageOf(o, now)];
  },
};

// ---------------------------------------------------------------------------------------------
// batch

const job: Printer = {
  columns: [
    nameCol(),
    str('Status', 'Status of the job.'),
    str('Completions', 'The number of pods which reached phase Succeeded.'),
    str('Duration', 'Time required to complete the job.'),
    ageCol(),
    wide('Containers', CONTAINERS_DESCRIPTION),
    wide('Images', IMAGES_DESCRIPTION),
    wide('Selector', 'A label query over pods that should match the pod count.'),
  ],
  row(obj, now) {
    const o = obj as J;
    const succeeded = n(o.status?.succeeded);
    let completions: string;
    if (o.spec?.completions !== undefined && o.spec?.completions !== null) {
      completions = `${succeeded}/${n(o.spec.completions)}`;
    } else {
      const parallelism = n(o.spec?.parallelism);
      completions = parallelism > 1 ? `${succeeded}/1 of ${parallelism}` : `${succeeded}/1`;
    }
    let duration = '';
    const start = o.status?.startTime ? Date.parse(o.status.startTime) : NaN;
    if (!Number.isNaN(start)) {
      const end = o.status?.completionTime ? Date.parse(o.status.completionTime) : NaN;
      duration = humanDuration((Number.isNaN(end) ? now.getTime() : end) - start);
    }
    const conds = o.status?.conditions;
    let status: string;
    if (hasCondition(conds, 'Complete')) status = 'Complete';
    else if (hasCondition(conds, 'Failed')) status = 'Failed';
    else if (o.metadata?.deletionTimestamp) status = 'Terminating';
    else if (hasCondition(conds, 'Suspended')) status = 'Suspended';
    else if (hasCondition(conds, 'FailureTarget')) status = 'FailureTarget';
    else status = 'Running';
    const [names, images] = containerCells(o.spec?.template?.spec);
    return [nameOf(o), status, completions, duration, ageOf(o, now), names, images, formatLabelSelector(o.spec?.selector)];
  },
};

const cronJob: Printer = {
  columns: [
    nameCol(),
    str('Schedule', 'The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.'),
    str('Timezone', 'The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones.'),
    bool('Suspend', 'This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.'),
    int('Active', 'A list of pointers to currently running jobs.'),
    str('Last Schedule', 'Information when was the last time the job was successfully scheduled.'),
    ageCol(),
    wide('Containers', CONTAINERS_DESCRIPTION),
    wide('Images', IMAGES_DESCRIPTION),
    wide('Selector', 'A label query over pods that should match the pod count.'),
  ],
  row(obj, now) {
    const o = obj as J;
    const template = o.spec?.jobTemplate?.spec;
    const [names, images] = containerCells(template?.template?.spec);
    return [
      nameOf(o), s(o.spec?.schedule), s(o.spec?.timeZone ?? '<none>') || '<none>', boolPtr(o.spec?.suspend),
      list(o.status?.active).length, o.status?.lastScheduleTime ? age(o.status.lastScheduleTime, now) : '<none>',
      ageOf(o, now), names, images, formatLabelSelector(template?.selector),
    ];
  },
};

// ---------------------------------------------------------------------------------------------
// autoscaling

function metricTarget(spec: J, status: J, name: string): string {
  // Resource and ContainerResource metrics
  const target = spec?.target ?? {};
  if (target.averageValue !== undefined && target.averageValue !== null) {
    const current = status ? quantity(status.current?.averageValue) : '<unknown>';
    return `${name}: ${current}/${quantity(target.averageValue)}`;
  }
  const cur = status?.current?.averageUtilization;
  const current = status && cur !== undefined && cur !== null ? `${n(cur)}%` : '<unknown>';
  const t = target.averageUtilization;
  const want = t !== undefined && t !== null ? `${n(t)}%` : '<auto>';
  return `${name}: ${current}/${want}`;
}

function formatHPAMetrics(specs: J[], statuses: J[]): string {
  if (specs.length === 0) return '<none>';
  const out: string[] = [];
  specs.forEach((spec, i) => {
    const st = statuses[i];
    switch (spec?.type) {
      case 'External': {
        const target = spec.external?.target ?? {};
        if (target.averageValue !== undefined && target.averageValue !== null) {
          const cur = st?.external?.current?.averageValue;
          const current = st?.external && cur !== undefined && cur !== null ? quantity(cur) : '<unknown>';
          out.push(`${current}/${quantity(target.averageValue)} (avg)`);
        } else {
          const current = st?.external ? quantity(st.external.current?.value) : '<unknown>';
          out.push(`${current}/${quantity(target.value)}`);
        }
        break;
      }
      case 'Pods': {
        const current = st?.pods ? quantity(st.pods.current?.averageValue) : '<unknown>';
        out.push(`${current}/${quantity(spec.pods?.target?.averageValue)}`);
        break;
      }
      case 'Object': {
        const target = spec.object?.target ?? {};
        if (target.averageValue !== undefined && target.averageValue !== null) {
          const cur = st?.object?.current?.averageValue;
          const current = st?.object && cur !== undefined && cur !== null ? quantity(cur) : '<unknown>';
          out.push(`${current}/${quantity(target.averageValue)} (avg)`);
        } else {
          const current = st?.object ? quantity(st.object.current?.value) : '<unknown>';
          out.push(`${current}/${quantity(target.value)}`);
        }
        break;
      }
      case 'Resource':
        out.push(metricTarget(spec.resource, st?.resource, s(spec.resource?.name)));
        break;
      case 'ContainerResource':
        out.push(metricTarget(spec.containerResource, st?.containerResource, s(spec.containerResource?.name)));
        break;
      default:
        out.push('<unknown type>');
    }
  });
  const max = 2;
  if (out.length > max) return `${out.slice(0, max).join(', ')} + ${out.length - max} more...`;
  return out.join(', ');
}

/** autoscaling/v1 carries one CPU target; read it as the v2 metric it converts to. */
function hpaMetrics(o: J): [J[], J[]] {
  if (Array.isArray(o.spec?.metrics)) return [o.spec.metrics, list(o.status?.currentMetrics)];
  if (o.spec?.targetCPUUtilizationPercentage === undefined || o.spec?.targetCPUUtilizationPercentage === null) {
    return [[], []];
  }
  const specs = [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: o.spec.targetCPUUtilizationPercentage } } }];
  const cur = o.status?.currentCPUUtilizationPercentage;
  const statuses = cur === undefined || cur === null
    ? []
    : [{ type: 'Resource', resource: { name: 'cpu', current: { averageUtilization: cur } } }];
  return [specs, statuses];
}

const horizontalPodAutoscaler: Printer = {
  columns: [
    nameCol(),
    str('Reference', 'scaleTargetRef points to the target resource to scale, and is used to the pods for which metrics should be collected, as well as to actually change the replica count.'),
    str('Targets', 'metrics contains the specifications for which to use to calculate the desired replica count.'),
    str('MinPods', 'minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.'),
    str('MaxPods', 'maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up.'),
    str('Replicas', 'currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.'),
    ageCol(),
  ],
  row(obj, now) {
    const o = obj as J;
    const ref = o.spec?.scaleTargetRef ?? {};
    const [specs, statuses] = hpaMetrics(o);
    const min = o.spec?.minReplicas;
    return [
      nameOf(o), `${s(ref.kind)}/${s(ref.name)}`, formatHPAMetrics(specs, statuses),
      min === undefined || min === null ? '<unset>' : String(n(min)), n(o.spec?.maxReplicas),
      n(o.status?.currentReplicas), ageOf(o, now),
    ];
  },
};

// ---------------------------------------------------------------------------------------------
// coordination, policy, scheduling, storage, rbac, node, admission, certificates, flowcontrol

const lease: Printer = {
  columns: [nameCol(), str('Holder', 'holderIdentity contains the identity of the holder of a current lease.'), ageCol()],
  row: (obj, now) => [nameOf(obj), s((obj as J).spec?.holderIdentity), ageOf(obj, now)],
};

const podDisruptionBudget: Printer = {
  columns: [
    nameCol(),
    str('Min Available', 'The minimum number of pods that must be available.'),
    str('Max Unavailable', 'The maximum number of pods that may be unavailable.'),
    int('Allowed Disruptions', 'Calculated number of pods that may be disrupted at this time.'),
    ageCol(),
  ],
  row(obj, now) {
    const o = obj as J;
    const min = o.spec?.minAvailable;
    const max = o.spec?.maxUnavailable;
    return [
      nameOf(o), min === undefined || min === null ? 'N/A' : intOrString(min),
      max === undefined || max === null ? 'N/A' : intOrString(max), n(o.status?.disruptionsAllowed), ageOf(o, now),
    ];
  },
};

const priorityClass: Printer = {
  columns: [
    nameCol(),
    int('Value', 'value represents the integer value of this priority class.'),
    bool('Global-Default', 'globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class.'),
    ageCol(),
    str('PreemptionPolicy', 'preemptionPolicy is the Policy for preempting pods with lower priority.'),
  ],
  row: (obj, now) => {
    const o = obj as J;
    return [nameOf(o), n(o.value), !!o.globalDefault, ageOf(o, now), s(o.preemptionPolicy)];
  },
};

const runtimeClass: Printer = {
  columns: [nameCol(), str('Handler', 'handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class.'), ageCol()],
  row: (obj, now) => [nameOf(obj), s((obj as J).handler), ageOf(obj, now)],
};

function isDefaultClass(o: J, annotations: string[]): boolean {
  const a = o?.metadata?.annotations ?? {};
  return annotations.some((k) => a[k] === 'true');
}

const storageClass: Printer = {
  columns: [
    nameCol(),
    str('Provisioner', 'provisioner indicates the type of the provisioner.'),
    str('ReclaimPolicy', 'reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class.'),
    str('VolumeBindingMode', 'volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.'),
    str('AllowVolumeExpansion', 'allowVolumeExpansion shows whether the storage class allow volume expand.'),
    ageCol(),
  ],
  row(obj, now) {
    const o = obj as J;
    const isDefault = isDefaultClass(o, ['storageclass.kubernetes.io/is-default-class', 'storageclass.beta.kubernetes.io/is-default-class']);
    return [
      nameOf(o) + (isDefault ? ' (default)' : ''), s(o.provisioner), s(o.reclaimPolicy ?? 'Delete'),
      s(o.volumeBindingMode ?? 'Immediate'), !!o.allowVolumeExpansion, ageOf(o, now),
    ];
  },
};

const volumeAttributesClass: Printer = {
  columns: [nameCol(), str('DriverName', 'Name of the CSI driver'), ageCol()],
  row(obj, now) {
    const o = obj as J;
    const isDefault = isDefaultClass(o, ['storage.kubernetes.io/is-default-class']);
    return [nameOf(o) + (isDefault ? ' (default)' : ''), s(o.driverName), ageOf(o, now)];
  },
};

const volumeAttachment: Printer = {
  columns: [
    nameCol(),
    { ...str('Attacher', 'attacher indicates the name of the volume driver that MUST handle this request.'), format: 'name' },
    str('PV', 'persistentVolumeName represents the name of the persistent volume to attach.'),
    str('Node', 'nodeName represents the node that the volume should be attached to.'),
    bool('Attached', 'attached indicates the volume is successfully attached.'),
    ageCol(),
  ],
  row(obj, now) {
    const o = obj as J;
    return [
      nameOf(o), s(o.spec?.attacher), s(o.spec?.source?.persistentVolumeName), s(o.spec?.nodeName),
      !!o.status?.attached, ageOf(o, now),
    ];
  },
};

const csiDriver: Printer = {
  columns: [
    nameCol(),
    bool('AttachRequired', 'attachRequired indicates this CSI volume driver requires an attach operation.'),
    bool('PodInfoOnMount', 'podInfoOnMount indicates this CSI volume driver requires additional pod information during mount operations.'),
    bool('StorageCapacity', 'storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity.'),
    str('TokenRequests', 'tokenRequests indicates the CSI driver needs pods\' service account tokens it is mounting volume for to do necessary authentication.'),
    bool('RequiresRepublish', 'requiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume.'),
    str('Modes', 'volumeLifecycleModes defines what kind of volumes this CSI volume driver supports.'),
    ageCol(),
  ],
  row(obj, now) {
    const o = obj as J;
    const sp = o.spec ?? {};
    const modes = list(sp.volumeLifecycleModes).map(s).join(',') || '<none>';
    const tokenRequests = Array.isArray(sp.tokenRequests)
      ? sp.tokenRequests.map((t: J) => s(t?.audience)).join(',')
      : '<unset>';
    return [
      nameOf(o), sp.attachRequired ?? true, !!sp.podInfoOnMount, !!sp.storageCapacity,
      tokenRequests, !!sp.requiresRepublish, modes, ageOf(o, now),
    ];
  },
};

const csiNode: Printer = {
  columns: [nameCol(), int('Drivers', 'Drivers indicates the number of CSI drivers registered on the node'), ageCol()],
  row: (obj, now) => [nameOf(obj), list((obj as J).spec?.drivers).length, ageOf(obj, now)],
};

const csiStorageCapacity: Printer = {
  columns: [
    nameCol(),
    str('StorageClassName', 'storageClassName represents the name of the StorageClass that the reported capacity applies to.'),
    str('Capacity', 'capacity is the value reported by the CSI driver in its GetCapacityResponse for a GetCapacityRequest with topology and parameters that match the previous fields.'),
  ],
  row(obj) {
    const o = obj as J;
    return [nameOf(o), s(o.storageClassName), o.capacity === undefined || o.capacity === null ? '<unset>' : s(o.capacity)];
  },
};

function subjects(list_: J): [string, string, string] {
  const users: string[] = [];
  const groups: string[] = [];
  const sas: string[] = [];
  for (const sub of list(list_)) {
    if (sub?.kind === 'ServiceAccount') sas.push(`${s(sub.namespace)}/${s(sub.name)}`);
    else if (sub?.kind === 'User') users.push(s(sub.name));
    else if (sub?.kind === 'Group') groups.push(s(sub.name));
  }
  return [users.join(', '), groups.join(', '), sas.join(', ')];
}

function bindingPrinter(what: string): Printer {
  return {
    columns: [
      nameCol(),
      str('Role', 'RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.'),
      ageCol(),
      wide('Users', `Users in the ${what}`),
      wide('Groups', `Groups in the ${what}`),
      wide('ServiceAccounts', `ServiceAccounts in the ${what}`),
    ],
    row(obj, now) {
      const o = obj as J;
      return [nameOf(o), `${s(o.roleRef?.kind)}/${s(o.roleRef?.name)}`, ageOf(o, now), ...subjects(o.subjects)];
    },
  };
}

function webhookConfiguration(): Printer {
  return {
    columns: [nameCol(), int('Webhooks', 'Webhooks indicates the number of webhooks registered in this configuration'), ageCol()],
    row: (obj, now) => [nameOf(obj), list((obj as J).webhooks).length, ageOf(obj, now)],
  };
}

function admissionPolicy(countField: 'validations' | 'mutations', column: string, description: string): Printer {
  return {
    columns: [
      nameCol(),
      int(column, description),
      str('ParamKind', 'ParamKind specifies the kind of resources used to parameterize this policy'),
      ageCol(),
    ],
    row(obj, now) {
      const o = obj as J;
      const pk = o.spec?.paramKind;
      return [nameOf(o), list(o.spec?.[countField]).length, pk ? `${s(pk.apiVersion)}/${s(pk.kind)}` : '<unset>', ageOf(o, now)];
    },
  };
}

function admissionPolicyBinding(): Printer {
  return {
    columns: [
      nameCol(),
      str('PolicyName', 'PolicyName indicates the policy definition which the policy binding binded to'),
      str('ParamRef', 'ParamRef indicates the param resource which sets the configration param'),
      ageCol(),
    ],
    row(obj, now) {
      const o = obj as J;
      const pr = o.spec?.paramRef;
      let param = '<unset>';
      if (pr?.name) param = pr.namespace ? `${pr.namespace}/${pr.name}` : `*/${pr.name}`;
      else if (pr?.selector) param = formatLabelSelector(pr.selector);
      return [nameOf(o), s(o.spec?.policyName), param, ageOf(o, now)];
    },
  };
}

const certificateSigningRequest: Printer = {
  columns: [
    nameCol(),
    ageCol(),
    str('SignerName', 'Requested signer for the request.'),
    str('Requestor', 'Base64-encoded PKCS#10 CSR data'),
    str('RequestedDuration', 'expirationSeconds is the requested duration of validity of the issued certificate.'),
    str('Condition', 'Conditions applied to the request, such as approval or denial.'),
  ],
  row(obj, now) {
    const o = obj as J;
    let approved = false;
    let denied = false;
    let failed = false;
    for (const c of list(o.status?.conditions)) {
      if (c?.type === 'Approved') approved = true;
      else if (c?.type === 'Denied') denied = true;
      else if (c?.type === 'Failed') failed = true;
    }
    let status = denied ? 'Denied' : approved ? 'Approved' : 'Pending';
    if (failed) status += ',Failed';
    if (o.status?.certificate) status += ',Issued';
    const exp = o.spec?.expirationSeconds;
    return [
      nameOf(o), ageOf(o, now), s(o.spec?.signerName) || '<none>', s(o.spec?.username),
      exp === undefined || exp === null ? '<none>' : humanDuration(n(exp) * 1000), status,
    ];
  },
};

const flowSchema: Printer = {
  columns: [
    nameCol(),
    str('PriorityLevel', '`name` is the name of the priority level configuration being referenced Required.'),
    str('MatchingPrecedence', '`matchingPrecedence` is used to choose among the FlowSchemas that match a given request.'),
    str('DistinguisherMethod', '`distinguisherMethod` defines how to compute the flow distinguisher for requests that match this schema.'),
    ageCol(),
    str('MissingPL', 'references a broken or non-existent PriorityLevelConfiguration'),
  ],
  row(obj, now) {
    const o = obj as J;
    const dangling = list(o.status?.conditions).find((c) => c?.type === 'Dangling');
    return [
      nameOf(o), s(o.spec?.priorityLevelConfiguration?.name), n(o.spec?.matchingPrecedence),
      o.spec?.distinguisherMethod ? s(o.spec.distinguisherMethod.type) : '<none>', ageOf(o, now),
      dangling ? s(dangling.status) : '?',
    ];
  },
};

const priorityLevelConfiguration: Printer = {
  columns: [
    nameCol(),
    str('Type', '`type` indicates whether this priority level is subject to limitation on request execution.'),
    str('NominalConcurrencyShares', '`nominalConcurrencyShares` (NCS) contributes to the computation of the NominalConcurrencyLimit (NominalCL) of this level.'),
    str('Queues', '`queues` is the number of queues for this priority level.'),
    str('HandSize', '`handSize` is a small positive number that configures the shuffle sharding of requests into queues.'),
    str('QueueLengthLimit', '`queueLengthLimit` is the maximum number of requests allowed to be waiting in a given queue of this priority level at a time.'),
    ageCol(),
  ],
  row(obj, now) {
    const o = obj as J;
    let ncs: unknown = '<none>';
    let queues: unknown = '<none>';
    let handSize: unknown = '<none>';
    let queueLengthLimit: unknown = '<none>';
    const limited = o.spec?.limited;
    if (limited) {
      ncs = n(limited.nominalConcurrencyShares);
      const q = limited.limitResponse?.queuing;
      if (q) {
        queues = n(q.queues);
        handSize = n(q.handSize);
        queueLengthLimit = n(q.queueLengthLimit);
      }
    }
    return [nameOf(o), s(o.spec?.type), ncs, queues, handSize, queueLengthLimit, ageOf(o, now)];
  },
};

const serviceCIDR: Printer = {
  columns: [nameCol(), str('CIDRs', 'CIDRs defines the IP blocks in CIDR notation from which to assign service cluster IPs.'), ageCol()],
  row: (obj, now) => [nameOf(obj), list((obj as J).spec?.cidrs).map(s).join(','), ageOf(obj, now)],
};

const ipAddress: Printer = {
  columns: [nameCol(), str('ParentRef', 'ParentRef references the resource that an IPAddress is attached to.')],
  row(obj) {
    const o = obj as J;
    const ref = o.spec?.parentRef;
    let parent = '<none>';
    if (ref) {
      parent = (ref.group ? `${s(ref.resource)}.${s(ref.group)}` : s(ref.resource)).toLowerCase();
      if (ref.namespace) parent += `/${ref.namespace}`;
      parent += `/${s(ref.name)}`;
    }
    return [nameOf(o), parent];
  },
};

const scale: Printer = {
  columns: [
    str('Name', NAME_DESCRIPTION),
    int('Desired', 'replicas is the desired number of instances for the scaled object.'),
    int('Available', 'replicas is the actual number of observed instances of the scaled object.'),
    ageCol(),
  ],
  row: (obj, now) => [nameOf(obj), n((obj as J).spec?.replicas), n((obj as J).status?.replicas), ageOf(obj, now)],
};

// ---------------------------------------------------------------------------------------------
// Registry and the default for kinds without a printer

/** Table printers by Kind. */
export const printers: Record<string, Printer> = {
  Pod: pod,
  PodTemplate: podTemplate,
  PodDisruptionBudget: podDisruptionBudget,
  ReplicationController: replicationController,
  ReplicaSet: replicaSet,
  DaemonSet: daemonSet,
  Job: job,
  CronJob: cronJob,
  Service: service,
  Ingress: ingress,
  IngressClass: ingressClass,
  StatefulSet: statefulSet,
  Endpoints: endpoints,
  Node: node,
  Event: event,
  Namespace: namespace,
  Secret: secret,
  ServiceAccount: serviceAccount,
  PersistentVolume: persistentVolume,
  PersistentVolumeClaim: persistentVolumeClaim,
  ComponentStatus: componentStatus,
  Deployment: deployment,
  HorizontalPodAutoscaler: horizontalPodAutoscaler,
  ConfigMap: configMap,
  NetworkPolicy: networkPolicy,
  RoleBinding: bindingPrinter('roleBinding'),
  ClusterRoleBinding: bindingPrinter('clusterRoleBinding'),
  CertificateSigningRequest: certificateSigningRequest,
  Lease: lease,
  StorageClass: storageClass,
  VolumeAttributesClass: volumeAttributesClass,
  ControllerRevision: controllerRevision,
  ResourceQuota: resourceQuota,
  PriorityClass: priorityClass,
  RuntimeClass: runtimeClass,
  VolumeAttachment: volumeAttachment,
  EndpointSlice: endpointSlice,
  CSINode: csiNode,
  CSIDriver: csiDriver,
  CSIStorageCapacity: csiStorageCapacity,
  MutatingWebhookConfiguration: webhookConfiguration(),
  ValidatingWebhookConfiguration: webhookConfiguration(),
  ValidatingAdmissionPolicy: admissionPolicy('validations', 'Validations', 'Validations indicates the number of validation rules defined in this configuration'),
  ValidatingAdmissionPolicyBinding: admissionPolicyBinding(),
  MutatingAdmissionPolicy: admissionPolicy('mutations', 'Mutations', 'Mutation indicates the number of mutations rules defined in this configuration'),
  MutatingAdmissionPolicyBinding: admissionPolicyBinding(),
  FlowSchema: flowSchema,
  PriorityLevelConfiguration: priorityLevelConfiguration,
  ServiceCIDR: serviceCIDR,
  IPAddress: ipAddress,
  Scale: scale,
};

/** Columns for kinds without a printer (upstream's default table convertor). */
export const defaultColumns: TableColumn[] = [
  nameCol(),
  col('Created At', 'date', CREATION_DESCRIPTION),
];

/** Cells for kinds without a printer: the name and the creation time as RFC 3339 in UTC. */
export function defaultRow(obj: KObject, _now?: Date): unknown[] {
  const ts = obj.metadata?.creationTimestamp;
  const t = ts ? Date.parse(ts) : NaN;
  const created = Number.isNaN(t) ? '0001-01-01T00:00:00Z' : new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return [obj.metadata?.name ?? '', created];
}
