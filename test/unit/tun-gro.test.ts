// User-space GRO before the TUN write (src/tun/native/tun_gro.c), checked
// through groPlan: what tunWrite would write, unit by unit, without a syscall
// or root. The end-to-end proof that the kernel takes these super-packets is
// test/e2e/tun-gro.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { D_LEN, D_OFF, DESC_WORDS, PacketBatch } from '../../src/tun/batch';
import { type GroUnit, testNative } from '../lib/native-test';
import { ACK, FIN, PSH, RST, SYN, URG, flow, ipChecksumOk, parseVnetHdr, segmentLikeKernel, sum16, tcpSeg, tsOption } from '../lib/tun-tcp';

// A missing or broken addon fails these tests (npm ci builds it).
const addon = testNative();

/** A batch holding pkts, row i = pkts[i], stored back to front with odd gaps (rows never at i * slot). */
function batchOf(pkts: (Buffer | null)[]): PacketBatch {
  const slot = 2048;
  const b = new PacketBatch(pkts.length, slot);
  pkts.forEach((p, i) => {
    const off = (pkts.length - 1 - i) * slot + (i % 3);
    if (p) p.copy(b.data, off);
    b.desc.set([off, p ? p.length : 0, 0, 0], i * DESC_WORDS);
  });
  b.count = pkts.length;
  return b;
}

function plan(pkts: (Buffer | null)[]): GroUnit[] {
  const b = batchOf(pkts);
  const before = Buffer.from(b.data);
  const units = addon.groPlan(b.data, b.desc, b.count);
  assert.ok(before.equals(b.data), 'groPlan leaves data as it was');
  return units;
}

const rowsOf = (units: GroUnit[]) => units.map((u) => u.rows);

/** Asserts u is a correct super-packet of segs (in order) and that the kernel's cut gives segs back. */
function assertSuper(u: GroUnit, segs: Buffer[]): void {
  const first = segs[0];
  const thl = (first[32] >> 4) * 4;
  const payload = (p: Buffer) => p.subarray(20 + thl);
  const total = 20 + thl + segs.reduce((s, p) => s + payload(p).length, 0);
  const h = parseVnetHdr(u.vnetHdr);
  assert.deepEqual(h, { flags: 1, gsoType: 1, hdrLen: 20 + thl, gsoSize: payload(first).length, csumStart: 20, csumOffset: 16 });
  const hdr = u.header!;
  assert.equal(hdr.length, 20 + thl);
  assert.equal(hdr.readUInt16BE(2), total, 'IP total length');
  assert.ok(ipChecksumOk(hdr), 'IP header checksum');
  // TCP checksum field: the pseudo-header sum (with the super-packet's TCP length), not inverted.
  assert.equal(hdr.readUInt16BE(36), sum16(hdr, 12, 8, 6 + total - 20), 'TCP checksum field = pseudo-header sum');
  assert.equal(hdr[33] & PSH, segs[segs.length - 1][33] & PSH, 'PSH of the last segment');
  // Everything else is the first segment's header.
  const masked = (b: Buffer) => {
    const c = Buffer.from(b.subarray(0, 20 + thl));
    c.fill(0, 2, 4);
    c.fill(0, 10, 12);
    c.fill(0, 36, 38);
    c[33] &= ~PSH;
    return c;
  };
  assert.ok(masked(hdr).equals(masked(first)), 'rest of the header = first segment');
  // The kernel's segmentation of this super-packet reproduces the segments exactly.
  const withCsum = Buffer.from(hdr);
  const cut = segmentLikeKernel(withCsum, Buffer.concat(segs.map(payload)), h.gsoSize);
  assert.equal(cut.length, segs.length);
  for (const [i, c] of cut.entries()) assert.ok(c.equals(segs[i]), `segment ${i} reproduced`);
}

function assertPlain(u: GroUnit): void {
  assert.ok(u.vnetHdr.equals(Buffer.alloc(10)), 'zero header');
  assert.equal(u.header, null);
  assert.equal(u.rows.length, 1);
}

