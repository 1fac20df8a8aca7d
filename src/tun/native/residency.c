// Keeping the forwarding path resident while traffic is sparse.
//
// The code a packet runs through is mostly file-backed: node's own text
// (V8's interpreter and builtins are embedded in it), libc, this addon. The
// kernel may unmap and drop those pages from an idle process (ordinary
// reclaim, or a proactive pager such as DAMON's pageout scheme, which judges
// whole regions by sampling and so takes hot pages along with cold ones).
// The next packet after a quiet second then takes its page faults on the
// path, in every daemon it crosses. Anonymous memory (V8's heap, JIT code,
// our slabs) is not locked here: mlockall(MCL_CURRENT/MCL_FUTURE) would also
// take V8's reservations, and V8 aborts when it later maps pages under it
// (measured; README, the data-plane thread).
#include "flannel_tun.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif

// lockMappedFiles() -> { regions, bytes, failed, error }
// mlock2(MLOCK_ONFAULT) on every readable file-backed mapping of the process
// (from /proc/self/maps): the pages it has touched stay mapped and in memory,
// pages it has never touched cost nothing until they are touched. `bytes` is
// the total length of the mappings locked; `failed` counts refusals (e.g.
// RLIMIT_MEMLOCK without CAP_IPC_LOCK), `error` is the first one's message.
// Mappings made later (a library loaded afterwards) are not covered.
napi_value lock_mapped_files(napi_env env, napi_callback_info info) {
  (void)info;
  FILE *f = fopen("/proc/self/maps", "re");
  if (!f) return throw_errno(env, errno, "lockMappedFiles", "/proc/self/maps", NULL);
  char line[4096];
  int64_t regions = 0, bytes = 0, failed = 0;
  int first_err = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long start, end, inode;
    char perms[5];
    int path_at = 0;
    if (sscanf(line, "%lx-%lx %4s %*x %*x:%*x %lu %n", &start, &end, perms, &inode, &path_at) < 4) continue;
    if (inode == 0 || perms[0] != 'r' || path_at == 0 || line[path_at] != '/') continue;
    if (syscall(SYS_mlock2, (void *)start, end - start, MLOCK_ONFAULT) == 0) {
      regions += 1;
      bytes += (int64_t)(end - start);
    } else {
      if (first_err == 0) first_err = errno;
      failed += 1;
    }
  }
  fclose(f);
  napi_value r;
  NAPI_CALL(env, napi_create_object(env, &r));
  NAPI_CALL(env, napi_set_named_property(env, r, "regions", make_int(env, regions)));
  NAPI_CALL(env, napi_set_named_property(env, r, "bytes", make_int(env, bytes)));
  NAPI_CALL(env, napi_set_named_property(env, r, "failed", make_int(env, failed)));
  napi_value err;
  if (first_err != 0) NAPI_CALL(env, napi_create_string_utf8(env, strerror(first_err), NAPI_AUTO_LENGTH, &err));
  else NAPI_CALL(env, napi_get_undefined(env, &err));
  NAPI_CALL(env, napi_set_named_property(env, r, "error", err));
  return r;
}
