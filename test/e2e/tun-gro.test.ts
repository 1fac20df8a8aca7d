// End-to-end tests of user-space GRO before the TUN write (IFF_VNET_HDR,
// src/tun/native/tun_gro.c): the kernel must take one GSO super-packet per
// run of segments and give the original segments back where it cuts them.
//
// Network safety: every TUN device, route and socket lives in a network
// namespace this file creates (ftun-<pid>-gro, removed in after() even on
// failure); the test process itself only runs `ip` and children under
// `ip netns exec`. Addresses: 198.19.30.0/24 - 198.19.40.0/24 inside the
// namespace. Needs root; skipped otherwise.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TunFixtureNamespace } from '../lib/tun-fixture-ns';

const isRoot = process.getuid?.() === 0;
const lab = new TunFixtureNamespace('gro', 'tun-gro');
const fixture = (mode: string, ...args: string[]) => lab.fixture(mode, ...args);

const exact = (v: { count: number; expected: number; mismatched: number[]; badChecksums: number }, what: string) => {
  assert.equal(v.count, v.expected, `${what}: segments back`);
  assert.deepEqual(v.mismatched, [], `${what}: segments that differ from the originals`);
  assert.equal(v.badChecksums, 0, `${what}: bad checksums`);
};

describe('TUN GRO (vnet header) in a network namespace', { skip: !isRoot && 'needs root (network namespaces, TUN)' }, () => {
  before(() => lab.create());
  after(() => lab.destroy());

  it('forwarding: one GSO write per run, cut back into exactly the original segments', async () => {
    const r = await fixture('forward');
    assert.deepEqual(r.offloads, { vnetHdr: true, gro: true, tso: false });
    assert.deepEqual(r.plan, [1, 1, 10, 40], 'UDP, bad-checksum segment, flow B (ends with PSH), flow A');
    assert.equal(r.written, r.rows, 'every packet counted');
    assert.equal(r.writes, 4, 'the kernel received 4 packets for 52 rows');
    assert.equal(r.rxDropped, 0);
    assert.equal(r.forwardedOut, 52);
    exact(r.a, 'flow A (40 x 1448, timestamps)');
    exact(r.b, 'flow B (10 x 1000, interleaved, PSH last)');
    assert.deepEqual(r.badBack, { count: 1, same: true }, 'the bad segment went alone, unchanged');
    assert.equal(r.udpBack, 1);
    assert.ok(r.dataUnchanged, 'the batch is left as it was');
    assert.deepEqual(r.offloadsAfter, { vnetHdr: true, gro: true, tso: false });
  });

  it('local TCP: a listener receives a GSO write byte-exact and ACKs all of it', async () => {
    const r = await fixture('tcp');
    assert.equal(r.synAck.flags, 0x12);
    assert.ok(r.synAck.ackOk && r.synAck.checksumOk);
    assert.ok(r.segments >= 20, `window for ${r.segments} segments`);
    assert.deepEqual(r.plan, [r.segments]);
    assert.equal(r.written, r.segments);
    assert.equal(r.writes, 1, 'one skb for all segments');
    assert.ok(r.ackedAll, 'the server acknowledged every byte');
    assert.equal(r.accepted, 1);
    assert.equal(r.receivedBytes, r.segments * 1448);
    assert.ok(r.dataExact, 'the application read exactly the payload');
  });

  it('reads: checksums the kernel left partial (NEEDS_CSUM) are completed', async (t) => {
    const r = await fixture('needscsum');
    if (r.skipped) return t.skip(r.skipped);
    assert.deepEqual(
      r.udp,
      [1, 2, 333, 1400].map((n) => ({ len: 28 + n, needsCsum: true, ok: true })),
    );
    assert.ok(r.tcp.length >= 1);
    for (const s of r.tcp) assert.deepEqual(s, { needsCsum: true, ok: true });
  });

  it('GRO off by request, refused by the kernel, probed from another thread', async (t) => {
    const r = await fixture('fallback');
    assert.deepEqual(r.offOffloads, { vnetHdr: true, gro: false, tso: false });
    assert.equal(r.off.written, 20);
    assert.equal(r.off.writes, 20, 'no coalescing');
    exact(r.off, 'gro off');
    assert.deepEqual(r.refusalBefore, { vnetHdr: true, gro: true, tso: false });
    // The hook sends csum_offset 0 with GSO_TCPV4, refused since Linux 6.11 / 6.6.44.
    if (r.refusal.writes === 1 && r.refusalAfter.gro) return t.skip('this kernel accepts a TCP GSO header with csum_offset 0');
    assert.equal(r.refusal.written, 20, 'the refused super-packet went out segment by segment');
    assert.equal(r.refusal.writes, 20);
    exact(r.refusal, 'refused');
    assert.deepEqual(r.refusalAfter, { vnetHdr: true, gro: false, tso: false }, 'GRO off after the refusal');
    assert.equal(r.refusalAgain.writes, 20);
    exact(r.refusalAgain, 'after the refusal');
    assert.deepEqual(r.plainOffloads, { vnetHdr: false, gro: false, tso: false });
    // A thread that did not open the fd probes it: IFF_VNET_HDR from TUNGETIFF (GRO assumed on).
    assert.deepEqual(r.workerView, [
      { vnetHdr: true, gro: true, tso: false },
      { vnetHdr: false, gro: false, tso: false },
      { vnetHdr: true, gro: true, tso: false },
    ]);
    assert.equal(r.smallSlot?.name, 'RangeError');
    assert.equal(r.closedOffloads?.code, 'EBADF');
    assert.equal(r.socketOffloads?.code, 'ENOTTY');
    assert.equal(r.badArg?.name, 'TypeError');
  });

  it('throughput of TUN writes with and without coalescing', async () => {
    const r = await fixture('bench', '1');
    const line = (k: string) =>
      `${k}: blackhole ${r[k].blackhole.gbitPerSec} Gbit/s (${r[k].blackhole.packetsPerSec} pkt/s, ${r[k].blackhole.cpuMsPerGB} CPU ms/GB), ` +
      `forward ${r[k].forward.gbitPerSec} Gbit/s (${r[k].forward.cpuMsPerGB} CPU ms/GB)`;
    console.log(['plain', 'vnetNoGro', 'gro'].map(line).join('\n'));
    assert.deepEqual(r.gro.offloads, { vnetHdr: true, gro: true, tso: false });
    assert.ok(r.gro.blackhole.packetsPerSec > 2 * r.plain.blackhole.packetsPerSec, 'coalescing at least doubles packets/s into the TUN');
  });
});
