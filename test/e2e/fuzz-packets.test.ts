// The packet fuzzer against a live daemon (host A), from both sides:
//   rx: datagrams into A's UDP port from a lease holder (a fuzzer namespace
//       whose lease the test writes) and from a stranger without a lease;
//   tx: packets written into A's flannel0 with an AF_PACKET socket, so A reads
//       them exactly as generated, malformed ones included.
// The cases and the reference model are in test/lib/fuzz-cases.ts (seeded:
// FLANNEL_TS_FUZZ_SEED replays a run). What must hold, exactly:
//   - A never crashes;
//   - A's drop counters move by the model's tally, reason by reason, and its
//     forwarded counts by the number of cases to forward;
//   - what A writes into flannel0 is exactly the rx cases to forward (TTL one
//     less), nothing else; a pod sees only packets among those;
//   - what A sends goes only to lease holders: B (a real daemon, whose own
//     counters and flannel0 match the model for what A forwarded to it) and
//     the fuzzer (which receives exactly the tx cases for its subnet);
//   - a stranger gets nothing in, and no inner destination outside the
//     overlay gets anything out.
// Kernel-made packets out of flannel0 (replies, ICMP errors) are dropped in
// mangle POSTROUTING on A and B for the test, so the counters see only the
// fuzzer's packets. Namespaces have no default route.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Lab } from '../../src/lab/lab';
import type { Etcd } from '../../src/lab/etcd';
import { Host, type Pod } from '../../src/lab/host';
import { run, sleep, waitFor } from '../../src/lab/sh';
import { FIXTURES, NETWORK, dumpLogs, failureAware, scrape, startLab, uniquePrefix, writeConfig } from '../lib/helpers';
import { type FuzzEnv, INJECT_PY, type Verdict, expectRx, fmt4, forwarded, generate, ip4, isForwardOf, net4, readPcap, tally, txPeer } from '../lib/fuzz-cases';

const SEED = Number(process.env.FLANNEL_TS_FUZZ_SEED ?? 7071);
const RX_CASES = 3000;
const TX_CASES = 3000;
const HEALTHZ = 9151;
const PYTHON = '/usr/bin/python3';
const REASONS: Verdict[] = [
  'truncated',
  'not_ipv4',
  'bad_header_len',
  'bad_total_len',
  'bad_checksum',
  'ttl_expired',
  'no_route',
  'local_destination',
  'non_unicast_destination',
  'unknown_source',
  'not_for_this_host',
];

const FUZZER_IP = '198.18.0.60';
const STRANGER_IP = '198.18.0.61';
const A_SUBNET = '198.19.10.0/24';
const B_SUBNET = '198.19.20.0/24';
const FUZZER_SUBNET = '198.19.240.0/24';

