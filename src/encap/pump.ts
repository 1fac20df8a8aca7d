// The forwarding loop's body: flannel0 -> Encapsulator -> UDP socket, and
// UDP socket -> Decapsulator -> flannel0, a bounded number of batches per
// readiness wake-up. It knows nothing of threads or event loops: the
// data-plane thread (data-plane-thread.ts) calls pumpTun/pumpUdp when its wait
// says an fd is readable, and tests call them with channel fakes.
//
// With TSO on flannel0 a read batch holds whole TCP super-packets, already
// split by the addon into MTU-sized packets; the Encapsulator routes each
// super-packet once.

import type { LeaseTable } from '../routes/lease-table';
import { GRO_MAX_SEGMENTS, MAX_PACKET, PacketBatch, READ_INFO_DRAINED, TSO_MIN_SLOT, D_LEN, DESC_WORDS, MAX_BATCH } from '../tun/batch';
import { Counters, DropReason } from './counters';
import { Decapsulator } from './decapsulator';
import { Encapsulator } from './encapsulator';
import { IcmpResponder } from './icmp';
import type { TunPort, UdpPort } from './ports';
import * as ip from './ipv4';
import type { Tracer } from './trace';

export interface PumpOptions {
  /** Packets per batch (one syscall crossing each way). */
  batchSize?: number;
  /**
   * Batches per wake-up before the thread looks at its control messages
   * again. The fds are level-triggered, so leftover packets wake it at once.
   */
  budget?: number;
  /** flannel0 has TSO on: reads are packed super-packets (see batch.ts). */
  tso?: boolean;
  /**
   * With TSO on flannel0: TUN reads per batch (each may be a 64 KiB
   * super-packet, split into ~46 rows; at most MAX_BATCH rows, udpSend's
   * limit). Default 16, ~1 MiB of slab (4, 8 and 16 measured the same).
   */
  tsoReads?: number;
}

/** The largest number of rows a batch of this pump can hold (the histogram's size). */
function histogramSize(size: number, tx: PacketBatch): number {
  return Math.max(size * GRO_MAX_SEGMENTS, tx.descCapacity) + 1;
}

export class Pump {
  private readonly txBatch: PacketBatch;
  private readonly rxBatch: PacketBatch;
  private readonly encap: Encapsulator;
  private readonly decap: Decapsulator;
  private readonly icmp: IcmpResponder;
  private readonly budget: number;
  /** Attached while `flannel-ts trace` runs. */
  tracer: Tracer | undefined;
  /** This node's UDP address, for the outer header in traces. */
  localAddress = { ip: 0, port: 0 };
  /**
   * Stage timing (--dataplane-timing), for the first batch of each
   * wake-up: the thread's clock (dpClock, ns) and, per direction d (0 tx,
   * 1 rx), words 4d..4d+3 summing [batches timed, ns wake->read done,
   * ns deciding, ns sending/writing]. Word 8 holds the wake time (dpWait's
   * stats[3]), 9..11 scratch. Undefined: no timing (one check per batch).
   */
  timing: Float64Array | undefined;
  clock: ((out: Float64Array, index: number) => void) | undefined;
  /** Batch-size histogram: index = packets in the batch (for metrics); shared memory when given. */
  readonly batchSizes: Float64Array;

  constructor(
    private readonly tun: TunPort,
    private readonly udp: UdpPort,
    private readonly table: LeaseTable,
    readonly counters: Counters,
    opts: PumpOptions = {},
    batchSizes?: Float64Array,
  ) {
    const size = opts.batchSize ?? 64;
    this.budget = opts.budget ?? 8;
    const reads = opts.tsoReads ?? 16;
    this.txBatch = opts.tso
      ? // TSO: packed reads of up to 64 KiB each, one row per segment;
        // udpSend takes at most MAX_BATCH rows per call.
        new PacketBatch(reads, TSO_MIN_SLOT + 7, Math.min(reads * 64, MAX_BATCH))
      : new PacketBatch(size);
    // With UDP GRO one received datagram may hold up to 64 packets: room for
    // `size` datagrams' worth of descriptors pointing into their slots.
    this.rxBatch = new PacketBatch(size, MAX_PACKET + 1, size * GRO_MAX_SEGMENTS);
    const want = Pump.histogramLength(opts);
    if (batchSizes !== undefined && batchSizes.length < want) throw new RangeError(`batchSizes needs ${want} elements, got ${batchSizes.length}`);
    this.batchSizes = batchSizes ?? new Float64Array(want);
    this.icmp = new IcmpResponder();
    this.encap = new Encapsulator(table, counters, this.icmp, this.txBatch.descCapacity);
    this.decap = new Decapsulator(table, counters, this.rxBatch.descCapacity);
    // warm(): the same classes (so the same compiled code) on a one-packet
    // batch with counters of their own, so a rehearsal is never counted.
    const scratch = new Counters();
    this.warmBatch = new PacketBatch(1, 64);
    this.warmEncap = new Encapsulator(table, scratch, new IcmpResponder(), 1);
    this.warmDecap = new Decapsulator(table, scratch, 1);
  }

  private readonly warmBatch: PacketBatch;
  private readonly warmEncap: Encapsulator;
  private readonly warmDecap: Decapsulator;

