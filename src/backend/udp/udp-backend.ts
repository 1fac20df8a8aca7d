// flannel's udp backend: flannel0 (a TUN device) and a UDP socket on port
// 8285, with flannel-ts's batched data plane between them. Every datagram
// carries exactly one IPv4 packet (flannel's wire format).

import { Counters } from '../../encap/counters';
import type { Tracer } from '../../encap/trace';
import { DataPlane } from '../../encap/data-plane';
import { Ip4Net, formatIp4, parseIp4 } from '../../routes/ip4';
import { Lease, LeaseDiff, LeaseTable } from '../../routes/lease-table';
import { NetworkConfig } from '../../subnet/config';
import { configureTun } from '../../tun/configure';
import { TunDevice } from '../../tun/tun-device';
import { UdpSocket } from '../../tun/udp-socket';
import { Backend, BackendContext } from '../backend';
import { TxThread } from './tx-thread';

/** flannel's udp encapsulation overhead: outer IPv4 (20) + UDP (8) headers. */
export const UDP_OVERHEAD = 28;
const TUN_NAME = 'flannel0';
/** Large socket buffers: a burst of batches is not dropped by the kernel. */
const SOCKET_BUFFER = 4 * 1024 * 1024;
/**
 * The receive buffer: with UDP GRO every queued skb is a ~64 KiB super-packet
 * whose true size counts against it. 4 MiB overflowed under 4 TCP streams
 * (~8000 retransmits in 8 s, bench/offloads.ts --streams 4); 16 MiB: none.
 * Memory is only taken while datagrams wait.
 */
const RECEIVE_BUFFER = 16 * 1024 * 1024;

export class UdpBackend implements Backend {
  readonly type = 'udp';
  private dataPlane: DataPlane | undefined;
  private network: Ip4Net | undefined;
  private tun: TunDevice | undefined;
  private udp: UdpSocket | undefined;
  private txThread: TxThread | undefined;

  constructor(private readonly ctx: BackendContext) {}

  get mtu(): number {
    return this.ctx.ext.mtu - UDP_OVERHEAD;
  }

  async prepare(): Promise<unknown> {
    return undefined;
  }

  /** udp nodes (stock flannel ones omit BackendType, read as udp) are reachable; kernel backends are not. */
  accepts(lease: Lease): boolean {
    return lease.backendType === 'udp';
  }

  async start(lease: Lease, config: NetworkConfig, table: LeaseTable): Promise<number> {
    const { ext, log } = this.ctx;
    this.network = config.network;
    const want = { tunOffload: true, tunGro: true, udpGso: true, udpGro: true, ...this.ctx.offloads };
    // vnet headers carry the TUN offloads: super-packets read (TSO, split in
    // the addon) and coalesced TCP segments written (user-space GRO). With
    // both off flannel0 is a plain TUN, as stock flannel's.
    const tun = TunDevice.open(TUN_NAME, { vnetHdr: want.tunOffload || want.tunGro, gro: want.tunGro, tso: want.tunOffload });
    let udp: UdpSocket;
    try {
      await configureTun({ name: tun.name, address: formatIp4(lease.subnet.ip), network: config.network.toString(), mtu: this.mtu });
      udp = UdpSocket.open(parseIp4(ext.ifaceAddr), config.port, { rcvbuf: RECEIVE_BUFFER, sndbuf: SOCKET_BUFFER, gso: want.udpGso, gro: want.udpGro });
    } catch (e) {
      tun.close();
      throw e;
    }
    this.tun = tun;
    this.udp = udp;
    // FLANNEL_TS_TX_WORKER=1 (experimental, off by default): flannel0 ->
    // peers on a worker thread with its own source port (tx-worker.ts). On the
    // 2-vCPU lab it measured no faster than one thread (bench/offloads.ts,
    // config tx-worker), so one thread stays the default.
    const txWorker = process.env.FLANNEL_TS_TX_WORKER === '1';
    const dp = new DataPlane(tun, udp, table, { directions: txWorker ? 'rx' : 'both' });
    this.dataPlane = dp;
    dp.localAddress = { ip: parseIp4(ext.ifaceAddr), port: config.port };
    dp.start();
    if (txWorker) {
      this.txThread = await TxThread.start(
        { tunFd: tun.fd, tunName: tun.name, bindIp: parseIp4(ext.ifaceAddr), port: config.port, sndbuf: SOCKET_BUFFER, gso: want.udpGso },
        table,
        dp.counters,
        (err) => {
          // Nothing would send to peers any more: flanneld exits (and is restarted) rather than black-holing.
          log.error({ err }, 'The TX worker thread died');
          process.exit(1);
        },
      );
      log.info(`TX worker thread: flannel0 -> peers on its own thread, from UDP port ${this.txThread.port}`);
    }
    const on = this.offloadsEnabled!;
    const state = (feature: string, asked: boolean) => (on[feature] ? 'on' : asked ? 'off (refused by the kernel)' : 'off');
    log.info(
      { offloads: on },
      `${tun.name} is up: ${formatIp4(lease.subnet.ip)}/32, MTU ${this.mtu}, route ${config.network}; UDP ${ext.ifaceAddr}:${config.port}; ` +
        `offloads: TUN TSO ${state('tun_tso', want.tunOffload)}, TUN GRO ${state('tun_gro', want.tunGro)}, ` +
        `UDP GSO ${state('udp_gso', want.udpGso)}, UDP GRO ${state('udp_gro', want.udpGro)}`,
    );
    return this.mtu;
  }

  /**
   * The offloads in use now: tun_tso (super-packets read and split), tun_gro
   * (coalesced writes), udp_gso, udp_gro. Some turn off by themselves when the
   * kernel refuses them at run time (see src/tun/native).
   */
  get offloadsEnabled(): Record<string, boolean> | undefined {
    const tun = this.tun;
    const udp = this.udp;
    if (!tun || !udp || tun.closed || udp.closed) return undefined;
    const t = tun.offloads;
    const u = udp.offloads;
    return { tun_tso: t.tso, tun_gro: t.gro, udp_gso: u.gso, udp_gro: u.gro };
  }

  leasesChanged(_diff: LeaseDiff): void {
    // Nothing to program: the data plane reads the lease table per packet
    // (a TX worker reads its own copy, replaced here).
    this.txThread?.leasesChanged();
  }

  async relocate(lease: Lease): Promise<void> {
    await configureTun({ name: TUN_NAME, address: formatIp4(lease.subnet.ip), network: this.network!.toString(), mtu: this.mtu });
    this.txThread?.leasesChanged();
  }

  async stop(): Promise<void> {
    await this.txThread?.stop();
    this.dataPlane?.stop();
  }

  setTracer(t: Tracer | undefined): void {
    if (this.dataPlane) this.dataPlane.tracer = t;
  }

  get counters(): Counters | undefined {
    return this.dataPlane?.counters;
  }

  get batchSizes(): Float64Array | undefined {
    return this.dataPlane?.batchSizes;
  }
}
