// TUN -> UDP: decides, for each packet read from flannel0, which peer gets it.
// The packet itself becomes the UDP payload unchanged but for TTL and header
// checksum (flannel's wire format: nothing added).

import type { LeaseTable } from '../routes/lease-table';
import { type PacketBatch, D_ADDR, D_LEN, D_OFF, D_PORT, DESC_WORDS, READ_INFO_SUPER } from '../tun/batch';
import { type Counters, DropReason } from './counters';
import type { IcmpResponder } from './icmp';
import * as ip from './ipv4';

export class Encapsulator {
  constructor(
    private readonly table: LeaseTable,
    private readonly counters: Counters,
    private readonly icmp: IcmpResponder,
    /** Most descriptors a batch can hold (the verdicts array's size). */
    capacity = 4096,
  ) {
    this.verdicts = new Uint8Array(capacity);
    this.peerOf = new Int32Array(capacity);
  }

  /**
   * Per forwarded descriptor of the last `process` call: the peer's index.
   * Per-peer counters are added after the send, for the rows that went
   * (countSent in pump.ts), not here.
   */
  readonly peerOf: Int32Array;

  /**
   * Per descriptor of the last `process` call: 0 = forwarded, else the
   * DropReason. Written for every packet (one byte store) so a tracer can
   * explain decisions without a second code path.
   */
  readonly verdicts: Uint8Array;

  /** Bytes of the packets the last `process` call accepted for sending (not all may go: see countSent). */
  lastBytes = 0;

  /**
   * Rewrites the descriptors of `batch` in place: a packet to send gets its
   * peer's address and port; a dropped one gets length 0 and is counted.
   * ICMP errors are queued on the responder. Returns the number to send.
   *
   * One decision per TCP super-packet: when the batch was just read from a
   * TUN with TSO (batch.readInfo says super-packets were split), D_PORT of a
   * super-packet's first segment is its number of segments. The first
   * segment is checked and routed as any packet; when it is forwarded, the
   * rest (built by the addon from the same header: same addresses, protocol
   * and TTL) follow it to the same peer with only their TTL decremented.
   */
  process(batch: PacketBatch): number {
    const d = batch.data;
    const desc = batch.desc;
    const c = this.counters;
    const drops = c.txDrops;
    const v = this.verdicts;
    const po = this.peerOf;
    const local = this.table.localSubnet;
    const localNet = local === undefined ? -1 : local.ip;
    const localMask = local === undefined ? 0 : local.mask;
    const split = batch.readInfo[READ_INFO_SUPER] > 0;
    const count = batch.count;
    let out = 0;
    let bytes = 0;
    for (let i = 0, k = 0; i < count; i++, k += DESC_WORDS) {
      const off = desc[k + D_OFF];
      const len = desc[k + D_LEN];
      const segs = split ? desc[k + D_PORT] : 0;
      const check = ip.checkHeader(d, off, len);
      if (check !== ip.HeaderCheck.OK) {
        drops[check]++;
        v[i] = check;
        desc[k + D_LEN] = 0;
        continue;
      }
      const dst = ip.dst(d, off);
      if (ip.isNonUnicast(dst)) {
        drops[DropReason.non_unicast_destination]++;
        v[i] = DropReason.non_unicast_destination;
        desc[k + D_LEN] = 0;
        continue;
      }
      if ((dst & localMask) >>> 0 === localNet) {
        // Our own subnet lives behind cni0, not the overlay: sending it would loop.
        drops[DropReason.local_destination]++;
        v[i] = DropReason.local_destination;
        desc[k + D_LEN] = 0;
        continue;
      }
      const peer = this.table.lookup(dst);
      if (peer === undefined) {
        drops[DropReason.no_route]++;
        v[i] = DropReason.no_route;
        if (this.icmp.netUnreachable(d, off, len)) c.icmpSent++;
        else c.icmpSuppressed++;
        desc[k + D_LEN] = 0;
        continue;
      }
      if (ip.decrementTtl(d, off) === 0) {
        drops[DropReason.ttl_expired]++;
        v[i] = DropReason.ttl_expired;
        desc[k + D_LEN] = 0;
        continue;
      }
      const addr = peer.publicIp | 0;
      const port = peer.port;
      desc[k + D_ADDR] = addr;
      desc[k + D_PORT] = port;
      let n = 1;
      let sum = len;
      v[i] = 0;
      if (segs > 1) {
        // The other segments of this super-packet (see above).
        const end = Math.min(i + segs, count);
        while (i + 1 < end) {
          i++;
          k += DESC_WORDS;
          ip.decrementTtl(d, desc[k + D_OFF]);
          desc[k + D_ADDR] = addr;
          desc[k + D_PORT] = port;
          sum += desc[k + D_LEN];
          v[i] = 0;
          n++;
        }
      }
      const pi = peer.index;
      for (let j = i - n + 1; j <= i; j++) po[j] = pi;
      bytes += sum;
      out += n;
    }
    this.lastBytes = bytes;
    return out;
  }
}
