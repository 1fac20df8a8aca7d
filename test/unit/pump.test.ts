// The pump against channel fakes of flannel0 and the socket
// (test/lib/channel-ports.ts): its budget and drain, ICMP write-back, and
// exact accounting when a send or write goes only part of the way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counters, DropReason } from '../../src/encap/counters';
import { Pump } from '../../src/encap/pump';
import * as ip from '../../src/encap/ipv4';
import { Ip4Net, parseIp4 } from '../../src/routes/ip4';
import { LeaseTable } from '../../src/routes/lease-table';
import { ChannelTun, ChannelUdp } from '../lib/channel-ports';
import { udpPacket } from '../lib/packets';

const PEER_B = parseIp4('198.18.0.2');
const PEER_C = parseIp4('198.18.0.3');

function setup(opts: { batchSize?: number; budget?: number } = {}) {
  const table = new LeaseTable(8285);
  table.setLocalSubnet(Ip4Net.parse('198.19.1.0/24'));
  table.upsert({ subnet: Ip4Net.parse('198.19.2.0/24'), publicIp: PEER_B, backendType: 'udp' });
  table.upsert({ subnet: Ip4Net.parse('198.19.3.0/24'), publicIp: PEER_C, backendType: 'udp' });
  const tun = new ChannelTun();
  const udp = new ChannelUdp();
  const counters = new Counters();
  const pump = new Pump(tun, udp, table, counters, opts);
  const peerIndex = (pub: number) => table.peerByAddress(pub)!.index;
  return { table, tun, udp, counters, pump, peerIndex };
}

const toB = (i: number, size = 0) => udpPacket('198.19.1.2', '198.19.2.5', 1000 + i, Buffer.alloc(10 + size));

test('pump: one wake-up reads at most `budget` batches; the rest waits for the next wake-up', () => {
  const { tun, udp, counters, pump } = setup({ batchSize: 4, budget: 3 });
  for (let i = 0; i < 20; i++) tun.inbound.push(toB(i));
  pump.pumpTun();
  assert.equal(tun.reads, 3, 'three batches, then back to the wait');
  assert.equal(udp.sent.length, 12);
  assert.equal(tun.inbound.length, 8, 'left for the next wake-up (level-triggered)');
  assert.equal(counters.batches, 3);
  pump.pumpTun();
  assert.equal(udp.sent.length, 20);
  assert.equal(tun.inbound.length, 0);
  // Packets leave in the order they were read, to the owning peer's port 8285.
  assert.deepEqual(
    udp.sent.map((d) => d.bytes.readUInt16BE(22)),
    Array.from({ length: 20 }, (_, i) => 1000 + i),
  );
  assert.ok(udp.sent.every((d) => d.addr === PEER_B && d.port === 8285));
});

test('pump: a read that empties the queue ends the wake-up at once (drain)', () => {
  const { tun, udp, pump } = setup({ batchSize: 8, budget: 8 });
  for (let i = 0; i < 5; i++) tun.inbound.push(toB(i));
  pump.pumpTun();
  assert.equal(tun.reads, 1, 'no second read after the queue said it was empty');
  assert.equal(udp.sent.length, 5);
  pump.pumpTun(); // a spurious wake-up: one empty read, nothing sent
  assert.equal(tun.reads, 2);
  assert.equal(udp.sent.length, 5);
});

test('pump: the UDP side stops at the first empty receive and at the budget', () => {
  const { tun, udp, counters, pump } = setup({ batchSize: 2, budget: 2 });
  for (let i = 0; i < 7; i++) udp.inbound.push({ bytes: udpPacket('198.19.2.5', '198.19.1.2', 2000 + i), addr: PEER_B, port: 8285 });
  pump.pumpUdp();
  assert.equal(udp.recvs, 2);
  assert.equal(tun.written.length, 4);
  pump.pumpUdp();
  pump.pumpUdp();
  assert.equal(tun.written.length, 7);
  assert.equal(counters.rxPackets, 7);
  assert.equal(tun.written[0][8], 63, 'TTL decremented on the way in');
});

