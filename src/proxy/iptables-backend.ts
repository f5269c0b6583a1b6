// The iptables backend, laid out as kube-proxy's iptables mode, under our own chain prefix P (the
// table name in upper case, e.g. KYBERNETES):
//
//   nat  PREROUTING, OUTPUT → P-SERVICES:  -d clusterIP -p proto --dport port → P-SVC-<hash>
//                                           -d externalIP/LB IP … → P-EXT-<hash>
//                                           (last) addrtype LOCAL → P-NODEPORTS: --dport nodePort → P-EXT-<hash>
//        P-EXT-<hash>: → P-MARK-MASQ; → P-SVC-<hash>
//                      (externalTrafficPolicy Local: from the pod CIDR → P-SVC; src-type LOCAL →
//                      P-MARK-MASQ, P-SVC (kube-proxy's short-circuits); anything else → P-SVL, unmasqueraded)
//        P-SVC-<hash>: ClusterIP traffic from outside the pod CIDR → P-MARK-MASQ;
//                      (ClientIP) `recent --rcheck` per endpoint; `statistic --probability 1/(N-i)` → P-SEP-<hash>
//        P-SVL-<hash>: the same over this node's endpoints (internalTrafficPolicy Local: the ClusterIP
//                      rule jumps here; externalTrafficPolicy Local: P-EXT ends here)
//        P-SEP-<hash>: from the endpoint itself (hairpin) → P-MARK-MASQ; (ClientIP) `recent --set`; DNAT
//   nat  POSTROUTING → P-POSTROUTING: marked → clear the mark, MASQUERADE
//   filter INPUT, FORWARD, OUTPUT (ctstate NEW) → P-FILTER: destinations without endpoints → REJECT
//        (tcp-reset for TCP, icmp-port-unreachable for UDP); destinations of a Local policy without a
//        local endpoint → DROP (filter runs after nat, so short-circuited connections do not match)
//
// Chain names are at most 28 characters: P (≤ 10) + `-SVC-` + 12 base32 characters of a SHA-256 of
// the Service port (and endpoint). Every write is one `iptables-restore --noflush` (a `:CHAIN` line
// creates or empties just that chain). A delta rewrites the per-service chains that changed and
// edits the shared chains rule by rule (`-I P-SERVICES 1 …` / `-D P-SERVICES …`), so its cost does
// not grow with the number of Services the way a rewrite of P-SERVICES would. A full sync reads
// `iptables-save` to find hooks that are missing and chains of ours that are no longer wanted,
// then rewrites every chain of ours in one restore. Hooks into the built-in chains are inserted
// once (at the top) and never duplicated.
import { createHash } from 'node:crypto';
import { MASQ_MARK, checkTableName, type BackendOptions, type PlanChange, type ProxyBackend } from './backend.js';
import { mustRun, runCommand, type Runner } from './exec.js';
import { displayName, type ServicePortPlan } from './service-model.js';

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** The first n base32 characters of SHA-256(s). */
export function hashName(s: string, n = 12): string {
  const d = createHash('sha256').update(s).digest();
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const byte of d) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < n) { out += B32[(acc >>> (bits - 5)) & 31]; bits -= 5; }
    if (out.length >= n) break;
    acc &= (1 << bits) - 1;
  }
  return out;
}

/** The iptables chain prefix for a table name. */
export function chainPrefix(tableName: string): string {
  checkTableName(tableName);
  return tableName.toUpperCase();
}

/** What one plan puts into iptables. */
export interface IptObjects {
  /** per-service nat chains → rule specs (what follows `-A CHAIN`) */
  chains: Map<string, string[]>;
  /** specs in P-SERVICES, P-NODEPORTS (nat) and P-FILTER (filter) */
  services: string[];
  nodePorts: string[];
  filter: string[];
}

const q = (s: string): string => `"${s}"`;

