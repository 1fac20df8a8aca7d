// `flannel-ts bench` (also `npm run bench`): udp against kernel vxlan and
// host-gw, every backend through flannel-ts's own flanneld, on the same two
// lab hosts in the same run. One flanneld per backend per host, each with its
// own etcd prefix, Network and bridge (src/lab/topology.ts), so all three are
// up at once and every round measures each backend in turn (the order rotates
// each round). Figures are medians over rounds, and ratios to vxlan measured
// in the same run.
//
//   flannel-ts bench [--backends udp,vxlan,host-gw] [--duration S] [--repeat N]
//                    [--mtu BYTES] [--json FILE] [--svg FILE]
//                    [--control-plane] [--cp-leases N] [--cp-burst N] [--cp-memory-leases N]
//                    [--no-data-plane] [--pings N] [--sparse N] [--no-load-latency]
//                    [--churn-seconds S] [--churn-leases N]

import * as fs from 'node:fs';
import * as os from 'node:os';
import { Lab } from '../lab/lab';
import { Etcd } from '../lab/etcd';
import { Host, type Pod } from '../lab/host';
import { BACKENDS, type BackendName, type BackendNode, isBackendName, startBackendCluster } from '../lab/topology';
import { CHURN_SUBNET_LEN, churn } from './churn';
import { tryRun, sleep } from '../lab/sh';
import { controlPlaneBench, startSink } from './control-plane';
import { type PingResult, cpuSeconds, machineBusySeconds, ping, quantile, tcp, udpSmall } from './measure';
import { type BenchDocument, type BackendResult, type ControlPlaneResult, METRICS, type MetricDef, PHASE_METRICS, formatTable, renderSvg, summarize } from './report';

export interface BenchOptions {
  backends: BackendName[];
  duration: number;
  repeat: number;
  mtu: number;
  json?: string;
  svg?: string;
  dataPlane: boolean;
  controlPlane: boolean;
  cpLeases: number;
  cpBurst: number;
  cpMemoryLeases: number;
  /** Dense pings per round (at 5 ms) for the RTT p50/p99. */
  pings: number;
  /** Pings at 1 per second per round (all backends at once); 0 = no sparse phase. */
  sparse: number;
  /** Ping p50/p99 while a 1 Gbit/s TCP stream and while the unthrottled 1-stream test run. */
  loadLatency: boolean;
  /** Seconds of lease churn (pings at 5 ms meanwhile); 0 = no churn phase. */
  churnSeconds: number;
  churnLeases: number;
}

const USAGE = `usage: flannel-ts bench [options]

Builds two hosts in network namespaces and measures pod-to-pod traffic through
each backend's flanneld: TCP (1 and 4 streams), 64-byte UDP packets, ping RTT,
the daemon's CPU per GB. Medians of --repeat rounds, backends alternating.

  --backends LIST        comma-separated, from udp,vxlan,host-gw (default: all)
  --duration SECONDS     per iperf3 test (default 10)
  --repeat N             rounds (default 3)
  --mtu BYTES            underlay MTU (default 1500)
  --json FILE            write the results (schema flannel-ts-bench/1, see README)
  --svg FILE             write a chart
  --control-plane        also measure lease→forwarding latency and memory
  --cp-leases N          leases for the latency percentiles (default 1000)
  --cp-burst N           leases written at once (default 1000)
  --cp-memory-leases N   leases held for the memory figure (default 10000)
  --no-data-plane        skip the throughput part (with --control-plane)
  --pings N              pings at 5 ms per round for RTT p50/p99 (default 1000)
  --sparse N             also N pings at 1 per second per round, all backends
                         at once (default 20; 0 = off)
  --no-load-latency      skip ping under a 1 Gbit/s and an unthrottled TCP stream
  --churn-seconds S      ping at 5 ms for S s while --churn-leases leases are put
                         and deleted in etcd in a loop (default 10; 0 = off)
  --churn-leases N       leases per churn loop (default 240)
`;

