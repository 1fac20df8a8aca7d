// `flannel-ts cleanup`: removes what flanneld installs on a host and leaves
// behind on purpose (rules outlive a stop so pods keep their egress across a
// restart): flannel's iptables chains and jumps (FLANNEL-POSTRTG, FLANNEL-FWD),
// its nftables table (ip flannel-ipv4), the --ip-blackhole-route route for the
// subnet in the subnet file, the devices flannel0 and flannel.1 if still
// there, and the restart state (<subnet-file>.peers.json). It keeps
// subnet.env and the lease in etcd (pods and the CNI plugin still use them;
// the README says how to remove a lease). Run it with flanneld stopped.

import * as fs from 'node:fs';
import { createTrafficManager } from '../iptables';
import { onPath } from '../iptables/exec';
import { readSubnetFile } from '../subnet/subnet-env';
import { execStatus } from '../util/exec';
import { type Logger, silentLogger } from '../util/log';
import { restartStatePath } from '../subnet/restart-state';

export interface CleanupReport {
  removed: string[];
  failed: string[];
}

export async function cleanupHost(subnetFile: string, log: Logger): Promise<CleanupReport> {
  const report: CleanupReport = { removed: [], failed: [] };
  // The managers' own "Removed ..." lines would repeat what the report prints.
  const quiet = silentLogger;
  for (const [mode, tool, what] of [
    ['iptables', 'iptables-save', 'iptables chains FLANNEL-POSTRTG and FLANNEL-FWD with their jumps'],
    ['nftables', 'nft', 'nftables table ip flannel-ipv4'],
  ] as const) {
    if (!onPath(tool)) continue; // nothing of this mode can exist without its tool
    try {
      if (await createTrafficManager(mode, { log: quiet, randomFully: false }).removeAll()) report.removed.push(what);
    } catch (e) {
      report.failed.push(`${what}: ${(e as Error).message}`);
    }
  }
  const subnet = readSubnetFile(subnetFile, log);
  if (subnet) {
    const r = await execStatus(['ip', 'route', 'del', 'blackhole', subnet.toString()]);
    if (r.status === 0) report.removed.push(`blackhole route ${subnet}`);
  }
  for (const dev of ['flannel0', 'flannel.1']) {
    if (!fs.existsSync(`/sys/class/net/${dev}`)) continue;
    const r = await execStatus(['ip', 'link', 'del', dev]);
    if (r.status === 0) report.removed.push(`device ${dev}`);
    else report.failed.push(`device ${dev}: ${r.stderr.trim()}`);
  }
  const state = restartStatePath(subnetFile);
  if (fs.existsSync(state)) {
    fs.rmSync(state, { force: true });
    report.removed.push(state);
  }
  return report;
}
