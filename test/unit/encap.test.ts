import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseTable } from '../../src/routes/lease-table';
import { Ip4Net, parseIp4 } from '../../src/routes/ip4';
import { PacketBatch, D_ADDR, D_LEN, D_OFF, D_PORT, DESC_WORDS, READ_INFO_SUPER } from '../../src/tun/batch';
import { Counters, DropReason } from '../../src/encap/counters';
import { Encapsulator } from '../../src/encap/encapsulator';
import { Decapsulator } from '../../src/encap/decapsulator';
import { IcmpResponder } from '../../src/encap/icmp';
import * as ip from '../../src/encap/ipv4';
import { countSent } from '../../src/encap/pump';

function packet(src: string, dst: string, opts: { ttl?: number; proto?: number; len?: number; frag?: number } = {}): Buffer {
  const len = opts.len ?? 48;
  const b = Buffer.alloc(len);
  b[0] = 0x45;
  b.writeUInt16BE(len, 2);
  b.writeUInt16BE(opts.frag ?? 0, 6);
  b[8] = opts.ttl ?? 64;
  b[9] = opts.proto ?? ip.PROTO_UDP;
  ip.writeAddr(b, 12, parseIp4(src));
  ip.writeAddr(b, 16, parseIp4(dst));
  ip.setHeaderChecksum(b, 0);
  return b;
}

function fill(batch: PacketBatch, items: { bytes: Buffer; from?: string; len?: number }[]): void {
  items.forEach((it, i) => {
    const off = i * batch.slotSize;
    it.bytes.copy(batch.data, off);
    batch.desc[i * DESC_WORDS + D_OFF] = off;
    batch.desc[i * DESC_WORDS + D_LEN] = it.len ?? it.bytes.length;
    batch.desc[i * DESC_WORDS + D_ADDR] = it.from ? parseIp4(it.from) | 0 : 0;
    batch.desc[i * DESC_WORDS + D_PORT] = 8285;
  });
  batch.count = items.length;
}

const len = (b: PacketBatch, i: number) => b.desc[i * DESC_WORDS + D_LEN];

function setup() {
  const table = new LeaseTable(8285);
  table.setLocalSubnet(Ip4Net.parse('198.19.1.0/24'));
  table.upsert({ subnet: Ip4Net.parse('198.19.2.0/24'), publicIp: parseIp4('198.18.0.2'), backendType: 'udp' });
  table.upsert({ subnet: Ip4Net.parse('198.19.3.0/24'), publicIp: parseIp4('198.18.0.3'), backendType: 'udp' });
  const counters = new Counters();
  const icmp = new IcmpResponder();
  return { table, counters, icmp, encap: new Encapsulator(table, counters, icmp), decap: new Decapsulator(table, counters) };
}

test('encap: each packet goes to the peer owning its destination, TTL decremented, bytes otherwise unchanged', () => {
  const { encap, counters } = setup();
  const b = new PacketBatch(8, 2048);
  const p1 = packet('198.19.1.2', '198.19.2.5');
  const p2 = packet('198.19.1.2', '198.19.3.9', { len: 100 });
  fill(b, [{ bytes: p1 }, { bytes: p2 }]);
  assert.equal(encap.process(b), 2);
  assert.equal(b.desc[D_ADDR] >>> 0, parseIp4('198.18.0.2'));
  assert.equal(b.desc[D_PORT], 8285);
  assert.equal(b.desc[DESC_WORDS + D_ADDR] >>> 0, parseIp4('198.18.0.3'));
  const out = b.data.subarray(0, p1.length);
  assert.equal(out[8], 63);
  assert.ok(ip.headerChecksumOk(out, 0));
  assert.deepEqual(out.subarray(12), p1.subarray(12), 'addresses and payload untouched');
  assert.equal(encap.lastBytes, 148);
  assert.equal(counters.totalDrops(), 0);
});

