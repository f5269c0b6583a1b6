// The downward API: values of a pod's own fields and of its containers' resources, as the kubelet
// hands them to containers through env vars (`valueFrom.fieldRef`, `valueFrom.resourceFieldRef`) and
// through downwardAPI / projected volume files. Shared by src/node/pods/env.ts and the volume manager
// so the two give the same text for the same field.
//
// Semantics follow upstream's fieldpath and resource helpers (read for behaviour, not copied):
// - `metadata.labels` / `metadata.annotations` print as `key="value"` lines sorted by key, the value
//   quoted like Go's %q, no trailing newline; `metadata.labels['k']` is one value ('' when absent).
// - `limits.cpu` is ceil(milliCPU / divisor.milli), memory-like resources ceil(bytes / divisor);
//   divisor defaults to 1; a limit the container does not set is the node's allocatable amount.
import type { Container, Pod, ResourceFieldSelector } from 'kubernetes-types/core/v1.js';
import { parseQuantity, type Quantity } from '../../machinery/quantity.js';

/** Go's strconv.Quote (what `%q` prints) for the strings labels and annotations hold. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    switch (ch) {
      case '"': out += '\\"'; continue;
      case '\\': out += '\\\\'; continue;
      case '\x07': out += '\\a'; continue;
      case '\b': out += '\\b'; continue;
      case '\f': out += '\\f'; continue;
      case '\n': out += '\\n'; continue;
      case '\r': out += '\\r'; continue;
      case '\t': out += '\\t'; continue;
      case '\v': out += '\\v'; continue;
    }
    if (cp < 0x80) {
      if (cp < 0x20 || cp === 0x7f) out += '\\x' + cp.toString(16).padStart(2, '0');
      else out += ch;
      continue;
    }
    // Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and U+0020 only.
    if (/^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(ch)) out += ch;
    else if (cp >= 0xd800 && cp <= 0xdfff) out += '\\ufffd';
    else if (cp < 0x10000) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += '\\U' + cp.toString(16).padStart(8, '0');
  }
  return out + '"';
}

/** Labels/annotations as the downward API prints them: sorted `k="v"` lines, no trailing newline. */
export function formatMap(m: Record<string, string> | undefined): string {
  const keys = Object.keys(m ?? {}).sort();
  return keys.map((k) => `${k}=${goQuote(m![k]!)}`).join('\n');
}

/** `metadata.labels['app']` → { path: 'metadata.labels', subscript: 'app' }. */
function splitSubscript(fieldPath: string): { path: string; subscript?: string } {
  if (!fieldPath.endsWith("']")) return { path: fieldPath };
  const i = fieldPath.indexOf("['");
  if (i < 0) return { path: fieldPath };
  return { path: fieldPath.slice(0, i), subscript: fieldPath.slice(i + 2, -2) };
}

export interface PodFieldContext {
  /** the pod's IPs (first is status.podIP); default pod.status.podIPs / podIP */
  podIPs?: string[];
  /** the node's IPs (first is status.hostIP); default pod.status.hostIPs / hostIP */
  hostIPs?: string[];
}

function podIPsOf(pod: Pod, ctx: PodFieldContext): string[] {
  if (ctx.podIPs?.length) return ctx.podIPs;
  const st = pod.status;
  const ips = (st?.podIPs ?? []).map((x) => x.ip).filter((x): x is string => !!x);
  if (ips.length) return ips;
  return st?.podIP ? [st.podIP] : [];
}

function hostIPsOf(pod: Pod, ctx: PodFieldContext): string[] {
  if (ctx.hostIPs?.length) return ctx.hostIPs;
  const st = pod.status;
  const ips = (st?.hostIPs ?? []).map((x) => x.ip).filter((x): x is string => !!x);
  if (ips.length) return ips;
  return st?.hostIP ? [st.hostIP] : [];
}

