// The bench's outputs: the JSON document (schema "flannel-ts-bench/1",
// documented in the README), the terminal table, and a hand-written SVG chart
// (one panel per metric, a bar per backend at the median, whiskers min–max).

export type BackendId = 'udp' | 'vxlan' | 'host-gw';

export interface MetricDef {
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  /** Digits after the decimal point in the table and chart. */
  digits: number;
  /** No ratio to vxlan (vxlan's figure is about zero by design). */
  noRatio?: boolean;
}

export const METRICS: readonly MetricDef[] = [
  { id: 'tcp1', label: 'TCP, 1 stream', unit: 'Gbit/s', better: 'higher', digits: 2 },
  { id: 'tcp4', label: 'TCP, 4 streams', unit: 'Gbit/s', better: 'higher', digits: 2 },
  { id: 'udp64', label: 'UDP 64 B received', unit: 'kpkt/s', better: 'higher', digits: 0 },
  { id: 'rttP50', label: 'ping RTT p50', unit: 'ms', better: 'lower', digits: 3 },
  { id: 'rttP99', label: 'ping RTT p99', unit: 'ms', better: 'lower', digits: 3 },
  // The kernel backends' daemons only program routes: their CPU per GB is ~0, so no ratio.
  { id: 'cpuPerGB', label: 'daemon CPU per GB', unit: 's/GB', better: 'lower', digits: 2, noRatio: true },
  // /proc/stat busy time (user, system, softirq) during the TCP tests, minus the idle rate measured just before: kernel forwarding counts too.
  { id: 'machineCpuPerGB', label: 'machine CPU per GB (busy - idle baseline)', unit: 's/GB', better: 'lower', digits: 2 },
];

/** Metrics of the optional phases (--sparse, --load-latency, --churn-seconds), after METRICS when they ran. */
export const PHASE_METRICS: readonly (MetricDef & { phase: 'sparse' | 'load' | 'churn' })[] = [
  { id: 'sparseAvg', label: 'ping RTT at 1/s, average', unit: 'ms', better: 'lower', digits: 3, phase: 'sparse' },
  { id: 'loadP50', label: 'ping p50 under 1 Gbit/s TCP', unit: 'ms', better: 'lower', digits: 3, phase: 'load' },
  { id: 'loadP99', label: 'ping p99 under 1 Gbit/s TCP', unit: 'ms', better: 'lower', digits: 3, phase: 'load' },
  { id: 'satP50', label: 'ping p50 under unthrottled TCP', unit: 'ms', better: 'lower', digits: 3, phase: 'load' },
  { id: 'satP99', label: 'ping p99 under unthrottled TCP', unit: 'ms', better: 'lower', digits: 3, phase: 'load' },
  { id: 'churnP50', label: 'ping p50 during lease churn', unit: 'ms', better: 'lower', digits: 3, phase: 'churn' },
  { id: 'churnP99', label: 'ping p99 during lease churn', unit: 'ms', better: 'lower', digits: 3, phase: 'churn' },
];

export interface MetricResult {
  /** One value per round, in round order. */
  runs: number[];
  median: number;
  min: number;
  max: number;
  /** median / vxlan's median in the same run (absent without vxlan, and for cpuPerGB). */
  ratioToVxlan?: number;
}

export interface BackendResult {
  metrics: Record<string, MetricResult>;
  /** TCP retransmits over all rounds (iperf3's sender count). */
  tcpRetransmits: number;
  /** iperf3's UDP loss per round, percent of packets sent. */
  udp64LossPercent: number[];
  /** Pings without a reply, over all rounds. */
  pingsLost: number;
  /** FLANNEL_MTU the daemon wrote (the pods' MTU). */
  podMtu: number;
}

