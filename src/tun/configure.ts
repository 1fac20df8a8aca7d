// Configures flannel0 as flannel's udp backend does: the node subnet's
// network address as a /32 (so the kernel makes no broadcast route for it; it
// is only the source address for host-to-pod traffic), MTU = underlay - 28,
// and one route for the whole overlay Network through the device.
//
// iproute2 is used rather than netlink from C: these run once at start-up (and
// on a lease change), never per packet, and `ip -batch` keeps it one process.

import * as fs from 'node:fs';
import { ipBatch, run } from '../util/sh';

export interface TunConfig {
  name: string;
  /** Node subnet's network address, dotted. */
  address: string;
  /** The whole overlay Network, e.g. 198.19.0.0/16. */
  network: string;
  mtu: number;
}

export function configureTun(c: TunConfig): void {
  // No IPv6 on flannel0: otherwise the kernel sends router solicitations and
  // MLD reports into the TUN that would only be dropped.
  const v6 = `/proc/sys/net/ipv6/conf/${c.name}/disable_ipv6`;
  if (fs.existsSync(v6)) fs.writeFileSync(v6, '1');
  ipBatch([
    `link set dev ${c.name} mtu ${c.mtu}`,
    `addr flush dev ${c.name}`,
    `addr add ${c.address}/32 dev ${c.name}`,
    `link set dev ${c.name} up`,
    `route replace ${c.network} dev ${c.name} scope global`,
  ]);
}

/** Reads an interface's MTU from sysfs. */
export function interfaceMtu(name: string): number {
  return Number(fs.readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
}

export function deviceExists(name: string): boolean {
  return fs.existsSync(`/sys/class/net/${name}`);
}

/** Removes a leftover device (e.g. a persistent flannel0 from a crashed daemon). */
export function deleteDevice(name: string): void {
  if (deviceExists(name)) run(['ip', 'link', 'del', name]);
}
