// A backend moves packets between this host's subnet and its peers'. The
// daemon owns the control plane (config, lease, watch) and hands each backend
// the same few moments of a lease's life, as flannel's backend.Network does.
// Backends live one per folder: udp/ (flannel0 + our data plane), and the
// kernel ones beside it.

import type { Counters } from '../encap/counters';
import type { Tracer } from '../encap/trace';
import type { Lease, LeaseDiff, LeaseTable } from '../routes/lease-table';
import type { NetworkConfig } from '../subnet/config';
import type { ExternalInterface } from '../util/external-interface';
import type { Logger } from '../util/log';

export interface BackendContext {
  ext: ExternalInterface;
  log: Logger;
  /** flannel-ts's data-plane switches (--tun-offload, --tun-gro, --udp-gso, --udp-gro; each default on). */
  offloads?: OffloadOptions;
  /** The data-plane thread's tuning (--dataplane-*), for backends that have one; unset fields keep the measured defaults. */
  dataPlane?: DataPlaneTuning;
}

export interface DataPlaneTuning {
  warmMs?: number;
  spinUs?: number;
  /** undefined: the process's own. */
  nice?: number;
  /** µs time slice asked of the scheduler (sched_setattr); 0: the kernel's default. */
  sliceUs?: number;
  /** Lock the process's mapped program files in memory (--dataplane-mlock). */
  mlock?: boolean;
  timing?: boolean;
}

export interface OffloadOptions {
  tunOffload?: boolean;
  tunGro?: boolean;
  udpGso?: boolean;
  udpGro?: boolean;
}

export interface Backend {
  /** BackendType written in the lease. */
  readonly type: string;
  /**
   * Before the lease is acquired: create what the lease must describe
   * (vxlan: flannel.1, whose MAC goes in BackendData). Returns BackendData.
   */
  prepare(config: NetworkConfig): Promise<unknown>;
  /** Whether a peer's lease is one this backend can reach (others are ignored). */
  accepts(lease: Lease): boolean;
  /**
   * With our lease held: bring the data path up. `table` is the lease table
   * the control plane keeps in sync; read it, never write it. Returns the
   * MTU pods should use (FLANNEL_MTU).
   */
  start(lease: Lease, config: NetworkConfig, table: LeaseTable): Promise<number>;
  /** The lease table changed (kernel backends program routes here). */
  leasesChanged(diff: LeaseDiff): void;
  /** Our lease moved to another subnet: re-address the device. */
  relocate(lease: Lease): Promise<void>;
  /**
   * Stops the backend. udp removes flannel0 (forwarding stops); the kernel
   * backends stop programming but leave their device and routes in place, as
   * flannel does, so pods keep talking while the daemon restarts.
   */
  stop(): Promise<void>;
  /** Data-plane counters, for backends that forward in user space. */
  readonly counters?: Counters;
  readonly batchSizes?: Float64Array;
  /** Offloads in use now by feature (tun_tso, tun_gro, udp_gso, udp_gro), for backends with a user-space data plane. */
  readonly offloadsEnabled?: Record<string, boolean>;
  /**
   * Backends with a data-plane thread: resolves once it forwards packets
   * (readiness waits on it: /readyz, and READY=1 for systemd). Kernel backends
   * leave it undefined (they forward once start() returns).
   */
  readonly forwarding?: Promise<void>;
  /** The data-plane thread's wait statistics and stage times (udp), for /metrics. */
  readonly dataPlaneStats?: { waitStats: Float64Array; timing: Float64Array | undefined };
  /** Attaches or detaches a packet tracer; absent for kernel backends (no packets pass through flanneld). */
  setTracer?(t: Tracer | undefined): void;
}
