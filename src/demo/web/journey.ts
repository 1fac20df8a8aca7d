// A packet's journey for the page: a real ping between two pods, observed as
// the terminal demo observes it (observe.ts: both daemons' traces through
// their admin sockets, tcpdump on the sender's eth0), told hop by hop. Each
// hop carries what decided the next step — the route the kernel matched
// (`ip route get`), the lease the daemon's trace names, the drop reason — and
// the captured datagram is decoded into its layers by packet-view.ts.

import type { Pod } from '../../lab/host';
import type { DemoRun } from '../steps';
import { ETCD_PREFIX, formatJson } from '../steps';
import { observePing, type ObservedPing } from '../observe';
import { decodeFlannelDatagram, decodeVxlanDatagram, type FlannelDatagram } from '../pcap';
import { headerTables } from '../packet-view';
import { text } from '../text';
import { inNs } from './live';
import { WebRequestError } from './server';
import { words } from './words';
import type { BackendKind, CaptureView, Hop, JourneyView, Lang, PodView } from './api';

const PORTS: Record<BackendKind, number> = { udp: 8285, vxlan: 8472 };

/** `ip route get` in a namespace: its first line, the route the kernel chose. */
async function routeGet(ns: string, args: string[]): Promise<{ cmd: string; output: string }> {
  const argv = ['ip', 'route', 'get', ...args];
  const r = await inNs(ns, argv);
  return { cmd: argv.join(' '), output: r.out.trim() };
}

/** The route the kernel matched for `dst`: of `ip route show match`, the longest prefix. */
async function matchedRoute(ns: string, dst: string): Promise<string> {
  const r = await inNs(ns, ['ip', 'route', 'show', 'match', dst]);
  const len = (l: string) => (l.startsWith('default') ? 0 : Number(/^\S+\/(\d+)/.exec(l)?.[1] ?? 32));
  return (
    r.out
      .split('\n')
      .filter(Boolean)
      .sort((a, b) => len(b) - len(a))[0]
      ?.trim() ?? r.out.trim()
  );
}

export class Journeys {
  constructor(readonly demo: DemoRun) {}

  podView(p: Pod): PodView {
    return { name: this.demo.placeOf(p).name, ip: p.ip, backend: this.demo.vxPods.includes(p) ? 'vxlan' : 'udp' };
  }

  /** Every pod by its short name (h1-pod1, h3-vx1...). */
  pod(name: string): Pod | undefined {
    const all = [...[...this.demo.pods.values()].flat(), ...this.demo.vxPods];
    return all.find((p) => this.demo.placeOf(p).name === name);
  }

  /** The demo's own ping: h1's first pod to h3's second (vxlan: h1's to h3's). */
  defaults(backend: BackendKind): [Pod, Pod] {
    const d = this.demo;
    if (backend === 'vxlan') return [d.vxPods[0], d.vxPods[1]];
    return [d.pods.get(d.hosts[0])![0], d.pods.get(d.hosts[2])![1]];
  }

  capture(seen: ObservedPing, backend: BackendKind, lang: Lang): CaptureView | undefined {
    if (!seen.frame || seen.linkType === undefined) return undefined;
    const d: FlannelDatagram = backend === 'vxlan' ? decodeVxlanDatagram(seen.frame, seen.linkType) : decodeFlannelDatagram(seen.frame, seen.linkType);
    const tables = headerTables(d, text(lang), this.demo.names());
    return {
      backend,
      hex: seen.frame.toString('hex'),
      layers: tables.map((t) => ({
        layer: t.layer,
        title: t.title,
        start: t.start,
        length: t.length,
        fields: t.rows.map(([name, value, meaning], i) => ({ name, value, meaning, start: t.spans[i][0], length: t.spans[i][1] })),
      })),
      outer: { src: d.outer.src, dst: d.outer.dst, srcPort: d.udp.srcPort, dstPort: d.udp.dstPort },
      inner: { src: d.inner.src, dst: d.inner.dst },
      pcapFile: seen.pcapFile,
      tcpdumpLog: seen.tcpdumpLog,
    };
  }

