// The flannel CNI plugin's inputs and the delegate config it builds, as
// flannel's cni-plugin (flannel.go, flannel_linux.go) does:
//   - its network config: the spec's keys plus `subnetFile` (default
//     /run/flannel/subnet.env), `dataDir` (default /var/lib/cni/flannel),
//     `delegate` (keys for the delegated plugin) and `ipam` (a base for the
//     delegate's IPAM section);
//   - subnet.env: FLANNEL_NETWORK, FLANNEL_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ
//     (and the IPv6 pair a dual-stack flanneld writes);
//   - the delegate config: bridge by default, `isGateway` true, `ipMasq` the
//     inverse of FLANNEL_IPMASQ, `mtu` FLANNEL_MTU (each unless the delegate
//     section sets it), host-local IPAM over the node subnet with a route to
//     the whole Network.
// Everything here is pure except loadSubnetEnv, which reads one file.

import * as fs from 'node:fs';
import { CidrError, parseCidr } from './cidr';
import { CNI_CODES, CniError, errorText } from './errors';
import { parseEnvText } from '../util/env-file';

export const DEFAULT_SUBNET_FILE = '/run/flannel/subnet.env';
export const DEFAULT_DATA_DIR = '/var/lib/cni/flannel';

type Obj = Record<string, unknown>;

export interface FlannelNetConf {
  /** cniVersion as given ("" when absent, which the spec reads as 0.1.0). */
  cniVersion: string;
  name: string;
  type: string;
  subnetFile: string;
  dataDir: string;
  delegate?: Obj;
  ipam?: Obj;
  runtimeConfig?: Obj;
  /** The result of the previous plugin in a chain (CHECK, and DEL from 0.4.0). */
  prevResult?: Obj;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A key as Go's encoding/json finds a struct field: the exact name, else
 * any key equal to it ignoring case.
 */
function field(o: Obj, name: string): unknown {
  if (name in o) return o[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k];
  return undefined;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * Parses the config's JSON and checks what every plugin checks (skel's
 * validateConfig): JSON (else code 6) with a valid `name` (else code 7).
 */
export function parseConfJson(bytes: Buffer | string): Obj {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString());
  } catch (e) {
    throw new CniError(CNI_CODES.decodingFailure, `error unmarshall network config: ${errorText(e)}`);
  }
  if (!isObj(v)) throw new CniError(CNI_CODES.decodingFailure, 'error unmarshall network config: the network config must be a JSON object');
  const name = field(v, 'name');
  if (name !== undefined && name !== null && typeof name !== 'string') {
    throw new CniError(CNI_CODES.decodingFailure, 'error unmarshall network config: "name" must be a string');
  }
  if (!name) throw new CniError(CNI_CODES.invalidNetworkConfig, 'missing network name');
  if (!NAME_RE.test(name)) throw new CniError(CNI_CODES.invalidNetworkConfig, 'invalid characters found in network name', name);
  const ver = field(v, 'cniVersion');
  if (ver !== undefined && ver !== null && typeof ver !== 'string') {
    throw new CniError(CNI_CODES.decodingFailure, 'decoding version from network config: "cniVersion" must be a string');
  }
  return v;
}

/** cniVersion of a parsed config ("" when absent). */
export function confVersion(o: Obj): string {
  const v = field(o, 'cniVersion');
  return typeof v === 'string' ? v : '';
}

/** flannel's loadFlannelNetConf: the config with flannel's keys and defaults. Wrong types are code 7. */
export function parseFlannelConf(o: Obj): FlannelNetConf {
  const str = (k: string, def: string): string => {
    const v = field(o, k);
    if (v === undefined || v === null || v === '') return def;
    if (typeof v !== 'string') throw new CniError(CNI_CODES.invalidNetworkConfig, `failed to load netconf: "${k}" must be a string`);
    return v;
  };
  const obj = (k: string): Obj | undefined => {
    const v = field(o, k);
    if (v === undefined || v === null) return undefined;
    if (!isObj(v)) throw new CniError(CNI_CODES.invalidNetworkConfig, `failed to load netconf: "${k}" must be a JSON object`);
    return v;
  };
  return {
    cniVersion: confVersion(o),
    name: str('name', ''),
    type: str('type', ''),
    subnetFile: str('subnetFile', DEFAULT_SUBNET_FILE),
    dataDir: str('dataDir', DEFAULT_DATA_DIR),
    delegate: obj('delegate'),
    ipam: obj('ipam'),
    runtimeConfig: obj('runtimeConfig'),
    prevResult: obj('prevResult'),
  };
}

