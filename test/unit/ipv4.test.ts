import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ip from '../../src/encap/ipv4';

/** A valid IPv4 header + payload, checksum set. */
function packet(opts: { len?: number; ttl?: number; proto?: number; src?: number[]; dst?: number[]; ihl?: number } = {}): Buffer {
  const ihl = opts.ihl ?? 5;
  const len = opts.len ?? 60;
  const b = Buffer.alloc(len);
  b[0] = 0x40 | ihl;
  b.writeUInt16BE(len, 2);
  b.writeUInt16BE(0x1234, 4);
  b[8] = opts.ttl ?? 64;
  b[9] = opts.proto ?? ip.PROTO_UDP;
  Buffer.from(opts.src ?? [198, 19, 1, 2]).copy(b, 12);
  Buffer.from(opts.dst ?? [198, 19, 2, 3]).copy(b, 16);
  for (let i = ihl * 4; i < len; i++) b[i] = i & 255;
  ip.setHeaderChecksum(b, 0);
  return b;
}

test('checkHeader accepts a well-formed packet', () => {
  const b = packet();
  assert.equal(ip.checkHeader(b, 0, b.length), ip.HeaderCheck.OK);
  assert.ok(ip.headerChecksumOk(b, 0));
  assert.equal(ip.src(b, 0), ((198 << 24) | (19 << 16) | (1 << 8) | 2) >>> 0);
  assert.equal(ip.dst(b, 0), ((198 << 24) | (19 << 16) | (2 << 8) | 3) >>> 0);
});

test('checkHeader classifies malformed input', () => {
  const b = packet();
  assert.equal(ip.checkHeader(b, 0, 19), ip.HeaderCheck.TRUNCATED);
  assert.equal(ip.checkHeader(b, 0, 0), ip.HeaderCheck.TRUNCATED);
  const v6 = Buffer.from(b);
  v6[0] = 0x60;
  assert.equal(ip.checkHeader(v6, 0, v6.length), ip.HeaderCheck.NOT_IPV4);
  const badIhl = Buffer.from(b);
  badIhl[0] = 0x44; // 16-byte header: below the minimum
  assert.equal(ip.checkHeader(badIhl, 0, badIhl.length), ip.HeaderCheck.BAD_IHL);
  const longIhl = packet({ len: 24 });
  longIhl[0] = 0x4f; // 60-byte header in a 24-byte packet
  assert.equal(ip.checkHeader(longIhl, 0, 24), ip.HeaderCheck.BAD_IHL);
  // total length field disagrees with bytes read, both ways
  assert.equal(ip.checkHeader(b, 0, b.length - 1), ip.HeaderCheck.BAD_LENGTH);
  const longer = Buffer.concat([b, Buffer.alloc(4)]);
  assert.equal(ip.checkHeader(longer, 0, longer.length), ip.HeaderCheck.BAD_LENGTH);
});

test('checkHeader honours the offset into a slab', () => {
  const p = packet({ len: 40 });
  const slab = Buffer.alloc(1000, 0xff);
  p.copy(slab, 500);
  assert.equal(ip.checkHeader(slab, 500, 40), ip.HeaderCheck.OK);
  assert.ok(ip.headerChecksumOk(slab, 500));
});

test('decrementTtl matches a full checksum recomputation for every TTL and many headers', () => {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 255;
  for (let t = 2; t <= 255; t++) {
    for (let k = 0; k < 40; k++) {
      const b = packet({ ttl: t, proto: rnd(), src: [rnd(), rnd(), rnd(), rnd()], dst: [rnd(), rnd(), rnd(), rnd()] });
      b.writeUInt16BE((rnd() << 8) | rnd(), 4);
      ip.setHeaderChecksum(b, 0);
      const expected = Buffer.from(b);
      expected[8] = t - 1;
      ip.setHeaderChecksum(expected, 0);
      assert.equal(ip.decrementTtl(b, 0), t - 1);
      assert.equal(b[8], t - 1);
      assert.ok(ip.headerChecksumOk(b, 0), `checksum verifies after decrement (ttl ${t})`);
      assert.equal(b.readUInt16BE(10), expected.readUInt16BE(10), `same checksum as recomputed (ttl ${t})`);
    }
  }
});

test('decrementTtl at TTL 1 and 0 reports expiry and leaves the packet alone', () => {
  for (const t of [0, 1]) {
    const b = packet({ ttl: t });
    const before = Buffer.from(b);
    assert.equal(ip.decrementTtl(b, 0), 0);
    assert.deepEqual(b, before);
  }
});

test('headerChecksumOk rejects a corrupted header', () => {
  const b = packet();
  b[15] ^= 1;
  assert.equal(ip.headerChecksumOk(b, 0), false);
});

test('internetChecksum of odd lengths pads with zero', () => {
  const b = Buffer.from([0x01, 0x02, 0x03]);
  // 0x0102 + 0x0300 = 0x0402 -> ~ = 0xfbfd
  assert.equal(ip.internetChecksum(b, 0, 3), 0xfbfd);
});

test('isNonUnicast: multicast, limited broadcast and 0/8', () => {
  assert.ok(ip.isNonUnicast(0xe0000001));
  assert.ok(ip.isNonUnicast(0xefffffff));
  assert.ok(ip.isNonUnicast(0xffffffff));
  assert.ok(ip.isNonUnicast(0x00000000));
  assert.equal(ip.isNonUnicast(0xc6130203), false);
});
