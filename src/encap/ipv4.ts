// IPv4 header access in place, on the bytes of a pooled slab (RFC 791).
// Everything takes (buf, off) so no view object is allocated per packet.

export const IPV4_MIN_HEADER = 20;
export const PROTO_ICMP = 1;
export const PROTO_TCP = 6;
export const PROTO_UDP = 17;

export function headerLength(b: Uint8Array, off: number): number {
  return (b[off] & 0x0f) << 2;
}
export function totalLength(b: Uint8Array, off: number): number {
  return (b[off + 2] << 8) | b[off + 3];
}
export function ttl(b: Uint8Array, off: number): number {
  return b[off + 8];
}
export function protocol(b: Uint8Array, off: number): number {
  return b[off + 9];
}
export function src(b: Uint8Array, off: number): number {
  return ((b[off + 12] << 24) | (b[off + 13] << 16) | (b[off + 14] << 8) | b[off + 15]) >>> 0;
}
export function dst(b: Uint8Array, off: number): number {
  return ((b[off + 16] << 24) | (b[off + 17] << 16) | (b[off + 18] << 8) | b[off + 19]) >>> 0;
}
export function writeAddr(b: Uint8Array, off: number, ip: number): void {
  b[off] = ip >>> 24;
  b[off + 1] = (ip >>> 16) & 255;
  b[off + 2] = (ip >>> 8) & 255;
  b[off + 3] = ip & 255;
}

/** Why a packet's header is unusable, or OK. Values index the drop counters. */
// biome-ignore lint/suspicious/noConstEnum: inlined as plain numbers in the per-packet path; never used across a package boundary.
export const enum HeaderCheck {
  OK = 0,
  TRUNCATED = 1, // shorter than a minimal header
  NOT_IPV4 = 2, // version nibble is not 4 (IPv6 and garbage)
  BAD_IHL = 3, // header length < 20 or beyond the bytes read
  BAD_LENGTH = 4, // total length field disagrees with the bytes read
}

/**
 * Validates the fixed header of the packet at b[off, off+len). Wire format is
 * one packet per datagram, so total length must equal the bytes received.
 */
export function checkHeader(b: Uint8Array, off: number, len: number): HeaderCheck {
  if (len < IPV4_MIN_HEADER) return HeaderCheck.TRUNCATED;
  if (b[off] >>> 4 !== 4) return HeaderCheck.NOT_IPV4;
  const ihl = (b[off] & 0x0f) << 2;
  if (ihl < IPV4_MIN_HEADER || ihl > len) return HeaderCheck.BAD_IHL;
  if (((b[off + 2] << 8) | b[off + 3]) !== len) return HeaderCheck.BAD_LENGTH;
  return HeaderCheck.OK;
}

/** Ones'-complement sum of b[off, off+len) folded to 16 bits, not inverted. */
export function onesSum(b: Uint8Array, off: number, len: number, initial = 0): number {
  let sum = initial;
  const end = off + (len & ~1);
  for (let i = off; i < end; i += 2) sum += (b[i] << 8) | b[i + 1];
  if (len & 1) sum += b[off + len - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The Internet checksum of a byte range (the value to store in a checksum field). */
export function internetChecksum(b: Uint8Array, off: number, len: number): number {
  return ~onesSum(b, off, len) & 0xffff;
}

/** True when the IPv4 header checksum verifies (sum over the header is 0xffff). */
export function headerChecksumOk(b: Uint8Array, off: number): boolean {
  return onesSum(b, off, (b[off] & 0x0f) << 2) === 0xffff;
}

/** Recomputes and stores the header checksum. */
export function setHeaderChecksum(b: Uint8Array, off: number): void {
  b[off + 10] = 0;
  b[off + 11] = 0;
  const c = internetChecksum(b, off, (b[off] & 0x0f) << 2);
  b[off + 10] = c >>> 8;
  b[off + 11] = c & 255;
}

/**
 * Decrements TTL in place and patches the header checksum incrementally
 * (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')), so forwarding never re-sums the
 * header. Returns the new TTL; at 0 the packet must be dropped (the caller
 * leaves the bytes alone then: TTL is only written when the result is > 0).
 */
export function decrementTtl(b: Uint8Array, off: number): number {
  const t = b[off + 8];
  if (t <= 1) return 0;
  const m = (t << 8) | b[off + 9];
  const m2 = m - 0x100;
  const hc = (b[off + 10] << 8) | b[off + 11];
  let sum = (~hc & 0xffff) + (~m & 0xffff) + m2;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  const hc2 = ~sum & 0xffff;
  b[off + 8] = t - 1;
  b[off + 10] = hc2 >>> 8;
  b[off + 11] = hc2 & 255;
  return t - 1;
}

/** Multicast (224/4), limited broadcast and the "this network" 0/8 block: never unicast. */
export function isNonUnicast(ip: number): boolean {
  return ip >>> 28 === 0xe || ip === 0xffffffff || ip >>> 24 === 0;
}
