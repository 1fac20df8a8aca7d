// Readability watchers: a uv_poll_t on the env's own libuv loop.
//
// epoll under uv_poll is level-triggered: if the callback leaves data unread,
// it is called again on the next loop iteration. Callers can therefore drain
// with a budget and return to the loop (timers, I/O) between batches.
//
// Lifetime of a watcher (poll_s) has two owners: the libuv handle (until its
// close callback) and the JS handle (an external, until GC finalizes it). It
// is freed when both are done, so a stale JS handle never points at freed
// memory and pollStop may be called any number of times.
#include "flannel_tun.h"

#include <fcntl.h>
#include <stdlib.h>
#include <uv.h>

struct poll_s {
  uv_poll_t handle;
  napi_env env;
  env_state *st;
  napi_ref callback;
  napi_async_context async;
  poll_s *next;    // in st->polls while active
  bool stopped;    // pollStop (or env teardown) happened
  bool releasing;  // napi resources released / uv_close issued
  bool dispatching;// inside the JS callback
  bool closed;     // uv close callback ran
  bool orphaned;   // JS handle finalized
};

// Marks our externals, so pollStop never trusts another addon's pointer.
static const napi_type_tag POLL_TAG = { 0x666c616e6e656c2dULL, 0x74756e2d706f6c6cULL };

static void maybe_free(poll_s *p) {
  if (p->closed && p->orphaned) free(p);
}

static void on_close(uv_handle_t *h) {
  poll_s *p = h->data;
  p->closed = true;
  maybe_free(p);
}

static void on_finalize(napi_env env, void *data, void *hint) {
  poll_s *p = data;
  // A watcher whose JS handle was dropped without pollStop keeps running (it
  // holds its callback) until env teardown; only the memory bookkeeping is
  // done here.
  p->orphaned = true;
  maybe_free(p);
}

// Frees the N-API resources and closes the uv handle. Deferred while the JS
// callback runs (the callback may call pollStop on its own watcher).
static void release(poll_s *p) {
  if (p->releasing || p->dispatching) return;
  p->releasing = true;
  napi_delete_reference(p->env, p->callback);
  napi_async_destroy(p->env, p->async);
  uv_close((uv_handle_t *)&p->handle, on_close);
}

static void stop(poll_s *p) {
  if (p->stopped) return;
  p->stopped = true;
  // uv_poll_stop removes the fd from epoll at once, so the caller may close
  // the fd right after pollStop.
  uv_poll_stop(&p->handle);
  for (poll_s **pp = &p->st->polls; *pp; pp = &(*pp)->next) {
    if (*pp == p) {
      *pp = p->next;
      break;
    }
  }
  release(p);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  poll_s *p = h->data;
  napi_env env = p->env;
  napi_handle_scope scope;
  napi_value fn, recv, exc;
  bool pending = false;

  if (p->stopped) return;
  // status < 0 (e.g. EBADF: the fd was closed under the watcher) also calls
  // back: the caller's read then reports the error with its errno.
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (napi_get_reference_value(env, p->callback, &fn) == napi_ok && fn && napi_get_global(env, &recv) == napi_ok) {
    p->dispatching = true;
    // make_callback, not call_function: it runs the microtask and nextTick
    // queues afterwards and attributes the call to this watcher (async hooks).
    // It needs an object receiver, hence the global.
    napi_make_callback(env, p->async, recv, fn, 0, NULL, NULL);
    p->dispatching = false;
    napi_is_exception_pending(env, &pending);
    if (pending && napi_get_and_clear_last_exception(env, &exc) == napi_ok) {
      // Never swallow: the exception goes to process 'uncaughtException'
      // (in a worker, the Worker's 'error' event), as any I/O callback's would.
      napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
  if (p->stopped) release(p); // pollStop was called from inside the callback
}

// pollStart(fd, callback) -> handle
// Calls callback() whenever fd is readable, until pollStop(handle). No
// arguments; `this` is globalThis (MakeCallback needs an object receiver).
// One watcher per fd per thread (libuv: EEXIST). The watcher keeps the event
// loop alive. The fd's O_NONBLOCK flag is left as it was (libuv would set it).
// The fd stays owned by the caller: stop the watcher before closing it.
napi_value poll_start(napi_env env, napi_callback_info info) {
  napi_value argv[2], name, result;
  napi_valuetype t;
  int fd, err;
  uv_loop_t *loop;

  if (!get_args(env, info, 2, argv) || !arg_fd(env, argv[0], &fd)) return NULL;
  if (napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) return throw_type(env, "callback must be a function");
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));

  poll_s *p = calloc(1, sizeof *p);
  if (!p) return throw_errno(env, ENOMEM, "pollStart", NULL, NULL);
  p->env = env;
  p->st = get_state(env);
  p->handle.data = p;

  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) {
    err = errno;
    free(p);
    return throw_fd_errno(env, err, "pollStart", fd);
  }
  // uv_poll_init switches the fd to non-blocking; the UDP socket relies on
  // blocking sends for backpressure, so the flags are restored afterwards
  // (epoll does not care).
  err = uv_poll_init(loop, &p->handle, fd);
  if (err != 0) {
    free(p); // not initialised: libuv knows nothing of it
    return throw_fd_errno(env, -err, "pollStart", fd);
  }
  if (!(flags & O_NONBLOCK)) fcntl(fd, F_SETFL, flags);
  err = uv_poll_start(&p->handle, UV_READABLE, on_readable);
  if (err != 0) {
    // Initialised: only uv_close may end it; the JS side never sees it.
    p->orphaned = p->releasing = p->stopped = true;
    uv_close((uv_handle_t *)&p->handle, on_close);
    return throw_fd_errno(env, -err, "pollStart", fd);
  }

  if (napi_create_reference(env, argv[1], 1, &p->callback) != napi_ok ||
      napi_create_string_utf8(env, "flannel_tun:poll", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &p->async) != napi_ok ||
      napi_create_external(env, p, on_finalize, NULL, &result) != napi_ok ||
      napi_type_tag_object(env, result, &POLL_TAG) != napi_ok) {
    // Rare (out of memory): stop watching and leak the small struct rather
    // than reason about partially created resources.
    uv_poll_stop(&p->handle);
    p->orphaned = p->releasing = p->stopped = true;
    uv_close((uv_handle_t *)&p->handle, on_close);
    return napi_failed(env, napi_generic_failure);
  }
  p->next = p->st->polls;
  p->st->polls = p;
  return result;
}

// pollStop(handle): stops the watcher and releases its callback. Idempotent.
// After it returns the callback is not called again and the fd may be closed.
napi_value poll_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  napi_valuetype t;
  void *data = NULL;
  bool tagged = false;

  if (!get_args(env, info, 1, argv)) return NULL;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
      napi_check_object_type_tag(env, argv[0], &POLL_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || !data)
    return throw_type(env, "handle must be a handle returned by pollStart");
  stop(data);
  return NULL;
}

void poll_close_all(env_state *st) {
  while (st->polls) stop(st->polls);
}