test('pump: a packet without a route is answered with ICMP net unreachable, written back into flannel0', () => {
  const { tun, udp, counters, pump } = setup();
  const lost = udpPacket('198.19.1.2', '198.19.77.7', 53);
  tun.inbound.push(lost, toB(1));
  pump.pumpTun();
  assert.equal(udp.sent.length, 1, 'the routable packet still goes');
  assert.equal(counters.txDrops[DropReason.no_route], 1);
  assert.equal(counters.icmpSent, 1);
  assert.equal(tun.written.length, 1);
  const icmp = tun.written[0];
  assert.equal(ip.protocol(icmp, 0), ip.PROTO_ICMP);
  assert.equal(ip.dst(icmp, 0), parseIp4('198.19.1.2'), 'to the sender');
  assert.equal(icmp[20], 3, 'destination unreachable');
  assert.equal(icmp[21], 0, 'net unreachable');
  assert.ok(ip.headerChecksumOk(icmp, 0));
  assert.deepEqual(icmp.subarray(28, 48), lost.subarray(0, 20), 'quotes the dropped packet’s header');
});

test('pump: a partial send counts exactly what left: packets, bytes, per-peer, and the failed rows as send_failed', () => {
  const { tun, udp, counters, pump, peerIndex } = setup({ batchSize: 16 });
  const packets = [toB(0, 100), toB(1, 200), udpPacket('198.19.1.2', '198.19.3.9', 7, Buffer.alloc(300)), toB(3, 400), udpPacket('198.19.1.2', '198.19.3.9', 8, Buffer.alloc(500))];
  tun.inbound.push(...packets);
  udp.refuse = (row) => row === 1 || row === 4; // one datagram to each peer fails
  pump.pumpTun();
  const sentBytes = [0, 2, 3].reduce((s, i) => s + packets[i].length, 0);
  assert.equal(counters.txPackets, 3);
  assert.equal(counters.txBytes, sentBytes, 'bytes of the datagrams that went, not of the whole batch (nor none of it)');
  assert.equal(counters.txDrops[DropReason.send_failed], 2);
  const b = peerIndex(PEER_B);
  const c = peerIndex(PEER_C);
  assert.equal(counters.peerWord(b, 0), 2, 'peer B: two of its three went');
  assert.equal(counters.peerWord(b, 1), packets[0].length + packets[3].length);
  assert.equal(counters.peerWord(c, 0), 1, 'peer C: one of its two went');
  assert.equal(counters.peerWord(c, 1), packets[2].length);
  // The next batch, all sent, adds on top.
  udp.refuse = () => false;
  tun.inbound.push(toB(9, 50));
  pump.pumpTun();
  assert.equal(counters.txPackets, 4);
  assert.equal(counters.txBytes, sentBytes + toB(9, 50).length);
});

test('pump: a partial write into flannel0 counts exactly what was written, per peer too', () => {
  const { tun, udp, counters, pump, peerIndex } = setup({ batchSize: 16 });
  const fromB = udpPacket('198.19.2.5', '198.19.1.2', 1, Buffer.alloc(100));
  const fromC = udpPacket('198.19.3.9', '198.19.1.2', 2, Buffer.alloc(200));
  udp.inbound.push({ bytes: fromB, addr: PEER_B, port: 8285 }, { bytes: fromC, addr: PEER_C, port: 8285 }, { bytes: fromB, addr: PEER_B, port: 8285 });
  tun.refuse = (row) => row === 1;
  pump.pumpUdp();
  assert.equal(counters.rxPackets, 2);
  assert.equal(counters.rxBytes, 2 * fromB.length);
  assert.equal(counters.rxDrops[DropReason.tun_write_failed], 1);
  assert.equal(counters.peerWord(peerIndex(PEER_B), 2), 2);
  assert.equal(counters.peerWord(peerIndex(PEER_B), 3), 2 * fromB.length);
  assert.equal(counters.peerWord(peerIndex(PEER_C), 2), 0, 'the refused datagram is not counted for its peer');
});

test('pump: the batch-size histogram counts one entry per batch at its size', () => {
  const { tun, pump } = setup({ batchSize: 4, budget: 8 });
  for (let i = 0; i < 6; i++) tun.inbound.push(toB(i));
  pump.pumpTun();
  assert.equal(pump.batchSizes[4], 1);
  assert.equal(pump.batchSizes[2], 1);
});
