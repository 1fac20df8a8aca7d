// IPv4 addresses as unsigned 32-bit numbers, and networks as (address, prefix).
// Numbers, not strings, because the data plane compares them per packet.

import { FlannelError } from '../util/errors';

export type Ip4 = number;

export class Ip4Error extends FlannelError {
  constructor(message: string) {
    super('FLANNEL_ERR_BAD_IP', message);
    this.name = 'Ip4Error';
  }
}

export function parseIp4(s: string): Ip4 {
  const parts = s.split('.');
  if (parts.length !== 4) throw new Ip4Error(`"${s}" is not an IPv4 address (want a.b.c.d)`);
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) {
      throw new Ip4Error(`"${s}" is not an IPv4 address (each part 0-255)`);
    }
    n = n * 256 + Number(p);
  }
  return n >>> 0;
}

export function formatIp4(n: Ip4): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function isIp4(s: string): boolean {
  try {
    parseIp4(s);
    return true;
  } catch {
    return false;
  }
}

/** The netmask of a prefix length, as an unsigned number (0 for /0). */
export function maskOf(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

/** An IPv4 network: `ip` is always the network address (host bits cleared). */
export class Ip4Net {
  readonly ip: Ip4;
  readonly prefixLen: number;

  constructor(ip: Ip4, prefixLen: number) {
    if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > 32) {
      throw new Ip4Error(`prefix length ${prefixLen} is not between 0 and 32`);
    }
    this.prefixLen = prefixLen;
    this.ip = (ip & maskOf(prefixLen)) >>> 0;
  }

  /** Parses "a.b.c.d/len". With `strict`, host bits must be zero. */
  static parse(s: string, strict = false): Ip4Net {
    const m = /^([^/]+)\/(\d{1,2})$/.exec(s);
    if (!m) throw new Ip4Error(`"${s}" is not an IPv4 network (want a.b.c.d/len)`);
    const ip = parseIp4(m[1]);
    const len = Number(m[2]);
    const net = new Ip4Net(ip, len);
    if (strict && net.ip !== ip) {
      throw new Ip4Error(`"${s}" has host bits set (did you mean ${net}?)`);
    }
    return net;
  }

  get mask(): number {
    return maskOf(this.prefixLen);
  }
  get size(): number {
    return 2 ** (32 - this.prefixLen);
  }
  /** Last address of the network (the broadcast address for prefixes < 31). */
  get last(): Ip4 {
    return (this.ip + this.size - 1) >>> 0;
  }
  contains(ip: Ip4): boolean {
    return (ip & this.mask) >>> 0 === this.ip;
  }
  containsNet(n: Ip4Net): boolean {
    return n.prefixLen >= this.prefixLen && this.contains(n.ip);
  }
  overlaps(n: Ip4Net): boolean {
    return this.contains(n.ip) || n.contains(this.ip);
  }
  equals(n: Ip4Net): boolean {
    return this.ip === n.ip && this.prefixLen === n.prefixLen;
  }
  toString(): string {
    return `${formatIp4(this.ip)}/${this.prefixLen}`;
  }
}
