// TUN offloads (IFF_VNET_HDR): user-space GRO before the TUN write, and the
// checksum a read may leave to us.
//
// Every write to a TUN_VNET fd is a writev of a 10-byte virtio_net_hdr and
// then the packet. Without coalescing the header is all zeros (a plain,
// fully checksummed packet). With TUN_GRO, tunWrite looks for runs of TCPv4
// segments of one flow and writes each run as ONE super-packet:
//
//   iov[0]  virtio_net_hdr { NEEDS_CSUM, GSO_TCPV4, hdr_len = 20 + TCP header,
//           gso_size = first payload, csum_start = 20, csum_offset = 16 }
//   iov[1]  the first segment, in place: IP + TCP header + payload; its header
//           patched for the call (IP total length and header checksum, TCP
//           checksum = pseudo-header sum NOT inverted, PSH if the last
//           segment had it) and restored afterwards
//   iov[2…] the payloads of the next segments, in place
//
// so the kernel runs its receive path once per ~40 segments: it delivers the
// GSO packet as it is (local TCP, or a veth/bridge that takes TSO) or cuts it
// back into the original segments where a device needs it. Nothing is copied
// in user space.
//
// Segments join a run only when the kernel would rebuild exactly them (the
// rules of the kernel's own TCP GRO, tcp_gro_receive, and wireguard-go's
// tun/offload_linux.go): IPv4 without options, not a fragment, TCP flags ACK
// or ACK|PSH, payload > 0, total length == descriptor length, a valid TCP
// checksum (checked here: the kernel trusts a NEEDS_CSUM packet, so a corrupt
// segment is written alone and dropped by the kernel instead); and against
// the first segment: same addresses, ports, ACK number, TOS, TTL, DF/reserved
// bits, TCP data offset, window and option bytes; sequence number == the
// previous one + its payload; payload <= the first one's; nothing after a PSH
// or a shorter segment; at most GRO_RUN_MAX segments and 65535 bytes.
//
// Flows may interleave in a batch (rows come from several datagrams and
// senders): up to GRO_FLOWS runs stay open at once, one per TCP 4-tuple.
// Order within a 4-tuple is kept: any packet of a flow that does not join
// its open run first writes that run. Packets of different flows may leave in
// another order than their rows (as with the kernel's GRO).
//
// A GSO write the kernel refuses with EINVAL while its segments go fine one by
// one (some kernels, e.g. 6.6.44, refused valid GSO writes) turns TUN_GRO off
// for the fd for good; the segments are never lost.
#include "flannel_tun.h"
#include "checksum.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

_Static_assert(sizeof(struct virtio_net_hdr) == VNET_HDR_LEN, "virtio_net_hdr is 10 bytes");

#define GRO_RUN_MAX 64 // segments per super-packet
#define GRO_FLOWS 8    // runs open at once within one call
#define IP_MAX_LEN 65535

#define TCP_PSH 0x08
#define TCP_ACK 0x10

// One unit of output: rows of the batch written with one writev. n == 1 is a
// plain packet (zero header); n > 1 is a GSO super-packet.
typedef struct {
  int32_t rows[GRO_RUN_MAX];
  int n;
  uint16_t gso_size; // payload bytes of the first segment
  uint8_t thl;       // TCP header length (all segments)
  uint32_t total;    // IP total length of the super-packet
  bool psh;          // the last segment carries PSH
} gro_run;

// A run still open for appends, and its flow.
typedef struct {
  bool used;
  uint32_t saddr, daddr, ports, ack; // as in the packet (network order)
  uint32_t next_seq;                 // host order
  const uint8_t *head;               // the first segment's IP header
  gro_run run;
} gro_flow;

// What classify() learns about a packet.
typedef struct {
  uint32_t saddr, daddr, ports, ack;
  uint32_t seq;
  uint16_t plen;
  uint8_t thl;
  bool psh;
} gro_seg;

typedef enum {
  SEG_OTHER,     // not TCPv4: written alone, independent of any run
  SEG_UNKEYED,   // TCPv4 without usable ports (fragment, malformed): written alone after every open run
  SEG_TCP,       // TCPv4 of a known 4-tuple that cannot be coalesced
  SEG_CANDIDATE, // may join or start a run
} seg_kind;

