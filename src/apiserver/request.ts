// Request info (what a URL names), body reading and decoding, and response helpers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { errors, StatusError } from '../machinery/status.js';
import type { KObject } from '../api/types.js';
import { decodeK8sProtobuf } from './protobuf.js';

export const MAX_BODY = 3 * 1024 * 1024;

export interface RequestInfo {
  /** 'api' or 'apis' for resource requests; undefined for non-resource paths */
  prefix?: 'api' | 'apis';
  group: string;
  version: string;
  namespace?: string;
  resource?: string;
  name?: string;
  subresource?: string;
  /** path segments after the group/version part */
  parts: string[];
}

/** Parse `/api/v1/namespaces/ns/pods/name/status` and friends. Returns undefined for non-API paths. */
export function parseRequestInfo(pathname: string): RequestInfo | undefined {
  const parts = pathname.split('/').filter((s) => s.length > 0);
  const segs = pathname.includes('%') ? parts.map(decodeURIComponent) : parts;
  if (segs.length === 0) return undefined;
  let group = '', version = '', rest: string[];
  if (segs[0] === 'api') {
    if (segs.length < 2) return { prefix: 'api', group: '', version: '', parts: [] };
    version = segs[1]; rest = segs.slice(2);
  } else if (segs[0] === 'apis') {
    if (segs.length < 3) return { prefix: 'apis', group: segs[1] ?? '', version: '', parts: [] };
    group = segs[1]; version = segs[2]; rest = segs.slice(3);
  } else return undefined;
  const info: RequestInfo = { prefix: segs[0] as 'api' | 'apis', group, version, parts: rest };
  if (rest.length === 0) return info;
  // namespaces/<ns>/<resource>... ; but /namespaces and /namespaces/<name>[/status|finalize] are the Namespace resource
  if (rest[0] === 'namespaces' && rest.length >= 3 && !(rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize'))) {
    info.namespace = rest[1];
    info.resource = rest[2];
    info.name = rest[3];
    info.subresource = rest.slice(4).join('/') || undefined;
  } else {
    info.resource = rest[0];
    info.name = rest[1];
    info.subresource = rest.slice(2).join('/') || undefined;
  }
  return info;
}

/** Read the request body up to MAX_BODY; 413 beyond. */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY) { req.resume(); reject(errors.tooLarge()); return; }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > MAX_BODY) { failed = true; reject(errors.tooLarge()); return; }
      chunks.push(c);
    });
    req.on('end', () => { if (!failed) resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)); });
    req.on('error', (e) => { if (!failed) { failed = true; reject(e); } });
  });
}

export function mediaType(req: IncomingMessage): string {
  const ct = req.headers['content-type'];
  if (!ct) return 'application/json';
  return ct.split(';')[0].trim().toLowerCase();
}

/** Decode a body as an object: JSON, YAML or Kubernetes protobuf, by Content-Type. */
export function decodeObject(body: Buffer, type: string): KObject {
  if (body.length === 0) throw errors.badRequest('the body of the request was empty');
  let v: unknown;
  if (type === 'application/vnd.kubernetes.protobuf') return decodeK8sProtobuf(body);
  if (type === 'application/json' || type === 'application/merge-patch+json' || type === 'application/json-patch+json' || type === 'application/strategic-merge-patch+json' || type === '*/*') {
    v = parseJson(body);
  } else if (type === 'application/yaml' || type === 'application/apply-patch+yaml' || type === 'application/x-yaml' || type === 'text/yaml') {
    v = parseYamlBody(body);
  } else {
    throw errors.unsupportedMediaType(type);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw errors.badRequest(`couldn't get version/kind; json parse error: json: cannot unmarshal ${Array.isArray(v) ? 'array' : typeof v} into Go value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }`);
  }
  return v as KObject;
}

export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw errors.badRequest(`couldn't get version/kind; json parse error: ${(e as Error).message}`);
  }
}

function parseYamlBody(body: Buffer): unknown {
  const text = body.toString('utf8');
  try {
    const docs = parseAllDocuments(text);
    const arr = Array.isArray(docs) ? docs : [docs];
    const real = arr.filter((d) => d.contents !== null);
    if (real.length > 1) throw new Error('multiple YAML documents are not allowed in one request');
    for (const d of arr) if (d.errors.length) throw d.errors[0];
    return parseYaml(text);
  } catch (e) {
    if (e instanceof StatusError) throw e;
    throw errors.badRequest(`error decoding YAML: ${(e as Error).message}`);
  }
}

/** Write a JSON response. */
export function sendJson(res: ServerResponse, code: number, body: unknown, contentType = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' });
  res.end(text);
}

export function sendStatusError(res: ServerResponse, err: StatusError): void {
  if (res.headersSent) { res.destroy(); return; }
  sendJson(res, err.code, err.toStatus());
}

export interface Accept {
  table: boolean;
  aggregatedDiscovery: boolean;
  /** the object asked for as metadata only (`as=PartialObjectMetadata` or `…List`, group meta.k8s.io) */
  partial?: { kind: 'PartialObjectMetadata' | 'PartialObjectMetadataList'; apiVersion: string };
  raw: string;
}

/**
 * What a resource request's Accept header asks for: the first JSON media type in it that this server
 * serves decides (a Table, metadata only, or the object itself), as upstream's negotiation takes the
 * first acceptable one. Protobuf alternatives are passed over: responses are JSON, which the clients
 * that offer protobuf list next.
 */
export function parseAccept(req: IncomingMessage): Accept {
  const raw = String(req.headers.accept ?? '');
  const items = raw.split(',').map((s) => s.trim().toLowerCase());
  const out: Accept = {
    raw,
    table: false,
    aggregatedDiscovery: items.some((s) => s.includes('g=apidiscovery.k8s.io') && s.includes('as=apigroupdiscoverylist')),
  };
  for (const item of items) {
    const [type, ...params] = item.split(';').map((p) => p.trim());
    if (type !== 'application/json' && type !== '*/*' && type !== 'application/*') continue;
    const p = new Map(params.map((x) => { const i = x.indexOf('='); return i < 0 ? [x, ''] : [x.slice(0, i).trim(), x.slice(i + 1).trim()]; }));
    const as = p.get('as');
    if (as === undefined) break; // the object itself
    if (p.get('g') !== 'meta.k8s.io') continue;
    const v = p.get('v');
    if (as === 'table') { out.table = true; break; }
    if ((as === 'partialobjectmetadata' || as === 'partialobjectmetadatalist') && (v === 'v1' || v === 'v1beta1')) {
      out.partial = { kind: as === 'partialobjectmetadata' ? 'PartialObjectMetadata' : 'PartialObjectMetadataList', apiVersion: `meta.k8s.io/${v}` };
      break;
    }
  }
  return out;
}
