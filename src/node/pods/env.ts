// A container's environment, built the way the kubelet builds it (read upstream for semantics):
//
//   1. envFrom, in order: every key of the ConfigMap's `data` / the Secret's `data` (base64-decoded),
//      with the prefix; a missing source fails unless optional; keys that cannot be environment
//      variable names are skipped and reported (event InvalidEnvironmentVariableNames).
//   2. env, in order, each overriding what came before: `value` with $(VAR) references expanded
//      against the variables defined so far and the service variables (`$$` is a literal `$`;
//      unknown references stay as written); or `valueFrom` configMapKeyRef / secretKeyRef (optional
//      allowed), fieldRef (downward API), resourceFieldRef (with divisor).
//   3. service variables (FOO_SERVICE_HOST …) not already defined.
//
// containerEnv() then lays that over the image's env the way the runtime does (containerd's CRI):
// `HOSTNAME` first when given, then the image env, container variables replacing image variables of
// the same name in place and the rest appended.
//
// Errors name what is missing in the kubelet's words (`configmap "y" not found`, `couldn't find key x
// in ConfigMap default/y`); they are ContainerConfigError, which the pod worker reports as the
// container's waiting reason CreateContainerConfigError.
import type { ConfigMap, Container, Pod, Secret } from 'kubernetes-types/core/v1.js';
import type { RestClient } from '../../client/rest-client.js';
import { isStatusError } from '../../machinery/status.js';
import { containerResourceValue, findContainer, podFieldValue } from '../volumes/downward-api.js';

const configMapsResource = { group: '', version: 'v1', plural: 'configmaps' };
const secretsResource = { group: '', version: 'v1', plural: 'secrets' };

/** A container's configuration cannot be built (waiting reason CreateContainerConfigError). */
export class ContainerConfigError extends Error {
  readonly reason = 'CreateContainerConfigError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ContainerConfigError';
  }
}

export interface ContainerEnvOptions {
  client: RestClient;
  /** the image config's Env, KEY=VALUE */
  imageEnv: string[];
  /** service link variables (already filtered by enableServiceLinks; KUBERNETES_* always) */
  serviceEnv?: Record<string, string>;
  /** pod IPs for status.podIP(s) (default: pod.status) */
  podIPs?: string[];
  /** node IPs for status.hostIP(s) (default: pod.status) */
  hostIPs?: string[];
  /** node allocatable, used for resourceFieldRef limits the container does not set */
  nodeAllocatable?: Record<string, string>;
  /** when set, `HOSTNAME=<hostname>` comes first, as the CRI runtimes add it */
  hostname?: string;
  /** called with the kubelet's InvalidEnvironmentVariableNames event message when envFrom skips keys */
  onInvalidKeys?: (message: string) => void;
}

/**
 * Whether a name can be an environment variable name: non-empty printable ASCII without '=' (the
 * rule of RelaxedEnvironmentVariableValidation, on by default since 1.32).
 */
export function isEnvVarName(name: string): boolean {
  return /^[\x20-\x3c\x3e-\x7e]+$/.test(name);
}

/**
 * Expands $(VAR) references as upstream's expansion package does: `$(NAME)` → lookup(NAME) when it is
 * defined, else left as written; `$$` → `$`; `$` before anything else, or an unclosed `$(`, is
 * kept literally.
 */
export function expandVars(input: string, lookup: (name: string) => string | undefined): string {
  let out = '';
  let checkpoint = 0;
  for (let i = 0; i < input.length; i++) {
    if (input[i] !== '$' || i + 1 >= input.length) continue;
    out += input.slice(checkpoint, i);
    const next = input[i + 1];
    let advance = 1;
    if (next === '$') {
      out += '$';
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close < 0) out += '$(';
      else {
        const name = input.slice(i + 2, close);
        const v = lookup(name);
        out += v === undefined ? `$(${name})` : v;
        advance = close - i;
      }
    } else {
      out += '$' + next;
    }
    i += advance;
    checkpoint = i + 1;
  }
  return out + input.slice(checkpoint);
}

