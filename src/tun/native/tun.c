// The TUN device: open, batched read, batched write.
//
// A TUN fd moves one IP packet per read(2)/write(2); batching here means many
// packets per JS->C crossing, not per syscall. The fd is non-blocking: reads
// stop at EAGAIN and the caller waits for the next readability callback.
#include "flannel_tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char *tun_hint(int err) {
  if (err == EPERM || err == EACCES) return "flanneld must run as root or with CAP_NET_ADMIN";
  if (err == ENOENT || err == ENODEV) return "/dev/net/tun is missing (is the tun module loaded?)";
  return NULL;
}

// tunOpen(name: string, multiQueue: boolean) -> { fd, name }
// Creates (or attaches to) the TUN device `name` ("" or a "%d" template lets
// the kernel pick). The device is not persistent: closing the last fd deletes
// it. Returns the kernel's name for it.
napi_value tun_open(napi_env env, napi_callback_info info) {
  napi_value argv[2], result, v;
  char name[64];
  size_t len = 0;
  bool mq;
  napi_valuetype t;

  if (!get_args(env, info, 2, argv)) return NULL;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_string) return throw_type(env, "name must be a string");
  if (!arg_bool(env, argv[1], "multiQueue", &mq)) return NULL;
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
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (mq ? IFF_MULTI_QUEUE : 0);
  memcpy(ifr.ifr_name, name, len);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "tunOpen", name, tun_hint(err));
  }

  ifr.ifr_name[IFNAMSIZ - 1] = '\0';
  if (napi_create_object(env, &result) != napi_ok || napi_create_int32(env, fd, &v) != napi_ok ||
      napi_set_named_property(env, result, "fd", v) != napi_ok ||
      napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &v) != napi_ok ||
      napi_set_named_property(env, result, "name", v) != napi_ok) {
    close(fd);
    return napi_failed(env, napi_generic_failure);
  }
  return result;
}

// tunRead(fd, data, desc, max, slotSize) -> count
// Reads packets into slots 0.. (slot i at byte i*slotSize) until EAGAIN or
// `max` packets; sets D_OFF and D_LEN (D_ADDR and D_PORT to 0) of rows
// 0..count-1. A packet longer than slotSize is truncated by the kernel.
// An error after some packets were read returns those packets; a persistent
// error is thrown by the next call.
napi_value tun_read(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int fd;
  int64_t max, slot;
  batch_s b;

  if (!get_args(env, info, 5, argv) || !arg_fd(env, argv[0], &fd) || !arg_batch(env, argv[1], argv[2], &b) ||
      !arg_int(env, argv[3], "max", 0, INT32_MAX, &max) || !arg_int(env, argv[4], "slotSize", 1, INT32_MAX, &slot) ||
      !check_slots(env, &b, max, slot))
    return NULL;

  int64_t n = 0;
  while (n < max) {
    ssize_t r = read(fd, b.data + n * slot, (size_t)slot);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || n > 0) break;
      char detail[32];
      snprintf(detail, sizeof detail, "fd %d", fd);
      return throw_errno(env, errno, "tunRead", detail, NULL);
    }
    int32_t *d = b.desc + n * DESC_WORDS;
    d[D_OFF] = (int32_t)(n * slot);
    d[D_LEN] = (int32_t)r;
    d[D_ADDR] = 0;
    d[D_PORT] = 0;
    n++;
  }
  return make_int(env, n);
}

// tunWrite(fd, data, desc, count) -> written
// Writes each of rows 0..count-1 whose D_LEN > 0 as one packet. A packet the
// kernel refuses (EINVAL for a malformed packet, EIO when the device is down,
// ENOBUFS, ...) is skipped; the caller counts the difference as drops. Only a
// bad fd (EBADF, EBADFD for a detached queue) throws.
napi_value tun_write(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int fd;
  int64_t count;
  batch_s b;

  if (!get_args(env, info, 4, argv) || !arg_fd(env, argv[0], &fd) || !arg_batch(env, argv[1], argv[2], &b) ||
      !arg_int(env, argv[3], "count", 0, INT32_MAX, &count) || !check_rows(env, &b, count))
    return NULL;

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
      char detail[32];
      snprintf(detail, sizeof detail, "fd %d", fd);
      return throw_errno(env, errno, "tunWrite", detail, NULL);
    }
  }
  return make_int(env, written);
}
