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

// UDP segmentation offload limits (udp.c). One GSO send carries at most
// GSO_MAX_SEGS equal-sized datagrams totalling at most UDP_MAX_PAYLOAD bytes;
// the kernel coalesces at most GRO_MAX_SEGS (UDP_GRO_CNT_MAX) datagrams into
// one GRO receive, which needs a slot of at least GRO_MIN_SLOT bytes.
#define GSO_MAX_SEGS 64
#define GRO_MAX_SEGS 64
#define UDP_MAX_PAYLOAD 65507
#define GRO_MIN_SLOT 65536

// Room for one cmsg carrying a u16 (UDP_SEGMENT) or an int (UDP_GRO).
typedef union {
  char buf[CMSG_SPACE(sizeof(int))];
  struct cmsghdr align;
} cmsg_buf;

// One outgoing message of udpSend: `segs` packets iov[first..first+segs-1] to
// the same destination, sent as one UDP_SEGMENT (GSO) message when segs > 1.
typedef struct {
  int first;
  int segs;
} send_group;

// Per-socket offload state, indexed by fd (see udp.c: sock_flags).
#define SOCK_KNOWN 1 // entry filled (by udpOpen or by probing the fd)
#define SOCK_GSO 2   // send with UDP_SEGMENT (cleared at the first refusal)
#define SOCK_GRO 4   // UDP_GRO is on: receives may be coalesced

// Per-TUN-fd offload state, indexed by fd (see tun.c: tun_flags).
#define TUN_KNOWN 1       // entry filled (by tunOpen or by probing the fd)
#define TUN_VNET 2        // IFF_VNET_HDR: every read/write starts with a virtio_net_hdr
#define TUN_GRO 4         // tunWrite coalesces TCPv4 segments (cleared at the first refusal)
#ifdef FLANNEL_TUN_TEST
#define TUN_TEST_REFUSE 8 // test build only: the next GSO write is malformed (tunTestRefuseGso)
#endif
#define TUN_TSO 16        // TUNSETOFFLOAD CSUM|TSO4: reads may be TCP super-packets, split by tunRead (tun_tso.c)

// The virtio_net_hdr in front of every packet on a TUN_VNET fd.
#define VNET_HDR_LEN 10

// A TSO read may be a 65535-byte IPv4 packet behind the header: the least
// slotSize tunRead takes on a TUN_TSO fd, and the size of the stash.
#define TSO_MIN_SLOT (65535 + VNET_HDR_LEN)
#define STASH_BYTES TSO_MIN_SLOT

// tunRead's optional `info` Int32Array (src/tun/batch.ts: READ_INFO_*).
#define TUN_INFO_READS 0    // packets read from the kernel
#define TUN_INFO_DRAINED 1  // 1 when the read stopped at EAGAIN (the queue is empty)
#define TUN_INFO_SUPER 2    // super-packets split
#define TUN_INFO_SEGMENTS 3 // rows those made
#define TUN_INFO_DROPPED 4  // reads dropped: malformed GSO, or too big for the batch
#define TUN_INFO_STASHED 5  // 1 when a read did not fit and was kept for the next call
#define TUN_INFO_WORDS 6

typedef struct poll_s poll_s;

// Per-env (main thread or worker) state: set as the env's instance data, so
// nothing is shared between threads.
typedef struct {
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  // udpSend: the iovecs of GSO messages, adjacent packets merged (the
  // segments of a split super-packet lie back to back: one iovec each run).
  struct iovec giov[MAX_BATCH];
  struct sockaddr_in addrs[MAX_BATCH];
  // udpSend/udpRecv: a control buffer per message, the send groups, and a
  // second header array for packets sent one by one after a GSO refusal.
  cmsg_buf ctrl[MAX_BATCH];
  send_group groups[MAX_BATCH];
  struct mmsghdr single[MAX_BATCH];
  // udpSend: the descriptor row of each iov[] entry, so a refused datagram's
  // row can be marked (D_LEN = 0) for the caller's exact accounting.
  int32_t rowof[MAX_BATCH];
  // Offload flags (SOCK_*) of the UDP sockets this env used, indexed by fd;
  // grown by udpOpen, cleared by closeFd. Per env: a socket moved to another
  // thread is probed there again.
  uint8_t *socks;
  size_t nsocks;
  // Offload flags (TUN_*) of the TUN fds this env used, indexed by fd; grown
  // by tunOpen (or the first use of an fd opened elsewhere), cleared by closeFd.
  uint8_t *tuns;
  size_t ntuns;
  poll_s *polls; // active watchers, closed when the env tears down
  // tunRead on a TUN_TSO fd: a super-packet read when the batch had no room
  // left for its segments, split first by the next call on stash_fd.
  uint8_t *stash;
  size_t stash_len; // 0: empty
  int stash_fd;
} env_state;

