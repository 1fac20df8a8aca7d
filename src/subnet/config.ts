// The network config flanneld reads from <prefix>/config: parsing, flannel's
// validation rules and defaults (pkg/subnet/config.go), and the few places
// where flannel-ts refuses what it cannot do yet (IPv6, backends other than udp).
//
// JSON keys are matched the way Go's encoding/json matches them (exact, then
// case-insensitive), because stock flannel accepts `{"network": ...}`.

import { type Ip4, Ip4Net, type Ip4Error, formatIp4, parseIp4 } from '../routes/ip4';
import { ConfigError } from './errors';
import { FLANNEL_ONLY_BACKENDS, SUPPORTED_BACKENDS, lookupKey, supportedBackendTypes } from './backends';
import { blockSize } from './subnets';

export interface NetworkConfig {
  /** The whole overlay (FLANNEL_NETWORK), network address. */
  network: Ip4Net;
  /** Prefix length of each node's subnet. */
  subnetLen: number;
  /** Network address of the lowest leasable subnet. */
  subnetMin: Ip4;
  /** Network address of the highest leasable subnet. */
  subnetMax: Ip4;
  /** Lower-cased backend type, e.g. "udp". */
  backendType: string;
  /** The raw `Backend` object as written ({} when absent). */
  backend: Record<string, unknown>;
  /** The backend's port (udp: Backend.Port, default 8285). */
  port: number;
  /** EnableNFTables: flannel's masquerade and forward rules in nftables (table ip flannel-ipv4), not iptables. */
  enableNFTables: boolean;
}

export interface ParsedConfig {
  config: NetworkConfig;
  /** Things that are accepted but probably not what the operator meant. */
  warnings: string[];
}

/** Top-level keys of flannel's Config struct (BackendType is `json:"-"`, so not one). */
const KNOWN_KEYS = [
  'EnableIPv4',
  'EnableIPv6',
  'EnableNFTables',
  'Network',
  'IPv6Network',
  'SubnetMin',
  'SubnetMax',
  'IPv6SubnetMin',
  'IPv6SubnetMax',
  'SubnetLen',
  'IPv6SubnetLen',
  'Backend',
] as const;
type Key = (typeof KNOWN_KEYS)[number];

const EXAMPLE = '{"Network": "10.5.0.0/16", "Backend": {"Type": "udp"}}';

/**
 * Parses and validates a network config document.
 * @throws ConfigError (code FLANNEL_ERR_CONFIG) naming the field to fix.
 */
