// The bench's measurements between two pods: iperf3 (TCP, small-packet UDP),
// ping RTTs, and a daemon's CPU time and memory from /proc.

import * as fs from 'node:fs';
import type { Pod } from '../lab/host';
import { execStatus } from '../util/exec';
import { sleep } from '../util/sleep';

export interface TcpResult {
  bps: number;
  bytes: number;
  retransmits: number;
}

export interface UdpResult {
  /** Packets received per second at the server. */
  pps: number;
  bytes: number;
  lossPercent: number;
}

export interface PingResult {
  rttsMs: number[];
  sent: number;
  received: number;
}

/** The parts of `iperf3 -J` this file reads. */
interface IperfSum {
  bits_per_second: number;
  bytes: number;
  seconds: number;
  retransmits?: number;
  lost_percent?: number;
}
interface IperfEnd {
  sum_received?: IperfSum;
  sum_sent?: IperfSum;
  sum?: IperfSum;
}
interface IperfJson {
  error?: string;
  end?: IperfEnd;
}

async function iperf3(client: Pod, args: string[], timeoutMs: number): Promise<IperfEnd> {
  // One retry: a server that has just finished a test may refuse the next one for a moment.
  for (let attempt = 0; ; attempt++) {
    const r = await execStatus(['ip', 'netns', 'exec', client.ns, 'iperf3', ...args, '-J'], { timeoutMs });
    let j: IperfJson = {};
    try {
      j = JSON.parse(r.stdout || '{}');
    } catch {
      /* reported below */
    }
    if (!j.error && j.end) return j.end;
    if (attempt >= 2) throw new Error(`iperf3 ${args.join(' ')} from ${client.ip} failed: ${j.error ?? r.stderr.trim() ?? `exit ${r.status}`}`);
    await sleep(500);
  }
}

/** TCP throughput from `client` to the iperf3 server at `server`, `streams` parallel streams; `bitrate` (e.g. '1G') caps each stream. */
export async function tcp(client: Pod, server: Pod, seconds: number, streams = 1, bitrate?: string): Promise<TcpResult> {
  const cap = bitrate ? ['-b', bitrate] : [];
  const end = await iperf3(client, ['-c', server.ip, '-t', String(seconds), '-P', String(streams), ...cap], (seconds + 30) * 1000);
  return { bps: end.sum_received!.bits_per_second, bytes: end.sum_received!.bytes, retransmits: end.sum_sent?.retransmits ?? 0 };
}

/** Small-packet UDP: `len`-byte payloads sent as fast as iperf3 can (-b 0); what arrives, per second. */
export async function udpSmall(client: Pod, server: Pod, seconds: number, len = 64): Promise<UdpResult> {
  const end = await iperf3(client, ['-c', server.ip, '-u', '-l', String(len), '-b', '0', '-t', String(seconds)], (seconds + 30) * 1000);
  const rx = (end.sum_received ?? end.sum)!;
  const packets = rx.bytes / len;
  return { pps: packets / rx.seconds, bytes: rx.bytes, lossPercent: rx.lost_percent ?? 0 };
}

/** `count` pings at `intervalS` (root allows 10 ms); the RTT of every reply. */
export async function ping(client: Pod, server: Pod, count = 200, intervalS = 0.01): Promise<PingResult> {
  const r = await execStatus(['ip', 'netns', 'exec', client.ns, 'ping', '-n', '-c', String(count), '-i', String(intervalS), '-W', '1', server.ip], { timeoutMs: (count * intervalS + 10) * 1000 });
  const rtts = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  return { rttsMs: rtts, sent: count, received: rtts.length };
}

/**
 * The whole machine's busy CPU seconds so far: user + nice + system + irq +
 * softirq of every CPU, from /proc/stat's "cpu" line (USER_HZ = 100). The
 * kernel backends forward in softirq, which no daemon's CPU time shows.
 */
export function machineBusySeconds(): number {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq ...
  return (f[0] + f[1] + f[2] + f[5] + f[6]) / 100;
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat; 0 if it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ (100)
  } catch {
    return 0;
  }
}

/** Resident and peak resident memory of a process, MiB, from /proc/<pid>/status. */
export function memoryMiB(pid: number): { rss: number; peak: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
