// One ping, observed: a trace on the sending and on the receiving flanneld
// (through their admin sockets) and tcpdump on the sender's underlay NIC,
// all attached before the first echo request leaves. Used by the terminal
// demo's step 5 and by the web view's packet journey.

import * as fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import type { Lab } from '../lab/lab';
import type { Host, Pod } from '../lab/host';
import { waitFor } from '../lab/sh';
import { execStatus } from '../util/exec';
import { attachTrace, type PendingTrace, type TraceEventJson } from './admin-client';
import { readPcap } from './pcap';

export interface Traced {
  /** The daemon's JSON line, as `flannel-ts trace --json` prints it. */
  line: string;
  ev: TraceEventJson;
}

export interface ObservedPing {
  ping: { status: number | null; output: string; received: number; sent: number };
  /** The sending daemon's event for the first echo request (undefined: none came, or no trace was asked). */
  tx?: Traced;
  rx?: Traced;
  /** The first datagram tcpdump captured, and the pcap's link type. */
  frame?: Buffer;
  linkType?: number;
  /** What tcpdump said on stderr (listening on..., packets captured). */
  tcpdumpLog: string;
  pcapFile: string;
}

export interface ObserveOptions {
  src: Pod;
  dst: Pod;
  /** Admin sockets to trace on (sender's and receiver's flanneld); none for a kernel backend. */
  txSocket?: string;
  rxSocket?: string;
  /** Where tcpdump listens (on eth0) and what it keeps: UDP to this port and host. */
  capture: { host: Host; port: number; dstIp: string };
  count: number;
  /** Names the pcap and log files in the lab's directory. */
  tag: string;
}

/** tcpdump's command line for the capture (shown by the terminal demo as it is run). */
export function tcpdumpArgv(pcapFile: string, port: number, dstIp: string): string[] {
  return ['tcpdump', '-i', 'eth0', '-n', '-U', '-Z', 'root', '-c', '1', '-w', pcapFile, 'udp', 'port', String(port), 'and', 'dst', 'host', dstIp];
}

/** Waits up to `ms` for a process we started to exit, then ends it (by its pid). */
async function settle(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const t = setTimeout(() => child.kill('SIGTERM'), ms);
  await exited;
  clearTimeout(t);
}

export async function observePing(lab: Lab, o: ObserveOptions): Promise<ObservedPing> {
  const pcapFile = `${lab.dir}/${o.tag}.pcap`;
  const tdLog = `${lab.dir}/${o.tag}-tcpdump.log`;
  fs.rmSync(pcapFile, { force: true });
  fs.writeFileSync(tdLog, '');
  const filter = { host: o.dst.ip, protocol: 1 };
  const traces: (PendingTrace | undefined)[] = [];
  let td: ChildProcess | undefined;
  try {
    traces.push(o.txSocket ? await attachTrace(o.txSocket, filter) : undefined);
    traces.push(o.rxSocket ? await attachTrace(o.rxSocket, filter) : undefined);
    td = lab.spawnIn(o.capture.host.ns, tcpdumpArgv(pcapFile, o.capture.port, o.capture.dstIp), tdLog);
    await waitFor('tcpdump listening', () => /listening on/.test(fs.readFileSync(tdLog, 'utf8')), 10_000);
    const r = await execStatus(['ip', 'netns', 'exec', o.src.ns, 'ping', '-n', '-c', String(o.count), '-i', '0.2', '-W', '2', o.dst.ip], { timeoutMs: 10_000 + o.count * 1000 });
    const output = r.stdout + r.stderr;
    const received = Number(/(\d+) received/.exec(output)?.[1] ?? 0);
    // A dropped packet never reaches the far daemon or the wire: stop waiting shortly after the ping.
    await settle(td, 1500);
    const lines = await Promise.all(traces.map((t) => (t ? Promise.race([t.first, new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000))]) : undefined)));
    const traced = (l: string | undefined): Traced | undefined => (l ? { line: l, ev: JSON.parse(l) as TraceEventJson } : undefined);
    const out: ObservedPing = { ping: { status: r.status, output, received, sent: o.count }, tx: traced(lines[0]), rx: traced(lines[1]), tcpdumpLog: fs.readFileSync(tdLog, 'utf8'), pcapFile };
    if (fs.existsSync(pcapFile) && fs.statSync(pcapFile).size > 24) {
      const pcap = readPcap(fs.readFileSync(pcapFile));
      if (pcap.records.length > 0) {
        out.frame = Buffer.from(pcap.records[0].data);
        out.linkType = pcap.linkType;
      }
    }
    return out;
  } finally {
    for (const t of traces) t?.stop();
    if (td && td.exitCode === null && td.signalCode === null) td.kill('SIGKILL');
  }
}

/** Waits up to `ms` for a process we started to exit; then ends it (by its pid). Never throws. */
export async function exitWithin(child: ChildProcess, ms: number): Promise<void> {
  await settle(child, ms);
}
