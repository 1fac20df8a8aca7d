// The data-plane thread's wait: a blocking epoll_wait on flannel0 and the UDP
// socket, plus an eventfd the control plane writes to wake the thread for a
// message (lease diff, trace, stop). The thread calls dpWait from JS and
// blocks inside it; nothing else runs on that thread, so there is no event
// loop between the kernel's readiness and the pump.
//
// Why not a uv_poll on the worker's own libuv loop: that adds a loop turn
// (timers, idle, check phases, microtasks) and a MakeCallback per wake-up.
// Measured in the README (data-plane thread section).
//
// A short spin (epoll_wait with timeout 0, for spinUs microseconds) before
// blocking lets a reply that follows quickly be picked up without going to
// sleep and being woken again.
#include "flannel_tun.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MAX_FDS 8

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// dpWaitOpen(fds: number[]) -> { epfd, wakeFd }
// An epoll fd watching each of fds for readability (level-triggered; fd i
// reports bit 1 << i in dpWait's result) and a new non-blocking eventfd
// (bit 1 << 30). The caller owns both fds (closeFd).
napi_value dp_wait_open(napi_env env, napi_callback_info info) {
  napi_value argv[1], r, v;
  uint32_t n;
  bool is_array = false;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array) return throw_type(env, "fds must be an array of fds");
  NAPI_CALL(env, napi_get_array_length(env, argv[0], &n));
  if (n > WAIT_MAX_FDS) return throw_range(env, "at most %d fds, got %u", WAIT_MAX_FDS, n);
  int fds[WAIT_MAX_FDS];
  for (uint32_t i = 0; i < n; i++) {
    NAPI_CALL(env, napi_get_element(env, argv[0], i, &v));
    if (!arg_fd(env, v, &fds[i])) return NULL;
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return throw_errno(env, errno, "dpWaitOpen", "epoll_create1", NULL);
  int ev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (ev < 0) {
    int err = errno;
    close(ep);
    return throw_errno(env, err, "dpWaitOpen", "eventfd", NULL);
  }
  for (uint32_t i = 0; i <= n; i++) {
    struct epoll_event e = { .events = EPOLLIN, .data.u32 = i < n ? 1u << i : 1u << 30 };
    int fd = i < n ? fds[i] : ev;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) {
      int err = errno;
      close(ep);
      close(ev);
      return throw_fd_errno(env, err, "dpWaitOpen", fd);
    }
  }
  NAPI_CALL(env, napi_create_object(env, &r));
  NAPI_CALL(env, napi_set_named_property(env, r, "epfd", make_int(env, ep)));
  NAPI_CALL(env, napi_set_named_property(env, r, "wakeFd", make_int(env, ev)));
  return r;
}

// dpWait(epfd, wakeFd, timeoutMs, spinUs, stats?) -> mask
// Returns the OR of the ready fds' bits (0 on timeout). The eventfd's bit
// 1 << 30 means dpWake was called since the last return (its count is reset
// here). Spins for up to spinUs µs with non-blocking polls before blocking
// for up to timeoutMs (-1 = forever). stats (Float64Array >= 4, optional):
// [0] += wake-ups that blocked, [1] += wake-ups found while spinning,
// [2] += ns spent blocked, [3] = CLOCK_MONOTONIC ns at return.
napi_value dp_wait(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int ep, ev;
  int64_t timeout, spin;
  if (!get_args_opt(env, info, 4, 5, argv) || !arg_fd(env, argv[0], &ep) || !arg_fd(env, argv[1], &ev) ||
      !arg_int(env, argv[2], "timeoutMs", -1, INT32_MAX, &timeout) || !arg_int(env, argv[3], "spinUs", 0, 1000000, &spin))
    return NULL;
  double *stats = NULL;
  size_t len;
  napi_valuetype t;
  NAPI_CALL(env, napi_typeof(env, argv[4], &t));
  if (t != napi_undefined && !arg_f64s(env, argv[4], "stats", 4, &stats, &len)) return NULL;

  struct epoll_event evs[WAIT_MAX_FDS + 1];
  int n = 0;
  bool blocked = false;
  int64_t t0 = 0;
  if (spin > 0) {
    int64_t until = mono_ns() + spin * 1000;
    for (;;) {
      n = epoll_wait(ep, evs, WAIT_MAX_FDS + 1, 0);
      if (n != 0 || mono_ns() >= until) break;
      // A socket wake-up is a "sync" one: the scheduler puts the woken
      // thread (often the other host's, or the pod) on this CPU, expecting
      // the waker to sleep; yielding hands it the CPU at once. Even so a
      // spin measured no better than sleeping at once here (README).
      sched_yield();
    }
  }
  if (n == 0) {
    blocked = true;
    if (stats) t0 = mono_ns();
    do {
      n = epoll_wait(ep, evs, WAIT_MAX_FDS + 1, (int)timeout);
    } while (n < 0 && errno == EINTR);
  }
  if (n < 0) return throw_fd_errno(env, errno, "dpWait", ep);
  uint32_t mask = 0;
  for (int i = 0; i < n; i++) mask |= evs[i].data.u32;
  if (mask & (1u << 30)) {
    uint64_t drain;
    (void)!read(ev, &drain, sizeof drain);
  }
  if (stats) {
    int64_t now = mono_ns();
    if (n > 0) stats[blocked ? 0 : 1] += 1;
    if (blocked) stats[2] += (double)(now - t0);
    stats[3] = (double)now;
  }
  return make_int(env, mask);
}

// dpWake(wakeFd): makes the thread blocked in dpWait on this eventfd return
// (with bit 1 << 30). Any thread may call it.
napi_value dp_wake(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int ev;
  if (!get_args(env, info, 1, argv) || !arg_fd(env, argv[0], &ev)) return NULL;
  uint64_t one = 1;
  if (write(ev, &one, sizeof one) < 0 && errno != EAGAIN) return throw_fd_errno(env, errno, "dpWake", ev);
  return NULL;
}

