// Soak: three hosts forwarding traffic for a long while (default 10 minutes)
// while leases churn, to see whether anything grows or slows. Not a pass/fail
// test: it reports, and says where the targets (memory flat within 5 %, no
// drops other than the injected ones) are missed.
//
//   npm run build && node dist/bench/soak.js [--minutes 10] [--rate 50] [--churn-ms 500] [--json out.json]
//
// Traffic: a ring of iperf3 TCP streams between pods (host 1 -> 2 -> 3 -> 1,
// --rate Mbit/s each) and a ring of pings (5 a second). Churn: every
// --churn-ms a fake peer's lease is added (its own etcd lease, as flanneld
// writes one) and the oldest of 20 removed, so every daemon keeps applying
// watch events. Injected: every 5 s, 50 datagrams from a host without a lease
// to host 1's UDP port (dropped as unknown_source, and counted here).
// Every 5 s each daemon's /metrics is read: RSS, V8 heap used and committed
// per space, event-loop delay p99 (flanneld_event_loop_delay_p99_seconds,
// since start), drops; and /proc/<pid>/status for RSS split into anonymous
// memory (what a leak grows) and file-backed pages (node's own code).
// "start" is the median of the samples between 30 and 60 s (after warm-up),
// "end" the median of the last 30 s. Heap used is a sawtooth between major
// GCs, so its floor (the lowest sample) in the first and the last quarter is
// reported too: retained memory shows there. And the RSS drift over the
// second half, which says whether a rise is still going on or levelling off.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, REPO_ROOT } from '../src/lab/lab';
import { Etcd } from '../src/lab/etcd';
import { Host, type Pod } from '../src/lab/host';
import { run, sleep, tryRun, waitFor } from '../src/lab/sh';

interface Options {
  minutes: number;
  rateMbit: number;
  churnMs: number;
  json?: string;
}

function parse(argv: string[]): Options {
  const o: Options = { minutes: 10, rateMbit: 50, churnMs: 500 };
  for (let i = 0; i < argv.length; i++) {
    const [k, v0] = argv[i].split('=');
    const v = v0 ?? argv[++i];
    if (k === '--minutes') o.minutes = Number(v);
    else if (k === '--rate') o.rateMbit = Number(v);
    else if (k === '--churn-ms') o.churnMs = Number(v);
    else if (k === '--json') o.json = v;
    else throw new Error(`unknown option ${k} (use --minutes N, --rate MBIT, --churn-ms MS, --json FILE)`);
  }
  if (!(o.minutes > 0) || !(o.rateMbit > 0) || !(o.churnMs >= 50)) throw new Error('bad option value');
  return o;
}

const HEALTHZ = 9161;
const PREFIX = '/coreos.com/network';

interface Sample {
  t: number;
  rss: number;
  /** RSS split as the kernel keeps it: anonymous (heap, malloc: what a leak grows) and file-backed (node's own code paged in as it runs). */
  rssAnon: number;
  rssFile: number;
  heap: number;
  heapTotal: number;
  external: number;
  loopP99: number;
  loopMax: number;
  leases: number;
  drops: Record<string, number>;
  /** V8's committed size per heap space (new, old, code, ...), to tell which one grows. */
  spaces: Record<string, number>;
  tx: number;
  rx: number;
}

function metrics(h: Host): Map<string, number> {
  const out = h.exec([process.execPath, '-e', `fetch('http://127.0.0.1:${HEALTHZ}/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))`], 10_000);
  const m = new Map<string, number>();
  for (const line of out.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

function procStatus(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
      const r = /^(\w+):\s+(\d+) kB$/.exec(line);
      if (r) out.set(r[1], Number(r[2]) * 1024);
    }
  } catch {
    // The daemon is gone: the sample shows NaN and the result says it is not running.
  }
  return out;
}

