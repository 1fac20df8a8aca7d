import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseTable, type Lease, type TableChange } from '../../src/routes/lease-table';
import { decodeChanges, encodeChanges } from '../../src/routes/table-change-codec';
import { Ip4Net, parseIp4 } from '../../src/routes/ip4';

const lease = (subnet: string, pub: string): Lease => ({ subnet: Ip4Net.parse(subnet), publicIp: parseIp4(pub), backendType: 'udp' });

test('a turn of lease changes survives the Int32Array round trip, addresses above 2^31 included', () => {
  const src = new LeaseTable(8285);
  const changes: TableChange[] = [];
  src.onChange((c) => changes.push(c));
  src.setLocalSubnet(Ip4Net.parse('198.19.1.0/24'));
  src.upsert(lease('198.19.2.0/24', '198.18.0.2'));
  src.upsert(lease('198.19.3.0/24', '198.18.200.3'));
  src.remove(Ip4Net.parse('198.19.2.0/24'));
  src.upsert(lease('198.19.2.0/24', '198.18.0.9')); // back, elsewhere: order matters
  assert.ok(changes.length >= 4);
  const decoded = decodeChanges(encodeChanges(changes));
  assert.deepEqual(decoded, changes);
  // Applied in order to a copy, the data-plane thread's view equals the control plane's.
  const copy = new LeaseTable(8285);
  for (const c of decoded) copy.applyChange(c);
  assert.equal(copy.lookup(parseIp4('198.19.2.5'))?.publicIp, parseIp4('198.18.0.9'));
  assert.equal(copy.lookup(parseIp4('198.19.3.5'))?.publicIp, parseIp4('198.18.200.3'));
  assert.equal(copy.lookup(parseIp4('198.19.1.5')), undefined);
});

test('a truncated change is refused, not half applied', () => {
  const w = encodeChanges([{ local: null, removed: [], put: [[parseIp4('198.19.2.0'), 24, parseIp4('198.18.0.2'), 1]] }]);
  assert.throws(() => decodeChanges(w.subarray(0, w.length - 1)), /truncated/);
  assert.throws(() => decodeChanges(w.subarray(0, 2)), /truncated/);
  assert.deepEqual(decodeChanges(new Int32Array(0)), []);
});
