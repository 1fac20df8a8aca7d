// Data-plane counters. Typed arrays over shared memory, indexed by reason or peer,
// so the hot path does one array increment per packet and the metrics endpoint
// (another thread) reads the same memory. Float64 keeps exact integers up to 2^53 (no wrap in practice).

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

// Word offsets in the shared scalars array.
const TX_PACKETS = 0;
const TX_BYTES = 1;
const RX_PACKETS = 2;
const RX_BYTES = 3;
const ICMP_SENT = 4;
const ICMP_SUPPRESSED = 5;
const BATCHES = 6;
const TX_DROPS = 8;
const RX_DROPS = TX_DROPS + REASON_SLOTS;
const SCALAR_WORDS = RX_DROPS + REASON_SLOTS;
const PEER_SLOTS = 64;

/** The shared memory behind a Counters, as passed to the data-plane thread. */
export interface SharedCounters {
  scalars: SharedArrayBuffer;
  peer: SharedArrayBuffer;
}

/**
 * Per-direction packet, byte and drop counts, and per-peer counts, in
 * SharedArrayBuffers: the data-plane thread (the only writer) and the main
 * thread's /metrics (a reader) see the same memory, with no message between
 * them. Aligned 8-byte stores are never torn on the platforms we build for;
 * a reader may see a batch's counts half-applied, never a wrong number.
 *
 * Per-peer counts grow with the largest peer index: the writer copies them
 * into a bigger buffer and `onPeerGrown` tells the reader (who keeps reading
 * the old, merely stale, buffer until it adopts the new one).
 */
export class Counters {
  private readonly s: Float64Array;
  readonly txDrops: Float64Array; // `tx`: packets read from flannel0
  readonly rxDrops: Float64Array; // `rx`: datagrams from the underlay
  /** [txPackets, txBytes, rxPackets, rxBytes] per peer index. */
  peer: Float64Array;
  /** Called by the writer after the per-peer buffer grew (the data-plane thread posts it to the main thread). */
  onPeerGrown: ((peer: SharedArrayBuffer) => void) | undefined;

  constructor(shared?: SharedCounters) {
    const scalars = shared?.scalars ?? new SharedArrayBuffer(SCALAR_WORDS * 8);
    this.s = new Float64Array(scalars);
    this.txDrops = new Float64Array(scalars, TX_DROPS * 8, REASON_SLOTS);
    this.rxDrops = new Float64Array(scalars, RX_DROPS * 8, REASON_SLOTS);
    this.peer = new Float64Array(shared?.peer ?? new SharedArrayBuffer(4 * PEER_SLOTS * 8));
  }

  /** The memory to hand to another thread's Counters. */
  get shared(): SharedCounters {
    return { scalars: this.s.buffer as SharedArrayBuffer, peer: this.peer.buffer as SharedArrayBuffer };
  }

  /** Reader side: the writer grew the per-peer buffer (it holds everything the old one did). */
  adoptPeer(peer: SharedArrayBuffer): void {
    if (peer.byteLength >= this.peer.byteLength) this.peer = new Float64Array(peer);
  }

  get txPackets(): number {
    return this.s[TX_PACKETS];
  } // packets sent to peers
  set txPackets(v: number) {
    this.s[TX_PACKETS] = v;
  }
  get txBytes(): number {
    return this.s[TX_BYTES];
  }
  set txBytes(v: number) {
    this.s[TX_BYTES] = v;
  }
  get rxPackets(): number {
    return this.s[RX_PACKETS];
  } // packets written into flannel0
  set rxPackets(v: number) {
    this.s[RX_PACKETS] = v;
  }
  get rxBytes(): number {
    return this.s[RX_BYTES];
  }
  set rxBytes(v: number) {
    this.s[RX_BYTES] = v;
  }
  get icmpSent(): number {
    return this.s[ICMP_SENT];
  } // ICMP errors written back into flannel0
  set icmpSent(v: number) {
    this.s[ICMP_SENT] = v;
  }
  get icmpSuppressed(): number {
    return this.s[ICMP_SUPPRESSED];
  } // ICMP errors the rate limit held back
  set icmpSuppressed(v: number) {
    this.s[ICMP_SUPPRESSED] = v;
  }
  get batches(): number {
    return this.s[BATCHES];
  }
  set batches(v: number) {
    this.s[BATCHES] = v;
  }

  /** The first of the peer's four words; grows the buffer when needed (writer side). */
  peerSlot(index: number): number {
    const need = (index + 1) * 4;
    if (need > this.peer.length) {
      const grown = new Float64Array(new SharedArrayBuffer(Math.max(need, this.peer.length * 2) * 8));
      grown.set(this.peer);
      this.peer = grown;
      this.onPeerGrown?.(grown.buffer as SharedArrayBuffer);
    }
    return index * 4;
  }

  /** Reader side: the peer's four words, 0 when the writer has not counted it yet. */
  peerWord(index: number, word: number): number {
    const i = index * 4 + word;
    return i < this.peer.length ? this.peer[i] : 0;
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
