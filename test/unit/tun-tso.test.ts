// TUN TSO on read (src/tun/native/tun_tso.c), checked through tsoSplit: what
// tunRead does with one read on a TSO fd, on packets built by hand, without a
// syscall or root. Every segment is compared byte for byte with a second,
// independent model of the kernel's own TCP segmentation (tun-tcp.ts). The
// end-to-end proof with real kernel super-packets is test/e2e/tun-tso.test.ts.
import assert from 'node:assert/strict';
import * as os from 'node:os';
import { describe, it } from 'node:test';
import { D_ADDR, D_LEN, D_OFF, D_PORT, DESC_WORDS } from '../../src/tun/batch';
import { testNative } from '../lib/native-test';
import { ACK, FIN, PSH, ipChecksumOk, l4ChecksumOk, pseudoSum, segmentLikeKernel, sum16, tcpSeg, tsOption } from '../lib/tun-tcp';

// A missing or broken addon fails these tests (npm ci builds it).
const addon = testNative();

const CWR = 0x80;
const ECE = 0x40;

interface Vnet {
  flags?: number;
  gsoType?: number;
  hdrLen?: number;
  gsoSize?: number;
  csumStart?: number;
  csumOffset?: number;
}

/** A virtio_net_hdr as TUN's legacy header: u16 fields in host byte order. */
function vnetHdr(v: Vnet): Buffer {
  const h = Buffer.alloc(10);
  h[0] = v.flags ?? 0;
  h[1] = v.gsoType ?? 0;
  const w = (o: number, x: number) => (os.endianness() === 'LE' ? h.writeUInt16LE(x, o) : h.writeUInt16BE(x, o));
  w(2, v.hdrLen ?? 0);
  w(4, v.gsoSize ?? 0);
  w(6, v.csumStart ?? 0);
  w(8, v.csumOffset ?? 0);
  return h;
}

/** What the kernel hands over for a checksum-partial TCP packet: the TCP checksum field holds the pseudo-header sum. */
function partial(p: Buffer): Buffer {
  const q = Buffer.from(p);
  const ihl = (q[0] & 15) * 4;
  q.writeUInt16BE(pseudoSum(q, 6, q.length - ihl), ihl + 16);
  return q;
}

interface Row {
  off: number;
  len: number;
  addr: number;
  port: number;
  pkt: Buffer;
}

/** Runs tsoSplit on vnet + packet in a buffer of `room` bytes; returns the result and the rows. */
function split(vnet: Buffer, pkt: Buffer, opts: { room?: number; rows?: number } = {}): { n: number; rows: Row[]; data: Buffer } {
  const data = Buffer.alloc(opts.room ?? 80_000, 0xee);
  vnet.copy(data, 0);
  pkt.copy(data, 10);
  const desc = new Int32Array((opts.rows ?? 128) * DESC_WORDS).fill(-7);
  const n = addon.tsoSplit(data, desc, 10 + pkt.length);
  const rows: Row[] = [];
  for (let i = 0; i < Math.max(n, 0); i++) {
    const k = i * DESC_WORDS;
    const off = desc[k + D_OFF];
    const len = desc[k + D_LEN];
    rows.push({ off, len, addr: desc[k + D_ADDR], port: desc[k + D_PORT], pkt: Buffer.from(data.subarray(off, off + len)) });
  }
  return { n, rows, data };
}

/** A TCPv4 super-packet as the kernel reads it out with TSO: one header, the whole payload, checksum partial. */
function superPacket(o: Parameters<typeof tcpSeg>[0]): Buffer {
  return partial(tcpSeg(o));
}

const gsoHdr = (p: Buffer, gsoSize: number, extra: Vnet = {}) => {
  const ihl = (p[0] & 15) * 4;
  // hdr_len deliberately wrong (the kernel may report the whole linear part): never trusted.
  return vnetHdr({ flags: 1, gsoType: 1, hdrLen: p.length, gsoSize, csumStart: ihl, csumOffset: 16, ...extra });
};

