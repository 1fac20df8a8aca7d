// The cluster drawn from the server's live state (GET /api/state): etcd with
// its config and leases, the underlay switch, and each host with eth0,
// flanneld, flannel0 (its /32), cni0 (its subnet) and pods; beside them the
// vxlan comparison network: its flanneld, flannel.1 with its neighbour and
// fdb entries, the brvx bridge and its pod. Every drawn element has an id
// (data-id) the journey animates through: "pod:h1-pod1", "h1:cni0",
// "h1:flannel0", "h1:flanneld", "h1:eth0", "switch", "h1:flannel.1", "h1:brvx".

import type { DeviceView, HostView, LeaseView, StateView } from '../api.js';
import { svg } from './dom.js';
import type { Labels } from './i18n.js';

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

export const WIDTH = 1400;
const HOST_W = 440;
const HOST_GAP = 20;
const HOST_Y = 246;
const HOST_H = 388;
const SWITCH_Y = 182;

/** Centre of a drawn element, for arrows and the moving packet. */
export const centre = (b: Box) => ({ x: b.x + b.w / 2, y: b.y + b.h / 2 });

type Kind = 'pod' | 'pod vxpod' | 'tun' | 'vx' | 'bridge' | 'daemon' | 'nic' | 'down';

function node(boxes: Map<string, Box>, id: string, b: Box, kind: Kind, lines: string[], extra: Record<string, string> = {}): SVGGElement {
  boxes.set(id, b);
  const g = svg('g', { class: `node ${kind}`, 'data-id': id, ...extra });
  g.append(svg('rect', { x: b.x, y: b.y, width: b.w, height: b.h, rx: kind === 'daemon' || kind === 'down' ? 17 : 6 }));
  lines.forEach((l, i) => {
    const t = svg('text', { x: b.x + b.w / 2, y: b.y + 16 + i * 15, class: i === 0 ? 'name' : i === 1 ? 'addr' : 'small' }, l);
    g.append(t);
  });
  return g;
}

function link(a: Box, b: Box, cls = 'wire', label?: string): SVGGElement {
  const ca = centre(a);
  const cb = centre(b);
  const y1 = a.y + a.h <= b.y ? a.y + a.h : a.y;
  const y2 = a.y + a.h <= b.y ? b.y : b.y + b.h;
  const g = svg('g', { class: cls });
  g.append(svg('line', { x1: ca.x, y1, x2: cb.x, y2 }));
  if (label) g.append(svg('text', { x: (ca.x + cb.x) / 2 + 5, y: (y1 + y2) / 2 + 4, class: 'wirelabel' }, label));
  return g;
}

function leaseOf(leases: LeaseView[], ip: string): LeaseView | undefined {
  return leases.find((l) => l.publicIp === ip);
}

function device(d: DeviceView | undefined, fallback: string): string {
  return d?.addr ?? fallback;
}