test('encap: one decision per TSO super-packet: its marked segments follow the first to the same peer', () => {
  const { encap, counters } = setup();
  const b = new PacketBatch(16, 2048);
  // Rows as a TSO read leaves them: a 3-segment super-packet to 198.19.2.5
  // (D_PORT of its first row = 3), a plain packet, then a 2-segment one with no route.
  const seg = (dst: string, len: number) => packet('198.19.1.2', dst, { len, proto: ip.PROTO_TCP });
  fill(b, [
    { bytes: seg('198.19.2.5', 1472) },
    { bytes: seg('198.19.2.5', 1472) },
    { bytes: seg('198.19.2.5', 600) },
    { bytes: seg('198.19.3.9', 52) },
    { bytes: seg('198.19.9.9', 1472) },
    { bytes: seg('198.19.9.9', 100) },
  ]);
  const marks = [3, 0, 0, 0, 2, 0];
  for (const [i, m] of marks.entries()) b.desc[i * DESC_WORDS + D_PORT] = m;
  b.readInfo[READ_INFO_SUPER] = 2;
  assert.equal(encap.process(b), 4);
  for (let i = 0; i < 3; i++) {
    assert.equal(b.desc[i * DESC_WORDS + D_ADDR] >>> 0, parseIp4('198.18.0.2'), `segment ${i}`);
    assert.equal(b.desc[i * DESC_WORDS + D_PORT], 8285);
    const off = b.desc[i * DESC_WORDS + D_OFF];
    assert.equal(b.data[off + 8], 63, `segment ${i}: TTL decremented`);
    assert.ok(ip.headerChecksumOk(b.data, off), `segment ${i}: header checksum`);
    assert.equal(encap.verdicts[i], 0);
  }
  assert.equal(b.desc[3 * DESC_WORDS + D_ADDR] >>> 0, parseIp4('198.18.0.3'));
  // The unroutable super-packet: every segment dropped and counted.
  assert.equal(len(b, 4), 0);
  assert.equal(len(b, 5), 0);
  assert.equal(counters.txDrops[DropReason.no_route], 2);
  assert.equal(encap.lastBytes, 1472 * 2 + 600 + 52);
  // Every segment is tagged with its peer, for per-peer counting after the send (countSent).
  assert.deepEqual([...encap.peerOf.subarray(0, 3)], [0, 0, 0], 'every segment carries the peer of its super-packet');
  const bytes = countSent(b, 6, encap.peerOf, counters, 0);
  assert.equal(bytes, 1472 * 2 + 600 + 52);
  assert.equal(counters.peerWord(0, 0), 3, 'per-peer packets count every segment');
  assert.equal(counters.peerWord(0, 1), 1472 * 2 + 600);
  // A mark never reaches past the batch.
  fill(b, [{ bytes: seg('198.19.2.5', 1472) }, { bytes: seg('198.19.2.5', 1472) }]);
  b.desc[D_PORT] = 40;
  b.desc[DESC_WORDS + D_PORT] = 0;
  assert.equal(encap.process(b), 2);
  // Without a TSO read (readInfo clear), D_PORT means nothing: every row decided on its own.
  b.readInfo[READ_INFO_SUPER] = 0;
  fill(b, [{ bytes: seg('198.19.2.5', 1472) }, { bytes: seg('198.19.9.9', 1472) }]);
  b.desc[D_PORT] = 2;
  assert.equal(encap.process(b), 1);
  assert.equal(len(b, 1), 0);
});

test('encap: drops and counts malformed, IPv6, local, non-unicast and TTL-expiring packets', () => {
  const { encap, counters } = setup();
  const b = new PacketBatch(16, 2048);
  const v6 = Buffer.alloc(60);
  v6[0] = 0x60;
  const good = packet('198.19.1.2', '198.19.2.5');
  fill(b, [
    { bytes: good, len: 10 }, // truncated
    { bytes: v6 },
    { bytes: good, len: good.length - 4 }, // total length mismatch
    { bytes: packet('198.19.1.2', '198.19.1.7') }, // our own subnet
    { bytes: packet('198.19.1.2', '224.0.0.5') },
    { bytes: packet('198.19.1.2', '198.19.2.5', { ttl: 1 }) },
    { bytes: good },
  ]);
  assert.equal(encap.process(b), 1);
  for (let i = 0; i < 6; i++) assert.equal(len(b, i), 0, `packet ${i} dropped`);
  assert.equal(len(b, 6), good.length);
  const d = counters.drops('tx');
  assert.equal(d.truncated, 1);
  assert.equal(d.not_ipv4, 1);
  assert.equal(d.bad_total_len, 1);
  assert.equal(d.local_destination, 1);
  assert.equal(d.non_unicast_destination, 1);
  assert.equal(d.ttl_expired, 1);
});