/** Asserts rows are exactly the kernel's segmentation of `sp` at gsoSize, and every invariant the wire needs. */
function assertSegments(sp: Buffer, gsoSize: number, rows: Row[]): void {
  const ihl = (sp[0] & 15) * 4;
  const thl = (sp[ihl + 12] >> 4) * 4;
  const hlen = ihl + thl;
  const payload = sp.subarray(hlen);
  const want = segmentLikeKernel(sp.subarray(0, hlen), payload, gsoSize);
  // The model keeps CWR everywhere; the kernel (and the addon) keep it on the first segment only.
  want.forEach((w, i) => {
    if (i > 0 && w[ihl + 13] & CWR) {
      w[ihl + 13] &= ~CWR;
      w.writeUInt16BE(0, ihl + 16);
      w.writeUInt16BE(~sum16(w, ihl, w.length - ihl, pseudoSum(w, 6, w.length - ihl)) & 0xffff, ihl + 16);
    }
  });
  assert.equal(rows.length, want.length, 'one row per segment');
  const seq0 = sp.readUInt32BE(ihl + 4);
  const id0 = sp.readUInt16BE(4);
  let tiled = 0;
  rows.forEach((r, i) => {
    const s = r.pkt;
    assert.ok(s.equals(want[i]), `segment ${i} equals the kernel's`);
    assert.ok(s.length <= hlen + gsoSize, `segment ${i} is at most one MSS`);
    assert.equal(s.readUInt16BE(2), r.len, `segment ${i}: IP total length = row length`);
    assert.ok(ipChecksumOk(s), `segment ${i}: IP header checksum`);
    assert.ok(l4ChecksumOk(s), `segment ${i}: TCP checksum`);
    assert.equal(s.readUInt16BE(4), (id0 + i) & 0xffff, `segment ${i}: IP ID`);
    assert.equal(s.readUInt32BE(ihl + 4), (seq0 + tiled) >>> 0, `segment ${i}: sequence number tiles the payload`);
    assert.ok(s.subarray(hlen).equals(payload.subarray(tiled, tiled + s.length - hlen)), `segment ${i}: payload bytes`);
    tiled += s.length - hlen;
    const last = i === rows.length - 1;
    const f = s[ihl + 13];
    const f0 = sp[ihl + 13];
    assert.equal(f & (FIN | PSH), last ? f0 & (FIN | PSH) : 0, `segment ${i}: FIN/PSH on the last segment only`);
    assert.equal(f & CWR, i === 0 ? f0 & CWR : 0, `segment ${i}: CWR on the first only`);
    assert.equal(f & ~(FIN | PSH | CWR), f0 & ~(FIN | PSH | CWR), `segment ${i}: other flags kept`);
    assert.equal(r.addr, 0);
    assert.equal(r.port, i === 0 && rows.length > 1 ? rows.length : 0, `segment ${i}: D_PORT marks the super-packet`);
  });
  assert.equal(tiled, payload.length, 'the segments carry the whole payload, nothing more');
}

