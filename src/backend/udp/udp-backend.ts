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

/** flannel's udp encapsulation overhead: outer IPv4 (20) + UDP (8) headers. */
export const UDP_OVERHEAD = 28;
const TUN_NAME = 'flannel0';
/** Large socket buffers: a burst of batches is not dropped by the kernel. */
const SOCKET_BUFFER = 4 * 1024 * 1024;

export class UdpBackend implements Backend {
  readonly type = 'udp';
  private dataPlane: DataPlane | undefined;
  private network: Ip4Net | undefined;

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
    // vnet headers let the receive side write coalesced TCP super-packets (userspace GRO).
    const tun = TunDevice.open(TUN_NAME, { vnetHdr: true });
    let udp: UdpSocket;
    try {
      configureTun({ name: tun.name, address: formatIp4(lease.subnet.ip), network: config.network.toString(), mtu: this.mtu });
      udp = UdpSocket.open(parseIp4(ext.ifaceAddr), config.port, { rcvbuf: SOCKET_BUFFER, sndbuf: SOCKET_BUFFER });
    } catch (e) {
      tun.close();
      throw e;
    }
    this.dataPlane = new DataPlane(tun, udp, table);
    this.dataPlane.localAddress = { ip: parseIp4(ext.ifaceAddr), port: config.port };
    this.dataPlane.start();
    const off = udp.offloads;
    const toff = tun.offloads;
    log.info(
      `${tun.name} is up: ${formatIp4(lease.subnet.ip)}/32, MTU ${this.mtu}, route ${config.network}; UDP ${ext.ifaceAddr}:${config.port} ` +
        `(UDP GSO ${off.gso ? 'on' : 'off'}, UDP GRO ${off.gro ? 'on' : 'off'}, TUN vnet header ${toff.vnetHdr ? 'on' : 'off'}, TCP coalescing ${toff.gro ? 'on' : 'off'})`,
    );
    return this.mtu;
  }

  leasesChanged(_diff: LeaseDiff): void {
    // Nothing to program: the data plane reads the lease table per packet.
  }

  async relocate(lease: Lease): Promise<void> {
    configureTun({ name: TUN_NAME, address: formatIp4(lease.subnet.ip), network: this.network!.toString(), mtu: this.mtu });
  }

  async stop(): Promise<void> {
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
