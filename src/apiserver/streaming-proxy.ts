// The pod streaming subresources — `pods/{name}/log`, `exec`, `attach`, `portforward` — as the API
// server serves them: validate the request and the pod as upstream's pod registry does (container
// choice, bound node, options), then proxy it to the pod's node agent over that node's tunnel
// (src/apiserver/tunnel.ts) at kubelet's paths:
//   GET /containerLogs/{ns}/{pod}/{container}?follow&previous&tailLines&sinceSeconds&sinceTime&timestamps&limitBytes
//   /exec/{ns}/{pod}/{container}?command=…&stdin&stdout&stderr&tty      (WebSocket or SPDY upgrade)
//   /attach/{ns}/{pod}/{container}?stdin&stdout&stderr&tty               (WebSocket or SPDY upgrade)
//   /portForward/{ns}/{pod}                                             (WebSocket or SPDY upgrade)
// Plain requests go through http.request over a tunnel stream and their response is piped back as it
// arrives (nothing is buffered: `logs -f` shows each line when it is written). Upgrade requests are
// sent the same way; after the agent's 101 the two connections are spliced both ways, and any other
// answer (a Status error) is relayed and the connection closed. The exec/port-forward protocols
// themselves (WebSocket v5 channels, SPDY) are spoken by the agent, never here.
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { KObject, ResourceDef } from '../api/types.js';
import { findResource } from '../api/resources.js';
import { errors, field, StatusError, type FieldError } from '../machinery/status.js';
import { NODE_TUNNEL_PATH } from '../machinery/mux.js';
import type { Registry } from './registry.js';
import type { Authenticator, UserInfo } from './auth.js';
import { authorizeRequest, type RbacAuthorizer } from './rbac.js';
import { parseRequestInfo, type RequestInfo } from './request.js';
import { TunnelServer, writeStatusToSocket } from './tunnel.js';

export type SubresourceHandler = (req: IncomingMessage, res: ServerResponse, def: ResourceDef, info: RequestInfo, user: UserInfo) => Promise<void>;

export interface StreamingProxyOptions {
  registry: Registry;
  tunnels: TunnelServer;
  auth: Authenticator;
  /** RBAC for the upgraded requests (exec, attach, port-forward: `create` on pods/<verb>) */
  authorizer?: RbacAuthorizer;
}

type Verb = 'log' | 'exec' | 'attach' | 'portforward';
const CONNECT_VERBS = new Set<Verb>(['exec', 'attach', 'portforward']);

interface PodSpecLite {
  nodeName?: string;
  containers?: { name: string }[];
  initContainers?: { name: string }[];
  ephemeralContainers?: { name: string }[];
}

// Hop-by-hop and credential headers that are not forwarded to the agent.
const DROP_REQUEST_HEADERS = new Set(['host', 'authorization', 'proxy-authorization', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding']);
const DROP_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'trailer']);

export class StreamingProxy {
  private readonly registry: Registry;
  private readonly tunnels: TunnelServer;
  private readonly auth: Authenticator;
  private readonly authorizer: RbacAuthorizer | undefined;
  private readonly podsDef: ResourceDef;
  /** upgraded client connections being proxied, destroyed on close() */
  private readonly live = new Set<Duplex>();

  constructor(opts: StreamingProxyOptions) {
    this.registry = opts.registry;
    this.tunnels = opts.tunnels;
    this.auth = opts.auth;
    this.authorizer = opts.authorizer;
    this.podsDef = findResource('', 'v1', 'pods')!;
  }

  /** for ApiHandler's `subresourceHandlers`: the non-upgrade requests of the four subresources */
  get subresourceHandlers(): Record<string, SubresourceHandler> {
    return {
      'pods/log': (req, res, _def, info) => this.serveLog(req, res, info),
      'pods/exec': (req) => this.refuseWithoutUpgrade(req),
      'pods/attach': (req) => this.refuseWithoutUpgrade(req),
      'pods/portforward': (req) => this.refuseWithoutUpgrade(req),
    };
  }

