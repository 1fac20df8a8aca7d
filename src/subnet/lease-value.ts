// The JSON value of a subnet key: flannel's LeaseAttrs as Go's json.Marshal
// writes it. Field order and the explicit `"PublicIPv6":null` matter to
// anyone diffing etcd dumps between stock flannel and flannel-ts nodes.

import { type Ip4, formatIp4, isIp4, parseIp4 } from '../routes/ip4';
import { lookupKey } from './backends';

export interface LeaseAttrs {
  publicIp: Ip4;
  /** Written as BackendType; flannel omits it when empty (omitempty). */
  backendType: string;
  /** Written as BackendData when defined (omitempty); udp has none. */
  backendData?: unknown;
}

/**
 * flannel's encoding: {"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"udp"}
 * (PublicIPv6 is a nil pointer without omitempty, hence null; BackendData
 * and BackendV6Data are omitempty and absent for udp).
 */
export function formatLeaseValue(a: LeaseAttrs): string {
  let s = `{"PublicIP":${JSON.stringify(formatIp4(a.publicIp))},"PublicIPv6":null`;
  if (a.backendType !== '') s += `,"BackendType":${JSON.stringify(a.backendType)}`;
  if (a.backendData !== undefined) s += `,"BackendData":${JSON.stringify(a.backendData)}`;
  return `${s}}`;
}

/**
 * Reads a lease value written by any flannel. Keys match case-insensitively
 * (Go's rule). A missing BackendType means udp: stock flannel's udp backend is
 * the one backend that does not set it. Returns a reason string when the
 * value is unusable.
 */
export function parseLeaseValue(text: string): LeaseAttrs | string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return `value is not JSON (${(e as Error).message})`;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'value is not a JSON object';
  const obj = doc as Record<string, unknown>;
  const ip = lookupKey(obj, 'PublicIP')?.value;
  if (typeof ip !== 'string' || !isIp4(ip)) return `PublicIP ${JSON.stringify(ip)} is not an IPv4 address`;
  const bt = lookupKey(obj, 'BackendType')?.value;
  if (bt !== undefined && bt !== null && typeof bt !== 'string') return `BackendType ${JSON.stringify(bt)} is not a string`;
  const data = lookupKey(obj, 'BackendData')?.value;
  const attrs: LeaseAttrs = { publicIp: parseIp4(ip), backendType: typeof bt === 'string' && bt !== '' ? bt : 'udp' };
  if (data !== undefined && data !== null) attrs.backendData = data;
  return attrs;
}
