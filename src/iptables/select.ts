// Picking the traffic manager for the network config's mode, and clearing
// the other mode's leftovers at start (upstream does the same: a host that
// switched modes would otherwise keep both rule sets).

import { onPath } from './exec';
import { IptablesManager } from './manager';
import { NftablesManager } from './nftables';
import type { TrafficManager, TrafficMode } from './traffic';
import type { Logger } from '../util/log';

export interface TrafficOptions {
  log: Logger;
  /** false = --ip-masq-fully-random-disable; undefined = the mode's default (iptables: when supported). */
  randomFully?: boolean;
}

export function createTrafficManager(mode: TrafficMode, opts: TrafficOptions): TrafficManager {
  return mode === 'nftables' ? new NftablesManager(opts) : new IptablesManager(opts);
}

/**
 * Removes what flanneld installed in the mode it does NOT use now. When that
 * mode's tool is not installed, there is nothing it could have left (and, in
 * nftables mode, no iptables binary is needed: a departure from upstream HEAD,
 * which runs its iptables clean-up unconditionally and exits without
 * iptables). A failure is a warning: the rules in use matter more.
 */
export async function removeLeftovers(inUse: TrafficMode, log: Logger): Promise<void> {
  const other: TrafficMode = inUse === 'nftables' ? 'iptables' : 'nftables';
  const tool = other === 'nftables' ? 'nft' : 'iptables-save';
  if (!onPath(tool)) {
    log.debug(`${tool} is not installed: no ${other} leftovers to remove`);
    return;
  }
  try {
    const removed = await createTrafficManager(other, { log, randomFully: false }).removeAll();
    if (removed) log.info(`Removed flannel's ${other} rules left from an earlier run in ${other} mode (this run uses ${inUse})`);
  } catch (e) {
    log.warn({ err: e }, `Could not check for flannel's ${other} rules from an earlier run: ${(e as Error).message}`);
  }
}