export function parseNetworkConfig(json: string): ParsedConfig {
  const warnings: string[] = [];
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new ConfigError('', `the network config is not valid JSON (${(e as Error).message}); write an object such as ${EXAMPLE}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ConfigError('', `the network config must be a JSON object such as ${EXAMPLE}, not ${describe(doc)}`);
  }
  const raw = doc as Record<string, unknown>;

  // Pick up the known keys Go-style; everything else is a warning, as Go ignores it.
  const values = new Map<Key, unknown>();
  for (const k of Object.keys(raw)) {
    const known = KNOWN_KEYS.find((n) => n === k) ?? KNOWN_KEYS.find((n) => n.toLowerCase() === k.toLowerCase());
    if (known === undefined) {
      warnings.push(`unknown key "${k}" in the network config is ignored (known keys: ${KNOWN_KEYS.join(', ')})`);
    } else {
      values.set(known, raw[k]);
    }
  }

  // --- address families -------------------------------------------------
  const enableIPv4 = optBool(values, 'EnableIPv4') ?? true;
  const enableIPv6 = optBool(values, 'EnableIPv6') ?? false;
  if (enableIPv6) {
    throw new ConfigError('EnableIPv6', 'EnableIPv6 is true but IPv6 is not supported by flannel-ts yet: remove EnableIPv6 (and the IPv6* keys) or set it to false');
  }
  for (const k of ['IPv6Network', 'IPv6SubnetMin', 'IPv6SubnetMax', 'IPv6SubnetLen'] as const) {
    if (values.has(k)) warnings.push(`${k} is ignored because EnableIPv6 is not true`);
  }
  if (!enableIPv4) {
    throw new ConfigError('EnableIPv4', 'EnableIPv4 is false, but flannel-ts supports only IPv4 networks yet: remove EnableIPv4 or set it to true');
  }
  const enableNFTables = optBool(values, 'EnableNFTables') ?? false;

  // --- types of the IPv4 fields (flannel: json.Unmarshal errors) -------------
  const networkRaw = values.get('Network');
  const subnetLenRaw = values.get('SubnetLen');
  const subnetMinRaw = values.get('SubnetMin');
  const subnetMaxRaw = values.get('SubnetMax');
  const backendRaw = values.get('Backend');

  let network: Ip4Net | undefined;
  if (networkRaw !== undefined) network = parseNetwork(networkRaw, warnings);
  let subnetLen = 0;
  if (subnetLenRaw !== undefined && subnetLenRaw !== null) {
    if (typeof subnetLenRaw !== 'number' || !Number.isInteger(subnetLenRaw) || subnetLenRaw < 0) {
      throw new ConfigError('SubnetLen', `SubnetLen must be a whole number such as 24 (a prefix length), not ${describe(subnetLenRaw)}`);
    }
    subnetLen = subnetLenRaw;
  }
  // Go's zero value (0.0.0.0) means "not set", as in flannel.
  let subnetMin = subnetMinRaw === undefined ? 0 : parseAddress('SubnetMin', subnetMinRaw);
  let subnetMax = subnetMaxRaw === undefined ? 0 : parseAddress('SubnetMax', subnetMaxRaw);
  let backend: Record<string, unknown> = {};
  if (backendRaw !== undefined && backendRaw !== null) {
    if (typeof backendRaw !== 'object' || Array.isArray(backendRaw)) {
      throw new ConfigError('Backend', `Backend must be an object such as {"Type": "udp"}, not ${describe(backendRaw)}`);
    }
    backend = backendRaw as Record<string, unknown>;
  }
  const typeEntry = lookupKey(backend, 'Type');
  if (typeEntry !== undefined && typeEntry.value !== null && typeof typeEntry.value !== 'string') {
    throw new ConfigError('Backend.Type', `Backend.Type must be a string such as "udp", not ${describe(typeEntry.value)}`);
  }

  // --- flannel's CheckNetworkConfig, IPv4 half -----------------------------
  if (network === undefined || network.prefixLen === 0) {
    // flannel: "please define a correct Network parameter in the flannel config" (0.0.0.0/0 counts as unset)
    throw new ConfigError(
      'Network',
      network === undefined
        ? `Network is missing: set it to the overlay's IPv4 range in CIDR form, e.g. ${EXAMPLE}`
        : `Network ${network} is the whole address space: set it to the overlay's IPv4 range, e.g. "10.5.0.0/16"`,
    );
  }
  if (subnetLen > 0) {
    if (subnetLen > 30) {
      // flannel: "SubnetLen must be less than /31" (each host needs room for a tunnel and a bridge address)
      throw new ConfigError('SubnetLen', `SubnetLen ${subnetLen} is too long: it must be at most 30 (flannel: "SubnetLen must be less than /31")`);
    }
    if (subnetLen < network.prefixLen + 2) {
      // flannel: "network must be able to accommodate at least four subnets"
      throw new ConfigError(
        'SubnetLen',
        `SubnetLen ${subnetLen} is too short for Network ${network}: the network must hold at least four subnets, ` +
          `so SubnetLen must be at least ${network.prefixLen + 2}` +
          (network.prefixLen + 2 > 30 ? ` (impossible for a /${network.prefixLen}: use a Network of /28 or larger)` : ''),
      );
    }
  } else if (network.prefixLen > 28) {
    // flannel: "network is too small. Minimum useful network prefix is /28"
    throw new ConfigError('Network', `Network ${network} is too small: the smallest useful Network is a /28 (four /30 subnets); use a shorter prefix`);
  } else {
    // A /24 per host when the Network has room for four of them, else a quarter of the Network.
    subnetLen = network.prefixLen <= 22 ? 24 : network.prefixLen + 2;
  }

  const size = blockSize(subnetLen);
  const mask = subnetLen === 0 ? 0 : (0xffffffff << (32 - subnetLen)) >>> 0;
  if (subnetMin === 0) {
    // The first subnet is skipped: its .0 is the Network's own address.
    subnetMin = network.ip + size;
  } else if (!network.contains(subnetMin)) {
    throw new ConfigError('SubnetMin', `SubnetMin ${formatIp4(subnetMin)} is not in Network ${network}: pick an address inside it, or leave SubnetMin out`);
  }
  if (subnetMax === 0) {
    subnetMax = network.ip + network.size - size;
  } else if (!network.contains(subnetMax)) {
    throw new ConfigError('SubnetMax', `SubnetMax ${formatIp4(subnetMax)} is not in Network ${network}: pick an address inside it, or leave SubnetMax out`);
  }
  if ((subnetMin & mask) >>> 0 !== subnetMin) {
    throw new ConfigError(
      'SubnetMin',
      `SubnetMin ${formatIp4(subnetMin)} is not on a SubnetLen (/${subnetLen}) boundary: use ${formatIp4((subnetMin & mask) >>> 0)} or another multiple of ${size} addresses`,
    );
  }
  if ((subnetMax & mask) >>> 0 !== subnetMax) {
    throw new ConfigError(
      'SubnetMax',
      `SubnetMax ${formatIp4(subnetMax)} is not on a SubnetLen (/${subnetLen}) boundary: use ${formatIp4((subnetMax & mask) >>> 0)} or another multiple of ${size} addresses`,
    );
  }
  // Not checked by flannel (it would just find no free subnet later), but always a mistake.
  if (subnetMax < subnetMin) {
    throw new ConfigError('SubnetMax', `SubnetMax ${formatIp4(subnetMax)} is below SubnetMin ${formatIp4(subnetMin)}: swap them or widen the range`);
  }

  // --- backend -------------------------------------------------------------
  let backendType = typeof typeEntry?.value === 'string' ? typeEntry.value.toLowerCase() : '';
  if (backendType === '') {
    if (backendRaw === undefined || backendRaw === null) {
      backendType = 'udp'; // flannel's default when the config has no Backend at all
    } else {
      // Stock flanneld refuses this ("unknown backend type: "); we take udp but say so.
      backendType = 'udp';
      warnings.push('Backend has no Type: using "udp" (stock flanneld refuses a Backend without Type; add "Type": "udp")');
    }
  }
  const spec = Object.hasOwn(SUPPORTED_BACKENDS, backendType) ? SUPPORTED_BACKENDS[backendType] : undefined;
  if (spec === undefined) {
    const supported = supportedBackendTypes().join(', ');
    if (FLANNEL_ONLY_BACKENDS.includes(backendType)) {
      throw new ConfigError('Backend.Type', `Backend.Type "${backendType}" is not supported by flannel-ts yet (supported: ${supported})`);
    }
    throw new ConfigError('Backend.Type', `Backend.Type "${String(typeEntry?.value)}" is not a backend type flannel knows (flannel-ts supports: ${supported})`);
  }
  const { port } = spec.parse(backend, warnings);

  return {
    config: { network, subnetLen, subnetMin: subnetMin >>> 0, subnetMax: subnetMax >>> 0, backendType, backend, port, enableNFTables },
    warnings,
  };
}