static seg_kind classify(const uint8_t *p, int32_t len, gro_seg *s) {
  if (len < 20 || (p[0] >> 4) != 4 || p[9] != IPPROTO_TCP) return SEG_OTHER;
  int32_t ihl = (p[0] & 15) * 4;
  // MF or a fragment offset: no TCP header to rely on.
  if (ihl < 20 || (p[6] & 0x3f) || p[7] || ihl + 20 > len) return SEG_UNKEYED;
  memcpy(&s->saddr, p + 12, 4);
  memcpy(&s->daddr, p + 16, 4);
  memcpy(&s->ports, p + ihl, 4);
  if (ihl != 20) return SEG_TCP;
  const uint8_t *t = p + 20;
  int32_t thl = (t[12] >> 4) * 4;
  if (thl < 20 || 20 + thl > len || ((p[2] << 8) | p[3]) != len) return SEG_TCP;
  uint8_t flags = t[13];
  if (flags != TCP_ACK && flags != (TCP_ACK | TCP_PSH)) return SEG_TCP;
  if (len - 20 - thl <= 0) return SEG_TCP;
  if (csum_fold(csum_add(csum_pseudo4(p, IPPROTO_TCP, (uint16_t)(len - 20)), t, (size_t)(len - 20))) != 0xffff)
    return SEG_TCP;
  uint32_t seq;
  memcpy(&seq, t + 4, 4);
  memcpy(&s->ack, t + 8, 4);
  s->seq = ntohl(seq);
  s->plen = (uint16_t)(len - 20 - thl);
  s->thl = (uint8_t)thl;
  s->psh = (flags & TCP_PSH) != 0;
  return SEG_CANDIDATE;
}

// Whether segment s (packet p) may follow the open run of its flow f.
static bool can_append(const gro_flow *f, const gro_seg *s, const uint8_t *p) {
  const uint8_t *h = f->head;
  const gro_run *r = &f->run;
  if (s->ack != f->ack || s->seq != f->next_seq || s->thl != r->thl || s->plen > r->gso_size) return false;
  if (r->n >= GRO_RUN_MAX || r->total + s->plen > IP_MAX_LEN) return false;
  // IP: TOS, TTL, DF and reserved bits.
  if (p[1] != h[1] || p[8] != h[8] || (p[6] >> 5) != (h[6] >> 5)) return false;
  // TCP: data offset and reserved bits, window, options.
  if (p[32] != h[32] || p[34] != h[34] || p[35] != h[35]) return false;
  return s->thl == 20 || memcmp(p + 40, h + 40, (size_t)s->thl - 20) == 0;
}

// ---- the planner: turns rows into runs, in write order ----

// Receives each unit of output; returns nonzero to stop planning.
typedef int (*gro_emit_fn)(void *ctx, const batch_s *b, const gro_run *run);

typedef struct {
  const batch_s *b;
  gro_emit_fn emit;
  void *ctx;
  gro_flow flows[GRO_FLOWS];
} gro_planner;

static int emit_single(gro_planner *pl, int32_t row) {
  gro_run r;
  r.rows[0] = row;
  r.n = 1;
  r.gso_size = 0;
  r.thl = 0;
  r.total = 0;
  r.psh = false;
  return pl->emit(pl->ctx, pl->b, &r);
}

static int flush(gro_planner *pl, gro_flow *f) {
  f->used = false;
  return pl->emit(pl->ctx, pl->b, &f->run);
}

// Writes every open run, oldest (lowest first row) first.
static int flush_all(gro_planner *pl) {
  for (;;) {
    gro_flow *oldest = NULL;
    for (int k = 0; k < GRO_FLOWS; k++) {
      gro_flow *f = &pl->flows[k];
      if (f->used && (!oldest || f->run.rows[0] < oldest->run.rows[0])) oldest = f;
    }
    if (!oldest) return 0;
    int rc = flush(pl, oldest);
    if (rc) return rc;
  }
}

static gro_flow *find_flow(gro_planner *pl, const gro_seg *s) {
  for (int k = 0; k < GRO_FLOWS; k++) {
    gro_flow *f = &pl->flows[k];
    if (f->used && f->ports == s->ports && f->saddr == s->saddr && f->daddr == s->daddr) return f;
  }
  return NULL;
}