  /** the HTTP server's 'upgrade' listener: node tunnels, and pod exec/attach/portforward */
  handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    this.upgrade(req, socket, head).catch((e) => {
      const err = e instanceof StatusError ? e : errors.internal((e as Error)?.message ?? String(e));
      if (!(e instanceof StatusError)) process.stderr.write(`apiserver: upgrade: ${(e as Error)?.stack ?? e}\n`);
      writeStatusToSocket(socket, err);
    });
  };

  /** destroy every proxied upgraded connection (server shutdown) */
  close(): void {
    for (const s of this.live) s.destroy();
    this.live.clear();
  }

  // ------------------------------------------------------------------ upgrades

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const requester = this.auth.authenticate(req);
    if (!requester) throw errors.unauthorized();
    const url = new URL(req.url ?? '/', 'http://x');
    const info = parseRequestInfo(url.pathname);
    const user = authorizeRequest(this.authorizer, requester, req, url.pathname, url.searchParams, () => info);
    if (url.pathname === NODE_TUNNEL_PATH) { this.tunnels.handleUpgrade(req, socket, head, user); return; }
    const verb = info?.subresource as Verb | undefined;
    if (!info || info.prefix !== 'api' || info.version !== 'v1' || info.resource !== 'pods' || !info.namespace || !info.name || !verb || !CONNECT_VERBS.has(verb)) {
      throw errors.badRequest(`upgrade requests are not supported for ${url.pathname}`);
    }
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'POST') throw errors.methodNotAllowed(`the server does not allow this method on the requested resource`);
    const target = await this.locate(verb, info.namespace, info.name, url.searchParams);
    this.proxyUpgrade(req, socket, head, target.node, target.path);
  }

  private proxyUpgrade(req: IncomingMessage, client: Duplex, head: Buffer, node: string, path: string): void {
    const upstream = this.tunnels.dial(node);
    this.live.add(client);
    client.on('close', () => this.live.delete(client));
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined && !DROP_REQUEST_HEADERS.has(k)) headers[k] = v;
    }
    headers.host = node;
    const preq = httpRequest({ method: req.method, path, headers, createConnection: () => upstream as never });
    let answered = false;
    preq.on('error', (e: Error) => {
      upstream.destroy();
      if (answered) { client.destroy(); return; }
      answered = true;
      writeStatusToSocket(client, errors.internal(`error proxying to the node agent of node ${node}: ${e.message}`));
    });
    client.on('close', () => preq.destroy());
    preq.on('upgrade', (res: IncomingMessage, up: Duplex, upHead: Buffer) => {
      answered = true;
      client.write(responseHead(res, false));
      if (upHead.length) client.write(upHead);
      if (head.length) up.write(head);
      splice(client, up);
    });
    preq.on('response', (res: IncomingMessage) => {
      // not switching protocols: relay the agent's answer (usually a Status) and close
      answered = true;
      client.write(responseHead(res, true));
      res.pipe(client);
      res.on('error', () => client.destroy());
    });
    preq.end();
  }

  private async refuseWithoutUpgrade(_req: IncomingMessage): Promise<void> {
    throw errors.badRequest('Upgrade request required');
  }

  // ------------------------------------------------------------------ logs

  private async serveLog(req: IncomingMessage, res: ServerResponse, info: RequestInfo): Promise<void> {
    if ((req.method ?? 'GET') !== 'GET') throw errors.methodNotAllowed('the server does not allow this method on the requested resource');
    const url = new URL(req.url ?? '/', 'http://x');
    const target = await this.locate('log', info.namespace!, info.name!, url.searchParams);
    const upstream = this.tunnels.dial(target.node);
    await new Promise<void>((resolve, reject) => {
      const preq = httpRequest({
        method: 'GET', path: target.path, headers: { host: target.node, accept: 'text/plain, */*' },
        createConnection: () => upstream as never,
      });
      preq.on('error', (e) => {
        if (res.headersSent) { res.destroy(); resolve(); return; }
        reject(errors.internal(`error reading the log from the node agent of node ${target.node}: ${e.message}`));
      });
      // the client went away (e.g. Ctrl-C on `logs -f`): stop the agent's reader too
      res.on('close', () => { if (!res.writableFinished) preq.destroy(); resolve(); });
      preq.on('response', (pres) => {
        const headers: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(pres.headers)) if (v !== undefined && !DROP_RESPONSE_HEADERS.has(k)) headers[k] = v;
        headers['cache-control'] = 'no-cache, private';
        res.writeHead(pres.statusCode ?? 502, headers);
        res.flushHeaders();
        pres.pipe(res);
        pres.on('end', resolve);
        pres.on('error', () => { res.destroy(); resolve(); });
      });
      preq.end();
    });
  }

  // ------------------------------------------------------------------ validation and location

  /** Validate a request for the pod's `verb` subresource; the node to reach and the kubelet path. */
  private async locate(verb: Verb, ns: string, name: string, q: URLSearchParams): Promise<{ node: string; path: string }> {
    // options are checked before the pod is fetched, as upstream decodes them first
    const logQuery = verb === 'log' ? logParams(name, q) : undefined;
    const pod = (await this.registry.get(this.podsDef, ns, name)).obj;
    const spec = (pod.spec ?? {}) as PodSpecLite;
    const phase = String((pod.status as { phase?: string } | undefined)?.phase ?? 'Pending');
    let container = '';
    if (verb !== 'portforward') container = chooseContainer(pod, q.get('container') ?? '');
    if (!spec.nodeName) throw errors.badRequest(`pod ${name} does not have a host assigned`);
    const e = encodeURIComponent;
    switch (verb) {
      case 'log':
        return { node: spec.nodeName, path: `/containerLogs/${e(ns)}/${e(name)}/${e(container)}${qs(logQuery!)}` };
      case 'exec':
      case 'attach': {
        if (phase === 'Succeeded' || phase === 'Failed') {
          throw errors.badRequest(verb === 'exec'
            ? `cannot exec into a container in a completed pod; current phase is ${phase}`
            : `cannot attach a container in a completed pod; current phase is ${phase}`);
        }
        const out = new URLSearchParams();
        if (verb === 'exec') {
          const command = q.getAll('command');
          if (command.length === 0) throw errors.badRequest('you must specify at least one command for the container');
          for (const c of command) out.append('command', c);
        }
        const flags = { stdin: boolParam(q, 'stdin'), stdout: boolParam(q, 'stdout'), stderr: boolParam(q, 'stderr'), tty: boolParam(q, 'tty') };
        if (!flags.stdin && !flags.stdout && !flags.stderr) throw errors.badRequest('you must specify at least 1 of stdin, stdout, stderr');
        for (const [k, v] of Object.entries(flags)) if (v) out.set(k, 'true');
        return { node: spec.nodeName, path: `/${verb}/${e(ns)}/${e(name)}/${e(container)}${qs(out)}` };
      }
      case 'portforward': {
        if (phase !== 'Running') throw errors.badRequest(`unable to forward port because pod is not running. Current status=${phase}`);
        const out = new URLSearchParams();
        for (const p of q.getAll('ports')) out.append('ports', p);
        return { node: spec.nodeName, path: `/portForward/${e(ns)}/${e(name)}${qs(out)}` };
      }
    }
  }
}

