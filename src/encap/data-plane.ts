// The loop that moves batches: flannel0 -> Encapsulator -> UDP socket, and
// UDP socket -> Decapsulator -> flannel0. One JS call per readiness wake-up,
// one read and one send syscall crossing per batch. With TSO on flannel0 a
// read batch holds whole TCP super-packets, already split by the addon into
// MTU-sized packets; the Encapsulator routes each super-packet once.

import { LeaseTable } from '../routes/lease-table';
import { GRO_MAX_SEGMENTS, MAX_PACKET, PacketBatch, READ_INFO_DRAINED, TSO_MIN_SLOT } from '../tun/batch';
import { TunDevice } from '../tun/tun-device';
import { UdpSocket } from '../tun/udp-socket';
import { Counters, DropReason } from './counters';
import { Decapsulator } from './decapsulator';
import { Encapsulator } from './encapsulator';
import { IcmpResponder } from './icmp';
import { Tracer } from './trace';

export interface DataPlaneOptions {
  /** Packets per batch (one syscall crossing each way). */
  batchSize?: number;
  /**
   * Batches per wake-up before yielding to the event loop. The fds are
   * level-triggered, so leftover packets wake us again after etcd, timers etc.
   */
  budget?: number;
  /**
   * With TSO on flannel0: TUN reads per batch (each may be a 64 KiB
   * super-packet, split into ~46 rows; at most 1024 rows, udpSend's limit).
   * Default 16, ~1 MiB of slab (4, 8 and 16 measured the same).
   */
  tsoReads?: number;
  /**
   * Which way this data plane moves packets: both (default), only flannel0
   * -> peers (tx), or only peers -> flannel0 (rx). With a TX worker thread
   * (src/backend/udp/tx-worker.ts) the main thread runs rx and the worker tx.
   */
  directions?: 'both' | 'tx' | 'rx';
}

export class DataPlane {
  readonly counters = new Counters();
  private readonly txBatch: PacketBatch;
  private readonly rxBatch: PacketBatch;
  private readonly encap: Encapsulator;
  private readonly decap: Decapsulator;
  private readonly icmp: IcmpResponder;
  private readonly budget: number;
  private readonly directions: 'both' | 'tx' | 'rx';
  /** Attached by the admin socket while `flannel-ts trace` runs. */
  tracer: Tracer | undefined;
  /** This node's UDP address, for the outer header in traces. */
  localAddress = { ip: 0, port: 0 };
  /** Batch-size histogram: index = packets in the batch (for metrics). */
  readonly batchSizes: Float64Array;

  constructor(
    private readonly tun: TunDevice,
    private readonly udp: UdpSocket,
    private readonly table: LeaseTable,
    opts: DataPlaneOptions = {},
  ) {
    const size = opts.batchSize ?? 64;
    this.budget = opts.budget ?? 8;
    this.directions = opts.directions ?? 'both';
    // A direction this data plane does not run gets a token batch.
    const unused = () => new PacketBatch(1, 2048);
    const reads = opts.tsoReads ?? 16;
    this.txBatch =
      this.directions === 'rx'
        ? unused()
        : tun.offloads.tso
          ? // TSO: packed reads of up to 64 KiB each, one row per segment;
            // udpSend takes at most MAX_BATCH (1024) rows per call.
            new PacketBatch(reads, TSO_MIN_SLOT + 7, Math.min(reads * 64, 1024))
          : new PacketBatch(size);
    // With UDP GRO one received datagram may hold up to 64 packets: room for
    // `size` datagrams' worth of descriptors pointing into their slots.
    this.rxBatch = this.directions === 'tx' ? unused() : new PacketBatch(size, MAX_PACKET + 1, size * GRO_MAX_SEGMENTS);
    this.batchSizes = new Float64Array(Math.max(size * GRO_MAX_SEGMENTS, this.txBatch.descCapacity) + 1);
    this.icmp = new IcmpResponder();
    this.encap = new Encapsulator(table, this.counters, this.icmp, this.txBatch.descCapacity);
    this.decap = new Decapsulator(table, this.counters, this.rxBatch.descCapacity);
  }

  start(): void {
    if (this.directions !== 'rx') this.tun.onReadable(() => this.pumpTun());
    if (this.directions !== 'tx') this.udp.onReadable(() => this.pumpUdp());
  }

  private pumpTun(): void {
    const b = this.txBatch;
    const c = this.counters;
    for (let round = 0; round < this.budget; round++) {
      const n = this.tun.read(b);
      const info = b.readInfo;
      if (n === 0) {
        if (info[READ_INFO_DRAINED] === 1) break;
        continue; // everything read was dropped (malformed GSO); the queue may hold more
      }
      c.batches++;
      this.batchSizes[n]++;
      const toSend = this.encap.process(b);
      if (this.tracer !== undefined) this.tracer.observe('tx', b, this.encap.verdicts, this.table, this.localAddress);
      if (toSend > 0) {
        const sent = this.udp.send(b, n);
        c.txPackets += sent;
        if (sent === toSend) c.txBytes += this.encap.lastBytes;
        c.txDrops[DropReason.send_failed] += toSend - sent;
      }
      if (this.icmp.batch.count > 0) {
        this.tun.write(this.icmp.batch, this.icmp.batch.count);
        this.icmp.reset();
      }
      if (info[READ_INFO_DRAINED] === 1) break; // the TUN queue is empty
    }
  }

  private pumpUdp(): void {
    const b = this.rxBatch;
    const c = this.counters;
    for (let round = 0; round < this.budget; round++) {
      const n = this.udp.recv(b);
      if (n === 0) break;
      c.batches++;
      this.batchSizes[n]++;
      const toWrite = this.decap.process(b);
      if (this.tracer !== undefined) this.tracer.observe('rx', b, this.decap.verdicts, this.table, this.localAddress);
      if (toWrite > 0) {
        const written = this.tun.write(b, n);
        c.rxPackets += written;
        if (written === toWrite) c.rxBytes += this.decap.lastBytes;
        c.rxDrops[DropReason.tun_write_failed] += toWrite - written;
      }
      // n counts packets, not datagrams (GRO): keep going until a call comes
      // back empty or the budget is spent; level-triggered polling resumes us.
    }
  }

  stop(): void {
    this.tun.close();
    this.udp.close();
  }
}
