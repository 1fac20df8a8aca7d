// Fifty daemons started at the same moment against one etcd. They are
// started before the network config exists, so all fifty wait in the same
// one-second retry loop and then race for subnets within the same second
// once the config is written: every lease creation is a transaction that
// fails if the key exists, so a lost race is retried, never a duplicate.

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { Lab } from '../../src/lab/lab';
import type { Etcd } from '../../src/lab/etcd';
import { Host, type Pod } from '../../src/lab/host';
import { waitFor } from '../../src/lab/sh';
import { failureAware, startLab, uniquePrefix, writeConfig } from '../lib/helpers';

const N = 50;

describe(`${N} daemons started at once against one etcd`, () => {
  let lab: Lab;
  let etcd: Etcd;
  const prefix = uniquePrefix('fifty');
  const hosts: Host[] = [];
  const suite = failureAware();
  const check = suite.check;

  before(async () => {
    ({ lab, etcd } = await startLab());
    for (let i = 1; i <= N; i++) hosts.push(new Host(lab, `s${i}`, `198.18.1.${i}`));
  });
  after(async () => {
    if (suite.failed) {
      for (const h of hosts.filter((x) => !x.daemon?.running || !/flanneld is ready/.test(x.daemon.log()))) console.error(`--- ${h.name}\n${h.daemon?.log().slice(-2500)}`);
      console.error(etcd?.logTail());
    }
    await lab?.destroy();
  });

  check('fifty distinct subnets, no duplicate, no crash, every host reachable', async () => {
    const t0 = Date.now();
    for (const h of hosts) h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`]);
    // All of them up and polling for the config...
    await waitFor('every daemon waiting for the config', () => hosts.every((h) => /Couldn't fetch network config/.test(h.daemon!.log())), 90_000, 250);
    const started = Date.now() - t0;
    // ...then the config appears and all fifty acquire within the same second.
    writeConfig(etcd, prefix);
    const t1 = Date.now();
    await Promise.all(hosts.map((h) => h.waitReady(60_000)));
    const acquired = Date.now() - t1;

    const crashed = hosts.filter((h) => !h.daemon!.running).map((h) => h.name);
    assert.deepEqual(crashed, [], 'no daemon exited');
    const subnets = hosts.map((h) => h.subnetEnv().subnet);
    assert.equal(new Set(subnets).size, N, `${N} distinct subnets in the subnet files`);
    // etcd holds exactly one lease per host, each carrying that host's IP.
    const leases = etcd.list(`${prefix}/subnets/`);
    assert.equal(leases.size, N, `${N} leases in etcd`);
    const byIp = new Map([...leases].map(([k, v]) => [JSON.parse(v).PublicIP as string, k.slice(`${prefix}/subnets/`.length)]));
    assert.equal(byIp.size, N, 'one lease per public IP');
    for (const h of hosts) assert.equal(byIp.get(h.ip), h.subnetEnv().subnet.replace(/\.1\/24$/, '.0-24'), `${h.name}'s lease is its subnet`);
    const races = hosts.filter((h) => /taken by another node a moment ago/.test(h.daemon!.log())).length;

    // A pod on every host; the first host's pod reaches each of them.
    const pods: Pod[] = hosts.map((h) => {
      h.setupBridge();
      return h.addPod();
    });
    const from = pods[0];
    const t2 = Date.now();
    for (const p of pods.slice(1)) {
      await waitFor(`${from.ip} reaches ${p.ip} (${p.host.name})`, () => from.ping(p.ip, 1, 0.2, 1).received === 1, 15_000, 100);
    }
    // And the last host's pod reaches the first: tables are complete both ways.
    assert.equal(pods[N - 1].ping(from.ip, 1, 0.2, 2).received, 1);
    console.log(
      `${N} daemons: all waiting for the config ${started} ms after the spawn; all ready ${acquired} ms after it was written (${races} lost a race and retried); ${N - 1} pods reached in ${Date.now() - t2} ms`,
    );
    assert.deepEqual(
      hosts.filter((h) => !h.daemon!.running).map((h) => h.name),
      [],
    );
  });
});