export interface ControlPlaneResult {
  /** Lease written to etcd → first probe to its subnet forwarded, ms. */
  latencyMs: { leases: number; failures: number; p50: number; p99: number; max: number };
  /** `leases` written together; forwardedMs: until a lease written after them was forwarded (-1: not within 120 s). */
  burst?: { leases: number; putMs: number; forwardedMs: number };
  /** The daemon holding `leases` peers. */
  memory?: { leases: number; putMs: number; forwardedMs: number; rssBaselineMiB: number; rssMiB: number; rssPeakMiB: number };
  /** Kernel backends: the largest single flush the daemon logged (peers, ms, batches written to ip/bridge). */
  largestFlush?: { peers: number; ms: number; batches: number };
}

export interface BenchDocument {
  schema: 'flannel-ts-bench/1';
  date: string;
  machine: { kernel: string; cpus: number; cpuModel: string; node: string; iperf3: string };
  options: {
    backends: BackendId[];
    duration: number;
    repeat: number;
    mtu: number;
    dataPlane: boolean;
    controlPlane: boolean;
    cpLeases: number;
    cpBurst: number;
    cpMemoryLeases: number;
    pings?: number;
    sparse?: number;
    loadLatency?: boolean;
    churnSeconds?: number;
    churnLeases?: number;
  };
  topology: string;
  metrics: MetricDef[];
  /** Data plane, per backend (empty when --no-data-plane). */
  backends: Partial<Record<BackendId, BackendResult>>;
  /** Control plane, per backend (null unless --control-plane). */
  controlPlane: Partial<Record<BackendId, ControlPlaneResult>> | null;
}

export function summarize(runs: number[]): MetricResult {
  const s = [...runs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const med = s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { runs, median: med, min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN };
}

const fmt = (v: number | undefined, digits: number) => (v === undefined || v === null || !Number.isFinite(v) ? '–' : v.toFixed(digits));
/** A sentinel time: -1 means it was never forwarded (timed out). */
const fmtMs = (v: number | undefined) => (v === -1 ? 'timed out' : fmt(v, 0));

function table(rows: string[][], rightAlignFrom = 1): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c >= rightAlignFrom ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  ')).join('\n');
}

