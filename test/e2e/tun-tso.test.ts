// End-to-end tests of TUN TSO on read (TUNSETOFFLOAD CSUM|TSO4,
// src/tun/native/tun_tso.c): the kernel hands over TCP super-packets and
// tunRead must give back exactly the MTU-sized segments the kernel would have
// made, with a real TCP sender on the other side of the device.
//
// Network safety: every TUN device, route and socket lives in a network
// namespace this file creates (ftun-<pid>-tso, removed in after() even on
// failure); the test process itself only runs `ip` and children under
// `ip netns exec`. Addresses: 198.19.50.0/24 and 198.19.51.0/24 inside the
// namespace. Needs root; skipped otherwise.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TunFixtureNamespace } from '../lib/tun-fixture-ns';

const isRoot = process.getuid?.() === 0;
const lab = new TunFixtureNamespace('tso', 'tun-tso');
const fixture = (mode: string, ...args: string[]) => lab.fixture(mode, ...args);

const MIB8 = 8 * 1024 * 1024;

describe('TUN TSO (super-packets read and split) in a network namespace', { skip: !isRoot && 'needs root (network namespaces, TUN)' }, () => {
  before(() => lab.create());
  after(() => lab.destroy());

  it('a local TCP sender: super-packets come out as MTU-sized segments tiling the stream exactly', async () => {
    const r = await fixture('stream', String(MIB8));
    const s = r.stats;
    assert.deepEqual(r.offloads, { vnetHdr: true, gro: true, tso: true });
    assert.ok(r.finSeen, 'the stream ended with a FIN');
    assert.equal(r.received, MIB8, 'every byte arrived');
    assert.ok(r.exact, 'the bytes are the ones sent, in place');
    assert.ok(s.superPackets > 10, `the kernel handed over super-packets (${s.superPackets})`);
    assert.ok(s.segments > 2 * s.superPackets, `several segments per super-packet (${s.segments} / ${s.superPackets})`);
    assert.ok(s.maxRowLen <= 1500, `every row within the MTU (max ${s.maxRowLen})`);
    assert.equal(s.badIpChecksum, 0);
    assert.equal(s.badTcpChecksum, 0);
    assert.equal(s.lengthMismatch, 0, 'IP total length = row length');
    assert.equal(s.notIpv4, 0);
    assert.equal(s.dropped, 0);
    assert.equal(s.stashed, 0, 'with 1024 rows and 64 KiB reads, every super-packet fits where it is read');
    assert.deepEqual(s.finRows, [MIB8], 'FIN only on the segment that ends the stream');
    assert.ok(s.markedRuns > 0 && s.markedRunsBroken === 0, `D_PORT marks runs of contiguous segments (${s.markedRuns}, max ${s.maxMarked})`);
    assert.ok(s.markedRuns <= s.superPackets, 'one mark per super-packet at most');
    console.log(`TSO: ${s.superPackets} super-packets -> ${s.segments} segments; ${s.rows} rows, ${s.retransmittedBytes} bytes retransmitted`);
  });

  it('MTU 576: super-packets of over 64 segments, some carried over to the next read (the stash), still exact', async () => {
    const r = await fixture('smallmtu', String(4 * 1024 * 1024));
    const s = r.stats;
    assert.ok(r.exact && r.finSeen, 'every byte, in place, and the FIN');
    assert.ok(s.maxRowLen <= 576, `every row within the MTU (max ${s.maxRowLen})`);
    assert.ok(s.maxSegments > 64, `super-packets of more than 64 segments (max ${s.maxSegments})`);
    assert.ok(s.stashed > 0, 'some were kept for the next read');
    assert.equal(s.badIpChecksum + s.badTcpChecksum + s.lengthMismatch + s.dropped + s.markedRunsBroken, 0);
    assert.deepEqual(s.finRows, [4 * 1024 * 1024]);
    console.log(`TSO at MTU 576: ${s.superPackets} super-packets, up to ${s.maxSegments} segments, up to ${s.maxRowsPerRead} rows per read, ${s.stashed} kept for the next read`);
  });

  it('without TSO the same stream arrives as plain packets (no super-packets)', async () => {
    const r = await fixture('plain', String(1024 * 1024));
    assert.deepEqual(r.offloads, { vnetHdr: true, gro: true, tso: false });
    assert.ok(r.exact && r.finSeen);
    assert.equal(r.stats.superPackets, 0);
    assert.equal(r.stats.markedRuns, 0);
    assert.ok(r.stats.maxRowLen <= 1500);
    assert.equal(r.stats.badTcpChecksum, 0);
  });

  it('offload state per thread, TSO only with the vnet header, slot rules', async () => {
    const r = await fixture('states');
    const tso = { vnetHdr: true, gro: true, tso: true };
    const none = { vnetHdr: false, gro: false, tso: false };
    const vnet = { vnetHdr: true, gro: true, tso: false };
    assert.deepEqual(r.here, [tso, none, vnet]);
    assert.deepEqual(r.worker, [tso, none, vnet], 'another thread probes TSO (ETHTOOL_GTSO)');
    assert.equal(r.smallSlot?.name, 'RangeError');
    assert.equal(r.fullSlot, null);
    assert.equal(r.badInfo?.name, 'TypeError');
    if (r.ethtool) assert.match(r.ethtool, /: on/);
  });
});
