// flannel's vxlan backend (pkg/backend/vxlan): the kernel encapsulates, the
// daemon only programs it. One device, flannel.<VNI> (VXLAN id VNI, dstport
// Port, local = this host's public IP, on the external interface, no
// learning), holding this host's subnet network address as a /32 so no
// broadcast route appears. Its MAC is published in the lease as BackendData
// {"VNI":1,"VtepMAC":"…"} (flannel's vxlanLeaseAttrs). For each peer:
//
//   bridge fdb replace <VtepMAC> dev flannel.1 dst <peer public IP> self permanent
//   ip neigh replace <peer subnet .0> lladdr <VtepMAC> dev flannel.1 nud permanent
//   ip route replace <peer subnet> via <peer subnet .0> dev flannel.1 onlink
//
// With DirectRouting, a peer whose public IP is on a directly connected link
// gets `ip route replace <peer subnet> via <peer public IP>` instead (no
// encapsulation), as flannel does.
//
// Like flannel, stopping leaves flannel.1 and its entries in place (pods keep
// talking while the daemon restarts), and a restart reuses flannel.1 when its
// configuration matches — keeping its MAC, so peers need no update — or
// recreates it (a new MAC, published by the lease update) when it does not.

import { access, writeFile } from 'node:fs/promises';
import { type Ip4Net, formatIp4 } from '../../routes/ip4';
import type { Lease, LeaseDiff, LeaseTable, Peer } from '../../routes/lease-table';
import type { NetworkConfig } from '../../subnet/config';
import { VXLAN_OVERHEAD, type VxlanOptions, parseVxlanOptions } from '../../subnet/backends';
import { FlannelError } from '../../util/errors';
import { exec, execStatus, ipBatch } from '../../util/exec';
import { LogOnce } from '../../util/log-once';
import type { Backend, BackendContext } from '../backend';
import { type FlushLines, KernelPeers, type OnLinkPrefix, normalizeMac, onLinkFor, onLinkPrefixes, routesWithin } from '../kernel';

/** How often the device's presence is checked (flannel reacts to the netlink event at once). */
const DEVICE_CHECK_MS = 2000;

/** flannel's lease BackendData for vxlan (field order as Go marshals vxlanLeaseAttrs). */
export interface VxlanLeaseData {
  VNI: number;
  VtepMAC: string;
}

/** What is programmed for one peer: the tunnel entries, or (DirectRouting) a plain route. */
export type VxlanPeerState = { kind: 'vxlan'; gw: string; mac: string; publicIp: string } | { kind: 'direct'; publicIp: string };
type PeerState = VxlanPeerState;

/**
 * The batch lines that turn a peer's kernel entries from `old` into `next`
 * (either undefined: the peer is new, or gone). fdb entries are keyed by MAC,
 * so a new MAC needs the old entry deleted; the same MAC is simply replaced.
 */
export function vxlanLines(
  dev: string,
  subnet: string,
  old: VxlanPeerState | undefined,
  next: VxlanPeerState | undefined,
  out: FlushLines,
  /** Whether a peer outside this flush still uses the MAC (its fdb entry must stay). */
  macKept: (mac: string) => boolean = () => false,
): void {
  if (old?.kind === 'vxlan') {
    if ((next?.kind !== 'vxlan' || next.mac !== old.mac) && !macKept(old.mac)) {
      out.bridgeDel.push({ line: `fdb del ${old.mac} dev ${dev} dst ${old.publicIp} self`, subnet, del: true });
    }
    if (next?.kind !== 'vxlan') out.ipDel.push({ line: `neigh del ${old.gw} dev ${dev}`, subnet, del: true });
  }
  if (old && !next) {
    out.ipDel.push({ line: old.kind === 'vxlan' ? `route del ${subnet} dev ${dev}` : `route del ${subnet} via ${old.publicIp}`, subnet, del: true });
  }
  if (next?.kind === 'vxlan') {
    // flannel's order: neighbour and fdb entry first, the route last (the kernel would ARP otherwise).
    out.bridgeAdd.push({ line: `fdb replace ${next.mac} dev ${dev} dst ${next.publicIp} self permanent`, subnet });
    out.ipAdd.push({ line: `neigh replace ${next.gw} lladdr ${next.mac} dev ${dev} nud permanent`, subnet });
    out.ipAdd.push({ line: `route replace ${subnet} via ${next.gw} dev ${dev} onlink`, subnet });
  } else if (next?.kind === 'direct') {
    out.ipAdd.push({ line: `route replace ${subnet} via ${next.publicIp}`, subnet });
  }
}