// A free slot; when all are taken, the oldest run is written to make room.
static gro_flow *take_slot(gro_planner *pl, int *rc) {
  gro_flow *oldest = NULL;
  for (int k = 0; k < GRO_FLOWS; k++) {
    gro_flow *f = &pl->flows[k];
    if (!f->used) return f;
    if (!oldest || f->run.rows[0] < oldest->run.rows[0]) oldest = f;
  }
  *rc = flush(pl, oldest);
  return oldest;
}

// Plans rows 0..count-1 (rows with D_LEN <= 0 are skipped and do not end a
// run) and hands each unit to emit, in write order. Returns emit's first
// nonzero result, or 0.
static int gro_plan_batch(const batch_s *b, int64_t count, gro_emit_fn emit, void *ctx) {
  gro_planner pl;
  pl.b = b;
  pl.emit = emit;
  pl.ctx = ctx;
  for (int k = 0; k < GRO_FLOWS; k++) pl.flows[k].used = false;

  for (int64_t i = 0; i < count; i++) {
    const int32_t *d = b->desc + i * DESC_WORDS;
    int32_t len = d[D_LEN];
    if (len <= 0) continue;
    const uint8_t *p = b->data + d[D_OFF];
    int32_t row = (int32_t)i;
    gro_seg s = { 0 };
    seg_kind kind = classify(p, len, &s);
    int rc = 0;
    if (kind == SEG_OTHER) {
      rc = emit_single(&pl, row);
    } else if (kind == SEG_UNKEYED) {
      rc = flush_all(&pl);
      if (!rc) rc = emit_single(&pl, row);
    } else {
      gro_flow *f = find_flow(&pl, &s);
      if (f && kind == SEG_CANDIDATE && can_append(f, &s, p)) {
        gro_run *r = &f->run;
        r->rows[r->n++] = row;
        r->total += s.plen;
        r->psh = s.psh;
        f->next_seq = s.seq + s.plen;
        // Nothing may follow a PSH or a shorter segment; a full run is done too.
        if (s.psh || s.plen < r->gso_size || r->n == GRO_RUN_MAX) rc = flush(&pl, f);
      } else {
        if (f) rc = flush(&pl, f); // keeps the flow's order: its run goes first
        if (!rc && kind == SEG_CANDIDATE && !s.psh) {
          if (!f) f = take_slot(&pl, &rc);
          if (!rc) {
            f->used = true;
            f->saddr = s.saddr;
            f->daddr = s.daddr;
            f->ports = s.ports;
            f->ack = s.ack;
            f->next_seq = s.seq + s.plen;
            f->head = p;
            f->run.rows[0] = row;
            f->run.n = 1;
            f->run.gso_size = s.plen;
            f->run.thl = s.thl;
            f->run.total = (uint32_t)len;
            f->run.psh = false;
          }
        } else if (!rc) {
          rc = emit_single(&pl, row); // not a candidate, or a PSH segment: nothing may follow it
        }
      }
    }
    if (rc) return rc;
  }
  return flush_all(&pl);
}

// ---- the super-packet header ----

// The bytes of the first segment that gro_patch changes.
typedef struct {
  uint8_t ip_len[2], ip_csum[2], tcp_csum[2], tcp_flags;
} gro_saved;

// Turns the first segment's header (at ip) into the super-packet's header and
// fills its virtio_net_hdr. `refuse` (test hook) makes the header invalid for
// the kernel (csum_offset 0 on a TCP GSO packet: EINVAL since 6.6.44/6.11).
static void gro_patch(uint8_t *ip, const gro_run *r, struct virtio_net_hdr *vh, gro_saved *sv, bool refuse) {
  uint8_t *t = ip + 20;
  memcpy(sv->ip_len, ip + 2, 2);
  memcpy(sv->ip_csum, ip + 10, 2);
  memcpy(sv->tcp_csum, t + 16, 2);
  sv->tcp_flags = t[13];

  ip[2] = (uint8_t)(r->total >> 8);
  ip[3] = (uint8_t)r->total;
  ip[10] = ip[11] = 0;
  uint16_t c = (uint16_t)~csum_fold(csum_add(0, ip, 20));
  memcpy(ip + 10, &c, 2);
  if (r->psh) t[13] |= TCP_PSH; // the kernel puts the first header's PSH on the last segment only
  uint16_t ps = csum_fold(csum_pseudo4(ip, IPPROTO_TCP, (uint16_t)(r->total - 20)));
  memcpy(t + 16, &ps, 2);

  memset(vh, 0, sizeof *vh);
  vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
  vh->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
  // TUN's default (legacy) header is in the host's byte order.
  vh->hdr_len = (uint16_t)(20 + r->thl);
  vh->gso_size = r->gso_size;
  vh->csum_start = 20;
  vh->csum_offset = refuse ? 0 : 16;
}

