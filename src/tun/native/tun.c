// The TUN device: open, batched read, batched write.
//
// A TUN fd moves one IP packet per read(2)/write(2); batching here means many
// packets per JS->C crossing, not per syscall. The fd is non-blocking: reads
// stop at EAGAIN and the caller waits for the next readability callback.
//
// With vnetHdr (IFF_VNET_HDR) every read and write starts with a 10-byte
// virtio_net_hdr; JS never sees it: reads land after it (D_OFF = slot + 10)
// and writes add it (tun_gro.c, which also coalesces TCP segments into one
// GSO write when TUN_GRO is on). A NEEDS_CSUM packet is completed on read.
// With tso too, TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4) lets the kernel hand
// over whole TCP super-packets, which tunRead splits (tun_tso.c); without it
// the kernel segments them itself. The per-fd state (TUN_* flags) lives in
// the env's table indexed by fd.
#include "flannel_tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/ethtool.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

// ---- per-fd offload state ----

bool tun_set_flags(env_state *st, int fd, int flags) {
  if (!fd_table_reserve(&st->tuns, &st->ntuns, fd)) return false;
  st->tuns[fd] = (uint8_t)flags;
  return true;
}

// Whether the device `name` has TCP segmentation offload on (ETHTOOL_GTSO):
// set by TUNSETOFFLOAD with TUN_F_TSO4 on a TUN device.
static bool device_tso(const char *name) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  struct ethtool_value ev = { .cmd = ETHTOOL_GTSO };
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strnlen(name, IFNAMSIZ - 1));
  ifr.ifr_data = (void *)&ev;
  bool on = ioctl(s, SIOCETHTOOL, &ifr) == 0 && ev.data;
  close(s);
  return on;
}

// An fd this env did not open (another thread's, or inherited) is probed once
// with TUNGETIFF: IFF_VNET_HDR means headers, and then GRO is on (the
// `gro: false` choice of another thread is not visible here); TSO is what the
// device reports (ETHTOOL_GTSO).
int tun_flags(env_state *st, int fd) {
  if ((size_t)fd < st->ntuns && (st->tuns[fd] & TUN_KNOWN)) return st->tuns[fd];
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) return -errno;
  int f = TUN_KNOWN;
  if (ifr.ifr_flags & IFF_VNET_HDR) {
    ifr.ifr_name[IFNAMSIZ - 1] = '\0';
    f |= TUN_VNET | TUN_GRO | (device_tso(ifr.ifr_name) ? TUN_TSO : 0);
  }
  tun_set_flags(st, fd, f); // out of memory: probed again next time
  return f;
}

void tun_forget(env_state *st, int fd) {
  if (fd >= 0 && (size_t)fd < st->ntuns) st->tuns[fd] = 0;
  tun_stash_forget(st, fd);
}

static const char *tun_hint(int err) {
  if (err == EPERM || err == EACCES) return "flanneld must run as root or with CAP_NET_ADMIN";
  if (err == ENOENT || err == ENODEV) return "/dev/net/tun is missing (is the tun module loaded?)";
  return NULL;
}

