// The data-plane thread: a worker_thread that does nothing but forward. It
// blocks in the addon's dpWait (epoll on flannel0, the UDP socket and an
// eventfd), so the kernel's readiness wakes it directly: no event loop, no
// timers, no other JS between a packet and the pump. The control plane on the
// main thread reaches it through three things only:
// - the lease table: each change is posted on a MessagePort and the eventfd
//   is written; the thread applies the changes between batches (no lock in
//   the per-packet path; a change is live within one wake-up, well under 1 ms);
// - the counters and batch-size histogram: shared memory it writes and
//   /metrics reads (src/encap/counters.ts);
// - trace requests and stop, on the same port; trace events go back on
//   parentPort.
//
// Messages, main -> thread (control port, read with receiveMessageOnPort):
//   { type: 'table', changes } (Int32Array, routes/table-change-codec.ts) | { type: 'trace', filter, sample, max } |
//   { type: 'untrace' } | { type: 'stop' }
// thread -> main (parentPort):
//   { type: 'forwarding', schedRefused?, mlockRefused? } | { type: 'peer-grown', peer } | { type: 'trace', event } | { type: 'stopped' }
//
// Anything thrown here ends the thread with an 'error' event on the main
// thread, which logs it and exits non-zero (src/encap/data-plane.ts).

