// The demo's walk, step by step. Every command shown is the command run (in
// the namespace named by its prompt), and every output printed is its real
// output; the narration around it comes from text.ts in the chosen language.

import * as path from 'node:path';
import { type Lab, REPO_ROOT } from '../lab/lab';
import { Etcd } from '../lab/etcd';
import { Host, type Pod, type SubnetEnv } from '../lab/host';
import { BackendNode } from '../lab/topology';
import { run, tryRun, waitFor } from '../lab/sh';
import { execStatus } from '../util/exec';
import { FlannelError } from '../util/errors';
import type { Ui } from './ui';
import type { Text } from './text';
import { decodeFlannelDatagram } from './pcap';
import { exitWithin, observePing, tcpdumpArgv } from './observe';
export type { TraceEventJson } from './admin-client';
import { hexdump } from './hexdump';
import { headerTables, regions } from './packet-view';
import type { DemoFacts } from './state';

export const ETCD_PREFIX = '/coreos.com/network';
export const NETWORK_CONFIG = { Network: '198.19.0.0/16', SubnetLen: 24, SubnetMax: '198.19.199.0', Backend: { Type: 'udp' } };
/** flannel-ts's vxlan backend runs beside udp: its own prefix, and a Network the udp config's SubnetMax leaves free. */
export const VXLAN_PREFIX = '/flannel-ts-demo/vxlan/network';
export const VXLAN_CONFIG = { Network: '198.19.200.0/21', SubnetLen: 24, Backend: { Type: 'vxlan' } };
const UDP_PORT = 8285;
const UNDERLAY_MTU = 1500;
const FLANNEL_TS = path.join(REPO_ROOT, 'bin/flannel-ts');

/** Somewhere a command runs: a host, a pod or etcd's namespace, by its short name. */
interface Place {
  name: string;
  ns: string;
}

/** Quotes an argument for display as a shell would need it. */
export function shq(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}
const shjoin = (argv: string[]) => argv.map(shq).join(' ');

interface Measured {
  rttAvgMs?: number;
  rttOutput: string;
  mbps?: number;
  iperfOutput: string;
}

export class DemoRun {
  etcd!: Etcd;
  hosts: Host[] = [];
  envs: SubnetEnv[] = [];
  readonly pods = new Map<Host, Pod[]>();
  readonly extraPlaces: { name: string; ns: string; what: string; ip?: string; host?: string }[] = [];
  /** The vxlan comparison network (step 6): a flanneld with the vxlan backend on h1 and h3, a pod on each. */
  vxNodes: BackendNode[] = [];
  vxPods: Pod[] = [];
  vxMtu = 0;
  private etcdEnv: string[] = [];

  constructor(
    readonly lab: Lab,
    readonly ui: Ui,
    readonly T: Text,
    readonly opts: { keep: boolean },
  ) {}

  async run(): Promise<void> {
    const { ui, T } = this;
    ui.title(T.title);
    ui.para(T.intro(this.lab.prefix));
    await this.stepEtcd();
    await this.stepHosts();
    this.stepLeases();
    this.stepHostState();
    await this.stepPing();
    await this.stepCompare();
  }

  /** The cluster without the walk (the web view): etcd, the udp hosts and pods, the leases checked, the vxlan network. */
  async build(): Promise<void> {
    await this.stepEtcd();
    await this.stepHosts();
    this.stepLeases();
    await this.setupVxlanNetwork();
  }

  // ---- helpers ------------------------------------------------------------

  placeOf(x: Host | Pod): Place {
    return { name: x.ns.slice(this.lab.prefix.length + 1), ns: x.ns };
  }

  /** Runs argv in `where`, shows it after `why`, prints its output; returns the output. */
  show(where: Place, argv: string[], why: string, o: { env?: string[]; display?: string; allowFail?: boolean } = {}): string {
    const full = ['ip', 'netns', 'exec', where.ns, ...(o.env?.length ? ['env', ...o.env] : []), ...argv];
    let out: string;
    if (o.allowFail) {
      const r = tryRun(full);
      out = r.stdout + r.stderr;
    } else {
      out = run(full);
    }
    this.ui.cmd(where.name, o.display ?? shjoin(argv), why, out);
    return out;
  }

