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
//                    [--no-data-plane]

import * as fs from 'node:fs';
import * as os from 'node:os';
import { Lab } from '../lab/lab';
import { Etcd } from '../lab/etcd';
import { Host, Pod } from '../lab/host';
import { BACKENDS, BackendName, BackendNode, isBackendName, startBackendCluster } from '../lab/topology';
import { tryRun, sleep } from '../lab/sh';
import { controlPlaneBench, startSink } from './control-plane';
import { cpuSeconds, ping, quantile, tcp, udpSmall } from './measure';
import { BenchDocument, BackendResult, ControlPlaneResult, METRICS, formatTable, renderSvg, summarize } from './report';

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
`;

export function parseBenchArgs(argv: string[]): BenchOptions | 'help' {
  const o: BenchOptions = { backends: [...BACKENDS], duration: 10, repeat: 3, mtu: 1500, dataPlane: true, controlPlane: false, cpLeases: 1000, cpBurst: 1000, cpMemoryLeases: 10_000 };
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
        const list = (v() ?? '').split(',').map((s) => s.trim()).filter(Boolean);
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
  retransmits: number;
  udpLoss: number;
  pingsLost: number;
}

async function dataPlane(lab: Lab, etcd: Etcd, o: BenchOptions, progress: Progress): Promise<Partial<Record<BackendName, BackendResult>>> {
  if (o.mtu !== 1500) lab.setSwitchMtu(o.mtu);
  const hosts = [new Host(lab, 'h1', '198.18.0.1', o.mtu), new Host(lab, 'h2', '198.18.0.2', o.mtu)];
  const clusters = new Map<BackendName, BackendNode[]>();
  for (const b of o.backends) {
    progress.show(`starting flanneld (${b}) on both hosts`);
    clusters.set(b, await startBackendCluster(etcd, hosts, b, { prefix: `/flannel-ts-bench/${b}/network` }));
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
  for (let r = 0; r < o.repeat; r++) {
    // Rotate the order each round so no backend always runs first (or right after another).
    const order = [...o.backends.slice(r % o.backends.length), ...o.backends.slice(0, r % o.backends.length)];
    for (const b of order) {
      step++;
      const [client, server] = pair(b);
      const pids = clusters.get(b)!.map((n) => n.daemon!.pid);
      const say = (what: string) => progress.show(`round ${r + 1}/${o.repeat}, ${b}: ${what}  (${step}/${steps})`);
      const cpu0 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
      say(`TCP 1 stream, ${o.duration} s`);
      const t1 = await tcp(client, server, o.duration, 1);
      say(`TCP 4 streams, ${o.duration} s`);
      const t4 = await tcp(client, server, o.duration, 4);
      const cpu = pids.reduce((s, p) => s + cpuSeconds(p), 0) - cpu0;
      say(`UDP 64-byte packets, ${o.duration} s`);
      const u = await udpSmall(client, server, o.duration);
      say('200 pings at 10 ms');
      const p = await ping(client, server, 200, 0.01);
      rounds.get(b)!.push({
        tcp1: t1.bps / 1e9,
        tcp4: t4.bps / 1e9,
        udp64: u.pps / 1e3,
        rttP50: quantile(p.rttsMs, 0.5),
        rttP99: quantile(p.rttsMs, 0.99),
        cpuPerGB: cpu / ((t1.bytes + t4.bytes) / 1e9),
        retransmits: t1.retransmits + t4.retransmits,
        udpLoss: u.lossPercent,
        pingsLost: p.sent - p.received,
      });
    }
  }

  const out: Partial<Record<BackendName, BackendResult>> = {};
  for (const b of o.backends) {
    const rs = rounds.get(b)!;
    const metrics: BackendResult['metrics'] = {};
    for (const m of METRICS) metrics[m.id] = summarize(rs.map((x) => x[m.id as keyof Round]));
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
      for (const m of METRICS) {
        if (m.noRatio) continue;
        const r = out[b]!.metrics[m.id];
        const base = vx.metrics[m.id].median;
        if (base > 0 && Number.isFinite(r.median)) r.ratioToVxlan = r.median / base;
      }
    }
  }
  return out;
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
      options: { backends: o.backends, duration: o.duration, repeat: o.repeat, mtu: o.mtu, dataPlane: o.dataPlane, controlPlane: o.controlPlane, cpLeases: o.cpLeases, cpBurst: o.cpBurst, cpMemoryLeases: o.cpMemoryLeases },
      topology:
        'two lab hosts (network namespaces on a bridge), one flanneld per backend per host with its own etcd prefix, Network and bridge; ' +
        'one pod per backend per host; traffic pod to pod from h1 to h2',
      metrics: [...METRICS],
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
