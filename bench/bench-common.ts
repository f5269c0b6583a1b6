// Helpers shared by the API server bench and its load generator: the ConfigMap every bench writes,
// the JSON the server stores for it, percentiles and formatting.

/** the data block of every bench ConfigMap: ~1 KiB, a typical small configuration file */
const DATA: Record<string, string> = {
  'app.properties': Array.from({ length: 16 }, (_, i) => `setting.${i}=value-${i}-${'x'.repeat(40)}`).join('\n'),
  mode: 'bench',
};

/** the body a client POSTs to /api/v1/namespaces/NS/configmaps */
export function configMapBody(name: string, namespace: string): string {
  return JSON.stringify({
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: { name, namespace, labels: { app: 'bench', tier: 'config' } },
    data: DATA,
  });
}

/** the value the API server keeps in its store for that ConfigMap (what etcd and the SQLite floor write) */
export function storedConfigMap(name: string, namespace: string): string {
  return JSON.stringify({
    apiVersion: 'v1', kind: 'ConfigMap',
    metadata: {
      name, namespace, uid: crypto.randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      labels: { app: 'bench', tier: 'config' },
    },
    data: DATA,
  });
}

/** the store key kube-apiserver (and kyb) use for a ConfigMap */
export function configMapKey(name: string, namespace: string): string {
  return `/registry/core/configmaps/${namespace}/${name}`;
}

/** nearest-rank percentile of sorted samples */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
}

export interface LatencySummary { n: number; p50: number; p99: number; max: number }

export function summarize(samples: number[]): LatencySummary {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 0.5), p99: percentile(s, 0.99), max: s[s.length - 1] ?? NaN };
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** milliseconds, shown with a precision that suits their size */
export function ms(v: number): string {
  if (!Number.isFinite(v)) return '—';
  if (v < 1) return `${(v * 1000).toFixed(0)} µs`;
  if (v < 10) return `${v.toFixed(2)} ms`;
  if (v < 100) return `${v.toFixed(1)} ms`;
  return `${v.toFixed(0)} ms`;
}

export function rate(v: number): string {
  return Number.isFinite(v) ? `${v.toFixed(0)}/s` : '—';
}