  /** etcdctl (v3 API) on h1, against the lab's etcd over the underlay. */
  etcdctl(args: string[], why: string, shown = true): string {
    const where = this.placeOf(this.hosts[0]);
    if (shown) return this.show(where, ['etcdctl', ...args], why, { env: this.etcdEnv });
    return run(['ip', 'netns', 'exec', where.ns, 'env', ...this.etcdEnv, 'etcdctl', ...args]);
  }

  /** The etcd key of a host's lease: subnet network address and length. */
  leaseKey(env: SubnetEnv): string {
    const [first, len] = env.subnet.split('/');
    const network = first.split('.').map(Number);
    const bits = Number(len);
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    const n = ((((network[0] << 24) | (network[1] << 16) | (network[2] << 8) | network[3]) >>> 0) & mask) >>> 0;
    return `${ETCD_PREFIX}/subnets/${[n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')}-${len}`;
  }

  subnetOf(env: SubnetEnv): string {
    return this.leaseKey(env).slice(`${ETCD_PREFIX}/subnets/`.length).replace('-', '/');
  }

  // ---- 1. etcd ------------------------------------------------------------

  private async stepEtcd(): Promise<void> {
    const { ui, T, lab } = this;
    ui.heading(T.s1.title);
    const version = (/etcd Version: (\S+)/.exec(tryRun(['etcd', '--version']).stdout) ?? [])[1] ?? '?';
    this.etcd = new Etcd(lab);
    // The hosts' namespaces now: etcdctl runs on h1, as an operator would on any node.
    this.hosts = [1, 2, 3].map((i) => new Host(lab, `h${i}`, `198.18.0.${i}`, UNDERLAY_MTU));
    ui.para(T.s1.intro(version, this.etcd.endpoint, this.etcd.dataDir));
    const p = ui.progress(T.s1.starting);
    await this.etcd.start();
    p.done(T.s1.started(this.etcd.endpoint, p.elapsed));
    this.etcdEnv = ['ETCDCTL_API=3', `ETCDCTL_ENDPOINTS=${this.etcd.endpoint}`];
    ui.cmd('h1', `export ${this.etcdEnv.join(' ')}`, T.s1.whyExport);
    const config = JSON.stringify(NETWORK_CONFIG);
    this.etcdctl(['put', `${ETCD_PREFIX}/config`, config], T.s1.whyPut);
    ui.note(T.s1.v2Put(`etcdctl set ${ETCD_PREFIX}/config '{...}'`));
    this.etcdctl(['get', `${ETCD_PREFIX}/config`], T.s1.whyGet);
    ui.para(T.s1.configExplained(UDP_PORT));
  }

  // ---- 2. hosts, flanneld, pods -------------------------------------------

  private async stepHosts(): Promise<void> {
    const { ui, T, lab } = this;
    ui.heading(T.s2.title);
    ui.para(T.s2.intro);
    for (const h of this.hosts) h.startFlanneld(this.etcd.endpoint, [`--etcd-prefix=${ETCD_PREFIX}`]);
    const h1 = this.hosts[0];
    const argv = lab.processes().find((x) => x.ns === h1.ns && x.argv.some((a) => a.endsWith('bin/flanneld')))!.argv;
    const flags = argv.slice(argv.findIndex((a) => a.endsWith('bin/flanneld')) + 1);
    ui.cmd('h1', `${shjoin(['flanneld', ...flags])} &`, T.s2.whyFlanneld);
    ui.para(T.s2.sameOnOthers(path.join(lab.dir, '<host>', 'flanneld.log')));

    const names = this.hosts.map((h) => h.name);
    const p = ui.progress(T.s2.waiting(names));
    const ready = new Set<string>();
    this.envs = await Promise.all(
      this.hosts.map(async (h) => {
        const env = await h.waitReady(20_000).catch((e: Error) => {
          throw new Error(`${T.err.daemonNotReady(h.name)}\n${e.message}\n--- ${h.daemon?.logFile}\n${h.daemon?.log().slice(-2000) ?? ''}`);
        });
        ready.add(h.name);
        p.set(T.s2.waiting(names.filter((n) => !ready.has(n))));
        return env;
      }),
    );
    p.done(T.s2.ready(names, p.elapsed));

    ui.para(T.s2.podsIntro);
    this.hosts.forEach((h, i) => {
      h.setupBridge(this.envs[i]);
      this.pods.set(h, [h.addPod(this.envs[i]), h.addPod(this.envs[i])]);
    });
    ui.line();
    ui.table(
      T.s2.tableHeader,
      this.hosts.map((h, i) => [
        h.name,
        h.ip,
        this.subnetOf(this.envs[i]),
        this.pods
          .get(h)!
          .map((pod) => `${this.placeOf(pod).name} ${pod.ip}`)
          .join(', '),
      ]),
    );
    ui.para(T.s2.tableNote);
  }

