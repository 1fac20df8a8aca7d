// ICMP destination-unreachable replies for packets with no route.
//
// flannel's proxy answers every unroutable packet; a pod flooding a dead
// subnet would make us write as many ICMP packets as it sends. We rate limit
// per offending source (an LRU of token buckets, so a scan of many sources
// cannot grow memory) and globally.

import { LRUCache } from 'lru-cache';
import { PacketBatch, D_LEN, D_OFF, DESC_WORDS } from '../tun/batch';
import * as ip from './ipv4';

const ICMP_DEST_UNREACH = 3;
export const ICMP_NET_UNREACH = 0;
const ICMP_ERROR_TYPES = new Set([3, 4, 5, 11, 12]);
/** Original header + 8 bytes, as RFC 792 asks; options included (up to 60 + 8). */
const QUOTE_MAX = 68;
const SLOT = 20 + 8 + QUOTE_MAX;

export interface RateLimit {
  perSecond: number;
  burst: number;
}

class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly limit: RateLimit,
    now: number,
  ) {
    this.tokens = limit.burst;
    this.last = now;
  }
  take(now: number): boolean {
    this.tokens = Math.min(this.limit.burst, this.tokens + ((now - this.last) / 1000) * this.limit.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * Collects ICMP errors for one batch into its own small slab; the data plane
 * writes `batch` into the TUN after each batch and then calls `reset`.
 */
export class IcmpResponder {
  readonly batch: PacketBatch;
  private readonly perSource: LRUCache<number, TokenBucket>;
  private readonly global: TokenBucket;
  suppressed = 0;

  constructor(
    private readonly perSourceLimit: RateLimit = { perSecond: 10, burst: 10 },
    globalLimit: RateLimit = { perSecond: 200, burst: 100 },
    slots = 64,
    private readonly now: () => number = Date.now,
  ) {
    this.batch = new PacketBatch(slots, SLOT);
    this.perSource = new LRUCache({ max: 4096 });
    this.global = new TokenBucket(globalLimit, now());
  }

  reset(): void {
    this.batch.count = 0;
  }

  /**
   * Queues "destination net unreachable" for the packet at b[off, off+len),
   * already validated as IPv4. Returns true when a reply was queued.
   */
  netUnreachable(b: Uint8Array, off: number, len: number): boolean {
    const source = ip.src(b, off);
    // RFC 1122 3.2.2: never about ICMP errors, non-first fragments, or to non-unicast sources.
    if (ip.isNonUnicast(source)) return false;
    if ((((b[off + 6] & 0x1f) << 8) | b[off + 7]) !== 0) return false;
    const ihl = ip.headerLength(b, off);
    if (ip.protocol(b, off) === ip.PROTO_ICMP && len > ihl && ICMP_ERROR_TYPES.has(b[off + ihl])) return false;
    if (this.batch.count >= this.batch.slots) return this.suppress();
    const now = this.now();
    let bucket = this.perSource.get(source);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.perSourceLimit, now);
      this.perSource.set(source, bucket);
    }
    if (!bucket.take(now) || !this.global.take(now)) return this.suppress();

    const i = this.batch.count++;
    const o = i * SLOT;
    const quote = Math.min(len, ihl + 8, QUOTE_MAX);
    const total = 20 + 8 + quote;
    const d = this.batch.data;
    d.fill(0, o, o + 28);
    d[o] = 0x45;
    d[o + 1] = 0xc0; // precedence "internetwork control", as kernels send ICMP errors
    d[o + 2] = total >>> 8;
    d[o + 3] = total & 255;
    d[o + 8] = 64;
    d[o + 9] = ip.PROTO_ICMP;
    // From the unreachable destination itself, as flannel's proxy does: an
    // address of this host (flannel0's) would be a martian source when the
    // kernel reads the reply back from the TUN, and the pod would never see it.
    ip.writeAddr(d, o + 12, ip.dst(b, off));
    ip.writeAddr(d, o + 16, source);
    ip.setHeaderChecksum(d, o);
    d[o + 20] = ICMP_DEST_UNREACH;
    d[o + 21] = ICMP_NET_UNREACH;
    d.set(b.subarray(off, off + quote), o + 28);
    const c = ip.internetChecksum(d, o + 20, 8 + quote);
    d[o + 22] = c >>> 8;
    d[o + 23] = c & 255;
    this.batch.desc[i * DESC_WORDS + D_OFF] = o;
    this.batch.desc[i * DESC_WORDS + D_LEN] = total;
    return true;
  }

  private suppress(): false {
    this.suppressed++;
    return false;
  }
}