// tunOpen(name: string, multiQueue: boolean, vnetHdr?: boolean, gro?: boolean, tso?: boolean) -> { fd, name }
// Creates (or attaches to) the TUN device `name` ("" or a "%d" template lets
// the kernel pick). The device is not persistent: closing the last fd deletes
// it. Returns the kernel's name for it. vnetHdr (default false) adds
// IFF_VNET_HDR with a 10-byte header (TUNSETVNETHDRSZ); gro (default true,
// only with vnetHdr) lets tunWrite coalesce TCP segments; tso (default false,
// only with vnetHdr) asks for TCPv4 super-packets on read (TUNSETOFFLOAD
// TUN_F_CSUM | TUN_F_TSO4; a kernel that refuses leaves it off, see
// tunOffloads). IFF_VNET_HDR and the offloads are properties of the device:
// every queue of a multi-queue device must agree.
napi_value tun_open(napi_env env, napi_callback_info info) {
  napi_value argv[5], result, v;
  char name[64];
  size_t len = 0;
  bool mq, vnet = false, gro = true, tso = false;
  napi_valuetype t;

  if (!get_args_opt(env, info, 2, 5, argv)) return NULL;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_string) return throw_type(env, "name must be a string");
  if (!arg_bool(env, argv[1], "multiQueue", &mq)) return NULL;
  NAPI_CALL(env, napi_typeof(env, argv[2], &t));
  if (t != napi_undefined && !arg_bool(env, argv[2], "vnetHdr", &vnet)) return NULL;
  NAPI_CALL(env, napi_typeof(env, argv[3], &t));
  if (t != napi_undefined && !arg_bool(env, argv[3], "gro", &gro)) return NULL;
  NAPI_CALL(env, napi_typeof(env, argv[4], &t));
  if (t != napi_undefined && !arg_bool(env, argv[4], "tso", &tso)) return NULL;
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len));

  // The kernel silently truncates ifr_name to IFNAMSIZ-1 bytes; a caller
  // asking for a longer name must not get a device with another name.
  if (len >= IFNAMSIZ || strlen(name) != len) {
    return throw_errno(env, EINVAL, "tunOpen", name,
                       len >= IFNAMSIZ ? "interface names are at most 15 bytes" : "name contains a NUL byte");
  }

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, errno, "tunOpen", name, tun_hint(errno));

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (mq ? IFF_MULTI_QUEUE : 0) | (vnet ? IFF_VNET_HDR : 0);
  memcpy(ifr.ifr_name, name, len);
  int hdrsz = VNET_HDR_LEN;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0 || (vnet && ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) < 0)) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "tunOpen", name, tun_hint(err));
  }
  // TSO: the kernel may then hand over TCPv4 super-packets (and leaves
  // checksums partial, TUN_F_CSUM, which TSO needs). Refused: left off.
  // Not TSO6 (flannel0 carries no IPv6) nor USO (UDP super-packets, which
  // tunRead does not split).
  bool tso_on = vnet && tso && ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4)) == 0;
  if (!tun_set_flags(get_state(env), fd,
                     TUN_KNOWN | (vnet ? TUN_VNET : 0) | (vnet && gro ? TUN_GRO : 0) | (tso_on ? TUN_TSO : 0))) {
    close(fd);
    return throw_errno(env, ENOMEM, "tunOpen", name, NULL);
  }

  ifr.ifr_name[IFNAMSIZ - 1] = '\0';
  if (napi_create_object(env, &result) != napi_ok || napi_create_int32(env, fd, &v) != napi_ok ||
      napi_set_named_property(env, result, "fd", v) != napi_ok ||
      napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &v) != napi_ok ||
      napi_set_named_property(env, result, "name", v) != napi_ok) {
    tun_forget(get_state(env), fd);
    close(fd);
    return napi_failed(env, napi_generic_failure);
  }
  return result;
}

// tunRead(fd, data, desc, max, slotSize, info?) -> count
// Reads packets into slots 0.. (slot i at byte i*slotSize) until EAGAIN or
// `max` packets; sets D_OFF and D_LEN (D_ADDR and D_PORT to 0) of rows
// 0..count-1. A packet longer than slotSize is truncated by the kernel.
// On a vnetHdr fd the slot starts with the virtio_net_hdr: the packet is at
// D_OFF = slot offset + 10 and may be up to slotSize - 10 bytes; a NEEDS_CSUM
// packet gets its checksum completed first.
// On a TSO fd (see tun_tso.c) slotSize must be >= 65545 and the layout is
// packed: reads land one after the other, a TCP super-packet becomes one row
// per segment (so count may exceed max; D_PORT of a super-packet's first row
// is its number of segments), and reading stops early when data or desc has
// no room left for another full read.
// info (optional Int32Array of >= 6): [packets read from the kernel, 1 if the
// queue was drained (EAGAIN), super-packets split, rows they made, reads
// dropped (malformed GSO), 1 if a read was kept for the next call].
// An error after some packets were read returns those packets; a persistent
// error is thrown by the next call.
napi_value tun_read(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  int fd;
  int64_t max, slot;
  batch_s b;
  int32_t *stats = NULL;

  if (!get_args_opt(env, info, 5, 6, argv) || !arg_fd(env, argv[0], &fd) || !arg_batch(env, argv[1], argv[2], &b) ||
      !arg_int(env, argv[3], "max", 0, INT32_MAX, &max) || !arg_int(env, argv[4], "slotSize", 1, INT32_MAX, &slot) ||
      !check_slots(env, &b, max, slot))
    return NULL;
  napi_valuetype vt;
  NAPI_CALL(env, napi_typeof(env, argv[5], &vt));
  if (vt != napi_undefined) {
    bool is_ta = false;
    napi_typedarray_type type;
    size_t n;
    void *p;
    if (napi_is_typedarray(env, argv[5], &is_ta) != napi_ok || !is_ta ||
        napi_get_typedarray_info(env, argv[5], &type, &n, &p, NULL, NULL) != napi_ok || type != napi_int32_array ||
        n < TUN_INFO_WORDS)
      return throw_type(env, "info must be an Int32Array of at least %d elements", TUN_INFO_WORDS);
    stats = p;
    memset(stats, 0, TUN_INFO_WORDS * sizeof *stats);
  }

  env_state *st = get_state(env);
  int f = max > 0 ? tun_flags(st, fd) : 0;
  int32_t hdr = f > 0 && (f & TUN_VNET) ? VNET_HDR_LEN : 0;
  if (hdr && slot <= hdr) return throw_range(env, "slotSize must exceed the %d-byte virtio_net_hdr on a vnetHdr fd", hdr);

  if (f > 0 && (f & TUN_TSO)) {
    if (slot < TSO_MIN_SLOT)
      return throw_range(env, "fd %d has TSO on: slotSize must be >= %d (a 64 KiB super-packet and its header), got %lld", fd,
                         TSO_MIN_SLOT, (long long)slot);
    int err;
    int64_t rows = tun_read_tso(st, fd, &b, max, (size_t)slot, stats, &err);
    if (err) return throw_fd_errno(env, err, "tunRead", fd);
    return make_int(env, rows);
  }

  int64_t n = 0, reads = 0;
  while (n < max) {
    uint8_t *buf = b.data + n * slot;
    ssize_t r = read(fd, buf, (size_t)slot);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (stats) stats[TUN_INFO_DRAINED] = 1;
        break;
      }
      if (n > 0) break;
      return throw_fd_errno(env, errno, "tunRead", fd);
    }
    reads++;
    if (hdr) {
      if (r <= hdr) continue; // no packet behind the header: reuse the slot
      if (buf[1] != 0) { // a GSO packet on a fd without TSO (set up by someone else): cannot split here
        if (stats) stats[TUN_INFO_DROPPED]++;
        continue;
      }
      tun_vnet_finish_read(buf, (size_t)r);
    }
    int32_t *d = b.desc + n * DESC_WORDS;
    d[D_OFF] = (int32_t)(n * slot) + hdr;
    d[D_LEN] = (int32_t)r - hdr;
    d[D_ADDR] = 0;
    d[D_PORT] = 0;
    n++;
  }
  if (stats) stats[TUN_INFO_READS] = (int32_t)reads;
  return make_int(env, n);
}

