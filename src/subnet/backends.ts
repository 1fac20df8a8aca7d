// The backends flannel-ts understands (udp, vxlan, host-gw), and the ones
// flannel has that it does not (yet). Adding a backend means adding one entry
// to SUPPORTED_BACKENDS with its option parser; config.ts needs no change.

import { ConfigError } from './errors';

/** What config.ts needs from a backend: its options, checked and defaulted. */
export interface BackendOptions {
  /** The backend's UDP port (udp: the tunnel port, vxlan: dstport, host-gw: 0). Every node of a network uses the same one. */
  port: number;
}

export interface BackendSpec {
  /**
   * Checks the raw `Backend` object (keys as the operator wrote them) and
   * returns the options with defaults applied. Throws ConfigError naming
   * "Backend.<Key>"; pushes a warning for keys it does not know.
   */
  parse(backend: Record<string, unknown>, warnings: string[]): BackendOptions;
}

/** Looks a key up the way Go's encoding/json does: exact match first, then case-insensitively. */
export function lookupKey(obj: Record<string, unknown>, name: string): { key: string; value: unknown } | undefined {
  if (Object.hasOwn(obj, name)) return { key: name, value: obj[name] };
  const lower = name.toLowerCase();
  let found: { key: string; value: unknown } | undefined;
  for (const k of Object.keys(obj)) {
    if (k.toLowerCase() === lower) found = { key: k, value: obj[k] }; // last one wins, as in Go
  }
  return found;
}

function warnUnknownKeys(obj: Record<string, unknown>, known: string[], where: string, warnings: string[]): void {
  const lower = new Set(known.map((k) => k.toLowerCase()));
  for (const k of Object.keys(obj)) {
    if (!lower.has(k.toLowerCase())) warnings.push(`${where}: unknown key "${k}" is ignored`);
  }
}

/** A UDP/TCP port option: an integer 1..65535, or the default when absent/null. */
function parsePort(backend: Record<string, unknown>, def: number): number {
  const p = lookupKey(backend, 'Port');
  if (p === undefined || p.value === null) return def;
  const v = p.value;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    throw new ConfigError('Backend.Port', `Backend.Port ${JSON.stringify(v)} is not a valid port: set it to an integer from 1 to 65535 (or leave it out for the default ${def})`);
  }
  return v;
}

export const UDP_DEFAULT_PORT = 8285;
/** The kernel's own VXLAN port (Linux's default when dstport is 0; flannel leaves Port 0 to the kernel). */
export const VXLAN_DEFAULT_PORT = 8472;
export const VXLAN_DEFAULT_VNI = 1;
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers: flannel's encapOverhead. */
export const VXLAN_OVERHEAD = 50;
const VNI_MAX = 0xffffff; // 24 bits on the wire

/**
 * flannel's VXLANConfig (pkg/backend/vxlan/vxlan.go), checked as Go's
 * json.Unmarshal would check it (numbers must be whole, booleans must be
 * booleans, null keeps the default), plus the ranges the kernel enforces,
 * so a bad value is a config error naming the key rather than a failed
 * `ip link add` later.
 */
export interface VxlanOptions {
  /** VXLAN network identifier, 0..16777215; the device is flannel.<VNI>. Default 1. */
  vni: number;
  /** UDP destination port. Default 8472 (Port 0, flannel's zero value, means the kernel default, also 8472). */
  port: number;
  /** The external interface's MTU to derive from (flannel's Backend.MTU); undefined: the interface's own. */
  mtu?: number;
  /** VXLAN Group Based Policy extension. Default false. */
  gbp: boolean;
  /** Let the kernel learn remote MACs from received packets. Default false (flannel programs the fdb itself). */
  learning: boolean;
  /** Peers on the same link get a plain route via their public IP (no encapsulation). Default false. */
  directRouting: boolean;
}

function optInteger(backend: Record<string, unknown>, key: string, min: number, max: number, hint: string): number | undefined {
  const e = lookupKey(backend, key);
  if (e === undefined || e.value === null) return undefined;
  const v = e.value;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(`Backend.${key}`, `Backend.${key} ${JSON.stringify(v)} is not valid: ${hint}`);
  }
  return v;
}

function optBoolean(backend: Record<string, unknown>, key: string): boolean | undefined {
  const e = lookupKey(backend, key);
  if (e === undefined || e.value === null) return undefined;
  if (typeof e.value !== 'boolean') {
    throw new ConfigError(`Backend.${key}`, `Backend.${key} must be true or false, not ${JSON.stringify(e.value)}`);
  }
  return e.value;
}

const VXLAN_KEYS = ['Type', 'VNI', 'Port', 'MTU', 'GBP', 'Learning', 'DirectRouting'];

/** Parses vxlan's Backend object. @throws ConfigError naming Backend.<Key>. */
export function parseVxlanOptions(backend: Record<string, unknown>, warnings: string[] = []): VxlanOptions {
  warnUnknownKeys(backend, VXLAN_KEYS, 'Backend (vxlan)', warnings);
  const vni = optInteger(backend, 'VNI', 0, VNI_MAX, `set it to an integer from 0 to ${VNI_MAX} (or leave it out for the default ${VXLAN_DEFAULT_VNI})`);
  const port = optInteger(backend, 'Port', 0, 65535, `set it to an integer from 1 to 65535 (or leave it out for the default ${VXLAN_DEFAULT_PORT})`);
  const mtu = optInteger(
    backend,
    'MTU',
    68 + VXLAN_OVERHEAD,
    65535,
    `it is the underlay MTU flannel.<VNI> is derived from (minus ${VXLAN_OVERHEAD}): an integer from ${68 + VXLAN_OVERHEAD} to 65535, or leave it out to use the interface's`,
  );
  return {
    vni: vni ?? VXLAN_DEFAULT_VNI,
    port: port === undefined || port === 0 ? VXLAN_DEFAULT_PORT : port,
    ...(mtu !== undefined ? { mtu } : {}),
    gbp: optBoolean(backend, 'GBP') ?? false,
    learning: optBoolean(backend, 'Learning') ?? false,
    directRouting: optBoolean(backend, 'DirectRouting') ?? false,
  };
}

export const SUPPORTED_BACKENDS: Readonly<Record<string, BackendSpec>> = {
  udp: {
    parse(backend, warnings) {
      warnUnknownKeys(backend, ['Type', 'Port'], 'Backend (udp)', warnings);
      return { port: parsePort(backend, UDP_DEFAULT_PORT) };
    },
  },
  vxlan: {
    parse(backend, warnings) {
      return { port: parseVxlanOptions(backend, warnings).port };
    },
  },
  'host-gw': {
    // flannel's host-gw reads no options: it routes, it has no port.
    parse(backend, warnings) {
      const port = lookupKey(backend, 'Port');
      if (port !== undefined) warnings.push('Backend (host-gw): host-gw has no port (it routes without encapsulation); Backend.Port is ignored');
      warnUnknownKeys(backend, ['Type', 'Port'], 'Backend (host-gw)', warnings);
      return { port: 0 };
    },
  },
};

/** Backend types stock flannel registers that flannel-ts does not implement yet. */
export const FLANNEL_ONLY_BACKENDS: readonly string[] = ['ipip', 'ipsec', 'wireguard', 'alloc', 'gce', 'aws-vpc', 'ali-vpc', 'tencent-vpc', 'extension'];

export function supportedBackendTypes(): string[] {
  return Object.keys(SUPPORTED_BACKENDS);
}
