// The main thread's side of the optional TX worker (tx-worker.ts): starts it,
// keeps its lease table in step, folds its counters into the data plane's,
// and stops it.

import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { Counters, DROP_REASONS, DropReason } from '../../encap/counters';
import { LeaseTable } from '../../routes/lease-table';
import { type TxCounters, type TxWorkerData, snapshot } from './tx-worker';

export class TxThread {
  /** The worker's UDP source port. */
  port = 0;
  private workerBatches = 0;

  private constructor(
    private readonly worker: Worker,
    private readonly table: LeaseTable,
    private readonly counters: Counters,
  ) {}

  /**
   * Starts the worker and resolves once it forwards. `onExit` is called if it
   * dies on its own (not after stop()).
   */
  static async start(data: TxWorkerData, table: LeaseTable, counters: Counters, onExit: (err: unknown) => void): Promise<TxThread> {
    const worker = new Worker(path.join(__dirname, 'tx-worker.js'), { workerData: { ...data, txWorker: true, leases: snapshot(table) } });
    const t = new TxThread(worker, table, counters);
    await new Promise<void>((resolve, reject) => {
      const fail = (e: unknown) => reject(e instanceof Error ? e : new Error(`TX worker exited with ${String(e)}`));
      worker.once('error', fail);
      worker.once('exit', fail);
      worker.once('message', (m: { type: string; port: number }) => {
        worker.off('error', fail);
        worker.off('exit', fail);
        if (m.type !== 'ready') return reject(new Error(`TX worker: unexpected ${m.type}`));
        t.port = m.port;
        resolve();
      });
    });
    worker.on('message', (m: TxCounters | { type: 'stopped' }) => {
      if (m.type === 'counters') t.merge(m);
    });
    worker.on('error', (e) => {
      if (!t.stopping) onExit(e);
    });
    worker.on('exit', (code) => {
      if (!t.stopping) onExit(new Error(`TX worker exited with ${code}`));
    });
    return t;
  }

  private stopping = false;

  /** The lease table changed: the worker's copy follows. */
  leasesChanged(): void {
    this.worker.postMessage(snapshot(this.table));
  }

  private merge(m: TxCounters): void {
    const c = this.counters;
    c.txPackets = m.txPackets;
    c.txBytes = m.txBytes;
    c.icmpSent = m.icmpSent;
    c.icmpSuppressed = m.icmpSuppressed;
    c.batches += m.batches - this.workerBatches;
    this.workerBatches = m.batches;
    for (const r of DROP_REASONS) c.txDrops[DropReason[r]] = m.txDrops[r] ?? 0;
    const bySubnet = new Map(this.table.peers().map((p) => [p.subnet.toString(), p]));
    for (const [subnet, packets, bytes] of m.peers) {
      const p = bySubnet.get(subnet);
      if (!p) continue;
      const s = c.peerSlot(p.index);
      c.peer[s] = packets;
      c.peer[s + 1] = bytes;
    }
  }

  /** Stops the worker: its socket is closed, flannel0's fd is left to the caller. */
  async stop(): Promise<void> {
    this.stopping = true;
    const stopped = new Promise<void>((res) => {
      const t = setTimeout(res, 1000);
      this.worker.on('message', (m: { type: string }) => {
        if (m.type === 'stopped') {
          clearTimeout(t);
          res();
        }
      });
    });
    this.worker.postMessage({ type: 'stop' });
    await stopped;
    await this.worker.terminate();
  }
}
