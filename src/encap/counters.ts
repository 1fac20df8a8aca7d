// Data-plane counters. Plain typed arrays indexed by reason or peer, so the hot
// path does one array increment per packet and the metrics endpoint reads the
// same memory. Float64 keeps exact integers up to 2^53 (no wrap in practice).

/** Drop reasons; the numeric values are array indices (and HeaderCheck shares 1..4). */
export const DropReason = {
  truncated: 1,
  not_ipv4: 2,
  bad_header_len: 3,
  bad_total_len: 4,
  bad_checksum: 5,
  ttl_expired: 6,
  no_route: 7,
  local_destination: 8,
  non_unicast_destination: 9,
  unknown_source: 10,
  not_for_this_host: 11,
  oversize: 12,
  send_failed: 13,
  tun_write_failed: 14,
} as const;
export type DropReasonName = keyof typeof DropReason;
export const DROP_REASONS = Object.keys(DropReason) as DropReasonName[];
const REASON_SLOTS = 16;

/** Per-direction drop counts: `tx` for packets read from flannel0, `rx` for datagrams from the underlay. */
export class Counters {
  txPackets = 0; // packets sent to peers
  txBytes = 0;
  rxPackets = 0; // packets written into flannel0
  rxBytes = 0;
  icmpSent = 0; // ICMP errors written back into flannel0
  icmpSuppressed = 0; // ICMP errors the rate limit held back
  batches = 0;
  readonly txDrops = new Float64Array(REASON_SLOTS);
  readonly rxDrops = new Float64Array(REASON_SLOTS);
  /** [txPackets, txBytes, rxPackets, rxBytes] per peer index. */
  peer = new Float64Array(4 * 64);

  peerSlot(index: number): number {
    const need = (index + 1) * 4;
    if (need > this.peer.length) {
      const grown = new Float64Array(Math.max(need, this.peer.length * 2));
      grown.set(this.peer);
      this.peer = grown;
    }
    return index * 4;
  }

  drops(dir: 'tx' | 'rx'): Record<DropReasonName, number> {
    const a = dir === 'tx' ? this.txDrops : this.rxDrops;
    const out = {} as Record<DropReasonName, number>;
    for (const r of DROP_REASONS) out[r] = a[DropReason[r]];
    return out;
  }

  totalDrops(): number {
    let n = 0;
    for (let i = 0; i < REASON_SLOTS; i++) n += this.txDrops[i] + this.rxDrops[i];
    return n;
  }
}