/** The terminal table: a row per metric, per backend "median (×vxlan)", then the extras. */
export function formatTable(doc: BenchDocument): string {
  const out: string[] = [];
  const bs = doc.options.backends.filter((b) => doc.backends[b]);
  if (bs.length > 0) {
    out.push(
      `data plane: two hosts, pod to pod through each backend's flanneld; median of ${doc.options.repeat} round(s) of ${doc.options.duration} s, backends alternating; underlay MTU ${doc.options.mtu}`,
    );
    const head = ['metric', ...bs.map((b) => (doc.backends.vxlan && b !== 'vxlan' ? `${b} (× vxlan)` : b))];
    const rows = [head];
    for (const m of doc.metrics) {
      rows.push([
        `${m.label} (${m.unit})`,
        ...bs.map((b) => {
          const r = doc.backends[b]!.metrics[m.id];
          if (!r) return '–';
          const ratio = b !== 'vxlan' && r.ratioToVxlan !== undefined && Number.isFinite(r.ratioToVxlan) ? ` (${r.ratioToVxlan.toFixed(2)}×)` : '';
          return `${fmt(r.median, m.digits)}${ratio}`;
        }),
      ]);
    }
    rows.push([
      'min – max, TCP 1 stream',
      ...bs.map((b) => {
        const r = doc.backends[b]!.metrics.tcp1;
        return r ? `${fmt(r.min, 2)} – ${fmt(r.max, 2)}` : '–';
      }),
    ]);
    rows.push(['TCP retransmits', ...bs.map((b) => String(doc.backends[b]!.tcpRetransmits))]);
    rows.push(['UDP 64 B loss (%)', ...bs.map((b) => fmt(summarize(doc.backends[b]!.udp64LossPercent).median, 1))]);
    rows.push(['pings lost', ...bs.map((b) => String(doc.backends[b]!.pingsLost))]);
    rows.push(['pod MTU', ...bs.map((b) => String(doc.backends[b]!.podMtu))]);
    out.push(table(rows));
  }
  const cp = doc.controlPlane;
  if (cp) {
    const cbs = doc.options.backends.filter((b) => cp[b]);
    out.push('');
    out.push(`control plane: one flanneld, fake peers written to etcd (Network 198.19.0.0/16, SubnetLen 30)`);
    const rows = [['metric', ...cbs]];
    rows.push([`lease → forwarded p50 (ms, ${doc.options.cpLeases} leases)`, ...cbs.map((b) => fmt(cp[b]!.latencyMs.p50, 1))]);
    rows.push(['lease → forwarded p99 (ms)', ...cbs.map((b) => fmt(cp[b]!.latencyMs.p99, 1))]);
    rows.push(['probes never forwarded', ...cbs.map((b) => String(cp[b]!.latencyMs.failures))]);
    rows.push([`${doc.options.cpBurst} leases at once → forwarded (ms)`, ...cbs.map((b) => fmtMs(cp[b]!.burst?.forwardedMs))]);
    rows.push(['  of which etcd puts (ms)', ...cbs.map((b) => fmt(cp[b]!.burst?.putMs, 0))]);
    rows.push([
      'largest kernel flush (peers / ms / batches)',
      ...cbs.map((b) => {
        const f = cp[b]!.largestFlush;
        return f ? `${f.peers} / ${f.ms.toFixed(0)} / ${f.batches}` : '–';
      }),
    ]);
    rows.push([`${doc.options.cpMemoryLeases} leases → last one forwarded (ms)`, ...cbs.map((b) => fmtMs(cp[b]!.memory?.forwardedMs))]);
    rows.push([
      `RSS idle → with ${doc.options.cpMemoryLeases} leases (MiB)`,
      ...cbs.map((b) => {
        const m = cp[b]!.memory;
        return m ? `${m.rssBaselineMiB.toFixed(0)} → ${m.rssMiB.toFixed(0)}` : '–';
      }),
    ]);
    out.push(table(rows));
  }
  return out.join('\n');
}

const COLORS: Record<BackendId, string> = { udp: '#4e79a7', vxlan: '#f28e2b', 'host-gw': '#59a14f' };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

interface Panel {
  title: string;
  unit: string;
  better: 'higher' | 'lower';
  digits: number;
  bars: { backend: BackendId; value: number; min?: number; max?: number }[];
}

