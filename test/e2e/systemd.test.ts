// systemd readiness (sd_notify) for real: a unix datagram socket bound by a
// small python3 receiver in the host's namespace (as systemd would bind
// $NOTIFY_SOCKET), flanneld started with NOTIFY_SOCKET. The receiver stats
// subnet.env the moment each message arrives, so the test sees whether
// READY=1 came after THIS start wrote the file (an old file from the last run
// proves nothing: it is pre-dated here).

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Lab } from '../../src/lab/lab';
import type { Etcd } from '../../src/lab/etcd';
import { Host } from '../../src/lab/host';
import { waitFor } from '../../src/lab/sh';
import { dumpLogs, failureAware, startLab, uniquePrefix, writeConfig } from '../lib/helpers';

const RECEIVER = `
import json, os, socket, sys, time
addr, subnet_file = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + addr[1:] if addr.startswith('@') else addr)
print(json.dumps({"listening": True}), flush=True)
while True:
    m = s.recv(4096).decode()
    try:
        mtime, text = os.stat(subnet_file).st_mtime_ns, open(subnet_file).read()
    except FileNotFoundError:
        mtime, text = None, None
    print(json.dumps({"msg": m, "mtime": mtime, "subnetEnv": text}), flush=True)
`;

interface Received {
  msg: string;
  mtime: number | null;
  subnetEnv: string | null;
}

class NotifyReceiver {
  readonly log: string;
  constructor(
    lab: Lab,
    host: Host,
    readonly address: string,
    name: string,
  ) {
    this.log = path.join(host.dir, `${name}.log`);
    lab.spawnIn(host.ns, ['python3', '-u', '-c', RECEIVER, address, host.subnetFile], this.log);
  }
  messages(): Received[] {
    const text = fs.existsSync(this.log) ? fs.readFileSync(this.log, 'utf8') : '';
    return text
      .split('\n')
      .filter((l) => l.startsWith('{"msg"'))
      .map((l) => JSON.parse(l) as Received);
  }
  listening(): Promise<unknown> {
    return waitFor('notify receiver', () => fs.existsSync(this.log) && fs.readFileSync(this.log, 'utf8').includes('"listening"'), 5000);
  }
  wait(re: RegExp, timeoutMs = 15_000): Promise<Received> {
    return waitFor(`sd_notify ${re}`, () => this.messages().find((m) => re.test(m.msg)), timeoutMs, 50);
  }
}

describe('sd_notify: READY=1 and STOPPING=1 over NOTIFY_SOCKET', () => {
  let lab: Lab;
  let etcd: Etcd;
  let h: Host;
  const prefix = uniquePrefix('systemd');
  const suite = failureAware();
  const check = suite.check;

  before(async () => {
    ({ lab, etcd } = await startLab());
    writeConfig(etcd, prefix);
    h = new Host(lab, 'sd1', '198.18.0.61');
  });
  after(async () => {
    if (suite.failed) dumpLogs([h], etcd);
    await lab?.destroy();
  });

  check('cold start, path socket: READY=1 only after this start wrote subnet.env; STOPPING=1 on SIGTERM', async () => {
    // An old subnet.env, as the last run left it (an hour old).
    fs.writeFileSync(h.subnetFile, 'FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.77.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n');
    const old = new Date(Date.now() - 3600_000);
    fs.utimesSync(h.subnetFile, old, old);
    const rx = new NotifyReceiver(lab, h, path.join(h.dir, 'notify.sock'), 'notify-path');
    await rx.listening();
    const startedNs = BigInt(Date.now() - 50) * 1_000_000n;
    h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`], { ...process.env, NOTIFY_SOCKET: rx.address });
    const ready = await rx.wait(/^READY=1/);
    assert.ok(ready.mtime !== null && BigInt(ready.mtime) > startedNs, `subnet.env was written by this start before READY=1 (mtime ${ready.mtime}, start ${startedNs})`);
    assert.match(ready.msg, /\nSTATUS=ready: lease 198\.19\.\d+\.0\/24/);
    assert.equal(ready.subnetEnv, fs.readFileSync(h.subnetFile, 'utf8'));
    assert.match(h.daemon!.log(), /flanneld is ready/);
    assert.equal(rx.messages().filter((m) => /^READY=1/.test(m.msg)).length, 1, 'READY=1 once');
    assert.equal(await h.daemon!.stop('SIGTERM'), 0);
    await rx.wait(/^STOPPING=1$/, 5000);
  });

  check('warm restart with etcd unreachable, abstract socket: READY=1 while forwarding on the saved leases, subnet.env confirmed', async () => {
    assert.ok(fs.existsSync(`${h.subnetFile}.peers.json`), 'the clean stop saved the restart state');
    const before = fs.readFileSync(h.subnetFile, 'utf8');
    const mtimeBefore = fs.statSync(h.subnetFile).mtimeMs;
    const rx = new NotifyReceiver(lab, h, `@flannel-ts-test-${process.pid}`, 'notify-abstract');
    await rx.listening();
    // Nothing listens at 198.18.0.250: etcd is unreachable for this whole start.
    const from = h.daemon!.log().length;
    h.startFlanneld('http://198.18.0.250:2379', [`--etcd-prefix=${prefix}`], { ...process.env, NOTIFY_SOCKET: rx.address });
    const ready = await rx.wait(/^READY=1/);
    assert.match(ready.msg, /STATUS=forwarding on the \d+ leases saved at the last stop; confirming with etcd/);
    assert.equal(ready.subnetEnv, before, 'subnet.env confirmed, not changed');
    assert.equal(fs.statSync(h.subnetFile).mtimeMs, mtimeBefore);
    assert.doesNotMatch(h.daemon!.log().slice(from), /flanneld is ready/, 'etcd never answered: the cold path has not finished');
    const up = h.tryExec(['ip', '-o', 'link', 'show', 'flannel0']);
    assert.match(up.stdout, /UP/, 'flannel0 forwards');
    assert.equal(await h.daemon!.stop('SIGTERM'), 0);
    await rx.wait(/^STOPPING=1$/, 5000);
  });

  check('a NOTIFY_SOCKET nobody listens on: one FLANNEL_ERR_SD_NOTIFY warning, flanneld runs on', async () => {
    const from = h.daemon!.log().length;
    h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`], { ...process.env, NOTIFY_SOCKET: path.join(h.dir, 'nobody.sock') });
    await h.daemon!.waitForLog(/flanneld is ready/, 15_000, from);
    assert.match(h.daemon!.log().slice(from), /FLANNEL_ERR_SD_NOTIFY: could not tell systemd READY/);
    assert.equal(await h.daemon!.stop('SIGTERM'), 0);
  });
});
