// The control-plane bench: how fast a lease written to etcd becomes a
// forwarding path, and what holding many leases costs the daemon.
//
// Per backend, one lab host runs flanneld alone (Network 198.19.0.0/16,
// SubnetLen 30: room for 16 383 peers). A "peers" namespace on the same
// switch stands in for every fake peer: it answers for 198.18.64.0/18 (their
// public IPs) and 198.19.0.0/16 (the overlay) through local routes, and runs
// cp-sink. The driver (cp-driver) runs in the measured host's namespace,
// writes leases and probes their subnets. Nothing leaves the lab's namespaces.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Etcd } from '../lab/etcd';
import { Host } from '../lab/host';
import { type Lab, REPO_ROOT, waitForLog } from '../lab/lab';
import { type BackendName, BackendNode, writeBackendConfig } from '../lab/topology';
import { run, sleep } from '../lab/sh';
import { execStatus } from '../util/exec';
import type { DriverArgs, DriverResult } from './cp-driver';
import { memoryMiB, quantile } from './measure';
import type { ControlPlaneResult } from './report';

export const CP_NETWORK = '198.19.0.0/16';
export const CP_SUBNET_LEN = 30;
const SINK_IP = '198.18.0.100';
const FAKE_PUBLIC = '198.18.64.0/18';
const PROBE_PORT = 7777;
const ACK_PORT = 7778;

export interface ControlPlaneOptions {
  leases: number;
  burst: number;
  memoryLeases: number;
  progress: (msg: string) => void;
}

/** The "peers" namespace and its sink; call once per lab. */
export async function startSink(lab: Lab): Promise<void> {
  const ns = lab.addNamespace('peers');
  lab.plug(ns, 'eth0', `${SINK_IP}/16`);
  run(['ip', '-n', ns, 'route', 'add', 'local', FAKE_PUBLIC, 'dev', 'lo']);
  run(['ip', '-n', ns, 'route', 'add', 'local', CP_NETWORK, 'dev', 'lo']);
  const log = path.join(lab.dir, 'cp-sink.log');
  lab.spawnIn(ns, [process.execPath, path.join(REPO_ROOT, 'dist/src/bench/cp-sink.js'), String(ACK_PORT), '8285', '8472', String(PROBE_PORT)], log);
  await waitForLog(log, /listening/, 10_000);
}

/** Parses the kernel backends' "applied N peer change(s) (...) in X ms, C batch(es)" lines; the largest flush. */
export function largestFlush(log: string): { peers: number; ms: number; batches: number } | undefined {
  let best: { peers: number; ms: number; batches: number } | undefined;
  for (const m of log.matchAll(/applied (\d+) peer change\(s\) \([^)]*\) in ([\d.]+) ms, (\d+) batch/g)) {
    const f = { peers: Number(m[1]), ms: Number(m[2]), batches: Number(m[3]) };
    if (!best || f.peers > best.peers) best = f;
  }
  return best;
}

/** Runs the control-plane bench for one backend on a fresh host `hostIp`. */
export async function controlPlaneBench(lab: Lab, etcd: Etcd, backend: BackendName, hostIp: string, o: ControlPlaneOptions): Promise<ControlPlaneResult> {
  const tag = { udp: 'ud', vxlan: 'vx', 'host-gw': 'gw' }[backend];
  const host = new Host(lab, `cp${tag}`, hostIp);
  const prefix = `/flannel-ts-bench/cp-${backend}/network`;
  writeBackendConfig(etcd, prefix, backend, { network: CP_NETWORK, subnetLen: CP_SUBNET_LEN });
  const node = new BackendNode(host, backend, etcd.endpoint, prefix);
  const daemon = node.start();
  try {
    await node.waitReady();
    await sleep(1000);
    const baseline = memoryMiB(daemon.pid).rss;
    const args: DriverArgs = {
      endpoint: etcd.endpoint,
      prefix,
      backend,
      subnetFile: node.subnetFile,
      network: CP_NETWORK,
      subnetLen: CP_SUBNET_LEN,
      publicBase: FAKE_PUBLIC.split('/')[0],
      probePort: PROBE_PORT,
      ackPort: ACK_PORT,
      latency: o.leases,
      burst: o.burst,
      fill: o.memoryLeases,
      timeoutMs: 5000,
    };
    o.progress(`control plane ${backend}: ${o.leases} leases one by one, ${o.burst} at once, then up to ${o.memoryLeases}`);
    const timeoutMs = 360_000 + o.leases * 100 + o.memoryLeases * 10;
    const r = await execStatus(['ip', 'netns', 'exec', host.ns, process.execPath, path.join(REPO_ROOT, 'dist/src/bench/cp-driver.js'), JSON.stringify(args)], { timeoutMs });
    if (r.status !== 0) throw new Error(`control-plane driver for ${backend} failed (exit ${r.status}): ${r.stderr.trim()}\n${node.logTail()}`);
    const d = JSON.parse(r.stdout.trim().split('\n').pop()!) as DriverResult;
    await sleep(1000);
    const mem = memoryMiB(daemon.pid);
    const result: ControlPlaneResult = {
      latencyMs: {
        leases: o.leases,
        failures: d.latencyFailures,
        p50: quantile(d.latencyMs, 0.5),
        p99: quantile(d.latencyMs, 0.99),
        max: d.latencyMs.length ? Math.max(...d.latencyMs) : NaN,
      },
    };
    if (d.burst) result.burst = { leases: d.burst.leases, putMs: d.burst.putMs, forwardedMs: d.burst.forwardedMs };
    if (d.fill) result.memory = { leases: d.fill.leases, putMs: d.fill.putMs, forwardedMs: d.fill.forwardedMs, rssBaselineMiB: baseline, rssMiB: mem.rss, rssPeakMiB: mem.peak };
    const flush = largestFlush(fs.readFileSync(node.logFile, 'utf8'));
    if (flush) result.largestFlush = flush;
    return result;
  } finally {
    await node.stop('SIGTERM').catch(() => node.stop('SIGKILL'));
  }
}
