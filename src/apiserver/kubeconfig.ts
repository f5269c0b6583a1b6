// The kubeconfig `kyb server` writes for its admin, shaped like the one k3s writes to
// /etc/rancher/k3s/k3s.yaml: one cluster, one user and one context, all named `default`.

import { closeSync, fchmodSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { stringify } from 'yaml';

export interface KubeconfigOptions {
  /** e.g. `https://127.0.0.1:6443` */
  server: string;
  /** PEM of the CA that signed the server's serving certificate. */
  caPem: string;
  token?: string;
  clientCertPem?: string;
  clientKeyPem?: string;
  /** Name of the cluster, user and context; `default` unless given. */
  name?: string;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

export function renderKubeconfig(opts: KubeconfigOptions): string {
  const name = opts.name ?? 'default';
  if ((opts.clientCertPem === undefined) !== (opts.clientKeyPem === undefined)) {
    throw new Error('renderKubeconfig: clientCertPem and clientKeyPem must be given together');
  }
  const user: Record<string, string> = {};
  if (opts.clientCertPem !== undefined && opts.clientKeyPem !== undefined) {
    user['client-certificate-data'] = b64(opts.clientCertPem);
    user['client-key-data'] = b64(opts.clientKeyPem);
  }
  if (opts.token !== undefined) user['token'] = opts.token;
  return stringify({
    apiVersion: 'v1',
    clusters: [{ cluster: { 'certificate-authority-data': b64(opts.caPem), server: opts.server }, name }],
    contexts: [{ context: { cluster: name, user: name }, name }],
    'current-context': name,
    kind: 'Config',
    preferences: {},
    users: [{ name, user }],
  });
}

/**
 * Writes a kubeconfig, creating parent directories. The mode is applied even when the file already
 * existed (and before the new content is written, so credentials are never readable under old bits).
 */
export function writeKubeconfig(path: string, content: string, mode = 0o600): void {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'w', mode);
  try {
    fchmodSync(fd, mode);
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
}
