// `flannel-ts demo --web`: the demo's cluster, built by the same code as the
// terminal demo (DemoRun.build, its narration written to narration.log in
// the lab's directory), then a page on 127.0.0.1 that draws it from live
// state and sends real pings through it. Runs until Ctrl-C or SIGTERM, then
// removes everything (also on an error) — or with --keep leaves the cluster
// up for `flannel-ts shell` and `demo --down`, as the terminal demo does.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab } from '../../lab/lab';
import { DemoRun, ETCD_PREFIX } from '../steps';
import { Ui } from '../ui';
import { text } from '../text';
import { adminRequest } from '../admin-client';
import { LiveState, inNs } from './live';
import { Journeys } from './journey';
import { type Route, Serial, WebRequestError, startWebServer } from './server';
import type { BackendKind, Lang, MeasureView, PeerCounters } from './api';

export interface WebOptions {
  port: number;
  lang: Lang;
  keep: boolean;
  state: string;
  /** Kept-cluster record for `flannel-ts shell` (DemoRun.facts). */
  self: string;
  /** With --keep: the commands to step in and to tear down, as printed at the end. */
  shell: string;
  down: string;
}

const bad = (msg: string) => new WebRequestError(msg);
const langOf = (x: unknown): Lang => (x === 'zh' ? 'zh' : 'en');

