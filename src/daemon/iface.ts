// Choosing the external interface as flanneld does: each --iface (a name or an
// IP) in order, then each --iface-regex (matched against names and IPs), else
// the interface of the default route. Its first IPv4 address is the public IP
// unless --public-ip says otherwise.

import * as fs from 'node:fs';
import * as os from 'node:os';
import type { ExternalInterface } from '../util/external-interface';
import { FlannelError } from '../util/errors';

export type { ExternalInterface };


export class IfaceError extends FlannelError {
  constructor(message: string) {
    super('FLANNEL_ERR_IFACE', message);
    this.name = 'IfaceError';
  }
}

function ipv4Of(name: string): string | undefined {
  return os.networkInterfaces()[name]?.find((a) => a.family === 'IPv4')?.address;
}

function byAddress(addr: string): string | undefined {
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    if (addrs?.some((a) => a.family === 'IPv4' && a.address === addr)) return name;
  }
  return undefined;
}

/** The interface of the IPv4 default route, from /proc/net/route (no process spawn). */
export function defaultRouteInterface(): string | undefined {
  const lines = fs.readFileSync('/proc/net/route', 'utf8').trim().split('\n').slice(1);
  for (const l of lines) {
    const [name, dest, , , , , , mask] = l.trim().split(/\s+/);
    if (dest === '00000000' && mask === '00000000') return name;
  }
  return undefined;
}

export function findExternalInterface(opts: { iface: string[]; ifaceRegex: string[]; publicIp?: string }): ExternalInterface {
  let name: string | undefined;
  for (const spec of opts.iface) {
    name = /^\d+\.\d+\.\d+\.\d+$/.test(spec) ? byAddress(spec) : ipv4Of(spec) !== undefined ? spec : undefined;
    if (name) break;
  }
  if (!name && opts.iface.length > 0 && opts.ifaceRegex.length === 0) {
    throw new IfaceError(`none of --iface ${opts.iface.join(', ')} is an interface with an IPv4 address here (see "ip -4 addr")`);
  }
  if (!name) {
    for (const re of opts.ifaceRegex) {
      const rx = new RegExp(re);
      for (const [n, addrs] of Object.entries(os.networkInterfaces())) {
        const v4 = addrs?.find((a) => a.family === 'IPv4' && !a.internal);
        if (v4 && (rx.test(n) || rx.test(v4.address))) {
          name = n;
          break;
        }
      }
      if (name) break;
    }
    if (!name && opts.ifaceRegex.length > 0) {
      throw new IfaceError(`no interface with an IPv4 address matches --iface-regex ${opts.ifaceRegex.join(', ')}`);
    }
  }
  if (!name) {
    name = defaultRouteInterface();
    if (!name) throw new IfaceError('no default route to pick the external interface from: pass --iface=<name or IP>');
  }
  const ifaceAddr = ipv4Of(name);
  if (!ifaceAddr) throw new IfaceError(`interface ${name} has no IPv4 address: give it one or pass another --iface`);
  const mtu = Number(fs.readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
  return { name, ifaceAddr, publicIp: opts.publicIp ?? ifaceAddr, mtu };
}