function qs(p: URLSearchParams): string {
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** Go's strconv.ParseBool, as query parameters are decoded upstream; absent = false */
function boolParam(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  if (v === null) return false;
  if (['1', 't', 'T', 'TRUE', 'true', 'True', ''].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw errors.badRequest(`invalid value ${JSON.stringify(v)} for parameter ${name}: strconv.ParseBool: parsing ${JSON.stringify(v)}: invalid syntax`);
}

function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^[+-]?\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw errors.badRequest(`invalid value ${JSON.stringify(v)} for parameter ${name}: strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax`);
  }
  return Number(v);
}

/** PodLogOptions from the query, validated as upstream (422 Invalid for bad values), as kubelet query */
export function logParams(podName: string, q: URLSearchParams): URLSearchParams {
  const follow = boolParam(q, 'follow');
  const previous = boolParam(q, 'previous');
  const timestamps = boolParam(q, 'timestamps');
  const tailLines = intParam(q, 'tailLines');
  const limitBytes = intParam(q, 'limitBytes');
  const sinceSeconds = intParam(q, 'sinceSeconds');
  const sinceTimeRaw = q.get('sinceTime') || undefined;
  let sinceTime: string | undefined;
  if (sinceTimeRaw !== undefined) {
    const d = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(sinceTimeRaw) ? new Date(sinceTimeRaw) : new Date(NaN);
    if (Number.isNaN(d.getTime())) {
      throw errors.badRequest(`invalid value ${JSON.stringify(sinceTimeRaw)} for parameter sinceTime: parsing time ${JSON.stringify(sinceTimeRaw)} as "2006-01-02T15:04:05Z07:00": cannot parse`);
    }
    sinceTime = sinceTimeRaw;
  }
  const errs: FieldError[] = [];
  if (tailLines !== undefined && tailLines < 0) errs.push(field.invalid('tailLines', tailLines, 'must be greater than or equal to 0'));
  if (limitBytes !== undefined && limitBytes < 1) errs.push(field.invalid('limitBytes', limitBytes, 'must be greater than 0'));
  if (sinceSeconds !== undefined && sinceTime !== undefined) errs.push(field.forbidden('', 'at most one of `sinceTime` or `sinceSeconds` may be specified'));
  else if (sinceSeconds !== undefined && sinceSeconds < 1) errs.push(field.invalid('sinceSeconds', sinceSeconds, 'must be greater than 0'));
  if (errs.length) throw errors.invalid('PodLogOptions', 'PodLogOptions', podName, errs);
  const out = new URLSearchParams();
  if (follow) out.set('follow', 'true');
  if (previous) out.set('previous', 'true');
  if (timestamps) out.set('timestamps', 'true');
  if (tailLines !== undefined) out.set('tailLines', String(tailLines));
  if (limitBytes !== undefined) out.set('limitBytes', String(limitBytes));
  if (sinceSeconds !== undefined) out.set('sinceSeconds', String(sinceSeconds));
  if (sinceTime !== undefined) out.set('sinceTime', sinceTime);
  return out;
}

