// etcd trouble under running daemons: all of etcd gone for a minute, one
// daemon cut off from etcd while leases come and go, and the watch history
// compacted behind a cut-off daemon's back. etcd is only the control plane:
// forwarding never stops, and the daemons catch up by themselves with a full
// resync. This file stops etcd, so it runs its own.

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { Lab } from '../../src/lab/lab';
import type { Etcd } from '../../src/lab/etcd';
import { Host, type Pod } from '../../src/lab/host';
import { sleep, waitFor } from '../../src/lab/sh';
import { execStatus } from '../../src/util/exec';
import { dumpLogs, failureAware, leaseKeys, scrape, startLab, uniquePrefix, writeConfig } from '../lib/helpers';

const HEALTHZ = 9121;
const ETCD_UP = 'flannel_etcd_up';
const RESYNCS = 'flannel_watch_resyncs_total';

/** GET a path from the daemon's health server inside its namespace: status code. */
function httpStatus(h: Host, path: string): number {
  const r = h.tryExec([process.execPath, '-e', `fetch('http://127.0.0.1:${HEALTHZ}${path}').then(r=>console.log(r.status),()=>console.log(0))`], 10_000);
  return Number(r.stdout.trim());
}

/** The daemon's lease table through its admin socket: "subnet -> ip:port" lines, sorted. */
export function adminLeases(socketPath: string): Promise<{ local: string; peers: string[] }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socketPath);
    let buf = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write('{"cmd":"leases"}\n'));
    s.on('data', (d) => (buf += d));
    s.on('end', () => {
      try {
        const j = JSON.parse(buf) as { local: string; peers: string[] };
        resolve({ local: j.local, peers: [...j.peers].sort() });
      } catch (e) {
        reject(e);
      }
    });
    s.on('error', reject);
  });
}

/** Cuts (or restores) the host's path to etcd: every packet to or from it dropped, as a partition does. */
function cutEtcd(h: Host, etcdIp: string, cut: boolean): void {
  const op = cut ? '-I' : '-D';
  h.exec(['iptables', '-w', op, 'OUTPUT', '-d', etcdIp, '-j', 'DROP']);
  h.exec(['iptables', '-w', op, 'INPUT', '-s', etcdIp, '-j', 'DROP']);
}

