# The data plane's syscalls: one small C addon (src/tun/native/), built at
# `npm ci` by node-gyp. Plain C against node_api.h; JS owns everything else.
{
  "targets": [
    {
      "target_name": "flannel_tun",
      "sources": [
        "src/tun/native/flannel_tun.c",
        "src/tun/native/args.c",
        "src/tun/native/tun.c",
        "src/tun/native/tun_gro.c",
        "src/tun/native/tun_tso.c",
        "src/tun/native/checksum.c",
        "src/tun/native/udp.c",
        "src/tun/native/poll.c",
        "src/tun/native/wait.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-std=gnu11", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags!": ["-O0", "-O2"],
      "conditions": [
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
