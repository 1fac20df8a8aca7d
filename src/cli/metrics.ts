// Prometheus metrics (prom-client). The data plane keeps plain typed-array
// counters; they are copied into prom-client's metrics at scrape time, so the
// hot path never calls into a metrics library.

import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { Counters, DROP_REASONS, DropReason } from '../encap/counters';
import { LeaseTable } from '../routes/lease-table';
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
}

/** Sets a counter to an absolute value read from elsewhere (prom-client counters only go up). */
function mirror(c: Counter<string>, labels: Record<string, string>, value: number): void {
  c.inc(labels, value);
}

export function createMetrics(src: MetricsSources): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'flanneld_' });

  new Counter({
    name: 'flannel_packets_total',
    help: 'IPv4 packets forwarded by the udp backend: tx = flannel0 to peers, rx = peers to flannel0.',
    labelNames: ['direction'],
    registers: [registry],
    collect() {
      this.reset();
      const c = src.counters();
      if (!c) return;
      mirror(this, { direction: 'tx' }, c.txPackets);
      mirror(this, { direction: 'rx' }, c.rxPackets);
    },
  });
  new Counter({
    name: 'flannel_bytes_total',
    help: 'Bytes of IPv4 packets forwarded (inner packets, without the outer UDP/IP headers).',
    labelNames: ['direction'],
    registers: [registry],
    collect() {
      this.reset();
      const c = src.counters();
      if (!c) return;
      mirror(this, { direction: 'tx' }, c.txBytes);
      mirror(this, { direction: 'rx' }, c.rxBytes);
    },
  });
  new Counter({
    name: 'flannel_dropped_packets_total',
    help: 'Packets dropped by the data plane, by direction and reason.',
    labelNames: ['direction', 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      const c = src.counters();
      if (!c) return;
      for (const reason of DROP_REASONS) {
        mirror(this, { direction: 'tx', reason }, c.txDrops[DropReason[reason]]);
        mirror(this, { direction: 'rx', reason }, c.rxDrops[DropReason[reason]]);
      }
    },
  });
  new Counter({
    name: 'flannel_icmp_errors_total',
    help: 'ICMP destination-unreachable errors written back into flannel0 (sent) or held back by the rate limit (suppressed).',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      this.reset();
      const c = src.counters();
      if (!c) return;
      mirror(this, { result: 'sent' }, c.icmpSent);
      mirror(this, { result: 'suppressed' }, c.icmpSuppressed);
    },
  });
  new Counter({
    name: 'flannel_peer_packets_total',
    help: 'Packets exchanged with each peer (by its subnet and public IP).',
    labelNames: ['subnet', 'public_ip', 'direction'],
    registers: [registry],
    collect() {
      this.reset();
      const c = src.counters();
      const t = src.table();
      if (!c || !t) return;
      for (const p of t.peers()) {
        const s = c.peerSlot(p.index);
        const l = { subnet: p.subnet.toString(), public_ip: formatIp4(p.publicIp) };
        mirror(this, { ...l, direction: 'tx' }, c.peer[s]);
        mirror(this, { ...l, direction: 'rx' }, c.peer[s + 2]);
      }
    },
  });
  new Counter({
    name: 'flannel_peer_bytes_total',
    help: 'Bytes exchanged with each peer (by its subnet and public IP).',
    labelNames: ['subnet', 'public_ip', 'direction'],
    registers: [registry],
    collect() {
      this.reset();
      const c = src.counters();
      const t = src.table();
      if (!c || !t) return;
      for (const p of t.peers()) {
        const s = c.peerSlot(p.index);
        const l = { subnet: p.subnet.toString(), public_ip: formatIp4(p.publicIp) };
        mirror(this, { ...l, direction: 'tx' }, c.peer[s + 1]);
        mirror(this, { ...l, direction: 'rx' }, c.peer[s + 3]);
      }
    },
  });
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
  new Counter({
    name: 'flannel_lease_renewals_total',
    help: "Renewals of this host's lease, by result.",
    labelNames: ['result'],
    registers: [registry],
    collect() {
      this.reset();
      const s = src.control();
      mirror(this, { result: 'ok' }, s.leaseRenewals);
      mirror(this, { result: 'failed' }, s.leaseRenewFailures);
    },
  });
  new Counter({
    name: 'flannel_watch_resyncs_total',
    help: 'Full re-lists of the leases after a compaction, reconnect or watch error.',
    registers: [registry],
    collect() {
      this.reset();
      mirror(this, {}, src.control().watchResyncs);
    },
  });
  new Counter({
    name: 'flannel_batches_total',
    help: 'Batches moved by the data plane (one syscall crossing each).',
    registers: [registry],
    collect() {
      this.reset();
      mirror(this, {}, src.counters()?.batches ?? 0);
    },
  });
  return registry;
}
