// The cluster as it is now, read from the real sources each time the page
// asks: the leases from etcd (etcdctl on h1, over the underlay), each host's
// devices from `ip -j addr` in its namespace, flannel.1's fdb and neighbour
// entries, whether each flanneld runs. Nothing is remembered from the build:
// a lease deleted in etcd disappears from the next answer.

import type { DemoRun } from '../steps';
import { ETCD_PREFIX, VXLAN_PREFIX } from '../steps';
import { execStatus } from '../../util/exec';
import type { DeviceView, HostView, LeaseView, PodView, StateView } from './api';

/** A command in a namespace, without blocking the server; its stdout, or '' when it failed. */
export async function inNs(ns: string, argv: string[], timeoutMs = 5000): Promise<{ ok: boolean; out: string }> {
  const r = await execStatus(['ip', 'netns', 'exec', ns, ...argv], { timeoutMs });
  return { ok: r.status === 0, out: r.status === 0 ? r.stdout : r.stdout + r.stderr };
}

export class LiveState {
  constructor(readonly demo: DemoRun) {}

  get etcdEnv(): string[] {
    return ['env', 'ETCDCTL_API=3', `ETCDCTL_ENDPOINTS=${this.demo.etcd.endpoint}`, 'ETCDCTL_DIAL_TIMEOUT=2s', 'ETCDCTL_COMMAND_TIMEOUT=3s'];
  }

  /** etcdctl on h1 (where an operator would type it). */
  etcdctl(args: string[]): Promise<{ ok: boolean; out: string }> {
    return inNs(this.demo.hosts[0].ns, [...this.etcdEnv, 'etcdctl', ...args]);
  }

  async leases(prefix: string): Promise<{ up: boolean; config: string; leases: LeaseView[] }> {
    const r = await this.etcdctl(['get', prefix, '--prefix', '-w', 'json']);
    if (!r.ok) return { up: false, config: '', leases: [] };
    // Lease ids go beyond 2^53: read them as text.
    const j = JSON.parse(r.out.replace(/"lease":(\d+)/g, '"lease":"$1"')) as { kvs?: { key: string; value: string; lease?: string }[] };
    let config = '';
    const leases: LeaseView[] = [];
    for (const kv of j.kvs ?? []) {
      const key = Buffer.from(kv.key, 'base64').toString();
      const value = Buffer.from(kv.value, 'base64').toString();
      if (key === `${prefix}/config`) config = value;
      const m = /\/subnets\/(\d+\.\d+\.\d+\.\d+)-(\d+)$/.exec(key);
      if (!m) continue;
      let v: { PublicIP?: string; BackendType?: string; BackendData?: { VtepMAC?: string } } = {};
      try {
        v = JSON.parse(value);
      } catch {
        /* shown with what it has */
      }
      leases.push({
        key,
        subnet: `${m[1]}/${m[2]}`,
        publicIp: v.PublicIP ?? '?',
        backendType: v.BackendType ?? '?',
        vtepMac: v.BackendData?.VtepMAC,
        leaseId: kv.lease ? BigInt(kv.lease).toString(16) : undefined,
      });
    }
    return { up: true, config, leases };
  }

  private async devices(ns: string): Promise<Map<string, DeviceView>> {
    const m = new Map<string, DeviceView>();
    const r = await inNs(ns, ['ip', '-j', 'addr', 'show']);
    if (!r.ok) return m;
    for (const l of JSON.parse(r.out) as { ifname: string; address?: string; flags?: string[]; mtu?: number; addr_info?: { family: string; local: string; prefixlen: number }[] }[]) {
      const a = l.addr_info?.find((x) => x.family === 'inet');
      m.set(l.ifname, { name: l.ifname, addr: a ? `${a.local}/${a.prefixlen}` : undefined, mac: l.address, up: (l.flags ?? []).includes('UP'), mtu: l.mtu });
    }
    return m;
  }

  private pods(hostIndex: number): PodView[] {
    const d = this.demo;
    const h = d.hosts[hostIndex];
    const out: PodView[] = (d.pods.get(h) ?? []).map((p) => ({ name: d.placeOf(p).name, ip: p.ip, backend: 'udp' }));
    for (const p of d.vxPods) if (p.host === h) out.push({ name: d.placeOf(p).name, ip: p.ip, backend: 'vxlan' });
    return out;
  }

  async host(i: number): Promise<HostView> {
    const d = this.demo;
    const h = d.hosts[i];
    const [dev, fdb, neigh] = await Promise.all([this.devices(h.ns), inNs(h.ns, ['bridge', 'fdb', 'show', 'dev', 'flannel.1']), inNs(h.ns, ['ip', 'neigh', 'show', 'dev', 'flannel.1'])]);
    const vxNode = d.vxNodes.find((n) => n.host === h);
    const view: HostView = {
      name: h.name,
      ip: h.ip,
      eth0: dev.get('eth0'),
      flannel0: dev.get('flannel0'),
      cni0: dev.get('cni0'),
      flanneld: { running: h.daemon?.running ?? false, pid: h.daemon?.running ? h.daemon.pid : undefined, adminSocket: h.adminSocket },
      pods: this.pods(i),
    };
    if (vxNode) {
      const lines = (s: { ok: boolean; out: string }) =>
        s.ok
          ? s.out
              .split('\n')
              .map((x) => x.trim())
              .filter(Boolean)
          : [];
      view.vx = {
        flannel1: dev.get('flannel.1'),
        brvx: dev.get(vxNode.bridge),
        flanneld: { running: vxNode.daemon?.running ?? false, pid: vxNode.daemon?.running ? vxNode.daemon.pid : undefined, adminSocket: vxNode.adminSocket },
        fdb: lines(fdb),
        neigh: lines(neigh),
      };
    }
    return view;
  }

  async snapshot(): Promise<StateView> {
    const d = this.demo;
    const [udp, vx, ...hosts] = await Promise.all([this.leases(ETCD_PREFIX), this.leases(VXLAN_PREFIX), ...d.hosts.map((_, i) => this.host(i))]);
    return {
      prefix: d.lab.prefix,
      time: new Date().toISOString(),
      etcd: {
        ip: d.etcd.ip,
        endpoint: d.etcd.endpoint,
        up: udp.up,
        configKey: `${ETCD_PREFIX}/config`,
        config: udp.config,
        leases: udp.leases,
        vxConfigKey: `${VXLAN_PREFIX}/config`,
        vxConfig: vx.config,
        vxLeases: vx.leases,
      },
      hosts,
    };
  }
}
