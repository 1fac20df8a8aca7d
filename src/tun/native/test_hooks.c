// Test hooks: compiled only into build/Release/flannel_tun_test.node (the
// flannel_tun_test target of binding.gyp, -DFLANNEL_TUN_TEST), which tests
// load through test/lib/native-test.ts. The production addon has none of
// these exports and no test check on its write path.
//
//   groPlan(data, desc, count) -> units   (tun_gro.c)
//   tsoSplit(data, desc, len) -> rows
//   onesSum(data, offset, length) -> sum
//   tunTestRefuseGso(fd)
#include "flannel_tun.h"
#include "checksum.h"

#include <arpa/inet.h>
#include <linux/virtio_net.h>

// tunTestRefuseGso(fd): test hook. The next GSO write on fd carries a header
// the kernel must refuse (csum_offset 0 for TCP: EINVAL on Linux >= 6.11 and
// 6.6.44+), to exercise the fallback. Returns nothing.
napi_value tun_test_refuse_gso(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int fd;
  if (!get_args(env, info, 1, argv) || !arg_fd(env, argv[0], &fd)) return NULL;
  env_state *st = get_state(env);
  int f = tun_flags(st, fd);
  if (f < 0) return throw_errno(env, -f, "tunTestRefuseGso", NULL, NULL);
  tun_set_flags(st, fd, f | TUN_TEST_REFUSE);
  return NULL;
}

// tsoSplit(data, desc, len) -> rows
// What tunRead does with one read on a TSO fd, without a syscall: data[0..len)
// holds a virtio_net_hdr and a packet as the kernel would hand them over; the
// packet is checksummed / split in place and rows of desc are filled as
// tunRead fills them. Returns the rows, 0 if the packet would be dropped, -1
// if data or desc is too small for its segments.
napi_value tso_split(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t len;
  batch_s b;
  if (!get_args(env, info, 3, argv) || !arg_batch(env, argv[0], argv[1], &b) ||
      !arg_int(env, argv[2], "len", 0, INT32_MAX, &len))
    return NULL;
  if ((size_t)len > b.data_len) return throw_range(env, "len %lld exceeds data's %zu bytes", (long long)len, b.data_len);
  if (len <= VNET_HDR_LEN) return throw_range(env, "len must exceed the %d-byte virtio_net_hdr", VNET_HDR_LEN);
  size_t next;
  return make_int(env, tso_place(&b, 0, (size_t)len, 0, &next, NULL));
}

// onesSum(data, offset, length) -> the folded (not inverted) ones-complement
// sum of data[offset..offset+length) as a big-endian 16-bit number: 0xffff
// over a packet with a correct checksum.
napi_value ones_sum(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t off, len;
  bool ok = false;
  void *p;
  size_t n;
  if (!get_args(env, info, 3, argv)) return NULL;
  if (napi_is_buffer(env, argv[0], &ok) != napi_ok || !ok) return throw_type(env, "data must be a Buffer");
  NAPI_CALL(env, napi_get_buffer_info(env, argv[0], &p, &n));
  if (!arg_int(env, argv[1], "offset", 0, INT32_MAX, &off) || !arg_int(env, argv[2], "length", 0, INT32_MAX, &len))
    return NULL;
  if ((uint64_t)off + (uint64_t)len > n) return throw_range(env, "offset + length exceed data's %zu bytes", n);
  uint16_t s = csum_fold(csum_add(0, (uint8_t *)p + off, (size_t)len));
  return make_int(env, ntohs(s));
}

bool define_test_exports(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "tunTestRefuseGso", NULL, tun_test_refuse_gso, NULL, NULL, NULL, napi_enumerable, NULL },
    { "groPlan", NULL, gro_plan, NULL, NULL, NULL, napi_enumerable, NULL },
    { "tsoSplit", NULL, tso_split, NULL, NULL, NULL, napi_enumerable, NULL },
    { "onesSum", NULL, ones_sum, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props) == napi_ok;
}
