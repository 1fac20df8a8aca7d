// The UDP socket: open, recvmmsg, sendmmsg, with UDP GSO and GRO.
//
// The socket stays in blocking mode so that a full send buffer makes sendmmsg
// wait a little (backpressure on the TUN reader) instead of dropping at once;
// SO_SNDTIMEO bounds that wait. Receives never block (MSG_DONTWAIT).
//
// Offloads keep flannel's wire format: every UDP datagram on the wire is one
// IPv4 packet.
// - GSO (send): consecutive packets to the same address and port with the
//   same length (the last of a run may be shorter) go as one sendmmsg message
//   whose iovecs point at each packet in place, with a UDP_SEGMENT cmsg; the
//   kernel cuts it back into exactly those datagrams. The first refusal (EIO:
//   no checksum offload on the route's device; EINVAL for packets that go
//   fine one by one) turns GSO off for the socket for good.
// - GRO (receive): with UDP_GRO on, the kernel may hand over up to
//   GRO_MAX_SEGS datagrams from one sender as one message plus a UDP_GRO cmsg
//   (the segment size); udpRecv cuts it back into one descriptor per datagram,
//   all pointing into the same slot.
// The per-socket state (SOCK_* flags) lives in the env's table indexed by fd.
#include "flannel_tun.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define SEND_TIMEOUT_US 100000

static const char *addr_str(uint32_t host_order, char *buf) {
  struct in_addr a = { .s_addr = htonl(host_order) };
  return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

// ---- per-socket offload state ----
// st->socks grows (fd_table_reserve) only in udpOpen and at the first use of a
// socket this env did not open: no other call allocates.

// The offload flags of fd. A socket this env did not open (opened by another
// thread, or inherited) is probed once: GSO if the kernel knows UDP_SEGMENT,
// GRO if UDP_GRO is set on it. Returns -errno when fd is not a socket (or is
// not open); the caller then goes on without offloads and lets its syscall
// report the error.
static int sock_flags(env_state *st, int fd) {
  if ((size_t)fd < st->nsocks && (st->socks[fd] & SOCK_KNOWN)) return st->socks[fd];
  int v = 0, f = SOCK_KNOWN;
  socklen_t l = sizeof v;
  if (getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &l) == 0) {
    f |= SOCK_GSO;
  } else if (errno == EBADF || errno == ENOTSOCK) {
    return -errno;
  }
  l = sizeof v;
  v = 0;
  if (getsockopt(fd, SOL_UDP, UDP_GRO, &v, &l) == 0 && v) f |= SOCK_GRO;
  if (fd_table_reserve(&st->socks, &st->nsocks, fd)) st->socks[fd] = (uint8_t)f;
  return f;
}

int udp_flags(env_state *st, int fd) {
  return sock_flags(st, fd);
}

bool udp_set_flags(env_state *st, int fd, int flags) {
  if (!fd_table_reserve(&st->socks, &st->nsocks, fd)) return false;
  st->socks[fd] = (uint8_t)flags;
  return true;
}

void udp_forget(env_state *st, int fd) {
  if (fd >= 0 && (size_t)fd < st->nsocks) st->socks[fd] = 0;
}

// A socket buffer size: the FORCE variant (CAP_NET_ADMIN) may exceed
// net.core.[rw]mem_max; without the capability fall back to the capped one.
static int set_buf(int fd, int force_opt, int opt, int size) {
  if (size <= 0) return 0;
  if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof size) == 0) return 0;
  if (errno != EPERM) return -1;
  return setsockopt(fd, SOL_SOCKET, opt, &size, sizeof size);
}