// threadStats(out: Float64Array >= 5): the calling thread's [minor faults,
// major faults, user µs, system µs, CLOCK_MONOTONIC ns] (getrusage
// RUSAGE_THREAD), for measuring what a wake-up costs.
napi_value thread_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  size_t len;
  double *o;
  if (!get_args(env, info, 1, argv) || !arg_f64s(env, argv[0], "out", 5, &o, &len)) return NULL;
  struct rusage ru;
  if (getrusage(RUSAGE_THREAD, &ru) < 0) return throw_errno(env, errno, "threadStats", NULL, NULL);
  o[0] = (double)ru.ru_minflt;
  o[1] = (double)ru.ru_majflt;
  o[2] = (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec;
  o[3] = (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
  o[4] = (double)mono_ns();
  return NULL;
}

// threadNice(n): setpriority(PRIO_PROCESS, gettid(), n) for the calling
// thread only (Linux: a thread id is a valid "process" here). Lowering below
// 0 needs CAP_SYS_NICE.
napi_value thread_nice(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t n;
  if (!get_args(env, info, 1, argv) || !arg_int(env, argv[0], "nice", -20, 19, &n)) return NULL;
  if (setpriority(PRIO_PROCESS, (id_t)gettid(), (int)n) < 0) return throw_errno(env, errno, "threadNice", NULL, NULL);
  return NULL;
}

// threadSlice(us): asks the scheduler for a time slice of `us` µs for the
// calling thread (sched_setattr, SCHED_OTHER, sched_runtime; Linux >= 6.12's
// EEVDF honours it between 100 µs and 100 ms). A shorter slice gives the
// thread an earlier virtual deadline, so when it wakes it preempts the
// longer-sliced task on the CPU instead of waiting out that task's slice;
// unlike a lower nice value it gets no larger share of the CPU. Older kernels
// accept and ignore it. The thread's nice value is kept.
struct flannel_sched_attr { // <linux/sched/types.h>, not in every libc's headers
  uint32_t size, sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
};

napi_value thread_slice(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t us;
  if (!get_args(env, info, 1, argv) || !arg_int(env, argv[0], "sliceUs", 100, 100000, &us)) return NULL;
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, (id_t)gettid());
  if (nice == -1 && errno != 0) return throw_errno(env, errno, "threadSlice", "getpriority", NULL);
  struct flannel_sched_attr a = { .size = sizeof a, .sched_policy = 0 /* SCHED_OTHER */, .sched_nice = nice, .sched_runtime = (uint64_t)us * 1000 };
  if (syscall(SYS_sched_setattr, 0, &a, 0) < 0) return throw_errno(env, errno, "threadSlice", "sched_setattr", NULL);
  return NULL;
}

// offloadState(tunFd, udpFd) -> [tunFlags, sockFlags]: this env's offload
// state of the two fds (TUN_*, SOCK_*), to hand to another thread.
napi_value offload_state(napi_env env, napi_callback_info info) {
  napi_value argv[2], r;
  int tfd, ufd;
  if (!get_args(env, info, 2, argv) || !arg_fd(env, argv[0], &tfd) || !arg_fd(env, argv[1], &ufd)) return NULL;
  env_state *st = get_state(env);
  int t = tun_flags(st, tfd);
  if (t < 0) return throw_fd_errno(env, -t, "offloadState", tfd);
  int u = udp_flags(st, ufd);
  if (u < 0) return throw_fd_errno(env, -u, "offloadState", ufd);
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &r));
  NAPI_CALL(env, napi_set_element(env, r, 0, make_int(env, t)));
  NAPI_CALL(env, napi_set_element(env, r, 1, make_int(env, u)));
  return r;
}

// adoptOffloadState(tunFd, udpFd, tunFlags, sockFlags): this env uses the
// fds with the offload state another thread had (offloadState), instead of
// probing them: a flag turned off by request (--udp-gso=false) or by a
// refusal stays off on the data-plane thread.
napi_value adopt_offload_state(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int tfd, ufd;
  int64_t t, u;
  if (!get_args(env, info, 4, argv) || !arg_fd(env, argv[0], &tfd) || !arg_fd(env, argv[1], &ufd) ||
      !arg_int(env, argv[2], "tunFlags", 0, 255, &t) || !arg_int(env, argv[3], "sockFlags", 0, 255, &u))
    return NULL;
  env_state *st = get_state(env);
  if (!tun_set_flags(st, tfd, (int)t) || !udp_set_flags(st, ufd, (int)u)) return throw_errno(env, ENOMEM, "adoptOffloadState", NULL, NULL);
  return NULL;
}

// threadName(name): prctl(PR_SET_NAME) for the calling thread (at most 15
// bytes shown), so ps/top/perf tell the data-plane thread apart.
napi_value thread_name(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char name[16];
  size_t len;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok) return throw_type(env, "name must be a string");
  if (prctl(PR_SET_NAME, name, 0, 0, 0) < 0) return throw_errno(env, errno, "threadName", NULL, NULL);
  return NULL;
}

// dpClock(out: Float64Array, index): out[index] = CLOCK_MONOTONIC ns, the
// clock dpWait's stats use. No allocation (for timing the pump's stages).
napi_value dp_clock(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t len;
  double *out;
  int64_t i;
  if (!get_args(env, info, 2, argv) || !arg_f64s(env, argv[0], "out", 1, &out, &len)) return NULL;
  if (!arg_int(env, argv[1], "index", 0, (int64_t)len - 1, &i)) return NULL;
  out[i] = (double)mono_ns();
  return NULL;
}
