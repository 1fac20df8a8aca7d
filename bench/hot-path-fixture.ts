// A realistic batch for measuring the TypeScript hot path without a kernel:
// 64 packets of 1400 bytes to a few peers, a lease table of 100 peers.

import { Counters } from '../src/encap/counters';
import { Decapsulator } from '../src/encap/decapsulator';
import { Encapsulator } from '../src/encap/encapsulator';
import { IcmpResponder } from '../src/encap/icmp';
import * as ip from '../src/encap/ipv4';
import { Ip4Net, parseIp4 } from '../src/routes/ip4';
import { LeaseTable } from '../src/routes/lease-table';
import { D_ADDR, D_LEN, D_OFF, DESC_WORDS, PacketBatch } from '../src/tun/batch';

export const PACKETS = 64;
const SIZE = 1400;

export function hotPathFixture() {
  const table = new LeaseTable(8285);
  table.setLocalSubnet(Ip4Net.parse('198.19.0.0/24'));
  for (let i = 1; i <= 100; i++) {
    table.upsert({ subnet: new Ip4Net(parseIp4('198.19.0.0') + i * 256, 24), publicIp: parseIp4('198.18.0.0') + i, backendType: 'udp' });
  }
  const counters = new Counters();
  const encap = new Encapsulator(table, counters, new IcmpResponder());
  const decap = new Decapsulator(table, counters);

  const make = (dir: 'tx' | 'rx') => {
    const b = new PacketBatch(PACKETS, 2048);
    for (let i = 0; i < PACKETS; i++) {
      const off = i * 2048;
      const d = b.data;
      d[off] = 0x45;
      d.writeUInt16BE(SIZE, off + 2);
      d[off + 8] = 64;
      d[off + 9] = ip.PROTO_TCP;
      const peer = 1 + (i % 3);
      ip.writeAddr(d, off + 12, dir === 'tx' ? parseIp4('198.19.0.2') : parseIp4(`198.19.${peer}.2`));
      ip.writeAddr(d, off + 16, dir === 'tx' ? parseIp4(`198.19.${peer}.2`) : parseIp4('198.19.0.2'));
      ip.setHeaderChecksum(d, off);
      b.desc[i * DESC_WORDS + D_OFF] = off;
      b.desc[i * DESC_WORDS + D_ADDR] = (parseIp4('198.18.0.0') + peer) | 0;
    }
    const ttlSum = Buffer.alloc(PACKETS * 3);
    for (let i = 0; i < PACKETS; i++) {
      b.data.copy(ttlSum, i * 3, i * 2048 + 8, i * 2048 + 9);
      b.data.copy(ttlSum, i * 3 + 1, i * 2048 + 10, i * 2048 + 12);
    }
    /** Puts back TTL, checksum and lengths the last run changed: 4 writes per packet. */
    const reset = () => {
      b.count = PACKETS;
      for (let i = 0, o = 0; i < PACKETS; i++, o += 2048) {
        b.data[o + 8] = ttlSum[i * 3];
        b.data[o + 10] = ttlSum[i * 3 + 1];
        b.data[o + 11] = ttlSum[i * 3 + 2];
        b.desc[i * DESC_WORDS + D_LEN] = SIZE;
      }
    };
    reset();
    return { batch: b, reset };
  };
  return { table, counters, encap, decap, tx: make('tx'), rx: make('rx') };
}
