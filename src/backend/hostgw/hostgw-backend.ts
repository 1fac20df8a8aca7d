// flannel's host-gw backend (pkg/backend/hostgw + route_network.go): no
// encapsulation and no device; each peer's subnet is routed via the peer's
// public IP on the external interface:
//
//   ip route replace <peer subnet> via <peer public IP> dev <external interface>
//
// That only works when every host is on one layer-2 segment. A peer whose
// public IP is not on a directly connected network of the external interface
// cannot be a gateway (the kernel answers "Nexthop has invalid gateway"); it
// is skipped with an error that says so and what to use instead.
//
// As in flannel: a public IP that differs from the interface's (NAT) is
// refused at start, pods get the interface's full MTU, and stopping leaves the
// routes in place.

import { type Ip4, type Ip4Net, formatIp4, parseIp4 } from '../../routes/ip4';
import type { Lease, LeaseDiff, LeaseTable, Peer } from '../../routes/lease-table';
import type { NetworkConfig } from '../../subnet/config';
import type { Backend, BackendContext } from '../backend';
import { type FlushLines, KernelPeers, type OnLinkPrefix, onLinkFor, onLinkPrefixes, routesWithin } from '../kernel';
import { FlannelError } from '../../util/errors';

/** flannel's routeCheckRetries (10) seconds between checks that every peer route is still there. */
const ROUTE_CHECK_MS = 10_000;

export interface HostGwPeerState {
  publicIp: string;
}
type PeerState = HostGwPeerState;

/** The batch lines that turn a peer's route from `old` into `next` (either undefined: new, or gone). */
export function hostGwLines(ext: string, subnet: string, old: HostGwPeerState | undefined, next: HostGwPeerState | undefined, out: FlushLines): void {
  if (old && !next) out.ipDel.push({ line: `route del ${subnet} via ${old.publicIp} dev ${ext}`, subnet, del: true });
  if (next) out.ipAdd.push({ line: `route replace ${subnet} via ${next.publicIp} dev ${ext}`, subnet });
}

class HostGwPeers extends KernelPeers<PeerState> {
  private prefixes: OnLinkPrefix[] = [];
  private prefixesAt = 0;

  constructor(
    private readonly ext: string,
    private readonly ownIp: Ip4,
    private readonly network: Ip4Net,
    private readonly local: () => Ip4Net | undefined,
    ctx: BackendContext,
  ) {
    super('host-gw', ctx.log);
  }

  /** On-link prefixes at most 10 s old; fresh ones when a peer looks off-link (the interface may have a new address). */
  protected override async beforeFlush(batch: ReadonlyMap<string, Peer | null>): Promise<void> {
    if (Date.now() - this.prefixesAt > 10_000 || [...batch.values()].some((p) => p !== null && !this.onLink(p.publicIp))) {
      this.prefixes = await onLinkPrefixes();
      this.prefixesAt = Date.now();
    }
  }

  /** Whether `ip` can be a next hop on the external interface. */
  private onLink(ip: Ip4): OnLinkPrefix | undefined {
    return onLinkFor(this.prefixes, ip, this.ext);
  }

  protected plan(peer: Peer): PeerState | undefined {
    const subnet = peer.subnet.toString();
    const ip = formatIp4(peer.publicIp);
    if (peer.publicIp === this.ownIp) {
      this.log.error(`host-gw: lease ${subnet} carries this host's own public IP ${ip}; not routing it (do two hosts share an address?)`);
      return undefined;
    }
    if (!this.onLink(peer.publicIp)) {
      // plan() runs only when the lease changes, so this is logged once per change, not per resync.
      const mine = this.prefixes.filter((p) => p.dev === this.ext).map((p) => p.net.toString());
      this.log.error(
        `host-gw: cannot route ${subnet} via ${ip}: that host is not on the same link as this one ` +
          `(${this.ext} reaches ${mine.length ? mine.join(', ') : 'no directly connected network'} directly). ` +
          'host-gw needs every host on one layer-2 network; for hosts behind routers use the vxlan backend ' +
          '(with "DirectRouting": true to keep host-gw speed between neighbours) or udp',
      );
      return undefined;
    }
    return { publicIp: ip };
  }

