// Latency A/B of the udp data plane: ping RTT pod to pod, dense (every 5 ms)
// and sparse (once a second), with the daemons' page faults per sparse ping
// and their idle CPU, for this checkout's flanneld and optionally another
// build's (--base DIR, a checkout of main with `npm ci` done), alternated in
// the same run, kernel vxlan beside them as the reference.
//   node dist/bench/latency.js [--rounds 3] [--dense 1000] [--sparse 20] [--idle 10] [--tcp4 SECONDS] [--churn SECONDS] [--churn-leases 240] [--base /tmp/dp-base] [--proxy [--proxy-nice N]]
// --tcp4 adds a 4-stream iperf3 run per round (throughput and the daemons' CPU per GB).
// --churn adds pings at 5 ms while one etcd client puts and deletes
// --churn-leases fake leases in a loop (the bench's churn phase), for every
// variant: with --proxy, the C forwarder's figure is the floor that CPU
// contention alone sets, as it watches no leases.
// --proxy adds flannel's original design as a second reference: the C
// forwarder of bench/reference-proxy.c (poll, one packet per syscall),
// compiled with cc and run on the lab hosts of an udp cluster, whose pods'
// traffic it carries through more specific routes while flanneld idles;
// --proxy-nice runs it at that nice value (flanneld's thread has -10 by default).
// Per dense ping, the forwarding threads' CPU and run-queue wait per crossing
// of a forwarder (four crossings a round trip) come from their schedstat.
// Environment for this checkout's daemons passes through (FLANNELD_DATAPLANE_SPIN_US, FLANNELD_DATAPLANE_NICE, any FLANNELD_<FLAG>).

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab, REPO_ROOT, threadsNamed, waitForLog } from '../src/lab/lab';
import { Etcd } from '../src/lab/etcd';
import { Host } from '../src/lab/host';
import { type BackendName, type BackendNode, startBackendCluster } from '../src/lab/topology';
import { Ip4Net } from '../src/routes/ip4';
import { cpuSeconds, ping, quantile, tcp } from '../src/bench/measure';
import { CHURN_SUBNET_LEN, churn } from '../src/bench/churn';
import { sleep } from '../src/util/sleep';

const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(`--${k}`);
  return i >= 0 ? process.argv[i + 1] : d;
};
const rounds = Number(arg('rounds', '3'));
const dense = Number(arg('dense', '1000'));
const sparse = Number(arg('sparse', '20'));
const idleS = Number(arg('idle', '10'));
const base = arg('base', '');
const tcp4S = Number(arg('tcp4', '0'));
const churnS = Number(arg('churn', '0'));
const churnLeases = Number(arg('churn-leases', '240'));
const withProxy = process.argv.includes('--proxy');
const proxyNice = Number(arg('proxy-nice', '0'));
// Extra variants of this checkout: "name:ENV=V,ENV2=V;name2:ENV=V".
const extra = arg('variants', '')
  .split(';')
  .filter(Boolean)
  .map((spec) => {
    const [name, envs] = spec.split(':');
    return {
      name,
      env: Object.fromEntries(
        (envs ?? '')
          .split(',')
          .filter(Boolean)
          .map((kv) => kv.split('=')),
      ) as Record<string, string>,
    };
  });

/** The forwarding thread of a flanneld (its data-plane thread, else the process) or of the reference proxy. */
function forwardingThread(pid: number): string {
  const [dp] = threadsNamed(pid, 'flanneld-dp');
  return dp === undefined ? `/proc/${pid}` : `/proc/${pid}/task/${dp}`;
}

/** [ns on a CPU, ns waiting on a run queue] so far (schedstat). */
function schedstat(thread: string): [number, number] {
  const f = fs.readFileSync(`${thread}/schedstat`, 'utf8').trim().split(' ').map(Number);
  return [f[0], f[1]];
}