/**
 * The value of a pod field for the downward API. Supports metadata.name/namespace/uid,
 * metadata.labels/annotations (whole map or `['key']`), spec.nodeName, spec.serviceAccountName,
 * status.hostIP(s), status.podIP(s). Unknown paths throw `unsupported fieldPath: x` as upstream.
 */
export function podFieldValue(pod: Pod, fieldPath: string, ctx: PodFieldContext = {}): string {
  const meta = pod.metadata ?? {};
  const { path, subscript } = splitSubscript(fieldPath);
  if (subscript !== undefined) {
    if (path === 'metadata.labels') return meta.labels?.[subscript] ?? '';
    if (path === 'metadata.annotations') return meta.annotations?.[subscript] ?? '';
    throw new Error(`fieldPath ${JSON.stringify(fieldPath)} does not support subscript`);
  }
  switch (fieldPath) {
    case 'metadata.name': return meta.name ?? '';
    case 'metadata.namespace': return meta.namespace ?? '';
    case 'metadata.uid': return meta.uid ?? '';
    case 'metadata.labels': return formatMap(meta.labels);
    case 'metadata.annotations': return formatMap(meta.annotations);
    case 'spec.nodeName': return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? '';
    case 'status.podIP': return podIPsOf(pod, ctx)[0] ?? '';
    case 'status.podIPs': return podIPsOf(pod, ctx).join(',');
    case 'status.hostIP': return hostIPsOf(pod, ctx)[0] ?? '';
    case 'status.hostIPs': return hostIPsOf(pod, ctx).join(',');
  }
  throw new Error(`unsupported fieldPath: ${fieldPath}`);
}

/** Finds a container (app, init or ephemeral) by name. */
export function findContainer(pod: Pod, name: string): Container | undefined {
  const s = pod.spec;
  return s?.containers?.find((c) => c.name === name)
    ?? s?.initContainers?.find((c) => c.name === name)
    ?? (s?.ephemeralContainers?.find((c) => c.name === name) as Container | undefined);
}

function ceilDiv(a: bigint, b: bigint): bigint {
  if (b === 0n) throw new Error('divisor must be non-zero');
  // quantities here are non-negative
  const q = a / b;
  return q * b === a ? q : q + 1n;
}

/**
 * The value of a container resource for the downward API (`limits.cpu`, `requests.memory`,
 * `limits.ephemeral-storage`, `limits.hugepages-2Mi`, …). `nodeAllocatable` stands in for limits the
 * container does not set (as the kubelet does); without it an unset limit reads as 0.
 */
export function containerResourceValue(ref: ResourceFieldSelector, container: Container, nodeAllocatable: Record<string, string> = {}): string {
  const resource = ref.resource;
  const dot = resource.indexOf('.');
  const kind = resource.slice(0, dot);
  const name = resource.slice(dot + 1);
  if (dot < 0 || (kind !== 'limits' && kind !== 'requests')) throw new Error(`unsupported container resource : ${resource}`);
  const isCPU = name === 'cpu';
  const memoryLike = name === 'memory' || name === 'ephemeral-storage' || name.startsWith('hugepages-');
  if (!isCPU && !memoryLike) throw new Error(`unsupported container resource : ${resource}`);
  let text = container.resources?.[kind]?.[name];
  if (text === undefined && kind === 'limits') text = nodeAllocatable[name];
  const q: Quantity = text === undefined ? parseQuantity('0') : parseQuantity(String(text));
  const divisorText = ref.divisor === undefined || ref.divisor === null || String(ref.divisor) === '' ? '1' : String(ref.divisor);
  const divisor = parseQuantity(divisorText);
  if (divisor.isZero()) throw new Error(`invalid divisor ${divisorText} for ${resource}`);
  // CPU: ceil(milliValue / divisor.milliValue); memory-like: ceil(value / divisor.value) —
  // both computed exactly on the nano-unit counts, then rounded up.
  if (isCPU) return ceilDiv(BigInt(q.milliValue()), BigInt(divisor.milliValue())).toString();
  return ceilDiv(BigInt(q.value()), BigInt(divisor.value())).toString();
}