  protected equal(a: PeerState, b: PeerState): boolean {
    return a.publicIp === b.publicIp;
  }

  protected lines(subnet: string, old: PeerState | undefined, next: PeerState | undefined, out: FlushLines): void {
    hostGwLines(this.ext, subnet, old, next, out);
  }

  /** flannel's routeCheck: every 10 s, re-add peer routes someone removed. */
  protected override async check(): Promise<void> {
    if (this.programmed.size === 0) return;
    const present = new Set<string>();
    for (const r of await routesWithin(this.network)) {
      if (r.gateway !== undefined && r.dev === this.ext) present.add(`${r.dst} ${formatIp4(r.gateway)}`);
    }
    const lines = [];
    for (const [subnet, st] of this.programmed) {
      if (!present.has(`${subnet} ${st.publicIp}`)) lines.push({ line: `route replace ${subnet} via ${st.publicIp} dev ${this.ext}`, subnet });
    }
    if (lines.length === 0) return;
    const failures = await this.ip.run(lines);
    for (const f of failures) this.log.error(`host-gw: could not recover the route "${f.line.line}": ${f.message}`);
    if (failures.length < lines.length) this.log.info(`host-gw: recovered ${lines.length - failures.length} peer route(s) that had been removed`);
  }

  protected async reconcile(keep: ReadonlyMap<string, PeerState>): Promise<void> {
    const local = this.local();
    const del = [];
    for (const r of await routesWithin(this.network)) {
      if (r.gateway === undefined || r.dev !== this.ext || (local && r.dst.equals(local))) continue;
      if (!keep.has(r.dst.toString())) del.push({ line: `route del ${r.dst} via ${formatIp4(r.gateway)} dev ${this.ext}`, del: true });
    }
    if (del.length === 0) return;
    await this.ip.run(del);
    this.log.info(`host-gw: removed ${del.length} stale route(s) left by an earlier run for peers that are gone`);
  }
}

export class HostGwBackend implements Backend {
  readonly type = 'host-gw';
  private lease: Lease | undefined;
  private peers: HostGwPeers | undefined;
  private readonly ignored = new Map<string, string>();

  constructor(private readonly ctx: BackendContext) {}

  get mtu(): number {
    return this.ctx.ext.mtu;
  }

  get kernel(): KernelPeers<unknown> | undefined {
    return this.peers;
  }

  /** flannel refuses host-gw behind NAT: peers route to our public IP, which must be on our interface. */
  async prepare(): Promise<unknown> {
    const { ext } = this.ctx;
    if (ext.publicIp !== ext.ifaceAddr) {
      throw new FlannelError(
        'FLANNEL_ERR_BACKEND',
        `your PublicIP (${ext.publicIp}) differs from interface IP (${ext.ifaceAddr}), meaning that probably you're on a NAT, ` +
          'which is not supported by host-gw backend: drop --public-ip, or use the vxlan or udp backend',
      );
    }
    return undefined;
  }

  accepts(lease: Lease): boolean {
    const key = lease.subnet.toString();
    if (lease.backendType === 'host-gw') {
      this.ignored.delete(key);
      return true;
    }
    const reason = `Ignoring non-host-gw subnet ${key}: type=${lease.backendType}`;
    if (this.ignored.get(key) !== reason) {
      this.ignored.set(key, reason);
      this.ctx.log.warn(reason);
    }
    return false;
  }

  async start(lease: Lease, config: NetworkConfig, _table: LeaseTable): Promise<number> {
    this.lease = lease;
    this.peers = new HostGwPeers(this.ctx.ext.name, parseIp4(this.ctx.ext.publicIp), config.network, () => this.lease?.subnet, this.ctx);
    this.peers.startChecks(ROUTE_CHECK_MS);
    this.ctx.log.info(`host-gw: routing peer subnets via their public IPs on ${this.ctx.ext.name}; pod MTU ${this.mtu}`);
    return this.mtu;
  }

  leasesChanged(diff: LeaseDiff): void {
    this.peers?.enqueue(diff);
  }

  async relocate(lease: Lease): Promise<void> {
    this.lease = lease; // no device to re-address; the bridge follows subnet.env
  }

  /** Stops programming; the routes stay, as flannel leaves them. */
  async stop(): Promise<void> {
    this.peers?.stop();
  }
}
