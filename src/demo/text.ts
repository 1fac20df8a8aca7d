// The demo's narration, in English and in Chinese (as the seed documents are
// written, with their terms: 网桥, 路由表, 封包/解包, 租约, 宿主机, 对端...).
// ZH is typed as EN's shape, so a key missing in one language fails the build.
// Protocol field names (Destination Port, TTL...) stay as the RFCs name them.

import type { TraceEventJson } from './steps';

const f1 = (s: number) => s.toFixed(1);

const EN = {
  title: 'flannel-ts demo: an overlay network, live on this machine',
  intro: (prefix: string) =>
    `Three hosts (h1, h2, h3) on one switch, an etcd, and on each host flanneld — this repository's, with flannel's udp backend — then two pods per host, and a ping from a pod on h1 to a pod on h3, followed hop by hop. Every host, pod and etcd is a network namespace named ${prefix}-<name>. Each command below is shown at the prompt of the namespace it runs in (h1#, h1-pod1#), after a line saying why it is run, and is followed by its real output.`,

  s1: {
    title: '1. etcd: where flannel keeps its network config and leases',
    starting: 'starting etcd',
    started: (ep: string, s: number) => `etcd answers at ${ep} (${f1(s)} s)`,
    intro: (version: string, ep: string, dataDir: string) =>
      `flannel has no server of its own: every flanneld reads the network config from etcd, writes its host's lease there and watches the others'. This is Debian's etcd ${version}, in its own namespace on the underlay, listening on ${ep}, data in ${dataDir}.`,
    whyExport: 'etcdctl on any host reaches etcd over the underlay; API v3 (the seeds use v2)',
    whyPut: "write the network config: the whole overlay, the size of each host's piece, the backend",
    v2Put: (cmd: string) =>
      `The seeds write it with etcd's v2 API: ${cmd}. v3 calls it put. (The seeds' prefix /atomic.io/network is chosen with flanneld --etcd-prefix; /coreos.com/network is flanneld's default.)`,
    whyGet: 'read it back: the key, then the value',
    configExplained: (port: number) =>
      `Network 198.19.0.0/16 is the overlay: every pod address comes from it. SubnetLen 24: each host leases one /24 of it. SubnetMax 198.19.199.0 keeps 198.19.200.0-198.19.255.255 out of the leases, for the vxlan comparison at the end. Backend udp: packets between hosts travel as UDP datagrams to port ${port} (Backend.Port's default).`,
  },

  s2: {
    title: '2. Three hosts, flanneld on each, and pods',
    intro:
      'Each host is a namespace whose eth0 is plugged into the switch: the underlay, 198.18.0.0/16, as a data centre network would be. flanneld starts on each with the flags a real node would use:',
    whyFlanneld: "--iface: the underlay NIC, whose address becomes the lease's PublicIP; the files go to the demo's directory, not /run/flannel",
    sameOnOthers: (log: string) =>
      `The same on h2 and h3 (logs: ${log}). Each daemon reads the config, picks a free /24, writes its lease to etcd with a transaction that fails if the key exists, creates flannel0 and writes subnet.env.`,
    waiting: (names: string[]) => `waiting for flanneld on ${names.join(', ')}: a lease, then flannel0 up`,
    ready: (names: string[], s: number) => `flanneld is up on ${names.join(', ')} (${f1(s)} s)`,
    podsIntro:
      "Then, on each host, what the CNI bridge plugin does for a pod: a bridge cni0 holding the first address of the host's subnet and, per pod, a namespace whose eth0 is one end of a veth pair, the other end plugged into cni0, with cni0's address as its default gateway.",
    tableHeader: ['host', 'eth0 (underlay)', 'subnet (lease)', 'pods'],
    tableNote: 'The subnets are random: each run leases different ones, as flannel does. The pods are named after their host: h1-pod1, h1-pod2, h2-pod1...',
  },

  s3: {
    title: '3. The leases in etcd',
    intro:
      'A lease is one key per host: the key names the subnet, the value names the host that holds it (PublicIP, its underlay address). Every flanneld watches these keys and keeps a table from them: subnet → host.',
    whyKeys: 'list the leases',
    v2Ls: (cmd: string) => `v2, as in the seeds: ${cmd}. v3 has no directories: a prefix query lists the keys under it.`,
    whyGet: (host: string) => `one lease: the subnet ${host} holds, and its PublicIP`,
    v2Get: 'v2 had the same word, get; v3 prints the key, then the value. BackendType is written by flannel-ts; a stock flannel udp node omits it, and both are read.',
    whyTtl: 'the lease key is attached to an etcd lease of 24 h: flanneld renews it; a host that vanishes loses its subnet when it runs out',
    v2Intro: "The seeds' etcd v2 commands, and the v3 commands that replace them:",
    v2Header: ['seeds (etcd v2)', 'this demo (etcd v3)'],
    v2Curl: 'none: etcd 3.4 serves v2 only with --enable-v2; flannel uses v3',
  },

  s4: {
    title: '4. Each host: subnet.env, flannel0, cni0 and the routing table',
    h1Title: 'h1 in full',
    whySubnetEnv: (underlay: number, mtu: number) =>
      `what flanneld tells the container runtime (the seeds' docker --bip): the host's subnet, and the pods' MTU ${mtu} = ${underlay} - 28 (the outer IPv4 and UDP headers)`,
    whyFlannel0: "flannel0 holds the subnet's network address as a /32",
    whyTun: '-d shows the kind: "tun type tun pi off", a TUN device without packet-info header, whose other end flanneld holds (/dev/net/tun)',
    whyCni0: "cni0, the bridge the pods hang on, holds the first address of the subnet: the pods' gateway",
    whyRoute: (subnet: string) => `the routing table: the whole Network goes to flannel0, this host's own ${subnet} to cni0, the underlay to eth0`,
    whyRouteN: 'the same table as the seeds print it (net-tools)',
    noRouteN: 'The seeds print this table with route -n (net-tools, not installed here): the same routes.',
    otherTitle: (h: string) => `${h}, briefly`,
    whyBrief: (h: string) => `${h}'s addresses, one line each: the same picture, another subnet`,
    whyOtherRoute: (subnet: string) => `the same routes, with ${subnet} on cni0`,
  },

  s5: {
    title: (src: string, srcIp: string, dst: string, dstIp: string) => `5. A ping from ${src} (${srcIp}) to ${dst} (${dstIp}), hop by hop`,
    intro: (h1: string, h3: string) =>
      `Before the ping, three observers: flannel-ts trace on ${h1} and on ${h3} (each daemon reports, through its admin socket, what it did with our packet), and tcpdump on ${h1}'s eth0 (the datagram on the wire, written to a pcap file that this demo decodes itself).`,
    whyTrace: (h: string) => `report the first ICMP packet to or from the destination pod that flanneld on ${h} handles`,
    whyTcpdump: (port: number, ip: string) => `capture one datagram to flanneld's port ${port} on ${ip}, on the underlay NIC`,
    attaching: 'attaching the traces and tcpdump',
    attached: 'observers attached',
    whyPing: (dst: string) => `three echo requests to ${dst}`,
    follow: 'Now the first echo request, hop by hop, and what each hop decides.',
    hop1: '5.1 In the pod: eth0, one end of a veth pair',
    whyPodAddr: (name: string) => `${name}'s address comes from h1's subnet`,
    whyPodRoutes: 'the pod knows two things: its own /24 is on the link, everything else goes to the gateway',
    whyPodRouteGet: (dst: string, gw: string) => `${dst} is not on the pod's /24: the kernel sends it to the gateway ${gw} (cni0), out of eth0`,
    hop2: '5.2 cni0: the bridge on h1',
    whyBridgeLink: "the host ends of the pods' veth pairs are ports of cni0 (the seeds: brctl show)",
    bridgeNote: "The frame is addressed to the gateway's MAC, which is cni0's own: the bridge hands the packet up to h1's IP stack, which routes it.",
    hop3: (h: string) => `5.3 ${h}'s routing table picks flannel0`,
    whyRouteGetH1: (net: string) => `ask the kernel the route for this very packet, as it arrives from cni0: ${net} → flannel0 (forwarding takes 1 from the TTL)`,
    hop4: (h: string) => `5.4 flannel0 → flanneld on ${h}: the lease lookup`,
    tunExplained:
      'flannel0 is a TUN device: the packet routed into it comes out of /dev/net/tun in flanneld, as bytes. flanneld looks the destination up in its lease table (read from etcd, kept current by a watch) and sends the whole packet, unchanged but for the TTL, as the payload of one UDP datagram to the host holding the lease. This is the encapsulation.',
    whyLeases: "the daemon's lease table: subnet → PublicIP:port of the host holding it",
    traceOutput: (h: string) => `what the trace on ${h} printed for our packet (--json; one key per line, hex shortened):`,
    txReading: (ev: TraceEventJson, h: string) =>
      `Read: tx (from flannel0 to a peer), forwarded. ${ev.inner?.dst} is in ${ev.peer?.subnet}, whose lease names ${ev.peer?.publicIp}: flanneld on ${h} sends UDP ${ev.outer?.src}:${ev.outer?.srcPort} → ${ev.outer?.dst}:${ev.outer?.dstPort}, ${ev.outer?.udpLength} bytes = 8 (UDP header) + ${ev.inner?.length} (the packet).` +
      (ev.inner?.ttl === 62 ? " TTL 62: the pod sent 64, h1's kernel took 1 when it forwarded the packet into flannel0, flanneld 1 more, as flannel's proxy does." : ` TTL ${ev.inner?.ttl}.`),
    hop5: (h: string) => `5.5 On the underlay: the UDP datagram, captured on ${h}'s eth0`,
    tcpdumpSaid: "tcpdump's own output:",
    pcapIntro: (file: string, bytes: number, lt: number) => `${file}: one frame of ${bytes} bytes (link type ${lt}${lt === 1 ? ', Ethernet' : ''}). This demo reads it itself, field by field:`,
    hexTitle: 'The whole frame, each header marked:',
    nothingAdded: (udpLen: number, innerLen: number) =>
      `UDP length ${udpLen} = 8 + ${innerLen}: the payload is the pod's packet, whole, with nothing added (no flannel header): flannel's udp wire format. As the seeds put it, inside the UDP payload is another packet: the ping's ICMP.`,
    hop6: (h: string) => `5.6 On ${h}: the far daemon unwraps it`,
    rxReading: (ev: TraceEventJson, h: string) =>
      `Read: rx (from a peer to flannel0), forwarded. The datagram came from ${ev.outer?.src}:${ev.outer?.srcPort}, a lease holder (${ev.peer?.subnet}); the inner destination ${ev.inner?.dst} is in ${h}'s own subnet, so flanneld on ${h} writes the packet into flannel0${ev.inner?.ttl === 61 ? ', TTL 61: one more taken' : ''}. A datagram from a host without a lease, or for another subnet, would be dropped here (flannel-ts trace --drops shows why).`,
    hop7: (h: string) => `5.7 ${h}'s routing table picks cni0`,
    whyRouteGetH3: (h: string, dst: string, subnet: string) => `out of flannel0 into ${h}'s kernel: ${dst} is on ${subnet}, cni0's (forwarding takes 1 from the TTL)`,
    hop8: (dst: string) => `5.8 The pod ${dst}`,
    whyDstAddr: (name: string) => `${name}'s eth0 holds the destination address: cni0 delivers the frame to its veth, and the pod answers`,
    reply: (src: string, dst: string, ttl: number) =>
      `The echo reply comes back the same way, mirrored: ${dst} → cni0 → flannel0 → flanneld on h3 → UDP → flanneld on h1 → flannel0 → cni0 → ${src}. ping printed ttl=${ttl}` +
      (ttl === 60 ? ': the reply left with 64 and lost 4, two for the kernels forwarding it, two for the flanneld daemons.' : '.'),
    summaryTitle: 'The whole path',
    summary: (src: string, dst: string, port: number) =>
      `${src} eth0 → veth → cni0 → h1's routing table → flannel0 → flanneld (lease lookup, UDP encapsulation) → h1 eth0 ══ UDP :${port} over the underlay ══> h3 eth0 → flanneld (decapsulation) → flannel0 → h3's routing table → cni0 → veth → ${dst} eth0. The seeds' path, with flannel0 and flanneld where vxlan has flannel.1: veth → cni0 → flannel0 → eth0 → (h3) eth0 → flannel0 → cni0 → veth.`,
  },

  s6: {
    title: '6. The same ping over udp and over kernel vxlan',
    intro: (network: string) =>
      `flannel's udp backend makes every packet cross between the kernel and user space twice (flanneld reads flannel0 and writes a socket; on the far host, the reverse); vxlan encapsulates inside the kernel, and the daemon only programs it. To compare on the same hosts, a second network for vxlan, ${network} under its own etcd prefix (the udp config's SubnetMax left it free), and a second flanneld on h1 and h3 with flannel-ts's vxlan backend. It creates flannel.1 and, for each peer, the route, neighbour and fdb entry the seeds show; each host gets a bridge brvx with one pod (h1-vx1, h3-vx1).`,
    whyVxConfig: 'a second network, for the vxlan backend, under its own prefix',
    whyVxFlanneld: 'a second flanneld on h1 (and on h3), for the vxlan network: its own prefix, subnet file and admin socket',
    waitingVx: 'waiting for flanneld (vxlan) on h1 and h3',
    readyVx: (s: number) => `flanneld (vxlan) is up on h1 and h3 (${f1(s)} s)`,
    whyVxLeases: "the vxlan leases: BackendType vxlan and BackendData, the VTEP MAC of each host's flannel.1, as in the seeds' etcdctl get",
    whyNeigh: "the seeds' arp -e: h3's flannel.1 address → its MAC, a permanent neighbour entry",
    whyVxlanLink: 'the vxlan device: VNI 1, local address on eth0, UDP port 8472: encapsulation in the kernel',
    whyVxlanRoute: "h3's vxlan subnet via flannel.1, next hop h3's flannel.1 address (onlink)",
    whyFdb: (ip: string) => `the seeds' bridge fdb show: h3's flannel.1 MAC → ${ip}, the underlay address the VXLAN datagram goes to`,
    rttTitle: 'Round-trip time: 20 pings each',
    tputTitle: 'Throughput: TCP for 2 s each (iperf3)',
    measuring: (label: string) => `measuring over ${label}`,
    whyPing: (label: string) => `over ${label}: 20 echo requests, summary only`,
    whyIperfServer: 'a one-shot iperf3 server in the destination pod',
    whyIperf: (label: string) => `TCP over ${label} for 2 s (iperf3's summary)`,
    tableHeader: ['backend', 'encapsulation', 'pod MTU', 'RTT avg', 'TCP throughput'],
    udpPath: 'flanneld, user space (flannel0 ↔ UDP 8285)',
    vxlanPath: 'kernel (flannel.1, UDP 8472)',
    conclusion: (rttU?: number, rttV?: number, mbpsU?: number, mbpsV?: number) =>
      (rttU && rttV && mbpsU && mbpsV
        ? `On this machine, udp's round trip is ${(rttU / rttV).toFixed(1)}× vxlan's and its throughput ${((mbpsU / mbpsV) * 100).toFixed(0)}% of vxlan's: the price of crossing into user space, which flannel-ts keeps down by moving packets in batches. `
        : '') + 'Why use udp at all: where the network drops VXLAN (a cloud security group that passes only TCP, UDP and ICMP), it still gets through, as the seeds say: UDP passes firewalls.',
  },

  pkt: {
    fieldHeader: ['field', 'value', ''],
    span: (a: number, b: number, len: number) => `bytes ${a}-${b} (${len})`,
    ethernet: 'Ethernet header',
    link: 'link header',
    outerIp: 'outer IPv4 header',
    udp: 'UDP header',
    innerIp: "inner IPv4 header: the pod's packet starts here",
    icmp: 'ICMP header',
    icmpDataRegion: "ICMP data: ping's timestamp and pattern",
    innerPayload: 'inner payload',
    ihl: (len: number) => `${len} bytes of header`,
    totalLength: 'header + payload, bytes',
    df: "don't fragment",
    checksumOk: 'verifies',
    checksumBad: 'does not verify',
    outerTtl: "a fresh TTL: the underlay's own hop count",
    innerTtl: (ttl: number): string => (ttl === 62 ? '64 from the pod, -1 h1 kernel, -1 flanneld' : ''),
    srcPort: (who: string) => `flanneld on ${who}`,
    dstPort: (who: string) => `flanneld on ${who} (Backend.Port)`,
    udpLength: (inner: number, total: number) => (inner === total ? `8 + ${inner}: the whole inner packet` : `8 + ${inner} (inner packet says ${total})`),
    udpPartial: 'partial: checksum offload, a NIC would finish it (a veth need not)',
    udpNone: 'none (0)',
    icmpId: "ping's identifier",
    icmpSeq: 'the first echo request',
    icmpData: "ping's payload",
    bytes: (n: number) => `${n} bytes`,
    vxlan: 'VXLAN header',
    innerEthernet: "inner Ethernet header: between the two hosts' flannel.1",
    vxFlags: 'I flag: the VNI is valid',
    vni: (vni: number) => `VNI ${vni}: flannel's VXLAN network (Backend.VNI)`,
    vxSrcPort: 'chosen by the kernel from a hash of the inner flow',
    vxDstPort: "vxlan's port (Backend.Port; Linux's default, IANA's is 4789)",
    vxInnerTtl: (ttl: number): string => (ttl === 63 ? '64 from the pod, -1 h1 kernel' : ''),
    innerMacSrc: "h1's flannel.1 (VTEP MAC)",
    innerMacDst: 'the far flannel.1 (VTEP MAC, from the neighbour entry)',
  },

  keep: {
    etcdWhat: 'etcd (etcdctl works here)',
    hostWhat: 'host: flanneld, flannel0, cni0',
    podWhat: 'pod',
    vxPod: 'pod on the vxlan bridge',
    switchWhat: 'the underlay switch (bridge br0)',
  },

  end: {
    title: '7. Done',
    removing: 'removing the cluster: processes, namespaces, files',
    removed: (n: number) => `removed ${n} namespaces, their processes and files: nothing is left behind`,
    keptTitle: '7. The cluster stays up (--keep)',
    keptIntro: (state: string, vxlanDaemons: boolean) => `etcd, the flanneld daemons (udp on h1-h3${vxlanDaemons ? ', vxlan on h1 and h3' : ''}) and the pods keep running. Recorded in ${state}.`,
    stepInto: 'Step into any of them: an interactive shell in its namespace, or one command after --. In a host, etcdctl and flannel-ts trace need no flags.',
    placesHeader: ['name', 'what', 'address', 'namespace'],
    try: 'For example:',
    teardown: (cmd: string) => `Tear it all down with: ${cmd}`,
    logs: (dir: string) => `Logs, subnet files and the capture: ${dir}`,
    interrupted: (sig: string) => `interrupted (${sig}): removing the cluster`,
  },

  down: {
    nothing: (state: string) => `no kept demo: ${state} does not exist; nothing to tear down`,
    progress: 'stopping the kept demo',
    done: (procs: number, ns: number, dir: string) => `stopped ${procs} processes, removed ${ns} namespaces and ${dir}`,
  },

  err: {
    needRoot: 'the demo builds network namespaces and TUN devices: run it as root (sudo)',
    missing: (tools: string[]) => `missing: ${tools.join(', ')}. Run bash scripts/setup.sh (etcd-server, etcd-client, tcpdump, iperf3, iproute2, iputils-ping).`,
    keptExists: (state: string, shell: string, down: string) => `a kept demo is still running (${state}): step into it with ${shell}, or tear it down first with ${down}`,
    daemonNotReady: (h: string) => `flanneld on ${h} did not come up`,
    leasesMismatch: (keys: string[], expected: string[]) => `etcd lists the leases ${keys.join(' ')} but the hosts hold ${expected.join(' ')}`,
    vxlanPath: 'a ping over vxlan from h1-vx to h3-vx',
    vxlanNotReady:
      "flannel-ts's vxlan backend did not come up on h1 and h3 (the demo compares udp with it): see flanneld-vx.log in the lab's directory; the kernel needs the vxlan module (modprobe vxlan)",
    pingLost: (out: string) => `the ping across hosts lost packets:\n${out}`,
    noTrace: (file: string, content: string) => `the trace printed no event (${file}):\n${content}`,
    emptyPcap: (file: string) => `tcpdump captured nothing (${file})`,
    wrongCapture: (src: string, dst: string, port: number) => `the captured datagram is not the ping's (inner ${src} > ${dst}, UDP port ${port})`,
  },
};

