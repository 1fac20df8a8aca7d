// The control-plane bench's far end: stands in for every fake peer at once.
// Runs inside the bench's "peers" namespace, which answers for the fake peers'
// public IPs (198.18.64.0/18) and for the overlay (198.19.0.0/16) through
// local routes, so whatever a backend forwards for a fake peer lands here:
//   udp      a datagram to <public IP>:8285 carrying the probe's IP packet
//   vxlan    a datagram to <public IP>:8472 carrying the probe's Ethernet frame
//   host-gw  the probe itself, routed via <public IP> to its overlay address
// Every datagram is searched for the probe's marker; the first sighting of a
// probe is acknowledged to its sender (port `ackPort`) with the monotonic time
// it arrived, which the driver compares with the time it wrote the lease.
//
//   node cp-sink.js <ackPort> <port> [port...]     prints "listening"

import * as dgram from 'node:dgram';
import { PROBE_MAGIC, PROBE_MAGIC2 } from './cp-probe';

const [ackPortS, ...portsS] = process.argv.slice(2);
const ackPort = Number(ackPortS);
const seen = new Set<string>();
const ack = dgram.createSocket('udp4');
let open = 0;

for (const p of portsS.map(Number)) {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
  s.on('message', (msg, rinfo) => {
    const t = process.hrtime.bigint();
    // The marker is 16 bytes: magic, run, index, magic2. Search from the end (it is the payload's tail).
    for (let off = msg.length - 16; off >= 0; off--) {
      if (msg.readUInt32BE(off) !== PROBE_MAGIC || msg.readUInt32BE(off + 12) !== PROBE_MAGIC2) continue;
      const run = msg.readUInt32BE(off + 4);
      const index = msg.readUInt32BE(off + 8);
      const key = `${run}/${index}`;
      if (seen.has(key)) return;
      seen.add(key);
      const reply = Buffer.alloc(16);
      reply.writeUInt32BE(run, 0);
      reply.writeUInt32BE(index, 4);
      reply.writeBigUInt64BE(t, 8);
      ack.send(reply, ackPort, rinfo.address, () => undefined);
      return;
    }
  });
  s.bind(p, '0.0.0.0', () => {
    if (++open === portsS.length) console.log('listening');
  });
}