describe('groPlan: user-space GRO before the TUN write', () => {
  it('merges a contiguous run into one super-packet with the right headers', () => {
    const segs = flow(10, 1448, { options: tsOption(77, 55) });
    const u = plan(segs);
    assert.deepEqual(rowsOf(u), [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]);
    assertSuper(u[0], segs);
  });

  it('ends a run with PSH on its last segment; a shorter last segment; no options', () => {
    const segs = flow(5, 1400);
    segs.push(tcpSeg({ seq: 1_000_000 + 5 * 1400, payload: 600, flags: ACK | PSH, id: 0x105 }));
    segs.push(tcpSeg({ seq: 1_000_000 + 5 * 1400 + 600, payload: 1400, id: 0x106 }));
    const u = plan(segs);
    assert.deepEqual(rowsOf(u), [[0, 1, 2, 3, 4, 5], [6]]);
    assertSuper(u[0], segs.slice(0, 6));
    assertPlain(u[1]);
  });

  it('nothing after a PSH segment or a shorter segment', () => {
    const a = flow(6, 1000);
    a[2] = tcpSeg({ seq: 1_000_000 + 2000, payload: 1000, flags: ACK | PSH, id: 0x102 });
    assert.deepEqual(rowsOf(plan(a)), [
      [0, 1, 2],
      [3, 4, 5],
    ]);
    const b = [tcpSeg({ seq: 0, payload: 1000 }), tcpSeg({ seq: 1000, payload: 500 }), tcpSeg({ seq: 1500, payload: 500 })];
    assert.deepEqual(rowsOf(plan(b)), [[0, 1], [2]]);
    // A larger segment after the first cannot join (all but the last must be gso_size).
    const c = [tcpSeg({ seq: 0, payload: 1000 }), tcpSeg({ seq: 1000, payload: 1448 }), tcpSeg({ seq: 2448, payload: 1448 })];
    assert.deepEqual(rowsOf(plan(c)), [[0], [1, 2]]);
  });

  it('a lone PSH segment and a run of one are plain writes', () => {
    const u = plan([tcpSeg({ seq: 0, payload: 100, flags: ACK | PSH }), tcpSeg({ seq: 5000, payload: 100, sport: 1 })]);
    assert.equal(u.length, 2);
    u.forEach(assertPlain);
  });

  it('refuses non-contiguous sequence numbers (gap, overlap, retransmit)', () => {
    const gap = flow(4, 1000);
    gap[2] = tcpSeg({ seq: 1_000_000 + 2001, payload: 1000 });
    gap[3] = tcpSeg({ seq: 1_000_000 + 3001, payload: 1000 });
    assert.deepEqual(rowsOf(plan(gap)), [
      [0, 1],
      [2, 3],
    ]);
    const back = flow(3, 1000);
    assert.deepEqual(rowsOf(plan([back[0], back[1], back[0], back[1], back[2]])), [
      [0, 1],
      [2, 3, 4],
    ]);
  });

  it('refuses different flows and different ACK numbers', () => {
    for (const other of [{ src: '198.18.1.3' }, { dst: '198.18.2.3' }, { sport: 40001 }, { dport: 5002 }, { ack: 1001 }]) {
      const segs = [tcpSeg({ seq: 0, payload: 1000 }), tcpSeg({ seq: 1000, payload: 1000, ...other }), tcpSeg({ seq: 2000, payload: 1000 })];
      const u = plan(segs);
      assert.equal(u.length, 3, JSON.stringify(other));
      u.forEach(assertPlain);
    }
  });

  it('refuses different TOS, TTL, DF, window or TCP options', () => {
    const opts = [{ tos: 2 }, { ttl: 63 }, { df: false }, { window: 501 }, { options: tsOption(2) }, { options: Buffer.from([1, 1, 1, 1]) }];
    for (const o of opts) {
      const base = { options: tsOption(1) };
      const u = plan([tcpSeg({ seq: 0, payload: 1000, ...base }), tcpSeg({ seq: 1000, payload: 1000, ...base }), tcpSeg({ seq: 2000, payload: 1000, ...base, ...o })]);
      assert.deepEqual(rowsOf(u), [[0, 1], [2]], JSON.stringify(o));
    }
  });

  it('refuses SYN, FIN, RST, URG and pure ACKs; they keep their place in the flow', () => {
    for (const flags of [SYN | ACK, FIN | ACK, RST | ACK, URG | ACK, FIN | PSH | ACK, 0]) {
      const segs = [
        tcpSeg({ seq: 0, payload: 1000 }),
        tcpSeg({ seq: 1000, payload: 1000 }),
        tcpSeg({ seq: 2000, payload: 1000, flags }),
        tcpSeg({ seq: 3000, payload: 1000 }),
        tcpSeg({ seq: 4000, payload: 1000 }),
      ];
      assert.deepEqual(rowsOf(plan(segs)), [[0, 1], [2], [3, 4]], `flags ${flags}`);
    }
    const pureAck = [tcpSeg({ seq: 0, payload: 1000 }), tcpSeg({ seq: 1000, payload: 0 }), tcpSeg({ seq: 1000, payload: 1000 })];
    assert.deepEqual(rowsOf(plan(pureAck)), [[0], [1], [2]]);
  });

  it('writes a segment with a bad checksum alone', () => {
    const segs = flow(5, 1000);
    segs[2] = Buffer.from(segs[2]);
    segs[2][100] ^= 0x55; // payload corrupted, checksum left
    assert.deepEqual(rowsOf(plan(segs)), [[0, 1], [2], [3, 4]]);
    const badHead = flow(3, 1000);
    badHead[0].writeUInt16BE(badHead[0].readUInt16BE(36) ^ 1, 36);
    assert.deepEqual(rowsOf(plan(badHead)), [[0], [1, 2]]);
  });

  it('refuses fragments and IPv4 options (IHL > 5), and flushes around fragments', () => {
    const mf = tcpSeg({ seq: 1000, payload: 1000, frag: 0x2000 });
    const off = tcpSeg({ seq: 2000, payload: 1000, frag: 0x0010 });
    const segs = [tcpSeg({ seq: 0, payload: 1000 }), mf, off, tcpSeg({ seq: 1000, payload: 1000 }), tcpSeg({ seq: 2000, payload: 1000 })];
    assert.deepEqual(rowsOf(plan(segs)), [[0], [1], [2], [3, 4]]);
    const ipo = Buffer.from([1, 1, 1, 0]); // NOPs + EOL
    const withOpts = [0, 1000, 2000].map((seq) => tcpSeg({ seq, payload: 1000, ipOptions: ipo }));
    const u = plan(withOpts);
    assert.equal(u.length, 3);
    u.forEach(assertPlain);
  });

  it('a descriptor shorter or longer than the IP total length is not coalesced', () => {
    const segs = flow(3, 1000);
    const b = batchOf(segs);
    b.desc[1 * DESC_WORDS + D_LEN] -= 1;
    assert.deepEqual(rowsOf(addon.groPlan(b.data, b.desc, 3)), [[0], [1], [2]]);
  });

  it('respects 65535 bytes and 64 segments per super-packet', () => {
    // 46 x 1448 + 52 > 65535: 45 segments (65212 bytes) and one more.
    const big = flow(46, 1448, { options: tsOption(9) });
    const u = plan(big);
    assert.deepEqual(
      u.map((x) => x.rows.length),
      [45, 1],
    );
    assertSuper(u[0], big.slice(0, 45));
    assert.equal(u[0].header!.readUInt16BE(2), 52 + 45 * 1448);
    // 100 x 100 bytes: 64 + 36.
    const many = flow(100, 100);
    const v = plan(many);
    assert.deepEqual(
      v.map((x) => x.rows.length),
      [64, 36],
    );
    assertSuper(v[0], many.slice(0, 64));
    assertSuper(v[1], many.slice(64));
  });

  it('merges interleaved flows separately and keeps each flow in order', () => {
    const a = flow(6, 1000, { sport: 1 });
    const b = flow(6, 1000, { sport: 2, seq: 7 });
    const udp = Buffer.alloc(28);
    udp[0] = 0x45;
    udp.writeUInt16BE(28, 2);
    udp[9] = 17;
    const rows: Buffer[] = [];
    for (let i = 0; i < 6; i++) rows.push(a[i], b[i]);
    rows.splice(5, 0, udp); // a UDP packet in the middle: written alone, runs untouched
    const u = plan(rows);
    assert.deepEqual(rowsOf(u), [[5], [0, 2, 4, 7, 9, 11], [1, 3, 6, 8, 10, 12]]);
    assertSuper(u[1], a);
    assertSuper(u[2], b);
  });

  it('more flows than the table: the oldest run is written first, nothing is lost or reordered within a flow', () => {
    const flows = Array.from({ length: 12 }, (_, f) => flow(4, 500, { sport: 100 + f }));
    const rows: Buffer[] = [];
    for (let i = 0; i < 4; i++) for (const f of flows) rows.push(f[i]);
    const u = plan(rows);
    const seen = u.flatMap((x) => x.rows).sort((x, y) => x - y);
    assert.deepEqual(
      seen,
      rows.map((_, i) => i),
      'every row written once',
    );
    for (let f = 0; f < 12; f++) {
      const mine = u.flatMap((x) => x.rows).filter((r) => r % 12 === f);
      assert.deepEqual(
        mine,
        [...mine].sort((x, y) => x - y),
        `flow ${f} in order`,
      );
    }
  });

  it('skips rows with D_LEN 0 without ending a run', () => {
    const segs: (Buffer | null)[] = flow(4, 1000);
    segs.splice(2, 0, null);
    assert.deepEqual(rowsOf(plan(segs)), [[0, 1, 3, 4]]);
  });

  it('rejects descriptors outside data (RangeError) before planning', () => {
    const b = batchOf(flow(2, 100));
    b.desc[D_OFF] = b.data.length;
    assert.throws(() => addon.groPlan(b.data, b.desc, 2), RangeError);
  });

  it('onesSum agrees with a plain JS sum at every length and alignment', () => {
    const buf = Buffer.alloc(3000);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 2654435761) >>> 24;
    for (let len = 0; len < 300; len++) {
      for (let off = 0; off < 8; off++) {
        const want = sum16(buf, off, len);
        const got = addon.onesSum(buf, off, len);
        // 0 and 0xffff are the same number in ones-complement arithmetic.
        assert.ok(got === want || (got % 0xffff === 0 && want % 0xffff === 0), `len ${len} off ${off}: ${got} vs ${want}`);
      }
    }
    assert.equal(addon.onesSum(buf, 0, 2999), sum16(buf, 0, 2999));
    const seg = tcpSeg({ seq: 1, payload: 1001 });
    assert.equal(addon.onesSum(seg, 0, 20), 0xffff);
  });
});
