// sdNotify(socket, message): one sd_notify(3) datagram. Node has no AF_UNIX
// datagram socket, and systemd's readiness protocol is exactly one: send
// "READY=1" (or "STOPPING=1", ...) to the path in $NOTIFY_SOCKET. A leading
// '@' names an abstract socket (its first byte is NUL on the wire), as
// sd_notify does.
//
// Rules: never blocks (SOCK_NONBLOCK: a full receiver queue is EAGAIN, an
// error for the caller to log); the socket lives only for the call. Throws
// TypeError for non-strings, RangeError for an empty or over-long path, and an
// Error with code/errno/syscall ("sdNotify") when the send fails.
#include "flannel_tun.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NOTIFY_MAX 4096 // sd_notify messages are a few short lines

// Copies a JS string into buf (size n, NUL-terminated); false (with a JS error) if it is not one or does not fit.
static bool get_str(napi_env env, napi_value v, char *buf, size_t n, size_t *len, const char *what) {
  size_t need;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &need) != napi_ok) {
    throw_type(env, "sdNotify: %s must be a string", what);
    return false;
  }
  if (need >= n) {
    throw_range(env, "sdNotify: %s is %zu bytes, at most %zu", what, need, n - 1);
    return false;
  }
  if (napi_get_value_string_utf8(env, v, buf, n, len) != napi_ok) {
    napi_failed(env, napi_generic_failure);
    return false;
  }
  return true;
}

napi_value sd_notify_send(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  struct sockaddr_un sa;
  char path[sizeof sa.sun_path + 1];
  char *msg = NULL;
  size_t plen, mlen;
  if (!get_args(env, info, 2, argv) || !get_str(env, argv[0], path, sizeof sa.sun_path + 1, &plen, "the socket path")) return NULL;
  if (plen == 0 || plen > sizeof sa.sun_path || (path[0] == '@' && plen < 2)) return throw_range(env, "sdNotify: the socket path must not be empty");
  msg = malloc(NOTIFY_MAX);
  if (!msg) return napi_failed(env, napi_generic_failure);
  if (!get_str(env, argv[1], msg, NOTIFY_MAX, &mlen, "the message")) {
    free(msg);
    return NULL;
  }

  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, plen);
  // Abstract: the name is the bytes after the NUL, and its length is exact (no terminator).
  if (path[0] == '@') sa.sun_path[0] = '\0';
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen + (path[0] == '@' || plen == sizeof sa.sun_path ? 0 : 1));

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    int err = errno;
    free(msg);
    return throw_errno(env, err, "sdNotify", "socket(AF_UNIX, SOCK_DGRAM)", NULL);
  }
  ssize_t n = sendto(fd, msg, mlen, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
  int err = errno;
  close(fd);
  free(msg);
  if (n < 0) return throw_errno(env, err, "sdNotify", path, "is NOTIFY_SOCKET the socket systemd gave?");
  return make_int(env, n);
}
