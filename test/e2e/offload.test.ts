// Offloads never change the wire: a node with every offload off (the
// --tun-offload, --tun-gro, --udp-gso, --udp-gro flags, as a stock flannel udp
// node would be) and nodes with all of them on move 256 MiB TCP transfers
// intact in both directions, and every datagram that reaches a receiver
// without UDP GRO is exactly one IPv4 packet within the overlay MTU.
//
// The capture is taken on the RECEIVER's eth0 with its switch port set to
// gso_max_segs 1: the lab's veths would otherwise carry a UDP GSO packet from
// the sender to the receiver's socket in one piece (as a capture on the
// sender's side also shows it); a real wire, like this port, cuts it into the
// datagrams it stands for. Those are what the capture checks.
//
// Network safety: namespaces of this suite's Lab only (removed in after()),
// underlay 198.18.0.0/16, overlay 198.19.0.0/16.

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Lab } from '../../src/lab/lab';
import type { Etcd } from '../../src/lab/etcd';
import { Host, type Pod } from '../../src/lab/host';
import { run, waitFor } from '../../src/lab/sh';
import { FIXTURES, dumpLogs, failureAware, fixture, scrape, startLab, uniquePrefix, writeConfig } from '../lib/helpers';
import { udpPacket } from '../lib/packets';

const HEALTHZ = 9102;
const MIB256 = 256 * 1024 * 1024;
const OFF = ['--tun-offload=false', '--tun-gro=false', '--udp-gso=false', '--udp-gro=false'];
const FEATURES = ['tun_tso', 'tun_gro', 'udp_gso', 'udp_gro'];

/** A TCP transfer of `bytes` from pod `src` to pod `dst` (tcp-check.js); the SHA-256 each end saw. */
async function transfer(src: Pod, dst: Pod, bytes: number, port: number): Promise<{ sent: string; got: string; bytes: number }> {
  const sink = spawn('ip', ['netns', 'exec', dst.ns, process.execPath, path.join(FIXTURES, 'tcp-check.js'), 'sink', dst.ip, String(port)]);
  let out = '';
  sink.stdout.on('data', (d) => (out += d));
  try {
    await waitFor('sink listening', () => out.includes('listening'));
    const sent = fixture(src.ns, 'tcp-check', ['send', dst.ip, String(port), String(bytes)], 180_000);
    await waitFor('sink result', () => /sha256/.test(out), 60_000);
    const got = /bytes (\d+) sha256 (\w+)/.exec(out)!;
    return { sent: /sha256 (\w+)/.exec(sent)![1], got: got[2], bytes: Number(got[1]) };
  } finally {
    sink.kill();
  }
}

/** The switch-side veth of a host's eth0 (its peer ifindex, looked up in the switch namespace). */
function switchPort(lab: Lab, h: Host): string {
  const link = h.exec(['ip', '-o', 'link', 'show', 'eth0']);
  const peer = /eth0@if(\d+)/.exec(link)?.[1];
  if (!peer) throw new Error(`no veth peer in: ${link}`);
  const all = run(['ip', '-n', lab.switchNs, '-o', 'link', 'show']);
  const m = new RegExp(`^${peer}: ([^:@]+)`, 'm').exec(all);
  if (!m) throw new Error(`ifindex ${peer} not in the switch namespace`);
  return m[1];
}

interface Datagram {
  /** UDP payload length (from the UDP header). */
  udpPayload: number;
  /** Inner IPv4 version and total length (first bytes of the payload). */
  innerVersion: number;
  innerTotal: number;
  /** Bytes on the wire (the frame's original length). */
  frame: number;
}

/** Datagrams in a pcap file (Ethernet, IPv4, UDP; snap length >= 62). */
function readPcap(file: string): Datagram[] {
  const b = fs.readFileSync(file);
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  if (u32(20) !== 1) throw new Error(`pcap link type ${u32(20)}, want Ethernet`);
  const out: Datagram[] = [];
  for (let o = 24; o + 16 <= b.length; ) {
    const incl = u32(o + 8);
    const orig = u32(o + 12);
    const p = o + 16;
    o = p + incl;
    if (incl < 62 || b.readUInt16BE(p + 12) !== 0x0800) continue;
    const ip = p + 14;
    const ihl = (b[ip] & 15) * 4;
    if (b[ip + 9] !== 17) continue;
    const udp = ip + ihl;
    const inner = udp + 8;
    out.push({ udpPayload: b.readUInt16BE(udp + 4) - 8, innerVersion: b[inner] >> 4, innerTotal: b.readUInt16BE(inner + 2), frame: orig });
  }
  return out;
}

