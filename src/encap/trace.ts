// Packet tracing for `flannel-ts trace`: after each batch, a Tracer (when one
// is attached) reads the verdicts the Encapsulator/Decapsulator wrote and
// reports matching packets, decoded. Sampled and rate limited, so a trace on
// a busy node stays cheap; with no tracer the data plane pays one `undefined`
// check per batch.

import { formatIp4 } from '../routes/ip4';
import type { LeaseTable } from '../routes/lease-table';
import { D_ADDR, D_LEN, D_OFF, D_PORT, DESC_WORDS, type PacketBatch } from '../tun/batch';
import { DROP_REASONS, DropReason, type DropReasonName } from './counters';
import * as ip from './ipv4';

export interface TraceFilter {
  /** Match packets whose inner source or destination is this address. */
  host?: number;
  /** Match this IP protocol number (1 ICMP, 6 TCP, 17 UDP). */
  protocol?: number;
  /** Only report dropped packets. */
  dropsOnly?: boolean;
}

export interface InnerHeader {
  length: number;
  ttl: number;
  protocol: number;
  src: string;
  dst: string;
  icmp?: { type: number; code: number; id?: number; seq?: number };
  ports?: { src: number; dst: number };
}

export interface TraceEvent {
  time: string;
  /** tx: read from flannel0, going to a peer; rx: received from a peer, going to flannel0. */
  direction: 'tx' | 'rx';
  decision: 'forwarded' | DropReasonName;
  /** The peer chosen (tx) or the lease holder it came from (rx). */
  peer?: { subnet: string; publicIp: string };
  /** The UDP datagram carrying it: ours to the peer (tx) or the peer's to us (rx). */
  outer?: { src: string; srcPort: number; dst: string; dstPort: number; udpLength: number };
  inner?: InnerHeader;
  /** The first bytes of the inner packet, hex. */
  hex: string;
}

const REASON_NAMES: DropReasonName[] = [];
for (const r of DROP_REASONS) REASON_NAMES[DropReason[r]] = r;

export class Tracer {
  private seen = 0;
  private windowStart = 0;
  private inWindow = 0;

  constructor(
    readonly filter: TraceFilter,
    /** Where events go; on the data-plane thread, a post to the main thread, which calls the admin socket's sink. */
    readonly sink: (e: TraceEvent) => void,
    /** Report one in `sampleEvery` matching packets. */
    readonly sampleEvery = 1,
    /** At most this many events per second. */
    readonly maxPerSecond = 200,
  ) {}

  /**
   * Reports the batch's matching packets. `local` is this node's UDP address
   * (the outer source on tx, destination on rx).
   */
  observe(direction: 'tx' | 'rx', batch: PacketBatch, verdicts: Uint8Array, table: LeaseTable, local: { ip: number; port: number }): void {
    const d = batch.data;
    for (let i = 0; i < batch.count; i++) {
      const k = i * DESC_WORDS;
      const off = batch.desc[k + D_OFF];
      const verdict = verdicts[i];
      if (this.filter.dropsOnly && verdict === 0) continue;
      const readable = batch.slotSize - (off % batch.slotSize) >= ip.IPV4_MIN_HEADER && d[off] >>> 4 === 4;
      if (this.filter.host !== undefined && (!readable || (ip.src(d, off) !== this.filter.host && ip.dst(d, off) !== this.filter.host))) continue;
      if (this.filter.protocol !== undefined && (!readable || ip.protocol(d, off) !== this.filter.protocol)) continue;
      if (this.seen++ % this.sampleEvery !== 0 || !this.admit()) continue;
      this.sink(this.describe(direction, batch, i, verdict, table, local));
    }
  }

  private admit(): boolean {
    const now = Date.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.inWindow = 0;
    }
    return this.inWindow++ < this.maxPerSecond;
  }

  private describe(direction: 'tx' | 'rx', batch: PacketBatch, i: number, verdict: number, table: LeaseTable, local: { ip: number; port: number }): TraceEvent {
    const d = batch.data;
    const k = i * DESC_WORDS;
    const off = batch.desc[k + D_OFF];
    const room = batch.slotSize - (off % batch.slotSize);
    const len = batch.desc[k + D_LEN] > 0 ? batch.desc[k + D_LEN] : Math.min(room, d[off] >>> 4 === 4 ? ip.totalLength(d, off) : 64);
    const ev: TraceEvent = {
      time: new Date().toISOString(),
      direction,
      decision: verdict === 0 ? 'forwarded' : (REASON_NAMES[verdict] ?? 'unknown'),
      hex: d.subarray(off, off + Math.min(len, 64)).toString('hex'),
    };
    if (len >= ip.IPV4_MIN_HEADER && d[off] >>> 4 === 4) ev.inner = decodeInner(d, off, len);
    const addr = batch.desc[k + D_ADDR] >>> 0;
    const port = batch.desc[k + D_PORT];
    if (direction === 'tx' && verdict === 0) {
      const peer = table.peerByAddress(addr);
      if (peer) ev.peer = { subnet: peer.subnet.toString(), publicIp: formatIp4(peer.publicIp) };
      ev.outer = { src: formatIp4(local.ip), srcPort: local.port, dst: formatIp4(addr), dstPort: port, udpLength: 8 + len };
    } else if (direction === 'rx') {
      const peer = table.peerByAddress(addr);
      if (peer) ev.peer = { subnet: peer.subnet.toString(), publicIp: formatIp4(peer.publicIp) };
      ev.outer = { src: formatIp4(addr), srcPort: port, dst: formatIp4(local.ip), dstPort: local.port, udpLength: 8 + len };
    }
    return ev;
  }
}

export function decodeInner(d: Uint8Array, off: number, len: number): InnerHeader {
  const ihl = ip.headerLength(d, off);
  const h: InnerHeader = {
    length: ip.totalLength(d, off),
    ttl: ip.ttl(d, off),
    protocol: ip.protocol(d, off),
    src: formatIp4(ip.src(d, off)),
    dst: formatIp4(ip.dst(d, off)),
  };
  const t = off + ihl;
  if (h.protocol === ip.PROTO_ICMP && len >= ihl + 8) {
    h.icmp = { type: d[t], code: d[t + 1] };
    if (d[t] === 0 || d[t] === 8) {
      h.icmp.id = (d[t + 4] << 8) | d[t + 5];
      h.icmp.seq = (d[t + 6] << 8) | d[t + 7];
    }
  } else if ((h.protocol === ip.PROTO_TCP || h.protocol === ip.PROTO_UDP) && len >= ihl + 4) {
    h.ports = { src: (d[t] << 8) | d[t + 1], dst: (d[t + 2] << 8) | d[t + 3] };
  }
  return h;
}
