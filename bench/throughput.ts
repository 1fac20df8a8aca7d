// The netns throughput bench: two hosts, and between their pods single-stream
// TCP (iperf3) over flannel-ts's udp backend, kernel vxlan and host-gw, all on
// the same topology, alternating backends each round. Figures are medians and
// are judged as a ratio to vxlan measured in the same run.
//
//   npm run bench -- [--duration S] [--repeat N] [--backends udp,vxlan,host-gw] [--json FILE]

import * as fs from 'node:fs';
import { Lab } from '../src/lab/lab';
import { Etcd } from '../src/lab/etcd';
import { Host, Pod } from '../src/lab/host';
import { setupHostGw, setupVxlan } from '../src/lab/topology';
import { runAsync, sleep, waitFor } from '../src/util/sh';

const BACKENDS = ['udp', 'vxlan', 'host-gw'] as const;
type Backend = (typeof BACKENDS)[number];

interface Options {
  duration: number;
  repeat: number;
  backends: Backend[];
  json?: string;
  mtu: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { duration: 10, repeat: 3, backends: [...BACKENDS], mtu: 1500 };
  for (let i = 0; i < argv.length; i++) {
    const [k, inline] = argv[i].replace(/^--?/, '').split('=', 2);
    const v = () => inline ?? argv[++i];
    switch (k) {
      case 'duration':
        o.duration = Number(v());
        break;
      case 'repeat':
        o.repeat = Number(v());
        break;
      case 'backends':
        o.backends = v().split(',') as Backend[];
        break;
      case 'json':
        o.json = v();
        break;
      case 'mtu':
        o.mtu = Number(v());
        break;
      default:
        throw new Error(`bench: unknown option --${k} (options: --duration S --repeat N --backends udp,vxlan,host-gw --json FILE --mtu BYTES)`);
    }
  }
  for (const b of o.backends) if (!BACKENDS.includes(b)) throw new Error(`bench: unknown backend "${b}" (choose from ${BACKENDS.join(', ')})`);
  if (!(o.duration > 0) || !(o.repeat >= 1)) throw new Error('bench: --duration and --repeat must be positive');
  return o;
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function iperf(client: Pod, server: Pod, seconds: number): Promise<{ bps: number; bytes: number; retransmits: number }> {
  const r = await runAsync(['ip', 'netns', 'exec', client.ns, 'iperf3', '-c', server.ip, '-t', String(seconds), '-J'], (seconds + 30) * 1000);
  const j = JSON.parse(r.stdout || '{}');
  if (j.error || !j.end) throw new Error(`iperf3 ${client.ip} -> ${server.ip} failed: ${j.error ?? r.stderr}`);
  return { bps: j.end.sum_received.bits_per_second, bytes: j.end.sum_received.bytes, retransmits: j.end.sum_sent.retransmits ?? 0 };
}

export interface BenchResult {
  backend: Backend;
  gbps: number[];
  medianGbps: number;
  ratioToVxlan?: number;
  retransmits: number;
  /** Both daemons' CPU seconds per GB moved (udp only: the kernel backends have no daemon in the path). */
  daemonCpuSecondsPerGB?: number;
}

export async function main(argv: string[]): Promise<void> {
  const o = parseArgs(argv);
  const lab = new Lab();
  const stop = () => {
    lab.destroySync();
    process.exit(130);
  };
  process.once('SIGINT', stop);
  try {
    const etcd = new Etcd(lab);
    await etcd.start();
    const prefix = '/coreos.com/network';
    etcd.put(`${prefix}/config`, JSON.stringify({ Network: '198.19.0.0/17', Backend: { Type: 'udp' } }));
    if (o.mtu !== 1500) lab.setSwitchMtu(o.mtu);
    const hosts = [new Host(lab, 'h1', '198.18.0.1', o.mtu), new Host(lab, 'h2', '198.18.0.2', o.mtu)];
    const pods = new Map<Backend, Pod[]>();
    if (o.backends.includes('udp')) {
      for (const h of hosts) h.startFlanneld(etcd.endpoint, []);
      const envs = await Promise.all(hosts.map((h) => h.waitReady()));
      pods.set('udp', hosts.map((h, i) => {
        h.setupBridge(envs[i]);
        return h.addPod(envs[i]);
      }));
    }
    if (o.backends.includes('vxlan')) pods.set('vxlan', setupVxlan(hosts, o.mtu));
    if (o.backends.includes('host-gw')) pods.set('host-gw', setupHostGw(hosts, o.mtu));
    for (const [b, [, server]] of pods) {
      lab.spawnIn(server.ns, ['iperf3', '-s', '-B', server.ip], `${lab.dir}/iperf3-${b}.log`);
    }
    for (const [b, [client, server]] of pods) {
      await waitFor(`${b} path to answer ping`, () => client.ping(server.ip, 1, 0.2, 1).received === 1, 10_000, 200);
    }
    await sleep(300);

    const runs = new Map<Backend, { bps: number; bytes: number; retransmits: number; cpu: number }[]>();
    const total = o.repeat * o.backends.length;
    let done = 0;
    for (let r = 0; r < o.repeat; r++) {
      for (const b of o.backends) {
        process.stderr.write(`\r[${++done}/${total}] round ${r + 1}: ${b.padEnd(8)} (${o.duration} s)   `);
        const [client, server] = pods.get(b)!;
        const pids = b === 'udp' ? hosts.map((h) => h.daemon!.pid) : [];
        const cpu0 = pids.reduce((s, p) => s + cpuSeconds(p), 0);
        const res = await iperf(client, server, o.duration);
        const cpu = pids.reduce((s, p) => s + cpuSeconds(p), 0) - cpu0;
        (runs.get(b) ?? runs.set(b, []).get(b)!).push({ ...res, cpu });
      }
    }
    process.stderr.write('\n');

    const vx = runs.get('vxlan');
    const vxMedian = vx ? median(vx.map((x) => x.bps)) : undefined;
    const results: BenchResult[] = o.backends.map((b) => {
      const rs = runs.get(b)!;
      const med = median(rs.map((x) => x.bps));
      const bytes = rs.reduce((s, x) => s + x.bytes, 0);
      const cpu = rs.reduce((s, x) => s + x.cpu, 0);
      return {
        backend: b,
        gbps: rs.map((x) => x.bps / 1e9),
        medianGbps: med / 1e9,
        ratioToVxlan: vxMedian ? med / vxMedian : undefined,
        retransmits: rs.reduce((s, x) => s + x.retransmits, 0),
        daemonCpuSecondsPerGB: b === 'udp' ? cpu / (bytes / 1e9) : undefined,
      };
    });
    printTable(results, o);
    if (o.json) fs.writeFileSync(o.json, JSON.stringify({ date: new Date().toISOString(), options: o, results }, null, 2) + '\n');
  } finally {
    process.removeListener('SIGINT', stop);
    await lab.destroy();
  }
}

function printTable(results: BenchResult[], o: Options): void {
  const rows = [['backend', 'Gbit/s (median)', 'min – max', '× vxlan', 'retransmits', 'daemon CPU s/GB']];
  for (const r of results) {
    rows.push([
      r.backend,
      r.medianGbps.toFixed(2),
      `${Math.min(...r.gbps).toFixed(2)} – ${Math.max(...r.gbps).toFixed(2)}`,
      r.ratioToVxlan === undefined ? '–' : r.ratioToVxlan.toFixed(2),
      String(r.retransmits),
      r.daemonCpuSecondsPerGB === undefined ? '–' : r.daemonCpuSecondsPerGB.toFixed(2),
    ]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  console.log(`single-stream TCP, iperf3 ${o.duration} s × ${o.repeat} rounds, backends alternating, MTU ${o.mtu}`);
  for (const r of rows) console.log(r.map((cell, c) => cell.padEnd(widths[c])).join('  '));
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(String(e instanceof Error ? e.message : e));
    process.exit(1);
  });
}
