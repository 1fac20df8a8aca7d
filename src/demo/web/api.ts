// What the web view's server sends the page (JSON). Types only: the server
// (src/demo/web) and the browser code (src/demo/web/browser) both import it.

export type Lang = 'en' | 'zh';
export type BackendKind = 'udp' | 'vxlan';

export interface LeaseView {
  key: string;
  subnet: string;
  publicIp: string;
  backendType: string;
  /** vxlan: the VTEP MAC in BackendData. */
  vtepMac?: string;
  /** etcd lease id (hex) and its remaining TTL, seconds. */
  leaseId?: string;
  ttl?: number;
}

export interface DeviceView {
  name: string;
  /** Address with prefix length, as `ip addr` shows it. */
  addr?: string;
  mac?: string;
  up: boolean;
  mtu?: number;
}

export interface PodView {
  name: string;
  ip: string;
  backend: BackendKind;
}

export interface DaemonView {
  running: boolean;
  pid?: number;
  adminSocket: string;
}

export interface HostView {
  name: string;
  ip: string;
  eth0?: DeviceView;
  flannel0?: DeviceView;
  cni0?: DeviceView;
  flanneld: DaemonView;
  pods: PodView[];
  /** The vxlan comparison network on this host, when it has one. */
  vx?: {
    flannel1?: DeviceView;
    brvx?: DeviceView;
    flanneld: DaemonView;
    fdb: string[];
    neigh: string[];
  };
}

export interface StateView {
  prefix: string;
  time: string;
  etcd: { ip: string; endpoint: string; up: boolean; configKey: string; config: string; leases: LeaseView[]; vxConfigKey: string; vxConfig: string; vxLeases: LeaseView[] };
  hosts: HostView[];
}

export interface Field {
  name: string;
  value: string;
  meaning: string;
  start: number;
  length: number;
}

export interface Layer {
  layer: string;
  title: string;
  start: number;
  length: number;
  fields: Field[];
}

export interface CaptureView {
  backend: BackendKind;
  /** The frame as captured, hex. */
  hex: string;
  layers: Layer[];
  outer: { src: string; dst: string; srcPort: number; dstPort: number };
  inner: { src: string; dst: string };
  /** Where tcpdump wrote it (a test reads the same bytes). */
  pcapFile: string;
  tcpdumpLog: string;
}

/** One hop of the journey: where the packet is, what decided where it goes next, and the evidence. */
export interface Hop {
  /** The drawn element the packet is at (see browser/ids.ts). */
  at: string;
  title: string;
  decided: string;
  /** A command run for this hop and its real output, or the daemon's trace line. */
  evidence?: { cmd: string; output: string };
  drop?: boolean;
}

export interface JourneyView {
  backend: BackendKind;
  src: PodView;
  dst: PodView;
  ping: { output: string; sent: number; received: number };
  hops: Hop[];
  capture?: CaptureView;
}

export interface MeasureView {
  backend: BackendKind;
  rttAvgMs?: number;
  mbps?: number;
  output: string;
}

export interface PeerCounters {
  host: string;
  subnet: string;
  publicIp: string;
  txPackets: number;
  rxPackets: number;
  txBytes: number;
  rxBytes: number;
}
