// What the main thread and the data-plane thread share: the lease table's
// changes (applied to a copy that keeps peer indices) and the counters'
// memory (read by /metrics while the thread writes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { Counters } from '../../src/encap/counters';
import { Ip4Net, parseIp4 } from '../../src/routes/ip4';
import { LeaseTable, type TableChange } from '../../src/routes/lease-table';

const lease = (subnet: string, ip: string) => ({ subnet: Ip4Net.parse(subnet), publicIp: parseIp4(ip), backendType: 'udp' });

test('a copy fed with onChange follows every change of the table, peer indices included', () => {
  const main = new LeaseTable(8285);
  const copy = new LeaseTable(8285);
  const changes: TableChange[] = [];
  main.onChange((c) => {
    changes.push(c);
    copy.applyChange(c);
  });
  main.setLocalSubnet(Ip4Net.parse('198.19.1.0/24'));
  main.upsert(lease('198.19.2.0/24', '198.18.0.2'));
  main.upsert(lease('198.19.3.0/24', '198.18.0.3'));
  main.upsert(lease('198.19.2.0/24', '198.18.0.22')); // moved to another host
  main.remove(Ip4Net.parse('198.19.3.0/24'));
  main.reset([lease('198.19.2.0/24', '198.18.0.22'), lease('198.19.4.0/24', '198.18.0.4')]);
  main.upsert(lease('198.19.4.0/24', '198.18.0.4')); // no change: no message
  assert.equal(changes.length, 6);
  assert.deepEqual(copy.describe().sort(), main.describe().sort());
  for (const p of main.peers()) assert.equal(copy.lookup(p.subnet.ip + 5)?.index, p.index, `${p.subnet}: same index`);
  assert.equal(copy.lookup(parseIp4('198.19.3.9')), undefined, 'removed');
  assert.equal(copy.peerByAddress(parseIp4('198.18.0.2')), undefined, 'the old host of a moved subnet is gone');
  assert.equal(copy.localSubnet?.toString(), '198.19.1.0/24');
  // A fresh copy from a snapshot is the same table.
  const late = new LeaseTable(8285);
  late.applyChange(main.snapshot());
  assert.deepEqual(late.describe().sort(), main.describe().sort());
});

test('counters written on another thread are read here from the same memory, growth included', async () => {
  const c = new Counters();
  const src = `
    const { workerData, parentPort } = require('node:worker_threads');
    const { Counters } = require(${JSON.stringify(require.resolve('../../src/encap/counters'))});
    const c = new Counters(workerData);
    c.onPeerGrown = (peer) => parentPort.postMessage({ peer });
    c.txPackets += 5; c.rxBytes += 1500; c.txDrops[3] += 2;
    const s = c.peerSlot(500); // beyond the first 64 peers: the buffer grows
    c.peer[s] += 7;
    parentPort.postMessage({ done: true });`;
  const w = new Worker(src, { eval: true, workerData: c.shared });
  await new Promise<void>((resolve, reject) => {
    w.on('message', (m: { peer?: SharedArrayBuffer; done?: boolean }) => {
      if (m.peer) c.adoptPeer(m.peer);
      if (m.done) resolve();
    });
    w.on('error', reject);
  });
  await w.terminate();
  assert.equal(c.txPackets, 5);
  assert.equal(c.rxBytes, 1500);
  assert.equal(c.txDrops[3], 2);
  assert.equal(c.peerWord(500, 0), 7, 'the grown per-peer buffer was adopted');
  assert.equal(c.peerWord(9999, 0), 0, 'an index never counted reads 0');
});
