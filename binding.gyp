# The data plane's syscalls: one small C addon (src/tun/native/), built at
# `npm ci` by node-gyp. Plain C against node_api.h; JS owns everything else.
#
# Two modules from one compile of the shared code: flannel_tun.node (the
# product) and flannel_tun_test.node (the same plus the test hooks: groPlan,
# tsoSplit, onesSum, tunTestRefuseGso; see test_hooks.c). Only the module's
# init and tun_gro.c (whose write path has the hook's check in the test build
# only) are compiled twice.
{
  "target_defaults": {
    "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
    "cflags": ["-std=gnu11", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    "cflags!": ["-O0", "-O2"],
    "conditions": [
      ["OS!='linux'", { "type": "none" }]
    ]
  },
  "targets": [
    {
      "target_name": "flannel_tun_core",
      "type": "static_library",
      "sources": [
        "src/tun/native/args.c",
        "src/tun/native/tun.c",
        "src/tun/native/tun_tso.c",
        "src/tun/native/checksum.c",
        "src/tun/native/udp.c",
        "src/tun/native/poll.c",
        "src/tun/native/notify.c",
        "src/tun/native/wait.c",
        "src/tun/native/residency.c"
      ]
    },
    {
      "target_name": "flannel_tun",
      "dependencies": ["flannel_tun_core"],
      "sources": [
        "src/tun/native/flannel_tun.c",
        "src/tun/native/tun_gro.c"
      ]
    },
    {
      "target_name": "flannel_tun_test",
      "dependencies": ["flannel_tun_core"],
      "defines": ["FLANNEL_TUN_TEST"],
      "sources": [
        "src/tun/native/flannel_tun.c",
        "src/tun/native/tun_gro.c",
        "src/tun/native/test_hooks.c"
      ]
    }
  ]
}