  /**
   * Keeps an idle data plane warm: both fds are polled (a packet that just
   * arrived is forwarded as usual) and a one-packet rehearsal runs through the
   * Encapsulator and Decapsulator on scratch counters, so the code, the lease
   * table and the syscall path stay resident and hot between sparse packets
   * (measured: README, "sparse traffic"). Allocates only a Map iterator
   * (anyPeer) per call, a few times a second at most.
   */
  warm(): void {
    this.pumpTun();
    this.pumpUdp();
    const b = this.warmBatch;
    const d = b.data;
    const peer = this.table.anyPeer();
    const local = this.table.localSubnet;
    // A 20-byte UDP-less IPv4 header from this subnet to the peer (or to nowhere).
    d.fill(0, 0, 20);
    d[0] = 0x45;
    d[3] = 20;
    d[8] = 64;
    d[9] = ip.PROTO_UDP;
    ip.writeAddr(d, 12, local === undefined ? 0 : (local.ip + 2) >>> 0);
    ip.writeAddr(d, 16, peer === undefined ? 0 : (peer.subnet.ip + 2) >>> 0);
    ip.setHeaderChecksum(d, 0);
    b.desc[D_LEN] = 20;
    b.desc[0] = 0;
    b.count = 1;
    this.warmEncap.process(b);
    // And back in, as if from that peer.
    ip.writeAddr(d, 12, peer === undefined ? 0 : (peer.subnet.ip + 2) >>> 0);
    ip.writeAddr(d, 16, local === undefined ? 0 : (local.ip + 2) >>> 0);
    d[10] = 0;
    d[11] = 0;
    ip.setHeaderChecksum(d, 0);
    b.desc[D_LEN] = 20;
    b.desc[2] = peer === undefined ? 0 : peer.publicIp | 0;
    this.warmDecap.process(b);
  }

  /** Elements the batch-size histogram needs for these options (to allocate it in shared memory). */
  static histogramLength(opts: PumpOptions = {}): number {
    const size = opts.batchSize ?? 64;
    const reads = opts.tsoReads ?? 16;
    const txRows = opts.tso ? Math.min(reads * 64, MAX_BATCH) : size;
    return histogramSize(size, { descCapacity: txRows } as PacketBatch);
  }

  /** Moves flannel0 -> peers until the queue is empty or the budget is spent. */
  pumpTun(): void {
    const b = this.txBatch;
    const c = this.counters;
    const info = b.readInfo;
    for (let round = 0; round < this.budget; round++) {
      const n = this.tun.read(b);
      if (n === 0) {
        if (info[READ_INFO_DRAINED] === 1) break;
        continue; // everything read was dropped (malformed GSO); the queue may hold more
      }
      const t = round === 0 ? this.timing : undefined;
      if (t !== undefined) this.clock!(t, 9);
      c.batches++;
      this.batchSizes[n]++;
      const toSend = this.encap.process(b);
      if (t !== undefined) this.clock!(t, 10);
      if (this.tracer !== undefined) this.tracer.observe('tx', b, this.encap.verdicts, this.table, this.localAddress);
      if (toSend > 0) {
        const sent = this.udp.send(b, n);
        c.txPackets += sent;
        c.txBytes += countSent(b, n, this.encap.peerOf, c, 0);
        c.txDrops[DropReason.send_failed] += toSend - sent;
      }
      if (t !== undefined) stage(t, 0, this.clock!);
      if (this.icmp.batch.count > 0) {
        this.tun.write(this.icmp.batch, this.icmp.batch.count);
        this.icmp.reset();
      }
      if (info[READ_INFO_DRAINED] === 1) break; // the TUN queue is empty
    }
  }

  /** Moves peers -> flannel0 until a receive comes back empty or the budget is spent. */
  pumpUdp(): void {
    const b = this.rxBatch;
    const c = this.counters;
    for (let round = 0; round < this.budget; round++) {
      const n = this.udp.recv(b);
      if (n === 0) break;
      const t = round === 0 ? this.timing : undefined;
      if (t !== undefined) this.clock!(t, 9);
      c.batches++;
      this.batchSizes[n]++;
      const toWrite = this.decap.process(b);
      if (t !== undefined) this.clock!(t, 10);
      if (this.tracer !== undefined) this.tracer.observe('rx', b, this.decap.verdicts, this.table, this.localAddress);
      if (toWrite > 0) {
        const written = this.tun.write(b, n);
        c.rxPackets += written;
        c.rxBytes += countSent(b, n, this.decap.peerOf, c, 2);
        c.rxDrops[DropReason.tun_write_failed] += toWrite - written;
      }
      if (t !== undefined) stage(t, 1, this.clock!);
      // n counts packets, not datagrams (GRO): keep going until a call comes
      // back empty or the budget is spent; level-triggered polling resumes us.
    }
  }
}

/** Adds one timed batch of direction d (see Pump.timing): t[9] read done, t[10] decided, now sent. */
function stage(t: Float64Array, d: number, clock: (out: Float64Array, index: number) => void): void {
  clock(t, 11);
  const w = 4 * d;
  t[w]++;
  t[w + 1] += t[9] - t[8];
  t[w + 2] += t[10] - t[9];
  t[w + 3] += t[11] - t[10];
}

/**
 * After a send or write: adds each row that went (D_LEN still > 0) to its
 * peer's packets and bytes (`word` 0 = tx, 2 = rx) and returns the bytes.
 * The addon set refused rows to 0, so this counts exactly what went.
 */
export function countSent(b: PacketBatch, n: number, peerOf: Int32Array, c: Counters, word: number): number {
  const desc = b.desc;
  let bytes = 0;
  for (let i = 0, k = D_LEN; i < n; i++, k += DESC_WORDS) {
    const len = desc[k];
    if (len <= 0) continue;
    const slot = c.peerSlot(peerOf[i]) + word;
    const peer = c.peer;
    peer[slot]++;
    peer[slot + 1] += len;
    bytes += len;
  }
  return bytes;
}