  // ---- 3. leases ----------------------------------------------------------

  private stepLeases(): void {
    const { ui, T } = this;
    ui.heading(T.s3.title);
    ui.para(T.s3.intro);
    const keysOut = this.etcdctl(['get', `${ETCD_PREFIX}/subnets`, '--prefix', '--keys-only'], T.s3.whyKeys);
    ui.note(T.s3.v2Ls(`etcdctl ls ${ETCD_PREFIX}/subnets`));
    // The demo checks itself: etcd's keys are the hosts' subnets.
    const keys = keysOut.split('\n').filter(Boolean).sort();
    const expected = this.envs.map((e) => this.leaseKey(e)).sort();
    if (JSON.stringify(keys) !== JSON.stringify(expected)) throw new Error(T.err.leasesMismatch(keys, expected));

    const h3 = this.hosts[2];
    const key3 = this.leaseKey(this.envs[2]);
    this.etcdctl(['get', key3], T.s3.whyGet(h3.name));
    ui.note(T.s3.v2Get);
    const json = this.etcdctl(['get', key3, '-w', 'json'], '', false);
    const leaseId = /"lease":(\d+)/.exec(json)?.[1]; // beyond 2^53: read it as text
    if (leaseId) {
      this.etcdctl(['lease', 'timetolive', BigInt(leaseId).toString(16)], T.s3.whyTtl);
    }
    ui.para(T.s3.v2Intro);
    ui.line();
    ui.table(T.s3.v2Header, [
      [`etcdctl set KEY VALUE`, `etcdctl put KEY VALUE`],
      [`etcdctl get KEY`, `etcdctl get KEY`],
      [`etcdctl ls ${ETCD_PREFIX}/subnets`, `etcdctl get ${ETCD_PREFIX}/subnets --prefix --keys-only`],
      [`etcdctl rm KEY`, `etcdctl del KEY`],
      [`etcdctl watch --recursive DIR`, `etcdctl watch --prefix DIR`],
      [`etcdctl cluster-health`, `etcdctl endpoint health`],
      [`curl .../v2/keys/...`, T.s3.v2Curl],
    ]);
  }

  // ---- 4. each host's devices and routes ----------------------------------

  private stepHostState(): void {
    const { ui, T } = this;
    ui.heading(T.s4.title);
    const [h1, h2, h3] = this.hosts;
    const p1 = this.placeOf(h1);
    ui.sub(T.s4.h1Title);
    this.show(p1, ['cat', h1.subnetFile], T.s4.whySubnetEnv(UNDERLAY_MTU, this.envs[0].mtu));
    this.show(p1, ['ip', '-4', 'addr', 'show', 'flannel0'], T.s4.whyFlannel0);
    this.show(p1, ['ip', '-d', 'link', 'show', 'flannel0'], T.s4.whyTun);
    this.show(p1, ['ip', '-4', 'addr', 'show', 'cni0'], T.s4.whyCni0);
    this.show(p1, ['ip', 'route'], T.s4.whyRoute(this.subnetOf(this.envs[0])));
    if (tryRun(['sh', '-c', 'command -v route']).status === 0) {
      this.show(p1, ['route', '-n'], T.s4.whyRouteN);
    } else {
      ui.note(T.s4.noRouteN);
    }
    for (const [i, h] of [h2, h3].entries()) {
      ui.sub(T.s4.otherTitle(h.name));
      this.show(this.placeOf(h), ['ip', '-4', '-br', 'addr'], T.s4.whyBrief(h.name));
      this.show(this.placeOf(h), ['ip', 'route'], T.s4.whyOtherRoute(this.subnetOf(this.envs[i + 1])));
    }
  }