interface LinkInfo {
  address: string;
  mtu: number;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; link?: string; port?: number; learning?: boolean; gbp?: boolean; group?: string; l2miss?: boolean } };
}

/** Reads a link with details, or undefined if there is none by that name. */
async function showLink(name: string): Promise<LinkInfo | undefined> {
  const r = await execStatus(['ip', '-d', '-j', 'link', 'show', 'dev', name]);
  if (r.status !== 0) return undefined;
  return (JSON.parse(r.stdout) as LinkInfo[])[0];
}

/**
 * flannel's vxlanLinksIncompat, plus `learning` (flannel-ts does not change
 * learning on a live device). An empty string means compatible.
 */
export function vxlanIncompatibility(link: LinkInfo, want: { vni: number; local: string; dev: string; port: number; gbp: boolean; learning: boolean }): string {
  if (link.linkinfo?.info_kind !== 'vxlan') return `link type: ${link.linkinfo?.info_kind ?? 'unknown'} vs vxlan`;
  const d = link.linkinfo.info_data ?? {};
  if (d.id !== want.vni) return `vni: ${d.id} vs ${want.vni}`;
  if (d.link && d.link !== want.dev) return `vtep (external) interface: ${d.link} vs ${want.dev}`;
  if (d.local && d.local !== want.local) return `vtep (external) IP: ${d.local} vs ${want.local}`;
  if (d.group) return `group address: ${d.group} vs none`;
  if (d.l2miss) return 'l2miss: true vs false';
  if (d.port && d.port !== want.port) return `port: ${d.port} vs ${want.port}`;
  if (Boolean(d.gbp) !== want.gbp) return `gbp: ${Boolean(d.gbp)} vs ${want.gbp}`;
  if (Boolean(d.learning) !== want.learning) return `learning: ${Boolean(d.learning)} vs ${want.learning}`;
  return '';
}

class VxlanPeers extends KernelPeers<PeerState> {
  private readonly macsKept = new Set<string>();
  private prefixes: OnLinkPrefix[] = [];
  private prefixesAt = 0;

  constructor(
    private readonly dev: string,
    private readonly directRouting: boolean,
    private readonly network: Ip4Net,
    private readonly local: () => Ip4Net | undefined,
    /** Recreates the device as it was (same MAC) and returns the peers to program again. */
    private readonly recreate: () => Promise<Peer[]>,
    ctx: BackendContext,
  ) {
    super('vxlan', ctx.log);
  }

  /** flannel watches for flannel.1 being deleted and recreates it; so does this, every few seconds. */
  protected override async check(): Promise<void> {
    if (
      await access(`/sys/class/net/${this.dev}`).then(
        () => true,
        () => false,
      )
    )
      return;
    this.log.warn(`${this.dev} was deleted: recreating it with the same MAC and re-programming ${this.programmed.size} peer(s)`);
    this.reprogram(await this.recreate());
    this.restartShells();
  }

  protected override async beforeFlush(batch: ReadonlyMap<string, Peer | null>): Promise<void> {
    // A MAC may move from one subnet to another (a node that took a new
    // lease): its fdb entry stays while a peer outside this flush uses it.
    this.macsKept.clear();
    for (const [subnet, st] of this.programmed) {
      if (st.kind === 'vxlan' && !batch.has(subnet)) this.macsKept.add(st.mac);
    }
    // DirectRouting asks "is this peer on a directly connected link?", as
    // flannel's ip.DirectRouting does with a route lookup; one dump per 10 s
    // answers it for every peer of the flush.
    if (this.directRouting && Date.now() - this.prefixesAt > 10_000) {
      this.prefixes = (await onLinkPrefixes()).filter((p) => p.dev !== this.dev);
      this.prefixesAt = Date.now();
    }
  }

  protected plan(peer: Peer): PeerState | undefined {
    const publicIp = formatIp4(peer.publicIp);
    if (this.directRouting && onLinkFor(this.prefixes, peer.publicIp)) return { kind: 'direct', publicIp };
    const mac = normalizeMac((peer.backendData as Partial<VxlanLeaseData> | undefined)?.VtepMAC);
    if (!mac) {
      this.log.error(`vxlan: lease ${peer.subnet} has no usable VtepMAC in its BackendData; skipping it`);
      return undefined;
    }
    return { kind: 'vxlan', gw: formatIp4(peer.subnet.ip), mac, publicIp };
  }

  protected equal(a: PeerState, b: PeerState): boolean {
    return a.kind === b.kind && a.publicIp === b.publicIp && (a.kind === 'direct' || (b.kind === 'vxlan' && a.gw === b.gw && a.mac === b.mac));
  }

