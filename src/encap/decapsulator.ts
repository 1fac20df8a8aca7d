// UDP -> TUN: admits a datagram into flannel0 only if it comes from a current
// lease's public IP and carries a well-formed IPv4 packet for this host's
// subnet (not its broadcast address). Everything else is dropped and counted: the
// overlay must not become a way into pods.

import type { LeaseTable } from '../routes/lease-table';
import { type PacketBatch, D_ADDR, D_LEN, D_OFF, DESC_WORDS } from '../tun/batch';
import { type Counters, DropReason } from './counters';
import * as ip from './ipv4';

export class Decapsulator {
  constructor(
    private readonly table: LeaseTable,
    private readonly counters: Counters,
    /** Most descriptors a batch can hold (the verdicts array's size). */
    capacity = 4096,
  ) {
    this.verdicts = new Uint8Array(capacity);
    this.peerOf = new Int32Array(capacity);
  }

  /** Per admitted descriptor of the last `process` call: the sending peer's index (counted after the write, in pump.ts). */
  readonly peerOf: Int32Array;

  /**
   * Per descriptor of the last `process` call: 0 = forwarded, else the
   * DropReason. Written for every packet (one byte store) so a tracer can
   * explain decisions without a second code path.
   */
  readonly verdicts: Uint8Array;

  /** Bytes of the packets the last `process` call admitted. */
  lastBytes = 0;

  /**
   * Filters the datagrams of `batch` in place (length 0 = dropped, counted)
   * and decrements TTL on the rest. Returns the number to write to the TUN.
   */
  process(batch: PacketBatch): number {
    const d = batch.data;
    const desc = batch.desc;
    const c = this.counters;
    const drops = c.rxDrops;
    const v = this.verdicts;
    const po = this.peerOf;
    const local = this.table.localSubnet;
    if (local === undefined) {
      // No lease yet: nothing can be for us.
      for (let i = 0; i < batch.count; i++) desc[i * DESC_WORDS + D_LEN] = 0;
      drops[DropReason.not_for_this_host] += batch.count;
      v.fill(DropReason.not_for_this_host, 0, batch.count);
      return 0;
    }
    const net = local.ip;
    const mask = local.mask;
    const bcast = local.last;
    let out = 0;
    let bytes = 0;
    for (let i = 0, k = 0; i < batch.count; i++, k += DESC_WORDS) {
      const off = desc[k + D_OFF];
      const len = desc[k + D_LEN];
      if (len < 0) {
        drops[DropReason.oversize]++;
        v[i] = DropReason.oversize;
        desc[k + D_LEN] = 0;
        continue;
      }
      const peer = this.table.peerByAddress(desc[k + D_ADDR] >>> 0);
      if (peer === undefined) {
        drops[DropReason.unknown_source]++;
        v[i] = DropReason.unknown_source;
        desc[k + D_LEN] = 0;
        continue;
      }
      const check = ip.checkHeader(d, off, len);
      if (check !== ip.HeaderCheck.OK) {
        drops[check]++;
        v[i] = check;
        desc[k + D_LEN] = 0;
        continue;
      }
      if (!ip.headerChecksumOk(d, off)) {
        drops[DropReason.bad_checksum]++;
        v[i] = DropReason.bad_checksum;
        desc[k + D_LEN] = 0;
        continue;
      }
      const dst = ip.dst(d, off);
      // The network address stays admissible: it is flannel0's own /32, the
      // source the kernel picks when this host itself talks to remote pods.
      if ((dst & mask) >>> 0 !== net || dst === bcast) {
        drops[DropReason.not_for_this_host]++;
        v[i] = DropReason.not_for_this_host;
        desc[k + D_LEN] = 0;
        continue;
      }
      if (ip.decrementTtl(d, off) === 0) {
        drops[DropReason.ttl_expired]++;
        v[i] = DropReason.ttl_expired;
        desc[k + D_LEN] = 0;
        continue;
      }
      po[i] = peer.index;
      bytes += len;
      v[i] = 0;
      out++;
    }
    this.lastBytes = bytes;
    return out;
  }
}