  // ---- 5. a ping, hop by hop ----------------------------------------------

  private async stepPing(): Promise<void> {
    const { ui, T, lab } = this;
    const [h1, , h3] = this.hosts;
    const src = this.pods.get(h1)![0];
    const dst = this.pods.get(h3)![1];
    const srcP = this.placeOf(src);
    const dstP = this.placeOf(dst);
    const p1 = this.placeOf(h1);
    const p3 = this.placeOf(h3);
    ui.heading(T.s5.title(srcP.name, src.ip, dstP.name, dst.ip));
    ui.para(T.s5.intro(h1.name, h3.name));

    // The observers: a trace on each daemon (its admin socket, as `flannel-ts
    // trace` does), tcpdump on h1's underlay NIC; shown as the commands a user would type.
    const traceArgs = (h: Host) => ['trace', `--admin-socket=${h.adminSocket}`, '--host', dst.ip, '--proto', 'icmp', '--count', '1', '--json'];
    ui.cmd('h1', `${shjoin(['flannel-ts', ...traceArgs(h1)])} &`, T.s5.whyTrace(h1.name));
    ui.cmd('h3', `${shjoin(['flannel-ts', ...traceArgs(h3)])} &`, T.s5.whyTrace(h3.name));
    const pcapFile = path.join(lab.dir, 'h1-eth0.pcap');
    ui.cmd('h1', `${shjoin(tcpdumpArgv(pcapFile, UDP_PORT, h3.ip))} &`, T.s5.whyTcpdump(UDP_PORT, h3.ip));

    const p = ui.progress(T.s5.attaching);
    const seen = await observePing(lab, { src, dst, txSocket: h1.adminSocket, rxSocket: h3.adminSocket, capture: { host: h1, port: UDP_PORT, dstIp: h3.ip }, count: 3, tag: 'h1-eth0' });
    p.done(T.s5.attached);
    ui.cmd(srcP.name, `ping -c 3 ${dst.ip}`, T.s5.whyPing(dstP.name), seen.ping.output);
    if (seen.ping.received !== 3) throw new Error(T.err.pingLost(seen.ping.output));
    if (!seen.tx) throw new Error(T.err.noTrace(h1.adminSocket, ''));
    if (!seen.rx) throw new Error(T.err.noTrace(h3.adminSocket, ''));
    const tx = seen.tx;
    const rx = seen.rx;
    const ping = { stdout: seen.ping.output };

    ui.para(T.s5.follow);

    // 5.1 the pod
    ui.sub(T.s5.hop1);
    this.show(srcP, ['ip', '-4', 'addr', 'show', 'eth0'], T.s5.whyPodAddr(srcP.name));
    this.show(srcP, ['ip', 'route'], T.s5.whyPodRoutes);
    this.show(srcP, ['ip', 'route', 'get', dst.ip], T.s5.whyPodRouteGet(dst.ip, this.envs[0].subnet.split('/')[0]));

    // 5.2 cni0
    ui.sub(T.s5.hop2);
    this.show(p1, ['bridge', 'link', 'show'], T.s5.whyBridgeLink);
    ui.para(T.s5.bridgeNote);

    // 5.3 h1's routing decision
    ui.sub(T.s5.hop3(h1.name));
    this.show(p1, ['ip', 'route', 'get', dst.ip, 'from', src.ip, 'iif', 'cni0'], T.s5.whyRouteGetH1(NETWORK_CONFIG.Network));

    // 5.4 flannel0 → flanneld: the lease lookup
    ui.sub(T.s5.hop4(h1.name));
    ui.para(T.s5.tunExplained);
    const leasesArgs = ['trace', `--admin-socket=${h1.adminSocket}`, '--leases'];
    const leases = run(['ip', 'netns', 'exec', h1.ns, process.execPath, FLANNEL_TS, ...leasesArgs]);
    ui.cmd('h1', shjoin(['flannel-ts', ...leasesArgs]), T.s5.whyLeases, leases);
    ui.comment(T.s5.traceOutput(h1.name));
    ui.output(formatJson(tx.line));
    ui.para(T.s5.txReading(tx.ev, h1.name), 2);

    // 5.5 the datagram on the underlay
    ui.sub(T.s5.hop5(h1.name));
    ui.comment(T.s5.tcpdumpSaid);
    ui.output(seen.tcpdumpLog);
    if (!seen.frame || seen.linkType === undefined) throw new Error(T.err.emptyPcap(seen.pcapFile));
    const d = decodeFlannelDatagram(seen.frame, seen.linkType);
    ui.para(T.s5.pcapIntro(seen.pcapFile, seen.frame.length, seen.linkType), 2);
    const names = this.names();
    for (const t of headerTables(d, T, names)) {
      ui.line();
      ui.line(`  ${ui.style('bold', t.title)}`);
      ui.table(T.pkt.fieldHeader, t.rows, 4);
    }
    ui.line();
    ui.line(`  ${ui.style('bold', T.s5.hexTitle)}`);
    ui.output(hexdump(d.frame, regions(d, T), (s, t) => ui.style(s, t), ui.opts.color ? '┌' : '--').join('\n'));
    ui.para(T.s5.nothingAdded(d.udp.length, d.inner.totalLength), 2);
    if (d.udp.dstPort !== UDP_PORT || d.inner.dst !== dst.ip || d.inner.src !== src.ip) throw new Error(T.err.wrongCapture(d.inner.src, d.inner.dst, d.udp.dstPort));

    // 5.6 the far daemon
    ui.sub(T.s5.hop6(h3.name));
    ui.comment(T.s5.traceOutput(h3.name));
    ui.output(formatJson(rx.line));
    ui.para(T.s5.rxReading(rx.ev, h3.name), 2);

    // 5.7 h3's routing decision
    ui.sub(T.s5.hop7(h3.name));
    this.show(p3, ['ip', 'route', 'get', dst.ip, 'from', src.ip, 'iif', 'flannel0'], T.s5.whyRouteGetH3(h3.name, dst.ip, this.subnetOf(this.envs[2])));

    // 5.8 the destination pod
    ui.sub(T.s5.hop8(dstP.name));
    this.show(dstP, ['ip', '-4', 'addr', 'show', 'eth0'], T.s5.whyDstAddr(dstP.name));
    const replyTtl = Number(/ttl=(\d+)/.exec(ping.stdout)?.[1] ?? 0);
    ui.para(T.s5.reply(srcP.name, dstP.name, replyTtl));

    ui.sub(T.s5.summaryTitle);
    ui.para(T.s5.summary(srcP.name, dstP.name, UDP_PORT), 2);
  }