export interface FlannelSubnetEnv {
  /** FLANNEL_NETWORK: canonical CIDRs, duplicates removed. */
  networks: string[];
  /** FLANNEL_SUBNET as a network ("10.1.17.1/24" → "10.1.17.0/24"). */
  subnet?: string;
  ip6Networks: string[];
  ip6Subnet?: string;
  mtu: number;
  ipMasq: boolean;
}

/**
 * Parses subnet.env's text as flannel's loadFlannelSubnetEnv does (KEY=VALUE
 * lines; unknown keys ignored). `file` names the file in messages.
 * @throws CniError code 6 for a bad value or missing keys.
 */
export function parseSubnetEnv(text: string, file: string): FlannelSubnetEnv {
  const env: Partial<FlannelSubnetEnv> & { networks: string[]; ip6Networks: string[] } = { networks: [], ip6Networks: [] };
  let haveNet = false;
  let haveNet6 = false;
  const bad = (msg: string) => new CniError(CNI_CODES.decodingFailure, `failed to load flannel 'subnet.env' file: ${file}: ${msg}`);
  const cidr = (key: string, v: string) => {
    try {
      return parseCidr(v.trim()).text;
    } catch (e) {
      throw bad(`${key}: ${e instanceof CidrError ? e.message : errorText(e)}`);
    }
  };
  for (const [key, value] of parseEnvText(text)) {
    switch (key) {
      case 'FLANNEL_NETWORK':
      case 'FLANNEL_IPV6_NETWORK': {
        const list = value.split(',').map((c) => cidr(key, c));
        const uniq = [...new Set(list)];
        if (key === 'FLANNEL_NETWORK') {
          env.networks = uniq;
          haveNet = true;
        } else {
          env.ip6Networks = uniq;
          haveNet6 = true;
        }
        break;
      }
      case 'FLANNEL_SUBNET':
        env.subnet = cidr(key, value);
        break;
      case 'FLANNEL_IPV6_SUBNET':
        env.ip6Subnet = cidr(key, value);
        break;
      case 'FLANNEL_MTU':
        if (!/^\d+$/.test(value) || Number(value) > 0xffffffff) throw bad(`FLANNEL_MTU: "${value}" is not a number`);
        env.mtu = Number(value);
        break;
      case 'FLANNEL_IPMASQ':
        env.ipMasq = value === 'true';
        break;
    }
  }
  const missing: string[] = [];
  if (!haveNet && !haveNet6) missing.push('FLANNEL_NETWORK', 'FLANNEL_IPV6_NETWORK');
  if (env.subnet === undefined && env.ip6Subnet === undefined) missing.push('FLANNEL_SUBNET', 'FLANNEL_IPV6_SUBNET');
  if (env.mtu === undefined) missing.push('FLANNEL_MTU');
  if (env.ipMasq === undefined) missing.push('FLANNEL_IPMASQ');
  if (missing.length > 0) throw bad(`is missing ${missing.join(', ')}`);
  return env as FlannelSubnetEnv;
}

/**
 * Reads and parses subnet.env.
 * @throws CniError code 11 (try again later) when the file does not exist:
 *   flanneld writes it once it holds a lease; code 5 when it cannot be read;
 *   code 6 when its content is wrong.
 */
export function loadSubnetEnv(file: string): FlannelSubnetEnv {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CniError(
        CNI_CODES.tryAgainLater,
        `failed to load flannel 'subnet.env' file: ${file} does not exist. Check that flanneld runs on this node: it writes the file once it holds a subnet lease`,
      );
    }
    throw new CniError(CNI_CODES.ioFailure, `failed to load flannel 'subnet.env' file: cannot read ${file}: ${errorText(e)}`);
  }
  return parseSubnetEnv(text, file);
}

