// flannel_tun: the module, its per-env state, errors and closeFd.
//
// Exports (types as seen from JS; see src/tun/native.ts for callers' rules):
//   tunOpen(name, multiQueue, vnetHdr?, gro?, tso?) -> { fd, name }
//   tunRead(fd, data, desc, max, slotSize, info?) -> count
//   tunWrite(fd, data, desc, count) -> written
//   tunOffloads(fd) -> { vnetHdr, gro, tso }
//   (the test build adds groPlan, tsoSplit, onesSum, tunTestRefuseGso: test_hooks.c)
//   udpOpen(bindAddr, port, rcvbuf, sndbuf, offloads?) -> fd
//   udpRecv(fd, data, desc, max, slotSize) -> descriptors filled
//   udpSend(fd, data, desc, count) -> packets sent
//   udpOffloads(fd) -> { gso, gro };  udpLocalPort(fd) -> port
//   pollStart(fd, callback) -> handle;  pollStop(handle)
//   closeFd(fd)
//   sdNotify(socketPath, message) -> bytes sent  (notify.c)
//   DESC_WORDS, MAX_BATCH (numbers)
#include "flannel_tun.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

env_state *get_state(napi_env env) {
  void *p = NULL;
  napi_get_instance_data(env, &p);
  return p;
}

napi_value make_int(napi_env env, int64_t v) {
  napi_value r;
  if (napi_create_int64(env, v, &r) != napi_ok) return NULL;
  return r;
}

bool fd_table_reserve(uint8_t **table, size_t *len, int fd) {
  if ((size_t)fd < *len) return true;
  size_t n = *len ? *len : 64;
  while (n <= (size_t)fd) n *= 2;
  uint8_t *p = realloc(*table, n);
  if (!p) return false;
  memset(p + *len, 0, n - *len);
  *table = p;
  *len = n;
  return true;
}

napi_value offloads_export(napi_env env, napi_callback_info info, const char *op, int (*flags_of)(env_state *, int),
                           const flag_prop *props, size_t n) {
  napi_value argv[1], r, v;
  int fd;
  if (!get_args(env, info, 1, argv) || !arg_fd(env, argv[0], &fd)) return NULL;
  int flags = flags_of(get_state(env), fd);
  if (flags < 0) return throw_fd_errno(env, -flags, op, fd);
  NAPI_CALL(env, napi_create_object(env, &r));
  for (size_t i = 0; i < n; i++) {
    NAPI_CALL(env, napi_get_boolean(env, (flags & props[i].bit) != 0, &v));
    NAPI_CALL(env, napi_set_named_property(env, r, props[i].name, v));
  }
  return r;
}

napi_value napi_failed(napi_env env, napi_status status) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    const napi_extended_error_info *info = NULL;
    napi_get_last_error_info(env, &info);
    napi_throw_error(env, NULL, info && info->error_message ? info->error_message : "N-API call failed");
  }
  return NULL;
}

napi_value throw_errno(napi_env env, int err, const char *op, const char *detail, const char *hint) {
  char buf[256], msg[512];
  const char *name = strerrorname_np(err);
  // GNU strerror_r: thread-safe (workers), may return a static string instead of buf.
  const char *text = strerror_r(err, buf, sizeof buf);
  napi_value code, message, error, num, sys;

  if (!name) name = "UNKNOWN";
  snprintf(msg, sizeof msg, "%s%s%s: %s (%s)%s%s", op, detail ? " " : "", detail ? detail : "",
           text, name, hint ? "; " : "", hint ? hint : "");
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok ||
      napi_create_error(env, code, message, &error) != napi_ok ||
      napi_create_int32(env, err, &num) != napi_ok ||
      napi_set_named_property(env, error, "errno", num) != napi_ok ||
      napi_create_string_utf8(env, op, NAPI_AUTO_LENGTH, &sys) != napi_ok ||
      napi_set_named_property(env, error, "syscall", sys) != napi_ok) {
    return napi_failed(env, napi_generic_failure);
  }
  napi_throw(env, error);
  return NULL;
}

napi_value throw_fd_errno(napi_env env, int err, const char *op, int fd) {
  char detail[32];
  snprintf(detail, sizeof detail, "fd %d", fd);
  return throw_errno(env, err, op, detail, NULL);
}

static napi_value throw_fmt(napi_env env, bool range, const char *fmt, va_list ap) {
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  if (range)
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  else
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

napi_value throw_type(napi_env env, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  throw_fmt(env, false, fmt, ap);
  va_end(ap);
  return NULL;
}

napi_value throw_range(napi_env env, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  throw_fmt(env, true, fmt, ap);
  va_end(ap);
  return NULL;
}

// closeFd(fd): close(2). EINTR is not retried: on Linux the fd is already
// released and a retry could close an fd another thread just opened.
static napi_value close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!get_args(env, info, 1, argv) || !arg_fd(env, argv[0], &fd)) return NULL;
  udp_forget(get_state(env), fd);
  tun_forget(get_state(env), fd);
  if (close(fd) < 0 && errno != EINTR) return throw_fd_errno(env, errno, "closeFd", fd);
  return NULL;
}

// Env teardown (process exit or worker termination): watchers still running
// must stop and close while their loop still exists. Runs before the env's
// N-API teardown (cleanup hooks run in reverse order of registration).
static void env_cleanup(void *arg) {
  poll_close_all(arg);
}