/** A lookup over variable maps, first match wins (upstream's MappingFuncFor). */
export function lookupIn(...maps: (Map<string, string> | Record<string, string> | undefined)[]): (name: string) => string | undefined {
  return (name) => {
    for (const m of maps) {
      if (!m) continue;
      if (m instanceof Map) { if (m.has(name)) return m.get(name); }
      else if (Object.prototype.hasOwnProperty.call(m, name)) return m[name];
    }
    return undefined;
  };
}

/** The container's command and args with $(VAR) expanded against its variables (not the image's). */
export function expandCommandAndArgs(container: Container, vars: Map<string, string>): { command: string[]; args: string[] } {
  const look = lookupIn(vars);
  return {
    command: (container.command ?? []).map((s) => expandVars(s, look)),
    args: (container.args ?? []).map((s) => expandVars(s, look)),
  };
}

function notFoundMessage(kind: 'configmap' | 'secret', name: string): string {
  return `${kind} ${JSON.stringify(name)} not found`;
}

/**
 * The variables the pod spec defines for the container (steps 1–3 above), in definition order,
 * without the image's env. Use this for $(VAR) in command/args and subPathExpr.
 */
export async function containerVariables(pod: Pod, container: Container, o: Omit<ContainerEnvOptions, 'imageEnv' | 'hostname'>): Promise<Map<string, string>> {
  const ns = pod.metadata?.namespace ?? 'default';
  const configMaps = new Map<string, ConfigMap | null>();
  const secrets = new Map<string, Secret | null>();

  const getConfigMap = async (name: string): Promise<ConfigMap | null> => {
    if (configMaps.has(name)) return configMaps.get(name)!;
    let cm: ConfigMap | null;
    try {
      cm = (await o.client.get(configMapsResource, ns, name)) as unknown as ConfigMap;
    } catch (e) {
      if (!isStatusError(e, 'NotFound')) throw new ContainerConfigError(`failed to fetch configmap ${JSON.stringify(name)}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      cm = null;
    }
    configMaps.set(name, cm);
    return cm;
  };
  const getSecret = async (name: string): Promise<Secret | null> => {
    if (secrets.has(name)) return secrets.get(name)!;
    let s: Secret | null;
    try {
      s = (await o.client.get(secretsResource, ns, name)) as unknown as Secret;
    } catch (e) {
      if (!isStatusError(e, 'NotFound')) throw new ContainerConfigError(`failed to fetch secret ${JSON.stringify(name)}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      s = null;
    }
    secrets.set(name, s);
    return s;
  };
  const secretValue = (s: Secret, key: string): string | undefined => {
    const b64 = s.data?.[key];
    if (b64 !== undefined) return Buffer.from(b64, 'base64').toString('utf8');
    return (s as { stringData?: Record<string, string> }).stringData?.[key];
  };

  const vars = new Map<string, string>();

  // 1. envFrom
  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    let entries: [string, string][];
    let what: string;
    if (from.configMapRef) {
      const name = from.configMapRef.name ?? '';
      const cm = await getConfigMap(name);
      if (!cm) {
        if (from.configMapRef.optional) continue;
        throw new ContainerConfigError(notFoundMessage('configmap', name));
      }
      entries = Object.entries(cm.data ?? {});
      what = `configMap ${ns}/${name}`;
    } else if (from.secretRef) {
      const name = from.secretRef.name ?? '';
      const s = await getSecret(name);
      if (!s) {
        if (from.secretRef.optional) continue;
        throw new ContainerConfigError(notFoundMessage('secret', name));
      }
      const keys = new Set([...Object.keys(s.data ?? {}), ...Object.keys((s as { stringData?: object }).stringData ?? {})]);
      entries = [...keys].map((k) => [k, secretValue(s, k)!]);
      what = `secret ${ns}/${name}`;
    } else continue;
    const invalid: string[] = [];
    for (const [k, v] of entries) {
      const key = prefix + k;
      if (!isEnvVarName(key)) { invalid.push(key); continue; }
      vars.set(key, v);
    }
    if (invalid.length) {
      o.onInvalidKeys?.(`Keys [${invalid.sort().join(', ')}] from the EnvFrom ${what} were skipped since they are considered invalid environment variable names.`);
    }
  }

  // 2. env
  const serviceEnv = o.serviceEnv ?? {};
  const look = lookupIn(vars, serviceEnv);
  for (const ev of container.env ?? []) {
    let value = ev.value ?? '';
    if (value !== '') {
      value = expandVars(value, look);
    } else if (ev.valueFrom) {
      const vf = ev.valueFrom;
      try {
        if (vf.fieldRef) {
          value = podFieldValue(pod, vf.fieldRef.fieldPath, { podIPs: o.podIPs, hostIPs: o.hostIPs });
        } else if (vf.resourceFieldRef) {
          const cname = vf.resourceFieldRef.containerName;
          const c = cname ? findContainer(pod, cname) : container;
          if (!c) throw new ContainerConfigError(`container ${cname} not found`);
          value = containerResourceValue(vf.resourceFieldRef, c, o.nodeAllocatable);
        } else if (vf.configMapKeyRef) {
          const { name = '', key, optional } = vf.configMapKeyRef;
          const cm = await getConfigMap(name);
          if (!cm) {
            if (optional) continue;
            throw new ContainerConfigError(notFoundMessage('configmap', name));
          }
          const v = cm.data && Object.prototype.hasOwnProperty.call(cm.data, key) ? cm.data[key] : undefined;
          if (v === undefined) {
            if (optional) continue;
            throw new ContainerConfigError(`couldn't find key ${key} in ConfigMap ${ns}/${name}`);
          }
          value = v;
        } else if (vf.secretKeyRef) {
          const { name = '', key, optional } = vf.secretKeyRef;
          const s = await getSecret(name);
          if (!s) {
            if (optional) continue;
            throw new ContainerConfigError(notFoundMessage('secret', name));
          }
          const v = secretValue(s, key);
          if (v === undefined) {
            if (optional) continue;
            throw new ContainerConfigError(`couldn't find key ${key} in Secret ${ns}/${name}`);
          }
          value = v;
        }
      } catch (e) {
        if (e instanceof ContainerConfigError) throw e;
        throw new ContainerConfigError(e instanceof Error ? e.message : String(e), { cause: e });
      }
    }
    vars.set(ev.name, value);
  }

  // 3. service variables not already defined
  for (const [k, v] of Object.entries(serviceEnv)) if (!vars.has(k)) vars.set(k, v);
  return vars;
}