/**
 * Starts the reference proxy on each node (TUN rproxy0, UDP port 8286) and
 * routes the other node's subnet through it: a /24 (or /26) beats
 * flannel0's route for the whole network. Returns the proxies' pids.
 */
async function startProxies(lab: Lab, nodes: BackendNode[]): Promise<number[]> {
  const bin = path.join(lab.dir, 'reference-proxy'); // built per lab (a fraction of a second), removed with it
  execFileSync('cc', ['-O2', '-o', bin, path.join(REPO_ROOT, 'bench/reference-proxy.c')]);
  const pids: number[] = [];
  for (const [i, node] of nodes.entries()) {
    const peer = nodes[1 - i];
    const subnet = Ip4Net.parse(peer.env!.subnet).toString(); // the network: 198.19.5.0/24 (or /26)
    const log = `${lab.dir}/proxy-${i}.log`;
    pids.push(lab.spawnIn(node.host.ns, ['nice', '-n', String(proxyNice), bin, 'rproxy0', '8286', `${subnet}=${peer.host.ip}`], log).pid!);
    await waitForLog(log, /ready/);
    node.host.exec(['ip', 'link', 'set', 'rproxy0', 'up', 'mtu', String(node.env!.mtu)]);
    node.host.exec(['ip', 'route', 'add', subnet, 'dev', 'rproxy0']);
  }
  return pids;
}

/** Minor page faults of a process so far (/proc/<pid>/stat field 10). */
function minorFaults(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[7]);
}

interface Row {
  variant: string;
  round: number;
  denseP50: number;
  denseP99: number;
  denseAvg: number;
  sparseAvg: number;
  sparseP50: number;
  faultsPerPing: number;
  idleCpuPct: number;
  tcp4Gbps: number;
  daemonCpuPerGB: number;
  /** Forwarding threads' µs on a CPU per crossing (dense pings). */
  runUs: number;
  /** ...and µs waiting for a CPU per crossing. */
  waitUs: number;
  /** Pings at 5 ms during lease churn (--churn). */
  churnP50: number;
  churnP99: number;
}

async function measure(variant: string, backend: BackendName, round: number, proxy = false): Promise<Row> {
  const lab = new Lab();
  try {
    const etcd = new Etcd(lab);
    await etcd.start();
    const hosts = [new Host(lab, 'h1', '198.18.0.1'), new Host(lab, 'h2', '198.18.0.2')];
    // Churn needs room for its fake leases: /26 subnets (the proxy's route to one still beats flannel0's).
    const nodes = await startBackendCluster(etcd, hosts, backend, { prefix: `/lat/${backend}/network`, subnetLen: churnS > 0 ? CHURN_SUBNET_LEN : undefined });
    const [a, b] = [nodes[0].pods[0], nodes[1].pods[0]];
    const pids = proxy ? await startProxies(lab, nodes) : nodes.map((n) => n.daemon!.pid);
    await ping(a, b, 20, 0.01); // warm-up: ARP, routes
    const threads = backend === 'udp' ? pids.map(forwardingThread) : [];
    const s0 = threads.map(schedstat);
    const d = await ping(a, b, dense, 0.005);
    const s1 = threads.map(schedstat);
    const perCrossing = (k: 0 | 1) => (threads.length === 0 ? NaN : s1.reduce((acc, x, j) => acc + x[k] - s0[j][k], 0) / (2 * threads.length * d.received) / 1e3);
    const avg = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    let churned: number[] = [];
    if (churnS > 0) {
      const [p] = await Promise.all([ping(a, b, Math.round(churnS / 0.005), 0.005), churn(nodes, churnS, churnLeases)]);
      churned = p.rttsMs;
    }
    // Idle first: nothing crosses for idleS seconds.
    const c0 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
    await sleep(idleS * 1000);
    const idle = (pids.reduce((s, p) => s + cpuSeconds(p), 0) - c0) / pids.length / idleS;
    const f0 = pids.reduce((s, p) => s + minorFaults(p), 0);
    const sp = await ping(a, b, sparse, 1);
    const faults = pids.reduce((s, p) => s + minorFaults(p), 0) - f0;
    let tcp4Gbps = NaN;
    let daemonCpuPerGB = NaN;
    if (tcp4S > 0) {
      const server = lab.spawnIn(b.ns, ['iperf3', '-s', '-B', b.ip], `${lab.dir}/iperf3.log`);
      await sleep(300);
      const cpu0 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
      const t = await tcp(a, b, tcp4S, 4);
      tcp4Gbps = t.bps / 1e9;
      daemonCpuPerGB = (pids.reduce((s, p) => s + cpuSeconds(p), 0) - cpu0) / (t.bytes / 1e9);
      server.kill();
    }
    return {
      variant,
      round,
      denseP50: quantile(d.rttsMs, 0.5),
      denseP99: quantile(d.rttsMs, 0.99),
      denseAvg: avg(d.rttsMs),
      sparseAvg: avg(sp.rttsMs),
      sparseP50: quantile(sp.rttsMs, 0.5),
      faultsPerPing: faults / sparse,
      idleCpuPct: idle * 100,
      tcp4Gbps,
      daemonCpuPerGB,
      runUs: perCrossing(0),
      waitUs: perCrossing(1),
      churnP50: churned.length > 0 ? quantile(churned, 0.5) : NaN,
      churnP99: churned.length > 0 ? quantile(churned, 0.99) : NaN,
    };
  } finally {
    await lab.destroy();
  }
}