  /** Who an address (IPv4 or MAC) in a captured frame belongs to: hosts' eth0 and flannel.1, pods. */
  names(): { who(addr: string): string | undefined } {
    const m = new Map<string, string>();
    for (const h of this.hosts) {
      m.set(h.ip, `${h.name} eth0`);
      for (const dev of ['eth0', 'flannel.1']) {
        const r = h.tryExec(['ip', '-j', 'link', 'show', dev]);
        if (r.status === 0) m.set(JSON.parse(r.stdout)[0].address, `${h.name} ${dev}`);
      }
      for (const pod of this.pods.get(h) ?? []) m.set(pod.ip, this.placeOf(pod).name);
    }
    for (const pod of this.vxPods) m.set(pod.ip, this.placeOf(pod).name);
    return { who: (a) => m.get(a) };
  }

  // ---- 6. udp against kernel vxlan ----------------------------------------

  private async stepCompare(): Promise<void> {
    const { ui, T } = this;
    const [h1, , h3] = this.hosts;
    ui.heading(T.s6.title);
    await this.setupVxlanNetwork();
    const [vx1, vx3] = this.vxPods;
    for (const [i, pod] of [vx1, vx3].entries()) {
      this.extraPlaces.push({ name: this.placeOf(pod).name, ns: pod.ns, what: T.keep.vxPod, ip: pod.ip, host: [h1, h3][i].name });
    }
    const p1 = this.placeOf(h1);
    this.show(p1, ['ip', '-d', 'link', 'show', 'flannel.1'], T.s6.whyVxlanLink);
    this.show(p1, ['ip', 'route', 'show', 'dev', 'flannel.1'], T.s6.whyVxlanRoute);
    this.show(p1, ['ip', 'neigh', 'show', 'dev', 'flannel.1'], T.s6.whyNeigh);
    this.show(p1, ['bridge', 'fdb', 'show', 'dev', 'flannel.1'], T.s6.whyFdb(h3.ip));
    // The daemons program each other's entries on the lease watch: wait for the path.
    await waitFor(T.err.vxlanPath, () => vx1.ping(vx3.ip, 1, 0.2, 1).received === 1, 15_000, 100);

    const src = this.pods.get(h1)![0];
    const dst = this.pods.get(h3)![1];
    ui.sub(T.s6.rttTitle);
    const udp = await this.measureRtt(src, dst, 'udp');
    const vxm = await this.measureRtt(vx1, vx3, 'vxlan');
    ui.sub(T.s6.tputTitle);
    await this.measureTput(src, dst, udp, 'udp');
    await this.measureTput(vx1, vx3, vxm, 'vxlan');

    ui.line();
    const ms = (x?: number) => (x === undefined ? '?' : `${x.toFixed(3)} ms`);
    const bw = (x?: number) => (x === undefined ? '?' : x >= 1000 ? `${(x / 1000).toFixed(2)} Gbit/s` : `${x.toFixed(0)} Mbit/s`);
    ui.table(T.s6.tableHeader, [
      ['udp (flannel-ts)', T.s6.udpPath, String(this.envs[0].mtu), ms(udp.rttAvgMs), bw(udp.mbps)],
      ['vxlan (flannel-ts)', T.s6.vxlanPath, String(this.vxMtu), ms(vxm.rttAvgMs), bw(vxm.mbps)],
    ]);
    ui.para(T.s6.conclusion(udp.rttAvgMs, vxm.rttAvgMs, udp.mbps, vxm.mbps));
  }

