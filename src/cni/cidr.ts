// CIDR parsing as Go's net.ParseCIDR does it for flannel's CNI plugin: the
// result is the network (host bits cleared) in Go's canonical text, so
// FLANNEL_SUBNET=10.1.17.1/24 becomes the range 10.1.17.0/24 and an IPv6
// subnet prints compressed (RFC 5952), as IPNet.String() prints it.

import { Ip4Net } from '../routes/ip4';

export interface Cidr {
  family: 4 | 6;
  /** The network, canonical: "10.1.17.0/24", "fd00:1::/64". */
  text: string;
}

export class CidrError extends Error {}

export function parseCidr(s: string): Cidr {
  if (s.includes(':')) return { family: 6, text: parseCidr6(s) };
  try {
    return { family: 4, text: Ip4Net.parse(s).toString() };
  } catch {
    throw new CidrError(`invalid CIDR address: ${s}`);
  }
}

function parseCidr6(s: string): string {
  const m = /^([0-9A-Fa-f:.]+)\/(\d{1,3})$/.exec(s);
  if (!m || Number(m[2]) > 128) throw new CidrError(`invalid CIDR address: ${s}`);
  const len = Number(m[2]);
  const words = parseIp6(m[1]);
  if (!words) throw new CidrError(`invalid CIDR address: ${s}`);
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, len - i * 16));
    words[i] &= keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
  }
  return `${formatIp6(words)}/${len}`;
}

/** Eight 16-bit words, or undefined when `s` is not an IPv6 address. */
function parseIp6(s: string): number[] | undefined {
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    // An embedded IPv4 address in the last 32 bits: rewrite it as two groups.
    const v4 = last.split('.');
    if (v4.length !== 4 || v4.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
    const b = v4.map(Number);
    s = `${s.slice(0, lastColon + 1)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const part = (h: string) => (h === '' ? [] : h.split(':'));
  const head = part(halves[0]);
  const tail = halves.length === 2 ? part(halves[1]) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return undefined;
  const words: number[] = [];
  for (const g of [...head, ...Array<string>(fill).fill('0'), ...tail]) {
    if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
    words.push(parseInt(g, 16));
  }
  return words;
}

/** RFC 5952 text: lower case, the longest run (2 or more) of zero words as "::", the first on a tie. */
function formatIp6(w: number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(w);
  return `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`;
}
