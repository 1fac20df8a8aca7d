// flannel's iptables rules end to end, with Debian's iptables (nft backend)
// inside the lab's host namespaces: --ip-masq (pods reach the outside world
// as their node; pod-to-pod keeps pod sources), the resync loop, rules that
// outlive a stop and are reconciled at start, `flannel-ts cleanup`, and
// --iptables-forward-rules on hosts whose FORWARD policy is
// DROP. "The outside world" is a namespace at 198.18.0.200 on the underlay
// switch, with no route to the overlay.

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Lab, REPO_ROOT } from '../../src/lab/lab';
import type { Etcd } from '../../src/lab/etcd';
import { type CniPod, Host } from '../../src/lab/host';
import { sleep, waitFor } from '../../src/lab/sh';
import { SourceListener, sendUdp } from '../lib/masquerade';
import { dumpLogs, failureAware, startLab, uniquePrefix, writeConfig } from '../lib/helpers';

const OUTSIDE = '198.18.0.200';
const NETWORK = '198.19.0.0/16';

/** `-A` lines of one chain in iptables-save's output for `table`. */
function chainRules(h: Host, table: string, chain: string): string[] {
  return h
    .exec(['iptables-save', '-t', table])
    .split('\n')
    .filter((l) => l.startsWith(`-A ${chain} `));
}

/** The masquerade rules flannel installs (flannel's iptables.go masqRules), as iptables-save prints them. */
function expectedMasq(subnet: string): string[] {
  const c = '-m comment --comment "flanneld masq"';
  return [
    `-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 ${c} -j RETURN`,
    `-A FLANNEL-POSTRTG -s ${subnet} -d ${NETWORK} ${c} -j RETURN`,
    `-A FLANNEL-POSTRTG -s ${NETWORK} -d ${subnet} ${c} -j RETURN`,
    `-A FLANNEL-POSTRTG ! -s ${NETWORK} -d ${subnet} ${c} -j RETURN`,
    `-A FLANNEL-POSTRTG -s ${NETWORK} ! -d 224.0.0.0/4 ${c} -j MASQUERADE --random-fully`,
    `-A FLANNEL-POSTRTG ! -s ${NETWORK} -d ${NETWORK} ${c} -j MASQUERADE --random-fully`,
  ];
}
const MASQ_JUMP = '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG';
const FWD_JUMP = '-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD';
const EXPECTED_FWD = [`-A FLANNEL-FWD -s ${NETWORK} -m comment --comment "flanneld forward" -j ACCEPT`, `-A FLANNEL-FWD -d ${NETWORK} -m comment --comment "flanneld forward" -j ACCEPT`];

const subnetOf = (h: Host) => h.subnetEnv().subnet.replace(/\.1\/24$/, '.0/24');
const countLines = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;