// udpOpen(bindAddr: uint32 host order, port, rcvbuf, sndbuf, offloads?) -> fd
// An IPv4 UDP socket bound to bindAddr:port (0 = any address / any port).
// rcvbuf/sndbuf > 0 set the buffer sizes (bytes, the kernel doubles them).
// offloads: { gso?: boolean, gro?: boolean }, both default true. GRO is on
// when setsockopt(UDP_GRO) succeeds; GSO is on when the kernel knows
// UDP_SEGMENT, until the first refusal (udpSend). Neither failing is an error.
napi_value udp_open(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int64_t addr, port, rcvbuf, sndbuf;
  bool want_gso = true, want_gro = true;
  char detail[INET_ADDRSTRLEN + 8], a[INET_ADDRSTRLEN];

  if (!get_args_opt(env, info, 4, 5, argv) || !arg_int(env, argv[0], "bindAddr", INT32_MIN, UINT32_MAX, &addr) ||
      !arg_int(env, argv[1], "port", 0, 65535, &port) || !arg_int(env, argv[2], "rcvbuf", 0, INT32_MAX, &rcvbuf) ||
      !arg_int(env, argv[3], "sndbuf", 0, INT32_MAX, &sndbuf))
    return NULL;
  napi_valuetype t;
  NAPI_CALL(env, napi_typeof(env, argv[4], &t));
  if (t != napi_undefined) {
    if (t != napi_object) return throw_type(env, "offloads must be an object");
    if (!prop_bool(env, argv[4], "gso", true, &want_gso) || !prop_bool(env, argv[4], "gro", true, &want_gro))
      return NULL;
  }
  // Both int32 bits (negative) and uint32 values name the same address.
  uint32_t host = (uint32_t)addr;
  snprintf(detail, sizeof detail, "%s:%d", addr_str(host, a), (int)port);

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "udpOpen", detail, NULL);

  int one = 1;
  struct timeval tv = { .tv_sec = 0, .tv_usec = SEND_TIMEOUT_US };
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(host) };
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
      set_buf(fd, SO_RCVBUFFORCE, SO_RCVBUF, (int)rcvbuf) < 0 ||
      set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, (int)sndbuf) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "udpOpen", detail, NULL);
  }
  // Offload probes, before bind so that nothing is queued without GRO.
  int flags = SOCK_KNOWN, v = 0;
  socklen_t l = sizeof v;
  if (want_gso && getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &l) == 0) flags |= SOCK_GSO;
  if (want_gro && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0) flags |= SOCK_GRO;

  if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "udpOpen", detail, NULL);
  }
  env_state *st = get_state(env);
  if (!fd_table_reserve(&st->socks, &st->nsocks, fd)) {
    close(fd);
    return throw_errno(env, ENOMEM, "udpOpen", detail, NULL);
  }
  st->socks[fd] = (uint8_t)flags;
  return make_int(env, fd);
}

// udpOffloads(fd) -> { gso, gro }: the offloads in use on fd now.
napi_value udp_offloads(napi_env env, napi_callback_info info) {
  static const flag_prop props[] = { { "gso", SOCK_GSO }, { "gro", SOCK_GRO } };
  return offloads_export(env, info, "udpOffloads", sock_flags, props, sizeof props / sizeof *props);
}

// udpLocalPort(fd) -> the port the socket is bound to (getsockname).
napi_value udp_local_port(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!get_args(env, info, 1, argv) || !arg_fd(env, argv[0], &fd)) return NULL;
  struct sockaddr_in sin;
  socklen_t l = sizeof sin;
  errno = 0;
  if (getsockname(fd, (struct sockaddr *)&sin, &l) < 0 || sin.sin_family != AF_INET)
    return throw_fd_errno(env, errno ? errno : ENOTSOCK, "udpLocalPort", fd);
  return make_int(env, ntohs(sin.sin_port));
}

// The segment size of a received message: the UDP_GRO cmsg's int, or 0.
static int gro_size(const struct msghdr *h) {
  if (h->msg_controllen == 0) return 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR((struct msghdr *)h, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int v;
      memcpy(&v, CMSG_DATA(c), sizeof v);
      return v;
    }
  }
  return 0;
}

