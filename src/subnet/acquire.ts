// flannel's lease acquisition rules (LocalManager.tryAcquireLease), as one
// function: which subnet a node gets when it starts or has lost its lease.

import { subnetProblem } from './lease-check';
import { type Ip4Net, formatIp4 } from '../routes/ip4';
import type { NetworkConfig } from './config';
import { SubnetError } from './errors';
import type { LeaseAttrs } from './lease-value';
import type { Logger } from '../util/log';
import type { RegistryLease, SubnetRegistry } from './registry';
import { isSubnetCompatible, pickFreeSubnet, subnetCount } from './subnets';

export interface AcquireParams {
  registry: SubnetRegistry;
  config: NetworkConfig;
  /** What to write: our PublicIP and backend type. */
  attrs: LeaseAttrs;
  /** The subnet we had before (subnet file, or the lease just lost). */
  previous: Ip4Net | undefined;
  ttlSec: number;
  /** Create attempts lost to other nodes before giving up. */
  raceRetries: number;
  random?: (n: number) => number;
  log: Logger;
  /** Checked between attempts. */
  signal?: AbortSignal;
}

/**
 * Gets a lease, in flannel's order:
 *  1. a lease carrying our PublicIP: reused (re-put on a fresh etcd lease; a
 *     reservation is used as it is); deleted if it no longer fits the config;
 *  2. `previous`, if it fits the config and no lease overlaps it;
 *  3. a random free subnet.
 * The create is a transaction that fails if the key exists; a lost race
 * starts over from a fresh list.
 * @throws SubnetError FLANNEL_ERR_SUBNET_EXHAUSTED, FLANNEL_ERR_LEASE_RACE;
 *   RegistryError (FLANNEL_ERR_ETCD) from etcd, for the caller to retry.
 */
export async function acquireSubnetLease(p: AcquireParams): Promise<RegistryLease> {
  const { registry, config, attrs, ttlSec, raceRetries, random, log, signal } = p;
  let previous = p.previous;
  const me = formatIp4(attrs.publicIp);
  for (let attempt = 0; attempt < raceRetries; attempt++) {
    if (signal?.aborted) throw signal.reason;
    const { leases } = await registry.listLeases();

    // 1. A lease carrying our PublicIP. Several can exist when hosts share a
    // public IP (NAT); prefer the one matching our previous subnet.
    const mine = leases.filter((l) => l.publicIp === attrs.publicIp);
    if (mine.length > 1) {
      log.warn(`${mine.length} leases carry this node's PublicIP ${me} (${mine.map((l) => l.subnet).join(', ')}): ` + 'do several hosts share it? Give each host its own --public-ip');
    }
    const rank = (l: RegistryLease): number => (isSubnetCompatible(config, l.subnet) ? (previous && l.subnet.equals(previous) ? 0 : 1) : 2);
    mine.sort((a, b) => rank(a) - rank(b));
    const deleted = new Set<string>();
    let changedUnderUs = false;
    for (const l of mine) {
      if (isSubnetCompatible(config, l.subnet)) {
        if (l.leaseId === '0') {
          log.info(`Found reservation ${l.subnet} for current IP (${me}), using it`);
          return l;
        }
        const renewed = await registry.updateLease(l, attrs, ttlSec);
        if (renewed) {
          log.info(`Found lease ${l.subnet} for current IP (${me}), reusing`);
          return renewed;
        }
        changedUnderUs = true; // changed between list and update: look again
        break;
      }
      log.info(
        `Found lease ${l.subnet} for current IP (${me}) but not compatible with current config ` +
          `(/${config.subnetLen} subnets in ${formatIp4(config.subnetMin)} ... ${formatIp4(config.subnetMax)}), deleting`,
      );
      await registry.deleteLease(l);
      deleted.add(l.key);
    }
    if (changedUnderUs) continue;
    // A key that is no lease under this config (another length, outside the
    // Network: written by hand) holds nothing: the lease table ignores it too.
    const taken = leases.filter((l) => !deleted.has(l.key) && subnetProblem(l.subnet, config) === undefined);

    // 2. The subnet from the subnet file, if it is still free and fits.
    let subnet: Ip4Net | undefined;
    const prev = previous;
    if (prev) {
      const holder = taken.find((l) => l.subnet.overlaps(prev));
      if (holder) {
        log.info(`Previous subnet ${prev} is now held by ${formatIp4(holder.publicIp)}, not reusing it`);
      } else if (!isSubnetCompatible(config, prev)) {
        log.error(`Found previously leased subnet (${prev}) that is not compatible with the Etcd network config, ignoring`);
      } else {
        log.info(`Found previously leased subnet (${prev}), reusing`);
        subnet = prev;
      }
    }

    // 3. Any free subnet.
    if (!subnet) {
      subnet = pickFreeSubnet(
        config,
        taken.map((l) => l.subnet),
        random,
      );
      if (!subnet) {
        throw new SubnetError(
          'FLANNEL_ERR_SUBNET_EXHAUSTED',
          `no free subnet left: all ${subnetCount(config)} /${config.subnetLen} subnets from ${formatIp4(config.subnetMin)} to ` +
            `${formatIp4(config.subnetMax)} in Network ${config.network} are leased or reserved; remove stale leases ` +
            `(etcdctl del ${registry.prefix}/subnets/<subnet>) or widen Network/SubnetMin/SubnetMax`,
        );
      }
      log.info(`Picked subnet ${subnet} in range ${formatIp4(config.subnetMin)} ... ${formatIp4(config.subnetMax)}`);
    }

    const created = await registry.createLease(subnet, attrs, ttlSec);
    if (created) {
      log.info(`Allocated lease (${subnet}) to current node (${me})`);
      return created;
    }
    log.info(`Subnet ${subnet} was taken by another node a moment ago; trying again`);
    previous = undefined; // someone holds it now
  }
  throw new SubnetError(
    'FLANNEL_ERR_LEASE_RACE',
    `gave up acquiring a subnet after losing ${raceRetries} races to other nodes; is something creating leases in a loop under ${registry.prefix}/subnets?`,
  );
}
