// Start-up checks of the host that flanneld reports but does not act on.

import * as fs from 'node:fs';
import type { Logger } from '../util/log';

export const BR_NETFILTER_SYSCTL = '/proc/sys/net/bridge/bridge-nf-call-iptables';

/**
 * br_netfilter (iptables mode only, as upstream since v0.26): without it,
 * traffic between pods on one bridge (cni0) skips iptables, so flannel's
 * masquerade exceptions and kube-proxy's service rules do not see it and pods
 * hang talking to services. Upstream exits; flannel-ts warns, because tests,
 * the demo and containers cannot load kernel modules and nothing here changes
 * the machine's own settings. Returns whether it warned.
 */
export function warnIfNoBrNetfilter(log: Logger, sysctl = BR_NETFILTER_SYSCTL): boolean {
  if (fs.existsSync(sysctl)) return false;
  log.warn(
    `br_netfilter is not loaded (${sysctl} is missing): pods on a bridge such as cni0 bypass iptables, so masquerading and ` +
      'service rules miss their traffic and connections between pods can hang. Run "modprobe br_netfilter" ' +
      '(and add br_netfilter to /etc/modules-load.d/ to keep it across reboots). (FLANNEL_ERR_BR_NETFILTER, a warning)',
  );
  return true;
}
