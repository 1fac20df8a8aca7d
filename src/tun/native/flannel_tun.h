// Shared declarations of the flannel_tun addon.
//
// The addon is a thin layer over the data plane's syscalls: it opens the TUN
// device and the UDP socket, moves batches of packets between them and a
// caller-owned slab, and tells JS when an fd is readable. It keeps no packet
// state of its own; JS owns the buffers, the fds and every decision.
#ifndef FLANNEL_TUN_H
#define FLANNEL_TUN_H

#include <node_api.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

// Descriptor layout, one row of DESC_WORDS int32 per packet (src/tun/batch.ts).
#define DESC_WORDS 4
#define D_OFF 0  // byte offset of the packet in `data`
#define D_LEN 1  // length; 0 = dropped (not sent), -1 = truncated on receive
#define D_ADDR 2 // IPv4, host byte order, int32 bits
#define D_PORT 3 // UDP port

// Most messages one udpRecv/udpSend call handles. The mmsghdr/iovec/address
// arrays for that many live in the per-env state, allocated once, so no call
// allocates.
#define MAX_BATCH 1024

typedef struct poll_s poll_s;

// Per-env (main thread or worker) state: set as the env's instance data, so
// nothing is shared between threads.
typedef struct {
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_in addrs[MAX_BATCH];
  poll_s *polls; // active watchers, closed when the env tears down
} env_state;

env_state *get_state(napi_env env);

// ---- arguments (args.c). Each returns false with a JS exception pending. ----

// Fetches exactly `n` arguments (missing ones are a TypeError).
bool get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv);
// An integer-valued number in [min, max]: TypeError if not a number,
// RangeError if fractional or out of range.
bool arg_int(napi_env env, napi_value v, const char *what, int64_t min, int64_t max, int64_t *out);
bool arg_fd(napi_env env, napi_value v, int *fd);
bool arg_bool(napi_env env, napi_value v, const char *what, bool *out);

// The slab and its descriptors, as passed from JS. Pointers stay valid for
// the duration of the call (ArrayBuffer backing stores do not move).
typedef struct {
  uint8_t *data;
  size_t data_len;
  int32_t *desc;
  size_t rows; // complete descriptor rows in `desc`
} batch_s;

// data: a Buffer (any Uint8Array); desc: an Int32Array.
bool arg_batch(napi_env env, napi_value data, napi_value desc, batch_s *b);
// For readers: `max` slots of `slot` bytes must fit in data, descriptors and
// int32 offsets.
bool check_slots(napi_env env, const batch_s *b, int64_t max, int64_t slot);
// For writers: count <= rows, and every row with D_LEN > 0 lies inside data.
bool check_rows(napi_env env, const batch_s *b, int64_t count);

// ---- errors (flannel_tun.c) ----

// Throws Error{code: "EPERM", errno: 1, syscall: op} with message
// "<op> <detail>: <strerror> (<CODE>)[; <hint>]". Returns NULL for `return`.
napi_value throw_errno(napi_env env, int err, const char *op, const char *detail, const char *hint);
napi_value throw_type(napi_env env, const char *fmt, ...);
napi_value throw_range(napi_env env, const char *fmt, ...);

// On a failed napi_* call: throws a generic error unless one is pending.
napi_value napi_failed(napi_env env, napi_status status);
#define NAPI_CALL(env, call)                       \
  do {                                             \
    napi_status status_ = (call);                  \
    if (status_ != napi_ok) return napi_failed((env), status_); \
  } while (0)

napi_value make_int(napi_env env, int64_t v);

// ---- exports ----
napi_value tun_open(napi_env env, napi_callback_info info);
napi_value tun_read(napi_env env, napi_callback_info info);
napi_value tun_write(napi_env env, napi_callback_info info);
napi_value udp_open(napi_env env, napi_callback_info info);
napi_value udp_recv(napi_env env, napi_callback_info info);
napi_value udp_send(napi_env env, napi_callback_info info);
napi_value poll_start(napi_env env, napi_callback_info info);
napi_value poll_stop(napi_env env, napi_callback_info info);
// Env teardown: stops and closes every watcher still active.
void poll_close_all(env_state *st);

#endif
