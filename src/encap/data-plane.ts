// The main thread's handle on the data-plane thread (data-plane-thread.ts):
// starts it on flannel0 and the UDP socket, keeps its lease table in step,
// relays trace requests and events, and stops it. Counters and the batch
// histogram are shared memory: reading them needs no message.
//
// Lifetime rules:
// - start() resolves once the thread is forwarding (`forwarding` is the same
//   promise; readiness waits on it). It rejects if the thread dies first.
// - If the thread dies afterwards on its own, onDeath(err) is called: flanneld
//   logs it and exits non-zero (it never runs on without forwarding).
// - stop() tells the thread to stop, waits until it has exited (terminating it
//   after a grace period), and only then closes flannel0, the socket, the
//   epoll fd and the eventfd: no thread or fd is left holding flannel0.

import * as path from 'node:path';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { LeaseTable, TableChange } from '../routes/lease-table';
import { encodeChanges } from '../routes/table-change-codec';
import { native } from '../tun/native';
import type { TunDevice } from '../tun/tun-device';
import type { UdpSocket } from '../tun/udp-socket';
import { Counters } from './counters';
import type { ControlMessage, DataPlaneThreadData, ThreadMessage } from './data-plane-thread';
import { Pump, type PumpOptions } from './pump';
import type { Tracer } from './trace';

export interface DataPlaneOptions extends PumpOptions {
  /** This node's UDP address (host byte order), for the outer header in traces. */
  local?: { ip: number; port: number };
  /** µs the thread polls without blocking after its work, before it sleeps (--dataplane-spin-us). */
  spinUs?: number;
  /** Nice value of the data-plane thread alone (--dataplane-nice); undefined leaves it as the process's. */
  nice?: number;
  /** The thread's scheduler time slice in µs (--dataplane-slice-us); 0 or undefined leaves the kernel's default. */
  sliceUs?: number;
  /** Keep the mapped program files resident (native lockMappedFiles) when the thread starts (--dataplane-mlock). */
  mlock?: boolean;
  /** ms between warm-up rehearsals of an idle thread (Pump.warm); 0 = none (--dataplane-warmup-ms). */
  warmMs?: number;
  /** Time the pump's stages (Pump.timing): a few clock calls per wake-up (--dataplane-timing). */
  timing?: boolean;
  /** Something worth a log line that does not stop forwarding (e.g. the nice value was refused). */
  onWarning?: (msg: string) => void;
  /** Called if the thread dies on its own after start. */
  onDeath?: (err: Error) => void;
}

/** A data-plane thread started ahead of its DataPlane (DataPlane.spawnThread). */
export interface SpareThread {
  readonly worker: Worker;
  exited: boolean;
  dispose(): void;
}

/** How long stop() waits for the thread to leave its loop before terminating it. */
const STOP_GRACE_MS = 2000;

export class DataPlane {
  readonly counters = new Counters();
  readonly batchSizes: Float64Array;
  /**
   * Written by the thread: dpWait's [blocked wake-ups, wake-ups while spinning, ns blocked, last wake (monotonic ns)],
   * then [4] 1 while its nice value is boosted, [5] priority changes (PriorityGovernor), [6] warm-up rehearsals.
   */
  readonly waitStats = new Float64Array(new SharedArrayBuffer(7 * 8));
  /** Pump.timing's shared words when opts.timing, else undefined. */
  readonly timing: Float64Array | undefined;
  /** [tun_tso, tun_gro, udp_gso, udp_gro] as the thread sees them (1 = on). */
  readonly offloads = new Int32Array(new SharedArrayBuffer(4 * 4));
  /** Resolves once the thread forwards; rejects if it dies before. */
  readonly forwarding: Promise<void>;
  private forwardingNow = false;
  private worker: Worker | undefined;
  private wait: { epfd: number; wakeFd: number } | undefined;
  private control: MessageChannel | undefined;
  private unsubscribe: (() => void) | undefined;
  private tracer: Tracer | undefined;
  private stopping = false;
  /** Lease changes of this main-loop turn, not yet posted (queueChange). */
  private pendingChanges: TableChange[] = [];
  private exited: Promise<void> | undefined;
  private startThread!: () => void;