  protected lines(subnet: string, old: PeerState | undefined, next: PeerState | undefined, out: FlushLines): void {
    vxlanLines(this.dev, subnet, old, next, out, (mac) => this.macsKept.has(mac));
  }

  protected async reconcile(keep: ReadonlyMap<string, PeerState>): Promise<void> {
    const dev = this.dev;
    const local = this.local();
    const gws = new Set<string>();
    const macs = new Set<string>();
    for (const s of keep.values()) {
      if (s.kind === 'vxlan') {
        gws.add(s.gw);
        macs.add(s.mac);
      }
    }
    const ipDel: { line: string; del: boolean }[] = [];
    const bridgeDel: { line: string; del: boolean }[] = [];
    for (const r of await routesWithin(this.network)) {
      if (local && r.dst.equals(local)) continue;
      const ours = r.dev === dev || (this.directRouting && r.gateway !== undefined);
      if (ours && !keep.has(r.dst.toString())) ipDel.push({ line: `route del ${r.dst} dev ${r.dev}`, del: true });
    }
    const neighs = JSON.parse((await exec(['ip', '-j', '-4', 'neigh', 'show', 'dev', dev])) || '[]') as { dst: string; lladdr?: string; state?: string[] }[];
    for (const n of neighs) {
      if (n.state?.includes('PERMANENT') && !gws.has(n.dst)) ipDel.push({ line: `neigh del ${n.dst} dev ${dev}`, del: true });
    }
    const fdb = JSON.parse((await exec(['bridge', '-j', 'fdb', 'show', 'dev', dev])) || '[]') as { mac: string; dst?: string; flags?: string[]; state?: string }[];
    for (const f of fdb) {
      if (!f.dst || f.mac === '00:00:00:00:00:00' || !f.flags?.includes('self') || f.state !== 'permanent') continue;
      if (!macs.has(f.mac)) bridgeDel.push({ line: `fdb del ${f.mac} dev ${dev} dst ${f.dst} self`, del: true });
    }
    if (ipDel.length + bridgeDel.length === 0) return;
    await this.bridge.run(bridgeDel);
    await this.ip.run(ipDel);
    this.log.info(`vxlan: removed ${ipDel.length + bridgeDel.length} stale entries left by an earlier run for peers that are gone`);
  }
}

export class VxlanBackend implements Backend {
  readonly type = 'vxlan';
  private opts: VxlanOptions | undefined;
  private dev = '';
  private mac = '';
  private extMtu = 0;
  private lease: Lease | undefined;
  private peers: VxlanPeers | undefined;
  /** "Ignoring subnet …" warnings, one per subnet and reason, so resyncs do not repeat them. */
  private readonly ignored: LogOnce;

  constructor(private readonly ctx: BackendContext) {
    this.ignored = new LogOnce(ctx.log);
  }

  /** MTU pods use: the underlay MTU (Backend.MTU or the interface's) minus flannel's 50 bytes. */
  get mtu(): number {
    return this.extMtu - VXLAN_OVERHEAD;
  }

  get deviceName(): string {
    return this.dev;
  }

  get vtepMac(): string {
    return this.mac;
  }

  /** The peer programmer (tests and the bench wait on it). */
  get kernel(): KernelPeers<unknown> | undefined {
    return this.peers;
  }

  /** Creates or reuses flannel.<VNI>; returns the lease's BackendData {"VNI":…,"VtepMAC":…}. */
  async prepare(config: NetworkConfig): Promise<VxlanLeaseData> {
    const { ext, log } = this.ctx;
    const o = (this.opts = parseVxlanOptions(config.backend));
    this.dev = `flannel.${o.vni}`;
    this.extMtu = o.mtu ?? ext.mtu;
    log.info(`VXLAN config: VNI=${o.vni} Port=${o.port} GBP=${o.gbp} Learning=${o.learning} DirectRouting=${o.directRouting}`);
    const want = { vni: o.vni, local: ext.publicIp, dev: ext.name, port: o.port, gbp: o.gbp, learning: o.learning };
    let link = await showLink(this.dev);
    if (link) {
      const why = vxlanIncompatibility(link, want);
      if (why === '') {
        log.info(`Reusing the existing ${this.dev} (MAC ${link.address})`);
      } else {
        log.warn(`"${this.dev}" already exists with incompatible configuration: ${why}; recreating device`);
        await exec(['ip', 'link', 'del', this.dev]);
        link = undefined;
      }
    }
    if (!link) link = await this.createDevice();
    try {
      // flannel: no router advertisements on the tunnel device.
      await writeFile(`/proc/sys/net/ipv6/conf/${this.dev}/accept_ra`, '0');
    } catch {
      /* IPv6 disabled */
    }
    this.mac = link.address;
    return { VNI: o.vni, VtepMAC: this.mac };
  }

