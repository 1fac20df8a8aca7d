// Starts the lease-churn driver (churn-driver.ts) for one backend cluster and
// waits for it: the "control plane busy" phase of `flannel-ts bench` and of
// bench/latency.ts, which ping meanwhile.

import * as path from 'node:path';
import { REPO_ROOT } from '../lab/lab';
import { BACKEND_NETWORKS, type BackendNode } from '../lab/topology';
import { execStatus } from '../util/exec';
import type { ChurnArgs } from './churn-driver';

/**
 * SubnetLen of a cluster that churns (its backend Network is a /18): /26
 * leaves room for 240 fake leases beside the two hosts.
 */
export const CHURN_SUBNET_LEN = 26;

/**
 * Runs the churn driver in the first node's namespace for `seconds`: `leases`
 * fake leases put and deleted in a loop in the cluster's etcd, under its
 * prefix (a cluster started with `subnetLen: CHURN_SUBNET_LEN` and the
 * backend's Network).
 */
export async function churn(nodes: BackendNode[], seconds: number, leases: number): Promise<{ loops: number; changes: number }> {
  const [first] = nodes;
  const b = first.backend;
  const args: ChurnArgs = {
    endpoint: first.etcdEndpoint,
    prefix: first.prefix,
    backend: b,
    network: BACKEND_NETWORKS[b],
    subnetLen: CHURN_SUBNET_LEN,
    skip: nodes.map((n) => n.env!.subnet),
    count: leases,
    durationMs: seconds * 1000,
    publicBase: '198.18.128.0',
  };
  const r = await execStatus(['ip', 'netns', 'exec', first.host.ns, process.execPath, path.join(REPO_ROOT, 'dist/src/bench/churn-driver.js'), JSON.stringify(args)], {
    timeoutMs: (seconds + 60) * 1000,
  });
  if (r.status !== 0) throw new Error(`churn driver for ${b} failed (exit ${r.status}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { loops: number; changes: number };
}
