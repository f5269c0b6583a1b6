// The interface between the ServiceProxy (which decides what should be programmed) and a rule
// backend (which knows how to say it to the kernel): nftables (nft-backend.ts) or iptables
// (iptables-backend.ts). Every call is one kernel transaction; the proxy serializes the calls.
import type { ServicePortPlan } from './service-model.js';

export type BackendName = 'nftables' | 'iptables';

/** One Service port changed: what is programmed now (old) and what should be (new). */
export interface PlanChange { key: string; old?: ServicePortPlan; new?: ServicePortPlan }

export interface ProxyBackend {
  readonly name: BackendName;
  /** Replaces everything of ours with exactly these plans, in one transaction; installs the hooks. */
  fullSync(plans: readonly ServicePortPlan[]): Promise<void>;
  /** Applies these changes on top of what the last successful sync programmed, in one transaction. */
  deltaSync(changes: readonly PlanChange[]): Promise<void>;
}

/** Options common to both backends. */
export interface BackendOptions {
  /** nft table name; the iptables chain prefix is its upper-case form */
  tableName: string;
  /** pod network: ClusterIP traffic from outside it is masqueraded */
  clusterCIDR: string;
}

/** The packet mark bit asking for masquerade on the way out (kube-proxy's 0x4000). */
export const MASQ_MARK = 0x4000;

/** A table name usable by both backends (it also makes the iptables chain prefix). */
export function checkTableName(name: string): void {
  if (!/^[A-Za-z][A-Za-z0-9_]{0,9}$/.test(name)) {
    throw new Error(`proxy tableName ${JSON.stringify(name)} is invalid: 1-10 letters, digits or '_', starting with a letter (it names the nft table and prefixes iptables chains, whose names are limited to 28 characters)`);
  }
}