function sample(h: Host, t0: number): Sample {
  const m = metrics(h);
  const st = procStatus(h.daemon!.pid);
  const drops: Record<string, number> = {};
  const spaces: Record<string, number> = {};
  for (const [k, v] of m) {
    const r = /^flannel_dropped_packets_total\{direction="(\w+)",reason="(\w+)"\}$/.exec(k);
    if (r && v > 0) drops[`${r[1]}:${r[2]}`] = v;
    const sp = /^flanneld_nodejs_heap_space_size_total_bytes\{space="(\w+)"\}$/.exec(k);
    if (sp) spaces[sp[1]] = v;
  }
  return {
    t: (Date.now() - t0) / 1000,
    rss: m.get('flanneld_process_resident_memory_bytes') ?? NaN,
    rssAnon: st.get('RssAnon') ?? NaN,
    rssFile: st.get('RssFile') ?? NaN,
    heap: m.get('flanneld_nodejs_heap_size_used_bytes') ?? NaN,
    heapTotal: m.get('flanneld_nodejs_heap_size_total_bytes') ?? NaN,
    external: m.get('flanneld_nodejs_external_memory_bytes') ?? NaN,
    loopP99: m.get('flanneld_event_loop_delay_p99_seconds') ?? NaN,
    loopMax: m.get('flanneld_event_loop_delay_max_seconds') ?? NaN,
    leases: m.get('flannel_leases') ?? NaN,
    drops,
    spaces,
    tx: m.get('flannel_packets_total{direction="tx"}') ?? 0,
    rx: m.get('flannel_packets_total{direction="rx"}') ?? 0,
  };
}

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)];
};
const mib = (b: number) => (b / 1048576).toFixed(1);
/** Per cent change from `from` to `to`, one decimal. */
const changePct = (from: number, to: number) => Number((((to - from) / from) * 100).toFixed(1));
const signedPct = (x: number) => `${x >= 0 ? '+' : ''}${x} %`;

