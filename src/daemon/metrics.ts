// Prometheus metrics (prom-client). The data-plane thread keeps typed-array
// counters in shared memory; they are read here, on the main thread, at
// scrape time (no message to the thread), so the hot path never calls into a
// metrics library.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { type Counters, DROP_REASONS, DropReason } from '../encap/counters';
import type { LeaseTable } from '../routes/lease-table';
import { formatIp4 } from '../routes/ip4';

export interface ControlPlaneStats {
  etcdUp: boolean;
  leaseRenewals: number;
  leaseRenewFailures: number;
  watchResyncs: number;
}

export interface MetricsSources {
  counters: () => Counters | undefined;
  table: () => LeaseTable | undefined;
  batchSizes: () => Float64Array | undefined;
  control: () => ControlPlaneStats;
  /** The data-plane thread's wake-ups and stage times (udp backend). */
  dataPlane?: () => { waitStats: Float64Array; timing: Float64Array | undefined } | undefined;
  /** Offloads in use by feature (udp backend); undefined for kernel backends. */
  offloads?: () => Record<string, boolean> | undefined;
}

/** Reports values kept elsewhere as a counter: `read` passes each labelled value to `set` at scrape time. */
type Reader = (set: (labels: Record<string, string>, value: number) => void) => void;

function mirroredCounter(registry: Registry, name: string, help: string, labelNames: string[], read: Reader): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      // prom-client counters only go up: reset, then add the absolute value.
      this.reset();
      read((labels, value) => this.inc(labels, value));
    },
  });
}