// udpRecv(fd, data, desc, max, slotSize) -> descriptors filled
// One recvmmsg, never blocking, of up to min(max, MAX_BATCH) messages; message
// i lands in the slot at byte i*slotSize. Each message gives one descriptor,
// or with GRO one per datagram it carries (same slot, D_OFF = slot offset +
// k * segment size, the last may be shorter, same D_ADDR/D_PORT). D_LEN is -1
// for a datagram longer than slotSize (its bytes are truncated: drop it). 0
// when nothing is queued.
// With GRO on the socket, slotSize must be >= GRO_MIN_SLOT and desc must hold
// >= GRO_MAX_SEGS rows (RangeError otherwise), and at most
// floor(rows / GRO_MAX_SEGS) messages are received, so cutting can never
// overflow desc. (A local sender may pass a GSO message of more segments to a
// GRO socket; segments beyond what desc can take are dropped.)
napi_value udp_recv(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int fd;
  int64_t max, slot;
  batch_s b;

  if (!get_args(env, info, 5, argv) || !arg_fd(env, argv[0], &fd) || !arg_batch(env, argv[1], argv[2], &b) ||
      !arg_int(env, argv[3], "max", 0, INT32_MAX, &max) || !arg_int(env, argv[4], "slotSize", 1, INT32_MAX, &slot) ||
      !check_slots(env, &b, max, slot))
    return NULL;
  if (max > MAX_BATCH) max = MAX_BATCH; // "up to max": fewer is always allowed
  if (max == 0) return make_int(env, 0);

  env_state *st = get_state(env);
  int f = sock_flags(st, fd);
  if (f > 0 && (f & SOCK_GRO)) {
    if (slot < GRO_MIN_SLOT || b.rows < GRO_MAX_SEGS)
      return throw_range(env,
                         "fd %d has UDP GRO on: slotSize must be >= %d and desc must hold >= %d rows (got %lld, %zu); "
                         "use new PacketBatch(n, %d, n * %d) or open the socket with gro: false",
                         fd, GRO_MIN_SLOT, GRO_MAX_SEGS, (long long)slot, b.rows, GRO_MIN_SLOT, GRO_MAX_SEGS);
    if ((size_t)max > b.rows / GRO_MAX_SEGS) max = (int64_t)(b.rows / GRO_MAX_SEGS);
  }

  for (int64_t i = 0; i < max; i++) {
    st->iov[i].iov_base = b.data + i * slot;
    st->iov[i].iov_len = (size_t)slot;
    struct msghdr *h = &st->msgs[i].msg_hdr;
    memset(h, 0, sizeof *h);
    h->msg_name = &st->addrs[i];
    h->msg_namelen = sizeof st->addrs[i];
    h->msg_iov = &st->iov[i];
    h->msg_iovlen = 1;
    // A control buffer even without GRO (the kernel writes nothing then):
    // a coalesced message is never mistaken for one datagram.
    h->msg_control = st->ctrl[i].buf;
    h->msg_controllen = sizeof st->ctrl[i];
  }

  int r;
  do {
    r = recvmmsg(fd, st->msgs, (unsigned)max, MSG_DONTWAIT, NULL);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return make_int(env, 0);
    return throw_fd_errno(env, errno, "udpRecv", fd);
  }

  size_t row = 0;
  for (int i = 0; i < r; i++) {
    const struct msghdr *h = &st->msgs[i].msg_hdr;
    int32_t base = (int32_t)(i * slot), len = (int32_t)st->msgs[i].msg_len;
    int32_t a = (int32_t)ntohl(st->addrs[i].sin_addr.s_addr), port = ntohs(st->addrs[i].sin_port);
    int seg = (h->msg_flags & MSG_TRUNC) ? 0 : gro_size(h);
    if (h->msg_flags & MSG_TRUNC) len = -1;
    if (seg <= 0 || len <= seg) seg = len > 0 ? len : 1; // one descriptor
    // Rows this message may fill: all but one for each message after it.
    size_t room = b.rows - row - (size_t)(r - 1 - i);
    int32_t off = 0;
    do {
      int32_t *d = b.desc + row * DESC_WORDS;
      d[D_OFF] = base + off;
      d[D_LEN] = len < 0 ? -1 : (len - off < seg ? len - off : seg);
      d[D_ADDR] = a;
      d[D_PORT] = port;
      row++;
      room--;
      off += seg;
    } while (off < len && room > 0);
  }
  return make_int(env, (int64_t)row);
}

// A refused datagram: its row gets D_LEN = 0, so the caller counts exactly
// what was sent (bytes, per-peer packets) by the rows still > 0.
static void mark_failed(const batch_s *b, env_state *st, int iov_index) {
  b->desc[(int64_t)st->rowof[iov_index] * DESC_WORDS + D_LEN] = 0;
}

