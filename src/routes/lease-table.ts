// The lease table: which peer owns the subnet a packet is going to.
//
// The control plane (src/subnet) is the only writer; the data plane (src/encap)
// reads it once per packet, so `lookup` is one shift and one Map probe per
// distinct subnet length present (in practice one: every lease in a flannel
// network has the Network's SubnetLen).
//
// Map keys are always small integers (V8 Smis, < 2^30): a raw IPv4 address
// above 64.0.0.0 is not a Smi, and probing a Map with it would box a number on
// the heap for every packet. So subnets are keyed by their subnet number
// (address >>> (32 - prefixLen), SubnetLen <= 30) in one Map per length, and
// public IPs by address >>> 2 with a short list to tell the four apart.

import { type Ip4, Ip4Net, formatIp4 } from './ip4';

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
  /** The lease's BackendData (e.g. vxlan's {"VtepMAC": …}); undefined for udp. */
  readonly backendData?: unknown;
}

export interface LeaseDiff {
  added: Peer[];
  removed: Peer[];
  changed: Peer[];
}

/**
 * A change of the table as the data-plane thread's copy applies it (see
 * LeaseTable.onChange / applyChange): plain numbers, cheap to post. `local`
 * is this host's subnet as [ip, prefixLen] (null: none); `put` rows are
 * [subnet ip, prefixLen, publicIp, index], `removed` rows [subnet ip, prefixLen].
 */
export interface TableChange {
  local: [number, number] | null;
  removed: [number, number][];
  put: [number, number, number, number][];
}

/** Subnets of one prefix length, keyed by subnet number. */
interface LengthTable {
  prefixLen: number;
  shift: number;
  peers: Map<number, Peer>;
}

const subnetNumber = (ip: Ip4, prefixLen: number) => (prefixLen === 0 ? 0 : ip >>> (32 - prefixLen));

export class LeaseTable {
  private tables: LengthTable[] = []; // longest prefix first
  private byPublicIp = new Map<number, Peer[]>(); // key: publicIp >>> 2
  private count = 0;
  private nextIndex = 0;
  private local: Ip4Net | undefined;
  private listeners: ((c: TableChange) => void)[] = [];

  /** @param port the backend's UDP port, the same on every node of a network (flannel's rule). */
  constructor(private port: number) {}

  /**
   * Calls `fn` after every change with what changed (the data-plane thread's
   * copy follows through it). Returns a function that stops the calls.
   */
  onChange(fn: (c: TableChange) => void): () => void {
    this.listeners.push(fn);
    return () => {
      this.listeners = this.listeners.filter((f) => f !== fn);
    };
  }

  /** The whole table as one change (a copy starts from it). */
  snapshot(): TableChange {
    return this.change({ added: this.peers(), removed: [], changed: [] });
  }

  /**
   * Applies a change made to another table (the control plane's), keeping its
   * peer indices: the data-plane thread's copy. No listener is called.
   */
  applyChange(c: TableChange): void {
    this.local = c.local === null ? undefined : new Ip4Net(c.local[0], c.local[1]);
    for (const [ip, len] of c.removed) {
      const p = this.get(new Ip4Net(ip, len));
      if (p) this.delete(p);
    }
    for (const [ip, len, publicIp, index] of c.put) {
      const subnet = new Ip4Net(ip, len);
      const old = this.get(subnet);
      if (old) this.delete(old);
      this.insert({ subnet, publicIp, port: this.port, index });
      if (index >= this.nextIndex) this.nextIndex = index + 1;
    }
    if (this.local) {
      const p = this.get(this.local);
      if (p) this.delete(p);
    }
  }

  private change(d: LeaseDiff): TableChange {
    return {
      local: this.local ? [this.local.ip, this.local.prefixLen] : null,
      removed: d.removed.map((p) => [p.subnet.ip, p.subnet.prefixLen]),
      put: [...d.added, ...d.changed].map((p) => [p.subnet.ip, p.subnet.prefixLen, p.publicIp, p.index]),
    };
  }

  private emit(d: LeaseDiff, always = false): LeaseDiff {
    if (this.listeners.length > 0 && (always || d.added.length + d.removed.length + d.changed.length > 0)) {
      const c = this.change(d);
      for (const f of this.listeners) f(c);
    }
    return d;
  }

  /** This host's own subnet: never a peer, whatever etcd says. */
  setLocalSubnet(subnet: Ip4Net | undefined): LeaseDiff {
    this.local = subnet;
    const removed: Peer[] = [];
    if (subnet) {
      const p = this.get(subnet);
      if (p) {
        this.delete(p);
        removed.push(p);
      }
    }
    return this.emit({ added: [], removed, changed: [] }, true);
  }