/** A hand-written SVG: panels of bars (median) with min–max whiskers, three panels a row. */
export function renderSvg(doc: BenchDocument): string {
  const panels: Panel[] = [];
  const bs = doc.options.backends.filter((b) => doc.backends[b]);
  for (const m of doc.metrics) {
    const bars = bs.flatMap((b) => {
      const r = doc.backends[b]!.metrics[m.id];
      return r && Number.isFinite(r.median) ? [{ backend: b, value: r.median, min: r.min, max: r.max }] : [];
    });
    if (bars.length) panels.push({ title: m.label, unit: m.unit, better: m.better, digits: m.digits, bars });
  }
  const cp = doc.controlPlane;
  if (cp) {
    const cbs = doc.options.backends.filter((b) => cp[b]);
    const cpPanel = (title: string, unit: string, digits: number, get: (r: ControlPlaneResult) => number | undefined) => {
      const bars = cbs.flatMap((b) => {
        const v = get(cp[b]!);
        return v !== undefined && Number.isFinite(v) && v >= 0 ? [{ backend: b, value: v }] : [];
      });
      if (bars.length) panels.push({ title, unit, better: 'lower', digits, bars });
    };
    cpPanel('lease → forwarded p50', 'ms', 1, (r) => r.latencyMs.p50);
    cpPanel('lease → forwarded p99', 'ms', 1, (r) => r.latencyMs.p99);
    cpPanel(`RSS with ${doc.options.cpMemoryLeases} leases`, 'MiB', 0, (r) => r.memory?.rssMiB);
  }

  const cols = 3;
  const pw = 300;
  const ph = 210;
  const top = 64;
  const rows = Math.max(1, Math.ceil(panels.length / cols));
  const width = cols * pw + 20;
  const height = top + rows * ph + 40;
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  o.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  o.push(`<text x="10" y="22" font-size="16" font-weight="bold">flannel-ts bench: udp vs vxlan vs host-gw, each through flannel-ts's flanneld</text>`);
  o.push(
    `<text x="10" y="42" fill="#555">${esc(`${doc.date.slice(0, 16).replace('T', ' ')} UTC · ${doc.machine.cpus} CPU ${doc.machine.cpuModel} · kernel ${doc.machine.kernel} · median of ${doc.options.repeat} × ${doc.options.duration} s, whiskers min–max · MTU ${doc.options.mtu}`)}</text>`,
  );
  // legend
  let lx = 10;
  for (const b of doc.options.backends) {
    o.push(`<rect x="${lx}" y="50" width="10" height="10" fill="${COLORS[b]}"/><text x="${lx + 14}" y="59">${b}</text>`);
    lx += 80;
  }
  panels.forEach((p, i) => {
    const x0 = 10 + (i % cols) * pw;
    const y0 = top + Math.floor(i / cols) * ph;
    const plotTop = y0 + 34;
    const plotH = ph - 74;
    const plotBottom = plotTop + plotH;
    const hi = Math.max(...p.bars.map((b) => Math.max(b.value, b.max ?? b.value))) || 1;
    const scale = plotH / (hi * 1.12);
    o.push(`<g>`);
    o.push(`<text x="${x0 + 4}" y="${y0 + 16}" font-weight="bold">${esc(p.title)}</text>`);
    o.push(`<text x="${x0 + 4}" y="${y0 + 29}" fill="#777" font-size="11">${esc(`${p.unit}, ${p.better} is better`)}</text>`);
    o.push(`<line x1="${x0 + 4}" y1="${plotBottom}" x2="${x0 + pw - 20}" y2="${plotBottom}" stroke="#999"/>`);
    const bw = Math.min(60, (pw - 40) / p.bars.length - 16);
    p.bars.forEach((b, j) => {
      const cx = x0 + 20 + (j + 0.5) * ((pw - 40) / p.bars.length);
      const h = Math.max(1, b.value * scale);
      o.push(
        `<rect x="${(cx - bw / 2).toFixed(1)}" y="${(plotBottom - h).toFixed(1)}" width="${bw.toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[b.backend]}"><title>${esc(`${b.backend}: ${b.value.toFixed(p.digits)} ${p.unit}`)}</title></rect>`,
      );
      if (b.min !== undefined && b.max !== undefined && b.max > b.min) {
        const y1 = plotBottom - b.min * scale;
        const y2 = plotBottom - b.max * scale;
        o.push(`<line x1="${cx.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${cx.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="#222"/>`);
        o.push(`<line x1="${(cx - 6).toFixed(1)}" y1="${y1.toFixed(1)}" x2="${(cx + 6).toFixed(1)}" y2="${y1.toFixed(1)}" stroke="#222"/>`);
        o.push(`<line x1="${(cx - 6).toFixed(1)}" y1="${y2.toFixed(1)}" x2="${(cx + 6).toFixed(1)}" y2="${y2.toFixed(1)}" stroke="#222"/>`);
      }
      const labelY = Math.min(plotBottom - h, b.max !== undefined ? plotBottom - b.max * scale : plotBottom - h) - 4;
      o.push(`<text x="${cx.toFixed(1)}" y="${labelY.toFixed(1)}" text-anchor="middle" font-size="11">${esc(b.value.toFixed(p.digits))}</text>`);
      o.push(`<text x="${cx.toFixed(1)}" y="${plotBottom + 14}" text-anchor="middle" font-size="11">${esc(b.backend)}</text>`);
    });
    o.push(`</g>`);
  });
  o.push(`</svg>`);
  return o.join('\n') + '\n';
}