export async function runWeb(o: WebOptions, out: Ui): Promise<void> {
  const T = text(o.lang);
  const lab = new Lab({ detached: o.keep });
  const narration = path.join(lab.dir, 'narration.log');
  const silent = new Ui({ color: false, progress: false, width: 100, write: (s) => fs.appendFileSync(narration, s) });
  const demo = new DemoRun(lab, silent, T, { keep: o.keep });
  let server: Awaited<ReturnType<typeof startWebServer>> | undefined;
  let built = false;
  const finished = new Promise<NodeJS.Signals>((resolve) => {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]) process.once(s, () => resolve(s));
  });
  // A signal while building: tear down at once, as the terminal demo does.
  void finished.then((sig) => {
    if (built) return;
    out.line(T.end.interrupted(sig));
    lab.destroySync();
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as Record<string, number>)[sig]);
  });
  try {
    const live = new LiveState(demo);
    const journeys = new Journeys(demo);
    const serial = new Serial();
    const hostByName = (x: unknown) => {
      const h = demo.hosts.find((h) => h.name === x);
      if (!h) throw bad(`no host ${String(x)} (use ${demo.hosts.map((h) => h.name).join(', ')})`);
      return h;
    };
    const routes: Route[] = [
      { method: 'GET', path: '/api/state', handle: () => live.snapshot() },
      {
        method: 'GET',
        path: '/api/routes',
        handle: async (q) => {
          const h = hostByName(q.host);
          const r = await inNs(h.ns, ['ip', 'route']);
          return { host: h.name, cmd: 'ip route', output: r.out };
        },
      },
      {
        method: 'GET',
        path: '/api/counters',
        handle: async () => {
          const rows: PeerCounters[] = [];
          for (const h of demo.hosts) {
            if (!h.daemon?.running) continue;
            const metrics = (await adminRequest(h.adminSocket, { cmd: 'counters' }).catch(() => [])) as { name: string; values: { labels: Record<string, string>; value: number }[] }[];
            const peers = new Map<string, PeerCounters>();
            for (const m of metrics) {
              const unit = m.name === 'flannel_peer_packets_total' ? 'Packets' : m.name === 'flannel_peer_bytes_total' ? 'Bytes' : undefined;
              if (!unit) continue;
              for (const v of m.values) {
                const k = `${v.labels.subnet}`;
                const row = peers.get(k) ?? { host: h.name, subnet: v.labels.subnet, publicIp: v.labels.public_ip, txPackets: 0, rxPackets: 0, txBytes: 0, rxBytes: 0 };
                row[`${v.labels.direction as 'tx' | 'rx'}${unit as 'Packets' | 'Bytes'}`] = v.value;
                peers.set(k, row);
              }
            }
            rows.push(...peers.values());
          }
          return rows;
        },
      },
      {
        method: 'POST',
        path: '/api/journey',
        handle: (b) =>
          serial.run(async () => {
            const backend: BackendKind = b.backend === 'vxlan' ? 'vxlan' : 'udp';
            const [ds, dd] = journeys.defaults(backend);
            const src = b.src ? journeys.pod(String(b.src)) : ds;
            const dst = b.dst ? journeys.pod(String(b.dst)) : dd;
            if (!src || !dst) throw bad(`no pod ${String(src ? b.dst : b.src)}`);
            return journeys.run(src, dst, langOf(b.lang));
          }),
      },
      {
        method: 'POST',
        path: '/api/lease/delete',
        handle: (b) =>
          serial.run(async () => {
            const h = hostByName(b.host);
            const snap = await live.leases(ETCD_PREFIX);
            const lease = snap.leases.find((l) => l.publicIp === h.ip);
            if (!lease) throw bad(`${h.name} holds no lease in etcd right now`);
            const r = await live.etcdctl(['del', lease.key]);
            return { cmd: `etcdctl del ${lease.key}`, output: r.out.trim() };
          }),
      },
      {
        method: 'POST',
        path: '/api/flanneld',
        handle: (b) =>
          serial.run(async () => {
            const h = hostByName(b.host);
            if (b.action === 'stop') {
              if (h.daemon?.running) await h.daemon.stop('SIGTERM', 10_000);
              return { host: h.name, running: false };
            }
            if (b.action !== 'start') throw bad('action is stop or start');
            if (!h.daemon?.running) {
              h.startFlanneld(demo.etcd.endpoint, [`--etcd-prefix=${ETCD_PREFIX}`]);
              await h.waitReady(20_000);
            }
            return { host: h.name, running: true };
          }),
      },
      {
        method: 'POST',
        path: '/api/measure',
        handle: (b) =>
          serial.run(async () => {
            const [us, ud] = journeys.defaults('udp');
            const [vs, vd] = journeys.defaults('vxlan');
            const out: MeasureView[] = [];
            for (const [backend, s, d] of [
              ['udp', us, ud],
              ['vxlan', vs, vd],
            ] as const) {
              const m = await demo.measureRtt(s, d, backend);
              if (b.throughput === true) await demo.measureTput(s, d, m, backend);
              out.push({ backend, rttAvgMs: m.rttAvgMs, mbps: m.mbps, output: `${m.rttOutput}\n${m.iperfOutput}`.trim() });
            }
            return out;
          }),
      },
    ];
    // Listen first, so a busy port fails before the cluster is built; until it is, the API answers 503.
    const guarded = routes.map((r) => ({
      ...r,
      handle: (input: Record<string, unknown>) => {
        if (!built) throw new WebRequestError('the cluster is still being built: try again in a few seconds', 503);
        return r.handle(input);
      },
    }));
    server = await startWebServer(o.port, guarded, (s) => fs.appendFileSync(path.join(lab.dir, 'web.log'), `${new Date().toISOString()} ${s}\n`));
    const p = out.progress(
      o.lang === 'zh' ? '正在搭建集群（etcd、3 台宿主机上的 flanneld、Pod、vxlan 对比网络）' : 'building the cluster (etcd, flanneld on 3 hosts, pods, the vxlan comparison network)',
    );
    await demo.build();
    built = true;
    p.done(o.lang === 'zh' ? `集群已就绪（${p.elapsed.toFixed(1)} 秒），过程记录在 ${narration}` : `cluster ready (${p.elapsed.toFixed(1)} s); its narration is in ${narration}`);
    out.line(o.lang === 'zh' ? '在浏览器里打开（地址中含访问令牌，只在本机 127.0.0.1 上监听）：' : 'Open in a browser (the token in the address is the key; listening on 127.0.0.1 only):');
    out.line(`${server.url}${o.lang === 'zh' ? '&lang=zh' : ''}`);
    out.line(
      o.lang === 'zh'
        ? `从另一台机器访问：ssh -L ${server.port}:127.0.0.1:${server.port} <这台机器>，再在那台机器上打开同一地址。Ctrl-C 结束${o.keep ? '（集群保留，用 demo --down 拆除）' : '并拆除一切'}。`
        : `From another machine: ssh -L ${server.port}:127.0.0.1:${server.port} <this machine>, then open the same address there. Ctrl-C ends it${o.keep ? ' (the cluster is kept: demo --down removes it)' : ' and removes everything'}.`,
    );
    const sig = await finished;
    await server.close();
    if (o.keep) {
      lab.keep(o.state, demo.facts(o.self) as unknown as Record<string, unknown>);
      out.line(o.lang === 'zh' ? `（${sig}）网页已关闭，集群继续运行。进入：${o.shell}` : `(${sig}) the page is closed; the cluster stays up. Step in: ${o.shell}`);
      out.line(T.end.teardown(o.down));
    } else {
      out.line(T.end.interrupted(sig));
      const n = lab.namespaces.length;
      await lab.destroy();
      out.line(T.end.removed(n));
    }
  } finally {
    await server?.close();
    if (!lab.isKept) await lab.destroy();
  }
}
