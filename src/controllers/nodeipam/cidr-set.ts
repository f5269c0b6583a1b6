// The set of node pod ranges inside the cluster CIDR: the cluster CIDR (e.g. 10.42.0.0/16) cut into
// equal subnets of maskSize bits (e.g. /24), one bit each. Allocation goes round-robin from the
// last range handed out (as upstream's cidrset), so a released range is not reused at once while
// stale routes or rules for it may still exist. Occupy/release take any CIDR: one larger than
// maskSize marks every subnet it covers, one that does not overlap the cluster CIDR is ignored.
// IPv4 only.

export interface ParsedCIDR { base: number; prefix: number }

/** Parses an IPv4 CIDR (host bits must be zero). */
export function parseIPv4CIDR(cidr: string): ParsedCIDR {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  const octets = m ? m.slice(1, 5).map(Number) : [];
  const prefix = m ? Number(m[5]) : -1;
  if (!m || octets.some((o) => o > 255) || prefix > 32) throw new Error(`invalid IPv4 CIDR ${JSON.stringify(cidr)}`);
  const base = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  if (((base & mask) >>> 0) !== base) throw new Error(`invalid IPv4 CIDR ${JSON.stringify(cidr)}: host bits are set`);
  return { base, prefix };
}

function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Upstream's limit: at most 2^16 node ranges in one cluster CIDR. */
const MAX_BITS = 16;

export class CidrSet {
  readonly clusterCIDR: string;
  readonly maskSize: number;
  /** number of node ranges */
  readonly size: number;
  private readonly base: number;
  private readonly prefix: number;
  private readonly used: Uint8Array;
  private usedCount = 0;
  private next = 0;

  constructor(clusterCIDR: string, maskSize: number) {
    const c = parseIPv4CIDR(clusterCIDR);
    if (!Number.isInteger(maskSize) || maskSize < c.prefix || maskSize > 30) {
      throw new Error(`node CIDR mask size ${maskSize} must be between the cluster CIDR's prefix (${c.prefix}) and 30`);
    }
    if (maskSize - c.prefix > MAX_BITS) throw new Error(`cluster CIDR ${clusterCIDR} with /${maskSize} node ranges makes more than 2^${MAX_BITS} ranges`);
    this.clusterCIDR = clusterCIDR;
    this.maskSize = maskSize;
    this.base = c.base;
    this.prefix = c.prefix;
    this.size = 2 ** (maskSize - c.prefix);
    this.used = new Uint8Array(this.size);
  }

  get free(): number { return this.size - this.usedCount; }

  private cidrAt(i: number): string { return `${formatIPv4((this.base + i * 2 ** (32 - this.maskSize)) >>> 0)}/${this.maskSize}`; }

  /** The indexes of node ranges cidr overlaps (empty when outside the cluster CIDR or invalid). */
  private indexes(cidr: string): [number, number] | undefined {
    let c: ParsedCIDR;
    try { c = parseIPv4CIDR(cidr); } catch { return undefined; }
    const span = (p: number) => 2 ** (32 - p);
    const lo = Math.max(c.base, this.base);
    const hi = Math.min(c.base + span(c.prefix), this.base + span(this.prefix)); // exclusive
    if (lo >= hi) return undefined;
    const unit = span(this.maskSize);
    return [Math.floor((lo - this.base) / unit), Math.floor((hi - 1 - this.base) / unit)];
  }

  /** Hands out the next free range, or undefined when none is left. */
  allocateNext(): string | undefined {
    if (this.usedCount >= this.size) return undefined;
    for (let k = 0; k < this.size; k++) {
      const i = (this.next + k) % this.size;
      if (!this.used[i]) {
        this.used[i] = 1;
        this.usedCount++;
        this.next = (i + 1) % this.size;
        return this.cidrAt(i);
      }
    }
    return undefined;
  }

  /** Marks every range cidr overlaps as used; false when it does not overlap the cluster CIDR. */
  occupy(cidr: string): boolean {
    const r = this.indexes(cidr);
    if (!r) return false;
    for (let i = r[0]; i <= r[1]; i++) if (!this.used[i]) { this.used[i] = 1; this.usedCount++; }
    return true;
  }

  /** Frees every range cidr overlaps. */
  release(cidr: string): void {
    const r = this.indexes(cidr);
    if (!r) return;
    for (let i = r[0]; i <= r[1]; i++) if (this.used[i]) { this.used[i] = 0; this.usedCount--; }
  }

  /** True when every range cidr overlaps is used (false outside the cluster CIDR). */
  isUsed(cidr: string): boolean {
    const r = this.indexes(cidr);
    if (!r) return false;
    for (let i = r[0]; i <= r[1]; i++) if (!this.used[i]) return false;
    return true;
  }
}