export type Text = typeof EN;

const ZH: Text = {
  title: 'flannel-ts 演示：在本机上跑起一个活的覆盖网络',
  intro: (prefix) =>
    `三台宿主机（h1、h2、h3）接在同一台交换机上，加一个 etcd；每台宿主机上运行 flanneld（本仓库的实现，使用 flannel 的 udp 后端），每台宿主机两个 Pod；然后从 h1 上的 Pod ping h3 上的 Pod，逐跳跟踪这个数据包。每台宿主机、每个 Pod 和 etcd 都是一个网络命名空间，名为 ${prefix}-<名字>。下面每条命令都显示在它所运行的命名空间的提示符后面（h1#、h1-pod1#），前一行说明为什么执行它，后面是它的真实输出。`,

  s1: {
    title: '1. etcd：flannel 保存网络配置和租约的地方',
    starting: '正在启动 etcd',
    started: (ep, s) => `etcd 已在 ${ep} 应答（${f1(s)} 秒）`,
    intro: (version, ep, dataDir) =>
      `flannel 没有自己的服务器：每个 flanneld 都从 etcd 读取网络配置，把本机的租约写进 etcd，并 watch 其他宿主机的租约。这里是 Debian 的 etcd ${version}，运行在底层网络上它自己的命名空间里，监听 ${ep}，数据目录 ${dataDir}。`,
    whyExport: '任何一台宿主机上的 etcdctl 都能经底层网络访问 etcd；使用 v3 API（种子文档用的是 v2）',
    whyPut: '写入网络配置：整个覆盖网络的网段、每台宿主机分到的子网大小、后端类型',
    v2Put: (cmd) =>
      `种子文档用 etcd 的 v2 API 写入：${cmd}。v3 把 set 改叫 put。（种子文档的前缀 /atomic.io/network 是用 flanneld 的 --etcd-prefix 指定的；flanneld 默认的前缀是 /coreos.com/network。）`,
    whyGet: '读回来：先打印 key，再打印 value',
    configExplained: (port) =>
      `Network 198.19.0.0/16 是覆盖网络：所有 Pod 的 IP 都从这里分配。SubnetLen 24：每台宿主机租用其中一个 /24 子网。SubnetMax 198.19.199.0 把 198.19.200.0–198.19.255.255 留在租约之外，给最后的 vxlan 对比使用。Backend udp：宿主机之间的数据包封装成 UDP 数据报，发往 ${port} 端口（Backend.Port 的默认值）。`,
  },

  s2: {
    title: '2. 三台宿主机，每台一个 flanneld，再加上 Pod',
    intro: '每台宿主机是一个命名空间，它的 eth0 接在交换机上：这就是底层网络（underlay），198.18.0.0/16，相当于机房里的物理网络。每台宿主机上用真实节点同样的参数启动 flanneld：',
    whyFlanneld: '--iface 指定底层网卡，它的地址就是租约里的 PublicIP；文件放在演示目录里，不碰 /run/flannel',
    sameOnOthers: (log) => `h2、h3 上也一样（日志：${log}）。每个 flanneld 读取配置，挑一个空闲的 /24，用“key 已存在则失败”的事务把租约写进 etcd，创建 flannel0，再写出 subnet.env。`,
    waiting: (names) => `等待 ${names.join('、')} 上的 flanneld：先拿到租约，再启动 flannel0`,
    ready: (names, s) => `${names.join('、')} 上的 flanneld 已就绪（${f1(s)} 秒）`,
    podsIntro:
      '然后在每台宿主机上做 CNI bridge 插件为 Pod 做的事：创建网桥 cni0，它的地址是本机子网的第一个地址；每个 Pod 是一个命名空间，它的 eth0 是一对 veth pair 的一端，另一端接在 cni0 网桥上，默认网关是 cni0 的地址。',
    tableHeader: ['宿主机', 'eth0（底层网络）', '子网（租约）', 'Pod'],
    tableNote: '子网是随机分配的：每次运行租到的子网都不一样，和 flannel 相同。Pod 按宿主机命名：h1-pod1、h1-pod2、h2-pod1……',
  },

  s3: {
    title: '3. etcd 里的租约',
    intro: '每台宿主机一个 key，就是一个租约：key 是子网，value 是持有它的宿主机（PublicIP，即它在底层网络上的地址）。每个 flanneld 都 watch 这些 key，据此维护一张表：子网 → 宿主机。',
    whyKeys: '列出所有租约',
    v2Ls: (cmd) => `种子文档里的 v2 写法：${cmd}。v3 没有目录：用前缀查询列出其下所有 key。`,
    whyGet: (host) => `一个租约：${host} 持有的子网，以及它的 PublicIP`,
    v2Get: 'v2 也叫 get；v3 先打印 key，再打印 value。BackendType 是 flannel-ts 写入的；原版 flannel 的 udp 节点不写这个字段，两种都能读。',
    whyTtl: '租约 key 绑定在一个 24 小时的 etcd lease 上：flanneld 会在到期前续约；宿主机消失后，到期时它的子网就被收回',
    v2Intro: '种子文档里的 etcd v2 命令，以及取代它们的 v3 命令：',
    v2Header: ['种子文档（etcd v2）', '本演示（etcd v3）'],
    v2Curl: '无：etcd 3.4 只有加 --enable-v2 才提供 v2；flannel 使用 v3',
  },

  s4: {
    title: '4. 每台宿主机：subnet.env、flannel0、cni0 和路由表',
    h1Title: 'h1 的完整情况',
    whySubnetEnv: (underlay, mtu) => `flanneld 告诉容器运行时的信息（种子文档里 docker 的 --bip）：本机子网，以及 Pod 的 MTU ${mtu} = ${underlay} - 28（外层 IPv4 头和 UDP 头）`,
    whyFlannel0: 'flannel0 以 /32 的形式持有本机子网的网络地址',
    whyTun: '-d 显示设备类型：“tun type tun pi off”，没有 packet info 头的 TUN 设备，另一端由 flanneld 持有（/dev/net/tun）',
    whyCni0: 'cni0 是 Pod 所挂的网桥，持有子网的第一个地址：也就是 Pod 的网关',
    whyRoute: (subnet) => `路由表：整个 Network 走 flannel0，本机的 ${subnet} 走 cni0，底层网络走 eth0`,
    whyRouteN: '同一张路由表，按种子文档的方式打印（net-tools）',
    noRouteN: '种子文档用 route -n（net-tools，这里没有安装）打印这张表：路由是一样的。',
    otherTitle: (h) => `${h} 简要`,
    whyBrief: (h) => `${h} 的地址，每个网卡一行：同样的结构，不同的子网`,
    whyOtherRoute: (subnet) => `同样的路由，cni0 上是 ${subnet}`,
  },

  s5: {
    title: (src, srcIp, dst, dstIp) => `5. 从 ${src}（${srcIp}）ping ${dst}（${dstIp}），逐跳跟踪`,
    intro: (h1, h3) =>
      `ping 之前先启动三个观察者：${h1} 和 ${h3} 上的 flannel-ts trace（通过管理 socket，让每个 flanneld 报告它是如何处理我们这个包的），以及 ${h1} 的 eth0 上的 tcpdump（抓取线路上的数据报，写进 pcap 文件，由本演示自己解析）。`,
    whyTrace: (h) => `报告 ${h} 上的 flanneld 处理的第一个与目的 Pod 相关的 ICMP 包`,
    whyTcpdump: (port, ip) => `在底层网卡上抓一个发往 ${ip} 上 flanneld 端口 ${port} 的数据报`,
    attaching: '正在挂上 trace 和 tcpdump',
    attached: '观察者已就位',
    whyPing: (dst) => `向 ${dst} 发三个 echo request`,
    follow: '下面跟着第一个 echo request 逐跳走一遍，看每一跳做了什么决定。',
    hop1: '5.1 在 Pod 里：eth0，veth pair 的一端',
    whyPodAddr: (name) => `${name} 的地址来自 h1 的子网`,
    whyPodRoutes: 'Pod 只知道两件事：自己的 /24 就在本链路上，其他一切都交给网关',
    whyPodRouteGet: (dst, gw) => `${dst} 不在 Pod 的 /24 内：内核把它从 eth0 发给网关 ${gw}（cni0）`,
    hop2: '5.2 cni0：h1 上的网桥',
    whyBridgeLink: 'Pod 的 veth pair 在宿主机这一端都是 cni0 网桥的端口（种子文档用 brctl show 查看）',
    bridgeNote: '数据帧的目的 MAC 是网关的 MAC，也就是 cni0 自己的：网桥把包交给 h1 的 IP 协议栈，由它查路由表。',
    hop3: (h) => `5.3 ${h} 的路由表选中 flannel0`,
    whyRouteGetH1: (net) => `让内核为这个包查路由（就当它从 cni0 进来）：${net} → flannel0（转发时 TTL 减 1）`,
    hop4: (h) => `5.4 flannel0 → ${h} 上的 flanneld：查租约`,
    tunExplained:
      'flannel0 是一个 TUN 设备：路由进它的包，在 flanneld 里从 /dev/net/tun 读出来，就是一串字节。flanneld 在自己的租约表里查目的地址（这张表从 etcd 读来，靠 watch 保持最新），然后把整个包（除了 TTL 原封不动）作为一个 UDP 数据报的内容，发给持有该租约的宿主机。这就是封包。',
    whyLeases: 'flanneld 的租约表：子网 → 持有它的宿主机的 PublicIP:端口',
    traceOutput: (h) => `${h} 上的 trace 为我们的包打印的内容（--json；每行一个字段，hex 已截短）：`,
    txReading: (ev, h) =>
      `解读：tx（从 flannel0 发往对端），已转发。${ev.inner?.dst} 属于 ${ev.peer?.subnet}，这个租约的 PublicIP 是 ${ev.peer?.publicIp}：${h} 上的 flanneld 发出 UDP ${ev.outer?.src}:${ev.outer?.srcPort} → ${ev.outer?.dst}:${ev.outer?.dstPort}，共 ${ev.outer?.udpLength} 字节 = 8（UDP 头）+ ${ev.inner?.length}（原始包）。` +
      (ev.inner?.ttl === 62 ? 'TTL 62：Pod 发出时是 64，h1 的内核把它转发进 flannel0 时减 1，flanneld 再减 1（和 flannel 的 proxy 一样）。' : `TTL ${ev.inner?.ttl}。`),
    hop5: (h) => `5.5 底层网络上：在 ${h} 的 eth0 上抓到的 UDP 数据报`,
    tcpdumpSaid: 'tcpdump 自己的输出：',
    pcapIntro: (file, bytes, lt) => `${file}：一帧，${bytes} 字节（链路类型 ${lt}${lt === 1 ? '，以太网' : ''}）。下面由本演示逐个字段解析：`,
    hexTitle: '整个帧的十六进制，各层头部已标出：',
    nothingAdded: (udpLen, innerLen) =>
      `UDP 长度 ${udpLen} = 8 + ${innerLen}：UDP 的数据部分就是 Pod 发出的那个包，完整，没有添加任何东西（没有 flannel 自己的头）——这就是 flannel udp 的线路格式。正如种子文档所说：“在UDP的数据内容部分其实是另一个ICMP（也就是ping命令）的数据包”。`,
    hop6: (h) => `5.6 在 ${h} 上：对端的 flanneld 解包`,
    rxReading: (ev, h) =>
      `解读：rx（从对端到 flannel0），已转发。数据报来自 ${ev.outer?.src}:${ev.outer?.srcPort}，是一个租约持有者（${ev.peer?.subnet}）；内层目的地址 ${ev.inner?.dst} 在 ${h} 自己的子网内，于是 ${h} 上的 flanneld 把包写进 flannel0${ev.inner?.ttl === 61 ? '（TTL 61，又减了 1）' : ''}。如果数据报来自没有租约的主机，或者目的地址属于别的子网，就会在这里被丢弃（flannel-ts trace --drops 会显示原因）。`,
    hop7: (h) => `5.7 ${h} 的路由表选中 cni0`,
    whyRouteGetH3: (h, dst, subnet) => `包从 flannel0 出来进入 ${h} 的内核：${dst} 属于 ${subnet}，即 cni0 的网段（转发时 TTL 减 1）`,
    hop8: (dst) => `5.8 目的 Pod ${dst}`,
    whyDstAddr: (name) => `${name} 的 eth0 持有目的地址：cni0 网桥把帧送到它的 veth，Pod 作出回应`,
    reply: (src, dst, ttl) =>
      `echo reply 沿原路反向返回：${dst} → cni0 → flannel0 → h3 上的 flanneld → UDP → h1 上的 flanneld → flannel0 → cni0 → ${src}。ping 显示 ttl=${ttl}` +
      (ttl === 60 ? '：回应发出时是 64，少了 4——两次内核转发，两次 flanneld 递减。' : '。'),
    summaryTitle: '完整路径',
    summary: (src, dst, port) =>
      `${src} eth0 → veth → cni0 → h1 路由表 → flannel0 → flanneld（查租约，UDP 封包）→ h1 eth0 ══ 底层网络 UDP :${port} ══> h3 eth0 → flanneld（解包）→ flannel0 → h3 路由表 → cni0 → veth → ${dst} eth0。也就是种子文档里的路径，只是 vxlan 的 flannel.1 换成了 flannel0 和 flanneld：veth -> cni0 -> flannel0 -> eth0 -> 目标机器的 eth0 -> 目标机器的 flannel0 -> 目标机器的 cni0 -> 目标容器 veth。`,
  },

  s6: {
    title: '6. 同样的 ping：udp 对比内核 vxlan',
    intro: (network) =>
      `flannel 的 udp 后端让每个包在内核和用户态之间穿越两次（flanneld 读 flannel0、写 socket；对端反过来）；vxlan 则在内核里完成封包，flanneld 只负责配置内核。为了在相同的宿主机上对比，为 vxlan 另建一个网络：${network}，放在自己的 etcd 前缀下（udp 配置的 SubnetMax 把它留了出来），并在 h1 和 h3 上再运行一个使用 flannel-ts vxlan 后端的 flanneld。它创建 flannel.1，并为每个对端写入种子文档里看到的路由、邻居（ARP）记录和 fdb 记录；每台宿主机一个网桥 brvx，上面一个 Pod（h1-vx1、h3-vx1）。`,
    whyVxConfig: '为 vxlan 后端另建一个网络，放在自己的前缀下',
    whyVxFlanneld: '在 h1（和 h3）上再启动一个 flanneld，负责 vxlan 网络：自己的前缀、subnet 文件和管理 socket',
    waitingVx: '等待 h1 和 h3 上的 flanneld（vxlan）',
    readyVx: (s) => `h1 和 h3 上的 flanneld（vxlan）已就绪（${f1(s)} 秒）`,
    whyVxLeases: 'vxlan 的租约：BackendType 是 vxlan，BackendData 里是每台宿主机 flannel.1 的 VTEP MAC，和种子文档里 etcdctl get 的结果一样',
    whyNeigh: '即种子文档里的 arp -e：h3 的 flannel.1 地址 → 它的 MAC，一条永久邻居记录',
    whyVxlanLink: 'vxlan 设备：VNI 1，本端地址在 eth0 上，UDP 端口 8472：封包在内核里完成',
    whyVxlanRoute: 'h3 的 vxlan 子网经 flannel.1，下一跳是 h3 的 flannel.1 地址（onlink）',
    whyFdb: (ip) => `即种子文档里的 bridge fdb show：h3 的 flannel.1 MAC → ${ip}，VXLAN 数据报要发往的底层地址`,
    rttTitle: '往返时延：各 ping 20 次',
    tputTitle: '吞吐量：TCP 各跑 2 秒（iperf3）',
    measuring: (label) => `正在测量 ${label}`,
    whyPing: (label) => `经 ${label}：20 个 echo request，只看汇总`,
    whyIperfServer: '在目的 Pod 里启动一次性的 iperf3 服务端',
    whyIperf: (label) => `经 ${label} 跑 2 秒 TCP（iperf3 的汇总）`,
    tableHeader: ['后端', '封包', 'Pod MTU', '平均 RTT', 'TCP 吞吐量'],
    udpPath: 'flanneld，用户态（flannel0 ↔ UDP 8285）',
    vxlanPath: '内核（flannel.1，UDP 8472）',
    conclusion: (rttU, rttV, mbpsU, mbpsV) =>
      (rttU && rttV && mbpsU && mbpsV
        ? `在这台机器上，udp 的往返时延是 vxlan 的 ${(rttU / rttV).toFixed(1)} 倍，吞吐量是 vxlan 的 ${((mbpsU / mbpsV) * 100).toFixed(0)}%：这是进出用户态的代价，flannel-ts 靠批量收发数据包把它压低。`
        : '') + '那为什么还要用 udp？在丢弃 VXLAN 的网络里（例如只放行 TCP、UDP 和 ICMP 的云安全组），它照样能通——正如种子文档所说：“选择UDP作为转发协议是因为他能穿透防火墙”。',
  },

  pkt: {
    fieldHeader: ['字段', '值', ''],
    span: (a, b, len) => `第 ${a}-${b} 字节（${len}）`,
    ethernet: '以太网头',
    link: '链路层头',
    outerIp: '外层 IPv4 头',
    udp: 'UDP 头',
    innerIp: '内层 IPv4 头：Pod 的包从这里开始',
    icmp: 'ICMP 头',
    icmpDataRegion: 'ICMP 数据：ping 的时间戳和填充',
    innerPayload: '内层数据',
    ihl: (len) => `头部 ${len} 字节`,
    totalLength: '头部 + 数据，字节数',
    df: '不分片',
    checksumOk: '校验正确',
    checksumBad: '校验错误',
    outerTtl: '新的 TTL：底层网络自己的跳数',
    innerTtl: (ttl) => (ttl === 62 ? 'Pod 发出 64，h1 内核 -1，flanneld -1' : ''),
    srcPort: (who) => `${who} 上的 flanneld`,
    dstPort: (who) => `${who} 上的 flanneld（Backend.Port）`,
    udpLength: (inner, total) => (inner === total ? `8 + ${inner}：整个内层包` : `8 + ${inner}（内层包自称 ${total}）`),
    udpPartial: '部分校验和：校验和卸载，由网卡补全（veth 无需补全）',
    udpNone: '无（0）',
    icmpId: 'ping 的标识符',
    icmpSeq: '第一个 echo request',
    icmpData: 'ping 的数据',
    bytes: (n) => `${n} 字节`,
    vxlan: 'VXLAN 头',
    innerEthernet: '内层以太网头：两台宿主机的 flannel.1 之间',
    vxFlags: 'I 标志：VNI 有效',
    vni: (vni) => `VNI ${vni}：flannel 的 VXLAN 网络（Backend.VNI）`,
    vxSrcPort: '由内核根据内层流的哈希选出',
    vxDstPort: 'vxlan 的端口（Backend.Port；Linux 默认值，IANA 分配的是 4789）',
    vxInnerTtl: (ttl) => (ttl === 63 ? 'Pod 发出 64，h1 内核 -1' : ''),
    innerMacSrc: 'h1 的 flannel.1（VTEP MAC）',
    innerMacDst: '对端的 flannel.1（VTEP MAC，来自邻居记录）',
  },

  keep: {
    etcdWhat: 'etcd（可直接用 etcdctl）',
    hostWhat: '宿主机：flanneld、flannel0、cni0',
    podWhat: 'Pod',
    vxPod: 'vxlan 网桥上的 Pod',
    switchWhat: '底层网络的交换机（网桥 br0）',
  },

  end: {
    title: '7. 结束',
    removing: '正在删除集群：进程、命名空间、文件',
    removed: (n) => `已删除 ${n} 个命名空间及其进程和文件：什么都没有留下`,
    keptTitle: '7. 集群继续运行（--keep）',
    keptIntro: (state, vxlanDaemons) => `etcd、各个 flanneld（h1-h3 上的 udp${vxlanDaemons ? '，h1 和 h3 上的 vxlan' : ''}）和所有 Pod 都还在运行。记录在 ${state}。`,
    stepInto: '可以进入其中任何一个：在它的命名空间里打开交互式 shell，或者在 -- 后面跟一条命令。在宿主机里，etcdctl 和 flannel-ts trace 不需要任何参数。',
    placesHeader: ['名字', '是什么', '地址', '命名空间'],
    try: '例如：',
    teardown: (cmd) => `全部拆除：${cmd}`,
    logs: (dir) => `日志、subnet 文件和抓包文件：${dir}`,
    interrupted: (sig) => `已中断（${sig}）：正在删除集群`,
  },

  down: {
    nothing: (state) => `没有保留的演示：${state} 不存在，无需拆除`,
    progress: '正在停止保留的演示',
    done: (procs, ns, dir) => `已停止 ${procs} 个进程，删除 ${ns} 个命名空间和 ${dir}`,
  },

  err: {
    needRoot: '演示要创建网络命名空间和 TUN 设备：请以 root 运行（sudo）',
    missing: (tools) => `缺少：${tools.join('、')}。请运行 bash scripts/setup.sh（etcd-server、etcd-client、tcpdump、iperf3、iproute2、iputils-ping）。`,
    keptExists: (state, shell, down) => `还有一个保留的演示在运行（${state}）：用 ${shell} 进入它，或先用 ${down} 拆除`,
    daemonNotReady: (h) => `${h} 上的 flanneld 没有启动起来`,
    leasesMismatch: (keys, expected) => `etcd 列出的租约是 ${keys.join(' ')}，但宿主机持有的是 ${expected.join(' ')}`,
    vxlanPath: '经 vxlan 从 h1 的 Pod ping 通 h3 的 Pod',
    vxlanNotReady: 'flannel-ts 的 vxlan 后端没能在 h1 和 h3 上启动（演示要用它和 udp 对比）：请看实验目录里的 flanneld-vx.log；内核需要 vxlan 模块（modprobe vxlan）',
    pingLost: (out) => `跨宿主机的 ping 丢包了：\n${out}`,
    noTrace: (file, content) => `trace 没有打印任何事件（${file}）：\n${content}`,
    emptyPcap: (file) => `tcpdump 什么也没抓到（${file}）`,
    wrongCapture: (src, dst, port) => `抓到的数据报不是 ping 的（内层 ${src} > ${dst}，UDP 端口 ${port}）`,
  },
};

export function text(lang: string): Text {
  return lang === 'zh' ? ZH : EN;
}
