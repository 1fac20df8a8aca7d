// The lease table: which peer owns the subnet a packet is going to.
//
// The control plane (src/subnet) is the only writer; the data plane (src/encap)
// reads it once per packet, so `lookup` is one mask and one Map probe per
// distinct subnet length present (in practice one: every lease in a flannel
// network has the Network's SubnetLen).

import { Ip4, Ip4Net, formatIp4, maskOf } from './ip4';

/** One host's lease as the control plane sees it (flannel's etcd value, parsed). */
export interface Lease {
  subnet: Ip4Net;
  publicIp: Ip4;
  backendType: string;
  /** Backend-specific data from the lease value (e.g. vxlan's VtepMAC); opaque here. */
  backendData?: unknown;
  /** Unix ms when the etcd lease expires; undefined for reservations (keys without a lease). */
  expiration?: number;
}

/** Where packets for a subnet go. `index` is stable for the peer's lifetime (per-peer counters). */
export interface Peer {
  readonly subnet: Ip4Net;
  readonly publicIp: Ip4;
  readonly port: number;
  readonly index: number;
}

export interface LeaseDiff {
  added: Peer[];
  removed: Peer[];
  changed: Peer[];
}

export class LeaseTable {
  private bySubnet = new Map<number, Peer>(); // key: subnet network address
  private lengths: number[] = []; // distinct prefix lengths present, longest first
  private lengthUse = new Map<number, number>();
  private byPublicIp = new Map<Ip4, Peer[]>(); // usually one lease per public IP; NATed hosts may share
  private nextIndex = 0;
  private local: Ip4Net | undefined;

  /** @param port the backend's UDP port, the same on every node of a network (flannel's rule). */
  constructor(private port: number) {}

  /** This host's own subnet: never a peer, whatever etcd says. */
  setLocalSubnet(subnet: Ip4Net | undefined): LeaseDiff {
    this.local = subnet;
    const removed: Peer[] = [];
    if (subnet) {
      const p = this.bySubnet.get(subnet.ip);
      if (p) {
        this.delete(p);
        removed.push(p);
      }
    }
    return { added: [], removed, changed: [] };
  }

  get localSubnet(): Ip4Net | undefined {
    return this.local;
  }

  get size(): number {
    return this.bySubnet.size;
  }

  /** The peer whose subnet holds `dst`, or undefined. Hot path: no allocation. */
  lookup(dst: Ip4): Peer | undefined {
    const lengths = this.lengths;
    for (let i = 0; i < lengths.length; i++) {
      const p = this.bySubnet.get((dst & maskOf(lengths[i])) >>> 0);
      if (p !== undefined && p.subnet.prefixLen === lengths[i]) return p;
    }
    return undefined;
  }

  /** The peer whose lease carries this public IP (receive-side source check), or undefined. */
  peerByAddress(ip: Ip4): Peer | undefined {
    const list = this.byPublicIp.get(ip);
    return list === undefined ? undefined : list[0];
  }

  peers(): Peer[] {
    return [...this.bySubnet.values()];
  }

  /** Adds or replaces the lease for its subnet. Returns what changed for the data plane. */
  upsert(lease: Lease): LeaseDiff {
    const diff: LeaseDiff = { added: [], removed: [], changed: [] };
    if (this.local && this.local.equals(lease.subnet)) return diff;
    const old = this.bySubnet.get(lease.subnet.ip);
    if (old && old.subnet.prefixLen === lease.subnet.prefixLen && old.publicIp === lease.publicIp) {
      return diff;
    }
    const peer: Peer = {
      subnet: lease.subnet,
      publicIp: lease.publicIp,
      port: this.port,
      index: old ? old.index : this.nextIndex++,
    };
    if (old) this.delete(old);
    this.insert(peer);
    (old ? diff.changed : diff.added).push(peer);
    return diff;
  }

  remove(subnet: Ip4Net): LeaseDiff {
    const diff: LeaseDiff = { added: [], removed: [], changed: [] };
    const old = this.bySubnet.get(subnet.ip);
    if (old && old.subnet.prefixLen === subnet.prefixLen) {
      this.delete(old);
      diff.removed.push(old);
    }
    return diff;
  }

  /** Replaces the whole table with `leases` (a resync), returning the difference. */
  reset(leases: Lease[]): LeaseDiff {
    const diff: LeaseDiff = { added: [], removed: [], changed: [] };
    const keep = new Set<string>();
    for (const l of leases) {
      keep.add(l.subnet.toString());
      const d = this.upsert(l);
      diff.added.push(...d.added);
      diff.changed.push(...d.changed);
    }
    for (const p of [...this.bySubnet.values()]) {
      if (!keep.has(p.subnet.toString())) {
        this.delete(p);
        diff.removed.push(p);
      }
    }
    return diff;
  }

  describe(): string[] {
    return this.peers().map((p) => `${p.subnet} -> ${formatIp4(p.publicIp)}:${p.port}`);
  }

  private insert(p: Peer): void {
    this.bySubnet.set(p.subnet.ip, p);
    const list = this.byPublicIp.get(p.publicIp);
    if (list) list.push(p);
    else this.byPublicIp.set(p.publicIp, [p]);
    const n = this.lengthUse.get(p.subnet.prefixLen) ?? 0;
    this.lengthUse.set(p.subnet.prefixLen, n + 1);
    if (n === 0) this.lengths = [...this.lengthUse.keys()].sort((a, b) => b - a);
  }

  private delete(p: Peer): void {
    this.bySubnet.delete(p.subnet.ip);
    const list = this.byPublicIp.get(p.publicIp)!.filter((q) => q !== p);
    if (list.length === 0) this.byPublicIp.delete(p.publicIp);
    else this.byPublicIp.set(p.publicIp, list);
    const n = (this.lengthUse.get(p.subnet.prefixLen) ?? 1) - 1;
    if (n === 0) {
      this.lengthUse.delete(p.subnet.prefixLen);
      this.lengths = [...this.lengthUse.keys()].sort((a, b) => b - a);
    } else this.lengthUse.set(p.subnet.prefixLen, n);
  }
}
