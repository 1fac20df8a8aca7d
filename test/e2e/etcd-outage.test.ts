// etcd is only the control plane: with it stopped, existing traffic flows on
// the last known leases, and the daemons catch up by themselves when it
// returns. This test stops etcd, so it runs its own.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lab } from '../../src/lab/lab';
import type { Etcd } from '../../src/lab/etcd';
import { Host, type Pod } from '../../src/lab/host';
import { sleep, waitFor } from '../../src/lab/sh';
import { execStatus } from '../../src/util/exec';
import { dumpLogs, scrape, startLab, uniquePrefix, writeConfig } from '../lib/helpers';

const HEALTHZ = 9102;

describe('etcd outage', () => {
  let lab: Lab;
  let etcd: Etcd;
  const hosts: Host[] = [];
  const pods: Pod[] = [];
  const prefix = uniquePrefix('outage');
  let failed = false;

  before(async () => {
    ({ lab, etcd } = await startLab());
    writeConfig(etcd, prefix);
    for (let i = 1; i <= 2; i++) {
      const h = new Host(lab, `o${i}`, `198.18.0.${20 + i}`);
      hosts.push(h);
      h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`, '--healthz-ip=127.0.0.1', `--healthz-port=${HEALTHZ}`]);
    }
    for (const h of hosts) pods.push(await h.waitReadyWithPod());
  });
  after(async () => {
    if (failed) dumpLogs(hosts, etcd);
    await lab?.destroy();
  });

  test('traffic keeps flowing for 10 s without etcd, and the daemons recover when it returns', async () => {
    try {
      assert.equal(pods[0].ping(pods[1].ip, 2, 0.1).received, 2);
      // Ping through the whole outage: 120 pings, 0.1 s apart (12 s).
      const pingDone = execStatus(['ip', 'netns', 'exec', pods[0].ns, 'ping', '-n', '-c', '120', '-i', '0.1', '-W', '1', pods[1].ip], { timeoutMs: 30_000 });
      await etcd.stop('SIGKILL');
      const down = await waitFor('etcd_up to drop to 0', () => scrape(hosts[0], HEALTHZ).get('flannel_etcd_up') === 0, 15_000, 200).catch(() => false);
      await sleep(10_000);
      await etcd.start();
      const ping = await pingDone;
      assert.match(ping.stdout, / 0% packet loss/, ping.stdout);
      assert.ok(down, 'the daemon noticed etcd was unreachable (flannel_etcd_up 0)');
      assert.ok(hosts.every((h) => h.daemon!.running));
      // Recovery: a lease written after etcd returns reaches the daemons' tables.
      const grant = etcd.ctl('lease', 'grant', '600');
      const id = /lease (\w+) granted/.exec(grant)![1];
      etcd.ctl('put', `${prefix}/subnets/198.19.251.0-24`, '{"PublicIP":"198.18.0.99","PublicIPv6":null}', `--lease=${id}`);
      await hosts[0].daemon!.waitForLog(/Subnet added: 198\.19\.251\.0\/24/, 30_000);
      await waitFor('etcd_up back to 1', () => scrape(hosts[0], HEALTHZ).get('flannel_etcd_up') === 1, 15_000, 200);
    } catch (e) {
      failed = true;
      throw e;
    }
  });
});