// tunWrite(fd, data, desc, count) -> written
// Writes each of rows 0..count-1 whose D_LEN > 0 as one packet. A packet the
// kernel refuses (EINVAL for a malformed packet, EIO when the device is down,
// ENOBUFS, ...) is skipped; the caller counts the difference as drops. Only a
// bad fd (EBADF, EBADFD for a detached queue) throws. A refused row comes
// back with D_LEN = 0, so the rows still > 0 are exactly those written.
// On a vnetHdr fd each packet goes behind a zero virtio_net_hdr, and with GRO
// runs of TCP segments of a flow go as one GSO write (tun_gro.c); the result
// still counts packets (rows).
napi_value tun_write(napi_env env, napi_callback_info info) {
  int fd;
  int64_t count;
  batch_s b;

  if (!get_write_args(env, info, &fd, &b, &count) || !check_rows(env, &b, count)) return NULL;

  env_state *st = get_state(env);
  int f = count > 0 ? tun_flags(st, fd) : 0;
  if (f > 0 && (f & TUN_VNET)) {
    int64_t r = tun_write_vnet(fd, &b, count, &f);
    if ((size_t)fd < st->ntuns) st->tuns[fd] = (uint8_t)f; // GRO refused, test hook used
    if (r < 0) return throw_fd_errno(env, (int)-r, "tunWrite", fd);
    return make_int(env, r);
  }

  int64_t written = 0;
  for (int64_t i = 0; i < count; i++) {
    const int32_t *d = b.desc + i * DESC_WORDS;
    if (d[D_LEN] <= 0) continue;
    ssize_t r;
    do {
      r = write(fd, b.data + d[D_OFF], (size_t)d[D_LEN]);
    } while (r < 0 && errno == EINTR);
    if (r >= 0) {
      written++;
    } else if (errno == EBADF || errno == EBADFD) {
      return throw_fd_errno(env, errno, "tunWrite", fd);
    } else {
      b.desc[i * DESC_WORDS + D_LEN] = 0; // refused: the caller counts rows still > 0
    }
  }
  return make_int(env, written);
}

// tunOffloads(fd) -> { vnetHdr, gro, tso }: what tunRead/tunWrite do on fd
// now (gro goes off by itself when the kernel refuses a GSO write). An fd
// this thread did not open is probed (TUNGETIFF, ETHTOOL_GTSO). Throws for a
// non-TUN fd.
napi_value tun_offloads(napi_env env, napi_callback_info info) {
  static const flag_prop props[] = { { "vnetHdr", TUN_VNET }, { "gro", TUN_GRO }, { "tso", TUN_TSO } };
  return offloads_export(env, info, "tunOffloads", tun_flags, props, sizeof props / sizeof *props);
}
