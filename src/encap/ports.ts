// The pump's view of the two devices it moves batches between: the seam for
// tests (as wireguard-go's tun.Device and conn.Bind). In flanneld they are
// TunDevice and UdpSocket (src/tun); unit tests pass channel fakes
// (test/lib/channel-ports.ts) and check the pump's budget, drain, ICMP
// write-back and its accounting of partial sends without a kernel.
//
// Callers' rules (as TunDevice/UdpSocket's, which these restate):
// - read/recv fill rows 0..count-1 of the batch, set batch.count and return
//   it (0: nothing queued). TUN reads also set batch.readInfo.
// - write/send move rows 0..count-1 whose D_LEN > 0 and return how many
//   went; every row that was to go but did not comes back with D_LEN = 0, so
//   the rows still > 0 are exactly what went.
// - The batch belongs to the caller; a port touches it only during the call.

import type { PacketBatch } from '../tun/batch';

export interface TunPort {
  read(batch: PacketBatch): number;
  write(batch: PacketBatch, count: number): number;
}

export interface UdpPort {
  recv(batch: PacketBatch): number;
  send(batch: PacketBatch, count: number): number;
}