function optBool(values: Map<Key, unknown>, key: Key): boolean | undefined {
  const v = values.get(key);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ConfigError(key, `${key} must be true or false, not ${describe(v)}`);
  return v;
}

function parseNetwork(v: unknown, warnings: string[]): Ip4Net {
  if (typeof v !== 'string') {
    throw new ConfigError('Network', `Network must be a string in CIDR form such as "10.5.0.0/16", not ${describe(v)}`);
  }
  if (v.includes(':')) {
    throw new ConfigError('Network', `Network "${v}" is not an IPv4 CIDR: IPv6 is not supported by flannel-ts yet; use an IPv4 range such as "10.5.0.0/16"`);
  }
  let net: Ip4Net;
  try {
    net = Ip4Net.parse(v);
  } catch (e) {
    throw new ConfigError('Network', `Network "${v}" is not an IPv4 CIDR (${(e as Ip4Error).message}); write it like "10.5.0.0/16"`);
  }
  if (net.ip !== parseIp4(v.slice(0, v.indexOf('/')))) {
    // flannel masks silently (net.ParseCIDR); we do the same but point it out.
    warnings.push(`Network "${v}" has host bits set; using ${net}`);
  }
  return net;
}

function parseAddress(field: 'SubnetMin' | 'SubnetMax', v: unknown): Ip4 {
  if (typeof v !== 'string') {
    throw new ConfigError(field, `${field} must be a string holding an IPv4 address such as "10.5.1.0", not ${describe(v)}`);
  }
  try {
    return parseIp4(v);
  } catch {
    throw new ConfigError(field, `${field} "${v}" is not an IPv4 address: write the subnet's network address, e.g. "10.5.1.0"`);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array (${truncate(JSON.stringify(v))})`;
  if (typeof v === 'string') return `the string ${truncate(JSON.stringify(v))}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${truncate(JSON.stringify(v))}`;
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