static void env_free(napi_env env, void *data, void *hint) {
  free(((env_state *)data)->socks);
  free(((env_state *)data)->tuns);
  free(((env_state *)data)->stash);
  free(data);
}

static napi_value init(napi_env env, napi_value exports) {
  env_state *st = calloc(1, sizeof *st);
  if (!st) {
    napi_throw_error(env, NULL, "flannel_tun: out of memory");
    return NULL;
  }
  NAPI_CALL(env, napi_set_instance_data(env, st, env_free, NULL));
  NAPI_CALL(env, napi_add_env_cleanup_hook(env, env_cleanup, st));

  napi_value desc_words, max_batch, layout;
  NAPI_CALL(env, napi_create_int32(env, DESC_WORDS, &desc_words));
  NAPI_CALL(env, napi_create_int32(env, MAX_BATCH, &max_batch));
  // The descriptor layout as compiled, compared with src/tun/batch.ts when
  // the addon loads (src/tun/native.ts): a mismatch is a clear error, not
  // silently misread rows.
  NAPI_CALL(env, napi_create_object(env, &layout));
  const struct { const char *name; int value; } words[] = {
    { "DESC_WORDS", DESC_WORDS }, { "D_OFF", D_OFF }, { "D_LEN", D_LEN }, { "D_ADDR", D_ADDR }, { "D_PORT", D_PORT },
    { "MAX_BATCH", MAX_BATCH }, { "GRO_MAX_SEGMENTS", GRO_MAX_SEGS }, { "TSO_MIN_SLOT", TSO_MIN_SLOT },
    { "READ_INFO_READS", TUN_INFO_READS }, { "READ_INFO_DRAINED", TUN_INFO_DRAINED }, { "READ_INFO_SUPER", TUN_INFO_SUPER },
    { "READ_INFO_SEGMENTS", TUN_INFO_SEGMENTS }, { "READ_INFO_DROPPED", TUN_INFO_DROPPED }, { "READ_INFO_STASHED", TUN_INFO_STASHED },
    { "READ_INFO_WORDS", TUN_INFO_WORDS },
  };
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    NAPI_CALL(env, napi_set_named_property(env, layout, words[i].name, make_int(env, words[i].value)));
  napi_property_descriptor props[] = {
    { "tunOpen", NULL, tun_open, NULL, NULL, NULL, napi_enumerable, NULL },
    { "tunRead", NULL, tun_read, NULL, NULL, NULL, napi_enumerable, NULL },
    { "tunWrite", NULL, tun_write, NULL, NULL, NULL, napi_enumerable, NULL },
    { "tunOffloads", NULL, tun_offloads, NULL, NULL, NULL, napi_enumerable, NULL },
    { "udpOpen", NULL, udp_open, NULL, NULL, NULL, napi_enumerable, NULL },
    { "udpRecv", NULL, udp_recv, NULL, NULL, NULL, napi_enumerable, NULL },
    { "udpSend", NULL, udp_send, NULL, NULL, NULL, napi_enumerable, NULL },
    { "udpOffloads", NULL, udp_offloads, NULL, NULL, NULL, napi_enumerable, NULL },
    { "udpLocalPort", NULL, udp_local_port, NULL, NULL, NULL, napi_enumerable, NULL },
    { "pollStart", NULL, poll_start, NULL, NULL, NULL, napi_enumerable, NULL },
    { "pollStop", NULL, poll_stop, NULL, NULL, NULL, napi_enumerable, NULL },
    { "closeFd", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL },
    { "dpWaitOpen", NULL, dp_wait_open, NULL, NULL, NULL, napi_enumerable, NULL },
    { "dpWait", NULL, dp_wait, NULL, NULL, NULL, napi_enumerable, NULL },
    { "dpWake", NULL, dp_wake, NULL, NULL, NULL, napi_enumerable, NULL },
    { "threadStats", NULL, thread_stats, NULL, NULL, NULL, napi_enumerable, NULL },
    { "threadNice", NULL, thread_nice, NULL, NULL, NULL, napi_enumerable, NULL },
    { "lockMappedFiles", NULL, lock_mapped_files, NULL, NULL, NULL, napi_enumerable, NULL },
    { "threadSlice", NULL, thread_slice, NULL, NULL, NULL, napi_enumerable, NULL },
    { "threadName", NULL, thread_name, NULL, NULL, NULL, napi_enumerable, NULL },
    { "dpClock", NULL, dp_clock, NULL, NULL, NULL, napi_enumerable, NULL },
    { "offloadState", NULL, offload_state, NULL, NULL, NULL, napi_enumerable, NULL },
    { "adoptOffloadState", NULL, adopt_offload_state, NULL, NULL, NULL, napi_enumerable, NULL },
    { "layout", NULL, NULL, NULL, NULL, layout, napi_enumerable, NULL },
    { "sdNotify", NULL, sd_notify_send, NULL, NULL, NULL, napi_enumerable, NULL },
    { "DESC_WORDS", NULL, NULL, NULL, NULL, desc_words, napi_enumerable, NULL },
    { "MAX_BATCH", NULL, NULL, NULL, NULL, max_batch, napi_enumerable, NULL },
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
#ifdef FLANNEL_TUN_TEST
  if (!define_test_exports(env, exports)) return napi_failed(env, napi_generic_failure);
#endif
  return exports;
}

NAPI_MODULE_INIT() {
  return init(env, exports);
}