function drawHost(root: SVGElement, bg: SVGElement, boxes: Map<string, Box>, s: StateView, h: HostView, x: number, L: Labels): void {
  const lease = leaseOf(s.etcd.leases, h.ip);
  const g = svg('g', { class: 'host', 'data-host': h.name, 'data-ip': h.ip, 'data-lease': lease?.subnet ?? '' });
  root.append(g);
  bg.append(svg('rect', { x, y: HOST_Y, width: HOST_W, height: HOST_H, rx: 12, class: 'hostbox' }));
  g.append(svg('text', { x: x + 16, y: HOST_Y + 26, class: 'hostname' }, `${h.name}`));
  const leaseText = lease ? `${L.lease} ${lease.subnet}` : L.noLease;
  g.append(svg('text', { x: x + HOST_W - 14, y: HOST_Y + 26, class: lease ? 'leasetag' : 'leasetag missing', 'text-anchor': 'end', 'data-lease-text': '' }, leaseText));

  const eth0: Box = { x: x + HOST_W / 2 - 85, y: HOST_Y + 40, w: 170, h: 38 };
  g.append(node(boxes, `${h.name}:eth0`, eth0, 'nic', ['eth0', device(h.eth0, h.ip)]));
  boxes.set(`${h.name}:host`, { x, y: HOST_Y, w: HOST_W, h: HOST_H });

  // udp lane
  const lx = x + 12;
  const lw = HOST_W / 2 - 18;
  const vw = HOST_W - lw - 36;
  g.append(svg('text', { x: lx + 4, y: HOST_Y + 100, class: 'lanelabel' }, L.udpLane));
  const fd: Box = { x: lx, y: HOST_Y + 108, w: lw, h: 34 };
  const running = h.flanneld.running;
  g.append(node(boxes, `${h.name}:flanneld`, fd, running ? 'daemon' : 'down', [running ? `flanneld${h.flanneld.pid ? ` · pid ${h.flanneld.pid}` : ''}` : L.flanneldStopped]));
  const tun: Box = { x: lx, y: HOST_Y + 168, w: lw, h: 40 };
  g.append(node(boxes, `${h.name}:flannel0`, tun, h.flannel0 ? 'tun' : 'down', ['flannel0', device(h.flannel0, '—')]));
  const br: Box = { x: lx, y: HOST_Y + 236, w: lw, h: 40 };
  g.append(node(boxes, `${h.name}:cni0`, br, 'bridge', ['cni0', device(h.cni0, '—')], { 'data-subnet': h.cni0?.addr ?? '' }));
  g.prepend(link(eth0, fd, 'wire', 'UDP :8285'));
  g.prepend(link(fd, tun, 'wire', 'TUN'));
  g.prepend(link(tun, br, 'wire route'));
  const udpPods = h.pods.filter((p) => p.backend === 'udp');
  const pw = (lw - 8 * (udpPods.length - 1)) / Math.max(1, udpPods.length);
  udpPods.forEach((p, i) => {
    const b: Box = { x: lx + i * (pw + 8), y: HOST_Y + 306, w: pw, h: 44 };
    g.prepend(link(br, b, 'wire veth'));
    g.append(node(boxes, `pod:${p.name}`, b, 'pod', [p.name, p.ip], { 'data-pod': p.name, 'data-pod-ip': p.ip }));
  });

  // vxlan lane
  const vx0 = lx + lw + 12;
  g.append(svg('text', { x: vx0 + 4, y: HOST_Y + 100, class: 'lanelabel' }, L.vxlanLane));
  if (!h.vx) {
    g.append(svg('text', { x: vx0 + vw / 2, y: HOST_Y + 200, class: 'novx' }, L.noVxlan));
    return;
  }
  const vfd: Box = { x: vx0, y: HOST_Y + 108, w: vw, h: 34 };
  g.append(node(boxes, `${h.name}:flanneld-vx`, vfd, h.vx.flanneld.running ? 'daemon' : 'down', [h.vx.flanneld.running ? `flanneld (vxlan)` : L.flanneldStopped]));
  const v1: Box = { x: vx0, y: HOST_Y + 168, w: vw, h: 40 + 13 * Math.min(4, h.vx.neigh.length + h.vx.fdb.length) };
  const entries: [string, string][] = [
    ...h.vx.neigh.slice(0, 2).map((n): [string, string] => ['ARP ', `${n.split(' ')[0]} → ${/lladdr (\S+)/.exec(n)?.[1] ?? '?'}`]),
    ...h.vx.fdb.slice(0, 2).map((f): [string, string] => ['FDB ', `${f.split(' ')[0]} → ${/dst (\S+)/.exec(f)?.[1] ?? '?'}`]),
  ];
  const g1 = node(boxes, `${h.name}:flannel.1`, v1, 'vx', ['flannel.1', device(h.vx.flannel1, '—')]);
  entries.forEach(([k, e], i) => {
    g1.append(svg('text', { x: v1.x + 5, y: v1.y + 46 + i * 13, class: 'entry' }, svg('tspan', { class: 'k' }, k), e));
  });
  g.append(g1);
  const vbr: Box = { x: vx0, y: Math.max(HOST_Y + 236, v1.y + v1.h + 16), w: vw, h: 40 };
  g.append(node(boxes, `${h.name}:brvx`, vbr, 'bridge', ['brvx', device(h.vx.brvx, '—')]));
  g.prepend(link(eth0, v1, 'wire', 'UDP :8472'));
  g.prepend(link(vfd, v1, 'wire programs'));
  g.prepend(link(v1, vbr, 'wire route'));
  h.pods
    .filter((p) => p.backend === 'vxlan')
    .forEach((p, i) => {
      const b: Box = { x: vx0 + i * (vw / 2 + 4), y: HOST_Y + 306, w: vw / 2 + 10, h: 44 };
      g.prepend(link(vbr, b, 'wire veth'));
      g.append(node(boxes, `pod:${p.name}`, b, 'pod vxpod', [p.name, p.ip], { 'data-pod': p.name, 'data-pod-ip': p.ip }));
    });
}

