// The backends flannel-ts understands, and the ones flannel has that it does
// not (yet). Adding a backend (vxlan, host-gw) means adding one entry to
// SUPPORTED_BACKENDS with its option parser; config.ts needs no change.

import { ConfigError } from './errors';

/** What config.ts needs from a backend: its options, checked and defaulted. */
export interface BackendOptions {
  /** The backend's UDP port (udp: the tunnel port). Every node of a network uses the same one. */
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
  if (Object.prototype.hasOwnProperty.call(obj, name)) return { key: name, value: obj[name] };
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
    throw new ConfigError(
      'Backend.Port',
      `Backend.Port ${JSON.stringify(v)} is not a valid port: set it to an integer from 1 to 65535 (or leave it out for the default ${def})`,
    );
  }
  return v;
}

export const UDP_DEFAULT_PORT = 8285;

export const SUPPORTED_BACKENDS: Readonly<Record<string, BackendSpec>> = {
  udp: {
    parse(backend, warnings) {
      warnUnknownKeys(backend, ['Type', 'Port'], 'Backend (udp)', warnings);
      return { port: parsePort(backend, UDP_DEFAULT_PORT) };
    },
  },
};

/** Backend types stock flannel registers that flannel-ts does not implement yet. */
export const FLANNEL_ONLY_BACKENDS: readonly string[] = [
  'vxlan',
  'host-gw',
  'ipip',
  'ipsec',
  'wireguard',
  'alloc',
  'gce',
  'aws-vpc',
  'ali-vpc',
  'tencent-vpc',
  'extension',
];

export function supportedBackendTypes(): string[] {
  return Object.keys(SUPPORTED_BACKENDS);
}