/** ipam.routes of the flannel config, checked as types.Route would parse them (code 7 if not). */
function ipamRoutes(ipam: Obj | undefined): Obj[] {
  const routes = ipam?.routes;
  if (routes === undefined || routes === null) return [];
  const fail = (why: string) => new CniError(CNI_CODES.invalidNetworkConfig, `failed to assemble Delegate IPAM: failed to read IPAM routes: failed to parse ipam.routes: ${why}`);
  if (!Array.isArray(routes)) throw fail('must be a list of routes');
  return routes.map((r, i) => {
    if (!isObj(r) || typeof r.dst !== 'string') throw fail(`route ${i} needs "dst" (a CIDR)`);
    try {
      parseCidr(r.dst);
    } catch (e) {
      throw fail(`route ${i}: ${errorText(e)}`);
    }
    if (r.gw !== undefined && typeof r.gw !== 'string') throw fail(`route ${i}: "gw" must be an IP address`);
    return r;
  });
}

/** flannel's getDelegateIPAM: the config's ipam section completed with the node subnet and Network routes. */
export function delegateIpam(conf: FlannelNetConf, env: FlannelSubnetEnv): Obj {
  const ipam: Obj = { ...(conf.ipam ?? {}) };
  if (!('type' in ipam)) ipam.type = 'host-local';
  const ranges: Obj[][] = [];
  if (env.subnet) ranges.push([{ subnet: env.subnet }]);
  if (env.ip6Subnet) ranges.push([{ subnet: env.ip6Subnet }]);
  ipam.ranges = ranges;
  const routes = ipamRoutes(conf.ipam);
  for (const nw of env.networks) routes.push({ dst: nw });
  for (const nw of env.ip6Networks) routes.push({ dst: nw });
  ipam.routes = routes;
  return ipam;
}

/**
 * flannel's cmdAdd + doCmdAdd: the config handed to the delegated plugin.
 * The `delegate` section's own keys win, except `name` and `ipam` (set by
 * flannel; giving them is an error, code 7).
 */
export function buildDelegateConf(conf: FlannelNetConf, env: FlannelSubnetEnv): Obj {
  const d: Obj = { ...(conf.delegate ?? {}) };
  if ('type' in d && typeof d.type !== 'string') {
    throw new CniError(CNI_CODES.invalidNetworkConfig, "'delegate' dictionary, if present, must have (string) 'type' field");
  }
  if ('name' in d) throw new CniError(CNI_CODES.invalidNetworkConfig, "'delegate' dictionary must not have 'name' field, it'll be set by flannel");
  if ('ipam' in d) throw new CniError(CNI_CODES.invalidNetworkConfig, "'delegate' dictionary must not have 'ipam' field, it'll be set by flannel");
  if (conf.runtimeConfig) d.runtimeConfig = conf.runtimeConfig;
  d.name = conf.name;
  if (!('type' in d)) d.type = 'bridge';
  // If flanneld is not masquerading, the bridge should.
  if (!('ipMasq' in d)) d.ipMasq = !env.ipMasq;
  if (!('mtu' in d)) d.mtu = env.mtu;
  if (d.type === 'bridge' && !('isGateway' in d)) d.isGateway = true;
  if (conf.cniVersion !== '') d.cniVersion = conf.cniVersion;
  d.ipam = delegateIpam(conf, env);
  return d;
}

/**
 * JSON with object keys sorted at every level, no spaces: how Go's
 * json.Marshal prints a map, so the file saved per container reads like the
 * one flannel's plugin saves (Go also escapes <, > and & as \u003c...).
 */
export function marshalSorted(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : marshalSorted(x))).join(',')}]`;
  if (isObj(v)) {
    const parts: string[] = [];
    for (const k of Object.keys(v).sort()) {
      if (v[k] === undefined) continue;
      parts.push(`${JSON.stringify(k)}:${marshalSorted(v[k])}`);
    }
    return `{${parts.join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
