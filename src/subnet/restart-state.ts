// What a planned stop leaves for the next start, so a restart forwards again
// before it has even loaded the etcd client: this node's subnet, the network
// config it ran with and its peers' leases, beside the subnet file
// (`<subnet-file>.peers.json`, on /run: gone at reboot).
//
// Rules: written only on a clean stop (SIGTERM/SIGINT) of a ready daemon;
// read once (the next start deletes it whatever it holds), and trusted only
// if it is recent (10 minutes), is for this public IP and the subnet in the
// subnet file. etcd stays the authority: the next start confirms the lease
// and lists the leases as usual, and the table is corrected from that list
// (a few hundred ms later). A kill -9 leaves no file, so the start after a
// crash is a cold one.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Ip4, Ip4Net, formatIp4, parseIp4 } from '../routes/ip4';
import type { Lease } from '../routes/lease-table';
import { type NetworkConfig, parseNetworkConfig } from './config';
import { errorMessage } from './errors';
import type { Logger } from '../util/log';

/** How old a state file may be and still be used. */
export const RESTART_STATE_MAX_AGE_MS = 10 * 60_000;

export interface RestartState {
  /** The network config the stopped daemon ran with, as JSON text. */
  configText: string;
  config: NetworkConfig;
  subnet: Ip4Net;
  peers: Lease[];
  savedAt: number;
}

interface StateFile {
  version: 1;
  savedAt: number;
  publicIp: string;
  subnet: string;
  config: string;
  peers: { subnet: string; publicIp: string; backendType: string }[];
}

export function restartStatePath(subnetFile: string): string {
  return `${subnetFile}.peers.json`;
}

/** Writes the state for the next start (atomically; errors are logged, never thrown: stopping goes on). */
export function saveRestartState(subnetFile: string, s: { publicIp: Ip4; subnet: Ip4Net; configText: string; peers: { subnet: Ip4Net; publicIp: Ip4; backendType?: string }[] }, log: Logger): void {
  const file = restartStatePath(subnetFile);
  const body: StateFile = {
    version: 1,
    savedAt: Date.now(),
    publicIp: formatIp4(s.publicIp),
    subnet: s.subnet.toString(),
    config: s.configText,
    peers: s.peers.map((p) => ({ subnet: p.subnet.toString(), publicIp: formatIp4(p.publicIp), backendType: p.backendType ?? 'udp' })),
  };
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(body)}\n`, { mode: 0o644 });
    fs.renameSync(tmp, file);
    log.info(`Saved ${body.peers.length} leases to ${file} for a quick restart`);
  } catch (e) {
    log.warn(`Could not save the leases for a quick restart (${errorMessage(e)}); the next start will wait for etcd`);
  }
}

/**
 * Reads and deletes the state a clean stop left; undefined (with the reason
 * logged at debug level) when there is none or it cannot be trusted.
 */
export function takeRestartState(subnetFile: string, expect: { publicIp: Ip4; subnet: Ip4Net | undefined }, log: Logger, now = Date.now()): RestartState | undefined {
  const file = restartStatePath(subnetFile);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    fs.rmSync(file, { force: true });
  } catch {
    /* read-only: it is still only used if it checks out */
  }
  const reject = (why: string): undefined => {
    log.info(`Not using ${file} for a quick restart: ${why}`);
    return undefined;
  };
  try {
    const j = JSON.parse(text) as StateFile;
    if (j.version !== 1) return reject(`version ${j.version}`);
    if (!(now - j.savedAt >= 0 && now - j.savedAt <= RESTART_STATE_MAX_AGE_MS)) return reject('saved more than 10 minutes ago');
    if (parseIp4(j.publicIp) !== expect.publicIp) return reject(`it is for public IP ${j.publicIp}`);
    const subnet = Ip4Net.parse(j.subnet);
    if (!expect.subnet || !subnet.equals(expect.subnet)) return reject(`its subnet ${j.subnet} is not the subnet file's`);
    const { config } = parseNetworkConfig(j.config);
    if (!config.network.contains(subnet.ip)) return reject('its subnet is outside its Network');
    const peers: Lease[] = j.peers.map((p) => ({ subnet: Ip4Net.parse(p.subnet), publicIp: parseIp4(p.publicIp), backendType: p.backendType }));
    return { configText: j.config, config, subnet, peers, savedAt: j.savedAt };
  } catch (e) {
    return reject(errorMessage(e));
  }
}
