// The flanneld flags that upstream units use, each applied as upstream does:
// --iface-can-reach, --iface=<IP>, --public-ip without --iface,
// --ip-masq-fully-random-disable, --ip-blackhole-route (with a bridge and
// without one), and the br_netfilter check. Hosts in namespaces, one etcd.

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Lab, REPO_ROOT } from '../../src/lab/lab';
import type { Etcd } from '../../src/lab/etcd';
import { Host } from '../../src/lab/host';
import { sleep, waitFor } from '../../src/lab/sh';
import { dumpLogs, failureAware, schedSliceNs, startLab, threadsNamed, uniquePrefix, writeConfig } from '../lib/helpers';

describe('flags upstream units use', () => {
  let lab: Lab;
  let etcd: Etcd;
  const prefix = uniquePrefix('flags');
  const hosts: Host[] = [];
  const suite = failureAware();
  const check = suite.check;
  const host = (name: string, ip: string) => {
    const h = new Host(lab, name, ip);
    hosts.push(h);
    return h;
  };
  const leaseValueOf = (publicIp: string) => [...etcd.list(`${prefix}/subnets/`).values()].map((v) => JSON.parse(v) as { PublicIP: string }).find((v) => v.PublicIP === publicIp);
  /** A second NIC with its own connected route: a veth pair inside the host (the lab's switch has one port per namespace; no dummy module here). */
  const secondNic = (h: Host, cidr: string) => {
    h.exec(['ip', 'link', 'add', 'eth1', 'type', 'veth', 'peer', 'name', 'eth1p']);
    h.exec(['ip', 'addr', 'add', cidr, 'dev', 'eth1']);
    h.exec(['ip', 'link', 'set', 'eth1p', 'up']);
    h.exec(['ip', 'link', 'set', 'eth1', 'up']);
  };
  /** flanneld with exactly `args` (no --iface: the lab's Host.startFlanneld always passes --iface=eth0) until ready, then SIGTERM; its log. */
  const runUntilReady = async (h: Host, args: string[]): Promise<string> => {
    const log = path.join(h.dir, `raw-${Date.now()}.log`);
    const child = lab.spawnIn(
      h.ns,
      [process.execPath, path.join(REPO_ROOT, 'bin/flanneld'), `--etcd-endpoints=${etcd.endpoint}`, `--etcd-prefix=${prefix}`, `--subnet-file=${h.subnetFile}`, '--admin-socket=', ...args],
      log,
    );
    try {
      await waitFor('flanneld ready', () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('flanneld is ready'), 15_000);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    }
    return fs.readFileSync(log, 'utf8');
  };
  /** flanneld with `args` on `h`, run to its exit (for start-up failures). */
  const runToExit = (h: Host, args: string[]) =>
    h.tryExec(
      [process.execPath, path.join(REPO_ROOT, 'bin/flanneld'), `--etcd-endpoints=${etcd.endpoint}`, `--etcd-prefix=${prefix}`, `--subnet-file=${h.subnetFile}`, `--admin-socket=`, ...args],
      20_000,
    );

  before(async () => {
    ({ lab, etcd } = await startLab());
    writeConfig(etcd, prefix);
  });
  after(async () => {
    if (suite.failed) dumpLogs(hosts, etcd);
    await lab?.destroy();
  });

  check('--iface-can-reach picks the interface and source address of the route to it', async () => {
    const h = host('fr1', '198.18.0.91');
    secondNic(h, '198.18.250.91/24');
    const out = await runUntilReady(h, ['--iface-can-reach=198.18.250.5']);
    assert.match(out, /Using interface eth1 with address 198\.18\.250\.91 \(public IP 198\.18\.250\.91\)/, out);
    assert.ok(leaseValueOf('198.18.250.91'), 'the lease carries the route source address');
  });

  check("--iface=<IP> uses the address given, not the interface's first", async () => {
    const h = host('fr2', '198.18.0.92');
    h.exec(['ip', 'addr', 'add', '198.18.1.92/16', 'dev', 'eth0']);
    const out = await runUntilReady(h, ['--iface=198.18.1.92']);
    assert.match(out, /Using interface eth0 with address 198\.18\.1\.92 \(public IP 198\.18\.1\.92\)/, out);
    assert.ok(leaseValueOf('198.18.1.92'));
  });

  check('--public-ip without --iface uses the interface holding it, or fails saying so', async () => {
    const h = host('fr3', '198.18.0.93');
    secondNic(h, '198.18.251.93/24');
    const out = await runUntilReady(h, ['--public-ip=198.18.251.93']);
    assert.match(out, /Using interface eth1 with address 198\.18\.251\.93 \(public IP 198\.18\.251\.93\)/, out);
    const bad = runToExit(h, ['--public-ip=198.18.77.77']);
    assert.equal(bad.status, 1, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /no interface here holds --public-ip 198\.18\.77\.77.*pass --iface/);
  });

  check('--ip-masq-fully-random-disable: MASQUERADE without --random-fully', async () => {
    const h = host('fr4', '198.18.0.94');
    h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`, '--ip-masq', '--ip-masq-fully-random-disable']);
    await h.daemon!.waitForLog(/flanneld is ready/, 15_000);
    const nat = h
      .exec(['iptables-save', '-t', 'nat'])
      .split('\n')
      .filter((l) => l.includes('-j MASQUERADE'));
    assert.equal(nat.length, 2, nat.join('\n'));
    for (const l of nat) assert.doesNotMatch(l, /random-fully/);
    await h.daemon!.stop('SIGTERM');
  });

  check('--ip-blackhole-route: added after the first resync period, re-ensured; without a bridge it catches the subnet, with cni0 the bridge wins', async () => {
    const h = host('fr5', '198.18.0.95');
    h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`, '--ip-blackhole-route', '--iptables-resync=1']);
    const env = await h.waitReady();
    const subnet = env.subnet.replace(/\.1\/24$/, '.0/24');
    const inSubnet = env.subnet.replace(/\.1\/24$/, '.77');
    const blackholes = () => h.exec(['ip', '-4', 'route', 'show', 'type', 'blackhole']);
    assert.doesNotMatch(blackholes(), new RegExp(subnet.replace(/\./g, '\\.')), 'not before the first period');
    await waitFor('blackhole route', () => blackholes().includes(`blackhole ${subnet} metric 4242`), 5000, 100);
    // Without a bridge: packets for the subnet are dropped here (no route out by default).
    const get = h.tryExec(['ip', '-4', 'route', 'get', inSubnet]);
    assert.notEqual(get.status, 0, 'no route out for it');
    assert.match(get.stderr, /Invalid argument/, 'the kernel answers a lookup that hits a blackhole route with EINVAL');
    assert.match(h.exec(['ip', '-4', 'route', 'show', 'match', inSubnet]), new RegExp(`blackhole ${subnet.replace(/\./g, '\\.')} metric 4242`));
    // Re-ensured every period.
    h.exec(['ip', 'route', 'del', 'blackhole', subnet, 'metric', '4242']);
    await waitFor('blackhole route back', () => blackholes().includes(`blackhole ${subnet} metric 4242`), 5000, 100);
    assert.match(h.daemon!.log(), /Re-added the blackhole route/);
    // With cni0 holding the subnet: its connected route wins, the pod answers, and no error is logged.
    h.setupBridge(env);
    const pod = h.addPod(env);
    assert.match(h.exec(['ip', '-4', 'route', 'get', pod.ip]), /dev cni0/);
    assert.equal(h.tryExec(['ping', '-n', '-c', '2', '-i', '0.2', '-W', '2', pod.ip]).status, 0);
    await sleep(2200);
    assert.ok(blackholes().includes(`blackhole ${subnet} metric 4242`), 'both routes coexist');
    assert.doesNotMatch(h.daemon!.log(), /Failed to set up the blackhole route/);
    // Left on stop, as upstream; cleanup removes it.
    await h.daemon!.stop('SIGTERM');
    assert.ok(blackholes().includes(subnet));
    const out = h.exec([process.execPath, path.join(REPO_ROOT, 'bin/flannel-ts'), 'cleanup', `--subnet-file=${h.subnetFile}`]);
    assert.match(out, new RegExp(`removed blackhole route ${subnet.replace(/\./g, '\\.')}`));
    assert.doesNotMatch(blackholes(), new RegExp(subnet.replace(/\./g, '\\.')));
  });

  check('--dataplane-mlock, --dataplane-slice-us: the program files flanneld has mapped stay locked (VmLck); flanneld-dp has a 100 µs slice', async () => {
    const h = host('fr6', '198.18.0.96');
    h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`, '--dataplane-mlock', '--dataplane-slice-us=100']);
    await h.waitReady();
    const pid = h.daemon!.pid;
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const locked = Number(/^VmLck:\s*(\d+) kB/m.exec(status)?.[1]);
    assert.ok(locked > 10_000, `VmLck ${locked} kB: node's text, its libraries and the addon`);
    const [dp] = threadsNamed(pid, 'flanneld-dp');
    assert.ok(dp, 'a flanneld-dp thread');
    const slice = schedSliceNs(pid, dp);
    if (slice !== undefined) assert.equal(slice, 100_000, 'se.slice (ns) of flanneld-dp'); // kernels before EEVDF have no se.slice
    assert.doesNotMatch(h.daemon!.log(), /keeps the process's scheduling/, 'the slice was not refused');
  });

  check('br_netfilter: warned about (naming modprobe br_netfilter) only when missing, never fatal', async () => {
    const h = hosts.find((x) => x.name === 'fr4')!;
    const present = h.tryExec(['cat', '/proc/sys/net/bridge/bridge-nf-call-iptables']).status === 0;
    const warned = /modprobe br_netfilter/.test(h.daemon!.log());
    assert.equal(warned, !present, `br_netfilter ${present ? 'loaded' : 'missing'} here; warning ${warned ? 'given' : 'not given'}`);
  });
});
