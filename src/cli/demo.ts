// `flannel-ts demo`: a live three-host cluster on this machine, then pods
// pinging across hosts through flanneld's udp backend. Everything lives in
// namespaces this command creates and removes (also on Ctrl-C or an error).

import { Lab } from '../lab/lab';
import { Etcd } from '../lab/etcd';
import { Host, Pod } from '../lab/host';

const NETWORK_CONFIG = { Network: '198.19.0.0/16', SubnetLen: 24, Backend: { Type: 'udp' } };

function heading(s: string, plain: boolean): void {
  console.log(plain ? `\n== ${s}` : `\n\x1b[1;36m== ${s}\x1b[0m`);
}

function show(cmd: string, out: string): void {
  console.log(`$ ${cmd}`);
  process.stdout.write(out.endsWith('\n') || out === '' ? out : `${out}\n`);
}

export async function main(argv: string[]): Promise<void> {
  const plain = argv.includes('--plain') || !process.stdout.isTTY;
  for (const a of argv) if (a !== '--plain') throw new Error(`demo: unknown option ${a} (options: --plain)`);
  const lab = new Lab();
  const onSignal = () => {
    lab.destroySync();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    heading('1. etcd, the cluster store (Debian etcd-server, in its own namespace)', plain);
    const etcd = new Etcd(lab);
    await etcd.start();
    const prefix = '/coreos.com/network';
    etcd.put(`${prefix}/config`, JSON.stringify(NETWORK_CONFIG));
    show(`etcdctl put ${prefix}/config '${JSON.stringify(NETWORK_CONFIG)}'   # v2: etcdctl set`, 'OK\n');

    heading('2. three hosts on one underlay switch, flanneld on each', plain);
    const hosts = [1, 2, 3].map((i) => new Host(lab, `h${i}`, `198.18.0.${i}`));
    for (const h of hosts) h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`]);
    const envs = await Promise.all(hosts.map((h) => h.waitReady()));
    const pods = new Map<Host, Pod[]>();
    hosts.forEach((h, i) => {
      h.setupBridge(envs[i]);
      pods.set(h, [h.addPod(envs[i]), h.addPod(envs[i])]);
      console.log(`${h.name}  underlay ${h.ip}  subnet ${envs[i].subnet}  pods ${pods.get(h)!.map((p) => p.ip).join(', ')}`);
    });

    heading('3. the leases flanneld wrote to etcd', plain);
    const leases = etcd.list(`${prefix}/subnets/`);
    show(`etcdctl get ${prefix}/subnets/ --prefix   # v2: etcdctl ls ${prefix}/subnets`, [...leases].map(([k, v]) => `${k}\n${v}`).join('\n'));

    heading('4. host h1: its subnet.env, flannel0 and routes', plain);
    show('cat subnet.env', require('node:fs').readFileSync(hosts[0].subnetFile, 'utf8'));
    show('ip -4 addr show flannel0', hosts[0].exec(['ip', '-4', 'addr', 'show', 'flannel0']));
    show('ip route', hosts[0].exec(['ip', 'route']));

    heading('5. a pod on h1 pings a pod on h3, through flannel0 and UDP port 8285', plain);
    const from = pods.get(hosts[0])![0];
    const to = pods.get(hosts[2])![1];
    const r = from.ping(to.ip, 3, 0.2);
    show(`ping -c 3 ${to.ip}   (from ${from.ip})`, r.output);
    if (r.received !== 3) throw new Error(`the ping across hosts lost packets:\n${r.output}`);

    heading('done: the cluster is removed now', plain);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await lab.destroy();
  }
}
