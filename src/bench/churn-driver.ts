// Lease churn for the bench's "control plane busy" phase: one etcd client puts
// `count` fake peers' leases and deletes them again, in a loop, as fast as it
// can, until `durationMs` is over. Every daemon watching the prefix then
// applies 2 x count changes per loop (the udp data-plane thread's lease
// table, the kernel backends' routes and FDB entries). Runs inside a lab
// namespace (etcd is reachable only there). Prints {"loops": n, "changes": m}.
//   node churn-driver.js '<ChurnArgs as JSON>'

import { Etcd3 } from 'etcd3';
import { Ip4Net, parseIp4 } from '../routes/ip4';
import { formatLeaseValue } from '../subnet/lease-value';
import { subnetKey } from '../subnet/subnets';

export interface ChurnArgs {
  endpoint: string;
  prefix: string;
  backend: 'udp' | 'vxlan' | 'host-gw';
  /** The backend's Network, e.g. 198.19.0.0/18, and its SubnetLen: fake subnets are of that length. */
  network: string;
  subnetLen: number;
  /** Subnets in use by real hosts (never touched), as "a.b.c.d/len" (their network address). */
  skip: string[];
  count: number;
  durationMs: number;
  /** Fake peers' public IPs start here (nothing answers: no packet is sent to them). */
  publicBase: string;
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2]) as ChurnArgs;
  const net = Ip4Net.parse(a.network);
  // Real hosts' subnets as subnet.env writes them (first address/len): compare network addresses.
  const mask = (len: number) => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);
  const skip = new Set(
    a.skip.map((s) => {
      const [ip, len] = s.split('/');
      return (parseIp4(ip) & mask(Number(len))) >>> 0;
    }),
  );
  const fakes: { key: string; value: string }[] = [];
  const size = 2 ** (32 - a.subnetLen);
  for (let i = 1; fakes.length < a.count && i < 2 ** (a.subnetLen - net.prefixLen); i++) {
    const subnet = new Ip4Net((net.ip + i * size) >>> 0, a.subnetLen);
    if (skip.has(subnet.ip)) continue;
    const n = fakes.length;
    const mac = `0e:00:00:00:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
    fakes.push({
      key: `${a.prefix}/subnets/${subnetKey(subnet)}`,
      value: formatLeaseValue({
        publicIp: (parseIp4(a.publicBase) + n + 1) >>> 0,
        backendType: a.backend,
        ...(a.backend === 'vxlan' ? { backendData: { VNI: 1, VtepMAC: mac } } : {}),
      }),
    });
  }
  const client = new Etcd3({ hosts: a.endpoint });
  const end = Date.now() + a.durationMs;
  let loops = 0;
  let changes = 0;
  try {
    while (Date.now() < end) {
      for (const f of fakes) await client.put(f.key).value(f.value).exec();
      for (const f of fakes) await client.delete().key(f.key).exec();
      changes += 2 * fakes.length;
      loops++;
    }
  } finally {
    // Leave no fake behind, whatever happened.
    await client
      .delete()
      .prefix(`${a.prefix}/subnets/`)
      .exec()
      .catch(() => undefined);
    client.close();
  }
  console.log(JSON.stringify({ loops, changes }));
}

main().catch((e) => {
  console.error(String(e instanceof Error ? e.stack : e));
  process.exit(1);
});