export function iptObjects(P: string, p: ServicePortPlan, clusterCIDR: string): IptObjects {
  const o: IptObjects = { chains: new Map(), services: [], nodePorts: [], filter: [] };
  const name = displayName(p);
  const pr = p.protocol;
  const dests = [...p.clusterIPs, ...p.externalIPs];
  if (p.endpoints.length === 0) {
    const reject = `-j REJECT --reject-with ${pr === 'tcp' ? 'tcp-reset' : 'icmp-port-unreachable'}`;
    for (const ip of dests) o.filter.push(`-d ${ip}/32 -p ${pr} -m comment --comment ${q(`${name} has no endpoints`)} -m ${pr} --dport ${p.port} ${reject}`);
    if (p.nodePort !== undefined) o.filter.push(`-p ${pr} -m addrtype --dst-type LOCAL -m comment --comment ${q(`${name} has no endpoints`)} -m ${pr} --dport ${p.nodePort} ${reject}`);
    return o;
  }
  const h = hashName(p.key);
  const SVC = `${P}-SVC-${h}`;
  const SVL = `${P}-SVL-${h}`;
  const EXT = `${P}-EXT-${h}`;
  const MASQ = `${P}-MARK-MASQ`;
  const aff = p.affinityTimeoutSeconds;
  const local = p.internalLocal || p.externalLocal ? p.localEndpoints ?? [] : [];
  const hasExternal = p.externalIPs.length > 0 || p.nodePort !== undefined;
  const externalLocal = !!p.externalLocal && hasExternal;
  // see nft-backend.ts: the cluster chain also carries the Local policy's short-circuits
  const useCluster = !p.internalLocal || hasExternal;
  const useLocal = local.length > 0 && (!!p.internalLocal || externalLocal);
  type Ep = { ip: string; port: number; chain: string };
  const epOf = new Map<string, Ep>();
  const ep = (e: { ip: string; port: number }): Ep => {
    const k = `${e.ip}/${e.port}`;
    let v = epOf.get(k);
    if (!v) epOf.set(k, (v = { ...e, chain: `${P}-SEP-${hashName(`${p.key}/${k}`)}` }));
    return v;
  };
  const spread = (eps: Ep[]): string[] => {
    const rules = [`! -s ${clusterCIDR} -d ${p.clusterIP}/32 -p ${pr} -m comment --comment ${q(`${name} cluster IP`)} -m ${pr} --dport ${p.port} -j ${MASQ}`];
    if (aff) {
      for (const e of eps) rules.push(`-m comment --comment ${q(`${name} -> ${e.ip}:${e.port}`)} -m recent --rcheck --seconds ${aff} --reap --name ${e.chain} --mask 255.255.255.255 --rsource -j ${e.chain}`);
    }
    eps.forEach((e, i) => {
      const left = eps.length - i;
      const stat = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(11)}` : '';
      rules.push(`-m comment --comment ${q(`${name} -> ${e.ip}:${e.port}`)}${stat} -j ${e.chain}`);
    });
    return rules;
  };
  const clusterEps = useCluster ? p.endpoints.map(ep) : [];
  const localEps = useLocal ? local.map(ep) : [];
  for (const e of epOf.values()) {
    o.chains.set(e.chain, [
      `-s ${e.ip}/32 -m comment --comment ${q(name)} -j ${MASQ}`,
      `-p ${pr} -m comment --comment ${q(name)}${aff ? ` -m recent --set --name ${e.chain} --mask 255.255.255.255 --rsource` : ''} -m ${pr} -j DNAT --to-destination ${e.ip}:${e.port}`,
    ]);
  }
  if (useCluster) o.chains.set(SVC, spread(clusterEps));
  if (useLocal) o.chains.set(SVL, spread(localEps));
  if (hasExternal) {
    o.chains.set(EXT, externalLocal
      ? [
        `-s ${clusterCIDR} -m comment --comment ${q(`pod traffic for ${name} external destinations`)} -j ${SVC}`,
        `-m comment --comment ${q(`masquerade LOCAL traffic for ${name} external destinations`)} -m addrtype --src-type LOCAL -j ${MASQ}`,
        `-m comment --comment ${q(`route LOCAL traffic for ${name} external destinations`)} -m addrtype --src-type LOCAL -j ${SVC}`,
        ...(useLocal ? [`-j ${SVL}`] : []),
      ]
      : [`-m comment --comment ${q(`masquerade traffic for ${name} external destinations`)} -j ${MASQ}`, `-j ${SVC}`]);
  }
  const drop = (match: string): string => `${match} -j DROP`;
  for (const ip of p.clusterIPs) {
    if (!p.internalLocal) o.services.push(`-d ${ip}/32 -p ${pr} -m comment --comment ${q(`${name} cluster IP`)} -m ${pr} --dport ${p.port} -j ${SVC}`);
    else if (useLocal) o.services.push(`-d ${ip}/32 -p ${pr} -m comment --comment ${q(`${name} cluster IP`)} -m ${pr} --dport ${p.port} -j ${SVL}`);
    else o.filter.push(drop(`-d ${ip}/32 -p ${pr} -m comment --comment ${q(`${name} has no local endpoints`)} -m ${pr} --dport ${p.port}`));
  }
  for (const ip of p.externalIPs) {
    o.services.push(`-d ${ip}/32 -p ${pr} -m comment --comment ${q(`${name} external IP`)} -m ${pr} --dport ${p.port} -j ${EXT}`);
    // the filter hooks run after nat: short-circuited connections no longer have this destination
    if (externalLocal && !useLocal) o.filter.push(drop(`-d ${ip}/32 -p ${pr} -m comment --comment ${q(`${name} has no local endpoints`)} -m ${pr} --dport ${p.port}`));
  }
  if (p.nodePort !== undefined) {
    o.nodePorts.push(`-p ${pr} -m comment --comment ${q(`${name} node port`)} -m ${pr} --dport ${p.nodePort} -j ${EXT}`);
    if (externalLocal && !useLocal) o.filter.push(drop(`-p ${pr} -m addrtype --dst-type LOCAL -m comment --comment ${q(`${name} has no local endpoints`)} -m ${pr} --dport ${p.nodePort}`));
  }
  return o;
}

interface Hook { table: 'nat' | 'filter'; chain: string; spec: string }

function hooks(t: string, P: string): Hook[] {
  const portals = `-m comment --comment ${q(`${t} service portals`)} -j`;
  const filter = `-m conntrack --ctstate NEW -m comment --comment ${q(`${t} service portals`)} -j ${P}-FILTER`;
  return [
    { table: 'nat', chain: 'PREROUTING', spec: `${portals} ${P}-SERVICES` },
    { table: 'nat', chain: 'OUTPUT', spec: `${portals} ${P}-SERVICES` },
    { table: 'nat', chain: 'POSTROUTING', spec: `-m comment --comment ${q(`${t} postrouting rules`)} -j ${P}-POSTROUTING` },
    { table: 'filter', chain: 'INPUT', spec: filter },
    { table: 'filter', chain: 'FORWARD', spec: filter },
    { table: 'filter', chain: 'OUTPUT', spec: filter },
  ];
}

/** Chains of ours in each table, and rules elsewhere that jump into them, from iptables-save output. */
export interface SavedState {
  chains: { nat: Set<string>; filter: Set<string> };
  /** `-A CHAIN spec` lines in non-prefixed chains that jump to a prefixed chain */
  jumps: { nat: string[]; filter: string[] };
}

export function parseSave(text: string, P: string): SavedState {
  const st: SavedState = { chains: { nat: new Set(), filter: new Set() }, jumps: { nat: [], filter: [] } };
  let table = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) { table = line.slice(1).trim(); continue; }
    if (table !== 'nat' && table !== 'filter') continue;
    if (line.startsWith(':')) {
      const c = line.slice(1).split(' ')[0];
      if (c.startsWith(`${P}-`)) st.chains[table].add(c);
    } else if (line.startsWith('-A ')) {
      const chain = line.split(' ')[1];
      const j = / -j (\S+)/.exec(line);
      if (!chain.startsWith(`${P}-`) && j && j[1].startsWith(`${P}-`)) st.jumps[table].push(line);
    }
  }
  return st;
}

const STATIC_NAT = ['SERVICES', 'NODEPORTS', 'POSTROUTING', 'MARK-MASQ'];

/** One iptables-restore input replacing everything of ours with these plans. */
export function renderIptFull(t: string, plans: readonly ServicePortPlan[], clusterCIDR: string, saved: SavedState): string {
  const P = chainPrefix(t);
  const natChains = new Set(STATIC_NAT.map((c) => `${P}-${c}`));
  const rules: string[] = [
    `-A ${P}-MARK-MASQ -j MARK --or-mark ${`0x${MASQ_MARK.toString(16)}`}`,
    `-A ${P}-POSTROUTING -m mark ! --mark 0x${MASQ_MARK.toString(16)}/0x${MASQ_MARK.toString(16)} -j RETURN`,
    `-A ${P}-POSTROUTING -j MARK --xor-mark 0x${MASQ_MARK.toString(16)}`,
    `-A ${P}-POSTROUTING -m comment --comment ${q(`${t} service traffic requiring SNAT`)} -j MASQUERADE --random-fully`,
  ];
  const services: string[] = [];
  const nodePorts: string[] = [];
  const filter: string[] = [];
  for (const p of plans) {
    const o = iptObjects(P, p, clusterCIDR);
    for (const [c, specs] of o.chains) {
      natChains.add(c);
      for (const s of specs) rules.push(`-A ${c} ${s}`);
    }
    services.push(...o.services);
    nodePorts.push(...o.nodePorts);
    filter.push(...o.filter);
  }
  const stale = [...saved.chains.nat].filter((c) => !natChains.has(c));
  const staleFilter = [...saved.chains.filter].filter((c) => c !== `${P}-FILTER`);
  const missingHooks = (table: 'nat' | 'filter'): string[] => hooks(t, P)
    .filter((h) => h.table === table && !saved.jumps[table].some((l) => l === `-A ${h.chain} ${h.spec}`))
    .map((h) => `-I ${h.chain} 1 ${h.spec}`);
  return [
    '*nat',
    ...[...natChains, ...stale].map((c) => `:${c} - [0:0]`),
    ...rules,
    ...services.map((s) => `-A ${P}-SERVICES ${s}`),
    `-A ${P}-SERVICES -m comment --comment ${q(`${t} node ports; must be last`)} -m addrtype --dst-type LOCAL -j ${P}-NODEPORTS`,
    ...nodePorts.map((s) => `-A ${P}-NODEPORTS ${s}`),
    ...missingHooks('nat'),
    ...stale.map((c) => `-X ${c}`),
    'COMMIT',
    '*filter',
    `:${P}-FILTER - [0:0]`,
    ...staleFilter.map((c) => `:${c} - [0:0]`),
    ...filter.map((s) => `-A ${P}-FILTER ${s}`),
    ...missingHooks('filter'),
    ...staleFilter.map((c) => `-X ${c}`),
    'COMMIT',
    '',
  ].join('\n');
}

/** One iptables-restore input applying the changes on top of what their `old` plans programmed. */
export function renderIptDelta(t: string, changes: readonly PlanChange[], clusterCIDR: string): string {
  const P = chainPrefix(t);
  const declare: string[] = [];
  const rules: string[] = [];
  const natEdits: string[] = [];
  const filterEdits: string[] = [];
  const drop: string[] = [];
  for (const c of changes) {
    const o = c.old ? iptObjects(P, c.old, clusterCIDR) : undefined;
    const n = c.new ? iptObjects(P, c.new, clusterCIDR) : undefined;
    const diff = (chain: string, before: string[] = [], after: string[] = [], out: string[], insert: boolean): void => {
      const b = new Set(before);
      const a = new Set(after);
      for (const s of before) if (!a.has(s)) out.push(`-D ${chain} ${s}`);
      for (const s of after) if (!b.has(s)) out.push(insert ? `-I ${chain} 1 ${s}` : `-A ${chain} ${s}`);
    };
    // removals from the shared chains first, so no rule points at a chain about to be deleted
    diff(`${P}-SERVICES`, o?.services, n?.services, natEdits, true);
    diff(`${P}-NODEPORTS`, o?.nodePorts, n?.nodePorts, natEdits, false);
    diff(`${P}-FILTER`, o?.filter, n?.filter, filterEdits, false);
    for (const [chain, specs] of n?.chains ?? []) {
      const before = o?.chains.get(chain);
      if (before && before.join('\n') === specs.join('\n')) continue;
      declare.push(`:${chain} - [0:0]`);
      for (const s of specs) rules.push(`-A ${chain} ${s}`);
    }
    for (const chain of o?.chains.keys() ?? []) if (!n?.chains.has(chain)) { declare.push(`:${chain} - [0:0]`); drop.push(chain); }
  }
  if (!declare.length && !natEdits.length && !filterEdits.length) return '';
  // -D lines come before the -I lines that may re-add the same rule with another target chain
  natEdits.sort((a, b) => Number(b.startsWith('-D ')) - Number(a.startsWith('-D ')));
  filterEdits.sort((a, b) => Number(b.startsWith('-D ')) - Number(a.startsWith('-D ')));
  const out = ['*nat', ...declare, ...rules, ...natEdits, ...drop.map((c) => `-X ${c}`), 'COMMIT'];
  if (filterEdits.length) out.push('*filter', ...filterEdits, 'COMMIT');
  return `${out.join('\n')}\n`;
}

/** Restore input removing every hook, rule and chain with prefix P ('' when there is none). */
export function renderIptCleanup(saved: SavedState): string {
  const out: string[] = [];
  for (const table of ['nat', 'filter'] as const) {
    const chains = [...saved.chains[table]];
    const jumps = saved.jumps[table];
    if (!chains.length && !jumps.length) continue;
    out.push(`*${table}`, ...chains.map((c) => `:${c} - [0:0]`), ...jumps.map((l) => `-D ${l.slice(3)}`), ...chains.map((c) => `-X ${c}`), 'COMMIT');
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

export class IptablesBackend implements ProxyBackend {
  readonly name = 'iptables' as const;
  private readonly run: Runner;
  private readonly P: string;

  constructor(private readonly o: BackendOptions & { run?: Runner }) {
    this.P = chainPrefix(o.tableName);
    this.run = o.run ?? runCommand;
  }

  private async save(): Promise<SavedState> {
    const [nat, filter] = await Promise.all([
      mustRun(this.run, 'iptables-save', ['-t', 'nat']),
      mustRun(this.run, 'iptables-save', ['-t', 'filter']),
    ]);
    return parseSave(`${nat}\n${filter}`, this.P);
  }

  async fullSync(plans: readonly ServicePortPlan[]): Promise<void> {
    const saved = await this.save();
    await mustRun(this.run, 'iptables-restore', ['--noflush'], renderIptFull(this.o.tableName, plans, this.o.clusterCIDR, saved));
  }

  async deltaSync(changes: readonly PlanChange[]): Promise<void> {
    const input = renderIptDelta(this.o.tableName, changes, this.o.clusterCIDR);
    if (input) await mustRun(this.run, 'iptables-restore', ['--noflush'], input);
  }

  /** Removes our hooks and chains from the nat and filter tables; nothing of ours is fine. */
  static async cleanup(tableName: string, run: Runner = runCommand): Promise<void> {
    const P = chainPrefix(tableName);
    let text = '';
    for (const t of ['nat', 'filter']) {
      let r;
      try { r = await run('iptables-save', ['-t', t]); } catch { return; } // no iptables at all
      if (r.code !== 0) continue;
      text += `${r.stdout}\n`;
    }
    const input = renderIptCleanup(parseSave(text, P));
    if (input) await mustRun(run, 'iptables-restore', ['--noflush'], input);
  }
}
