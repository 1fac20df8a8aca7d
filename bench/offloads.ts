// Each data-plane offload's contribution, measured in one run: two lab hosts,
// kernel vxlan (through flannel-ts's flanneld) as the yardstick, and the udp
// backend restarted with each offload switched off in turn (the flags
// --tun-offload, --tun-gro, --udp-gso, --udp-gro on BOTH hosts), a single TCP
// stream from a pod on h1 to a pod on h2 (iperf3), rounds in rotating order,
// medians. Beside throughput: TCP retransmits, each daemon's CPU seconds per
// GB (from /proc), and the average size of what crossed flannel0 (sender: the
// skbs the kernel queued to it, ~1.4 KB when it segments, tens of KB with TSO;
// receiver: the skbs we wrote, tens of KB when coalesced).
//
//   node dist/bench/offloads.js [--duration S] [--repeat N] [--streams N]
//        [--configs all,no-tun-offload,...] [--json FILE]
//
// Network safety: everything runs in namespaces of its own Lab (removed on
// exit, error or Ctrl-C); underlay 198.18.0.0/16, overlay 198.19.0.0/16.

import * as fs from 'node:fs';
import * as os from 'node:os';
import { Lab } from '../src/lab/lab';
import { Etcd } from '../src/lab/etcd';
import { Host, type Pod } from '../src/lab/host';
import { startBackendCluster } from '../src/lab/topology';
import { sleep, waitFor } from '../src/lab/sh';
import { execStatus } from '../src/util/exec';

interface Config {
  name: string;
  /** Flags for flanneld (udp) on both hosts. */
  flags: string[];
  /** Run in each host's namespace after the daemon is ready. */
  after?: (h: Host) => void;
  /** Environment for the daemons. */
  env?: NodeJS.ProcessEnv;
}

const OFF_ALL = ['--tun-offload=false', '--tun-gro=false', '--udp-gso=false', '--udp-gro=false'];

export const CONFIGS: Config[] = [
  { name: 'all', flags: [] },
  { name: 'no-tun-offload', flags: ['--tun-offload=false'] },
  { name: 'no-tun-gro', flags: ['--tun-gro=false'] },
  { name: 'no-udp-gso', flags: ['--udp-gso=false'] },
  { name: 'no-udp-gro', flags: ['--udp-gro=false'] },
  // flannel0's super-packets capped at 62 000 bytes (one UDP send each); see src/tun/configure.ts.
  { name: 'gso-cap', flags: [], after: (h) => h.exec(['ip', 'link', 'set', 'dev', 'flannel0', 'gso_max_size', '62000', 'gso_max_segs', '64']) },
  { name: 'none', flags: OFF_ALL },
];

interface Options {
  duration: number;
  repeat: number;
  streams: number;
  configs: Config[];
  json?: string;
}

function parse(argv: string[]): Options {
  const o: Options = { duration: 10, repeat: 3, streams: 1, configs: [...CONFIGS] };
  for (let i = 0; i < argv.length; i++) {
    const [k, inline] = argv[i].replace(/^--?/, '').split('=', 2);
    const v = () => inline ?? argv[++i];
    if (k === 'duration') o.duration = Number(v());
    else if (k === 'repeat') o.repeat = Number(v());
    else if (k === 'streams') o.streams = Number(v());
    else if (k === 'json') o.json = v();
    else if (k === 'configs') {
      const names = v().split(',');
      o.configs = names.map((n) => {
        const c = CONFIGS.find((x) => x.name === n);
        if (!c) throw new Error(`unknown config ${n} (one of ${CONFIGS.map((x) => x.name).join(', ')})`);
        return c;
      });
    } else throw new Error(`unknown option ${argv[i]}`);
  }
  return o;
}

