// How daemons come up: waiting for a config, refusing a bad one without
// touching etcd, and sizing flannel0 from the underlay MTU.

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import type { Lab } from '../../src/lab/lab';
import type { Etcd } from '../../src/lab/etcd';
import { Host } from '../../src/lab/host';
import { sleep, waitFor } from '../../src/lab/sh';
import { FIXTURES, failureAware, NETWORK, dumpLogs, fixture, leaseKeys, startLab, uniquePrefix, writeConfig } from '../lib/helpers';

describe('bring-up', () => {
  let lab: Lab;
  let etcd: Etcd;
  const hosts: Host[] = [];
  const suite = failureAware();
  const check = suite.check;
  let nextIp = 10;
  const newHost = (mtu = 1500) => {
    const h = new Host(lab, `b${nextIp}`, `198.18.0.${nextIp++}`, mtu);
    hosts.push(h);
    return h;
  };

  before(async () => {
    ({ lab, etcd } = await startLab());
  });
  after(async () => {
    if (suite.failed) dumpLogs(hosts, etcd);
    await lab?.destroy();
  });

  check('daemons started before the config wait, write nothing, then come up', async () => {
    const prefix = uniquePrefix('late-config');
    const a = newHost();
    const b = newHost();
    for (const h of [a, b]) h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`]);
    await a.daemon!.waitForLog(/network config/i, 10_000);
    await sleep(1500);
    assert.deepEqual(leaseKeys(etcd, prefix), [], 'no lease while there is no config');
    assert.ok(a.daemon!.running && b.daemon!.running);
    writeConfig(etcd, prefix);
    const [ea, eb] = await Promise.all([a.waitReady(), b.waitReady()]);
    assert.notEqual(ea.subnet, eb.subnet);
    a.setupBridge(ea);
    b.setupBridge(eb);
    const pa = a.addPod(ea);
    const pb = b.addPod(eb);
    assert.equal(pa.ping(pb.ip, 2, 0.1).received, 2);
  });

  check('a bad config is logged with the field named; the daemon waits and then uses a good one', async () => {
    const prefix = uniquePrefix('bad-config');
    writeConfig(etcd, prefix, { Network: NETWORK, SubnetLen: 31, Backend: { Type: 'udp' } });
    const h = newHost();
    h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`]);
    await h.daemon!.waitForLog(/SubnetLen/, 10_000);
    writeConfig(etcd, prefix, '{"Network": "198.19.0.0/16", "Backend": {"Type": "udp", "Port": "x"}}');
    await h.daemon!.waitForLog(/Backend\.Port/, 10_000);
    assert.deepEqual(leaseKeys(etcd, prefix), []);
    writeConfig(etcd, prefix, { Network: NETWORK, SubnetLen: 26, Backend: { Type: 'udp' } });
    const env = await h.waitReady();
    assert.match(env.subnet, /^198\.19\.\d+\.\d+\/26$/);
    assert.equal(leaseKeys(etcd, prefix).length, 1);
  });

  check('an underlay MTU of 9000 gives flannel0 8972 and a transfer works', async () => {
    const prefix = uniquePrefix('jumbo');
    writeConfig(etcd, prefix);
    lab.setSwitchMtu(9000);
    const a = newHost(9000);
    const b = newHost(9000);
    for (const h of [a, b]) h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`]);
    const [ea, eb] = await Promise.all([a.waitReady(), b.waitReady()]);
    assert.equal(ea.mtu, 8972);
    assert.match(a.exec(['ip', 'link', 'show', 'flannel0']), /mtu 8972/);
    a.setupBridge(ea);
    b.setupBridge(eb);
    const pa = a.addPod(ea);
    const pb = b.addPod(eb);
    // A full-size ping proves 8972-byte packets cross unfragmented.
    const r = pa.tryExec(['ping', '-n', '-c', '2', '-i', '0.1', '-M', 'do', '-s', String(8972 - 28), pb.ip]);
    assert.match(r.stdout, /2 received/, r.stdout + r.stderr);
    const sink = spawn('ip', ['netns', 'exec', pb.ns, process.execPath, path.join(FIXTURES, 'tcp-check.js'), 'sink', pb.ip, '5002']);
    let out = '';
    sink.stdout.on('data', (d) => (out += d));
    await waitFor('sink', () => out.includes('listening'));
    const sent = fixture(pa.ns, 'tcp-check', ['send', pb.ip, '5002', String(16 * 1024 * 1024)], 60_000);
    await waitFor('sink result', () => /sha256/.test(out), 30_000);
    assert.equal(/sha256 (\w+)/.exec(out)![1], /sha256 (\w+)/.exec(sent)![1]);
  });
});
