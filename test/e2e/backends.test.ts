// Every backend through flannel-ts's own flanneld: udp, vxlan and host-gw side
// by side on three lab hosts (one daemon per backend per host, each with its
// own etcd prefix and Network; src/lab/topology.ts), then what is particular
// to each kernel backend: vxlan's VtepMAC in the lease and a peer restarting
// with a new one, leases of other types ignored, DirectRouting; host-gw's
// error for a peer that is not on the same link, and its NAT refusal; and a
// thousand leases applied in a batch, timed.

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { type Lab, REPO_ROOT } from '../../src/lab/lab';
import type { Etcd } from '../../src/lab/etcd';
import { Host } from '../../src/lab/host';
import { BACKENDS, BACKEND_NETWORKS, type BackendName, BackendNode, startBackendCluster, writeBackendConfig } from '../../src/lab/topology';
import { run, waitFor } from '../../src/lab/sh';
import { execStatus } from '../../src/util/exec';
import { FIXTURES, failureAware, fixture, startLab } from '../lib/helpers';

const PREFIX: Record<BackendName, string> = {
  udp: '/flannel-ts-test/backends-udp/network',
  vxlan: '/flannel-ts-test/backends-vxlan/network',
  'host-gw': '/flannel-ts-test/backends-hostgw/network',
};
const POD_MTU: Record<BackendName, number> = { udp: 1472, vxlan: 1450, 'host-gw': 1500 };

const netOf = (node: BackendNode) => node.env!.subnet.replace(/\.1\/(\d+)$/, '.0/$1');
/** A /24 of the backend's Network that no host holds (for a fake peer's lease). */
const freeSubnet = (nodes: BackendNode[], b: BackendName): string => {
  const third = Number(BACKEND_NETWORKS[b].split('.')[2]);
  const used = new Set(nodes.map((n) => netOf(n)));
  for (let x = third + 60; x > third; x--) if (!used.has(`198.19.${x}.0/24`)) return `198.19.${x}.0/24`;
  throw new Error('no free subnet');
};
const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
const macOf = (h: Host, dev: string) => JSON.parse(h.exec(['ip', '-j', 'link', 'show', dev]))[0].address as string;