/** The network config in one short line: Network, SubnetLen, Backend.Type. */
function describeConfig(text: string): string {
  try {
    const c = JSON.parse(text) as { Network?: string; SubnetLen?: number; Backend?: { Type?: string } };
    return `Network ${c.Network} · SubnetLen ${c.SubnetLen ?? 24} · Backend ${c.Backend?.Type ?? 'udp'}`;
  } catch {
    return text || '—';
  }
}

function drawEtcd(root: SVGElement, boxes: Map<string, Box>, s: StateView, L: Labels): Box {
  const b: Box = { x: 230, y: 8, w: 940, h: 148 };
  boxes.set('etcd', b);
  const g = svg('g', { class: `etcd${s.etcd.up ? '' : ' down'}`, 'data-id': 'etcd' });
  g.append(svg('rect', { x: b.x, y: b.y, width: b.w, height: b.h, rx: 10 }));
  g.append(svg('text', { x: b.x + 14, y: b.y + 22, class: 'etcdtitle' }, `${L.etcd} · ${s.etcd.endpoint}${s.etcd.up ? '' : ` · ${L.etcdDown}`}`));
  const col = (x: number, title: string, key: string, config: string, leases: LeaseView[], cls: string) => {
    g.append(svg('text', { x, y: b.y + 42, class: 'etcdkey' }, key));
    g.append(svg('text', { x, y: b.y + 56, class: 'etcdconf' }, describeConfig(config)));
    g.append(svg('text', { x, y: b.y + 76, class: 'etcdsub' }, title));
    leases.forEach((l, i) => {
      g.append(
        svg(
          'text',
          { x, y: b.y + 92 + i * 15, class: `lease ${cls}`, 'data-lease': l.subnet, 'data-public-ip': l.publicIp },
          `${l.subnet} → ${l.publicIp}${l.vtepMac ? ` (VTEP ${l.vtepMac})` : ''}${l.leaseId ? ` · lease ${l.leaseId}` : ''}`,
        ),
      );
    });
  };
  col(b.x + 14, L.leases, s.etcd.configKey, s.etcd.config, s.etcd.leases, 'udp');
  col(b.x + 480, L.vxLeases, s.etcd.vxConfigKey, s.etcd.vxConfig, s.etcd.vxLeases, 'vxlan');
  root.append(g);
  return b;
}

/** Redraws the whole picture; returns where each element is. */
export function drawTopology(root: SVGSVGElement, s: StateView, L: Labels): Map<string, Box> {
  const boxes = new Map<string, Box>();
  root.replaceChildren();
  root.setAttribute('viewBox', `0 0 ${WIDTH} ${HOST_Y + HOST_H + 12}`);
  const wires = svg('g', { class: 'wires' });
  // The journey's path goes over the hosts' and the switch's backgrounds but
  // under the devices (seen between them); the packet goes over everything.
  const bg = svg('g', { class: 'backgrounds' });
  root.append(wires, bg, svg('g', { id: 'path-layer' }));
  const etcd = drawEtcd(root, boxes, s, L);
  const sw: Box = { x: 20, y: SWITCH_Y, w: WIDTH - 40, h: 30 };
  boxes.set('switch', sw);
  wires.append(link(etcd, sw, 'wire underlay', s.etcd.ip));
  const g = svg('g', { class: 'switch', 'data-id': 'switch' });
  bg.append(svg('rect', { x: sw.x, y: sw.y, width: sw.w, height: sw.h, rx: 6, class: 'switchbar' }));
  g.append(svg('text', { x: sw.x + sw.w / 2, y: sw.y + 20 }, `${L.switch} · 198.18.0.0/16`));
  root.append(g);
  s.hosts.forEach((h, i) => {
    const x = 20 + i * (HOST_W + HOST_GAP);
    drawHost(root, bg, boxes, s, h, x, L);
    const eth0 = boxes.get(`${h.name}:eth0`)!;
    wires.append(link(sw, eth0, 'wire underlay'));
  });
  root.append(svg('g', { id: 'overlay-layer' }));
  return boxes;
}
