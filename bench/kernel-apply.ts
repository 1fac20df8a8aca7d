// How long a kernel backend takes to apply one LeaseDiff of many peers: the
// backend alone (no etcd, no daemon), inside a lab host's namespace, fed
// `count` peers added together, then all of them changed (new VtepMACs for
// vxlan, new public IPs for host-gw), then all removed. Prints one JSON line:
//   {"backend":"vxlan","peers":1000,"addMs":…,"changeMs":…,"removeMs":…,
//    "routesAfterAdd":1000,"routesAfterRemove":0,"batches":…}
//
//   ip netns exec <host ns> node kernel-apply.js <vxlan|host-gw> <count>
// The host's eth0 must hold an address in 198.18.0.0/16; fake peers' public
// IPs are 198.18.64.0 + i (on that link; nothing is sent to them).

import { HostGwBackend } from '../src/backend/hostgw/hostgw-backend';
import { VxlanBackend } from '../src/backend/vxlan/vxlan-backend';
import { findExternalInterface } from '../src/daemon/iface';
import { createLogger } from '../src/util/log';
import { Ip4Net, parseIp4 } from '../src/routes/ip4';
import { type LeaseDiff, LeaseTable, type Peer } from '../src/routes/lease-table';
import { parseNetworkConfig } from '../src/subnet/config';
import { run } from '../src/lab/sh';

async function main(): Promise<void> {
  const [backend, countS] = process.argv.slice(2);
  const count = Number(countS);
  if (backend !== 'vxlan' && backend !== 'host-gw') throw new Error('usage: kernel-apply.js <vxlan|host-gw> <count>');
  const log = createLogger(0, 'kernel-apply');
  const ext = await findExternalInterface({ iface: ['eth0'], ifaceRegex: [] });
  const { config } = parseNetworkConfig(JSON.stringify({ Network: '198.19.0.0/16', SubnetLen: 30, Backend: { Type: backend } }));
  const b = backend === 'vxlan' ? new VxlanBackend({ ext, log }) : new HostGwBackend({ ext, log });
  const own = { subnet: Ip4Net.parse('198.19.0.4/30'), publicIp: parseIp4(ext.publicIp), backendType: backend };
  const data = await b.prepare(config);
  const table = new LeaseTable(config.port);
  await b.start({ ...own, ...(data !== undefined ? { backendData: data } : {}) }, config, table);
  const base = parseIp4('198.18.64.0');
  const peers = (gen: number): Peer[] =>
    Array.from({ length: count }, (_, i) => ({
      subnet: new Ip4Net(parseIp4('198.19.0.8') + 4 * i, 30),
      publicIp: (base + (gen === 0 ? i : count + i)) >>> 0,
      port: config.port,
      index: i,
      backendData:
        backend === 'vxlan'
          ? { VNI: 1, VtepMAC: `0a:58:${gen.toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}:01` }
          : undefined,
    }));
  const kernel = b.kernel!;
  const routes = () =>
    run(['ip', '-4', 'route', 'show', 'root', '198.19.0.0/16'])
      .split('\n')
      .filter((l) => l.includes('via')).length;
  const apply = async (diff: LeaseDiff): Promise<number> => {
    const t0 = process.hrtime.bigint();
    b.leasesChanged(diff);
    await kernel.idle();
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const addMs = await apply({ added: peers(0), changed: [], removed: [] });
  const routesAfterAdd = routes();
  const changeMs = await apply({ added: [], changed: peers(1), removed: [] });
  const removeMs = await apply({ added: [], changed: [], removed: peers(1) });
  const routesAfterRemove = routes();
  await b.stop();
  process.stdout.write(JSON.stringify({ backend, peers: count, addMs, changeMs, removeMs, routesAfterAdd, routesAfterRemove, batches: kernel.totals.batches }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`kernel-apply: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
