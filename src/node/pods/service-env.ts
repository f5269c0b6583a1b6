// Service environment variables for containers, as the kubelet makes them: for every Service with a
// cluster IP in the pod's namespace (all of them when enableServiceLinks is true, the default) and the
// `kubernetes` Service of the default namespace (always), `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT`,
// `<NAME>_SERVICE_PORT_<PORTNAME>` and the Docker-link style `<NAME>_PORT`, `<NAME>_PORT_<port>_<PROTO>`
// (+ `_PROTO`, `_PORT`, `_ADDR`). NAME is the Service name upper-cased with '-' turned into '_'.
// When two Services would set the same variable, the one in the pod's namespace wins.
import type { Pod, Service } from 'kubernetes-types/core/v1.js';

function hasClusterIP(s: Service): boolean {
  const ip = s.spec?.clusterIP;
  return !!ip && ip !== 'None' && s.spec?.type !== 'ExternalName';
}

function varsFor(s: Service, out: Record<string, string>): void {
  const name = (s.metadata?.name ?? '').toUpperCase().replace(/-/g, '_');
  const ip = s.spec!.clusterIP!;
  const ports = s.spec?.ports ?? [];
  if (!ports.length) return;
  out[`${name}_SERVICE_HOST`] = ip;
  out[`${name}_SERVICE_PORT`] = String(ports[0]!.port);
  for (const p of ports) {
    if (p.name) out[`${name}_SERVICE_PORT_${p.name.toUpperCase().replace(/-/g, '_')}`] = String(p.port);
  }
  const first = ports[0]!;
  const proto0 = (first.protocol ?? 'TCP').toLowerCase();
  out[`${name}_PORT`] = `${proto0}://${ip}:${first.port}`;
  for (const p of ports) {
    const proto = (p.protocol ?? 'TCP');
    const prefix = `${name}_PORT_${p.port}_${proto.toUpperCase()}`;
    out[prefix] = `${proto.toLowerCase()}://${ip}:${p.port}`;
    out[`${prefix}_PROTO`] = proto.toLowerCase();
    out[`${prefix}_PORT`] = String(p.port);
    out[`${prefix}_ADDR`] = ip;
  }
}

/** The service variables for a pod, from all Services the node knows. */
export function serviceEnvFor(pod: Pod, services: Service[]): Record<string, string> {
  const ns = pod.metadata?.namespace ?? 'default';
  const links = pod.spec?.enableServiceLinks !== false;
  const out: Record<string, string> = {};
  const master = services.find((s) => s.metadata?.namespace === 'default' && s.metadata?.name === 'kubernetes');
  // other namespaces' Services first, so the pod's own namespace overrides on a clash
  if (master && hasClusterIP(master) && ns !== 'default') varsFor(master, out);
  for (const s of services) {
    if (s.metadata?.namespace !== ns || !hasClusterIP(s)) continue;
    if (!links && !(ns === 'default' && s.metadata?.name === 'kubernetes')) continue;
    varsFor(s, out);
  }
  return out;
}
