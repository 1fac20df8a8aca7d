// Choosing the external interface as flanneld does (upstream's
// ipmatch.LookupExtIface):
//  - with none of --iface, --iface-regex, --iface-can-reach: the interface
//    holding --public-ip if given (its address is that IP; no such interface
//    is an error), else the interface of the default route;
//  - else each --iface (a name, or an IP: the interface holding it, with THAT
//    address), then each --iface-regex (names and IPs), then
//    --iface-can-reach (the interface of the route to that address, and the
//    route's source address, as `ip route get <address>` shows);
//    nothing matching is an error.
// The public IP is --public-ip, else the interface address.

import * as fs from 'node:fs';
import * as os from 'node:os';
import type { ExternalInterface } from '../util/external-interface';
import { FlannelError } from '../util/errors';
import { execStatus } from '../util/exec';

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

/** `ip -j route get <addr>`: the device and source address the kernel would use. */
export async function routeTo(addr: string): Promise<{ dev: string; src?: string } | undefined> {
  const r = await execStatus(['ip', '-j', '-4', 'route', 'get', addr], { timeoutMs: 10_000 });
  if (r.status !== 0) return undefined;
  try {
    const [route] = JSON.parse(r.stdout) as { dev?: string; prefsrc?: string }[];
    return route?.dev ? { dev: route.dev, src: route.prefsrc } : undefined;
  } catch {
    return undefined;
  }
}

export interface IfaceOptions {
  iface: string[];
  ifaceRegex: string[];
  /** --iface-can-reach; '' when not given. */
  ifaceCanReach?: string;
  publicIp?: string;
}

export async function findExternalInterface(opts: IfaceOptions): Promise<ExternalInterface> {
  let name: string | undefined;
  let addr: string | undefined;
  const canReach = opts.ifaceCanReach ?? '';
  const explicit = opts.iface.length > 0 || opts.ifaceRegex.length > 0 || canReach !== '';
  if (!explicit) {
    if (opts.publicIp) {
      name = byAddress(opts.publicIp);
      if (!name) {
        throw new IfaceError(
          `no interface here holds --public-ip ${opts.publicIp} (flanneld uses the interface with that address when no --iface is given): ` +
            'add the address to an interface, or pass --iface=<name or IP> for the interface to send from (e.g. behind NAT)',
        );
      }
      addr = opts.publicIp;
    } else {
      name = defaultRouteInterface();
      if (!name) throw new IfaceError('no default route to pick the external interface from: pass --iface=<name or IP>');
    }
  }
  for (const spec of opts.iface) {
    if (name) break;
    if (/^\d+\.\d+\.\d+\.\d+$/.test(spec)) {
      name = byAddress(spec);
      if (name) addr = spec; // the address given, not the interface's first
    } else if (ipv4Of(spec) !== undefined) {
      name = spec;
    }
  }
  for (const re of opts.ifaceRegex) {
    if (name) break;
    const rx = new RegExp(re);
    for (const [n, addrs] of Object.entries(os.networkInterfaces())) {
      const v4 = addrs?.filter((a) => a.family === 'IPv4' && !a.internal) ?? [];
      if (rx.test(n) && v4.length > 0) {
        name = n;
        break;
      }
      const hit = v4.find((a) => rx.test(a.address));
      if (hit) {
        name = n;
        addr = hit.address;
        break;
      }
    }
  }
  if (!name && canReach !== '') {
    const r = await routeTo(canReach);
    if (r) {
      name = r.dev;
      addr = r.src;
    }
  }
  if (!name) {
    const tried = [
      opts.iface.length ? `--iface ${opts.iface.join(', ')}` : '',
      opts.ifaceRegex.length ? `--iface-regex ${opts.ifaceRegex.join(', ')}` : '',
      canReach ? `--iface-can-reach ${canReach} (no route to it: see "ip route get ${canReach}")` : '',
    ].filter(Boolean);
    throw new IfaceError(`no interface with an IPv4 address matches ${tried.join(', nor ')} (see "ip -4 addr")`);
  }
  const ifaceAddr = addr ?? ipv4Of(name);
  if (!ifaceAddr) throw new IfaceError(`interface ${name} has no IPv4 address: give it one or pass another --iface`);
  const mtu = Number(fs.readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
  return { name, ifaceAddr, publicIp: opts.publicIp ?? ifaceAddr, mtu };
}
