// Configures flannel0 as flannel's udp backend does: the node subnet's
// network address as a /32 (so the kernel makes no broadcast route for it; it
// is only the source address for host-to-pod traffic), MTU = underlay - 28,
// and one route for the whole overlay Network through the device.
//
// iproute2 is used rather than netlink from C: these run once at start-up (and
// on a lease change), never per packet, and `ip -batch` keeps it one process.

import { access, writeFile } from 'node:fs/promises';
import { ipBatch } from '../util/exec';

export interface TunConfig {
  name: string;
  /** Node subnet's network address, dotted. */
  address: string;
  /** The whole overlay Network, e.g. 198.19.0.0/16. */
  network: string;
  mtu: number;
}

/**
 * flannel0's transmit queue. The kernel queues packets for us here while the
 * daemon is busy with a batch; one TSO burst from a pod is ~44 packets, so the
 * TUN default of 500 overflowed under a single TCP stream (76k drops and as
 * many retransmits in 5 s). 2000 measured 0.9-1.5 Gbit/s more with almost no
 * loss; it is at most ~3 MB (a few ms at these rates) of queueing.
 */
export const TUN_TXQUEUELEN = 2000;

/*
 * flannel0's gso_max_size stays at the kernel's default (64 KiB) with TSO on.
 * Capping it at 62 000 (so a split super-packet fits one 65 507-byte
 * UDP_SEGMENT send) was measured and is a loss on Linux 6.18: the pods'
 * 64 KiB TSO bursts are FORWARDED to flannel0, and over the cap the kernel
 * segments them in software first (flannel0 then sees ~1.5 KB per skb
 * instead of ~64 KB: 2.8 vs 6.0 Gbit/s, one stream between pods;
 * bench/offloads.ts, config gso-cap). A 64 KiB burst simply leaves in two
 * UDP sends instead of one.
 */

/** @throws CommandError (FLANNEL_ERR_COMMAND) naming the ip command that failed. */
export async function configureTun(c: TunConfig): Promise<void> {
  // No IPv6 on flannel0: otherwise the kernel sends router solicitations and
  // MLD reports into the TUN that would only be dropped.
  const v6 = `/proc/sys/net/ipv6/conf/${c.name}/disable_ipv6`;
  const hasV6 = await access(v6).then(
    () => true,
    () => false,
  );
  if (hasV6) await writeFile(v6, '1');
  await ipBatch([
    `link set dev ${c.name} mtu ${c.mtu} txqueuelen ${TUN_TXQUEUELEN}`,
    `addr flush dev ${c.name}`,
    `addr add ${c.address}/32 dev ${c.name}`,
    `link set dev ${c.name} up`,
    `route replace ${c.network} dev ${c.name} scope global`,
  ]);
}
