// Subnet arithmetic for leases: etcd key names, compatibility with the
// network config, and choosing a free subnet.

import { randomInt } from 'node:crypto';
import { type Ip4, Ip4Net, formatIp4, parseIp4, isIp4 } from '../routes/ip4';

/** The part of the network config that decides which subnets may be leased. */
export interface SubnetRange {
  network: Ip4Net;
  subnetLen: number;
  /** Network address of the lowest subnet that may be leased. */
  subnetMin: Ip4;
  /** Network address of the highest subnet that may be leased. */
  subnetMax: Ip4;
}

/** Number of addresses in a subnet of this prefix length. */
export function blockSize(prefixLen: number): number {
  return 2 ** (32 - prefixLen);
}

/** flannel's key name for a subnet: "10.5.52.0-24" (the last segment of <prefix>/subnets/...). */
export function subnetKey(net: Ip4Net): string {
  return `${formatIp4(net.ip)}-${net.prefixLen}`;
}

// flannel's key is "<ipv4>-<len>", optionally followed by "&<ipv6>-<len>" on
// dual-stack nodes. We read the IPv4 half of such keys (the subnet is taken
// either way) and never write them.
const KEY_RE = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})-(\d{1,2})(?:&[0-9a-fA-F:.]+-\d{1,3})?$/;

/**
 * Parses a subnet key, either the bare name ("10.5.52.0-24") or a full etcd
 * key ("/coreos.com/network/subnets/10.5.52.0-24"). Returns undefined for
 * anything that is not a subnet key. Host bits, if a hand-written key has
 * any, are cleared (flannel compares such keys under the mask too).
 * Lengths above 31 are refused, as flannel's parser does.
 */
export function parseSubnetKey(key: string): Ip4Net | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1);
  const m = KEY_RE.exec(name);
  if (!m || !isIp4(m[1])) return undefined;
  const len = Number(m[2]);
  if (len > 31) return undefined;
  return new Ip4Net(parseIp4(m[1]), len);
}

/** The first host address of a subnet (what FLANNEL_SUBNET shows, and flannel0 never gets). */
export function firstAddress(net: Ip4Net): Ip4 {
  return (net.ip + 1) >>> 0;
}

/**
 * flannel's isSubnetConfigCompat: a lease fits the config when its network
 * address lies in [SubnetMin, SubnetMax] and it has exactly SubnetLen.
 * (That also puts it inside Network, since Min and Max are.)
 */
export function isSubnetCompatible(range: SubnetRange, net: Ip4Net): boolean {
  return net.prefixLen === range.subnetLen && net.ip >= range.subnetMin && net.ip <= range.subnetMax;
}

/** How many subnets of SubnetLen lie in [SubnetMin, SubnetMax]. */
export function subnetCount(range: SubnetRange): number {
  if (range.subnetMax < range.subnetMin) return 0;
  return Math.floor((range.subnetMax - range.subnetMin) / blockSize(range.subnetLen)) + 1;
}

/**
 * The candidate indexes (0 = SubnetMin) that `taken` overlap, as sorted,
 * merged, inclusive [first, last] pairs. Taken subnets may have any length
 * (leases from an older config): a /16 lease blocks every /24 inside it, a /26
 * blocks the /24 around it.
 */
function takenIndexRanges(range: SubnetRange, taken: Iterable<Ip4Net>): Array<[number, number]> {
  const size = blockSize(range.subnetLen);
  const lo = range.subnetMin;
  const hi = range.subnetMax + size - 1; // last address of the last candidate
  const raw: Array<[number, number]> = [];
  for (const t of taken) {
    const start = t.ip;
    const end = t.last;
    if (end < lo || start > hi) continue;
    raw.push([Math.floor((Math.max(start, lo) - lo) / size), Math.floor((Math.min(end, hi) - lo) / size)]);
  }
  raw.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const r of raw) {
    const top = merged[merged.length - 1];
    if (top && r[0] <= top[1] + 1) top[1] = Math.max(top[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}

/** Number of candidate subnets no taken subnet overlaps. */
export function freeSubnetCount(range: SubnetRange, taken: Iterable<Ip4Net>): number {
  let free = subnetCount(range);
  for (const [a, b] of takenIndexRanges(range, taken)) free -= b - a + 1;
  return Math.max(0, free);
}

/**
 * A subnet of SubnetLen in [SubnetMin, SubnetMax] that overlaps none of
 * `taken`, chosen uniformly at random among all free ones; undefined when
 * none is free.
 *
 * Cost is O(L log L) in the number of taken subnets, independent of the
 * range's size (a /8 cut into /30s has four million candidates; we never
 * enumerate them): the free candidates are the gaps between the merged taken
 * ranges, so we count them, draw an index, and walk the gaps to it.
 *
 * flannel instead scans from SubnetMin and draws among the first 100 free
 * ones; uniform choice keeps two nodes starting at once from picking the same
 * subnet (the create transaction would make one retry, but needn't).
 *
 * @param random returns an integer in [0, n); injectable for tests.
 */
export function pickFreeSubnet(range: SubnetRange, taken: Iterable<Ip4Net>, random: (n: number) => number = randomBelow): Ip4Net | undefined {
  const total = subnetCount(range);
  const ranges = takenIndexRanges(range, taken);
  let free = total;
  for (const [a, b] of ranges) free -= b - a + 1;
  if (free <= 0) return undefined;
  let r = random(free);
  let cursor = 0; // first candidate index not yet walked past
  let index = -1;
  for (const [a, b] of ranges) {
    const gap = a - cursor;
    if (r < gap) {
      index = cursor + r;
      break;
    }
    r -= gap;
    cursor = b + 1;
  }
  if (index < 0) index = cursor + r;
  return new Ip4Net(range.subnetMin + index * blockSize(range.subnetLen), range.subnetLen);
}

function randomBelow(n: number): number {
  // crypto.randomInt takes ranges below 2^48; candidate counts are at most 2^30.
  return n <= 1 ? 0 : randomInt(n);
}