  /**
   * flannel-ts's own vxlan backend: a second network under its own prefix,
   * a second flanneld on h1 and h3 (the demo requires it: a vxlan that does
   * not come up is an error, not something built around).
   */
  async setupVxlanNetwork(): Promise<void> {
    const { ui, T, lab } = this;
    const [h1, , h3] = this.hosts;
    ui.para(T.s6.intro(VXLAN_CONFIG.Network));
    const config = JSON.stringify(VXLAN_CONFIG);
    this.etcdctl(['put', `${VXLAN_PREFIX}/config`, config], T.s6.whyVxConfig);
    // BackendNode gives each its own subnet file, log and admin socket (admin-vx.sock).
    const nodes = [h1, h3].map((h) => new BackendNode(h, 'vxlan', this.etcd.endpoint, VXLAN_PREFIX));
    for (const n of nodes) n.start();
    const argv = lab.processes().find((x) => x.ns === h1.ns && x.argv.includes(`--etcd-prefix=${VXLAN_PREFIX}`))?.argv ?? [];
    ui.cmd('h1', `${shjoin(['flanneld', ...argv.slice(argv.findIndex((a) => a.endsWith('bin/flanneld')) + 1)])} &`, T.s6.whyVxFlanneld);
    const p = ui.progress(T.s6.waitingVx);
    try {
      await Promise.all(nodes.map((n) => n.waitReady(20_000)));
    } catch (e) {
      p.clear();
      throw new FlannelError('FLANNEL_ERR_DEMO_VXLAN', `${T.err.vxlanNotReady}\n${(e as Error).message}`);
    }
    p.done(T.s6.readyVx(p.elapsed));
    this.vxNodes = nodes;
    this.vxPods = nodes.map((n) => {
      n.setupBridge();
      return n.addPod();
    });
    this.vxMtu = nodes[0].env!.mtu;
    this.etcdctl(['get', `${VXLAN_PREFIX}/subnets`, '--prefix'], T.s6.whyVxLeases);
  }