/**
 * The container's final environment as KEY=VALUE strings: `HOSTNAME` (when given), the image env,
 * then the pod spec's variables (replacing same-named image variables in place, others appended).
 * Throws ContainerConfigError when a referenced ConfigMap/Secret/key is missing and not optional.
 */
export async function containerEnv(pod: Pod, container: Container, o: ContainerEnvOptions): Promise<string[]> {
  const vars = await containerVariables(pod, container, o);
  return mergeEnv([...(o.hostname !== undefined ? [`HOSTNAME=${o.hostname}`] : []), ...o.imageEnv], vars);
}

/** Lays vars over a KEY=VALUE list: same name → replaced in place (last one wins), new names appended. */
export function mergeEnv(base: string[], vars: Map<string, string> | Record<string, string>): string[] {
  const out: string[] = [];
  const index = new Map<string, number>();
  const add = (k: string, line: string): void => {
    const i = index.get(k);
    if (i === undefined) { index.set(k, out.length); out.push(line); } else out[i] = line;
  };
  for (const line of base) {
    const eq = line.indexOf('=');
    add(eq < 0 ? line : line.slice(0, eq), line);
  }
  for (const [k, v] of vars instanceof Map ? vars : Object.entries(vars)) add(k, `${k}=${v}`);
  return out;
}