describe('backends udp, vxlan and host-gw through flanneld, three hosts', () => {
  let lab: Lab;
  let etcd: Etcd;
  const hosts: Host[] = [];
  const clusters = new Map<BackendName, BackendNode[]>();
  const suite = failureAware();
  const check = suite.check;

  before(async () => {
    ({ lab, etcd } = await startLab());
    for (let i = 1; i <= 3; i++) hosts.push(new Host(lab, `h${i}`, `198.18.0.${i}`));
    for (const b of BACKENDS) clusters.set(b, await startBackendCluster(etcd, hosts, b, { prefix: PREFIX[b], podsPerHost: 2 }));
  });

  after(async () => {
    if (suite.failed) {
      for (const nodes of clusters.values()) for (const n of nodes) console.error(`--- ${n.host.name} flanneld (${n.backend}) log tail\n${n.logTail()}`);
    }
    await lab?.destroy();
  });

  for (const b of BACKENDS) {
    check(`${b}: leases, subnet.env and kernel state as flannel writes them`, () => {
      const nodes = clusters.get(b)!;
      for (const n of nodes) {
        assert.equal(n.env!.network, BACKEND_NETWORKS[b]);
        assert.equal(n.env!.mtu, POD_MTU[b]);
        const value = etcd.get(`${PREFIX[b]}/subnets/${netOf(n).replace('/', '-')}`)!;
        if (b === 'vxlan') {
          const mac = macOf(n.host, 'flannel.1');
          assert.equal(value, `{"PublicIP":"${n.host.ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`);
          const link = JSON.parse(n.host.exec(['ip', '-d', '-j', 'link', 'show', 'flannel.1']))[0];
          assert.equal(link.mtu, 1450);
          assert.deepEqual(
            {
              id: link.linkinfo.info_data.id,
              local: link.linkinfo.info_data.local,
              link: link.linkinfo.info_data.link,
              port: link.linkinfo.info_data.port,
              learning: link.linkinfo.info_data.learning,
            },
            { id: 1, local: n.host.ip, link: 'eth0', port: 8472, learning: false },
          );
          assert.match(n.host.exec(['ip', '-o', '-4', 'addr', 'show', 'dev', 'flannel.1']), new RegExp(`inet ${netOf(n).split('/')[0].replace(/\./g, '\\.')}/32 `));
          for (const peer of nodes) {
            if (peer === n) continue;
            const gw = netOf(peer).split('/')[0];
            const pmac = macOf(peer.host, 'flannel.1');
            assert.match(n.host.exec(['ip', 'route', 'show', netOf(peer)]), new RegExp(`via ${gw.replace(/\./g, '\\.')} dev flannel\\.1 onlink`));
            assert.match(n.host.exec(['ip', 'neigh', 'show', gw, 'dev', 'flannel.1']), new RegExp(`lladdr ${pmac} PERMANENT`));
            assert.match(n.host.exec(['bridge', 'fdb', 'show', 'dev', 'flannel.1']), new RegExp(`${pmac} dst ${peer.host.ip.replace(/\./g, '\\.')} self permanent`));
          }
        } else if (b === 'host-gw') {
          assert.equal(value, `{"PublicIP":"${n.host.ip}","PublicIPv6":null,"BackendType":"host-gw"}`);
          for (const peer of nodes) {
            if (peer !== n) assert.match(n.host.exec(['ip', 'route', 'show', netOf(peer)]), new RegExp(`via ${peer.host.ip.replace(/\./g, '\\.')} dev eth0`));
          }
        } else {
          assert.equal(value, `{"PublicIP":"${n.host.ip}","PublicIPv6":null,"BackendType":"udp"}`);
        }
      }
    });

    check(`${b}: pods ping each other across every pair of hosts`, () => {
      const nodes = clusters.get(b)!;
      for (const a of nodes) {
        for (const z of nodes) {
          if (a === z) continue;
          const r = a.pods[0].ping(z.pods[1].ip, 3, 0.05);
          assert.equal(r.received, 3, `${b}: ${a.pods[0].ip} -> ${z.pods[1].ip}\n${r.output}`);
        }
      }
    });

    check(`${b}: a 16 MiB TCP transfer arrives intact`, async () => {
      const nodes = clusters.get(b)!;
      const src = nodes[0].pods[0];
      const dst = nodes[2].pods[0];
      const sink = spawn('ip', ['netns', 'exec', dst.ns, process.execPath, path.join(FIXTURES, 'tcp-check.js'), 'sink', dst.ip, '5001']);
      let out = '';
      sink.stdout.on('data', (d) => (out += d));
      await waitFor('sink listening', () => out.includes('listening'));
      const sent = fixture(src.ns, 'tcp-check', ['send', dst.ip, '5001', String(16 * 1024 * 1024)], 60_000);
      await waitFor('sink result', () => /sha256/.test(out), 30_000);
      const got = /bytes (\d+) sha256 (\w+)/.exec(out)!;
      const want = /bytes (\d+) sha256 (\w+)/.exec(sent)!;
      assert.equal(got[1], String(16 * 1024 * 1024));
      assert.equal(got[2], want[2]);
    });
  }

  check('vxlan: a peer that restarts with a new VtepMAC is reachable again, the old MAC gone', async () => {
    const [n1, n2, n3] = clusters.get('vxlan')!;
    const h2 = n2.host;
    const oldMac = macOf(h2, 'flannel.1');
    assert.equal(await n2.stop('SIGTERM'), 0);
    // As flannel: stopping leaves flannel.1 and the peers' entries in place.
    assert.equal(macOf(h2, 'flannel.1'), oldMac);
    assert.match(h2.exec(['ip', 'route', 'show', 'dev', 'flannel.1']), /onlink/);
    // Deleting the device while stopped: the restart creates one with a new MAC.
    h2.exec(['ip', 'link', 'del', 'flannel.1']);
    n2.start();
    await n2.waitReady();
    const newMac = macOf(h2, 'flannel.1');
    assert.notEqual(newMac, oldMac);
    assert.match(etcd.get(`${PREFIX.vxlan}/subnets/${netOf(n2).replace('/', '-')}`)!, new RegExp(`"VtepMAC":"${newMac}"`));
    const gw2 = netOf(n2).split('/')[0];
    for (const n of [n1, n3]) {
      await waitFor(`${n.host.name} learns h2's new VtepMAC`, () => n.host.exec(['ip', 'neigh', 'show', gw2, 'dev', 'flannel.1']).includes(newMac), 10_000, 100);
      const fdb = n.host.exec(['bridge', 'fdb', 'show', 'dev', 'flannel.1']);
      assert.match(fdb, new RegExp(`${newMac} dst 198\\.18\\.0\\.2 self permanent`));
      assert.doesNotMatch(fdb, new RegExp(oldMac), `the old MAC's fdb entry is removed on ${n.host.name}`);
      assert.match(n.log(), /Subnet changed: /);
    }
    // h2 had to re-program its own peers on a brand-new device too.
    for (const [a, z] of [
      [n1, n2],
      [n2, n3],
      [n3, n2],
      [n2, n1],
    ]) {
      await waitFor(`${a.pods[0].ip} -> ${z.pods[0].ip}`, () => a.pods[0].ping(z.pods[0].ip, 1, 0.2, 1).received === 1, 10_000, 100);
    }
  });

  check('vxlan: a restart that finds flannel.1 as it left it reuses it and keeps the MAC', async () => {
    const n3 = clusters.get('vxlan')![2];
    const mac = macOf(n3.host, 'flannel.1');
    await n3.stop('SIGTERM');
    n3.start();
    await n3.waitReady();
    assert.match(n3.log(), /Reusing the existing flannel\.1/);
    assert.equal(macOf(n3.host, 'flannel.1'), mac);
    const n1 = clusters.get('vxlan')![0];
    assert.equal(n1.pods[0].ping(n3.pods[0].ip, 3, 0.05).received, 3);
  });

  check('vxlan: leases of other backend types are ignored, as flannel does', async () => {
    const nodes = clusters.get('vxlan')!;
    const [n1] = nodes;
    const subnet = freeSubnet(nodes, 'vxlan');
    const key = `${PREFIX.vxlan}/subnets/${subnet.replace('/', '-')}`;
    etcd.put(key, '{"PublicIP":"198.18.0.60","PublicIPv6":null,"BackendType":"udp"}');
    await n1.waitForLog(new RegExp(`ignoring non-vxlan subnet ${re(subnet)}: type=udp`));
    assert.equal(n1.host.exec(['ip', 'route', 'show', subnet]).trim(), '');
    etcd.del(key);
  });

  check('vxlan: DirectRouting routes same-link peers via their public IP and drops the tunnel entries', async () => {
    const nodes = clusters.get('vxlan')!;
    writeBackendConfig(etcd, PREFIX.vxlan, 'vxlan', { backend: { DirectRouting: true } });
    for (const n of nodes) {
      await n.stop('SIGTERM');
      n.start();
    }
    await Promise.all(nodes.map((n) => n.waitReady()));
    for (const n of nodes) {
      for (const peer of nodes) {
        if (peer === n) continue;
        await waitFor(
          `${n.host.name}: direct route to ${netOf(peer)}`,
          () => new RegExp(`via ${peer.host.ip.replace(/\./g, '\\.')} dev eth0`).test(n.host.exec(['ip', 'route', 'show', netOf(peer)])),
          10_000,
          100,
        );
      }
      // The tunnel entries of the earlier run are gone (first-flush reconcile).
      await waitFor(`${n.host.name}: no fdb entries left`, () => !/self permanent/.test(n.host.exec(['bridge', 'fdb', 'show', 'dev', 'flannel.1'])), 10_000, 100);
      assert.doesNotMatch(n.host.exec(['ip', 'neigh', 'show', 'dev', 'flannel.1']), /PERMANENT/);
    }
    assert.equal(nodes[0].pods[0].ping(nodes[2].pods[1].ip, 3, 0.05).received, 3);
    // Back to plain vxlan for anything after this check.
    writeBackendConfig(etcd, PREFIX.vxlan, 'vxlan');
    for (const n of nodes) {
      await n.stop('SIGTERM');
      n.start();
    }
    await Promise.all(nodes.map((n) => n.waitReady()));
    await waitFor('tunnel route again', () => /dev flannel\.1 onlink/.test(nodes[0].host.exec(['ip', 'route', 'show', netOf(nodes[1])])), 10_000, 100);
    assert.equal(nodes[0].pods[0].ping(nodes[1].pods[0].ip, 2, 0.05).received, 2);
  });

  check('host-gw: a peer that is not on the same link gets a clear error and no route', async () => {
    const nodes = clusters.get('host-gw')!;
    // A host behind a router: its public IP is on no link of ours (nothing is ever sent to it).
    const subnet = freeSubnet(nodes, 'host-gw');
    const key = `${PREFIX['host-gw']}/subnets/${subnet.replace('/', '-')}`;
    etcd.put(key, '{"PublicIP":"198.19.255.7","PublicIPv6":null,"BackendType":"host-gw"}');
    for (const n of nodes) {
      const m = await n.waitForLog(new RegExp(`host-gw: cannot route ${re(subnet)} via 198\\.19\\.255\\.7: that host is not on the same link[^"]*`));
      assert.match(m[0], /eth0 reaches 198\.18\.0\.0\/16 directly/);
      assert.match(m[0], /use the vxlan backend/);
      assert.equal(n.host.exec(['ip', 'route', 'show', subnet]).trim(), '');
      assert.ok(n.daemon!.running);
    }
    assert.equal(nodes[0].pods[0].ping(nodes[1].pods[0].ip, 2, 0.05).received, 2, 'the other peers still work');
    etcd.del(key);
  });

  check('host-gw: a public IP that is not the interface address (NAT) is refused, as flannel does', async () => {
    // Its own admin socket: the host-gw daemon already running on this host answers on admin-gw.sock.
    const n = new BackendNode(hosts[0], 'host-gw', etcd.endpoint, PREFIX['host-gw'], [
      '--public-ip=198.18.9.9',
      `--subnet-file=${path.join(hosts[0].dir, 'subnet-nat.env')}`,
      `--admin-socket=${path.join(hosts[0].dir, 'admin-nat.sock')}`,
    ]);
    const d = n.start();
    assert.equal(await d.exited, 1);
    assert.match(n.log(), /your PublicIP \(198\.18\.9\.9\) differs from interface IP \(198\.18\.0\.1\).*not supported by host-gw backend/);
  });

  check('vxlan: flannel.1 deleted under a running daemon comes back with the same MAC, peers re-programmed', async () => {
    const [n1, n2] = clusters.get('vxlan')!;
    const mac = macOf(n1.host, 'flannel.1');
    n1.host.exec(['ip', 'link', 'del', 'flannel.1']);
    await n1.waitForLog(/flannel\.1 was deleted: recreating it with the same MAC/, 10_000);
    await waitFor('pods talk again', () => n1.pods[0].ping(n2.pods[0].ip, 1, 0.2, 1).received === 1, 10_000, 100);
    assert.equal(macOf(n1.host, 'flannel.1'), mac, 'same MAC: the lease needs no update');
    assert.match(n1.host.exec(['ip', '-o', '-4', 'addr', 'show', 'dev', 'flannel.1']), /\/32 /);
  });

  check("host-gw: a peer route someone deletes is put back (flannel's route check)", async () => {
    const [n1, n2] = clusters.get('host-gw')!;
    n1.host.exec(['ip', 'route', 'del', netOf(n2)]);
    await n1.waitForLog(/host-gw: recovered 1 peer route/, 15_000);
    assert.match(n1.host.exec(['ip', 'route', 'show', netOf(n2)]), /via 198\.18\.0\.2 dev eth0/);
    assert.equal(n1.pods[0].ping(n2.pods[0].ip, 2, 0.05).received, 2);
  });

  for (const b of ['vxlan', 'host-gw'] as const) {
    check(`${b}: a LeaseDiff of 1000 peers is applied in one batch, well under a second`, async () => {
      const h = new Host(lab, `ka${b === 'vxlan' ? 'vx' : 'gw'}`, b === 'vxlan' ? '198.18.2.1' : '198.18.2.2');
      const r = await execStatus(['ip', 'netns', 'exec', h.ns, process.execPath, path.join(REPO_ROOT, 'dist/bench/kernel-apply.js'), b, '1000'], { timeoutMs: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
      console.log(`# ${b}: 1000 peers added in ${j.addMs.toFixed(0)} ms, changed in ${j.changeMs.toFixed(0)} ms, removed in ${j.removeMs.toFixed(0)} ms (${j.batches} batches to ip/bridge in all)`);
      assert.equal(j.routesAfterAdd, 1000);
      assert.equal(j.routesAfterRemove, 0);
      assert.ok(j.addMs < 1000 && j.changeMs < 1000 && j.removeMs < 1000, JSON.stringify(j));
      assert.ok(j.batches <= 6, `three diffs, at most two batches each: ${j.batches}`);
    });
  }

  check('vxlan: 1000 leases written to etcd together reach the kernel through the daemon', async () => {
    const h = new Host(lab, 'h9', '198.18.0.9');
    const prefix = '/flannel-ts-test/backends-burst/network';
    writeBackendConfig(etcd, prefix, 'vxlan', { network: '198.19.0.0/16', subnetLen: 30 });
    const n = new BackendNode(h, 'vxlan', etcd.endpoint, prefix);
    n.start();
    await n.waitReady();
    const args = {
      endpoint: etcd.endpoint,
      prefix,
      backend: 'vxlan',
      subnetFile: n.subnetFile,
      network: '198.19.0.0/16',
      subnetLen: 30,
      publicBase: '198.18.64.0',
      probePort: 7777,
      ackPort: 7778,
      latency: 0,
      burst: 1000,
      fill: 0,
      timeoutMs: 1000,
      probe: false,
    };
    const driver = execStatus(['ip', 'netns', 'exec', h.ns, process.execPath, path.join(REPO_ROOT, 'dist/src/bench/cp-driver.js'), JSON.stringify(args)], { timeoutMs: 60_000 });
    const count = () =>
      run(['ip', '-n', h.ns, '-4', 'route', 'show', 'dev', 'flannel.1'])
        .split('\n')
        .filter((l) => l.includes('onlink')).length;
    let doneAt = 0;
    let finished = false;
    void driver.then(() => (finished = true));
    await waitFor(
      '1001 routes on flannel.1',
      () => {
        if (count() !== 1001) return false;
        doneAt = Date.now();
        return true;
      },
      30_000,
      10,
    );
    const r = await driver;
    assert.ok(finished);
    assert.equal(r.status, 0, r.stderr);
    const d = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const flushes = [...n.log().matchAll(/applied (\d+) peer change\(s\) \([^)]*\) in ([\d.]+) ms, (\d+) batch/g)].map((m) => `${m[1]} peers in ${m[2]} ms`);
    console.log(
      `# vxlan through etcd: 1001 leases put in ${d.burst.putMs.toFixed(0)} ms; all 1001 routes in the kernel ${doneAt - d.burst.startedAt} ms ` +
        `after the first put (polled every 10 ms); daemon flushes: ${flushes.join(', ')}`,
    );
    assert.equal(etcd.list(`${prefix}/subnets/`).size, 1002);
  });
});