describe('iptables: --ip-masq and --iptables-forward-rules', () => {
  let lab: Lab;
  let etcd: Etcd;
  let outside: string;
  const prefix = uniquePrefix('ipmasq');
  const hosts: Host[] = [];
  const pods = new Map<string, CniPod>();
  const suite = failureAware();
  const check = suite.check;
  const masqArgs = [`--etcd-prefix=${prefix}`, '--ip-masq', '--iptables-resync=1'];

  before(async () => {
    ({ lab, etcd } = await startLab());
    writeConfig(etcd, prefix);
    outside = lab.addNamespace('outside');
    lab.plug(outside, 'eth0', `${OUTSIDE}/16`);
    for (let i = 1; i <= 4; i++) hosts.push(new Host(lab, `h${i}`, `198.18.0.${i}`));
    const [h1, h2, h3, h4] = hosts;
    // Docker's setting: forward nothing unless a rule says so.
    for (const h of [h3, h4]) h.exec(['iptables', '-P', 'FORWARD', 'DROP']);
    h1.startFlanneld(etcd.endpoint, masqArgs);
    h2.startFlanneld(etcd.endpoint, masqArgs);
    h3.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`]);
    h4.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`, '--iptables-forward-rules=false']);
    await Promise.all(hosts.map((h) => h.waitReady()));
    for (const h of hosts) pods.set(h.name, h.addCniPod());
  });

  after(async () => {
    if (suite.failed) dumpLogs(hosts, etcd);
    await lab?.destroy();
  });

  check("--ip-masq installs flannel's masquerade rules, and the bridge leaves masquerading to flanneld", () => {
    const h1 = hosts[0];
    assert.deepEqual(chainRules(h1, 'nat', 'FLANNEL-POSTRTG'), expectedMasq(subnetOf(h1)));
    assert.deepEqual(chainRules(h1, 'nat', 'POSTROUTING'), [MASQ_JUMP], 'one jump, and no masquerade rule of the bridge plugin');
    assert.deepEqual(chainRules(h1, 'filter', 'FORWARD'), [FWD_JUMP]);
    assert.deepEqual(chainRules(h1, 'filter', 'FLANNEL-FWD'), EXPECTED_FWD);
    assert.equal(h1.subnetEnv().ipMasq, true, 'FLANNEL_IPMASQ=true');
    const saved = JSON.parse(fs.readFileSync(path.join(h1.cniDataDir, pods.get('h1')!.containerId), 'utf8')) as { ipMasq: boolean };
    assert.equal(saved.ipMasq, false, 'the delegate bridge does not masquerade');
    // Without --ip-masq there are no masquerade rules of flanneld's.
    assert.doesNotMatch(hosts[2].exec(['iptables-save', '-t', 'nat']), /FLANNEL-POSTRTG/);
  });

  check("a pod reaches the outside world with its node's address as source", async () => {
    const l = new SourceListener(outside, OUTSIDE, 7000);
    try {
      await l.ready();
      sendUdp(pods.get('h1')!, OUTSIDE, 7000, 'out1');
      assert.equal(await l.sourceOf('out1'), hosts[0].ip);
      sendUdp(pods.get('h2')!, OUTSIDE, 7000, 'out2');
      assert.equal(await l.sourceOf('out2'), hosts[1].ip);
    } finally {
      l.stop();
    }
    // Replies find their way back through the NAT (the outside has no route to the overlay).
    const r = pods.get('h1')!.ping(OUTSIDE, 3, 0.1);
    assert.equal(r.received, 3, r.output);
  });

  check('pod-to-pod traffic across hosts keeps pod sources', async () => {
    const to = pods.get('h2')!;
    const from = pods.get('h1')!;
    const l = new SourceListener(to.ns, to.ip, 7001);
    try {
      await l.ready();
      sendUdp(from, to.ip, 7001, 'p2p');
      assert.equal(await l.sourceOf('p2p'), from.ip);
    } finally {
      l.stop();
    }
  });

  check('the resync loop leaves intact rules alone and puts deleted ones back', async () => {
    const h1 = hosts[0];
    const missing = /Some iptables rules are missing/;
    const before = countLines(h1.daemon!.log(), missing);
    await sleep(2500); // two resync periods with nothing to do
    assert.equal(countLines(h1.daemon!.log(), missing), before, 'no re-install while the rules are intact');
    const subnet = subnetOf(h1);
    h1.exec(['iptables', '-t', 'nat', '-D', 'FLANNEL-POSTRTG', '-s', subnet, '-d', NETWORK, '-m', 'comment', '--comment', 'flanneld masq', '-j', 'RETURN']);
    h1.exec(['iptables', '-D', 'FORWARD', '-m', 'comment', '--comment', 'flanneld forward', '-j', 'FLANNEL-FWD']);
    await waitFor('rules restored', () => chainRules(h1, 'nat', 'FLANNEL-POSTRTG').length === 6 && chainRules(h1, 'filter', 'FORWARD').length === 1, 5000, 100);
    assert.deepEqual(chainRules(h1, 'nat', 'FLANNEL-POSTRTG'), expectedMasq(subnet));
    assert.deepEqual(chainRules(h1, 'nat', 'POSTROUTING'), [MASQ_JUMP]);
    assert.deepEqual(chainRules(h1, 'filter', 'FORWARD'), [FWD_JUMP]);
    assert.ok(countLines(h1.daemon!.log(), missing) > before, 'the daemon says what it did');
  });

  check('a host whose FORWARD policy is DROP forwards pod traffic with --iptables-forward-rules, not without', () => {
    const [, , h3, h4] = hosts;
    const target = pods.get('h1')!;
    assert.deepEqual(chainRules(h3, 'filter', 'FLANNEL-FWD'), EXPECTED_FWD);
    const via3 = pods.get('h3')!.ping(target.ip, 2, 0.1);
    assert.equal(via3.received, 2, via3.output);
    assert.doesNotMatch(h4.exec(['iptables-save', '-t', 'filter']), /FLANNEL-FWD/);
    const via4 = pods.get('h4')!.ping(target.ip, 2, 0.1, 1);
    assert.equal(via4.received, 0, 'h4 drops its pods’ traffic in FORWARD');
    // Controls: h4's pod is networked (its gateway answers: INPUT, not FORWARD), and h4's
    // overlay itself works (the host's own traffic does not cross FORWARD).
    const gw = h4.subnetEnv().subnet.split('/')[0];
    assert.equal(pods.get('h4')!.ping(gw, 1, 0.1).received, 1);
    const own = h4.tryExec(['ping', '-n', '-c', '2', '-i', '0.1', '-W', '2', target.ip]);
    assert.match(own.stdout, /2 received/, own.stdout + own.stderr);
  });

  check('kill -9 and restart: the rules are there once, not twice', async () => {
    const h1 = hosts[0];
    await h1.daemon!.stop('SIGKILL');
    assert.deepEqual(chainRules(h1, 'nat', 'POSTROUTING'), [MASQ_JUMP], 'left in place by a crash');
    const from = h1.daemon!.log().length;
    h1.startFlanneld(etcd.endpoint, masqArgs);
    await h1.daemon!.waitForLog(/flanneld is ready/, 15_000, from);
    assert.deepEqual(chainRules(h1, 'nat', 'POSTROUTING'), [MASQ_JUMP]);
    assert.deepEqual(chainRules(h1, 'nat', 'FLANNEL-POSTRTG'), expectedMasq(subnetOf(h1)));
    assert.deepEqual(chainRules(h1, 'filter', 'FORWARD'), [FWD_JUMP]);
    assert.deepEqual(chainRules(h1, 'filter', 'FLANNEL-FWD'), EXPECTED_FWD);
  });

  check('SIGTERM leaves every rule; a NEW pod connection while flanneld is stopped goes out masqueraded; the restart changes nothing', async () => {
    const h2 = hosts[1];
    const snapshot = () => ({
      nat: [...chainRules(h2, 'nat', 'POSTROUTING'), ...chainRules(h2, 'nat', 'FLANNEL-POSTRTG')],
      filter: [...chainRules(h2, 'filter', 'FORWARD'), ...chainRules(h2, 'filter', 'FLANNEL-FWD')],
    });
    const before = snapshot();
    assert.deepEqual(before.nat, [MASQ_JUMP, ...expectedMasq(subnetOf(h2))]);
    assert.equal(await h2.daemon!.stop('SIGTERM'), 0);
    assert.deepEqual(snapshot(), before, 'identical after the stop');
    // A fresh socket (new source port): a new conntrack entry, so only a rule
    // in place now can masquerade it (an old connection keeps its NAT binding).
    const l = new SourceListener(outside, OUTSIDE, 7002);
    try {
      await l.ready();
      sendUdp(pods.get('h2')!, OUTSIDE, 7002, 'during-stop');
      assert.equal(await l.sourceOf('during-stop'), hosts[1].ip, 'masqueraded while flanneld is stopped');
    } finally {
      l.stop();
    }
    const from = h2.daemon!.log().length;
    h2.startFlanneld(etcd.endpoint, masqArgs);
    await h2.daemon!.waitForLog(/flanneld is ready/, 15_000, from);
    assert.match(h2.daemon!.log().slice(from), /masquerade rules for .* are already in place; kept as they are/);
    assert.deepEqual(snapshot(), before, 'identical after the restart: nothing added, nothing duplicated');
  });

  check('a restart without --ip-masq removes the masquerade rules an earlier run left (beyond upstream)', async () => {
    const h2 = hosts[1];
    await h2.daemon!.stop('SIGTERM');
    const from = h2.daemon!.log().length;
    h2.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`, '--iptables-resync=1']);
    await h2.daemon!.waitForLog(/flanneld is ready/, 15_000, from);
    assert.doesNotMatch(h2.exec(['iptables-save', '-t', 'nat']), /FLANNEL-POSTRTG|flanneld masq/);
    assert.deepEqual(chainRules(h2, 'filter', 'FLANNEL-FWD'), EXPECTED_FWD, 'the forward rules, still asked for, stay');
    assert.equal(h2.subnetEnv().ipMasq, false);
  });

  check('flannel-ts cleanup removes every rule flanneld installed', async () => {
    const h1 = hosts[0];
    await h1.daemon!.stop('SIGTERM');
    assert.deepEqual(chainRules(h1, 'nat', 'POSTROUTING'), [MASQ_JUMP], 'still there after the stop');
    const out = h1.exec([process.execPath, path.join(REPO_ROOT, 'bin/flannel-ts'), 'cleanup', `--subnet-file=${h1.subnetFile}`]);
    assert.match(out, /removed iptables chains FLANNEL-POSTRTG and FLANNEL-FWD/);
    assert.match(out, /removed .*subnet\.env\.peers\.json/, 'and the restart state');
    const all = h1.exec(['iptables-save']);
    assert.doesNotMatch(all, /FLANNEL-|flanneld (masq|forward)/);
    assert.match(h1.exec([process.execPath, path.join(REPO_ROOT, 'bin/flannel-ts'), 'cleanup', `--subnet-file=${h1.subnetFile}`]), /nothing of flanneld's to remove/);
  });
});
