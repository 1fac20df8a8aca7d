// A lease read from etcd is checked against the network config before it can
// reach the lease table. flannel writes only leases that fit its config, but
// etcd holds whatever anyone put there: a /16 "lease" would take every
// destination without a lease (pods would get silence instead of ICMP
// net-unreachable), a loopback PublicIP would send the overlay to this host
// itself, and every extra prefix length costs the data plane a lookup per
// packet.

import { type Ip4, type Ip4Net, formatIp4 } from '../routes/ip4';
import type { NetworkConfig } from './config';

/** Why a lease with `subnet` and `publicIp` cannot be used under `config`; undefined when it can. */
export function leaseProblem(subnet: Ip4Net, publicIp: Ip4, config: Pick<NetworkConfig, 'network' | 'subnetLen'>): string | undefined {
  const s = subnetProblem(subnet, config);
  if (s !== undefined) return s;
  const ip = publicIp >>> 0;
  if (ip >>> 24 === 127) return `PublicIP ${formatIp4(publicIp)} is a loopback address`;
  if (ip >>> 28 === 0xe) return `PublicIP ${formatIp4(publicIp)} is a multicast address`;
  if (ip === 0) return 'PublicIP 0.0.0.0 is the unspecified address';
  if (ip === 0xffffffff) return 'PublicIP 255.255.255.255 is the broadcast address';
  return undefined;
}

/**
 * Why `subnet` cannot be a lease under `config` (outside Network, or not a
 * /SubnetLen). Such a key never blocks allocation either: its etcd key differs
 * from every real lease's, so it cannot collide with one.
 */
export function subnetProblem(subnet: Ip4Net, config: Pick<NetworkConfig, 'network' | 'subnetLen'>): string | undefined {
  if (!config.network.containsNet(subnet)) return `subnet ${subnet} is outside the Network ${config.network}`;
  if (subnet.prefixLen !== config.subnetLen) return `subnet ${subnet} is a /${subnet.prefixLen}, but SubnetLen is ${config.subnetLen}`;
  return undefined;
}
