import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseTable, type Lease } from '../../src/routes/lease-table';
import { Ip4Net, parseIp4 } from '../../src/routes/ip4';

const lease = (subnet: string, pub: string): Lease => ({ subnet: Ip4Net.parse(subnet), publicIp: parseIp4(pub), backendType: 'udp' });

test('lookup finds the peer owning the destination subnet', () => {
  const t = new LeaseTable(8285);
  t.upsert(lease('198.19.1.0/24', '198.18.0.1'));
  t.upsert(lease('198.19.2.0/24', '198.18.0.2'));
  const p = t.lookup(parseIp4('198.19.2.77'))!;
  assert.equal(p.publicIp, parseIp4('198.18.0.2'));
  assert.equal(p.port, 8285);
  assert.equal(t.lookup(parseIp4('198.19.3.1')), undefined);
  assert.equal(t.lookup(parseIp4('198.18.0.2')), undefined);
});

test('own subnet is never a peer', () => {
  const t = new LeaseTable(8285);
  t.upsert(lease('198.19.1.0/24', '198.18.0.1'));
  const d = t.setLocalSubnet(Ip4Net.parse('198.19.1.0/24'));
  assert.equal(d.removed.length, 1);
  assert.equal(t.lookup(parseIp4('198.19.1.5')), undefined);
  assert.equal(t.upsert(lease('198.19.1.0/24', '198.18.0.1')).added.length, 0);
  assert.equal(t.size, 0);
});

test('upsert reports added, changed (new public IP) and no-op', () => {
  const t = new LeaseTable(8285);
  assert.equal(t.upsert(lease('198.19.1.0/24', '198.18.0.1')).added.length, 1);
  assert.equal(t.upsert(lease('198.19.1.0/24', '198.18.0.1')).added.length, 0);
  const d = t.upsert(lease('198.19.1.0/24', '198.18.0.9'));
  assert.equal(d.changed.length, 1);
  assert.equal(t.peerByAddress(parseIp4('198.18.0.1')), undefined, 'old public IP is no longer a peer');
  assert.ok(t.peerByAddress(parseIp4('198.18.0.9')));
  assert.equal(t.lookup(parseIp4('198.19.1.1'))!.index, d.changed[0].index, 'index is stable across a change');
});

test('remove and peerByAddress with shared public IPs (NATed hosts)', () => {
  const t = new LeaseTable(8285);
  t.upsert(lease('198.19.1.0/24', '198.18.0.1'));
  t.upsert(lease('198.19.2.0/24', '198.18.0.1'));
  t.remove(Ip4Net.parse('198.19.1.0/24'));
  assert.ok(t.peerByAddress(parseIp4('198.18.0.1')), 'still carried by the other lease');
  t.remove(Ip4Net.parse('198.19.2.0/24'));
  assert.equal(t.peerByAddress(parseIp4('198.18.0.1')), undefined);
  assert.equal(t.remove(Ip4Net.parse('198.19.2.0/24')).removed.length, 0);
});

test('reset returns the difference from the current table', () => {
  const t = new LeaseTable(8285);
  t.upsert(lease('198.19.1.0/24', '198.18.0.1'));
  t.upsert(lease('198.19.2.0/24', '198.18.0.2'));
  const d = t.reset([lease('198.19.2.0/24', '198.18.0.2'), lease('198.19.3.0/24', '198.18.0.3')]);
  assert.deepEqual(
    d.removed.map((p) => String(p.subnet)),
    ['198.19.1.0/24'],
  );
  assert.deepEqual(
    d.added.map((p) => String(p.subnet)),
    ['198.19.3.0/24'],
  );
  assert.equal(t.size, 2);
});

test('mixed subnet lengths: the longest match wins, one probe per length', () => {
  const t = new LeaseTable(8285);
  t.upsert(lease('198.19.0.0/20', '198.18.0.1'));
  t.upsert(lease('198.19.4.0/24', '198.18.0.2'));
  assert.equal(t.lookup(parseIp4('198.19.4.1'))!.publicIp, parseIp4('198.18.0.2'));
  assert.equal(t.lookup(parseIp4('198.19.5.1'))!.publicIp, parseIp4('198.18.0.1'));
  t.remove(Ip4Net.parse('198.19.4.0/24'));
  assert.equal(t.lookup(parseIp4('198.19.4.1'))!.publicIp, parseIp4('198.18.0.1'));
});

test('10 000 leases: lookups stay exact', () => {
  const t = new LeaseTable(8285);
  for (let i = 0; i < 10000; i++) {
    t.upsert({ subnet: new Ip4Net(parseIp4('198.19.0.0') + i * 4, 30), publicIp: parseIp4('198.18.0.0') + i + 1, backendType: 'udp' });
  }
  for (let i = 0; i < 10000; i += 97) {
    assert.equal(t.lookup(parseIp4('198.19.0.0') + i * 4 + 2)!.publicIp, parseIp4('198.18.0.0') + i + 1);
  }
});
