// flannel's udp backend: flannel0 (a TUN device) and a UDP socket on port
// 8285, with flannel-ts's batched data plane between them. Every datagram
// carries exactly one IPv4 packet (flannel's wire format).

import type { Counters } from '../../encap/counters';
import type { Tracer } from '../../encap/trace';
import { DataPlane, type SpareThread } from '../../encap/data-plane';
import { type Ip4Net, formatIp4, parseIp4 } from '../../routes/ip4';
import type { Lease, LeaseDiff, LeaseTable } from '../../routes/lease-table';
import type { NetworkConfig } from '../../subnet/config';
import { configureTun } from '../../tun/configure';
import { TunDevice } from '../../tun/tun-device';
import { UdpSocket } from '../../tun/udp-socket';
import type { Backend, BackendContext, DataPlaneTuning } from '../backend';
import { FlannelError } from '../../util/errors';

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

  /** The data-plane thread, booting from prepare() on so that start() finds it ready (see DataPlane.spawnThread). */
  private spare: SpareThread | undefined;

  constructor(private readonly ctx: BackendContext) {}

  get mtu(): number {
    return this.ctx.ext.mtu - UDP_OVERHEAD;
  }

  async prepare(): Promise<unknown> {
    this.spare ??= DataPlane.spawnThread();
    return undefined;
  }

  /** udp nodes (stock flannel ones omit BackendType, read as udp) are reachable; kernel backends are not. */
  accepts(lease: Lease): boolean {
    return lease.backendType === 'udp';
  }

  async start(lease: Lease, config: NetworkConfig, table: LeaseTable): Promise<number> {
    const { ext, log } = this.ctx;
    this.network = config.network;
    const tuning = { ...DEFAULT_TUNING, ...definedOnly(this.ctx.dataPlane ?? {}) };
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
    // The forwarding loop runs on a thread of its own (src/encap/data-plane-thread.ts),
    // woken by the kernel; start resolves once it forwards, so readiness waits for it.
    const spare = this.spare;
    this.spare = undefined;
    const dp = new DataPlane(
      tun,
      udp,
      table,
      {
        tso: tun.offloads.tso,
        local: { ip: parseIp4(ext.ifaceAddr), port: config.port },
        ...tuning,
        onWarning: (msg) => log.warn(msg),
        onDeath: (err) => {
          // Nothing would forward any more: flanneld exits (and is restarted by systemd) rather than black-holing.
          const e = new FlannelError('FLANNEL_ERR_DATA_PLANE', `the data-plane thread died: ${err.message}; flanneld exits so that it is restarted`, { cause: err });
          log.error({ err: e, code: e.code }, e.message);
          process.exit(1);
        },
      },
      spare,
    );
    this.dataPlane = dp;
    try {
      await dp.start();
    } catch (e) {
      await dp.stop(); // closes flannel0 and the socket: nothing is left holding the device
      this.dataPlane = undefined;
      throw e;
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
    const dp = this.dataPlane;
    if (!tun || !udp || !dp || tun.closed || udp.closed) return undefined;
    // As the data-plane thread sees them (a refusal there turns one off).
    const o = dp.offloads;
    return { tun_tso: o[0] === 1, tun_gro: o[1] === 1, udp_gso: o[2] === 1, udp_gro: o[3] === 1 };
  }

  leasesChanged(_diff: LeaseDiff): void {
    // Nothing to program: the data-plane thread's copy of the lease table
    // follows every change of the table by itself (LeaseTable.onChange).
  }

  async relocate(lease: Lease): Promise<void> {
    await configureTun({ name: TUN_NAME, address: formatIp4(lease.subnet.ip), network: this.network!.toString(), mtu: this.mtu });
  }

  async stop(): Promise<void> {
    this.spare?.dispose();
    this.spare = undefined;
    await this.dataPlane?.stop();
  }

  /** Resolves once the data-plane thread forwards (readiness, READY=1 wait on it); undefined before start. */
  get forwarding(): Promise<void> | undefined {
    return this.dataPlane?.forwarding;
  }

  /** True while the data-plane thread forwards. */
  get isForwarding(): boolean {
    return this.dataPlane?.isForwarding ?? false;
  }

  setTracer(t: Tracer | undefined): void {
    this.dataPlane?.setTracer(t);
  }

  get counters(): Counters | undefined {
    return this.dataPlane?.counters;
  }

  /** The data-plane thread's wake-ups and stage times, for /metrics. */
  get dataPlaneStats(): { waitStats: Float64Array; timing: Float64Array | undefined } | undefined {
    const dp = this.dataPlane;
    return dp ? { waitStats: dp.waitStats, timing: dp.timing } : undefined;
  }

  get batchSizes(): Float64Array | undefined {
    return this.dataPlane?.batchSizes;
  }
}

/**
 * The data-plane thread's defaults, from the latency measurements in the
 * README: a warm-up rehearsal every 20 ms while traffic is sparse; no spin
 * before sleeping (on two CPUs a spinning thread delays the very peer it
 * waits for); nice -10 while the thread is mostly idle (PriorityGovernor),
 * which cut ping p99 during lease churn and cost no throughput; the kernel's
 * time slice (a 100 µs one cut churn p99 a little more but made one ping a
 * second 0.18 ms slower); the program files not locked (with the warm-up on
 * it changed neither page faults nor latency here).
 */
const DEFAULT_TUNING: DataPlaneTuning = { warmMs: 20, spinUs: 0, nice: -10, sliceUs: 0, mlock: false, timing: false };

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