describe('tsoSplit: TCPv4 super-packets split as the kernel would', () => {
  it('splits a 64 KiB super-packet with timestamps into MSS-sized segments, back to back from the read', () => {
    const gso = 1420;
    const sp = superPacket({ seq: 123_456_789, payload: 65535 - 52, options: tsOption(0x11223344, 0x55667788), flags: ACK | PSH, id: 0x4321 });
    const { n, rows } = split(gsoHdr(sp, gso), sp);
    assert.equal(n, Math.ceil((65535 - 52) / gso));
    assertSegments(sp, gso, rows);
    // Packed: segment i at 10 + i * (header + gso); the first never moved.
    for (const [i, r] of rows.entries()) assert.equal(r.off, 10 + i * (52 + gso));
  });

  it('payload an exact multiple of gso_size: the last segment is full', () => {
    const sp = superPacket({ seq: 1, payload: 8 * 1000, flags: ACK });
    const { n, rows } = split(gsoHdr(sp, 1000), sp);
    assert.equal(n, 8);
    assertSegments(sp, 1000, rows);
    assert.ok(rows.every((r) => r.len === 1040));
  });

  it('FIN and PSH land on the last segment only, CWR on the first only, ECE everywhere', () => {
    const sp = superPacket({ seq: 99, payload: 5 * 1448 + 7, flags: ACK | PSH | FIN | CWR | ECE });
    const { rows } = split(gsoHdr(sp, 1448), sp);
    assert.equal(rows.length, 6);
    assertSegments(sp, 1448, rows);
  });

  it('sequence numbers and IP IDs wrap around', () => {
    const sp = superPacket({ seq: 0xffff_f000, payload: 10 * 1448, id: 0xfffd });
    const { rows } = split(gsoHdr(sp, 1448), sp);
    assertSegments(sp, 1448, rows);
    assert.equal(rows[3].pkt.readUInt16BE(4), 0);
    assert.ok(
      rows.some((r) => r.pkt.readUInt32BE(24) < 0x1000),
      'a segment after the wrap',
    );
  });

  it('IPv4 options and a long TCP header are carried on every segment', () => {
    const ipOptions = Buffer.from([0x94, 0x04, 0x00, 0x00]); // router alert
    const options = Buffer.concat([tsOption(7, 8), Buffer.from([1, 1, 4, 2]), Buffer.alloc(20, 1)]); // 36 bytes
    const sp = superPacket({ seq: 5, payload: 4000, ipOptions, options });
    const { rows } = split(gsoHdr(sp, 1376), sp);
    assertSegments(sp, 1376, rows);
    assert.ok(rows.every((r) => r.pkt.subarray(20, 24).equals(ipOptions)));
  });

  it('gso_size 1 and a tiny MSS: many segments, still exact', () => {
    const sp = superPacket({ seq: 1000, payload: 37, flags: ACK | PSH });
    const { rows } = split(gsoHdr(sp, 1), sp);
    assert.equal(rows.length, 37);
    assertSegments(sp, 1, rows);
    const sp2 = superPacket({ seq: 1000, payload: 5000 });
    assertSegments(sp2, 88, split(gsoHdr(sp2, 88), sp2).rows);
  });

  it('a GSO packet of one segment is one row, finished, not marked', () => {
    const sp = superPacket({ seq: 3, payload: 900, flags: ACK | PSH });
    const { n, rows } = split(gsoHdr(sp, 1448), sp);
    assert.equal(n, 1);
    assertSegments(sp, 1448, rows);
  });

  it('plain reads: NEEDS_CSUM finished in place, a zero header left alone, both unmarked', () => {
    const ackP = tcpSeg({ seq: 10, ack: 20, flags: ACK, options: tsOption(1, 2) });
    const a = split(vnetHdr({ flags: 1, csumStart: 20, csumOffset: 16 }), partial(ackP));
    assert.equal(a.n, 1);
    assert.deepEqual([a.rows[0].off, a.rows[0].len, a.rows[0].port], [10, ackP.length, 0]);
    assert.ok(a.rows[0].pkt.equals(ackP), 'the pure ACK gets its full checksum');
    const plain = tcpSeg({ seq: 10, payload: 1400 });
    const b = split(vnetHdr({}), plain);
    assert.equal(b.n, 1);
    assert.ok(b.rows[0].pkt.equals(plain));
  });

  it('drops what it cannot split: other GSO types, not TCPv4, bad offsets, no payload, fragments', () => {
    const sp = superPacket({ seq: 1, payload: 3000 });
    const drop = (v: Buffer, p: Buffer, why: string) => assert.equal(split(v, p).n, 0, why);
    drop(gsoHdr(sp, 1000, { gsoType: 4 }), sp, 'TCPv6 GSO');
    drop(gsoHdr(sp, 1000, { gsoType: 5 }), sp, 'UDP GSO (USO is never turned on)');
    drop(gsoHdr(sp, 0), sp, 'gso_size 0');
    drop(gsoHdr(sp, 1000, { csumStart: 24 }), sp, 'csum_start is not the IP header length');
    drop(gsoHdr(sp, 1000, { csumOffset: 6 }), sp, 'csum_offset is not TCP');
    const udp = Buffer.from(sp);
    udp[9] = 17;
    drop(gsoHdr(sp, 1000), udp, 'IP protocol is not TCP');
    const v6 = Buffer.from(sp);
    v6[0] = 0x65;
    drop(gsoHdr(sp, 1000), v6, 'not IPv4');
    const noPayload = superPacket({ seq: 1, payload: 0 });
    drop(gsoHdr(noPayload, 1000), noPayload, 'no payload');
    const badThl = Buffer.from(sp.subarray(0, 50));
    badThl[32] = 0xf0; // data offset 60 > bytes
    drop(gsoHdr(sp, 1000), badThl, 'TCP header beyond the packet');
    const frag = superPacket({ seq: 1, payload: 3000, frag: 0x2000 });
    drop(gsoHdr(frag, 1000), frag, 'a fragment');
  });

  it('reports -1 and leaves data alone when the segments do not fit data or desc', () => {
    const sp = superPacket({ seq: 1, payload: 20 * 1000 });
    const tight = split(gsoHdr(sp, 1000), sp, { room: 10 + sp.length + 19 * 40 - 1 });
    assert.equal(tight.n, -1);
    assert.ok(tight.data.subarray(10, 10 + sp.length).equals(sp), 'nothing moved');
    assert.equal(split(gsoHdr(sp, 1000), sp, { rows: 19 }).n, -1);
    // Exactly enough room and rows.
    const exact = split(gsoHdr(sp, 1000), sp, { room: 10 + sp.length + 19 * 40, rows: 20 });
    assert.equal(exact.n, 20);
    assertSegments(sp, 1000, exact.rows);
  });

  it('rejects bad arguments', () => {
    assert.throws(() => addon.tsoSplit(Buffer.alloc(20), new Int32Array(8), 21), RangeError);
    assert.throws(() => addon.tsoSplit(Buffer.alloc(20), new Int32Array(8), 10), RangeError);
    assert.throws(() => addon.tsoSplit(Buffer.alloc(20), new Uint32Array(8) as unknown as Int32Array, 15), TypeError);
  });
});