async function main(): Promise<void> {
  const variants: { name: string; backend: BackendName; bin?: string; env?: Record<string, string>; proxy?: boolean }[] = [{ name: 'udp (this)', backend: 'udp' }];
  for (const e of extra) variants.push({ name: e.name, backend: 'udp', env: e.env });
  if (base) variants.push({ name: 'udp (base)', backend: 'udp', bin: path.join(base, 'bin/flanneld') });
  if (withProxy) variants.push({ name: proxyNice === 0 ? 'C proxy' : `C proxy, nice ${proxyNice}`, backend: 'udp', proxy: true });
  variants.push({ name: 'vxlan', backend: 'vxlan' });
  const rows: Row[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
      if (v.bin) process.env.FLANNEL_TS_FLANNELD = v.bin;
      else delete process.env.FLANNEL_TS_FLANNELD;
      const saved = { ...process.env };
      Object.assign(process.env, v.env ?? {});
      const row = await measure(v.name, v.backend, r, v.proxy).finally(() => {
        for (const k of Object.keys(v.env ?? {})) if (saved[k] === undefined) delete process.env[k];
      });
      rows.push(row);
      process.stderr.write(`${JSON.stringify(row)}\n`);
    }
  }
  const med = (xs: number[]) => quantile(xs, 0.5);
  console.log(
    'variant        dense p50  dense p99  dense avg  sparse avg  sparse p50  faults/ping  idle CPU %  TCP4 Gbit/s  daemon s/GB  run µs/crossing  wait µs/crossing  churn p50  churn p99  (ms; medians of rounds)',
  );
  for (const v of variants) {
    const rs = rows.filter((x) => x.variant === v.name);
    const f = (k: keyof Row, digits = 3) =>
      med(rs.map((x) => x[k] as number))
        .toFixed(digits)
        .padStart(10);
    console.log(
      `${v.name.padEnd(14)} ${f('denseP50')} ${f('denseP99')} ${f('denseAvg')} ${f('sparseAvg')}  ${f('sparseP50')}  ${f('faultsPerPing', 1)}  ${f('idleCpuPct', 2)}  ${f('tcp4Gbps', 2)}  ${f('daemonCpuPerGB', 2)}  ${f('runUs', 1)}  ${f('waitUs', 1)}  ${f('churnP50')} ${f('churnP99')}`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
