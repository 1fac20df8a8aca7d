// The udp backend's optional TX thread (FLANNEL_TS_TX_WORKER=1): flannel0 ->
// peers runs here, in a worker_thread with its own event loop and V8 heap,
// while the main thread keeps peers -> flannel0 and the control plane.
//
// The worker reads flannel0 through the main thread's fd (fds are
// process-wide; the addon keeps per-thread offload state and probes the fd),
// and sends from its own UDP socket bound to the node's address and an
// ephemeral port: a second source port, so a receiver can tell the two
// threads' flows apart (a stock flannel peer accepts datagrams from any port
// of a lease holder's address, as flannel-ts does).
//
// It keeps its own copy of the lease table, replaced by the main thread on
// every change; its counters go back to the main thread twice a second.
//
// Messages, main -> worker: { type: 'leases', local, leases } | { type: 'stop' }
//           worker -> main: { type: 'ready', port } | { type: 'counters', ... } | { type: 'stopped' }

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { DataPlane } from '../../encap/data-plane';
import { DROP_REASONS, DropReason } from '../../encap/counters';
import { Ip4Net } from '../../routes/ip4';
import { LeaseTable } from '../../routes/lease-table';
import { TunDevice } from '../../tun/tun-device';
import { UdpSocket } from '../../tun/udp-socket';

export interface TxWorkerData {
  tunFd: number;
  tunName: string;
  /** The node's underlay address (host byte order) to bind the worker's socket to. */
  bindIp: number;
  port: number;
  sndbuf: number;
  gso: boolean;
}

/** The lease table as the main thread sends it. */
export interface LeaseSnapshot {
  type: 'leases';
  local: string | undefined;
  leases: { subnet: string; publicIp: number }[];
}

export interface TxCounters {
  type: 'counters';
  txPackets: number;
  txBytes: number;
  icmpSent: number;
  icmpSuppressed: number;
  batches: number;
  txDrops: Record<string, number>;
  /** Per peer subnet: [packets, bytes] sent. */
  peers: [string, number, number][];
}

export function snapshot(table: LeaseTable): LeaseSnapshot {
  return { type: 'leases', local: table.localSubnet?.toString(), leases: table.peers().map((p) => ({ subnet: p.subnet.toString(), publicIp: p.publicIp })) };
}

function apply(table: LeaseTable, s: LeaseSnapshot): void {
  table.setLocalSubnet(s.local === undefined ? undefined : Ip4Net.parse(s.local));
  table.reset(s.leases.map((l) => ({ subnet: Ip4Net.parse(l.subnet), publicIp: l.publicIp, backendType: 'udp' })));
}

function main(): void {
  const d = workerData as TxWorkerData & { leases: LeaseSnapshot };
  const port = parentPort!;
  const table = new LeaseTable(d.port);
  apply(table, d.leases);
  const tun = TunDevice.attach(d.tunFd, d.tunName);
  const udp = UdpSocket.open(d.bindIp, 0, { sndbuf: d.sndbuf, gso: d.gso, gro: false });
  const dp = new DataPlane(tun, udp, table, { directions: 'tx' });
  dp.start();

  const report = () => {
    const c = dp.counters;
    const txDrops: Record<string, number> = {};
    for (const r of DROP_REASONS) txDrops[r] = c.txDrops[DropReason[r]];
    const peers: [string, number, number][] = table.peers().map((p) => {
      const s = c.peerSlot(p.index);
      return [p.subnet.toString(), c.peer[s], c.peer[s + 1]];
    });
    const msg: TxCounters = { type: 'counters', txPackets: c.txPackets, txBytes: c.txBytes, icmpSent: c.icmpSent, icmpSuppressed: c.icmpSuppressed, batches: c.batches, txDrops, peers };
    port.postMessage(msg);
  };
  const timer = setInterval(report, 500);
  port.on('message', (m: LeaseSnapshot | { type: 'stop' }) => {
    if (m.type === 'leases') {
      apply(table, m);
    } else if (m.type === 'stop') {
      clearInterval(timer);
      report();
      dp.stop(); // closes the worker's socket; flannel0's fd stays with the main thread
      port.postMessage({ type: 'stopped' });
      port.close();
    }
  });
  port.postMessage({ type: 'ready', port: udp.localPort });
}

if (!isMainThread && (workerData as { txWorker?: boolean } | undefined)?.txWorker) main();