function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** flannel0's kernel counters in host h: skbs and bytes queued to us (tx) and written by us (rx). */
function devStats(h: Host): { txPackets: number; txBytes: number; rxPackets: number; rxBytes: number } {
  const out = h.exec(['sh', '-c', 'cd /sys/class/net/flannel0/statistics && cat tx_packets tx_bytes rx_packets rx_bytes']);
  const [txPackets, txBytes, rxPackets, rxBytes] = out.trim().split('\n').map(Number);
  return { txPackets, txBytes, rxPackets, rxBytes };
}

async function iperf(client: Pod, server: Pod, seconds: number, streams: number): Promise<{ gbps: number; bytes: number; retransmits: number }> {
  for (let attempt = 0; ; attempt++) {
    const r = await execStatus(['ip', 'netns', 'exec', client.ns, 'iperf3', '-c', server.ip, '-t', String(seconds), '-P', String(streams), '-J'], { timeoutMs: (seconds + 30) * 1000 });
    let j: Record<string, any> = {};
    try {
      j = JSON.parse(r.stdout || '{}');
    } catch {
      /* below */
    }
    if (j.end && !j.error) return { gbps: j.end.sum_received.bits_per_second / 1e9, bytes: j.end.sum_received.bytes, retransmits: j.end.sum_sent.retransmits ?? 0 };
    if (attempt >= 2) throw new Error(`iperf3 failed: ${j.error ?? r.stderr}`);
    await sleep(500);
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

interface Sample {
  gbps: number;
  retransmits: number;
  senderCpuPerGB: number;
  receiverCpuPerGB: number;
  /** Average bytes per skb the kernel queued to the sender's flannel0. */
  senderTunRead: number;
  /** Average bytes per skb the receiver wrote to its flannel0. */
  receiverTunWrite: number;
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces)');
  const lab = new Lab();
  const bail = () => {
    lab.destroySync();
    process.exit(130);
  };
  process.once('SIGINT', bail);
  process.once('SIGTERM', bail);
  try {
    const etcd = new Etcd(lab);
    await etcd.start();
    const hosts = [new Host(lab, 'h1', '198.18.0.1'), new Host(lab, 'h2', '198.18.0.2')];
    // No admin socket: its default path is outside the lab.
    const vx = await startBackendCluster(etcd, hosts, 'vxlan', { prefix: '/flannel-ts-offloads/vxlan/network', extraArgs: ['--admin-socket='] });
    const udp = await startBackendCluster(etcd, hosts, 'udp', { prefix: '/flannel-ts-offloads/udp/network', extraArgs: ['--admin-socket='] });
    const vxPair: [Pod, Pod] = [vx[0].pods[0], vx[1].pods[0]];
    const udpPair: [Pod, Pod] = [udp[0].pods[0], udp[1].pods[0]];
    lab.spawnIn(vxPair[1].ns, ['iperf3', '-s', '-B', vxPair[1].ip], `${lab.dir}/iperf3-vx.log`);
    lab.spawnIn(udpPair[1].ns, ['iperf3', '-s', '-B', udpPair[1].ip], `${lab.dir}/iperf3-udp.log`);
    await sleep(500);

    const restart = async (c: Config) => {
      for (const n of udp) await n.stop('SIGTERM');
      // BackendNode.start spawns with process.env: the config's variables for this start only.
      const saved = Object.keys(c.env ?? {}).map((k) => [k, process.env[k]] as const);
      Object.assign(process.env, c.env ?? {});
      try {
        for (const n of udp) n.start(c.flags);
      } finally {
        for (const [k, v] of saved) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
      await Promise.all(udp.map((n) => n.waitReady()));
      try {
        await waitFor('udp pods reach each other', () => udpPair[0].ping(udpPair[1].ip, 1, 0.2, 1).received === 1, 20_000, 100);
      } catch (e) {
        for (const n of udp) process.stderr.write(`--- ${n.host.name} (${c.name})\n${n.logTail(4000)}\n`);
        throw e;
      }
      for (const h of hosts) c.after?.(h);
    };

    const samples = new Map<string, Sample[]>([['vxlan', []], ...o.configs.map((c) => [c.name, []] as [string, Sample[]])]);
    const names = ['vxlan', ...o.configs.map((c) => c.name)];
    for (let r = 0; r < o.repeat; r++) {
      const order = [...names.slice(r % names.length), ...names.slice(0, r % names.length)];
      for (const name of order) {
        process.stderr.write(`round ${r + 1}/${o.repeat}: ${name}\n`);
        if (name === 'vxlan') {
          const t = await iperf(vxPair[0], vxPair[1], o.duration, o.streams);
          samples.get(name)!.push({ gbps: t.gbps, retransmits: t.retransmits, senderCpuPerGB: NaN, receiverCpuPerGB: NaN, senderTunRead: NaN, receiverTunWrite: NaN });
          continue;
        }
        const c = o.configs.find((x) => x.name === name)!;
        // Every measurement starts from freshly started daemons with the config's flags.
        await restart(c);
        const [p1, p2] = udp.map((n) => n.daemon!.pid);
        const cpu1 = cpuSeconds(p1);
        const cpu2 = cpuSeconds(p2);
        const s1 = devStats(hosts[0]);
        const s2 = devStats(hosts[1]);
        const t = await iperf(udpPair[0], udpPair[1], o.duration, o.streams);
        const e1 = devStats(hosts[0]);
        const e2 = devStats(hosts[1]);
        const gb = t.bytes / 1e9;
        samples.get(name)!.push({
          gbps: t.gbps,
          retransmits: t.retransmits,
          senderCpuPerGB: (cpuSeconds(p1) - cpu1) / gb,
          receiverCpuPerGB: (cpuSeconds(p2) - cpu2) / gb,
          senderTunRead: (e1.txBytes - s1.txBytes) / Math.max(1, e1.txPackets - s1.txPackets),
          receiverTunWrite: (e2.rxBytes - s2.rxBytes) / Math.max(1, e2.rxPackets - s2.rxPackets),
        });
        process.stderr.write(`  ${t.gbps.toFixed(2)} Gbit/s\n`);
      }
    }

    const vxMedian = median(samples.get('vxlan')!.map((s) => s.gbps));
    const rows = names.map((name) => {
      const ss = samples.get(name)!;
      const m = (f: (s: Sample) => number) => median(ss.map(f));
      return {
        name,
        gbps: m((s) => s.gbps),
        all: ss.map((s) => +s.gbps.toFixed(2)),
        ratio: m((s) => s.gbps) / vxMedian,
        retransmits: m((s) => s.retransmits),
        senderCpuPerGB: m((s) => s.senderCpuPerGB),
        receiverCpuPerGB: m((s) => s.receiverCpuPerGB),
        senderTunRead: m((s) => s.senderTunRead),
        receiverTunWrite: m((s) => s.receiverTunWrite),
      };
    });
    const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
    const lines = [
      `${o.streams} TCP stream(s), iperf3 ${o.duration} s, median of ${o.repeat}; ${os.cpus().length} vCPUs, Linux ${os.release()}`,
      '',
      '| config | Gbit/s (median) | runs | × vxlan | retransmits | sender CPU s/GB | receiver CPU s/GB | sender flannel0 B/skb | receiver flannel0 B/skb |',
      '|---|---|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.name} | ${f(r.gbps)} | ${r.all.join(' / ')} | ${f(r.ratio)} | ${f(r.retransmits, 0)} | ${f(r.senderCpuPerGB)} | ${f(r.receiverCpuPerGB)} | ${f(r.senderTunRead, 0)} | ${f(r.receiverTunWrite, 0)} |`,
      ),
    ];
    process.stdout.write(lines.join('\n') + '\n');
    if (o.json) fs.writeFileSync(o.json, JSON.stringify({ options: { ...o, configs: o.configs.map((c) => c.name) }, rows }, null, 2));
  } finally {
    await lab.destroy();
  }
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