  async run(src: Pod, dst: Pod, lang: Lang): Promise<JourneyView> {
    const backend: BackendKind = this.demo.vxPods.includes(src) ? 'vxlan' : 'udp';
    if ((this.demo.vxPods.includes(dst) ? 'vxlan' : 'udp') !== backend) throw new WebRequestError('source and destination must be on the same network (udp pods with udp pods, vxlan with vxlan)');
    if (src === dst) throw new WebRequestError('pick two different pods');
    const W = words(lang);
    const [h1, h3] = [src.host, dst.host];
    const [s, t] = [this.podView(src), this.podView(dst)];
    const hops: Hop[] = [];
    const gwOf = (p: Pod) => p.ip.replace(/\.\d+$/, '.1');
    const br = backend === 'vxlan' ? this.demo.vxNodes.find((n) => n.host === h1)!.bridge : 'cni0';
    const brFar = backend === 'vxlan' ? this.demo.vxNodes.find((n) => n.host === h3)!.bridge : 'cni0';
    const tun = backend === 'vxlan' ? 'flannel.1' : 'flannel0';
    hops.push({ at: `pod:${s.name}`, title: W.podOut(s.name), decided: W.podRoute(gwOf(src)), evidence: await routeGet(src.ns, [dst.ip]) });
    hops.push({ at: `${h1.name}:${br}`, title: W.bridge(br, h1.name), decided: h1 === h3 ? W.sameHost : W.bridgeUp(h1.name) });

    if (h1 === h3) {
      const seen = await observePing(this.demo.lab, { src, dst, capture: { host: h1, port: PORTS[backend], dstIp: h1.ip }, count: 2, tag: `web-${backend}` });
      hops.push({ at: `pod:${t.name}`, title: W.arrive(t.name), decided: W.reply(seen.ping.received, seen.ping.sent), evidence: { cmd: `ping -c 2 ${dst.ip}`, output: seen.ping.output.trim() } });
      return { backend, src: s, dst: t, ping: { output: seen.ping.output, sent: seen.ping.sent, received: seen.ping.received }, hops };
    }

    const hostRoute = await routeGet(h1.ns, [dst.ip, 'from', src.ip, 'iif', br]);
    const udpNode = backend === 'udp';
    const seen = await observePing(this.demo.lab, {
      src,
      dst,
      txSocket: udpNode && h1.daemon?.running ? h1.adminSocket : undefined,
      rxSocket: udpNode && h3.daemon?.running ? h3.adminSocket : undefined,
      capture: { host: h1, port: PORTS[backend], dstIp: h3.ip },
      count: 2,
      tag: `web-${backend}`,
    });
    const cap = this.capture(seen, backend, lang);
    const routeLine = hostRoute.output.split('\n')[0];
    const noRoute = !/ dev (flannel0|flannel\.1)/.test(routeLine);
    const matched = await matchedRoute(h1.ns, dst.ip);
    hops.push({ at: `${h1.name}:${tun}`, title: backend === 'vxlan' ? W.vxRoute(h1.name) : W.hostRoute(h1.name), decided: W.routeMatched(matched), evidence: hostRoute, drop: noRoute });
    let delivered = !noRoute;

    if (delivered && udpNode) {
      const ev = seen.tx?.ev;
      const hop: Hop = { at: `${h1.name}:flanneld`, title: W.tunRead(h1.name), decided: W.noEvent, drop: true };
      if (ev) {
        hop.evidence = { cmd: `flannel-ts trace --admin-socket=${h1.adminSocket} --host ${dst.ip} --proto icmp --json`, output: formatJson(seen.tx!.line) };
        if (ev.decision === 'forwarded' && ev.peer) {
          hop.decided = W.leaseNamed(ev.peer.subnet, ev.peer.publicIp, `${ETCD_PREFIX}/subnets/${ev.peer.subnet.replace('/', '-')}`);
          hop.drop = false;
        } else {
          hop.decided = W.dropped(ev.decision);
        }
      }
      hops.push(hop);
      delivered = !hop.drop;
    } else if (delivered) {
      const nextHop = /via (\S+)/.exec(routeLine)?.[1] ?? '';
      const [neigh, fdb] = await Promise.all([inNs(h1.ns, ['ip', 'neigh', 'show', nextHop, 'dev', 'flannel.1']), inNs(h1.ns, ['bridge', 'fdb', 'show', 'dev', 'flannel.1'])]);
      const mac = /lladdr (\S+)/.exec(neigh.out)?.[1] ?? '?';
      const fdbLine = fdb.out.split('\n').find((l) => l.startsWith(mac)) ?? '';
      hops.push({
        at: `${h1.name}:flannel.1`,
        title: W.vxNeigh,
        decided: W.vxNeighSaid(mac, /dst (\S+)/.exec(fdbLine)?.[1] ?? '?'),
        evidence: { cmd: `ip neigh show ${nextHop} dev flannel.1; bridge fdb show dev flannel.1 | grep ${mac}`, output: `${neigh.out.trim()}\n${fdbLine}` },
        drop: !fdbLine,
      });
      delivered = !!fdbLine;
    }

    if (delivered) {
      hops.push({
        at: `${h1.name}:eth0`,
        title: W.wire(`${h1.name} eth0`, `${h3.name} eth0`),
        decided: cap ? W.wireSaid(cap.outer.src, cap.outer.srcPort, cap.outer.dst, cap.outer.dstPort) : W.noCapture,
        evidence: { cmd: seen.pcapFile, output: seen.tcpdumpLog.trim() },
        drop: !cap,
      });
      hops.push({ at: 'switch', title: W.wire(h1.ip, h3.ip), decided: cap ? W.wireSaid(cap.outer.src, cap.outer.srcPort, cap.outer.dst, cap.outer.dstPort) : W.noCapture });
      delivered = !!cap;
    }
    if (delivered && udpNode) {
      const listening = h3.daemon?.running === true;
      hops.push({ at: `${h3.name}:eth0`, title: W.arrives(h3.name), decided: listening ? W.toSocket(PORTS.udp) : W.daemonStopped(h3.name, PORTS.udp), drop: !listening });
      delivered = listening;
    }
    if (delivered && udpNode) {
      const ev = seen.rx?.ev;
      const ok = ev?.decision === 'forwarded';
      hops.push({
        at: `${h3.name}:flanneld`,
        title: W.rxDaemon(h3.name),
        decided: ev ? (ok ? W.rxDecided(ev.decision) : W.dropped(ev.decision)) : W.noEvent,
        evidence: seen.rx ? { cmd: `flannel-ts trace --admin-socket=${h3.adminSocket} --host ${dst.ip} --proto icmp --json`, output: formatJson(seen.rx.line) } : undefined,
        drop: !ok,
      });
      delivered = ok;
    } else if (delivered) {
      hops.push({ at: `${h3.name}:eth0`, title: W.vxRx(h3.name), decided: W.vxRxSaid });
    }
    if (delivered) {
      const far = await routeGet(h3.ns, [dst.ip, 'from', src.ip, 'iif', tun]);
      hops.push({ at: `${h3.name}:${tun}`, title: W.farRoute(h3.name), decided: W.routeMatched(await matchedRoute(h3.ns, dst.ip)), evidence: far });
      hops.push({ at: `${h3.name}:${brFar}`, title: W.bridge(brFar, h3.name), decided: '' });
      hops.push({
        at: `pod:${t.name}`,
        title: W.arrive(t.name),
        decided: W.reply(seen.ping.received, seen.ping.sent),
        evidence: { cmd: `ping -c 2 ${dst.ip}`, output: seen.ping.output.trim() },
        drop: seen.ping.received === 0,
      });
    }
    return { backend, src: s, dst: t, ping: { output: seen.ping.output, sent: seen.ping.sent, received: seen.ping.received }, hops, capture: cap };
  }
}
