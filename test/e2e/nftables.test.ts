// "EnableNFTables": true for real, in the lab's host namespaces with Debian's
// nft: flannel's table ip flannel-ipv4 (upstream's layout) masquerades pods,
// the other mode's leftovers go at start, the rules outlive SIGTERM and the
// restart changes nothing, a host without any iptables binary on PATH runs
// fine, the messages when a tool is missing, and Docker's FORWARD DROP
// (iptables-nft) that a separate nftables base chain cannot override.

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Lab, REPO_ROOT } from '../../src/lab/lab';
import type { Etcd } from '../../src/lab/etcd';
import { Host, type Pod } from '../../src/lab/host';
import { SourceListener, sendUdp } from '../lib/masquerade';
import { DEFAULT_CONFIG, dumpLogs, failureAware, startLab, uniquePrefix, writeConfig } from '../lib/helpers';

const OUTSIDE = '198.18.0.200';
const NETWORK = '198.19.0.0/16';

describe('nftables mode (EnableNFTables)', () => {
  let lab: Lab;
  let etcd: Etcd;
  let outside: string;
  const nftPrefix = uniquePrefix('nft');
  const iptPrefix = uniquePrefix('nft-ipt');
  const hosts: Host[] = [];
  const pods = new Map<string, Pod>();
  const suite = failureAware();
  const check = suite.check;
  const nftArgs = [`--etcd-prefix=${nftPrefix}`, '--ip-masq', '--iptables-resync=1'];
  const nftTable = (h: Host) => h.exec(['nft', 'list', 'table', 'ip', 'flannel-ipv4']);
  const flannelIptables = (h: Host) =>
    h
      .exec(['iptables-save'])
      .split('\n')
      .filter((l) => /FLANNEL|flanneld/.test(l));
  /** A PATH holding only ip and (optionally) nft: a host without the iptables binaries. */
  const restrictedPath = (name: string, tools: string[]) => {
    const dir = path.join(lab.dir, name);
    fs.mkdirSync(dir, { recursive: true });
    for (const t of tools) {
      const real = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => path.join(d, t)).find((p) => fs.existsSync(p))!;
      fs.symlinkSync(real, path.join(dir, t));
    }
    return dir;
  };

  before(async () => {
    ({ lab, etcd } = await startLab());
    writeConfig(etcd, nftPrefix, { ...DEFAULT_CONFIG, EnableNFTables: true });
    writeConfig(etcd, iptPrefix);
    outside = lab.addNamespace('outside');
    lab.plug(outside, 'eth0', `${OUTSIDE}/16`);
    for (let i = 1; i <= 3; i++) hosts.push(new Host(lab, `n${i}`, `198.18.0.${110 + i}`));
  });
  after(async () => {
    if (suite.failed) dumpLogs(hosts, etcd);
    await lab?.destroy();
  });

  check('a host that ran in iptables mode: at start the iptables leftovers go, table ip flannel-ipv4 masquerades', async () => {
    const n1 = hosts[0];
    n1.startFlanneld(etcd.endpoint, [`--etcd-prefix=${iptPrefix}`, '--ip-masq']);
    await n1.daemon!.waitForLog(/flanneld is ready/, 15_000);
    assert.ok(flannelIptables(n1).length > 0, 'the iptables run left its rules (they outlive the stop)');
    await n1.daemon!.stop('SIGTERM');
    assert.ok(flannelIptables(n1).length > 0);
    const from = n1.daemon!.log().length;
    n1.startFlanneld(etcd.endpoint, nftArgs);
    await n1.daemon!.waitForLog(/flanneld is ready/, 15_000, from);
    pods.set('n1', await n1.waitReadyWithPod());
    assert.deepEqual(flannelIptables(n1), [], 'no iptables rule names flannel');
    assert.match(n1.daemon!.log().slice(from), /Removed flannel's iptables rules left from an earlier run in iptables mode/);
    const table = nftTable(n1);
    const subnet = n1.subnetEnv().subnet.replace(/\.1\/24$/, '.0/24');
    assert.match(table, /chain postrtg \{[^}]*type nat hook postrouting priority srcnat; policy accept;/);
    assert.match(table, new RegExp(`ip saddr ${NETWORK.replace(/\./g, '\\.')} ip daddr != 224\\.0\\.0\\.0/4 masquerade fully-random`));
    assert.match(table, new RegExp(`ip saddr ${subnet.replace(/\./g, '\\.')} ip daddr ${NETWORK.replace(/\./g, '\\.')} return`));
    assert.match(table, /chain forward \{[^}]*type filter hook forward priority filter; policy accept;/);
    const l = new SourceListener(outside, OUTSIDE, 7100);
    try {
      await l.ready();
      sendUdp(pods.get('n1')!, OUTSIDE, 7100, 'nft1');
      assert.equal(await l.sourceOf('nft1'), n1.ip, 'the pod leaves as its node (nftables masquerade)');
    } finally {
      l.stop();
    }
  });

  check('SIGTERM leaves the table; a new pod flow during the stop is masqueraded; the restart changes nothing; the resync repairs', async () => {
    const n1 = hosts[0];
    const before = nftTable(n1);
    assert.equal(await n1.daemon!.stop('SIGTERM'), 0);
    assert.equal(nftTable(n1), before);
    const l = new SourceListener(outside, OUTSIDE, 7101);
    try {
      await l.ready();
      sendUdp(pods.get('n1')!, OUTSIDE, 7101, 'nft-stopped');
      assert.equal(await l.sourceOf('nft-stopped'), n1.ip);
    } finally {
      l.stop();
    }
    const from = n1.daemon!.log().length;
    n1.startFlanneld(etcd.endpoint, nftArgs);
    await n1.daemon!.waitForLog(/flanneld is ready/, 15_000, from);
    assert.match(n1.daemon!.log().slice(from), /table ip flannel-ipv4 already holds masquerade/);
    assert.equal(nftTable(n1), before, 'identical after the restart');
    n1.exec(['nft', 'flush', 'chain', 'ip', 'flannel-ipv4', 'postrtg']);
    // The log line comes after nft's transaction returns: wait for it, then compare.
    await n1.daemon!.waitForLog(/were missing or changed; recreated them/, 15_000, from);
    assert.equal(nftTable(n1), before, 'the resync put back exactly what was there');
  });

  check('a host without the iptables binaries on PATH runs in nftables mode; iptables mode there fails saying what to install', async () => {
    const n2 = hosts[1];
    const onlyIpNft = restrictedPath('path-ip-nft', ['ip', 'nft']);
    const env = { ...process.env, PATH: onlyIpNft };
    n2.startFlanneld(etcd.endpoint, [...nftArgs, '--healthz-ip=127.0.0.1', '--healthz-port=9131'], env);
    await n2.daemon!.waitForLog(/flanneld is ready/, 15_000);
    assert.match(nftTable(n2), /masquerade fully-random/);
    const readyz = n2.exec([process.execPath, '-e', "fetch('http://127.0.0.1:9131/readyz').then(async (r) => process.stdout.write(r.status + ' ' + (await r.text())))"]);
    assert.equal(readyz, '200 flanneld is ready');
    assert.doesNotMatch(n2.daemon!.log(), /iptables|"level":"(error|warn)"/i);
    await n2.daemon!.stop('SIGTERM');
    // iptables mode with --ip-masq on that host: exit 1, naming the binary and both ways out.
    const r = n2.tryExec(
      [
        'env',
        `PATH=${onlyIpNft}`,
        process.execPath,
        path.join(REPO_ROOT, 'bin/flanneld'),
        `--etcd-endpoints=${etcd.endpoint}`,
        `--etcd-prefix=${iptPrefix}`,
        '--iface=eth0',
        `--subnet-file=${path.join(n2.dir, 'ipt.env')}`,
        '--admin-socket=',
        '--ip-masq',
      ],
      30_000,
    );
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /iptables-save is not installed or not on PATH \(install the iptables package, or set \\?"EnableNFTables\\?": true/);
    // nftables mode without nft: the same, for nft.
    const onlyIp = restrictedPath('path-ip', ['ip']);
    const r2 = n2.tryExec(
      [
        'env',
        `PATH=${onlyIp}`,
        process.execPath,
        path.join(REPO_ROOT, 'bin/flanneld'),
        `--etcd-endpoints=${etcd.endpoint}`,
        `--etcd-prefix=${nftPrefix}`,
        '--iface=eth0',
        `--subnet-file=${n2.subnetFile}`,
        '--admin-socket=',
        '--ip-masq',
      ],
      30_000,
    );
    assert.equal(r2.status, 1, r2.stderr);
    assert.match(r2.stderr, /nft is not installed or not on PATH \(install the nftables package/);
  });

  check("Docker's FORWARD DROP (iptables-nft) is not overridden by flannel's forward chain: pods need an iptables accept, as the README says", async () => {
    const [n1, , n3] = hosts;
    n3.exec(['iptables', '-P', 'FORWARD', 'DROP']);
    n3.startFlanneld(etcd.endpoint, nftArgs);
    const pod = await n3.waitReadyWithPod();
    assert.match(nftTable(n3), /chain forward/);
    const target = pods.get('n1')!.ip;
    assert.equal(pod.ping(target, 2, 0.1, 1).received, 0, "dropped by iptables' FORWARD policy despite flannel's accept");
    // What the README tells the operator to do (Docker: the DOCKER-USER chain; here FORWARD itself).
    for (const dir of ['-s', '-d']) n3.exec(['iptables', '-I', 'FORWARD', dir, NETWORK, '-j', 'ACCEPT']);
    assert.equal(pod.ping(target, 2, 0.1).received, 2);
    assert.ok(n1);
  });

  check('flannel-ts cleanup removes the nftables table', async () => {
    const n3 = hosts[2];
    await n3.daemon!.stop('SIGTERM');
    const out = n3.exec([process.execPath, path.join(REPO_ROOT, 'bin/flannel-ts'), 'cleanup', `--subnet-file=${n3.subnetFile}`]);
    assert.match(out, /removed nftables table ip flannel-ipv4/);
    assert.notEqual(n3.tryExec(['nft', 'list', 'table', 'ip', 'flannel-ipv4']).status, 0);
  });
});
