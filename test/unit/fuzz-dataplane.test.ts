// The packet fuzzer against the data plane itself: thousands of seeded cases
// (see test/lib/fuzz-cases.ts) through the Encapsulator (packets read
// from flannel0) and the Decapsulator (datagrams from the underlay), each
// verdict compared with the reference model, each forwarded packet compared
// byte for byte with the original (TTL one less, checksum updated), and the
// drop counters with the model's tally. The same cases feed a live daemon in
// test/e2e/fuzz-packets.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseTable } from '../../src/routes/lease-table';
import { Ip4Net } from '../../src/routes/ip4';
import { PacketBatch, D_ADDR, D_LEN, D_OFF, D_PORT, DESC_WORDS } from '../../src/tun/batch';
import { Counters, DROP_REASONS, DropReason } from '../../src/encap/counters';
import { Encapsulator } from '../../src/encap/encapsulator';
import { Decapsulator } from '../../src/encap/decapsulator';
import { IcmpResponder } from '../../src/encap/icmp';
import { type FuzzCase, type FuzzEnv, type Verdict, fmt4, generate, isForwardOf, ip4, net4, tally, txPeer } from '../lib/fuzz-cases';

const SEED = Number(process.env.FLANNEL_TS_FUZZ_SEED ?? 20251122);
const CASES = 20_000;
const PORT = 8285;
const LEASE_HOLDER = '198.18.0.60';
const STRANGER = '198.18.0.61';

const env: FuzzEnv = {
  network: net4('198.19.0.0/16'),
  local: net4('198.19.10.0/24'),
  peers: [
    { subnet: net4('198.19.20.0/24'), publicIp: ip4('198.18.0.20') },
    { subnet: net4('198.19.240.0/24'), publicIp: ip4(LEASE_HOLDER) },
  ],
};

function setup() {
  const table = new LeaseTable(PORT);
  table.setLocalSubnet(Ip4Net.parse(`${fmt4(env.local.ip)}/${env.local.len}`));
  for (const p of env.peers) table.upsert({ subnet: Ip4Net.parse(`${fmt4(p.subnet.ip)}/${p.subnet.len}`), publicIp: p.publicIp, backendType: 'udp' });
  const counters = new Counters();
  const icmp = new IcmpResponder();
  return { counters, icmp, encap: new Encapsulator(table, counters, icmp), decap: new Decapsulator(table, counters) };
}

const nameOf = (v: number): Verdict => (v === 0 ? 'forward' : (DROP_REASONS.find((r) => DropReason[r] === v) as Verdict));

/** Runs `cases` through `process` 64 at a time; checks every verdict and every forwarded packet. */
function run(cases: FuzzCase[], side: 'rx' | 'tx', process: (b: PacketBatch) => number, verdicts: () => Uint8Array, after?: () => void): void {
  const batch = new PacketBatch(64, 2048);
  const failures: string[] = [];
  for (let start = 0; start < cases.length; start += 64) {
    const chunk = cases.slice(start, start + 64);
    chunk.forEach((c, i) => {
      const off = i * batch.slotSize;
      batch.data.fill(0, off, off + batch.slotSize);
      c.bytes.copy(batch.data, off);
      batch.desc[i * DESC_WORDS + D_OFF] = off;
      batch.desc[i * DESC_WORDS + D_LEN] = c.bytes.length;
      batch.desc[i * DESC_WORDS + D_ADDR] = ip4(c.fromLeaseHolder ? LEASE_HOLDER : STRANGER) | 0;
      batch.desc[i * DESC_WORDS + D_PORT] = PORT;
    });
    batch.readInfo.fill(0);
    batch.count = chunk.length;
    const n = process(batch);
    const v = verdicts();
    let forwardedCount = 0;
    chunk.forEach((c, i) => {
      const got = nameOf(v[i]);
      if (got !== c.expect) failures.push(`case ${c.id} (${c.kind}, ${c.bytes.toString('hex').slice(0, 80)}): got ${got}, want ${c.expect}`);
      const len = batch.desc[i * DESC_WORDS + D_LEN];
      if (c.expect !== 'forward') {
        if (len !== 0) failures.push(`case ${c.id}: dropped but its length is ${len}`);
        return;
      }
      forwardedCount++;
      const off = batch.desc[i * DESC_WORDS + D_OFF];
      const out = batch.data.subarray(off, off + len);
      if (!isForwardOf(out, c.bytes)) failures.push(`case ${c.id} (${c.kind}): forwarded bytes differ`);
      if (side === 'tx') {
        const to = batch.desc[i * DESC_WORDS + D_ADDR] >>> 0;
        if (to !== txPeer(c.bytes, env) || batch.desc[i * DESC_WORDS + D_PORT] !== PORT) failures.push(`case ${c.id}: sent to ${fmt4(to)}`);
      }
    });
    if (n !== forwardedCount) failures.push(`batch at ${start}: process() said ${n}, ${forwardedCount} forwarded`);
    after?.();
    if (failures.length > 20) break;
  }
  assert.deepEqual(failures, [], failures.slice(0, 20).join('\n'));
}

