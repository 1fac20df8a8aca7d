// Channel fakes of the pump's ports (src/encap/ports.ts), as wireguard-go's
// tuntest and bindtest: queues in memory instead of flannel0 and a socket.
// A fake, not the kernel, because the cases they serve cannot be caused on
// demand with the real devices: a send that fails for exactly some rows, a
// queue that holds exactly N packets when the pump wakes. They follow the
// ports' rules: reads fill rows and batch.count; writes move rows with
// D_LEN > 0 and set a refused row's D_LEN to 0.

import type { TunPort, UdpPort } from '../../src/encap/ports';
import { D_ADDR, D_LEN, D_OFF, D_PORT, DESC_WORDS, type PacketBatch, READ_INFO_DRAINED } from '../../src/tun/batch';

export interface Datagram {
  bytes: Buffer;
  addr: number;
  port: number;
}

export class ChannelTun implements TunPort {
  /** Packets waiting to be read, oldest first. */
  readonly inbound: Buffer[] = [];
  /** Packets written into the "device", in order. */
  readonly written: Buffer[] = [];
  reads = 0;
  /** Rows (by their index in the write call) to refuse. */
  refuse: (row: number, bytes: Buffer) => boolean = () => false;

  read(b: PacketBatch): number {
    this.reads++;
    let n = 0;
    while (n < b.slots && this.inbound.length > 0) {
      const p = this.inbound.shift()!;
      const off = n * b.slotSize;
      p.copy(b.data, off);
      b.desc[n * DESC_WORDS + D_OFF] = off;
      b.desc[n * DESC_WORDS + D_LEN] = p.length;
      b.desc[n * DESC_WORDS + D_ADDR] = 0;
      b.desc[n * DESC_WORDS + D_PORT] = 0;
      n++;
    }
    b.readInfo.fill(0);
    b.readInfo[READ_INFO_DRAINED] = this.inbound.length === 0 ? 1 : 0;
    b.count = n;
    return n;
  }

  write(b: PacketBatch, count: number): number {
    let ok = 0;
    for (let i = 0; i < count; i++) {
      const len = b.desc[i * DESC_WORDS + D_LEN];
      if (len <= 0) continue;
      const off = b.desc[i * DESC_WORDS + D_OFF];
      const bytes = Buffer.from(b.data.subarray(off, off + len));
      if (this.refuse(i, bytes)) {
        b.desc[i * DESC_WORDS + D_LEN] = 0;
        continue;
      }
      this.written.push(bytes);
      ok++;
    }
    return ok;
  }
}

export class ChannelUdp implements UdpPort {
  readonly inbound: Datagram[] = [];
  readonly sent: Datagram[] = [];
  recvs = 0;
  /** Rows (by their index in the send call) the "kernel" refuses. */
  refuse: (row: number, d: Datagram) => boolean = () => false;

  recv(b: PacketBatch): number {
    this.recvs++;
    let n = 0;
    while (n < b.slots && this.inbound.length > 0) {
      const d = this.inbound.shift()!;
      const off = n * b.slotSize;
      d.bytes.copy(b.data, off);
      b.desc[n * DESC_WORDS + D_OFF] = off;
      b.desc[n * DESC_WORDS + D_LEN] = d.bytes.length;
      b.desc[n * DESC_WORDS + D_ADDR] = d.addr | 0;
      b.desc[n * DESC_WORDS + D_PORT] = d.port;
      n++;
    }
    b.count = n;
    return n;
  }

  send(b: PacketBatch, count: number): number {
    let ok = 0;
    for (let i = 0; i < count; i++) {
      const k = i * DESC_WORDS;
      const len = b.desc[k + D_LEN];
      if (len <= 0) continue;
      const off = b.desc[k + D_OFF];
      const d = { bytes: Buffer.from(b.data.subarray(off, off + len)), addr: b.desc[k + D_ADDR] >>> 0, port: b.desc[k + D_PORT] };
      if (this.refuse(i, d)) {
        b.desc[k + D_LEN] = 0;
        continue;
      }
      this.sent.push(d);
      ok++;
    }
    return ok;
  }
}
