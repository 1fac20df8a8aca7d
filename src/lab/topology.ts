// The kernel reference backends, set up by hand exactly as flannel would on
// two lab hosts, beside flannel-ts's udp backend on the same hosts: so every
// figure can be compared with a reference measured on the same topology.
//
// Each backend gets its own bridge and subnets per host, so all three can be
// up at once and measured alternately:
//   udp      Network 198.19.0.0/17 (leased by flanneld), bridge cni0
//   vxlan    198.19.200+i.0/24, bridge brvx, device flannel.1 (VNI 1, port 8472)
//   host-gw  198.19.210+i.0/24, bridge brgw, routes via the peer's underlay IP

import { Host, Pod, SubnetEnv } from './host';
import { run } from '../util/sh';

/** A bridge with the subnet's first address and one pod on it (like Host.setupBridge + addPod). */
export function bridgeWithPod(host: Host, bridge: string, env: SubnetEnv, podName: string): Pod {
  host.exec(['ip', 'link', 'add', bridge, 'type', 'bridge']);
  host.exec(['ip', 'addr', 'add', env.subnet, 'dev', bridge]);
  host.exec(['ip', 'link', 'set', bridge, 'mtu', String(env.mtu), 'up']);
  const ns = host.lab.addNamespace(`${host.name}-${podName}`);
  const [first, len] = env.subnet.split('/');
  const ip = first.replace(/\.1$/, '.2');
  const hostSide = `v${podName}`;
  run(['ip', 'link', 'add', 'eth0', 'netns', ns, 'mtu', String(env.mtu), 'type', 'veth', 'peer', 'name', hostSide, 'netns', host.ns, 'mtu', String(env.mtu)]);
  host.exec(['ip', 'link', 'set', hostSide, 'master', bridge, 'up']);
  run(['ip', '-n', ns, 'addr', 'add', `${ip}/${len}`, 'dev', 'eth0']);
  run(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
  run(['ip', '-n', ns, 'route', 'add', 'default', 'via', first]);
  return new Pod(host, ns, ip);
}

function mac(host: Host, dev: string): string {
  return JSON.parse(host.exec(['ip', '-j', 'link', 'show', dev]))[0].address as string;
}

/** flannel's vxlan backend by hand: flannel.1, and per peer a route, a neighbour and an fdb entry. */
export function setupVxlan(hosts: Host[], underlayMtu: number): Pod[] {
  const subnets = hosts.map((_, i) => `198.19.${200 + i}.0`);
  hosts.forEach((h, i) => {
    h.exec(['ip', 'link', 'add', 'flannel.1', 'type', 'vxlan', 'id', '1', 'local', h.ip, 'dev', 'eth0', 'dstport', '8472', 'nolearning']);
    h.exec(['ip', 'link', 'set', 'flannel.1', 'mtu', String(underlayMtu - 50), 'up']);
    h.exec(['ip', 'addr', 'add', `${subnets[i]}/32`, 'dev', 'flannel.1']);
  });
  const macs = hosts.map((h) => mac(h, 'flannel.1'));
  hosts.forEach((h, i) => {
    hosts.forEach((peer, j) => {
      if (i === j) return;
      h.exec(['ip', 'route', 'add', `${subnets[j]}/24`, 'via', subnets[j], 'dev', 'flannel.1', 'onlink']);
      h.exec(['ip', 'neigh', 'add', subnets[j], 'lladdr', macs[j], 'dev', 'flannel.1', 'nud', 'permanent']);
      h.exec(['bridge', 'fdb', 'append', macs[j], 'dev', 'flannel.1', 'dst', peer.ip]);
    });
  });
  return hosts.map((h, i) => bridgeWithPod(h, 'brvx', { network: '', subnet: subnets[i].replace(/\.0$/, '.1/24'), mtu: underlayMtu - 50, ipMasq: false }, 'vx'));
}

/** flannel's host-gw backend by hand: a route per peer subnet via the peer's underlay address. */
export function setupHostGw(hosts: Host[], underlayMtu: number): Pod[] {
  const subnets = hosts.map((_, i) => `198.19.${210 + i}.0`);
  hosts.forEach((h, i) => {
    hosts.forEach((peer, j) => {
      if (i !== j) h.exec(['ip', 'route', 'add', `${subnets[j]}/24`, 'via', peer.ip, 'dev', 'eth0']);
    });
  });
  return hosts.map((h, i) => bridgeWithPod(h, 'brgw', { network: '', subnet: subnets[i].replace(/\.0$/, '.1/24'), mtu: underlayMtu, ipMasq: false }, 'gw'));
}
