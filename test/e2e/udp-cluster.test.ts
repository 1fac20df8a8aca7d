// Three hosts running flanneld with the udp backend against one real etcd:
// the core promises of the product, checked as a user would see them.

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Lab } from '../../src/lab/lab';
import type { Etcd } from '../../src/lab/etcd';
import { Host, type Pod } from '../../src/lab/host';
import { sleep, waitFor } from '../../src/lab/sh';
import { FIXTURES, assertPodsPingAcrossHosts, failureAware, dumpLogs, fixture, leaseKeys, schedSliceNs, scrape, startLab, threadsNamed, uniquePrefix, writeConfig } from '../lib/helpers';
import { udpPacket } from '../lib/packets';

const HEALTHZ = 9101;

describe('udp backend: three hosts, one etcd', () => {
  let lab: Lab;
  let etcd: Etcd;
  const prefix = uniquePrefix('cluster');
  const hosts: Host[] = [];
  const pods = new Map<string, Pod[]>();
  const suite = failureAware();
  const check = suite.check;

  const start = (h: Host) => h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`, '--healthz-ip=127.0.0.1', `--healthz-port=${HEALTHZ}`]);
  const bringUp = async (h: Host, nPods = 2) => {
    const env = await h.waitReady();
    h.setupBridge(env);
    pods.set(
      h.name,
      Array.from({ length: nPods }, () => h.addPod(env)),
    );
  };

  before(async () => {
    ({ lab, etcd } = await startLab());
    writeConfig(etcd, prefix);
    for (let i = 1; i <= 3; i++) hosts.push(new Host(lab, `h${i}`, `198.18.0.${i}`));
    hosts.forEach(start);
    await Promise.all(hosts.map((h) => bringUp(h)));
  });

  after(async () => {
    if (suite.failed) dumpLogs(hosts, etcd);
    await lab?.destroy();
  });

  check("each host has flannel's subnet.env, lease and flannel0", () => {
    const subnets = new Set<string>();
    for (const h of hosts) {
      const env = h.subnetEnv();
      assert.equal(env.network, '198.19.0.0/16');
      assert.match(env.subnet, /^198\.19\.\d+\.1\/24$/);
      assert.equal(env.mtu, 1472);
      assert.equal(env.ipMasq, false);
      subnets.add(env.subnet);
      const net = env.subnet.replace(/\.1\/24$/, '.0');
      const value = etcd.get(`${prefix}/subnets/${net}-24`);
      assert.equal(value, `{"PublicIP":"${h.ip}","PublicIPv6":null,"BackendType":"udp"}`);
      const addr = h.exec(['ip', '-o', 'addr', 'show', 'dev', 'flannel0']);
      assert.match(addr, new RegExp(`inet ${net.replace(/\./g, '\\.')}/32`));
      assert.doesNotMatch(addr, /inet6/, 'no IPv6 address on flannel0');
      assert.match(h.exec(['ip', 'link', 'show', 'flannel0']), /mtu 1472/);
      assert.match(h.exec(['ip', 'route', 'show', '198.19.0.0/16']), /dev flannel0/);
    }
    assert.equal(subnets.size, 3, 'three distinct subnets');
    // The lease is attached to a 24 h etcd lease.
    // Lease IDs are 64-bit: read them from the JSON text, not through JSON.parse's doubles.
    const ids = [...etcd.ctl('get', `${prefix}/subnets/`, '--prefix', '-w', 'json').matchAll(/"lease":(\d+)/g)].map((m) => BigInt(m[1]));
    assert.equal(ids.length, 3, 'every key carries an etcd lease');
    for (const id of ids) {
      const ttl = etcd.ctl('lease', 'timetolive', id.toString(16));
      const m = /remaining\((\d+)s\)/.exec(ttl);
      assert.ok(m && Number(m[1]) > 86000 && Number(m[1]) <= 86400, `lease TTL about 24 h: ${ttl}`);
    }
  });

  check('pods ping each other across every pair of hosts', () => assertPodsPingAcrossHosts(hosts, pods, 3));

  check("the data-plane thread runs as flanneld-dp at nice -10 while mostly idle, with the kernel's slice; nothing locked by default", () => {
    // What an operator sees with ps -L / top -H and /proc (the --dataplane-* defaults).
    const pid = hosts[0].daemon!.pid;
    const tids = threadsNamed(pid, 'flanneld-dp');
    assert.equal(tids.length, 1, 'one flanneld-dp thread');
    const stat = fs.readFileSync(`/proc/${pid}/task/${tids[0]}/stat`, 'utf8');
    assert.equal(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]), -10, 'nice of flanneld-dp');
    const mainStat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    assert.equal(Number(mainStat.slice(mainStat.lastIndexOf(')') + 2).split(' ')[16]), 0, 'the control plane keeps nice 0');
    assert.equal(schedSliceNs(pid, tids[0]), schedSliceNs(pid, String(pid)), "flanneld-dp keeps the kernel's slice, as the main thread has it"); // undefined before EEVDF
    const locked = /^VmLck:\s*(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    assert.equal(locked?.[1], '0', 'nothing locked without --dataplane-mlock');
  });

  check('a host talks to remote pods from its flannel0 address', () => {
    const r = hosts[0].tryExec(['ping', '-n', '-c', '2', '-i', '0.1', '-W', '2', pods.get('h2')![0].ip]);
    assert.match(r.stdout, /2 received/, r.stdout + r.stderr);
  });

  check('after traffic the idle data-plane thread keeps rehearsing (warm-up), boosted', async () => {
    // Within a minute of the last packet (the ping just above) the thread
    // wakes every --dataplane-warmup-ms (20) to keep its path resident; the
    // priority governor must not stop that.
    const warmups = () => scrape(hosts[0], HEALTHZ).get('flannel_dataplane_warmups_total') ?? 0;
    const first = warmups();
    await sleep(1000);
    const m = scrape(hosts[0], HEALTHZ);
    const n = (m.get('flannel_dataplane_warmups_total') ?? 0) - first;
    assert.ok(n >= 10 && n <= 150, `warm-ups in about 1 s: ${n} (about 50 expected at 20 ms; a busy loop would be far more)`);
    assert.equal(m.get('flannel_dataplane_boosted'), 1, 'an idle thread stays at --dataplane-nice');
  });

  check('a 64 MiB TCP transfer arrives intact', async () => {
    const dst = pods.get('h3')![0];
    const src = pods.get('h1')![0];
    const sink = spawn('ip', ['netns', 'exec', dst.ns, process.execPath, path.join(FIXTURES, 'tcp-check.js'), 'sink', dst.ip, '5001']);
    let sinkOut = '';
    sink.stdout.on('data', (d) => (sinkOut += d));
    await waitFor('sink listening', () => sinkOut.includes('listening'));
    const sent = fixture(src.ns, 'tcp-check', ['send', dst.ip, '5001', String(64 * 1024 * 1024)], 120_000);
    await waitFor('sink result', () => /sha256/.test(sinkOut), 30_000);
    const got = /bytes (\d+) sha256 (\w+)/.exec(sinkOut)!;
    const want = /bytes (\d+) sha256 (\w+)/.exec(sent)!;
    assert.equal(got[1], String(64 * 1024 * 1024));
    assert.equal(got[2], want[2]);
  });

  check('a host that joins late is reachable within a second', async () => {
    const h4 = new Host(lab, 'h4', '198.18.0.4');
    hosts.push(h4);
    start(h4);
    await bringUp(h4, 1);
    const target = pods.get('h4')![0];
    // -w 1: one second from now for a reply to come back through the new lease.
    const r = pods.get('h1')![0].tryExec(['ping', '-n', '-c', '1', '-w', '1', target.ip]);
    assert.match(r.stdout, /1 received/, r.stdout);
  });

  check('a stand-in peer that speaks only the wire format is reachable', async () => {
    const ns = lab.addNamespace('wire');
    lab.plug(ns, 'eth0', '198.18.0.50/16');
    const subnet = '198.19.250.0/24';
    const peer = lab.spawnIn(ns, [process.execPath, path.join(FIXTURES, 'wire-peer.js'), '198.18.0.50', subnet], path.join(lab.dir, 'wire-peer.log'));
    // Register its lease as flannel does: a 24 h etcd lease, value without BackendType (old udp nodes).
    const grant = etcd.ctl('lease', 'grant', '86400');
    const id = /lease (\w+) granted/.exec(grant)![1];
    etcd.ctl('put', `${prefix}/subnets/198.19.250.0-24`, '{"PublicIP":"198.18.0.50","PublicIPv6":null}', `--lease=${id}`);
    const from = pods.get('h2')![0];
    await waitFor('ping through the stand-in peer', () => from.ping('198.19.250.7', 1, 0.2, 1).received === 1, 5000, 100);
    const r = from.ping('198.19.250.7', 5, 0.05);
    assert.equal(r.received, 5, r.output);
    peer.kill('SIGTERM');
    await new Promise((res) => peer.once('exit', res));
    const log = require('node:fs').readFileSync(path.join(lab.dir, 'wire-peer.log'), 'utf8') as string;
    assert.match(log, /seen \d+ bad 0/, 'every datagram was exactly one IPv4 packet');
    etcd.del(`${prefix}/subnets/198.19.250.0-24`);
  });

  /**
   * An inner source in h2's own subnet, as a real h2 pod would send. A fixed
   * overlay address could, once in a couple of hundred runs, fall in h1's own
   * random subnet, where the kernel drops it as a martian.
   */
  const h2PodSource = () => hosts[1].subnetEnv().subnet.replace(/\.1\/24$/, '.99');

  check('datagrams from a host without a lease never reach a pod', async () => {
    const h1 = hosts[0];
    const pod = pods.get('h1')![0];
    const ns = lab.addNamespace('stranger');
    lab.plug(ns, 'eth0', '198.18.0.9/16');
    const unknownSource = () => scrape(h1, HEALTHZ).get('flannel_dropped_packets_total{direction="rx",reason="unknown_source"}') ?? 0;
    const before = unknownSource();
    const listener = spawn('ip', ['netns', 'exec', pod.ns, process.execPath, path.join(FIXTURES, 'udp-count.js'), pod.ip, '9999']);
    let out = '';
    listener.stdout.on('data', (d) => (out += d));
    try {
      await waitFor('listener', () => out.includes('listening'));
      const pkt = udpPacket(h2PodSource(), pod.ip, 9999).toString('hex');
      fixture(ns, 'udp-inject', [h1.ip, '8285', '0', pkt, pkt, pkt]);
      // Positive control: the same packet from a lease holder (h2) does arrive.
      fixture(hosts[1].ns, 'udp-inject', [h1.ip, '8285', '0', pkt]);
      await waitFor('the lease holder’s datagram', () => out.includes('datagram 1 from'), 5000);
      await waitFor('three unknown_source drops', () => unknownSource() >= before + 3, 5000);
      // Give any stranger datagram that slipped through time to show up.
      await sleep(300);
    } finally {
      listener.stdin.end();
    }
    await waitFor('listener result', () => /received \d+/.test(out), 5000);
    assert.match(out, /received 1\b/, 'only the lease holder’s datagram reached the pod');
    assert.equal(unknownSource(), before + 3);
  });

  check('garbage from a peer is dropped, counted by reason, and the daemon stays up', async () => {
    const h1 = hosts[0];
    const pod = pods.get('h1')![0];
    const good = udpPacket(h2PodSource(), pod.ip, 9999);
    const v6 = Buffer.from(good);
    v6[0] = 0x65;
    const badIhl = Buffer.from(good);
    badIhl[0] = 0x43;
    const longer = Buffer.concat([good, Buffer.alloc(8)]);
    const badSum = Buffer.from(good);
    badSum[10] ^= 0x55;
    const before = scrape(h1, HEALTHZ);
    const key = (r: string) => `flannel_dropped_packets_total{direction="rx",reason="${r}"}`;
    fixture(hosts[1].ns, 'udp-inject', [h1.ip, '8285', '0', good.subarray(0, 12).toString('hex'), v6.toString('hex'), badIhl.toString('hex'), longer.toString('hex'), badSum.toString('hex'), '00']);
    const reasons = ['truncated', 'not_ipv4', 'bad_header_len', 'bad_total_len', 'bad_checksum'];
    let now = before;
    const delta = (r: string) => (now.get(key(r)) ?? 0) - (before.get(key(r)) ?? 0);
    // Wait until all six are counted (however loaded the machine), then a little longer for any extra.
    await waitFor(
      'six drops counted',
      () => {
        now = scrape(h1, HEALTHZ);
        return reasons.reduce((n, r) => n + delta(r), 0) >= 6;
      },
      5000,
      100,
    );
    await sleep(200);
    now = scrape(h1, HEALTHZ);
    assert.equal(delta('truncated'), 2);
    assert.equal(delta('not_ipv4'), 1);
    assert.equal(delta('bad_header_len'), 1);
    assert.equal(delta('bad_total_len'), 1);
    assert.equal(delta('bad_checksum'), 1);
    assert.ok(h1.daemon!.running);
    assert.equal(pods.get('h2')![0].ping(pod.ip, 2, 0.1).received, 2);
  });

  check("a stopped host whose lease is deleted disappears from the others' tables", async () => {
    const h4 = hosts.find((h) => h.name === 'h4')!;
    const net = h4.subnetEnv().subnet.replace(/\.1\/24$/, '.0');
    const target = pods.get('h4')![0];
    assert.equal(await h4.daemon!.stop('SIGTERM'), 0);
    // SIGTERM removes flannel0 and keeps the lease, as flannel does.
    assert.notEqual(h4.tryExec(['ip', 'link', 'show', 'flannel0']).status, 0, 'flannel0 removed');
    assert.ok(etcd.get(`${prefix}/subnets/${net}-24`), 'lease kept in etcd');
    etcd.del(`${prefix}/subnets/${net}-24`);
    await hosts[0].daemon!.waitForLog(new RegExp(`Subnet removed: ${net.replace(/\./g, '\\.')}/24`));
    const r = pods.get('h1')![0].ping(target.ip, 1, 0.2, 1);
    assert.equal(r.received, 0);
    assert.match(r.output, /Destination Net Unreachable/, r.output);
  });

  check('a running host whose lease is deleted takes it back', async () => {
    const h2 = hosts[1];
    const net = h2.subnetEnv().subnet.replace(/\.1\/24$/, '.0');
    const key = `${prefix}/subnets/${net}-24`;
    etcd.del(key);
    await waitFor('lease re-created', () => etcd.get(key) !== undefined, 10_000, 100);
    assert.equal(etcd.get(key), `{"PublicIP":"${h2.ip}","PublicIPv6":null,"BackendType":"udp"}`);
    assert.equal(pods.get('h1')![0].ping(pods.get('h2')![0].ip, 2, 0.1).received, 2);
  });

  check('kill -9 and restart: same subnet, reachable again', async () => {
    const h3 = hosts[2];
    const before = h3.subnetEnv().subnet;
    await h3.daemon!.stop('SIGKILL');
    start(h3);
    const env = await h3.waitReady();
    assert.equal(env.subnet, before);
    assert.equal(leaseKeys(etcd, prefix).filter((k) => k === before.replace(/\.1\/24$/, '.0-24')).length, 1);
    await waitFor('h1 pod reaches h3 pod again', () => pods.get('h1')![0].ping(pods.get('h3')![0].ip, 1, 0.2, 1).received === 1, 10_000, 100);
  });
});