env_state *get_state(napi_env env);
// Makes (*table)[fd] of a per-fd flags table (socks, tuns) addressable: grows
// it zero-filled, doubling from 64 entries. False when out of memory (the
// table is left as it was).
bool fd_table_reserve(uint8_t **table, size_t *len, int fd);

// ---- arguments (args.c). Each returns false with a JS exception pending. ----

// Fetches exactly `n` arguments (missing ones are a TypeError).
bool get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv);
// Fetches at least `min` and up to `max` arguments; missing optional ones are
// `undefined` in argv.
bool get_args_opt(napi_env env, napi_callback_info info, size_t min, size_t max, napi_value *argv);
// Property `name` of `obj` as a boolean; `undefined` (or a missing property)
// gives `dflt`, anything else but a boolean is a TypeError.
bool prop_bool(napi_env env, napi_value obj, const char *name, bool dflt, bool *out);
// An integer-valued number in [min, max]: TypeError if not a number,
// RangeError if fractional or out of range.
bool arg_int(napi_env env, napi_value v, const char *what, int64_t min, int64_t max, int64_t *out);
bool arg_fd(napi_env env, napi_value v, int *fd);
bool arg_bool(napi_env env, napi_value v, const char *what, bool *out);
/** A Float64Array of at least min_len elements (its data and length), else a TypeError naming `what`. */
bool arg_f64s(napi_env env, napi_value v, const char *what, size_t min_len, double **out, size_t *len);

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
// A writer's (fd, data, desc, count) arguments; the rows are left to
// check_rows, which a caller with a lower limit on count runs after its own check.
bool get_write_args(napi_env env, napi_callback_info info, int *fd, batch_s *b, int64_t *count);
// For readers: `max` slots of `slot` bytes must fit in data, descriptors and
// int32 offsets.
bool check_slots(napi_env env, const batch_s *b, int64_t max, int64_t slot);
// For writers: count <= rows, and every row with D_LEN > 0 lies inside data.
bool check_rows(napi_env env, const batch_s *b, int64_t count);

// ---- errors (flannel_tun.c) ----

// Throws Error{code: "EPERM", errno: 1, syscall: op} with message
// "<op> <detail>: <strerror> (<CODE>)[; <hint>]". Returns NULL for `return`.
napi_value throw_errno(napi_env env, int err, const char *op, const char *detail, const char *hint);
// throw_errno for a call on fd: "<op> fd <fd>: <strerror> (<CODE>)".
napi_value throw_fd_errno(napi_env env, int err, const char *op, int fd);
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

// One boolean of a tunOffloads/udpOffloads result: whether `bit` is set.
typedef struct {
  const char *name;
  int bit;
} flag_prop;
// tunOffloads/udpOffloads(fd): fd's flags from flags_of (-errno is thrown as
// op's error on fd) as an object of one boolean per prop, in order.
napi_value offloads_export(napi_env env, napi_callback_info info, const char *op, int (*flags_of)(env_state *, int),
                           const flag_prop *props, size_t n);

// ---- exports ----
napi_value tun_open(napi_env env, napi_callback_info info);
napi_value tun_read(napi_env env, napi_callback_info info);
napi_value tun_write(napi_env env, napi_callback_info info);
napi_value tun_offloads(napi_env env, napi_callback_info info);
// closeFd: forgets fd's TUN offload state.
void tun_forget(env_state *st, int fd);
// The TUN_* flags of fd (probed with TUNGETIFF if this env has not seen it),
// or -errno when it is not an open TUN fd. tun.c.
int tun_flags(env_state *st, int fd);
// Sets fd's flags (after tunOpen / a refusal); false when out of memory.
bool tun_set_flags(env_state *st, int fd, int flags);