  get localSubnet(): Ip4Net | undefined {
    return this.local;
  }

  get size(): number {
    return this.count;
  }

  /** The peer whose subnet holds `dst`, or undefined. Hot path: no allocation. */
  lookup(dst: Ip4): Peer | undefined {
    const tables = this.tables;
    for (let i = 0; i < tables.length; i++) {
      const t = tables[i];
      const p = t.peers.get(t.shift === 32 ? 0 : dst >>> t.shift);
      if (p !== undefined) return p;
    }
    return undefined;
  }

  /** Some peer, or undefined when there is none (the data plane's warm-up rehearsal). */
  anyPeer(): Peer | undefined {
    const tables = this.tables;
    for (let i = 0; i < tables.length; i++) {
      for (const p of tables[i].peers.values()) return p;
    }
    return undefined;
  }

  /** The peer whose lease carries this public IP (receive-side source check), or undefined. */
  peerByAddress(ip: Ip4): Peer | undefined {
    const list = this.byPublicIp.get(ip >>> 2);
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) if (list[i].publicIp === ip) return list[i];
    return undefined;
  }

  peers(): Peer[] {
    return this.tables.flatMap((t) => [...t.peers.values()]);
  }

  /** Adds or replaces the lease for its subnet. Returns what changed for the data plane. */
  upsert(lease: Lease): LeaseDiff {
    return this.emit(this.upsertQuiet(lease));
  }

  private upsertQuiet(lease: Lease): LeaseDiff {
    const diff: LeaseDiff = { added: [], removed: [], changed: [] };
    if (this.local?.equals(lease.subnet)) return diff;
    const old = this.get(lease.subnet);
    if (old && old.publicIp === lease.publicIp && JSON.stringify(old.backendData) === JSON.stringify(lease.backendData)) return diff;
    const peer: Peer = {
      subnet: lease.subnet,
      publicIp: lease.publicIp,
      port: this.port,
      index: old ? old.index : this.nextIndex++,
      backendData: lease.backendData,
    };
    if (old) this.delete(old);
    this.insert(peer);
    (old ? diff.changed : diff.added).push(peer);
    return diff;
  }

  remove(subnet: Ip4Net): LeaseDiff {
    const diff: LeaseDiff = { added: [], removed: [], changed: [] };
    const old = this.get(subnet);
    if (old) {
      this.delete(old);
      diff.removed.push(old);
    }
    return this.emit(diff);
  }

  /** Replaces the whole table with `leases` (a resync), returning the difference. */
  reset(leases: Lease[]): LeaseDiff {
    const diff: LeaseDiff = { added: [], removed: [], changed: [] };
    const keep = new Set<string>();
    for (const l of leases) {
      keep.add(l.subnet.toString());
      const d = this.upsertQuiet(l);
      diff.added.push(...d.added);
      diff.changed.push(...d.changed);
    }
    for (const p of this.peers()) {
      if (!keep.has(p.subnet.toString())) {
        this.delete(p);
        diff.removed.push(p);
      }
    }
    return this.emit(diff);
  }

  describe(): string[] {
    return this.peers().map((p) => `${p.subnet} -> ${formatIp4(p.publicIp)}:${p.port}`);
  }

  private get(subnet: Ip4Net): Peer | undefined {
    return this.tables.find((t) => t.prefixLen === subnet.prefixLen)?.peers.get(subnetNumber(subnet.ip, subnet.prefixLen));
  }

  private insert(p: Peer): void {
    let t = this.tables.find((x) => x.prefixLen === p.subnet.prefixLen);
    if (!t) {
      t = { prefixLen: p.subnet.prefixLen, shift: 32 - p.subnet.prefixLen, peers: new Map() };
      this.tables = [...this.tables, t].sort((a, b) => b.prefixLen - a.prefixLen);
    }
    t.peers.set(subnetNumber(p.subnet.ip, p.subnet.prefixLen), p);
    this.count++;
    const key = p.publicIp >>> 2;
    const list = this.byPublicIp.get(key);
    if (list) list.push(p);
    else this.byPublicIp.set(key, [p]);
  }

  private delete(p: Peer): void {
    const t = this.tables.find((x) => x.prefixLen === p.subnet.prefixLen)!;
    t.peers.delete(subnetNumber(p.subnet.ip, p.subnet.prefixLen));
    this.count--;
    if (t.peers.size === 0) this.tables = this.tables.filter((x) => x !== t);
    const key = p.publicIp >>> 2;
    const list = this.byPublicIp.get(key)!.filter((q) => q !== p);
    if (list.length === 0) this.byPublicIp.delete(key);
    else this.byPublicIp.set(key, list);
  }
}
