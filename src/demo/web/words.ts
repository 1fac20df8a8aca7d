// The web view's hop-by-hop narration, in English and Chinese. Short: the
// page shows each line next to the drawn hop, with its real evidence.

import type { Lang } from './api';

const EN = {
  podOut: (pod: string) => `${pod} sends the echo request`,
  podRoute: (gw: string) => `The pod's only route is the default one: via ${gw}, the bridge on its host.`,
  bridge: (br: string, host: string) => `${br} on ${host}`,
  bridgeUp: (host: string) => `The bridge hands the packet to ${host}'s own IP stack (the pod's gateway is the bridge's address).`,
  hostRoute: (host: string) => `${host} routes it`,
  routeMatched: (route: string) => `Route matched: ${route}`,
  tunRead: (host: string) => `flanneld on ${host} reads it from flannel0`,
  leaseNamed: (subnet: string, ip: string, key: string) => `The lease ${key} names the peer: ${subnet} lives at ${ip}. flanneld wraps the packet in UDP to ${ip}:8285.`,
  dropped: (reason: string) => `Dropped: ${reason}`,
  noEvent: 'No trace event came from this daemon (the packet never reached it).',
  daemonStopped: (host: string, port: number) => `flanneld on ${host} is stopped: nothing reads UDP port ${port}, so the datagram is dropped there (the kernel answers ICMP port unreachable).`,
  wire: (a: string, b: string) => `On the underlay: ${a} → ${b}`,
  wireSaid: (src: string, sp: number, dst: string, dp: number) => `Captured on eth0: UDP ${src}:${sp} → ${dst}:${dp}. The switch delivers it by the outer destination MAC / IP.`,
  noCapture: 'tcpdump captured nothing on the underlay.',
  arrives: (host: string) => `${host} eth0 receives it`,
  toSocket: (port: number) => `Addressed to this host, UDP port ${port}: the kernel hands it to flanneld's socket.`,
  rxDaemon: (host: string) => `flanneld on ${host} receives the datagram`,
  rxDecided: (d: string) => `Decision: ${d}; the inner packet is written into flannel0.`,
  farRoute: (host: string) => `${host} routes it to the pod`,
  arrive: (pod: string) => `${pod} receives it`,
  reply: (n: number, of: number) => `${n} of ${of} echo requests answered.`,
  vxRoute: (host: string) => `${host} routes it to flannel.1`,
  vxNeigh: 'The neighbour entry gives the far flannel.1 MAC; the fdb entry maps that MAC to the far host',
  vxNeighSaid: (mac: string, ip: string) => `flannel.1 (kernel) encapsulates: inner Ethernet to ${mac}, VXLAN to ${ip}:8472 (entries written by flanneld from the lease).`,
  vxRx: (host: string) => `${host}'s kernel decapsulates on flannel.1`,
  vxRxSaid: 'VNI matches flannel.1: the inner frame comes out of flannel.1 (no daemon on this path).',
  sameHost: 'Both pods are on one host: the bridge delivers directly, no overlay involved.',
};

export type Words = typeof EN;

const ZH: Words = {
  podOut: (pod) => `${pod} 发出 echo request`,
  podRoute: (gw) => `Pod 只有一条默认路由：经 ${gw}，即宿主机上的网桥。`,
  bridge: (br, host) => `${host} 上的 ${br}`,
  bridgeUp: (host) => `网桥把包交给 ${host} 自己的协议栈（Pod 的网关就是网桥的地址）。`,
  hostRoute: (host) => `${host} 查路由`,
  routeMatched: (route) => `匹配的路由：${route}`,
  tunRead: (host) => `${host} 上的 flanneld 从 flannel0 读到它`,
  leaseNamed: (subnet, ip, key) => `租约 ${key} 指明了对端：${subnet} 在 ${ip}。flanneld 把包封装进发往 ${ip}:8285 的 UDP。`,
  dropped: (reason) => `丢弃：${reason}`,
  noEvent: '这个 flanneld 没有报告追踪事件（包没有到达它）。',
  daemonStopped: (host, port) => `${host} 上的 flanneld 已停止：没有进程读取 UDP 端口 ${port}，数据报在这里被丢弃（内核回复 ICMP 端口不可达）。`,
  wire: (a, b) => `在底层网络上：${a} → ${b}`,
  wireSaid: (src, sp, dst, dp) => `在 eth0 上抓到：UDP ${src}:${sp} → ${dst}:${dp}。交换机按外层目的 MAC / IP 转发。`,
  noCapture: 'tcpdump 在底层网络上什么也没抓到。',
  arrives: (host) => `${host} 的 eth0 收到它`,
  toSocket: (port) => `发给本机、UDP 端口 ${port}：内核把它交给 flanneld 的 socket。`,
  rxDaemon: (host) => `${host} 上的 flanneld 收到数据报`,
  rxDecided: (d) => `决定：${d}；内层包写入 flannel0。`,
  farRoute: (host) => `${host} 查路由，交给 Pod`,
  arrive: (pod) => `${pod} 收到`,
  reply: (n, of) => `${of} 个 echo request 中 ${n} 个得到了应答。`,
  vxRoute: (host) => `${host} 查路由，交给 flannel.1`,
  vxNeigh: '邻居记录给出对端 flannel.1 的 MAC；fdb 记录把这个 MAC 映射到对端宿主机',
  vxNeighSaid: (mac, ip) => `flannel.1（内核）封包：内层以太网发往 ${mac}，VXLAN 发往 ${ip}:8472（这些记录由 flanneld 按租约写入）。`,
  vxRx: (host) => `${host} 的内核在 flannel.1 上解包`,
  vxRxSaid: 'VNI 与 flannel.1 相符：内层帧从 flannel.1 出来（这条路上没有守护进程）。',
  sameHost: '两个 Pod 在同一台宿主机上：网桥直接转发，不经过 overlay。',
};

export function words(lang: Lang): Words {
  return lang === 'zh' ? ZH : EN;
}
