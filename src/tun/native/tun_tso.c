// TUN offloads on read: TCPv4 super-packets (TSO) split in user space.
//
// With TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4) the kernel stops segmenting
// TCP for flannel0: one read returns a whole TSO burst, up to 64 KiB, behind a
// virtio_net_hdr { NEEDS_CSUM, GSO_TCPV4, gso_size = payload bytes per
// segment, csum_start = IP header length, csum_offset = 16 }, with the TCP
// checksum field holding only the pseudo-header sum. flannel's wire format is
// one IPv4 packet per datagram, so tunRead cuts every super-packet back into
// the MTU-sized segments the kernel would have made (tcp_gso_segment +
// inet_gso_segment), IN the caller's slab, before JS sees anything:
//
//   per segment i of k:  IP total length; IP ID = first + i; IP header
//   checksum; TCP seq = first + i * gso_size; FIN and PSH on the last segment
//   only, CWR on the first only; the full TCP checksum.
//
// The header length is computed, never taken from hdr_len (on the forward
// path the kernel reports the whole linear part there): IP header length +
// TCP data offset * 4.
//
// Layout: a TSO fd is read "packed". Each read lands at a cursor in `data`;
// a plain packet stays where it was read (zero copy); a super-packet is split
// in place, back to front, into consecutive segments starting where it was
// read:
//
//   read:   [vh][H0|payload0|payload1|...|payloadk-1]
//   split:  [vh][H0|payload0][H1|payload1]...[Hk-1|payloadk-1]
//
// Segment 0 (header and payload) never moves; segment i's payload moves
// forward by i header lengths (one memmove: the one copy splitting needs).
// Processing from the last segment to the first never overwrites bytes not
// yet moved (segment i's new header starts at or after the end of payload
// i-1's old place). The split needs (k - 1) header lengths of room after the
// read; the reader keeps room for 64 segments free before every read, and a
// super-packet that still does not fit is kept in a per-thread stash and
// split first by the next call.
//
// Descriptors: one row per segment. D_PORT of the first row of a split
// super-packet is its number of segments k >= 2 (rows row..row+k-1 are its
// segments, identical but for the fields above), 0 on every other row; JS
// may use it to decide the route once per super-packet.
#include "flannel_tun.h"
#include "checksum.h"

#include <errno.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

// Room kept free before each read (after the first of a call): a read of a
// full slot plus 64 segments' worth of headers (IP 60 + TCP 60 at most), and
// 64 descriptor rows. Super-packets on flannel0 have at most 64 segments
// (gso_max_segs, see src/tun/configure.ts); larger ones go through the stash.
#define TSO_RESERVE_SEGS 64
#define TSO_MAX_HLEN 120
#define ALIGN8(x) (((x) + 7) & ~(size_t)7)