export async function main(argv: string[]): Promise<void> {
  const o = parse(argv);
  const seconds = Math.round(o.minutes * 60);
  const lab = new Lab();
  const onSignal = () => void lab.destroy().then(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const procs: ChildProcess[] = [];
  try {
    const etcd = new Etcd(lab);
    await etcd.start();
    // The hosts lease below 198.19.200.0; the churned fake leases live in 198.19.200-249, never on a host's key.
    etcd.put(`${PREFIX}/config`, JSON.stringify({ Network: '198.19.0.0/16', SubnetMax: '198.19.199.0', Backend: { Type: 'udp' } }));
    const hosts = [1, 2, 3].map((i) => new Host(lab, `soak${i}`, `198.18.0.${i}`));
    for (const h of hosts) h.startFlanneld(etcd.endpoint, [`--healthz-ip=127.0.0.1`, `--healthz-port=${HEALTHZ}`]);
    const pods: Pod[] = [];
    for (const h of hosts) pods.push(await h.waitReadyWithPod());
    for (const [i, p] of pods.entries()) {
      await waitFor(`pod ${i} reaches the next`, () => p.ping(pods[(i + 1) % 3].ip, 1, 0.2, 1).received === 1, 15_000, 100);
    }
    const stranger = lab.addNamespace('stranger');
    lab.plug(stranger, 'eth0', '198.18.0.9/16');

    // Traffic rings.
    for (const p of pods) run(['ip', 'netns', 'exec', p.ns, 'iperf3', '-s', '-D', '-p', '5201']);
    await sleep(300);
    const iperfLogs: string[] = [];
    const pingLogs: string[] = [];
    pods.forEach((p, i) => {
      const to = pods[(i + 1) % 3];
      const il = path.join(lab.dir, `iperf-${i}.log`);
      const pl = path.join(lab.dir, `ping-${i}.log`);
      iperfLogs.push(il);
      pingLogs.push(pl);
      procs.push(lab.spawnIn(p.ns, ['iperf3', '-c', to.ip, '-p', '5201', '-t', String(seconds), '-b', `${o.rateMbit}M`, '-i', '60'], il));
      procs.push(lab.spawnIn(p.ns, ['ping', '-n', '-q', '-i', '0.2', '-w', String(seconds), to.ip], pl));
    });

    const t0 = Date.now();
    const samples: Sample[][] = hosts.map(() => []);
    let injected = 0;
    let added = 0;
    let removed = 0;
    const live: string[] = [];
    let n = 0;
    const inject = path.join(REPO_ROOT, 'dist/test/e2e/fixtures/udp-inject.js');
    const garbage = Array.from({ length: 50 }, (_, i) => Buffer.from(`soak-${i}-not-for-you`).toString('hex'));
    let nextSample = 0;
    let nextInject = 5;
    let lastReport = 0;
    console.log(`soak: ${o.minutes} min, ${o.rateMbit} Mbit/s per stream, a lease added and removed every ${o.churnMs} ms`);
    while ((Date.now() - t0) / 1000 < seconds) {
      const t = (Date.now() - t0) / 1000;
      // Churn: a fake peer in 198.19.200.0 ... 198.19.249.0, public IP 198.18.5.x.
      const k = 200 + (n % 50);
      const key = `${PREFIX}/subnets/198.19.${k}.0-24`;
      if (!live.includes(key)) {
        etcd.putWithLease(key, `{"PublicIP":"198.18.5.${k - 199}","PublicIPv6":null,"BackendType":"udp"}`, 600);
        live.push(key);
        added++;
      }
      n++;
      if (live.length > 20) {
        etcd.del(live.shift()!);
        removed++;
      }
      if (t >= nextInject) {
        run(['ip', 'netns', 'exec', stranger, process.execPath, inject, hosts[0].ip, '8285', '0', ...garbage]);
        injected += garbage.length;
        nextInject += 5;
      }
      if (t >= nextSample) {
        for (const [i, h] of hosts.entries()) samples[i].push(sample(h, t0));
        nextSample += 5;
      }
      if (t - lastReport >= 60) {
        lastReport = t;
        const s = samples.map((x) => x[x.length - 1]);
        console.log(
          `  ${Math.round(t)} s: RSS ${s.map((x) => mib(x.rss)).join('/')} MiB, heap ${s.map((x) => mib(x.heap)).join('/')} MiB, loop p99 ${s.map((x) => (x.loopP99 * 1000).toFixed(1)).join('/')} ms, leases ${s.map((x) => x.leases).join('/')}`,
        );
      }
      await sleep(o.churnMs);
    }
    for (const [i, h] of hosts.entries()) samples[i].push(sample(h, t0));
    await Promise.all(procs.map((p) => (p.exitCode !== null ? undefined : new Promise((r) => p.once('exit', r)))));

    // Results.
    const rows = hosts.map((h, i) => {
      const s = samples[i];
      const first = s.filter((x) => x.t >= 30 && x.t <= 60);
      const last = s.filter((x) => x.t >= s[s.length - 1].t - 30);
      const base = first.length ? first : s.slice(0, Math.max(1, Math.floor(s.length / 5)));
      const end = s[s.length - 1];
      const rssStart = median(base.map((x) => x.rss));
      const rssEnd = median(last.map((x) => x.rss));
      const anonStart = median(base.map((x) => x.rssAnon));
      const anonEnd = median(last.map((x) => x.rssAnon));
      const heapStart = median(base.map((x) => x.heap));
      const heapEnd = median(last.map((x) => x.heap));
      const T = s[s.length - 1].t;
      const quarter = (from: number, to: number) => s.filter((x) => x.t >= from && x.t <= to);
      const floor = (xs: Sample[]) => Math.min(...xs.map((x) => x.heap));
      const mid = median(quarter(T / 2 - 30, T / 2).map((x) => x.rss));
      return {
        host: h.name,
        running: h.daemon!.running,
        rssStartMiB: Number(mib(rssStart)),
        rssEndMiB: Number(mib(rssEnd)),
        rssChangePct: changePct(rssStart, rssEnd),
        rssAnonStartMiB: Number(mib(anonStart)),
        rssAnonEndMiB: Number(mib(anonEnd)),
        rssAnonChangePct: changePct(anonStart, anonEnd),
        rssFileStartMiB: Number(mib(median(base.map((x) => x.rssFile)))),
        rssFileEndMiB: Number(mib(median(last.map((x) => x.rssFile)))),
        heapStartMiB: Number(mib(heapStart)),
        heapEndMiB: Number(mib(heapEnd)),
        heapChangePct: changePct(heapStart, heapEnd),
        heapFloorFirstQuarterMiB: Number(mib(floor(quarter(30, Math.max(60, T / 4))))),
        heapFloorLastQuarterMiB: Number(mib(floor(quarter((3 * T) / 4, T)))),
        rssSecondHalfChangePct: changePct(mid, rssEnd),
        heapTotalEndMiB: Number(mib(end.heapTotal)),
        externalEndMiB: Number(mib(end.external)),
        loopP99Ms: Number((end.loopP99 * 1000).toFixed(2)),
        loopMaxMs: Number((end.loopMax * 1000).toFixed(1)),
        drops: end.drops,
        packets: { tx: end.tx, rx: end.rx },
      };
    });
    // Drops the data plane cannot count: flannel0's queue (the kernel waiting
    // for us) and the UDP socket's buffers.
    const kernelDrops = hosts.map((h) => {
      const q = Number(/dropped (\d+)/.exec(h.exec(['tc', '-s', 'qdisc', 'show', 'dev', 'flannel0']))?.[1] ?? 0);
      const snmp = h.exec(['nstat', '-asz', 'UdpRcvbufErrors', 'UdpSndbufErrors']);
      const rcv = Number(/UdpRcvbufErrors\s+(\d+)/.exec(snmp)?.[1] ?? 0);
      const snd = Number(/UdpSndbufErrors\s+(\d+)/.exec(snmp)?.[1] ?? 0);
      return { flannel0Queue: q, udpRcvbuf: rcv, udpSndbuf: snd };
    });
    const pingLoss = pingLogs.map((f) => /(\d+(?:\.\d+)?)% packet loss/.exec(fs.readFileSync(f, 'utf8'))?.[1] ?? '?');
    const iperf = iperfLogs.map((f) => {
      const t = fs.readFileSync(f, 'utf8');
      const sender = /\[\s*\d+\]\s+0\.00-\S+\s+sec\s+(\S+ \S+)\s+(\S+ \S+)\s+(\d+)\s+sender/.exec(t);
      return sender ? { transferred: sender[1], rate: sender[2], retransmits: Number(sender[3]) } : { error: t.slice(-300) };
    });
    const otherDrops = rows.flatMap((r, i) =>
      Object.entries(r.drops)
        .filter(([k]) => !(i === 0 && k === 'rx:unknown_source'))
        .map(([k, v]) => `${r.host} ${k} ${v}`),
    );
    const injectedCounted = rows[0].drops['rx:unknown_source'] ?? 0;
    const result = {
      minutes: o.minutes,
      rateMbit: o.rateMbit,
      churn: { added, removed, everyMs: o.churnMs },
      injected,
      injectedCounted,
      hosts: rows,
      kernelDrops,
      pingLossPct: pingLoss,
      iperf,
      verdict: {
        memoryFlat: rows.every((r) => Math.abs(r.rssChangePct) <= 5),
        onlyInjectedDrops: otherDrops.length === 0 && injectedCounted === injected,
        otherDrops,
      },
    };
    console.log('\nsoak results');
    console.log('| host | RSS start → end (MiB) | anonymous / file-backed RSS (MiB) | heap used start → end (MiB) | event-loop delay p99 / max (ms) | packets tx / rx | drops |');
    console.log('|---|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(
        `| ${r.host} | ${r.rssStartMiB} → ${r.rssEndMiB} (${signedPct(r.rssChangePct)}) | ${r.rssAnonStartMiB} → ${r.rssAnonEndMiB} (${signedPct(r.rssAnonChangePct)}) / ${r.rssFileStartMiB} → ${r.rssFileEndMiB} | ${r.heapStartMiB} → ${r.heapEndMiB} (${signedPct(r.heapChangePct)}) | ${r.loopP99Ms} / ${r.loopMaxMs} | ${r.packets.tx} / ${r.packets.rx} | ${
          Object.entries(r.drops)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ') || '0'
        } |`,
      );
    }
    console.log(
      `\nheap used floor (first quarter → last quarter): ${rows.map((r) => `${r.host} ${r.heapFloorFirstQuarterMiB} → ${r.heapFloorLastQuarterMiB} MiB`).join(', ')}; ` +
        `RSS change over the second half: ${rows.map((r) => signedPct(r.rssSecondHalfChangePct)).join(' / ')}; ` +
        `at the end V8 heap total ${rows.map((r) => r.heapTotalEndMiB).join('/')} MiB, external ${rows.map((r) => r.externalEndMiB).join('/')} MiB`,
    );
    console.log(`kernel drops (flannel0 queue / UDP receive buffer / UDP send buffer): ${kernelDrops.map((k, i) => `${hosts[i].name} ${k.flannel0Queue}/${k.udpRcvbuf}/${k.udpSndbuf}`).join(', ')}`);
    console.log(`leases added ${added}, removed ${removed}; injected ${injected} datagrams from a non-peer, counted as unknown_source ${injectedCounted}`);
    console.log(`ping loss ${pingLoss.join(' / ')} %; iperf3 ${iperf.map((x) => ('rate' in x ? `${x.transferred} at ${x.rate}, ${x.retransmits} retransmits` : 'failed')).join('; ')}`);
    console.log(`memory flat within 5 %: ${result.verdict.memoryFlat ? 'yes' : 'NO'}; drops only the injected ones: ${result.verdict.onlyInjectedDrops ? 'yes' : `NO (${otherDrops.join(', ')})`}`);
    if (o.json) fs.writeFileSync(o.json, `${JSON.stringify({ ...result, samples }, null, 2)}\n`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    tryRun(['true']);
    await lab.destroy();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(`soak: ${(e as Error).message}`);
    process.exit(1);
  });
}