export function parseBenchArgs(argv: string[]): BenchOptions | 'help' {
  const o: BenchOptions = {
    backends: [...BACKENDS],
    duration: 10,
    repeat: 3,
    mtu: 1500,
    dataPlane: true,
    controlPlane: false,
    cpLeases: 1000,
    cpBurst: 1000,
    cpMemoryLeases: 10_000,
    pings: 1000,
    sparse: 20,
    loadLatency: true,
    churnSeconds: 10,
    churnLeases: 240,
  };
  const num = (k: string, v: string | undefined, min: number, int = true): number => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isFinite(n) || n < min || (int && !Number.isInteger(n))) {
      throw new Error(`bench: --${k} needs ${int ? 'an integer' : 'a number'} of at least ${min}, got ${v === undefined ? 'nothing' : JSON.stringify(v)}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-')) throw new Error(`bench: unexpected argument "${a}"\n${USAGE}`);
    const eq = a.indexOf('=');
    const k = (eq >= 0 ? a.slice(0, eq) : a).replace(/^--?/, '');
    const inline = eq >= 0 ? a.slice(eq + 1) : undefined;
    const v = () => inline ?? argv[++i];
    switch (k) {
      case 'h':
      case 'help':
        return 'help';
      case 'duration':
        o.duration = num(k, v(), 0.1, false);
        break;
      case 'repeat':
        o.repeat = num(k, v(), 1);
        break;
      case 'mtu':
        o.mtu = num(k, v(), 576);
        if (o.mtu > 65535) throw new Error('bench: --mtu is at most 65535');
        break;
      case 'backends': {
        const list = (v() ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        if (list.length === 0) throw new Error(`bench: --backends needs a list such as udp,vxlan,host-gw`);
        for (const b of list) if (!isBackendName(b)) throw new Error(`bench: unknown backend "${b}" (choose from ${BACKENDS.join(', ')})`);
        o.backends = [...new Set(list)] as BackendName[];
        break;
      }
      case 'json':
        o.json = v();
        break;
      case 'svg':
        o.svg = v();
        break;
      case 'control-plane':
        o.controlPlane = inline === undefined ? true : inline !== 'false';
        break;
      case 'no-data-plane':
        o.dataPlane = false;
        break;
      case 'pings':
        o.pings = num(k, v(), 10);
        break;
      case 'sparse':
        o.sparse = num(k, v(), 0);
        break;
      case 'load-latency':
        o.loadLatency = inline === undefined ? true : inline !== 'false';
        break;
      case 'no-load-latency':
        o.loadLatency = false;
        break;
      case 'churn-seconds':
        o.churnSeconds = num(k, v(), 0, false);
        break;
      case 'churn-leases':
        o.churnLeases = num(k, v(), 1);
        if (o.churnLeases > 250) throw new Error('bench: --churn-leases is at most 250 (the /26 subnets of a backend Network /18 left beside the hosts)');
        break;
      case 'cp-leases':
        o.cpLeases = num(k, v(), 1);
        break;
      case 'cp-burst':
        o.cpBurst = num(k, v(), 0);
        break;
      case 'cp-memory-leases':
        o.cpMemoryLeases = num(k, v(), 0);
        if (o.cpMemoryLeases > 16000) throw new Error('bench: --cp-memory-leases is at most 16000 (a /16 of /30 subnets)');
        break;
      default:
        throw new Error(`bench: unknown option ${a}\n${USAGE}`);
    }
  }
  if (!o.dataPlane && !o.controlPlane) throw new Error('bench: --no-data-plane leaves nothing to measure: add --control-plane');
  if (o.cpLeases + o.cpBurst + 2 > 16000) throw new Error('bench: --cp-leases plus --cp-burst must stay under 16000');
  return o;
}

/** Progress on stderr: one line, rewritten in place on a terminal. */
class Progress {
  private readonly t0 = Date.now();
  private readonly tty = process.stderr.isTTY;
  show(msg: string): void {
    const el = ((Date.now() - this.t0) / 1000).toFixed(0);
    const line = `[${el}s] ${msg}`;
    if (this.tty) process.stderr.write(`\r\x1b[K${line}`);
    else process.stderr.write(`${line}\n`);
  }
  done(): void {
    if (this.tty) process.stderr.write('\r\x1b[K');
  }
}

function machine(): BenchDocument['machine'] {
  const cpus = os.cpus();
  const iperf = tryRun(['iperf3', '--version']).stdout.split('\n')[0] ?? '';
  return { kernel: os.release(), cpus: cpus.length, cpuModel: (cpus[0]?.model ?? 'unknown').replace(/\s+/g, ' ').trim(), node: process.version, iperf3: iperf.trim() };
}

interface Round {
  tcp1: number;
  tcp4: number;
  udp64: number;
  rttP50: number;
  rttP99: number;
  cpuPerGB: number;
  machineCpuPerGB: number;
  sparseAvg: number;
  loadP50: number;
  loadP99: number;
  satP50: number;
  satP99: number;
  churnP50: number;
  churnP99: number;
  retransmits: number;
  udpLoss: number;
  pingsLost: number;
}

/** Pings at 5 ms for about `seconds` (at least 10). */
const pingsFor = (seconds: number) => Math.max(10, Math.round(seconds / 0.005));

async function dataPlane(lab: Lab, etcd: Etcd, o: BenchOptions, progress: Progress): Promise<Partial<Record<BackendName, BackendResult>>> {
  if (o.mtu !== 1500) lab.setSwitchMtu(o.mtu);
  const hosts = [new Host(lab, 'h1', '198.18.0.1', o.mtu), new Host(lab, 'h2', '198.18.0.2', o.mtu)];
  const clusters = new Map<BackendName, BackendNode[]>();
  for (const b of o.backends) {
    progress.show(`starting flanneld (${b}) on both hosts`);
    clusters.set(b, await startBackendCluster(etcd, hosts, b, { prefix: `/flannel-ts-bench/${b}/network`, subnetLen: CHURN_SUBNET_LEN }));
  }
  const pair = (b: BackendName): [Pod, Pod] => {
    const [n1, n2] = clusters.get(b)!;
    return [n1.pods[0], n2.pods[0]];
  };
  for (const b of o.backends) {
    const server = pair(b)[1];
    lab.spawnIn(server.ns, ['iperf3', '-s', '-B', server.ip], `${lab.dir}/iperf3-${b}.log`);
  }
  await sleep(500);

  const rounds = new Map<BackendName, Round[]>(o.backends.map((b) => [b, []]));
  const steps = o.repeat * o.backends.length;
  let step = 0;
  const avg = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((a, x) => a + x, 0) / xs.length);
  for (let r = 0; r < o.repeat; r++) {
    // Rotate the order each round so no backend always runs first (or right after another).
    const order = [...o.backends.slice(r % o.backends.length), ...o.backends.slice(0, r % o.backends.length)];
    for (const b of order) {
      step++;
      const [client, server] = pair(b);
      const pids = clusters.get(b)!.map((n) => n.daemon!.pid);
      const say = (what: string) => progress.show(`round ${r + 1}/${o.repeat}, ${b}: ${what}  (${step}/${steps})`);
      // The machine's idle rate just before, to subtract from its busy time during the TCP tests.
      say('idle baseline, 1 s');
      const idle0 = machineBusySeconds();
      const idleT0 = Date.now();
      await sleep(1000);
      const idleRate = (machineBusySeconds() - idle0) / ((Date.now() - idleT0) / 1000);
      const cpu0 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
      const busy0 = machineBusySeconds();
      const busyT0 = Date.now();
      say(`TCP 1 stream, ${o.duration} s${o.loadLatency ? ', pinging meanwhile' : ''}`);
      const [t1, sat] = await Promise.all([tcp(client, server, o.duration, 1), o.loadLatency ? ping(client, server, pingsFor(o.duration), 0.005) : undefined]);
      say(`TCP 4 streams, ${o.duration} s`);
      const t4 = await tcp(client, server, o.duration, 4);
      const cpu = pids.reduce((s, p) => s + cpuSeconds(p), 0) - cpu0;
      const machine = machineBusySeconds() - busy0 - idleRate * ((Date.now() - busyT0) / 1000);
      let load: PingResult | undefined;
      if (o.loadLatency) {
        say(`TCP 1 stream at 1 Gbit/s, ${o.duration} s, pinging meanwhile`);
        [, load] = await Promise.all([tcp(client, server, o.duration, 1, '1G'), ping(client, server, pingsFor(o.duration), 0.005)]);
      }
      say(`UDP 64-byte packets, ${o.duration} s`);
      const u = await udpSmall(client, server, o.duration);
      say(`${o.pings} pings at 5 ms`);
      const p = await ping(client, server, o.pings, 0.005);
      let churned: PingResult | undefined;
      if (o.churnSeconds > 0) {
        say(`${pingsFor(o.churnSeconds)} pings at 5 ms while ${o.churnLeases} leases churn in etcd`);
        [churned] = await Promise.all([ping(client, server, pingsFor(o.churnSeconds), 0.005), churn(clusters.get(b)!, o.churnSeconds, o.churnLeases)]);
      }
      const gb = (t1.bytes + t4.bytes) / 1e9;
      rounds.get(b)!.push({
        tcp1: t1.bps / 1e9,
        tcp4: t4.bps / 1e9,
        udp64: u.pps / 1e3,
        rttP50: quantile(p.rttsMs, 0.5),
        rttP99: quantile(p.rttsMs, 0.99),
        cpuPerGB: cpu / gb,
        machineCpuPerGB: Math.max(0, machine) / gb,
        sparseAvg: NaN,
        loadP50: load ? quantile(load.rttsMs, 0.5) : NaN,
        loadP99: load ? quantile(load.rttsMs, 0.99) : NaN,
        satP50: sat ? quantile(sat.rttsMs, 0.5) : NaN,
        satP99: sat ? quantile(sat.rttsMs, 0.99) : NaN,
        churnP50: churned ? quantile(churned.rttsMs, 0.5) : NaN,
        churnP99: churned ? quantile(churned.rttsMs, 0.99) : NaN,
        retransmits: t1.retransmits + t4.retransmits,
        udpLoss: u.lossPercent,
        pingsLost: p.sent - p.received + (churned ? churned.sent - churned.received : 0),
      });
    }
    if (o.sparse > 0) {
      // Sparse traffic, every backend at once (a ping a second hardly disturbs another).
      progress.show(`round ${r + 1}/${o.repeat}: ${o.sparse} pings at 1 per second, every backend at once`);
      const sparse = await Promise.all(o.backends.map((b) => ping(pair(b)[0], pair(b)[1], o.sparse, 1)));
      o.backends.forEach((b, i) => {
        const rs = rounds.get(b)!;
        rs[rs.length - 1].sparseAvg = avg(sparse[i].rttsMs);
      });
    }
  }

  const out: Partial<Record<BackendName, BackendResult>> = {};
  for (const b of o.backends) {
    const rs = rounds.get(b)!;
    const metrics: BackendResult['metrics'] = {};
    for (const m of benchMetrics(o)) metrics[m.id] = summarize(rs.map((x) => x[m.id as keyof Round]));
    out[b] = {
      metrics,
      tcpRetransmits: rs.reduce((s, x) => s + x.retransmits, 0),
      udp64LossPercent: rs.map((x) => x.udpLoss),
      pingsLost: rs.reduce((s, x) => s + x.pingsLost, 0),
      podMtu: clusters.get(b)![0].env!.mtu,
    };
  }
  const vx = out.vxlan;
  if (vx) {
    for (const b of o.backends) {
      for (const m of benchMetrics(o)) {
        if (m.noRatio) continue;
        const r = out[b]!.metrics[m.id];
        const base = vx.metrics[m.id].median;
        if (base > 0 && Number.isFinite(r.median)) r.ratioToVxlan = r.median / base;
      }
    }
  }
  return out;
}

/** The metrics this run measures: METRICS, then those of the phases that ran. */
export function benchMetrics(o: BenchOptions): MetricDef[] {
  const on = { sparse: o.sparse > 0, load: o.loadLatency, churn: o.churnSeconds > 0 };
  return [...METRICS, ...PHASE_METRICS.filter((m) => on[m.phase]).map(({ phase: _phase, ...m }) => m)];
}

export async function main(argv: string[]): Promise<void> {
  const parsed = parseBenchArgs(argv);
  if (parsed === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const o = parsed;
  if (process.getuid?.() !== 0) throw new Error('bench: needs root (it creates network namespaces)');
  for (const tool of ['iperf3', 'etcd', 'etcdctl', 'ping', 'bridge']) {
    if (tryRun(['sh', '-c', `command -v ${tool}`]).status !== 0) throw new Error(`bench: ${tool} is not installed (run scripts/setup.sh)`);
  }
  const progress = new Progress();
  const lab = new Lab();
  const interrupted = () => {
    progress.done();
    process.stderr.write('bench: interrupted, cleaning up\n');
    lab.destroySync();
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    progress.show('starting etcd');
    const etcd = new Etcd(lab);
    await etcd.start();
    const doc: BenchDocument = {
      schema: 'flannel-ts-bench/1',
      date: new Date().toISOString(),
      machine: machine(),
      options: {
        backends: o.backends,
        duration: o.duration,
        repeat: o.repeat,
        mtu: o.mtu,
        dataPlane: o.dataPlane,
        controlPlane: o.controlPlane,
        cpLeases: o.cpLeases,
        cpBurst: o.cpBurst,
        cpMemoryLeases: o.cpMemoryLeases,
        pings: o.pings,
        sparse: o.sparse,
        loadLatency: o.loadLatency,
        churnSeconds: o.churnSeconds,
        churnLeases: o.churnLeases,
      },
      topology:
        'two lab hosts (network namespaces on a bridge), one flanneld per backend per host with its own etcd prefix, Network and bridge; ' +
        'one pod per backend per host; traffic pod to pod from h1 to h2',
      metrics: benchMetrics(o),
      backends: {},
      controlPlane: null,
    };
    if (o.dataPlane) doc.backends = await dataPlane(lab, etcd, o, progress);
    if (o.controlPlane) {
      await startSink(lab);
      const cp: Partial<Record<BackendName, ControlPlaneResult>> = {};
      let i = 0;
      for (const b of o.backends) {
        cp[b] = await controlPlaneBench(lab, etcd, b, `198.18.1.${++i}`, {
          leases: o.cpLeases,
          burst: o.cpBurst,
          memoryLeases: o.cpMemoryLeases,
          progress: (m) => progress.show(m),
        });
      }
      doc.controlPlane = cp;
    }
    progress.done();
    console.log(formatTable(doc));
    if (o.json) {
      fs.writeFileSync(o.json, JSON.stringify(doc, null, 2) + '\n');
      console.log(`\nwrote ${o.json}`);
    }
    if (o.svg) {
      fs.writeFileSync(o.svg, renderSvg(doc));
      console.log(`wrote ${o.svg}`);
    }
  } finally {
    progress.done();
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
    await lab.destroy();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(String(e instanceof Error ? e.message : e));
    process.exit(1);
  });
}