export function createMetrics(src: MetricsSources): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'flanneld_' });

  mirroredCounter(registry, 'flannel_packets_total', 'IPv4 packets forwarded by the udp backend: tx = flannel0 to peers, rx = peers to flannel0.', ['direction'], (set) => {
    const c = src.counters();
    if (!c) return;
    set({ direction: 'tx' }, c.txPackets);
    set({ direction: 'rx' }, c.rxPackets);
  });
  mirroredCounter(registry, 'flannel_bytes_total', 'Bytes of IPv4 packets forwarded (inner packets, without the outer UDP/IP headers).', ['direction'], (set) => {
    const c = src.counters();
    if (!c) return;
    set({ direction: 'tx' }, c.txBytes);
    set({ direction: 'rx' }, c.rxBytes);
  });
  mirroredCounter(registry, 'flannel_dropped_packets_total', 'Packets dropped by the data plane, by direction and reason.', ['direction', 'reason'], (set) => {
    const c = src.counters();
    if (!c) return;
    for (const reason of DROP_REASONS) {
      set({ direction: 'tx', reason }, c.txDrops[DropReason[reason]]);
      set({ direction: 'rx', reason }, c.rxDrops[DropReason[reason]]);
    }
  });
  mirroredCounter(registry, 'flannel_icmp_errors_total', 'ICMP destination-unreachable errors written back into flannel0 (sent) or held back by the rate limit (suppressed).', ['result'], (set) => {
    const c = src.counters();
    if (!c) return;
    set({ result: 'sent' }, c.icmpSent);
    set({ result: 'suppressed' }, c.icmpSuppressed);
  });
  // Counters.peer holds [txPackets, txBytes, rxPackets, rxBytes] per peer: one reader per unit.
  const perPeer = (unit: 0 | 1) => (set: (labels: Record<string, string>, value: number) => void) => {
    const c = src.counters();
    const t = src.table();
    if (!c || !t) return;
    for (const p of t.peers()) {
      const l = { subnet: p.subnet.toString(), public_ip: formatIp4(p.publicIp) };
      set({ ...l, direction: 'tx' }, c.peerWord(p.index, unit));
      set({ ...l, direction: 'rx' }, c.peerWord(p.index, 2 + unit));
    }
  };
  const peerLabels = ['subnet', 'public_ip', 'direction'];
  mirroredCounter(registry, 'flannel_peer_packets_total', 'Packets exchanged with each peer (by its subnet and public IP).', peerLabels, perPeer(0));
  mirroredCounter(registry, 'flannel_peer_bytes_total', 'Bytes exchanged with each peer (by its subnet and public IP).', peerLabels, perPeer(1));
  new Gauge({
    name: 'flannel_leases',
    help: "Peers' leases in the lease table (this host's own lease excluded).",
    registers: [registry],
    collect() {
      this.set(src.table()?.size ?? 0);
    },
  });
  new Gauge({
    name: 'flannel_etcd_up',
    help: '1 when etcd answered the last request or watch, else 0 (forwarding continues either way).',
    registers: [registry],
    collect() {
      this.set(src.control().etcdUp ? 1 : 0);
    },
  });
  mirroredCounter(registry, 'flannel_lease_renewals_total', "Renewals of this host's lease, by result.", ['result'], (set) => {
    const s = src.control();
    set({ result: 'ok' }, s.leaseRenewals);
    set({ result: 'failed' }, s.leaseRenewFailures);
  });
  mirroredCounter(registry, 'flannel_watch_resyncs_total', 'Full re-lists of the leases after a compaction, reconnect or watch error.', [], (set) => {
    set({}, src.control().watchResyncs);
  });
  mirroredCounter(registry, 'flannel_batches_total', 'Batches moved by the data plane (one syscall crossing each).', [], (set) => {
    set({}, src.counters()?.batches ?? 0);
  });
  registerBatchSizeHistogram(registry, src.batchSizes);
  mirroredCounter(
    registry,
    'flannel_dataplane_wakeups_total',
    'Wake-ups of the data-plane thread with work: blocked = it slept in epoll_wait, spin = found while polling before sleeping.',
    ['how'],
    (set) => {
      const s = src.dataPlane?.()?.waitStats;
      if (!s) return;
      set({ how: 'blocked' }, s[0]);
      set({ how: 'spin' }, s[1]);
    },
  );
  mirroredCounter(
    registry,
    'flannel_dataplane_warmups_total',
    'Rehearsals of the idle data-plane thread (--dataplane-warmup-ms): a poll and one packet through the forwarding code, every warm-up interval within a minute of the last packet.',
    [],
    (set) => {
      const s = src.dataPlane?.()?.waitStats;
      if (s) set({}, s[6]);
    },
  );
  mirroredCounter(
    registry,
    'flannel_dataplane_stage_seconds_total',
    'With --dataplane-timing: time in each stage of the first batch of a wake-up (wake = from epoll_wait returning to the read done, decide, send), by direction; divide by flannel_dataplane_stage_batches_total.',
    ['direction', 'stage'],
    (set) => {
      const t = src.dataPlane?.()?.timing;
      if (!t) return;
      for (const [d, direction] of [
        [0, 'tx'],
        [1, 'rx'],
      ] as const) {
        set({ direction, stage: 'wake_read' }, t[4 * d + 1] / 1e9);
        set({ direction, stage: 'decide' }, t[4 * d + 2] / 1e9);
        set({ direction, stage: 'send' }, t[4 * d + 3] / 1e9);
      }
    },
  );
  mirroredCounter(registry, 'flannel_dataplane_stage_batches_total', 'With --dataplane-timing: batches timed in flannel_dataplane_stage_seconds_total, by direction.', ['direction'], (set) => {
    const t = src.dataPlane?.()?.timing;
    if (!t) return;
    set({ direction: 'tx' }, t[0]);
    set({ direction: 'rx' }, t[4]);
  });
  // The data plane shares the event loop with etcd, metrics and timers: a
  // long delay there is time packets wait in flannel0's and the socket's
  // queues. Since start (prom-client's nodejs_eventloop_lag_* are reset at
  // every scrape); the soak bench reads these.
  // The histogram holds whole intervals between 10 ms samples: the delay is what exceeds 10 ms.
  const RESOLUTION_MS = 10;
  const loopDelay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  loopDelay.enable();
  const beyond = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS) / 1000;
  new Gauge({
    name: 'flanneld_event_loop_delay_p99_seconds',
    help: '99th percentile of the event-loop delay since flanneld started: how late a 10 ms timer fires, beyond its 10 ms.',
    registers: [registry],
    collect() {
      this.set(beyond(loopDelay.percentile(99)));
    },
  });
  new Gauge({
    name: 'flanneld_event_loop_delay_max_seconds',
    help: 'Longest event-loop delay since flanneld started (a 10 ms timer fired this much late).',
    registers: [registry],
    collect() {
      this.set(beyond(loopDelay.max));
    },
  });
  new Gauge({
    name: 'flannel_offload_enabled',
    help: 'Data-plane offloads in use: 1 on, 0 off (by flag, or refused by the kernel). tun_tso: TCP super-packets read from flannel0 and split; tun_gro: TCP segments coalesced into one flannel0 write; udp_gso / udp_gro: UDP segmentation / receive offload.',
    labelNames: ['feature'],
    registers: [registry],
    collect() {
      this.reset();
      const on = src.offloads?.();
      if (!on) return;
      for (const [feature, v] of Object.entries(on)) this.set({ feature }, v ? 1 : 0);
    },
  });
  new Gauge({
    name: 'flannel_dataplane_boosted',
    help: 'The data-plane thread runs at --dataplane-nice (1) while it is mostly idle, or at the process nice value (0) while it is busy more than half the time, as the kernel defers a packet flood to ksoftirqd.',
    registers: [registry],
    collect() {
      const s = src.dataPlane?.()?.waitStats;
      if (s) this.set(s[4]);
    },
  });
  mirroredCounter(registry, 'flannel_dataplane_priority_changes_total', 'Times the data-plane thread stepped between its boosted and its normal nice value (flannel_dataplane_boosted).', [], (set) => {
    const s = src.dataPlane?.()?.waitStats;
    if (s) set({}, s[5]);
  });
  return registry;
}