static void mark_group_failed(const batch_s *b, env_state *st, int g) {
  for (int k = 0; k < st->groups[g].segs; k++) mark_failed(b, st, st->groups[g].first + k);
}

// Sends the packets of groups [g0, g1) one datagram per message, in order,
// skipping refused ones as udpSend does. Returns how many were sent; *fatal is
// set to EBADF/ENOTSOCK (and the rest abandoned) when the fd is unusable.
static int send_single(int fd, env_state *st, const batch_s *b, int g0, int g1, int *flags, int *fatal) {
  int m = 0;
  for (int g = g0; g < g1; g++) {
    for (int k = 0; k < st->groups[g].segs; k++, m++) {
      struct msghdr *h = &st->single[m].msg_hdr;
      memset(h, 0, sizeof *h);
      h->msg_name = &st->addrs[g];
      h->msg_namelen = sizeof st->addrs[g];
      h->msg_iov = &st->iov[st->groups[g].first + k];
      h->msg_iovlen = 1;
    }
  }
  int i = 0, sent = 0;
  while (i < m) {
    int r = sendmmsg(fd, st->single + i, (unsigned)(m - i), *flags);
    if (r > 0) {
      i += r;
      sent += r;
      continue;
    }
    int err = r < 0 ? errno : EIO;
    if (err == EINTR) continue;
    if (err == EBADF || err == ENOTSOCK) {
      *fatal = err;
      break;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) *flags = MSG_DONTWAIT;
    mark_failed(b, st, (int)(st->single[i].msg_hdr.msg_iov - st->iov));
    i++;
  }
  return sent;
}

