// The underlay UDP socket (port 8285): batches of datagrams in and out, with
// UDP GSO on send and UDP GRO on receive when the kernel allows. Offloads never
// change the wire: every datagram is still exactly one IPv4 packet.
import type { PacketBatch } from './batch';
import { FdHandle } from './fd-handle';
import { native } from './native';

export interface UdpOpenOptions {
  /** SO_RCVBUF(FORCE) in bytes; 0/undefined keeps the system default. */
  rcvbuf?: number;
  /** SO_SNDBUF(FORCE) in bytes; 0/undefined keeps the system default. */
  sndbuf?: number;
  /**
   * UDP GSO on send (default true): runs of same-size packets to one
   * destination leave in one syscall message, cut by the kernel. Turned off
   * by itself at the first refusal (e.g. no checksum offload on the device).
   */
  gso?: boolean;
  /**
   * UDP GRO on receive (default true; on only if the kernel accepts UDP_GRO).
   * Then recv() needs a batch of 65536-byte slots with 64 descriptors per
   * slot: `new PacketBatch(n, 65536, n * 64)`.
   */
  gro?: boolean;
}

export interface UdpOffloads {
  gso: boolean;
  gro: boolean;
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

  private constructor(fd: number, owned = true) {
    super(fd, owned);
  }

  /**
   * A UdpSocket for an fd another object owns (the data-plane thread uses the
   * main thread's socket; fds are process-wide, the addon probes the fd's
   * offloads in this thread). close() leaves the fd open.
   */
  static attach(fd: number): UdpSocket {
    native().udpOffloads(fd); // throws now for an fd that is not a socket
    return new UdpSocket(fd, false);
  }

  /** Binds bindIp:port (IPv4 host byte order; 0 = any). Throws an Error with `code` (e.g. 'EADDRINUSE'). */
  static open(bindIp: number, port: number, opts: UdpOpenOptions = {}): UdpSocket {
    return new UdpSocket(native().udpOpen(bindIp, port, opts.rcvbuf ?? 0, opts.sndbuf ?? 0, { gso: opts.gso ?? true, gro: opts.gro ?? true }));
  }

  /** The local port (an ephemeral one when opened with port 0). */
  get localPort(): number {
    return native().udpLocalPort(this.liveFd());
  }

  /** The offloads in use now (GSO goes off by itself after a refusal). */
  get offloads(): UdpOffloads {
    return native().udpOffloads(this.liveFd());
  }

  /**
   * Receives queued datagrams with one recvmmsg; sets batch.count and all
   * four words of rows 0..count-1 (D_ADDR/D_PORT = the source). Returns
   * count, the number of datagrams (descriptors), which with GRO may exceed
   * batch.slots: one slot then holds several datagrams, each with its own
   * descriptor. Without GRO at most min(batch.slots, MAX_BATCH) datagrams;
   * with GRO at most min(batch.slots, descCapacity / 64) messages of up to 64
   * datagrams each, and the batch must have slotSize >= 65536 and
   * descCapacity >= 64 (RangeError otherwise). D_LEN = -1 marks a datagram
   * longer than slotSize: drop it.
   */
  recv(batch: PacketBatch): number {
    batch.count = native().udpRecv(this.liveFd(), batch.data, batch.desc, batch.slots, batch.slotSize);
    return batch.count;
  }

  /**
   * Sends rows 0..count-1 whose D_LEN > 0 to D_ADDR:D_PORT (count <=
   * MAX_BATCH), one datagram per row, in order. With GSO, consecutive rows to
   * the same destination with the same length share a syscall message.
   * Returns how many packets (rows) were sent; refused datagrams (too big,
   * unreachable, buffer still full after the timeout) are skipped.
   */
  send(batch: PacketBatch, count: number = batch.count): number {
    return native().udpSend(this.liveFd(), batch.data, batch.desc, count);
  }
}
