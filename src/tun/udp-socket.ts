// The underlay UDP socket (port 8285): batches of datagrams in and out.
import { PacketBatch } from './batch';
import { FdHandle } from './fd-handle';
import { native } from './native';

export interface UdpOpenOptions {
  /** SO_RCVBUF(FORCE) in bytes; 0/undefined keeps the system default. */
  rcvbuf?: number;
  /** SO_SNDBUF(FORCE) in bytes; 0/undefined keeps the system default. */
  sndbuf?: number;
}

/**
 * An IPv4 UDP socket moving PacketBatches with recvmmsg/sendmmsg. Sends block
 * for at most ~100 ms when the send buffer is full (backpressure), receives
 * never block. Not thread-safe: use a UdpSocket from one thread.
 */
export class UdpSocket extends FdHandle {
  /** Most datagrams per recv/send call; send() rejects larger counts. */
  static get MAX_BATCH(): number {
    return native().MAX_BATCH;
  }

  private constructor(fd: number) {
    super(fd);
  }

  /** Binds bindIp:port (IPv4 host byte order; 0 = any). Throws an Error with `code` (e.g. 'EADDRINUSE'). */
  static open(bindIp: number, port: number, opts: UdpOpenOptions = {}): UdpSocket {
    return new UdpSocket(native().udpOpen(bindIp, port, opts.rcvbuf ?? 0, opts.sndbuf ?? 0));
  }

  /**
   * Receives up to min(batch.slots, MAX_BATCH) queued datagrams; sets
   * batch.count and all four words of rows 0..count-1 (D_ADDR/D_PORT = the
   * source). D_LEN = -1 marks a datagram longer than slotSize: drop it.
   */
  recv(batch: PacketBatch): number {
    batch.count = native().udpRecv(this.liveFd(), batch.data, batch.desc, batch.slots, batch.slotSize);
    return batch.count;
  }

  /**
   * Sends rows 0..count-1 whose D_LEN > 0 to D_ADDR:D_PORT (count <=
   * MAX_BATCH). Returns how many were sent; refused datagrams (too big,
   * unreachable, buffer still full after the timeout) are skipped.
   */
  send(batch: PacketBatch, count: number = batch.count): number {
    return native().udpSend(this.liveFd(), batch.data, batch.desc, count);
  }
}
