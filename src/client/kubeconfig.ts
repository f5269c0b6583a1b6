// Reads a kubeconfig file (the YAML kubectl uses) into RestClient options: the current (or named)
// context's cluster server and CA, and its user's token or client certificate.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse } from 'yaml';
import type { TransportOptions } from './transport.js';

interface Named<T> { name: string; [k: string]: unknown; cluster?: T; user?: T; context?: T }
interface Kubeconfig {
  'current-context'?: string;
  clusters?: Named<Record<string, unknown>>[];
  users?: Named<Record<string, unknown>>[];
  contexts?: Named<Record<string, unknown>>[];
}

export function loadKubeconfig(path: string, context?: string): TransportOptions {
  const text = readFileSync(path, 'utf8');
  const cfg = (parse(text) ?? {}) as Kubeconfig;
  const base = dirname(path);
  const file = (p: unknown): string => readFileSync(isAbsolute(String(p)) ? String(p) : resolve(base, String(p)), 'utf8');
  const b64 = (s: unknown): string => Buffer.from(String(s), 'base64').toString('utf8');

  const ctxName = context ?? cfg['current-context'];
  const ctx = cfg.contexts?.find((c) => c.name === ctxName)?.context
    ?? (ctxName === undefined && cfg.contexts?.length === 1 ? cfg.contexts[0]!.context : undefined);
  if (!ctx) throw new Error(`kubeconfig ${path}: context ${JSON.stringify(ctxName ?? '')} not found`);
  const cluster = cfg.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster) throw new Error(`kubeconfig ${path}: cluster ${JSON.stringify(ctx.cluster)} not found`);
  const user = ctx.user !== undefined ? cfg.users?.find((u) => u.name === ctx.user)?.user ?? {} : {};
  if (typeof cluster.server !== 'string') throw new Error(`kubeconfig ${path}: cluster ${JSON.stringify(ctx.cluster)} has no server`);

  const out: TransportOptions = { server: cluster.server };
  if (cluster['certificate-authority-data']) out.caPem = b64(cluster['certificate-authority-data']);
  else if (cluster['certificate-authority']) out.caPem = file(cluster['certificate-authority']);
  if (cluster['insecure-skip-tls-verify'] === true) out.insecureSkipTLSVerify = true;
  if (typeof user.token === 'string') out.token = user.token;
  else if (user.tokenFile ?? user['token-file']) out.token = file(user.tokenFile ?? user['token-file']).trim();
  if (user['client-certificate-data']) out.certPem = b64(user['client-certificate-data']);
  else if (user['client-certificate']) out.certPem = file(user['client-certificate']);
  if (user['client-key-data']) out.keyPem = b64(user['client-key-data']);
  else if (user['client-key']) out.keyPem = file(user['client-key']);
  return out;
}