import * as os from 'node:os';
import { type MessagePort, isMainThread, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { LeaseTable, type TableChange } from '../routes/lease-table';
import { decodeChanges } from '../routes/table-change-codec';
import { native, WAKE_BIT } from '../tun/native';
import { TunDevice } from '../tun/tun-device';
import { UdpSocket } from '../tun/udp-socket';
import { Counters, type SharedCounters } from './counters';
import { PriorityGovernor } from './priority';
import { Pump, type PumpOptions } from './pump';
import { type TraceEvent, type TraceFilter, Tracer } from './trace';

export interface DataPlaneThreadData {
  tunFd: number;
  tunName: string;
  udpFd: number;
  epfd: number;
  wakeFd: number;
  control: MessagePort;
  counters: SharedCounters;
  batchSizes: SharedArrayBuffer;
  /** Per-thread wait statistics (dpWait's stats array). */
  waitStats: SharedArrayBuffer;
  /** Int32 [tun_tso, tun_gro, udp_gso, udp_gro] (1 = on) as this thread's addon sees them: they turn off at a refusal here. */
  offloads: SharedArrayBuffer;
  pump: PumpOptions;
  port: number;
  table: TableChange;
  local: { ip: number; port: number };
  /** µs of non-blocking polls before blocking (0 = block at once). */
  spinUs: number;
  /** The main thread's offload state of [tunFd, udpFd] (native offloadState), adopted before first use. */
  offloadState: [number, number];
  /** Stage timing (Pump.timing), when FLANNEL_TS_DP_TIMING=1. */
  timing?: SharedArrayBuffer;
  /**
   * A thread that forwarded within the last WARM_WINDOW_MS but has nothing
   * to do wakes every warmMs to poll and rehearse (Pump.warm); 0 = never. A
   * daemon with no traffic at all stops rehearsing: idle means idle.
   */
  warmMs: number;
  /** setpriority for this thread only; undefined = leave it. */
  nice?: number;
  /** sched_setattr time slice (µs) for this thread; 0 or undefined = the kernel's default. */
  sliceUs?: number;
  /** lockMappedFiles once at start: the forwarding path's code stays resident. */
  mlock: boolean;
}

export type ControlMessage = { type: 'table'; changes: Int32Array } | { type: 'trace'; filter: TraceFilter; sample: number; max: number } | { type: 'untrace' } | { type: 'stop' };

export type ThreadMessage =
  | { type: 'forwarding'; schedRefused?: string; mlockRefused?: string }
  | { type: 'peer-grown'; peer: SharedArrayBuffer }
  | { type: 'trace'; event: TraceEvent }
  | { type: 'stopped' };

/** Tun fd bit and UDP fd bit in dpWait's result (their order in dpWaitOpen). */
export const TUN_BIT = 1;
export const UDP_BIT = 2;
/** How often (ms) the thread republishes its offload flags; also its longest sleep. */
const PUBLISH_MS = 1000;
/** How long after the last packet the warm-up goes on (sparse traffic keeps it going). */
const WARM_WINDOW_MS = 60_000;

function run(d: DataPlaneThreadData): void {
  const out = parentPort!;
  const post = (m: ThreadMessage) => out.postMessage(m);
  const n = native();
  n.threadName('flanneld-dp'); // as ps -L / top -H / perf show it
  // Without CAP_SYS_NICE (or on a kernel that refuses a slice) the thread
  // keeps the process's scheduling: slower to wake under load, not broken.
  const refused: string[] = [];
  const sched = (what: string, f: () => void) => {
    try {
      f();
    } catch (e) {
      refused.push(`${what}: ${(e as Error).message}`);
    }
  };
  const normalNice = os.getPriority(); // this thread's, i.e. the process's
  let governor: PriorityGovernor | undefined;
  if (d.nice !== undefined && d.nice !== normalNice) {
    sched(`nice ${d.nice}`, () => {
      n.threadNice(d.nice!);
      governor = new PriorityGovernor((v) => n.threadNice(v), d.nice!, normalNice);
    });
  }
  if (d.sliceUs) sched(`slice ${d.sliceUs} µs`, () => n.threadSlice(d.sliceUs!)); // after the nice value, which it keeps
  const schedRefused = refused.length > 0 ? refused.join('; ') : undefined;
  // Once the addon is loaded on this thread: everything the path maps is mapped by now.
  const locked = d.mlock ? n.lockMappedFiles() : undefined;
  const mlockRefused = locked?.error && `${locked.failed} mappings: ${locked.error}`;
  const table = new LeaseTable(d.port);
  table.applyChange(d.table);
  const counters = new Counters(d.counters);
  counters.onPeerGrown = (peer) => post({ type: 'peer-grown', peer });
  n.adoptOffloadState(d.tunFd, d.udpFd, d.offloadState[0], d.offloadState[1]);
  const tun = TunDevice.attach(d.tunFd, d.tunName);
  const udp = UdpSocket.attach(d.udpFd);
  const pump = new Pump(tun, udp, table, counters, d.pump, new Float64Array(d.batchSizes));
  pump.localAddress = d.local;
  const stats = new Float64Array(d.waitStats);
  const timing = d.timing ? new Float64Array(d.timing) : undefined;
  if (timing) {
    pump.timing = timing;
    pump.clock = n.dpClock;
  }
  const offloads = new Int32Array(d.offloads);
  const publishOffloads = () => {
    const t = tun.offloads;
    const u = udp.offloads;
    offloads[0] = t.tso ? 1 : 0;
    offloads[1] = t.gro ? 1 : 0;
    offloads[2] = u.gso ? 1 : 0;
    offloads[3] = u.gro ? 1 : 0;
  };
  publishOffloads();
  let published = stats[3];
  let lastTraffic = -Infinity; // no warm-up before the first packet

  /** Applies every queued control message; false once told to stop. */
  const control = (): boolean => {
    for (;;) {
      const r = receiveMessageOnPort(d.control);
      if (r === undefined) return true;
      const m = r.message as ControlMessage;
      if (m.type === 'table') for (const c of decodeChanges(m.changes)) table.applyChange(c);
      else if (m.type === 'trace') pump.tracer = new Tracer(m.filter, (event) => post({ type: 'trace', event }), m.sample, m.max);
      else if (m.type === 'untrace') pump.tracer = undefined;
      else if (m.type === 'stop') return false;
    }
  };

  control(); // changes made while the thread started
  post({ type: 'forwarding', schedRefused, mlockRefused });
  for (;;) {
    const warming = d.warmMs > 0 && stats[3] - lastTraffic < WARM_WINDOW_MS * 1e6;
    const ready = n.dpWait(d.epfd, d.wakeFd, warming ? d.warmMs : PUBLISH_MS, d.spinUs, stats);
    if ((ready & (TUN_BIT | UDP_BIT)) !== 0) lastTraffic = stats[3];
    if (governor !== undefined) {
      governor.tick(stats[3], stats[2]);
      stats[4] = governor.boosted ? 1 : 0;
      stats[5] = governor.changes;
    }
    if (ready === 0 && warming) {
      pump.warm(); // idle for warmMs between packets: keep the path resident
      stats[6] += 1;
    }
    if (timing !== undefined) timing[8] = stats[3]; // the wake-up, for the stage times
    if ((ready & WAKE_BIT) !== 0 && !control()) break;
    if ((ready & TUN_BIT) !== 0) pump.pumpTun();
    if ((ready & UDP_BIT) !== 0) pump.pumpUdp();
    // Offloads turn off by themselves at a refusal, in this thread's addon
    // state: republished at most once a PUBLISH_MS (two small objects, not per packet).
    if (stats[3] - published >= PUBLISH_MS * 1e6) {
      publishOffloads();
      published = stats[3];
    }
  }
  // The fds belong to the main thread, which closes them once this thread has exited.
  tun.close();
  udp.close();
  d.control.close();
  post({ type: 'stopped' });
}

// The thread may be started before flannel0 exists (DataPlane.spawnThread,
// so that its boot overlaps the device setup): it waits for one 'start'
// message carrying its data, then never returns to its event loop.
if (!isMainThread && (workerData as { dataPlaneThread?: boolean } | undefined)?.dataPlaneThread) {
  parentPort!.once('message', (m: { type: 'start'; data: DataPlaneThreadData }) => run(m.data));
}