// udpSend(fd, data, desc, count) -> sent
// Sends each of rows 0..count-1 whose D_LEN > 0 to D_ADDR:D_PORT, in order,
// with sendmmsg; count <= MAX_BATCH (RangeError otherwise). With GSO on,
// consecutive rows to the same destination with the same length (the last of
// a run may be shorter), up to GSO_MAX_SEGS rows and UDP_MAX_PAYLOAD bytes,
// share one message (see the top of this file). Returns the number of
// packets (rows) sent, not messages.
// A message the kernel refuses (EMSGSIZE, ENETUNREACH, EPERM from a firewall,
// EINVAL for port 0, EAGAIN when the send buffer stayed full for SO_SNDTIMEO)
// is skipped and the rest still go; a refused GSO message is retried one
// packet per message, so each packet meets its own fate (except after EAGAIN:
// the whole message is skipped). After one timeout the rest of the call does
// not wait again, so one call blocks for at most ~100 ms. Only EBADF/ENOTSOCK
// throw.
napi_value udp_send(napi_env env, napi_callback_info info) {
  int fd;
  int64_t count;
  batch_s b;

  if (!get_write_args(env, info, &fd, &b, &count)) return NULL;
  if (count > MAX_BATCH) return throw_range(env, "count %lld exceeds MAX_BATCH (%d)", (long long)count, MAX_BATCH);
  if (!check_rows(env, &b, count)) return NULL;

  env_state *st = get_state(env);
  int f = sock_flags(st, fd);
  bool gso = f > 0 && (f & SOCK_GSO);

  // Group the packets. iov[] holds every packet in row order; group g covers
  // iov[first..first+segs-1] and is sent to addrs[g].
  int np = 0, ng = 0, seg = 0, total = 0;
  bool open = false; // the last group may still grow
  for (int64_t i = 0; i < count; i++) {
    const int32_t *d = b.desc + i * DESC_WORDS;
    int32_t len = d[D_LEN];
    if (len <= 0) continue;
    if (d[D_PORT] < 0 || d[D_PORT] > 65535)
      return throw_range(env, "descriptor %lld: port %d is not in [0, 65535]", (long long)i, d[D_PORT]);
    st->rowof[np] = (int32_t)i;
    st->iov[np].iov_base = b.data + d[D_OFF];
    st->iov[np].iov_len = (size_t)len;
    struct sockaddr_in *sa = ng > 0 ? &st->addrs[ng - 1] : NULL;
    if (gso && open && sa->sin_addr.s_addr == htonl((uint32_t)d[D_ADDR]) && sa->sin_port == htons((uint16_t)d[D_PORT]) &&
        len <= seg && st->groups[ng - 1].segs < GSO_MAX_SEGS && total + len <= UDP_MAX_PAYLOAD) {
      st->groups[ng - 1].segs++;
      total += len;
      if (len < seg) open = false; // a shorter packet ends the run
    } else {
      st->groups[ng] = (send_group){ .first = np, .segs = 1 };
      st->addrs[ng] = (struct sockaddr_in){
        .sin_family = AF_INET,
        .sin_port = htons((uint16_t)d[D_PORT]),
        .sin_addr.s_addr = htonl((uint32_t)d[D_ADDR]),
      };
      seg = total = len;
      open = true;
      ng++;
    }
    np++;
  }

  int ng_iov = 0;
  for (int g = 0; g < ng; g++) {
    struct msghdr *h = &st->msgs[g].msg_hdr;
    memset(h, 0, sizeof *h);
    h->msg_name = &st->addrs[g];
    h->msg_namelen = sizeof st->addrs[g];
    h->msg_iov = &st->iov[st->groups[g].first];
    h->msg_iovlen = (size_t)st->groups[g].segs;
    if (st->groups[g].segs > 1) {
      // The kernel cuts a GSO message at the segment size whatever its
      // iovecs: packets that are adjacent in memory share one.
      const struct iovec *src = &st->iov[st->groups[g].first];
      struct iovec *dst = &st->giov[ng_iov];
      int n = 0;
      for (int k = 0; k < st->groups[g].segs; k++) {
        if (n > 0 && (uint8_t *)dst[n - 1].iov_base + dst[n - 1].iov_len == (uint8_t *)src[k].iov_base)
          dst[n - 1].iov_len += src[k].iov_len;
        else
          dst[n++] = src[k];
      }
      h->msg_iov = dst;
      h->msg_iovlen = (size_t)n;
      ng_iov += n;
      uint16_t size = (uint16_t)st->iov[st->groups[g].first].iov_len;
      h->msg_control = st->ctrl[g].buf;
      h->msg_controllen = CMSG_SPACE(sizeof size);
      struct cmsghdr *c = CMSG_FIRSTHDR(h);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof size);
      memcpy(CMSG_DATA(c), &size, sizeof size);
    }
  }

  int g = 0, sent = 0, flags = 0, fatal = 0;
  while (g < ng && !fatal) {
    int r = sendmmsg(fd, st->msgs + g, (unsigned)(ng - g), flags);
    if (r > 0) {
      for (int k = 0; k < r; k++) sent += st->groups[g + k].segs;
      g += r;
      continue;
    }
    // r < 0: message g failed (sendmmsg reports an error only when the first
    // message of the call fails; after a partial success we retry from the
    // failed one and land here).
    int err = r < 0 ? errno : EIO;
    if (err == EINTR) continue;
    if (err == EBADF || err == ENOTSOCK) {
      fatal = err;
      break;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) {
      flags = MSG_DONTWAIT;
      mark_group_failed(&b, st, g);
    } else if (st->groups[g].segs == 1) {
      mark_group_failed(&b, st, g);
    } else {
      // A refused GSO message: send its packets one by one. EIO means the
      // route's device cannot offload checksums; EINVAL for packets that go
      // fine alone means the kernel refuses UDP_SEGMENT itself. Either way
      // GSO is off for this socket from now on, for the rest of this call too.
      int ok = send_single(fd, st, &b, g, g + 1, &flags, &fatal);
      sent += ok;
      if (!fatal && (err == EIO || (err == EINVAL && ok == st->groups[g].segs))) {
        if ((size_t)fd < st->nsocks) st->socks[fd] &= (uint8_t)~SOCK_GSO;
        sent += send_single(fd, st, &b, g + 1, ng, &flags, &fatal);
        g = ng;
        break;
      }
    }
    g++;
  }
  if (fatal) return throw_fd_errno(env, fatal, "udpSend", fd);
  return make_int(env, sent);
}
