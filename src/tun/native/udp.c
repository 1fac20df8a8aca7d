// The UDP socket: open, recvmmsg, sendmmsg.
//
// The socket stays in blocking mode so that a full send buffer makes sendmmsg
// wait a little (backpressure on the TUN reader) instead of dropping at once;
// SO_SNDTIMEO bounds that wait. Receives never block (MSG_DONTWAIT).
#include "flannel_tun.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define SEND_TIMEOUT_US 100000

static const char *addr_str(uint32_t host_order, char *buf) {
  struct in_addr a = { .s_addr = htonl(host_order) };
  return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

// A socket buffer size: the FORCE variant (CAP_NET_ADMIN) may exceed
// net.core.[rw]mem_max; without the capability fall back to the capped one.
static int set_buf(int fd, int force_opt, int opt, int size) {
  if (size <= 0) return 0;
  if (setsockopt(fd, SOL_SOCKET, force_opt, &size, sizeof size) == 0) return 0;
  if (errno != EPERM) return -1;
  return setsockopt(fd, SOL_SOCKET, opt, &size, sizeof size);
}

// udpOpen(bindAddr: uint32 host order, port, rcvbuf, sndbuf) -> fd
// An IPv4 UDP socket bound to bindAddr:port (0 = any address / any port).
// rcvbuf/sndbuf > 0 set the buffer sizes (bytes, the kernel doubles them).
napi_value udp_open(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int64_t addr, port, rcvbuf, sndbuf;
  char detail[INET_ADDRSTRLEN + 8], a[INET_ADDRSTRLEN];

  if (!get_args(env, info, 4, argv) || !arg_int(env, argv[0], "bindAddr", INT32_MIN, UINT32_MAX, &addr) ||
      !arg_int(env, argv[1], "port", 0, 65535, &port) || !arg_int(env, argv[2], "rcvbuf", 0, INT32_MAX, &rcvbuf) ||
      !arg_int(env, argv[3], "sndbuf", 0, INT32_MAX, &sndbuf))
    return NULL;
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
      set_buf(fd, SO_SNDBUFFORCE, SO_SNDBUF, (int)sndbuf) < 0 ||
      bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "udpOpen", detail, NULL);
  }
  return make_int(env, fd);
}

// udpRecv(fd, data, desc, max, slotSize) -> count
// One recvmmsg of up to min(max, MAX_BATCH) datagrams, never blocking; slot i
// at byte i*slotSize. Sets all four words of rows 0..count-1: D_LEN is -1 for
// a datagram longer than slotSize (its bytes are truncated: drop it). 0 when
// nothing is queued.
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
  for (int64_t i = 0; i < max; i++) {
    st->iov[i].iov_base = b.data + i * slot;
    st->iov[i].iov_len = (size_t)slot;
    struct msghdr *h = &st->msgs[i].msg_hdr;
    memset(h, 0, sizeof *h); // also msg_controllen = 0: no cmsg wanted
    h->msg_name = &st->addrs[i];
    h->msg_namelen = sizeof st->addrs[i];
    h->msg_iov = &st->iov[i];
    h->msg_iovlen = 1;
  }

  int r;
  do {
    r = recvmmsg(fd, st->msgs, (unsigned)max, MSG_DONTWAIT, NULL);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return make_int(env, 0);
    char detail[32];
    snprintf(detail, sizeof detail, "fd %d", fd);
    return throw_errno(env, errno, "udpRecv", detail, NULL);
  }

  for (int i = 0; i < r; i++) {
    int32_t *d = b.desc + (size_t)i * DESC_WORDS;
    d[D_OFF] = (int32_t)(i * slot);
    d[D_LEN] = (st->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ? -1 : (int32_t)st->msgs[i].msg_len;
    d[D_ADDR] = (int32_t)ntohl(st->addrs[i].sin_addr.s_addr);
    d[D_PORT] = ntohs(st->addrs[i].sin_port);
  }
  return make_int(env, r);
}

// udpSend(fd, data, desc, count) -> sent
// Sends each of rows 0..count-1 whose D_LEN > 0 to D_ADDR:D_PORT, in order,
// with sendmmsg; count <= MAX_BATCH (RangeError otherwise). A message the
// kernel refuses (EMSGSIZE, ENETUNREACH, EPERM from a firewall, EINVAL for
// port 0, EAGAIN when the send buffer stayed full for SO_SNDTIMEO) is skipped
// and the rest still go. After one such timeout the rest of the call does not
// wait again, so one call blocks for at most ~100 ms. Only EBADF/ENOTSOCK
// throw.
napi_value udp_send(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int fd;
  int64_t count;
  batch_s b;

  if (!get_args(env, info, 4, argv) || !arg_fd(env, argv[0], &fd) || !arg_batch(env, argv[1], argv[2], &b) ||
      !arg_int(env, argv[3], "count", 0, INT32_MAX, &count))
    return NULL;
  if (count > MAX_BATCH) return throw_range(env, "count %lld exceeds MAX_BATCH (%d)", (long long)count, MAX_BATCH);
  if (!check_rows(env, &b, count)) return NULL;

  env_state *st = get_state(env);
  int n = 0;
  for (int64_t i = 0; i < count; i++) {
    const int32_t *d = b.desc + i * DESC_WORDS;
    if (d[D_LEN] <= 0) continue;
    if (d[D_PORT] < 0 || d[D_PORT] > 65535)
      return throw_range(env, "descriptor %lld: port %d is not in [0, 65535]", (long long)i, d[D_PORT]);
    st->iov[n].iov_base = b.data + d[D_OFF];
    st->iov[n].iov_len = (size_t)d[D_LEN];
    st->addrs[n] = (struct sockaddr_in){
      .sin_family = AF_INET,
      .sin_port = htons((uint16_t)d[D_PORT]),
      .sin_addr.s_addr = htonl((uint32_t)d[D_ADDR]),
    };
    struct msghdr *h = &st->msgs[n].msg_hdr;
    memset(h, 0, sizeof *h);
    h->msg_name = &st->addrs[n];
    h->msg_namelen = sizeof st->addrs[n];
    h->msg_iov = &st->iov[n];
    h->msg_iovlen = 1;
    n++;
  }

  int i = 0, sent = 0, flags = 0;
  while (i < n) {
    int r = sendmmsg(fd, st->msgs + i, (unsigned)(n - i), flags);
    if (r > 0) {
      i += r;
      sent += r;
      continue;
    }
    // r < 0: message i failed (sendmmsg reports an error only when the first
    // message of the call fails; after a partial success we retry from the
    // failed one and land here).
    int err = r < 0 ? errno : EIO;
    if (err == EINTR) continue;
    if (err == EBADF || err == ENOTSOCK) {
      char detail[32];
      snprintf(detail, sizeof detail, "fd %d", fd);
      return throw_errno(env, err, "udpSend", detail, NULL);
    }
    if (err == EAGAIN || err == EWOULDBLOCK) flags = MSG_DONTWAIT;
    i++;
  }
  return make_int(env, sent);
}