describe('etcd faults under running daemons', () => {
  let lab: Lab;
  let etcd: Etcd;
  const prefix = uniquePrefix('etcd-faults');
  const hosts: Host[] = [];
  const pods = new Map<Host, Pod>();
  const suite = failureAware();
  const check = suite.check;
  // -v=1: each retry is logged (at debug level after the first), so the test can time the backoff.
  const flags = [`--etcd-prefix=${prefix}`, '--healthz-ip=127.0.0.1', `--healthz-port=${HEALTHZ}`, '-v=1'];
  const subnetOf = (h: Host) => h.subnetEnv().subnet.replace(/\.1\/24$/, '.0/24');
  const keyOf = (subnet: string) => `${prefix}/subnets/${subnet.replace('/', '-')}`;
  const metric = (h: Host, name: string) => scrape(h, HEALTHZ).get(name) ?? NaN;

  const addHost = async (name: string, ip: string) => {
    const h = new Host(lab, name, ip);
    hosts.push(h);
    h.startFlanneld(etcd.endpoint, flags);
    pods.set(h, await h.waitReadyWithPod());
    return h;
  };
  /** The peers etcd says `h` should have: every lease but its own, as the table prints them. */
  const expectedPeers = (h: Host) =>
    [...etcd.list(`${prefix}/subnets/`)]
      .map(([k, v]) => [k.slice(`${prefix}/subnets/`.length).replace('-', '/'), JSON.parse(v).PublicIP as string])
      .filter(([s]) => s !== subnetOf(h))
      .map(([s, ip]) => `${s} -> ${ip}:8285`)
      .sort();

  before(async () => {
    ({ lab, etcd } = await startLab());
    // DEFAULT_CONFIG: real hosts lease below 198.19.200.0; the fake leases this file writes live above, so none overwrites a host's.
    writeConfig(etcd, prefix);
    await Promise.all([addHost('e1', '198.18.0.41'), addHost('e2', '198.18.0.42')]);
  });
  after(async () => {
    if (suite.failed) dumpLogs(hosts, etcd);
    await lab?.destroy();
  });

  check('all of etcd down for 60 s: no ping lost, etcd_up 0 and logged, still ready, recovers by itself', async () => {
    const [e1, e2] = hosts;
    const a = pods.get(e1)!;
    const b = pods.get(e2)!;
    assert.equal(a.ping(b.ip, 2, 0.1).received, 2);
    const resyncsBefore = metric(e1, RESYNCS);
    const logFrom = fs.statSync(e1.daemon!.logFile).size;
    // 5 pings a second through the outage and the recovery (70 s).
    const ping = execStatus(['ip', 'netns', 'exec', a.ns, 'ping', '-n', '-c', '350', '-i', '0.2', '-W', '1', b.ip], { timeoutMs: 120_000 });
    await etcd.stop('SIGKILL');
    const downAt = Date.now();
    await waitFor('flannel_etcd_up 0 on both hosts', () => hosts.every((h) => metric(h, ETCD_UP) === 0), 20_000, 250);
    await e1.daemon!.waitForLog(/etcd is unreachable/, 5000, logFrom);
    // Ready all along: forwarding works without etcd.
    let notReady = 0;
    while (Date.now() - downAt < 60_000) {
      for (const h of hosts) if (httpStatus(h, '/readyz') !== 200) notReady++;
      await sleep(2000);
    }
    assert.equal(notReady, 0, '/readyz stayed 200 while etcd was down');
    // Retries back off: 1 s doubling to 10 s makes about eight attempts in a minute, not sixty, and
    // the pauses between them grow. (Each attempt logs: an error the first time, debug after.)
    const attemptTimes = e1
      .daemon!.log()
      .slice(logFrom)
      .split('\n')
      .filter((l) => l.includes("Couldn't list subnet leases"))
      .map((l) => Date.parse((JSON.parse(l) as { time: string }).time));
    const pauses = attemptTimes.slice(1).map((t, i) => t - attemptTimes[i]);
    console.log(`etcd down 60 s: ${attemptTimes.length} list attempts, pauses ${pauses.map((p) => (p / 1000).toFixed(1)).join(', ')} s`);
    assert.ok(attemptTimes.length >= 4 && attemptTimes.length <= 12, `${attemptTimes.length} attempts in 60 s`);
    assert.ok(pauses[0] < 3000 && Math.max(...pauses) >= 8000 && Math.max(...pauses) <= 16_000, `pauses grow from ~1 s to ~10 s: ${pauses.join(', ')} ms`);
    await etcd.start();
    await waitFor('flannel_etcd_up back to 1', () => hosts.every((h) => metric(h, ETCD_UP) === 1), 30_000, 250);
    await waitFor('a full resync', () => metric(e1, RESYNCS) > resyncsBefore, 15_000, 250);
    await e1.daemon!.waitForLog(/etcd is reachable/, 5000, logFrom);
    const r = await ping;
    assert.match(r.stdout, / 0% packet loss/, `no ping lost during the outage:\n${r.stdout.slice(-400)}`);
    assert.ok(hosts.every((h) => h.daemon!.running));
    const loud = e1
      .daemon!.log()
      .slice(logFrom)
      .split('\n')
      .filter((l) => /"level":"(warn|error)"/.test(l)).length;
    assert.ok(loud <= 10, `a minute without etcd logs a few warnings and errors, not one per retry (${loud})`);
    // Leases still in etcd and in the tables, both ways.
    assert.deepEqual((await adminLeases(e1.adminSocket)).peers, expectedPeers(e1));
  });

  check('a daemon cut off from etcd while a lease is deleted and another created resyncs when the path returns', async () => {
    const [e1, e2] = hosts;
    const a = pods.get(e1)!;
    const resyncsBefore = metric(e1, RESYNCS);
    const logFrom = fs.statSync(e1.daemon!.logFile).size;
    cutEtcd(e1, etcd.ip, true);
    try {
      // The cut is silent (packets dropped, no reset): the daemon has to notice by itself.
      await waitFor('e1 to notice it lost etcd', () => metric(e1, ETCD_UP) === 0, 40_000, 500);
      // While e1 cannot see: e2 leaves (its lease deleted), e3 joins.
      const e2Subnet = subnetOf(e2);
      assert.equal(await e2.daemon!.stop('SIGTERM'), 0);
      etcd.del(keyOf(e2Subnet));
      const e3 = await addHost('e3', '198.18.0.43');
      const e3Pod = pods.get(e3)!;
      // e1 still forwards on what it knew: e2's subnet is still in its table.
      assert.ok(
        (await adminLeases(e1.adminSocket)).peers.some((p) => p.startsWith(e2Subnet)),
        'stale lease kept while cut off',
      );
      cutEtcd(e1, etcd.ip, false);
      await waitFor('e1 resyncs', () => metric(e1, RESYNCS) > resyncsBefore && metric(e1, ETCD_UP) === 1, 40_000, 250);
      await e1.daemon!.waitForLog(new RegExp(`Subnet removed: ${e2Subnet.replace(/\./g, '\\.')}`), 10_000, logFrom);
      await e1.daemon!.waitForLog(new RegExp(`Subnet added: ${subnetOf(e3).replace(/\./g, '\\.')}`), 10_000, logFrom);
      assert.deepEqual((await adminLeases(e1.adminSocket)).peers, expectedPeers(e1));
      const r = a.ping(e3Pod.ip, 3, 0.1);
      assert.equal(r.received, 3, r.output);
      const gone = a.ping(pods.get(e2)!.ip, 1, 0.2, 1);
      assert.match(gone.output, /Destination Net Unreachable/, gone.output);
    } finally {
      if (e1.tryExec(['iptables', '-w', '-C', 'OUTPUT', '-d', etcd.ip, '-j', 'DROP']).status === 0) cutEtcd(e1, etcd.ip, false);
    }
  });

  check('history compacted while a daemon is cut off: it lists afresh instead of resuming a stale revision', async () => {
    const e1 = hosts[0];
    const e3 = hosts[2];
    const resyncsBefore = metric(e1, RESYNCS);
    const logFrom = fs.statSync(e1.daemon!.logFile).size;
    cutEtcd(e1, etcd.ip, true);
    const fake = (i: number) => `198.19.${200 + i}.0/24`;
    try {
      await waitFor('e1 to notice it lost etcd', () => metric(e1, ETCD_UP) === 0, 40_000, 500);
      // Churn behind its back: 20 leases appear, 10 of them go again, then the history is compacted away.
      for (let i = 0; i < 20; i++) etcd.putWithLease(keyOf(fake(i)), `{"PublicIP":"198.18.1.${i + 1}","PublicIPv6":null,"BackendType":"udp"}`, 600);
      for (let i = 0; i < 20; i += 2) etcd.del(keyOf(fake(i)));
      const rev = etcd.compact();
      assert.ok(rev > 0);
      cutEtcd(e1, etcd.ip, false);
      await waitFor('e1 resyncs', () => metric(e1, RESYNCS) > resyncsBefore && metric(e1, ETCD_UP) === 1, 40_000, 250);
      await waitFor('e1 has the ten surviving fake leases', async () => (await adminLeases(e1.adminSocket)).peers.length === expectedPeers(e1).length, 10_000, 200);
      assert.deepEqual((await adminLeases(e1.adminSocket)).peers, expectedPeers(e1));
      // Changes after the resync arrive through the new watch (started past the compaction).
      etcd.del(keyOf(fake(1)));
      await e1.daemon!.waitForLog(/Subnet removed: 198\.19\.201\.0\/24/, 10_000, logFrom);
      assert.deepEqual((await adminLeases(e1.adminSocket)).peers, expectedPeers(e1));
      const log = e1.daemon!.log().slice(logFrom);
      assert.ok((log.match(/Lease watch ended/g) ?? []).length <= 1, 'one watch ended (the cut), no resume-and-fail loop');
      assert.equal(pods.get(e1)!.ping(pods.get(e3)!.ip, 2, 0.1).received, 2);
      assert.deepEqual(leaseKeys(etcd, prefix).length, expectedPeers(e1).length + 1);
    } finally {
      if (e1.tryExec(['iptables', '-w', '-C', 'OUTPUT', '-d', etcd.ip, '-j', 'DROP']).status === 0) cutEtcd(e1, etcd.ip, false);
    }
  });
});