  /**
   * Starts a data-plane thread that boots (a V8 isolate, its modules) and
   * then waits for its data: spawn it early, pass it to the constructor, and
   * the boot overlaps setting up flannel0 and the socket (a quick restart
   * forwards sooner). Unreferenced until used; `dispose` ends an unused one.
   */
  static spawnThread(): SpareThread {
    const worker = new Worker(path.join(__dirname, 'data-plane-thread.js'), {
      workerData: { dataPlaneThread: true },
      // The thread's own heap stays small: it allocates nothing per packet.
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    worker.unref();
    const spare: SpareThread = { worker, exited: false, dispose: () => void worker.terminate() };
    worker.once('exit', () => {
      spare.exited = true;
    });
    worker.on('error', () => undefined); // a spare that fails to boot is replaced at start
    return spare;
  }

  constructor(
    private readonly tun: TunDevice,
    private readonly udp: UdpSocket,
    private readonly table: LeaseTable,
    private readonly opts: DataPlaneOptions = {},
    private spare?: SpareThread,
  ) {
    this.batchSizes = new Float64Array(new SharedArrayBuffer(Pump.histogramLength(opts) * 8));
    this.timing = opts.timing ? new Float64Array(new SharedArrayBuffer(12 * 8)) : undefined;
    this.forwarding = new Promise<void>((resolve, reject) => {
      this.startThread = () => this.spawn(resolve, reject);
    });
    this.forwarding.catch(() => undefined); // observed by start(); no unhandled rejection if nobody else waits
  }

  /** True once the thread forwards, until stop() or its death. */
  get isForwarding(): boolean {
    return this.forwardingNow;
  }

  /** Starts the thread; resolves when it forwards. */
  start(): Promise<void> {
    this.startThread();
    return this.forwarding;
  }

  private spawn(resolve: () => void, reject: (e: Error) => void): void {
    const n = native();
    this.wait = n.dpWaitOpen([this.tun.fd, this.udp.fd]);
    const control = new MessageChannel();
    this.control = control;
    const data: DataPlaneThreadData = {
      tunFd: this.tun.fd,
      tunName: this.tun.name,
      udpFd: this.udp.fd,
      epfd: this.wait.epfd,
      wakeFd: this.wait.wakeFd,
      control: control.port2,
      counters: this.counters.shared,
      batchSizes: this.batchSizes.buffer as SharedArrayBuffer,
      waitStats: this.waitStats.buffer as SharedArrayBuffer,
      offloads: this.offloads.buffer as SharedArrayBuffer,
      pump: { batchSize: this.opts.batchSize, budget: this.opts.budget, tso: this.opts.tso, tsoReads: this.opts.tsoReads },
      port: this.opts.local?.port ?? 0,
      table: this.table.snapshot(),
      local: this.opts.local ?? { ip: 0, port: 0 },
      offloadState: n.offloadState(this.tun.fd, this.udp.fd),
      timing: this.timing?.buffer as SharedArrayBuffer | undefined,
      spinUs: this.opts.spinUs ?? 0,
      warmMs: this.opts.warmMs ?? 0,
      nice: this.opts.nice,
      sliceUs: this.opts.sliceUs,
      mlock: this.opts.mlock ?? false,
    };
    // Every later change of the control plane's table follows as a message,
    // with a wake-up so that it applies before the next batch.
    this.unsubscribe = this.table.onChange((change) => this.queueChange(change));
    const spare = this.spare;
    this.spare = undefined;
    const worker = spare && !spare.exited ? spare.worker : DataPlane.spawnThread().worker;
    worker.ref();
    worker.postMessage({ type: 'start', data }, [control.port2]);
    this.worker = worker;
    this.exited = new Promise<void>((res) => worker.once('exit', () => res()));
    worker.on('message', (m: ThreadMessage) => {
      if (m.type === 'forwarding') {
        if (m.schedRefused)
          this.opts.onWarning?.(
            `the data-plane thread keeps the process's scheduling (${m.schedRefused}); it may forward later under load. Run as root (CAP_SYS_NICE) or pass --dataplane-nice=0 --dataplane-slice-us=0`,
          );
        if (m.mlockRefused)
          this.opts.onWarning?.(
            `some mapped program files could not be locked in memory, so a long-idle daemon may fault on its first packets (${m.mlockRefused}); run as root or raise RLIMIT_MEMLOCK, or pass --dataplane-mlock=false`,
          );
        this.forwardingNow = true;
        resolve();
      } else if (m.type === 'peer-grown') {
        this.counters.adoptPeer(m.peer);
      } else if (m.type === 'trace') {
        this.tracer?.sink(m.event);
      }
    });
    const died = (err: Error) => {
      this.forwardingNow = false;
      if (this.stopping) return;
      reject(err);
      this.opts.onDeath?.(err);
    };
    worker.on('error', (err) => died(err));
    worker.on('exit', (code) => died(new Error(`the data-plane thread exited (code ${code}) without being stopped`)));
  }

  /**
   * Lease changes go to the thread once per turn of the main loop, all of
   * that turn's in one message and one wake-up: an etcd watch response or a
   * resync brings many at once, and under churn a message and a wake-up per
   * change cost the thread more than the packets do. setImmediate runs in
   * the same loop iteration, so a change is still live well under 1 ms.
   */
  private queueChange(change: TableChange): void {
    if (this.pendingChanges.length === 0) setImmediate(() => this.flushChanges());
    this.pendingChanges.push(change);
  }

  private flushChanges(): void {
    const changes = this.pendingChanges;
    if (changes.length === 0) return;
    this.pendingChanges = [];
    const words = encodeChanges(changes);
    this.send({ type: 'table', changes: words }, [words.buffer as ArrayBuffer]);
  }

  private send(m: ControlMessage, transfer?: ArrayBuffer[]): void {
    if (!this.control || !this.wait) return;
    this.control.port1.postMessage(m, transfer);
    native().dpWake(this.wait.wakeFd);
  }

  /** Attaches (or with undefined, detaches) a tracer: the thread filters and samples, the events come back here. */
  setTracer(t: Tracer | undefined): void {
    this.tracer = t;
    if (t) this.send({ type: 'trace', filter: t.filter, sample: t.sampleEvery, max: t.maxPerSecond });
    else this.send({ type: 'untrace' });
  }

  /** Stops the thread, then closes flannel0 and the socket (see the top of this file). Idempotent. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.forwardingNow = false;
    this.unsubscribe?.();
    this.spare?.dispose();
    const worker = this.worker;
    if (worker) {
      this.send({ type: 'stop' });
      const timer = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), STOP_GRACE_MS).unref());
      if ((await Promise.race([this.exited!.then(() => 'exited' as const), timer])) === 'timeout') {
        // A thread stuck in the addon (it should not be) cannot leave its
        // wait: closing the fds below wakes epoll_wait with an error.
        void worker.terminate();
      }
    }
    if (this.wait) {
      native().closeFd(this.wait.epfd);
      native().closeFd(this.wait.wakeFd);
      this.wait = undefined;
    }
    this.control?.port1.close();
    this.tun.close();
    this.udp.close();
    if (worker) await this.exited;
  }
}
