// The host's interface towards the other hosts (the underlay), as the daemon
// chose it (src/daemon/iface.ts) and the backends use it. A leaf: every layer
// may import it.

export interface ExternalInterface {
  name: string;
  /** The interface's own IPv4 address (the UDP socket binds here). */
  ifaceAddr: string;
  /** What peers send to (--public-ip, or ifaceAddr). */
  publicIp: string;
  mtu: number;
}