// ---- TUN offloads (tun_gro.c) ----
// tunWrite on a TUN_VNET fd: every row with D_LEN > 0 is written behind a
// virtio_net_hdr; with TUN_GRO, runs of TCPv4 segments of one flow go as one
// GSO super-packet. Returns the number of rows (packets) written, or -errno
// for an fd that is gone (EBADF/EBADFD). *flags may lose TUN_GRO (refusal)
// and, in the test build, TUN_TEST_REFUSE.
int64_t tun_write_vnet(int fd, const batch_s *b, int64_t count, int *flags);
// After a read on a TUN_VNET fd: buf holds the virtio_net_hdr and then len
// bytes of packet. Completes a NEEDS_CSUM checksum in place.
void tun_vnet_finish_read(uint8_t *buf, size_t len);

// ---- TUN offloads on read (tun_tso.c) ----
struct virtio_net_hdr;
// How a TCPv4 super-packet splits: IP header length, IP + TCP header length,
// payload bytes per segment, payload bytes in all, segments, and the bytes of
// all segments back to back.
typedef struct {
  uint32_t ihl, hlen, gso, payload, segs;
  size_t out;
} tso_plan_s;
// Validates the super-packet p (len bytes, header vh) and plans its split;
// false when it is malformed or not TCPv4.
bool tso_plan(const uint8_t *p, size_t len, const struct virtio_net_hdr *vh, tso_plan_s *pl);
// Splits p in place into pl->segs segments, segment i at p + i * (hlen + gso);
// needs pl->out bytes at p.
void tso_apply(uint8_t *p, const tso_plan_s *pl);
// tunRead on a TUN_TSO fd (packed layout, see tun_tso.c). Returns the rows
// filled; *err is set (and 0 returned) for a read error with nothing read.
int64_t tun_read_tso(env_state *st, int fd, const batch_s *b, int64_t max, size_t slot, int32_t *info, int *err);
void tun_stash_forget(env_state *st, int fd);
// One read's packet at b->data[cur..cur+r) placed into rows from row on, as
// tunRead on a TSO fd does; *next is where the next read may go.
int tso_place(const batch_s *b, size_t cur, size_t r, size_t row, size_t *next, int32_t *info);

#ifdef FLANNEL_TUN_TEST
// ---- the test build's exports (test_hooks.c; groPlan in tun_gro.c) ----
napi_value gro_plan(napi_env env, napi_callback_info info);
bool define_test_exports(napi_env env, napi_value exports);
#endif

napi_value udp_open(napi_env env, napi_callback_info info);
napi_value udp_recv(napi_env env, napi_callback_info info);
napi_value udp_send(napi_env env, napi_callback_info info);
napi_value udp_offloads(napi_env env, napi_callback_info info);
napi_value udp_local_port(napi_env env, napi_callback_info info);
// closeFd: forgets fd's offload state.
void udp_forget(env_state *st, int fd);
// The SOCK_* flags of fd in this env (probed if unknown), or -errno.
int udp_flags(env_state *st, int fd);
bool udp_set_flags(env_state *st, int fd, int flags);
napi_value offload_state(napi_env env, napi_callback_info info);
napi_value adopt_offload_state(napi_env env, napi_callback_info info);
napi_value poll_start(napi_env env, napi_callback_info info);
// ---- the data-plane thread's wait (wait.c) ----
napi_value dp_wait_open(napi_env env, napi_callback_info info);
napi_value dp_wait(napi_env env, napi_callback_info info);
napi_value dp_wake(napi_env env, napi_callback_info info);
napi_value thread_stats(napi_env env, napi_callback_info info);
napi_value thread_nice(napi_env env, napi_callback_info info);
napi_value thread_slice(napi_env env, napi_callback_info info);
napi_value thread_name(napi_env env, napi_callback_info info);
napi_value dp_clock(napi_env env, napi_callback_info info);
napi_value poll_stop(napi_env env, napi_callback_info info);
napi_value lock_mapped_files(napi_env env, napi_callback_info info); // residency.c
napi_value sd_notify_send(napi_env env, napi_callback_info info); // notify.c
// Env teardown: stops and closes every watcher still active.
void poll_close_all(env_state *st);

#endif
