// Hand-built IPv4 packets for injection tests.
import { parseIp4 } from '../../src/routes/ip4';
import * as ip from '../../src/encap/ipv4';

/** An IPv4/UDP packet src:1234 -> dst:dport with `payload`, checksums set (UDP checksum 0 = none). */
export function udpPacket(src: string, dst: string, dport: number, payload = Buffer.from('flannel-ts')): Buffer {
  const b = Buffer.alloc(28 + payload.length);
  b[0] = 0x45;
  b.writeUInt16BE(b.length, 2);
  b[8] = 64;
  b[9] = ip.PROTO_UDP;
  ip.writeAddr(b, 12, parseIp4(src));
  ip.writeAddr(b, 16, parseIp4(dst));
  ip.setHeaderChecksum(b, 0);
  b.writeUInt16BE(1234, 20);
  b.writeUInt16BE(dport, 22);
  b.writeUInt16BE(8 + payload.length, 24);
  payload.copy(b, 28);
  return b;
}
