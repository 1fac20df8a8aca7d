// The Internet checksum (RFC 1071), for the TUN offload code (tun_gro.c).
//
// Sums are kept in the machine's byte order: summing network-order bytes as
// native 16/32-bit words and storing the folded result back with memcpy gives
// the right bytes on either endianness (RFC 1071 section 2(B)). Nothing here
// converts with ntohs/htons except the pseudo-header's protocol and length.
#ifndef FLANNEL_TUN_CHECKSUM_H
#define FLANNEL_TUN_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

// Adds the 16-bit words of buf[0..len) to acc (a 64-bit, not yet folded
// ones-complement accumulator) and returns the new accumulator. An odd last
// byte counts as the high-order (first) byte of a word padded with zero, so
// only the last buffer of a chain may have an odd length.
uint64_t csum_add(uint64_t acc, const void *buf, size_t len);

// Folds an accumulator to 16 bits. NOT inverted: ~csum_fold(...) is the value
// for a checksum field; csum_fold(...) == 0xffff verifies one.
uint16_t csum_fold(uint64_t acc);

// The IPv4 pseudo-header (RFC 793: source, destination, zero, protocol,
// transport length) of the packet at ip, as an accumulator.
uint64_t csum_pseudo4(const uint8_t *ip, uint8_t proto, uint16_t l4len);

#endif