test('encap: no route answers with ICMP net unreachable from the lost destination, rate limited per source', () => {
  const { encap, counters, icmp } = setup();
  const b = new PacketBatch(32, 2048);
  const lost = packet('198.19.1.2', '198.19.9.9', { proto: ip.PROTO_TCP });
  fill(
    b,
    Array.from({ length: 30 }, () => ({ bytes: lost })),
  );
  assert.equal(encap.process(b), 0);
  assert.equal(counters.drops('tx').no_route, 30);
  assert.equal(icmp.batch.count, 10, 'burst of 10 per source');
  assert.equal(counters.icmpSent, 10);
  assert.equal(counters.icmpSuppressed, 20);
  const r = icmp.batch.data.subarray(0, icmp.batch.desc[D_LEN]);
  assert.equal(ip.checkHeader(r, 0, r.length), ip.HeaderCheck.OK);
  assert.ok(ip.headerChecksumOk(r, 0));
  assert.equal(ip.protocol(r, 0), ip.PROTO_ICMP);
  assert.equal(ip.src(r, 0), parseIp4('198.19.9.9'));
  assert.equal(ip.dst(r, 0), parseIp4('198.19.1.2'));
  assert.equal(r[20], 3, 'destination unreachable');
  assert.equal(r[21], 0, 'net unreachable');
  assert.equal(ip.internetChecksum(r, 20, r.length - 20), 0, 'ICMP checksum verifies');
  assert.deepEqual(r.subarray(28, 48), lost.subarray(0, 20), 'quotes the original header');
});

test('encap: no ICMP error about an ICMP error or a non-first fragment', () => {
  const { encap, icmp } = setup();
  const b = new PacketBatch(4, 2048);
  const err = packet('198.19.1.2', '198.19.9.9', { proto: ip.PROTO_ICMP });
  err[20] = 3;
  ip.setHeaderChecksum(err, 0);
  fill(b, [{ bytes: err }, { bytes: packet('198.19.1.2', '198.19.9.9', { frag: 100 }) }]);
  encap.process(b);
  assert.equal(icmp.batch.count, 0);
});

test('decap: admits only packets from a lease holder to a unicast address of our subnet', () => {
  const { decap, counters } = setup();
  const b = new PacketBatch(16, 2048);
  const good = packet('198.19.2.5', '198.19.1.2');
  const badSum = Buffer.from(good);
  badSum[11] ^= 0xff;
  fill(b, [
    { bytes: good, from: '198.18.0.2' },
    { bytes: good, from: '198.18.0.77' }, // not a lease holder
    { bytes: packet('198.19.2.5', '198.19.3.2'), from: '198.18.0.2' }, // not our subnet
    { bytes: packet('198.19.2.5', '198.19.1.255'), from: '198.18.0.2' }, // our broadcast
    { bytes: packet('198.19.2.5', '198.19.1.0'), from: '198.18.0.2' }, // flannel0's own address: host traffic
    { bytes: badSum, from: '198.18.0.2' },
    { bytes: good, from: '198.18.0.2', len: -1 }, // truncated by the socket
    { bytes: packet('198.19.2.5', '198.19.1.2', { ttl: 1 }), from: '198.18.0.3' },
  ]);
  assert.equal(decap.process(b), 2);
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6, 7].map((i) => len(b, i) > 0),
    [true, false, false, false, true, false, false, false],
  );
  const d = counters.drops('rx');
  assert.equal(d.unknown_source, 1);
  assert.equal(d.not_for_this_host, 2);
  assert.equal(d.bad_checksum, 1);
  assert.equal(d.oversize, 1);
  assert.equal(d.ttl_expired, 1);
  assert.equal(b.data[8], 63, 'TTL decremented on receive too');
  assert.ok(ip.headerChecksumOk(b.data, 0));
});

test('decap: a removed lease stops admitting its datagrams', () => {
  const { decap, table } = setup();
  const b = new PacketBatch(2, 2048);
  fill(b, [{ bytes: packet('198.19.2.5', '198.19.1.2'), from: '198.18.0.2' }]);
  assert.equal(decap.process(b), 1);
  table.remove(Ip4Net.parse('198.19.2.0/24'));
  fill(b, [{ bytes: packet('198.19.2.5', '198.19.1.2'), from: '198.18.0.2' }]);
  assert.equal(decap.process(b), 0);
});