/** upstream's container choice for log/exec/attach: the named one (must exist) or the only one */
export function chooseContainer(pod: KObject, container: string): string {
  const spec = (pod.spec ?? {}) as PodSpecLite;
  const name = pod.metadata?.name ?? '';
  const names = (l?: { name: string }[]) => (l ?? []).map((c) => c.name);
  if (container) {
    const all = [...names(spec.containers), ...names(spec.initContainers), ...names(spec.ephemeralContainers)];
    if (!all.includes(container)) throw errors.badRequest(`container ${container} is not valid for pod ${name}`);
    return container;
  }
  const cs = names(spec.containers);
  if (cs.length === 1) return cs[0];
  if (cs.length === 0) throw errors.badRequest(`a container name must be specified for pod ${name}`);
  let msg = `a container name must be specified for pod ${name}, choose one of: [${cs.join(' ')}]`;
  const init = names(spec.initContainers);
  if (init.length) msg += ` or one of the init containers: [${init.join(' ')}]`;
  const eph = names(spec.ephemeralContainers);
  if (eph.length) msg += ` or one of the ephemeral containers: [${eph.join(' ')}]`;
  throw errors.badRequest(msg);
}

/** the status line and headers of an agent's response, for relaying on a raw client connection */
function responseHead(res: IncomingMessage, close: boolean): string {
  let s = `HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}\r\n`;
  const raw = res.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    if (close && (DROP_RESPONSE_HEADERS.has(k) || k === 'content-length')) continue;
    s += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  if (close) s += 'Connection: close\r\n';
  return `${s}\r\n`;
}

/** pipe two connections into each other; when one closes, the other follows */
function splice(a: Duplex, b: Duplex): void {
  a.pipe(b);
  b.pipe(a);
  const destroyBoth = () => { a.destroy(); b.destroy(); };
  a.on('error', destroyBoth);
  b.on('error', destroyBoth);
  a.on('close', () => b.destroy());
  b.on('close', () => a.destroy());
}