/** Drop counters of one direction, as the model's tally. */
function countersAsTally(drops: Float64Array, forwards: number): Map<Verdict, number> {
  const m = new Map<Verdict, number>();
  if (forwards) m.set('forward', forwards);
  for (const r of DROP_REASONS) if (drops[DropReason[r]]) m.set(r as Verdict, drops[DropReason[r]]);
  return m;
}

const sorted = (m: Map<Verdict, number>) => [...m].sort(([a], [b]) => a.localeCompare(b));

test(`fuzz: ${CASES} datagrams from peers and strangers through the Decapsulator (seed ${SEED})`, () => {
  const cases = generate('rx', SEED, CASES, env, { favourite: [ip4('198.19.10.2')] });
  const { decap, counters } = setup();
  let forwards = 0;
  run(
    cases,
    'rx',
    (b) => {
      const n = decap.process(b);
      forwards += n;
      return n;
    },
    () => decap.verdicts,
  );
  const want = tally(cases);
  assert.deepEqual(sorted(countersAsTally(counters.rxDrops, forwards)), sorted(want));
  // Every reason the rx side has was exercised.
  for (const r of ['forward', 'unknown_source', 'truncated', 'not_ipv4', 'bad_header_len', 'bad_total_len', 'bad_checksum', 'not_for_this_host', 'ttl_expired'] as Verdict[]) {
    assert.ok((want.get(r) ?? 0) > 10, `the cases exercise ${r} (${want.get(r) ?? 0})`);
  }
});

test(`fuzz: ${CASES} packets read from flannel0 through the Encapsulator (seed ${SEED + 1})`, () => {
  const cases = generate('tx', SEED + 1, CASES, env);
  const { encap, counters, icmp } = setup();
  let forwards = 0;
  run(
    cases,
    'tx',
    (b) => {
      const n = encap.process(b);
      forwards += n;
      return n;
    },
    () => encap.verdicts,
    () => icmp.reset(),
  );
  const want = tally(cases);
  assert.deepEqual(sorted(countersAsTally(counters.txDrops, forwards)), sorted(want));
  // Every packet without a route was answered or held back by the rate limit, never ignored.
  assert.equal(counters.icmpSent + counters.icmpSuppressed, want.get('no_route'));
  for (const r of ['forward', 'truncated', 'not_ipv4', 'bad_header_len', 'bad_total_len', 'non_unicast_destination', 'local_destination', 'no_route', 'ttl_expired'] as Verdict[]) {
    assert.ok((want.get(r) ?? 0) > 10, `the cases exercise ${r} (${want.get(r) ?? 0})`);
  }
});

test('fuzz: the generator is deterministic for a seed and differs across seeds', () => {
  const a = generate('rx', 7, 200, env);
  const b = generate('rx', 7, 200, env);
  const c = generate('rx', 8, 200, env);
  assert.deepEqual(
    a.map((x) => x.bytes.toString('hex')),
    b.map((x) => x.bytes.toString('hex')),
  );
  assert.notDeepEqual(
    a.map((x) => x.bytes.toString('hex')),
    c.map((x) => x.bytes.toString('hex')),
  );
});