  /** `ip link add flannel.<VNI> … type vxlan …` from the options; `mac` keeps an earlier device's address. */
  private async createDevice(mac?: string): Promise<LinkInfo> {
    const { ext, log } = this.ctx;
    const o = this.opts!;
    const argv = [
      'ip',
      'link',
      'add',
      this.dev,
      ...(mac ? ['address', mac] : []),
      'mtu',
      String(this.mtu),
      'type',
      'vxlan',
      'id',
      String(o.vni),
      'local',
      ext.publicIp,
      'dev',
      ext.name,
      'dstport',
      String(o.port),
      o.learning ? 'learning' : 'nolearning',
    ];
    if (o.gbp) argv.push('gbp');
    try {
      await exec(argv);
    } catch (e) {
      throw new FlannelError('FLANNEL_ERR_BACKEND', `failed to create vxlan device ${this.dev}: ${(e as Error).message}`, { cause: e });
    }
    const link = await showLink(this.dev);
    if (!link) throw new FlannelError('FLANNEL_ERR_BACKEND', `created ${this.dev} but cannot read it back`);
    log.info(`Created ${this.dev} (VNI ${o.vni}, local ${ext.publicIp}, dev ${ext.name}, dstport ${o.port}, MAC ${link.address})`);
    return link;
  }

  /** The device was deleted under us: the same device again (same MAC, so the lease stays true), addressed and up. */
  private async recreateDevice(): Promise<void> {
    await this.createDevice(this.mac);
    await this.address(this.lease!);
    await exec(['ip', 'link', 'set', this.dev, 'up']);
  }

  /** vxlan nodes only (flannel's vxlan ignores leases of other types), and only with a usable VtepMAC. */
  accepts(lease: Lease): boolean {
    const key = lease.subnet.toString();
    let reason = '';
    if (lease.backendType !== 'vxlan') reason = `ignoring non-vxlan subnet ${key}: type=${lease.backendType}`;
    else if (!normalizeMac((lease.backendData as Partial<VxlanLeaseData> | undefined)?.VtepMAC)) {
      reason = `ignoring vxlan subnet ${key}: its BackendData has no valid VtepMAC (${JSON.stringify(lease.backendData ?? null)})`;
    }
    if (reason === '') {
      this.ignored.reset(key);
      return true;
    }
    this.ignored.log(key, 'warn', reason);
    return false;
  }

  async start(lease: Lease, config: NetworkConfig, table: LeaseTable): Promise<number> {
    this.lease = lease;
    await this.address(lease);
    const mtu = this.mtu;
    await exec(['ip', 'link', 'set', this.dev, 'mtu', String(mtu), 'up']);
    // flannel's Configure: the MAC must still be the one the lease publishes.
    const now = await showLink(this.dev);
    if (now && now.address !== this.mac) {
      throw new FlannelError('FLANNEL_ERR_BACKEND', `${this.dev}'s mac address wanted: ${this.mac}, but got: ${now.address}`);
    }
    this.peers = new VxlanPeers(
      this.dev,
      this.opts!.directRouting,
      config.network,
      () => this.lease?.subnet,
      async () => {
        await this.recreateDevice();
        return table.peers();
      },
      this.ctx,
    );
    this.peers.startChecks(DEVICE_CHECK_MS);
    this.ctx.log.info(`${this.dev} is up: ${formatIp4(lease.subnet.ip)}/32, MTU ${mtu}, MAC ${this.mac}`);
    return mtu;
  }

  leasesChanged(diff: LeaseDiff): void {
    this.peers?.enqueue(diff);
  }

  async relocate(lease: Lease): Promise<void> {
    this.lease = lease;
    await this.address(lease);
  }

  /** Stops programming; flannel.<VNI> and its entries stay, as flannel leaves them. */
  async stop(): Promise<void> {
    this.peers?.stop();
  }

  /** The subnet's network address as /32, and no other IPv4 address (flannel's EnsureV4AddressOnLink). */
  private async address(lease: Lease): Promise<void> {
    const want = `${formatIp4(lease.subnet.ip)}/32`;
    const addrs = JSON.parse(await exec(['ip', '-j', '-4', 'addr', 'show', 'dev', this.dev])) as { addr_info?: { local: string; prefixlen: number }[] }[];
    const lines: string[] = [];
    for (const a of addrs[0]?.addr_info ?? []) {
      const have = `${a.local}/${a.prefixlen}`;
      if (have !== want) lines.push(`addr del ${have} dev ${this.dev}`);
    }
    lines.push(`addr replace ${want} dev ${this.dev}`);
    await ipBatch(lines);
  }
}