/** Upper bounds of flannel_batch_size's buckets (packets per batch); +Inf is added. */
export const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/**
 * The Prometheus histogram lines for a batch-size array whose index is the
 * number of packets in a batch and whose value is how many batches had that
 * size: cumulative `le` buckets, `_sum` (packets) and `_count` (batches).
 */
export function batchSizeHistogram(sizes: Float64Array | undefined): { buckets: [string, number][]; sum: number; count: number } {
  const buckets: [string, number][] = [];
  let sum = 0;
  let count = 0;
  let b = 0;
  let cumulative = 0;
  const n = sizes?.length ?? 0;
  for (let i = 0; i < n; i++) {
    const v = sizes![i];
    if (v === 0) continue;
    while (b < BATCH_SIZE_BUCKETS.length && i > BATCH_SIZE_BUCKETS[b]) buckets.push([String(BATCH_SIZE_BUCKETS[b++]), cumulative]);
    cumulative += v;
    sum += i * v;
    count += v;
  }
  while (b < BATCH_SIZE_BUCKETS.length) buckets.push([String(BATCH_SIZE_BUCKETS[b++]), cumulative]);
  buckets.push(['+Inf', cumulative]);
  return { buckets, sum, count };
}

/**
 * flannel_batch_size: a histogram read from the data plane's array at scrape
 * time. prom-client's Histogram can only observe one value at a time, so this
 * is a minimal metric object the registry serialises like its own.
 */
function registerBatchSizeHistogram(registry: Registry, read: () => Float64Array | undefined): void {
  const name = 'flannel_batch_size';
  const metric = {
    name,
    help: 'Packets per batch moved by the data plane (flannel0 reads and UDP receives alike; one batch is one syscall crossing).',
    type: 'histogram',
    aggregator: 'sum',
    get() {
      const h = batchSizeHistogram(read());
      return {
        name,
        help: metric.help,
        type: 'histogram',
        aggregator: 'sum',
        values: [
          ...h.buckets.map(([le, value]) => ({ metricName: `${name}_bucket`, labels: { le }, value })),
          { metricName: `${name}_sum`, labels: {}, value: h.sum },
          { metricName: `${name}_count`, labels: {}, value: h.count },
        ],
      };
    },
  };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}