describe('offloads: nodes with and without them interoperate, and the wire stays one packet per datagram', () => {
  let lab: Lab;
  let etcd: Etcd;
  const prefix = uniquePrefix('offload');
  const suite = failureAware();
  const check = suite.check;
  let on: Host; // every offload on (the defaults)
  let off: Host; // every offload off
  let on2: Host; // on as well: the fully offloaded pair is on + on2
  let tx: Host; // all on; its datagrams to `on` also come from a second source port (mixed-port interop)
  const pods = new Map<Host, Pod>();

  before(async () => {
    ({ lab, etcd } = await startLab());
    writeConfig(etcd, prefix);
    on = new Host(lab, 'on', '198.18.0.1');
    off = new Host(lab, 'off', '198.18.0.2');
    on2 = new Host(lab, 'on2', '198.18.0.3');
    tx = new Host(lab, 'tx', '198.18.0.4');
    const flags = ['--etcd-prefix=' + prefix, '--healthz-ip=127.0.0.1', `--healthz-port=${HEALTHZ}`];
    on.startFlanneld(etcd.endpoint, flags);
    off.startFlanneld(etcd.endpoint, [...flags, ...OFF]);
    on2.startFlanneld(etcd.endpoint, flags);
    tx.startFlanneld(etcd.endpoint, flags);
    for (const h of [on, off, on2, tx]) pods.set(h, await h.waitReadyWithPod());
    for (const [a, b] of [
      [on, off],
      [off, on],
      [on, on2],
      [tx, on],
    ]) {
      await waitFor(`${a.name} reaches ${b.name}`, () => pods.get(a)!.ping(pods.get(b)!.ip, 1, 0.2, 1).received === 1, 15_000, 100);
    }
  });

  after(async () => {
    if (suite.failed) dumpLogs([on, off, on2, tx].filter(Boolean), etcd);
    await lab?.destroy();
  });

  check('each daemon logs and exports the offloads it runs with', async () => {
    const m = await on.daemon!.waitForLog(/offloads: (TUN TSO [^"]*)/);
    console.log(`# on: ${m[1]}`);
    const onMetrics = scrape(on, HEALTHZ);
    const offMetrics = scrape(off, HEALTHZ);
    for (const f of FEATURES) {
      assert.equal(offMetrics.get(`flannel_offload_enabled{feature="${f}"}`), 0, `off: ${f}`);
      // This kernel (>= 5.x) takes every one of them; a refusal would read "off (refused by the kernel)".
      assert.equal(onMetrics.get(`flannel_offload_enabled{feature="${f}"}`), 1, `on: ${f}`);
    }
    await off.daemon!.waitForLog(/offloads: TUN TSO off, TUN GRO off, UDP GSO off, UDP GRO off/);
    // With both TUN offloads off flannel0 is a plain TUN, as stock flannel's.
    assert.match(off.exec(['ip', '-d', 'link', 'show', 'flannel0']), /vnet_hdr off/);
    assert.match(on.exec(['ip', '-d', 'link', 'show', 'flannel0']), /vnet_hdr on/);
  });

  check('256 MiB from the offloaded node to the plain one: intact, and every datagram one IPv4 packet within the MTU', async () => {
    const port = switchPort(lab, off);
    run(['ip', '-n', lab.switchNs, 'link', 'set', 'dev', port, 'gso_max_segs', '1']);
    const pcap = path.join(lab.dir, 'off-eth0.pcap');
    const tcpdumpLog = path.join(lab.dir, 'tcpdump.log');
    const cap = lab.spawnIn(off.ns, ['tcpdump', '-i', 'eth0', '-n', '-s', '96', '-B', '32768', '-U', '-w', pcap, 'udp and src host 198.18.0.1 and dst port 8285'], tcpdumpLog);
    await waitFor('tcpdump listening', () => fs.readFileSync(tcpdumpLog, 'utf8').includes('listening'), 10_000);
    const before = scrape(off, HEALTHZ);
    const r = await transfer(pods.get(on)!, pods.get(off)!, MIB256, 5001);
    cap.kill('SIGINT');
    await new Promise((res) => cap.once('exit', res));
    assert.equal(r.bytes, MIB256);
    assert.equal(r.got, r.sent, 'SHA-256 of what arrived = of what was sent');

    const dgrams = readPcap(pcap);
    const summary = fs.readFileSync(tcpdumpLog, 'utf8').trim().split('\n').slice(-3).join('; ');
    console.log(`# capture on the receiver: ${dgrams.length} datagrams (${summary})`);
    assert.ok(dgrams.length > 100_000, `the capture saw the transfer (${dgrams.length} datagrams)`);
    const bad = dgrams.filter((d) => d.innerVersion !== 4 || d.innerTotal !== d.udpPayload || d.udpPayload > 1472 || d.frame > 14 + 1500);
    assert.deepEqual(bad.slice(0, 5), [], `${bad.length} datagrams are not exactly one IPv4 packet within the 1472-byte overlay MTU`);
    assert.ok(dgrams.filter((d) => d.udpPayload === 1472).length > dgrams.length / 2, 'mostly full-sized segments');

    // The receiver (UDP GRO off) admitted every datagram: no drop for length or header.
    const now = scrape(off, HEALTHZ);
    for (const reason of ['truncated', 'not_ipv4', 'bad_header_len', 'bad_total_len', 'bad_checksum', 'oversize']) {
      const k = `flannel_dropped_packets_total{direction="rx",reason="${reason}"}`;
      assert.equal((now.get(k) ?? 0) - (before.get(k) ?? 0), 0, reason);
    }
  });

  check('256 MiB from the plain node to the offloaded one: intact', async () => {
    const r = await transfer(pods.get(off)!, pods.get(on)!, MIB256, 5002);
    assert.equal(r.bytes, MIB256);
    assert.equal(r.got, r.sent);
  });

  check('256 MiB between two offloaded nodes: intact, through super-packets both ways', async () => {
    const before = on.exec(['cat', '/sys/class/net/flannel0/statistics/tx_packets', '/sys/class/net/flannel0/statistics/tx_bytes']);
    const r = await transfer(pods.get(on)!, pods.get(on2)!, MIB256, 5003);
    assert.equal(r.bytes, MIB256);
    assert.equal(r.got, r.sent);
    const afterS = on.exec(['cat', '/sys/class/net/flannel0/statistics/tx_packets', '/sys/class/net/flannel0/statistics/tx_bytes']);
    const [p0, b0] = before.trim().split('\n').map(Number);
    const [p1, b1] = afterS.trim().split('\n').map(Number);
    const avg = (b1 - b0) / (p1 - p0);
    console.log(`# sender's flannel0: ${p1 - p0} skbs, ${avg.toFixed(0)} bytes each on average`);
    assert.ok(avg > 8 * 1472, `the kernel handed the sender super-packets (${avg.toFixed(0)} B per read)`);
    const rx = scrape(on2, HEALTHZ);
    assert.equal(rx.get('flannel_dropped_packets_total{direction="rx",reason="bad_total_len"}') ?? 0, 0);
  });

  check('a peer sending from a source port other than 8285 (as a second lane would) is admitted: only the source IP is checked', async () => {
    // A stock flannel peer ignores the source port, and so does flannel-ts:
    // extra lanes may send from ephemeral ports. tx (a lease holder) sends
    // three datagrams to on:8285 from an ephemeral port; they reach on's pod,
    // and on counts them for tx.
    const pod = pods.get(on)!;
    const key = `flannel_peer_packets_total{subnet="${tx.subnetEnv().subnet.replace(/\.1\/(\d+)$/, '.0/$1')}",public_ip="${tx.ip}",direction="rx"}`;
    const before = scrape(on, HEALTHZ).get(key) ?? 0;
    const listener = spawn('ip', ['netns', 'exec', pod.ns, process.execPath, path.join(FIXTURES, 'udp-count.js'), pod.ip, '9999']);
    let out = '';
    listener.stdout.on('data', (d) => (out += d));
    try {
      await waitFor('listener', () => out.includes('listening'));
      const src = tx.subnetEnv().subnet.replace(/\.1\/\d+$/, '.99');
      const pkt = udpPacket(src, pod.ip, 9999).toString('hex');
      fixture(tx.ns, 'udp-inject', [on.ip, '8285', '0', pkt, pkt, pkt]);
      await waitFor('three datagrams at the pod', () => (out.match(/^datagram \d+ from/gm) ?? []).length >= 3, 5000);
    } finally {
      listener.stdin.end();
    }
    await waitFor('per-peer rx counted', () => (scrape(on, HEALTHZ).get(key) ?? 0) >= before + 3, 5000, 100);
    // And the ordinary lane (8285 both ways) still carries a transfer both ways.
    for (const [a, b, port] of [
      [tx, on, 5004],
      [on, tx, 5005],
    ] as const) {
      const r = await transfer(pods.get(a)!, pods.get(b)!, 64 * 1024 * 1024, port);
      assert.equal(r.bytes, 64 * 1024 * 1024);
      assert.equal(r.got, r.sent, `${a.name} -> ${b.name}`);
    }
  });
});