  async measureRtt(a: Pod, b: Pod, label: string): Promise<Measured> {
    const argv = ['ping', '-n', '-q', '-c', '20', '-i', '0.05', b.ip];
    const p = this.ui.progress(this.T.s6.measuring(label));
    const r = await execStatus(['ip', 'netns', 'exec', a.ns, ...argv], { timeoutMs: 20_000 });
    p.done();
    this.ui.cmd(this.placeOf(a).name, shjoin(argv.filter((x) => x !== '-n')), this.T.s6.whyPing(label), r.stdout + r.stderr);
    const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
    return { rttAvgMs: m ? Number(m[1]) : undefined, rttOutput: r.stdout, iperfOutput: '' };
  }

  async measureTput(a: Pod, b: Pod, into: Measured, label: string): Promise<void> {
    const { ui, T, lab } = this;
    const server = lab.spawnIn(b.ns, ['iperf3', '-s', '-1'], path.join(lab.dir, `iperf3-${this.placeOf(b).name}.log`));
    await waitFor('iperf3 server', () => tryRun(['ip', 'netns', 'exec', b.ns, 'ss', '-Hltn', 'sport', '=', ':5201']).stdout.includes('5201'), 5000, 25);
    ui.cmd(this.placeOf(b).name, 'iperf3 -s -1 &', T.s6.whyIperfServer);
    const argv = ['iperf3', '-c', b.ip, '-t', '2', '-f', 'm'];
    const p = ui.progress(T.s6.measuring(label));
    const r = await execStatus(['ip', 'netns', 'exec', a.ns, ...argv], { timeoutMs: 30_000 });
    p.done();
    await exitWithin(server, 5000);
    const lines = (r.stdout + r.stderr).trimEnd().split('\n');
    const summary = lines.slice(
      Math.max(
        0,
        lines.findIndex((l) => /- - - -/.test(l)),
      ),
    );
    ui.cmd(this.placeOf(a).name, shjoin(argv), T.s6.whyIperf(label), summary.join('\n'));
    const m = /([\d.]+)\s+([KMG]?)bits\/sec.*receiver/.exec(r.stdout);
    if (m) into.mbps = Number(m[1]) * ({ K: 1e-3, M: 1, G: 1e3 } as Record<string, number>)[m[2] || 'M'];
    into.iperfOutput = r.stdout;
  }

  /** What `flannel-ts shell` and `--keep`'s summary need. */
  facts(self: string): DemoFacts {
    const places: DemoFacts['places'] = {};
    places.etcd = { ns: this.etcd.ns, what: this.T.keep.etcdWhat, ip: this.etcd.ip };
    this.hosts.forEach((h, i) => {
      places[h.name] = { ns: h.ns, what: this.T.keep.hostWhat, ip: h.ip };
      for (const pod of this.pods.get(h) ?? []) places[this.placeOf(pod).name] = { ns: pod.ns, what: this.T.keep.podWhat, ip: pod.ip, host: this.hosts[i].name };
    });
    for (const x of this.extraPlaces) places[x.name] = { ns: x.ns, what: x.what, ip: x.ip, host: x.host };
    places.sw = { ns: this.lab.switchNs, what: this.T.keep.switchWhat };
    return {
      etcd: { ns: this.etcd.ns, endpoint: this.etcd.endpoint, prefix: ETCD_PREFIX },
      hosts: this.hosts.map((h, i) => ({ name: h.name, ns: h.ns, ip: h.ip, subnet: this.subnetOf(this.envs[i]), adminSocket: h.adminSocket, subnetFile: h.subnetFile })),
      places,
      self,
    };
  }
}

/** One top-level key per line, so a person can read the real JSON line (hex shortened, and said so). */
export function formatJson(line: string): string {
  const o = JSON.parse(line) as Record<string, unknown>;
  const keys = Object.keys(o);
  return keys
    .map((k, i) => {
      let v = JSON.stringify(o[k]);
      if (k === 'hex' && typeof o[k] === 'string' && (o[k] as string).length > 40) v = `"${(o[k] as string).slice(0, 40)}…" (${(o[k] as string).length / 2} bytes)`;
      return `${i === 0 ? '{' : ' '}"${k}": ${v}${i === keys.length - 1 ? '}' : ','}`;
    })
    .join('\n');
}