static void gro_restore(uint8_t *ip, const gro_saved *sv) {
  memcpy(ip + 2, sv->ip_len, 2);
  memcpy(ip + 10, sv->ip_csum, 2);
  memcpy(ip + 20 + 16, sv->tcp_csum, 2);
  ip[20 + 13] = sv->tcp_flags;
}

// ---- writing ----

static const struct virtio_net_hdr zero_hdr;

typedef struct {
  int fd;
  int *flags;
  int64_t written;
  int fatal; // EBADF/EBADFD: the fd is gone, stop
} write_ctx;

static int write_iov(int fd, struct iovec *iov, int n) {
  ssize_t r;
  do {
    r = writev(fd, iov, n);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? errno : 0;
}

// Writes rows of run one by one with a zero header; returns how many went.
static int write_singles(write_ctx *c, const batch_s *b, const gro_run *run) {
  int ok = 0;
  for (int k = 0; k < run->n && !c->fatal; k++) {
    const int32_t *d = b->desc + (int64_t)run->rows[k] * DESC_WORDS;
    struct iovec iov[2] = {
      { .iov_base = (void *)&zero_hdr, .iov_len = VNET_HDR_LEN },
      { .iov_base = b->data + d[D_OFF], .iov_len = (size_t)d[D_LEN] },
    };
    int err = write_iov(c->fd, iov, 2);
    if (!err) {
      ok++;
    } else if (err == EBADF || err == EBADFD) {
      c->fatal = err;
    } else {
      b->desc[(int64_t)run->rows[k] * DESC_WORDS + D_LEN] = 0; // refused: not counted by the caller
    }
    // Anything else (EINVAL malformed, EIO device down, ENOMEM): skipped.
  }
  c->written += ok;
  return ok;
}

static int emit_write(void *vctx, const batch_s *b, const gro_run *run) {
  write_ctx *c = vctx;
  if (run->n == 1 || !(*c->flags & TUN_GRO)) {
    write_singles(c, b, run);
    return c->fatal;
  }
  uint8_t *head = b->data + b->desc[(int64_t)run->rows[0] * DESC_WORDS + D_OFF];
  struct virtio_net_hdr vh;
  gro_saved sv;
#ifdef FLANNEL_TUN_TEST
  bool refuse = (*c->flags & TUN_TEST_REFUSE) != 0; // test build only (tunTestRefuseGso)
  *c->flags &= ~TUN_TEST_REFUSE;
#else
  const bool refuse = false;
#endif
  gro_patch(head, run, &vh, &sv, refuse);

  struct iovec iov[GRO_RUN_MAX + 1];
  iov[0] = (struct iovec){ .iov_base = &vh, .iov_len = VNET_HDR_LEN };
  for (int k = 0; k < run->n; k++) {
    const int32_t *d = b->desc + (int64_t)run->rows[k] * DESC_WORDS;
    size_t skip = k == 0 ? 0 : (size_t)(20 + run->thl); // later segments: payload only
    iov[k + 1] = (struct iovec){ .iov_base = b->data + d[D_OFF] + skip, .iov_len = (size_t)d[D_LEN] - skip };
  }
  int err = write_iov(c->fd, iov, run->n + 1);
  gro_restore(head, &sv);
  if (!err) {
    c->written += run->n;
    return 0;
  }
  if (err == EBADF || err == EBADFD) {
    c->fatal = err;
    return err;
  }
  // Refused: each segment meets its own fate. If they all go alone, the
  // kernel refuses GSO itself: stop coalescing on this fd.
  int ok = write_singles(c, b, run);
  if (!c->fatal && err == EINVAL && ok == run->n) *c->flags &= ~TUN_GRO;
  return c->fatal;
}

int64_t tun_write_vnet(int fd, const batch_s *b, int64_t count, int *flags) {
  write_ctx c = { .fd = fd, .flags = flags, .written = 0, .fatal = 0 };
  if (*flags & TUN_GRO) {
    gro_plan_batch(b, count, emit_write, &c);
  } else {
    for (int64_t i = 0; i < count && !c.fatal; i++) {
      if (b->desc[i * DESC_WORDS + D_LEN] <= 0) continue;
      gro_run r = { .n = 1 };
      r.rows[0] = (int32_t)i;
      write_singles(&c, b, &r);
    }
  }
  return c.fatal ? -c.fatal : c.written;
}

// ---- reading ----

void tun_vnet_finish_read(uint8_t *buf, size_t len) {
  struct virtio_net_hdr vh;
  memcpy(&vh, buf, VNET_HDR_LEN);
  if (!(vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)) return;
  uint8_t *p = buf + VNET_HDR_LEN;
  size_t plen = len - VNET_HDR_LEN, start = vh.csum_start, off = vh.csum_offset;
  if (start + off + 2 > plen) return; // nonsense: leave the packet to the peer's checks
  // The field holds the pseudo-header sum: the sum from csum_start on, inverted, completes it.
  uint16_t c = (uint16_t)~csum_fold(csum_add(0, p + start, plen - start));
  if (c == 0 && off == 6) c = 0xffff; // UDP: 0 means "no checksum"
  memcpy(p + start + off, &c, 2);
}

// ---- test exports (the test build only: flannel_tun_test.node) ----
#ifdef FLANNEL_TUN_TEST

typedef struct {
  napi_env env;
  napi_value list;
  uint32_t n;
  bool failed;
} plan_ctx;

static int emit_plan(void *vctx, const batch_s *b, const gro_run *run) {
  plan_ctx *c = vctx;
  napi_env env = c->env;
  napi_value obj, rows, v, hdr, head;
  struct virtio_net_hdr vh = zero_hdr;
  uint8_t hbuf[60];
  size_t hlen = 0;
  if (run->n > 1) {
    uint8_t *ip = b->data + b->desc[(int64_t)run->rows[0] * DESC_WORDS + D_OFF];
    gro_saved sv;
    gro_patch(ip, run, &vh, &sv, false);
    hlen = 20 + (size_t)run->thl;
    memcpy(hbuf, ip, hlen);
    gro_restore(ip, &sv);
  }
  void *copy;
  if (napi_create_object(env, &obj) != napi_ok || napi_create_array_with_length(env, (size_t)run->n, &rows) != napi_ok)
    goto fail;
  for (int k = 0; k < run->n; k++) {
    if (napi_create_int32(env, run->rows[k], &v) != napi_ok || napi_set_element(env, rows, (uint32_t)k, v) != napi_ok)
      goto fail;
  }
  if (napi_create_buffer_copy(env, VNET_HDR_LEN, &vh, &copy, &hdr) != napi_ok) goto fail;
  if (hlen) {
    if (napi_create_buffer_copy(env, hlen, hbuf, &copy, &head) != napi_ok) goto fail;
  } else if (napi_get_null(env, &head) != napi_ok) {
    goto fail;
  }
  if (napi_set_named_property(env, obj, "rows", rows) != napi_ok ||
      napi_set_named_property(env, obj, "vnetHdr", hdr) != napi_ok ||
      napi_set_named_property(env, obj, "header", head) != napi_ok ||
      napi_set_element(env, c->list, c->n++, obj) != napi_ok)
    goto fail;
  return 0;
fail:
  c->failed = true;
  return 1;
}

// groPlan(data, desc, count) -> [{ rows: number[], vnetHdr: Buffer, header: Buffer | null }]
// What tunWrite with GRO would write, one entry per writev in order, without
// any syscall: the rows of each unit, its 10-byte virtio_net_hdr and, for a
// super-packet, its patched IP + TCP header (data itself is left unchanged).
napi_value gro_plan(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t count;
  batch_s b;
  if (!get_args(env, info, 3, argv) || !arg_batch(env, argv[0], argv[1], &b) ||
      !arg_int(env, argv[2], "count", 0, INT32_MAX, &count) || !check_rows(env, &b, count))
    return NULL;
  plan_ctx c = { .env = env, .n = 0, .failed = false };
  NAPI_CALL(env, napi_create_array(env, &c.list));
  gro_plan_batch(&b, count, emit_plan, &c);
  if (c.failed) return napi_failed(env, napi_generic_failure);
  return c.list;
}
#endif