bool tso_plan(const uint8_t *p, size_t len, const struct virtio_net_hdr *vh, tso_plan_s *pl) {
  if ((vh->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) != VIRTIO_NET_HDR_GSO_TCPV4) return false;
  if (len < 40 || (p[0] >> 4) != 4 || p[9] != IPPROTO_TCP) return false;
  uint32_t ihl = (uint32_t)(p[0] & 15) * 4;
  if (ihl < 20 || ihl + 20 > len) return false;
  if ((p[6] & 0x3f) || p[7]) return false; // a fragment is never a GSO packet
  if ((vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && (vh->csum_start != ihl || vh->csum_offset != 16)) return false;
  uint32_t thl = (uint32_t)(p[ihl + 12] >> 4) * 4;
  if (thl < 20 || ihl + thl > len) return false;
  uint32_t hlen = ihl + thl;
  uint32_t payload = (uint32_t)len - hlen;
  uint32_t gso = vh->gso_size; // TUN's legacy header: host byte order
  if (gso == 0 || payload == 0) return false;
  pl->ihl = ihl;
  pl->hlen = hlen;
  pl->gso = gso;
  pl->payload = payload;
  pl->segs = (payload + gso - 1) / gso;
  pl->out = len + (size_t)(pl->segs - 1) * hlen;
  return true;
}

// Finishes segment i's header at s (its payload, plen bytes, right behind it).
static void tso_fix(uint8_t *s, const tso_plan_s *pl, uint32_t i, uint32_t plen, uint16_t id0, uint32_t seq0, uint8_t flags0) {
  uint32_t ihl = pl->ihl, l4 = pl->hlen - ihl + plen, tot = pl->hlen + plen;
  s[2] = (uint8_t)(tot >> 8);
  s[3] = (uint8_t)tot;
  uint16_t id = (uint16_t)(id0 + i);
  s[4] = (uint8_t)(id >> 8);
  s[5] = (uint8_t)id;
  s[10] = s[11] = 0;
  uint16_t c = (uint16_t)~csum_fold(csum_add(0, s, ihl));
  memcpy(s + 10, &c, 2);

  uint8_t *t = s + ihl;
  uint32_t seq = seq0 + i * pl->gso;
  t[4] = (uint8_t)(seq >> 24);
  t[5] = (uint8_t)(seq >> 16);
  t[6] = (uint8_t)(seq >> 8);
  t[7] = (uint8_t)seq;
  uint8_t f = flags0;
  if (i != pl->segs - 1) f &= (uint8_t)~(TCP_FIN | TCP_PSH);
  if (i != 0) f &= (uint8_t)~TCP_CWR;
  t[13] = f;
  t[16] = t[17] = 0;
  c = (uint16_t)~csum_fold(csum_add(csum_pseudo4(s, IPPROTO_TCP, (uint16_t)l4), t, l4));
  memcpy(t + 16, &c, 2);
}

void tso_apply(uint8_t *p, const tso_plan_s *pl) {
  uint8_t tmpl[TSO_MAX_HLEN];
  uint32_t hlen = pl->hlen, ihl = pl->ihl, gso = pl->gso, k = pl->segs;
  memcpy(tmpl, p, hlen);
  uint16_t id0 = (uint16_t)((p[4] << 8) | p[5]);
  const uint8_t *t = p + ihl;
  uint32_t seq0 = ((uint32_t)t[4] << 24) | ((uint32_t)t[5] << 16) | ((uint32_t)t[6] << 8) | t[7];
  uint8_t flags0 = t[13];
  for (uint32_t i = k; i-- > 0;) {
    uint32_t plen = i == k - 1 ? pl->payload - i * gso : gso;
    uint8_t *s = p + (size_t)i * (hlen + gso);
    if (i > 0) {
      memmove(s + hlen, p + hlen + (size_t)i * gso, plen);
      memcpy(s, tmpl, hlen);
    }
    tso_fix(s, pl, i, plen, id0, seq0, flags0);
  }
}

// Places the raw read at data[cur .. cur + r) (virtio_net_hdr + packet) as
// descriptor rows from `row`: a plain packet as one row (checksum finished),
// a TCPv4 super-packet split into its segments. Returns the rows placed (and
// *next, the cursor after them), 0 when the packet is dropped (malformed or a
// GSO type we did not ask for), -1 when it needs more than the bytes left in
// data or the rows left in desc (nothing changed then).
int tso_place(const batch_s *b, size_t cur, size_t r, size_t row, size_t *next, int32_t *info) {
  uint8_t *buf = b->data + cur;
  struct virtio_net_hdr vh;
  memcpy(&vh, buf, VNET_HDR_LEN);
  uint8_t *p = buf + VNET_HDR_LEN;
  size_t len = r - VNET_HDR_LEN;
  int32_t *d = b->desc + row * DESC_WORDS;
  if (vh.gso_type == VIRTIO_NET_HDR_GSO_NONE) {
    if (row >= b->rows) return -1;
    tun_vnet_finish_read(buf, r);
    d[D_OFF] = (int32_t)(cur + VNET_HDR_LEN);
    d[D_LEN] = (int32_t)len;
    d[D_ADDR] = 0;
    d[D_PORT] = 0;
    *next = ALIGN8(cur + r);
    return 1;
  }
  tso_plan_s pl;
  if (!tso_plan(p, len, &vh, &pl) || pl.hlen > TSO_MAX_HLEN) {
    if (info) info[TUN_INFO_DROPPED]++;
    return 0;
  }
  if (row + pl.segs > b->rows || cur + VNET_HDR_LEN + pl.out > b->data_len) return -1;
  tso_apply(p, &pl);
  size_t stride = pl.hlen + pl.gso;
  for (uint32_t i = 0; i < pl.segs; i++, d += DESC_WORDS) {
    d[D_OFF] = (int32_t)(cur + VNET_HDR_LEN + i * stride);
    d[D_LEN] = (int32_t)(i == pl.segs - 1 ? pl.hlen + pl.payload - i * pl.gso : stride);
    d[D_ADDR] = 0;
    d[D_PORT] = i == 0 && pl.segs > 1 ? (int32_t)pl.segs : 0;
  }
  if (info) {
    info[TUN_INFO_SUPER]++;
    info[TUN_INFO_SEGMENTS] += (int32_t)pl.segs;
  }
  *next = ALIGN8(cur + VNET_HDR_LEN + pl.out);
  return (int)pl.segs;
}

void tun_stash_forget(env_state *st, int fd) {
  if (st->stash_len && st->stash_fd == fd) st->stash_len = 0;
}

int64_t tun_read_tso(env_state *st, int fd, const batch_s *b, int64_t max, size_t slot, int32_t *info, int *err) {
  size_t cur = 0, row = 0;
  int64_t reads = 0;
  *err = 0;

  // A super-packet the last call could not fit goes first, into the empty batch.
  if (st->stash_len && st->stash_fd == fd) {
    size_t r = st->stash_len, next;
    st->stash_len = 0;
    if (r <= b->data_len) {
      memcpy(b->data, st->stash, r);
      int n = tso_place(b, 0, r, 0, &next, info);
      if (n > 0) {
        row = (size_t)n;
        cur = next;
      } else if (n < 0 && info) {
        info[TUN_INFO_DROPPED]++; // more segments than the whole batch holds
      }
    } else if (info) {
      info[TUN_INFO_DROPPED]++;
    }
  }

  while (reads < max) {
    if (cur >= b->data_len) break; // (the cursor is rounded up to 8: it may pass the end)
    size_t room = b->data_len - cur;
    if (room < slot || row >= b->rows) break;
    if (row > 0 && (room < slot + TSO_RESERVE_SEGS * TSO_MAX_HLEN || b->rows - row < TSO_RESERVE_SEGS)) break;
    ssize_t r = read(fd, b->data + cur, slot);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (info) info[TUN_INFO_DRAINED] = 1;
      } else if (row == 0) {
        *err = errno;
      }
      break;
    }
    reads++;
    if (r <= VNET_HDR_LEN) continue; // no packet behind the header
    size_t next;
    int n = tso_place(b, cur, (size_t)r, row, &next, info);
    if (n > 0) {
      row += (size_t)n;
      cur = next;
    } else if (n < 0) {
      // Does not fit behind what this call already holds: keep it for the
      // next call (rows > 0 here: an empty batch always has the reserve).
      if (!st->stash) st->stash = malloc(STASH_BYTES);
      if (st->stash && (size_t)r <= STASH_BYTES && row > 0) {
        memcpy(st->stash, b->data + cur, (size_t)r);
        st->stash_len = (size_t)r;
        st->stash_fd = fd;
        if (info) info[TUN_INFO_STASHED] = 1;
      } else if (info) {
        info[TUN_INFO_DROPPED]++;
      }
      break;
    }
  }
  if (info) info[TUN_INFO_READS] = (int32_t)reads;
  return (int64_t)row;
}
