// What flanneld was told to do: the daemon's input, filled by the CLI's flag
// parser (src/cli/flags.ts). It lives beside the daemon so that the daemon
// never imports the CLI.

/** What flanneld was told to do. Field names are the flags' names in camelCase. */
export interface FlanneldOptions {
  /** --etcd-endpoints, split on commas; each `http(s)://host:port`, normalised (no trailing slash). */
  etcdEndpoints: string[];
  /** --etcd-prefix, as given (flannel joins keys to it with path.Join). */
  etcdPrefix: string;
  /** --etcd-keyfile; undefined when not given. Checked readable at parse time. */
  etcdKeyfile?: string;
  /** --etcd-certfile; undefined when not given. Checked readable at parse time. */
  etcdCertfile?: string;
  /** --etcd-cafile; undefined when not given. Checked readable at parse time. */
  etcdCafile?: string;
  /** --etcd-username; undefined when not given. */
  etcdUsername?: string;
  /** --etcd-password; undefined when not given. Never log it (see redactOptions). */
  etcdPassword?: string;
  /** --iface, in the order given: interface names or IP addresses. */
  iface: string[];
  /** --iface-regex, in the order given; each compiles with compileIfaceRegex. */
  ifaceRegex: string[];
  /** --public-ip: an IPv4 address in dotted-quad form; undefined when not given. */
  publicIp?: string;
  /** --subnet-file. */
  subnetFile: string;
  /** --subnet-lease-renew-margin, in minutes, 1..1439. */
  subnetLeaseRenewMargin: number;
  /** --ip-masq. */
  ipMasq: boolean;
  /** --ip-masq-fully-random-disable: masquerade without --random-fully / fully-random. */
  ipMasqFullyRandomDisable: boolean;
  /** --ip-blackhole-route: a blackhole route for this node's lease subnet, ensured every --iptables-resync seconds. */
  ipBlackholeRoute: boolean;
  /** --iface-can-reach: an IPv4 address; the interface of the route to it is the external interface. '' when not given. */
  ifaceCanReach: string;
  /** --healthz-ip: address or host name the health server listens on. */
  healthzIp: string;
  /** --healthz-port, 0..65535; 0 means: do not run the health server (flanneld's rule). */
  healthzPort: number;
  /** --iptables-resync, in seconds, >= 1. */
  iptablesResync: number;
  /** --iptables-forward-rules. */
  iptablesForwardRules: boolean;
  /** --admin-socket (flannel-ts only): path of the trace socket (default <subnet-file>.sock); '' disables it. */
  adminSocket: string;
  /** Whether --admin-socket was given: a live socket there is then an error, not a warning. */
  adminSocketGiven: boolean;
  /** --tun-offload (flannel-ts only): TCP super-packets from flannel0 (TSO), split in user space. */
  tunOffload: boolean;
  /** --tun-gro (flannel-ts only): coalesce received TCP segments into one GSO write to flannel0. */
  tunGro: boolean;
  /** --udp-gso (flannel-ts only): send runs of datagrams to one peer with one UDP_SEGMENT message. */
  udpGso: boolean;
  /** --udp-gro (flannel-ts only): receive coalesced datagrams (UDP_GRO) and cut them in user space. */
  udpGro: boolean;
  /** --dataplane-warmup-ms (flannel-ts only): idle ms between the data-plane thread's rehearsals; 0 = none. */
  dataplaneWarmupMs: number;
  /** --dataplane-spin-us (flannel-ts only): µs the data-plane thread polls before sleeping. */
  dataplaneSpinUs: number;
  /** --dataplane-nice (flannel-ts only): the data-plane thread's nice value. */
  dataplaneNice: number;
  /** --dataplane-slice-us (flannel-ts only): the data-plane thread's scheduler slice; 0 leaves the kernel's. */
  dataplaneSliceUs: number;
  /** --dataplane-mlock (flannel-ts only): keep the mapped program files resident. */
  dataplaneMlock: boolean;
  /** --dataplane-timing (flannel-ts only): stage times of the data-plane thread in /metrics. */
  dataplaneTiming: boolean;
  /** -v, klog's verbosity (0 = info; see log.ts for the mapping). */
  verbosity: number;
  /**
   * Flags that were given and accepted but change nothing in flannel-ts
   * (klog's -vmodule/-log_backtrace_at/-logtostderr..., or an unsupported
   * flanneld flag given its default value), as `--name`, each once. The
   * caller should log them so nobody expects an effect.
   */
  ignoredFlags: string[];
}

/** The admin socket beside the subnet file (`flannel-ts trace` finds it the same way). */
export function defaultAdminSocket(subnetFile: string): string {
  return `${subnetFile}.sock`;
}
