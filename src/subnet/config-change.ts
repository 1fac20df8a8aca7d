// What changed between the network config a daemon runs with and the one now
// in etcd. flannel reads the config only at start; flannel-ts does the same
// (the running overlay keeps its Network, subnet and port) but says so when
// etcd holds something else, naming each field, so an operator knows a
// restart is pending.

import { formatIp4 } from '../routes/ip4';
import { type NetworkConfig, parseNetworkConfig } from './config';
import { errorMessage } from './errors';

/**
 * undefined when `text` is the same config as `running` (formatting and key
 * case aside); otherwise a phrase naming the difference, e.g.
 * "SubnetLen 24 → 26, Backend.Port 8285 → 8286", "it was deleted" or
 * "it is now invalid: SubnetLen ...".
 */
export function describeConfigChange(running: NetworkConfig, text: string | undefined): string | undefined {
  if (text === undefined) return 'it was deleted';
  let now: NetworkConfig;
  try {
    now = parseNetworkConfig(text).config;
  } catch (e) {
    return `it is now invalid (${errorMessage(e)})`;
  }
  return describeConfigDifference(running, now);
}

/** undefined when `a` and `b` are the same network config; else what differs, field by field (a → b). */
export function describeConfigDifference(running: NetworkConfig, now: NetworkConfig): string | undefined {
  const changes: string[] = [];
  const cmp = (field: string, a: string | number, b: string | number) => {
    if (a !== b) changes.push(`${field} ${a} → ${b}`);
  };
  cmp('Network', running.network.toString(), now.network.toString());
  cmp('SubnetLen', running.subnetLen, now.subnetLen);
  cmp('SubnetMin', formatIp4(running.subnetMin), formatIp4(now.subnetMin));
  cmp('SubnetMax', formatIp4(running.subnetMax), formatIp4(now.subnetMax));
  cmp('Backend.Type', running.backendType, now.backendType);
  cmp('Backend.Port', running.port, now.port);
  cmp('EnableNFTables', String(running.enableNFTables), String(now.enableNFTables));
  // Any other backend option (vxlan's VNI, DirectRouting...), by key, case as written.
  const others = (b: Record<string, unknown>) =>
    new Map(
      Object.entries(b)
        .filter(([k]) => !/^(type|port)$/i.test(k))
        .map(([k, v]) => [k.toLowerCase(), { k, v: JSON.stringify(v) }]),
    );
  const was = others(running.backend);
  const is = others(now.backend);
  for (const [lk, { k, v }] of is) {
    const old = was.get(lk);
    if (!old) changes.push(`Backend.${k} added (${v})`);
    else if (old.v !== v) changes.push(`Backend.${k} ${old.v} → ${v}`);
  }
  for (const [lk, { k }] of was) if (!is.has(lk)) changes.push(`Backend.${k} removed`);
  return changes.length === 0 ? undefined : changes.join(', ');
}
