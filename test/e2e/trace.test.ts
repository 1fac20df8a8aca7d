// `flannel-ts trace` against a running daemon: known packets, the decisions
// printed for them, including a drop reason.

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Lab, REPO_ROOT } from '../../src/lab/lab';
import type { Etcd } from '../../src/lab/etcd';
import { Host, type Pod } from '../../src/lab/host';
import { execStatus } from '../../src/util/exec';
import { dumpLogs, failureAware, startLab, uniquePrefix, writeConfig } from '../lib/helpers';

describe('flannel-ts trace', () => {
  let lab: Lab;
  let etcd: Etcd;
  const hosts: Host[] = [];
  const pods: Pod[] = [];
  const suite = failureAware();

  before(async () => {
    ({ lab, etcd } = await startLab());
    const prefix = uniquePrefix('trace');
    writeConfig(etcd, prefix);
    for (let i = 1; i <= 2; i++) hosts.push(new Host(lab, `t${i}`, `198.18.0.${30 + i}`));
    for (const h of hosts) h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`]);
    for (const h of hosts) pods.push(await h.waitReadyWithPod());
  });
  after(async () => {
    if (suite.failed) dumpLogs(hosts, etcd);
    await lab?.destroy();
  });

  /** Starts `flannel-ts trace` on t1 and resolves once the daemon has attached it (not after a guessed delay). */
  const trace = async (args: string[]) => {
    const daemon = hosts[0].daemon!;
    const from = fs.statSync(daemon.logFile).size;
    const running = execStatus(['ip', 'netns', 'exec', hosts[0].ns, process.execPath, path.join(REPO_ROOT, 'bin/flannel-ts'), 'trace', `--admin-socket=${hosts[0].adminSocket}`, ...args], {
      timeoutMs: 20_000,
    });
    await daemon.waitForLog(/Trace attached/, 15_000, from);
    return { done: running }; // wrapped: returning the promise itself would make the caller wait for the trace to end
  };

  suite.check('prints the peer chosen for each echo request and the reply that came back', async () => {
    const { done: running } = await trace(['--host', pods[1].ip, '--proto', 'icmp', '--count', '4', '--json']);
    assert.equal(pods[0].ping(pods[1].ip, 2, 0.2).received, 2);
    const r = await running;
    assert.equal(r.status, 0, r.stderr);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(events.length, 4);
    const tx = events.filter((e) => e.direction === 'tx');
    const rx = events.filter((e) => e.direction === 'rx');
    assert.equal(tx.length, 2);
    assert.equal(rx.length, 2);
    for (const e of tx) {
      assert.equal(e.decision, 'forwarded');
      assert.equal(e.inner.src, pods[0].ip);
      assert.equal(e.inner.dst, pods[1].ip);
      assert.equal(e.inner.icmp.type, 8);
      assert.equal(e.outer.dst, hosts[1].ip);
      assert.equal(e.outer.dstPort, 8285);
      assert.equal(e.peer.publicIp, hosts[1].ip);
      assert.equal(e.outer.udpLength, 8 + e.inner.length, 'the whole inner packet is the UDP payload');
    }
    for (const e of rx) {
      assert.equal(e.decision, 'forwarded');
      assert.equal(e.inner.icmp.type, 0);
      assert.equal(e.outer.src, hosts[1].ip);
    }
  });

  suite.check('shows the drop reason for a packet with no lease', async () => {
    const { done: running } = await trace(['--drops', '--count', '1']);
    pods[0].ping('198.19.254.9', 1, 0.2, 1);
    const r = await running;
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /tx DROP no_route\s+198\.19\.\d+\.\d+ > 198\.19\.254\.9 ICMP echo-request/);
  });

  suite.check('the admin socket is root only (mode 0600)', () => {
    assert.equal(fs.statSync(hosts[0].adminSocket).mode & 0o777, 0o600);
  });

  suite.check('a missing socket is a clear error', async () => {
    const r = await execStatus([process.execPath, path.join(REPO_ROOT, 'bin/flannel-ts'), 'trace', `--admin-socket=${lab.dir}/nope.sock`], { timeoutMs: 10_000 });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot reach flanneld's admin socket .*nope\.sock/);
  });
});