describe('packet fuzzer against a live daemon', () => {
  let lab: Lab;
  let etcd: Etcd;
  let a: Host;
  let b: Host;
  let podA: Pod;
  let podB: Pod;
  let fuzzerNs: string;
  let strangerNs: string;
  const prefix = uniquePrefix('fuzz');
  const suite = failureAware();
  const check = suite.check;
  const work = () => path.join(lab.dir, 'fuzz');
  const envA: FuzzEnv = {
    network: net4(NETWORK),
    local: net4(A_SUBNET),
    peers: [
      { subnet: net4(B_SUBNET), publicIp: ip4('198.18.0.20') },
      { subnet: net4(FUZZER_SUBNET), publicIp: ip4(FUZZER_IP) },
    ],
  };
  const envB: FuzzEnv = { ...envA, local: net4(B_SUBNET), peers: [{ subnet: net4(A_SUBNET), publicIp: ip4('198.18.0.10') }, envA.peers[1]] };

  /** tcpdump writing a pcap inside `ns`; resolves once it is capturing. stop() flushes and returns the packets. */
  const capture = async (ns: string, name: string, args: string[]): Promise<{ stop: () => Promise<Buffer[]> }> => {
    const file = path.join(work(), `${name}.pcap`);
    const log = path.join(work(), `${name}.tcpdump.log`);
    const p: ChildProcess = lab.spawnIn(ns, ['tcpdump', '-n', '-U', '-s', '0', '-w', file, ...args], log);
    await waitFor(`tcpdump ${name} listening`, () => fs.existsSync(log) && /listening on/.test(fs.readFileSync(log, 'utf8')), 10_000, 50);
    return {
      stop: async () => {
        await sleep(300);
        const exited = new Promise((r) => p.once('exit', r));
        p.kill('SIGINT');
        await exited;
        return readPcap(fs.readFileSync(file));
      },
    };
  };

  const counters = (h: Host) => {
    const m = scrape(h, HEALTHZ);
    const get = (k: string) => m.get(k) ?? 0;
    const drops = (dir: string) => new Map(REASONS.map((r) => [r, get(`flannel_dropped_packets_total{direction="${dir}",reason="${r}"}`)]));
    return {
      tx: get('flannel_packets_total{direction="tx"}'),
      rx: get('flannel_packets_total{direction="rx"}'),
      txDrops: drops('tx'),
      rxDrops: drops('rx'),
      icmp: get('flannel_icmp_errors_total{result="sent"}') + get('flannel_icmp_errors_total{result="suppressed"}'),
    };
  };
  type Counts = ReturnType<typeof counters>;
  /** Counter movement between two scrapes as a tally (reason → count, plus 'forward'). */
  const delta = (before: Counts, now: Counts, dir: 'tx' | 'rx'): Map<Verdict, number> => {
    const m = new Map<Verdict, number>();
    const f = now[dir] - before[dir];
    if (f) m.set('forward', f);
    const d0 = dir === 'tx' ? before.txDrops : before.rxDrops;
    const d1 = dir === 'tx' ? now.txDrops : now.rxDrops;
    for (const r of REASONS) if (d1.get(r)! - d0.get(r)! !== 0) m.set(r, d1.get(r)! - d0.get(r)!);
    return m;
  };
  const sorted = (m: Map<Verdict, number>) => [...m].sort(([x], [y]) => x.localeCompare(y));
  const hexes = (bufs: Buffer[]) => bufs.map((x) => x.toString('hex')).sort();

  before(async () => {
    ({ lab, etcd } = await startLab());
    fs.mkdirSync(work());
    writeConfig(etcd, prefix);
    // Known subnets (each host's previous subnet, free in a new etcd), so a seed replays exactly.
    a = new Host(lab, 'fa', '198.18.0.10');
    b = new Host(lab, 'fb', '198.18.0.20');
    for (const [h, s] of [
      [a, A_SUBNET],
      [b, B_SUBNET],
    ] as const) {
      fs.writeFileSync(h.subnetFile, `FLANNEL_NETWORK=${NETWORK}\nFLANNEL_SUBNET=${s.replace('.0/24', '.1/24')}\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n`);
    }
    fuzzerNs = lab.addNamespace('fuzzer');
    lab.plug(fuzzerNs, 'eth0', `${FUZZER_IP}/16`);
    strangerNs = lab.addNamespace('stranger');
    lab.plug(strangerNs, 'eth0', `${STRANGER_IP}/16`);
    // The fuzzer holds a lease, as a stock flannel node would write it.
    etcd.putWithLease(`${prefix}/subnets/${FUZZER_SUBNET.replace('/', '-')}`, `{"PublicIP":"${FUZZER_IP}","PublicIPv6":null}`, 3600);
    for (const h of [a, b]) h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`, '--healthz-ip=127.0.0.1', `--healthz-port=${HEALTHZ}`]);
    for (const h of [a, b]) {
      const env = await h.waitReady();
      h.setupBridge(env);
    }
    podA = a.addPod();
    podB = b.addPod();
    assert.equal(a.subnetEnv().subnet, '198.19.10.1/24');
    assert.equal(b.subnetEnv().subnet, '198.19.20.1/24');
    await waitFor('A and B reach each other', () => podA.ping(podB.ip, 1, 0.2, 1).received === 1, 10_000, 100);
    await waitFor('A knows the fuzzer lease', () => /198\.19\.240\.0\/24 via 198\.18\.0\.60/.test(a.daemon!.log()), 10_000, 100);
    for (const h of [a, b]) h.exec(['iptables', '-w', '-t', 'mangle', '-I', 'POSTROUTING', '-o', 'flannel0', '-j', 'DROP']);
  });
  after(async () => {
    if (suite.failed) dumpLogs([a, b].filter(Boolean), etcd);
    await lab?.destroy();
  });

  check(`rx: ${RX_CASES} datagrams from a lease holder and a stranger (seed ${SEED})`, async () => {
    const cases = generate('rx', SEED, RX_CASES, envA, { favourite: [ip4(podA.ip)], strangerShare: 0.2 });
    const fromHolder = cases.filter((c) => c.fromLeaseHolder);
    const fromStranger = cases.filter((c) => !c.fromLeaseHolder);
    fs.writeFileSync(path.join(work(), 'rx-holder.hex'), fromHolder.map((c) => `${c.bytes.toString('hex')}\n`).join(''));
    fs.writeFileSync(path.join(work(), 'rx-stranger.hex'), fromStranger.map((c) => `${c.bytes.toString('hex')}\n`).join(''));
    const tunIn = await capture(a.ns, 'a-flannel0-rx', ['-i', 'flannel0', '-Q', 'in']);
    const podIn = await capture(podA.ns, 'pod-a-rx', ['-i', 'eth0', '-Q', 'in', 'ip']);
    const out = await capture(a.ns, 'a-eth0-rx', ['-i', 'eth0', '-Q', 'out', 'udp']);
    const before = counters(a);
    const send = (ns: string, file: string) =>
      run(['ip', 'netns', 'exec', ns, process.execPath, path.join(FIXTURES, 'fuzz-send.js'), 'send', path.join(work(), file), a.ip, '8285'], { timeoutMs: 60_000 });
    assert.match(send(fuzzerNs, 'rx-holder.hex'), new RegExp(`sent ${fromHolder.length}`));
    assert.match(send(strangerNs, 'rx-stranger.hex'), new RegExp(`sent ${fromStranger.length}`));
    const seen = (c: Counts) => c.rx - before.rx + [...c.rxDrops.values()].reduce((x, y) => x + y, 0) - [...before.rxDrops.values()].reduce((x, y) => x + y, 0);
    await waitFor('A to have judged every datagram', () => seen(counters(a)) >= cases.length, 15_000, 100).catch(() => undefined);
    const now = counters(a);
    const [written, atPod, sentOut] = [await tunIn.stop(), await podIn.stop(), await out.stop()];
    const want = tally(cases);
    console.log(`rx fuzz: ${[...want].map(([k, v]) => `${k} ${v}`).join(', ')}; pod saw ${atPod.length}`);
    assert.ok(a.daemon!.running, 'A is still running');
    assert.deepEqual(sorted(delta(before, now, 'rx')), sorted(want), 'rx counters move by the model');
    // Exactly the cases to forward went into flannel0, each with TTL one less.
    const toForward = cases.filter((c) => c.expect === 'forward');
    assert.deepEqual(hexes(written), hexes(toForward.map((c) => forwarded(c.bytes))), 'flannel0 received exactly the cases to forward');
    assert.ok(!fromStranger.some((c) => c.expect === 'forward'), "nothing of the stranger's is forwarded");
    // The pod sees only forwarded cases (IP ID is the case number), after one more hop in A's kernel.
    const key = (x: Buffer) => `${x.readUInt16BE(4)} ${fmt4(x.readUInt32BE(12))} ${fmt4(x.readUInt32BE(16))} ${x[9]}`;
    const allowed = new Set(toForward.map((c) => key(c.bytes)));
    // Host A's own kernel answers some cases (e.g. an echo request to its flannel0 address) from
    // its own addresses: those replies are A's, not forwarded by the daemon.
    const hostA = new Set([ip4('198.19.10.0'), ip4('198.19.10.1')]);
    const strays = atPod.filter((x) => x[0] >>> 4 === 4 && !allowed.has(key(x)) && !hostA.has(x.readUInt32BE(12)));
    assert.deepEqual(
      strays.map((x) => x.subarray(0, 20).toString('hex')),
      [],
      'the pod saw nothing the daemon should have dropped',
    );
    assert.ok(
      atPod.some((x) => allowed.has(key(x))),
      'forwarded cases did reach the pod',
    );
    // Receiving sends nothing: no datagram left A's UDP port (kernel replies are dropped for the test).
    assert.deepEqual(sentOut.filter((x) => x.readUInt16BE((x[0] & 15) * 4) === 8285).length, 0, 'A sent nothing while receiving');
  });

  // python3 only for its AF_PACKET socket (Node has none); Debian's python3-minimal is enough.
  const noPython = fs.existsSync(PYTHON) ? false : `${PYTHON} is needed to write raw packets into flannel0`;
  test(`tx: ${TX_CASES} packets written into flannel0 (seed ${SEED + 1})`, { skip: noPython }, async () => {
    try {
      await txFuzz();
    } catch (e) {
      suite.failed = true;
      throw e;
    }
  });
  const txFuzz = async () => {
    const cases = generate('tx', SEED + 1, TX_CASES, envA, { maxLen: 1472 }).filter((c) => c.bytes.length > 0);
    const sinkFile = path.join(work(), 'fuzzer-received.hex');
    const sink = lab.spawnIn(fuzzerNs, [process.execPath, path.join(FIXTURES, 'fuzz-send.js'), 'sink', FUZZER_IP, '8285', sinkFile], path.join(work(), 'sink.log'));
    await waitFor('sink listening', () => fs.existsSync(path.join(work(), 'sink.log')) && fs.readFileSync(path.join(work(), 'sink.log'), 'utf8').includes('listening'), 10_000, 50);
    const out = await capture(a.ns, 'a-eth0-tx', ['-i', 'eth0', '-Q', 'out', 'udp']);
    const bIn = await capture(b.ns, 'b-flannel0-tx', ['-i', 'flannel0', '-Q', 'in']);
    const beforeA = counters(a);
    const beforeB = counters(b);
    const input = cases.map((c) => `${c.ipv6 ? 6 : 4} ${c.bytes.toString('hex')}\n`).join('');
    const r = run(['ip', 'netns', 'exec', a.ns, PYTHON, '-c', INJECT_PY, 'flannel0'], { input, timeoutMs: 60_000 });
    assert.match(r, new RegExp(`sent ${cases.length}`));
    const judged = (c: Counts) => c.tx - beforeA.tx + [...c.txDrops.values()].reduce((x, y) => x + y, 0) - [...beforeA.txDrops.values()].reduce((x, y) => x + y, 0);
    await waitFor('A to have judged every packet', () => judged(counters(a)) >= cases.length, 15_000, 100).catch(() => undefined);
    await sleep(500);
    const nowA = counters(a);
    const nowB = counters(b);
    const [sentOut, bWritten] = [await out.stop(), await bIn.stop()];
    sink.kill('SIGTERM');
    await new Promise((res) => sink.once('exit', res));
    const want = tally(cases);
    console.log(`tx fuzz: ${[...want].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    assert.ok(a.daemon!.running && b.daemon!.running, 'both daemons still running');
    assert.deepEqual(sorted(delta(beforeA, nowA, 'tx')), sorted(want), 'tx counters move by the model');
    assert.equal(nowA.icmp - beforeA.icmp, want.get('no_route') ?? 0, 'every packet without a route answered or rate limited');
    const toForward = cases.filter((c) => c.expect === 'forward');
    // Outer datagrams only to lease holders' public IPs, port 8285.
    const leaseHolders = new Set(['198.18.0.20', FUZZER_IP]);
    const dests = new Set(sentOut.map((x) => `${fmt4(x.readUInt32BE(16))}:${x.readUInt16BE((x[0] & 15) * 4 + 2)}`));
    assert.deepEqual(
      [...dests].filter((d) => !leaseHolders.has(d.split(':')[0]) || !d.endsWith(':8285')),
      [],
      `A sent only to lease holders (${[...dests].join(', ')})`,
    );
    // The fuzzer (a lease holder) received exactly the cases for its subnet.
    const toFuzzer = toForward.filter((c) => txPeer(c.bytes, envA) === ip4(FUZZER_IP));
    const got = fs.existsSync(sinkFile) ? fs.readFileSync(sinkFile, 'utf8').split('\n').filter(Boolean) : [];
    assert.equal(got.length, toFuzzer.length, 'datagrams at the fuzzer');
    const remaining = [...toFuzzer];
    const unmatched = got.filter((hx) => {
      const i = remaining.findIndex((c) => isForwardOf(Buffer.from(hx, 'hex'), c.bytes));
      if (i < 0) return true;
      remaining.splice(i, 1);
      return false;
    });
    assert.deepEqual(unmatched, [], 'each datagram at the fuzzer is one case, as forwarded');
    // B judged what A forwarded to it by the same rules: its rx counters and its flannel0 match the model.
    const toB = toForward.filter((c) => txPeer(c.bytes, envA) === ip4('198.18.0.20')).map((c) => ({ ...c, bytes: forwardedAsSent(c.bytes) }));
    const wantB = new Map<Verdict, number>();
    for (const c of toB) {
      const v = expectRx(c.bytes, true, envB);
      wantB.set(v, (wantB.get(v) ?? 0) + 1);
    }
    assert.deepEqual(sorted(delta(beforeB, nowB, 'rx')), sorted(wantB), "B's rx counters move by the model");
    assert.deepEqual(hexes(bWritten), hexes(toB.filter((c) => expectRx(c.bytes, true, envB) === 'forward').map((c) => forwarded(c.bytes))), 'B wrote exactly those into its flannel0');
    // Both still forward normally.
    for (const h of [a, b]) h.exec(['iptables', '-w', '-t', 'mangle', '-D', 'POSTROUTING', '-o', 'flannel0', '-j', 'DROP']);
    assert.equal(podA.ping(podB.ip, 3, 0.1).received, 3);
  };
});

/**
 * What A puts on the wire for a tx case: TTL one less, the checksum updated
 * incrementally (a bad one stays bad, and isForwardOf accepts only that).
 */
function forwardedAsSent(orig: Buffer): Buffer {
  const o = Buffer.from(orig);
  const hc = o.readUInt16BE(10);
  const m = (o[8] << 8) | o[9];
  o[8]--;
  const m2 = (o[8] << 8) | o[9];
  let sum = (~hc & 0xffff) + (~m & 0xffff) + m2;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  o.writeUInt16BE(~sum & 0xffff, 10);
  return o;
}
