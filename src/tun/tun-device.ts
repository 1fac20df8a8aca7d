// The TUN device (flannel0): batches of IP packets in and out.
import type { PacketBatch } from './batch';
import { FdHandle } from './fd-handle';
import { native, type TunOffloads } from './native';

export interface TunOpenOptions {
  /** IFF_MULTI_QUEUE: open() again with the same name attaches another queue (one per worker). */
  multiQueue?: boolean;
  /**
   * IFF_VNET_HDR (default false): the kernel and the addon exchange a 10-byte
   * virtio_net_hdr with every packet, which lets write() hand the kernel
   * coalesced TCP super-packets (see gro). Invisible to callers: descriptors
   * still describe bare IPv4 packets; a read slot holds up to slotSize - 10
   * bytes of packet. A device property: all queues must agree.
   */
  vnetHdr?: boolean;
  /**
   * With vnetHdr (default true): write() merges runs of TCPv4 segments of one
   * flow into one GSO write, so the kernel runs its receive path once per
   * ~40 segments. Turns itself off if the kernel refuses GSO writes.
   */
  gro?: boolean;
  /**
   * With vnetHdr (default false): TUNSETOFFLOAD CSUM|TSO4, so the kernel
   * hands over TCP super-packets of up to 64 KiB instead of segmenting them,
   * and read() splits them into MTU-sized packets in the batch. Reads need
   * batches with slotSize >= TSO_MIN_SLOT and room for many descriptors
   * (`new PacketBatch(n, TSO_MIN_SLOT, n * 64)`). Left off if the kernel refuses.
   */
  tso?: boolean;
}

/**
 * An open TUN queue (IFF_TUN | IFF_NO_PI: every read and write is one bare IP
 * packet, as far as callers see). Opening creates the device if needed; it is
 * not persistent, so closing the last queue deletes it. Addresses, MTU and
 * routes are configured elsewhere (iproute2). Not thread-safe: use a
 * TunDevice from one thread.
 */
export class TunDevice extends FdHandle {
  private constructor(
    fd: number,
    /** The kernel's name for the device. */
    readonly name: string,
    owned = true,
  ) {
    super(fd, owned);
  }

  /**
   * A TunDevice for an fd another object owns, e.g. in a worker thread for the
   * main thread's flannel0 (fds are process-wide; the addon probes the fd's
   * offloads in this thread). close() stops this object's watcher and leaves
   * the fd open; the owner closes it.
   */
  static attach(fd: number, name: string): TunDevice {
    native().tunOffloads(fd); // throws now for an fd that is not a TUN device
    return new TunDevice(fd, name, false);
  }

  /** Throws an Error with `code` (e.g. 'EPERM' without CAP_NET_ADMIN, 'EINVAL' for a bad name). */
  static open(name = 'flannel0', opts: TunOpenOptions = {}): TunDevice {
    const r = native().tunOpen(name, opts.multiQueue ?? false, opts.vnetHdr ?? false, opts.gro ?? true, opts.tso ?? false);
    return new TunDevice(r.fd, r.name);
  }

  /** The offloads in use now (gro goes off by itself after the kernel refuses a GSO write). */
  get offloads(): TunOffloads {
    return native().tunOffloads(this.liveFd());
  }

  /**
   * Reads up to batch.slots packets (until the queue is empty) into the batch's
   * slots; sets batch.count, batch.readInfo and D_OFF/D_LEN of rows
   * 0..count-1. Returns count, 0 when nothing is queued. A packet longer than
   * slotSize (slotSize - 10 with vnetHdr) is truncated. With tso, super-packets
   * become one row per segment (count may exceed slots; see batch.ts).
   */
  read(batch: PacketBatch): number {
    batch.count = native().tunRead(this.liveFd(), batch.data, batch.desc, batch.slots, batch.slotSize, batch.readInfo);
    return batch.count;
  }

  /**
   * Writes rows 0..count-1 whose D_LEN > 0 (D_OFF/D_LEN may point anywhere in
   * batch.data). Returns how many packets (rows) were written; packets the
   * kernel refused (malformed, device down) are skipped, not retried. With
   * gro, TCP segments of a flow may leave as one GSO write, and packets of
   * different flows in another order than their rows (never within a flow).
   * batch.data is left as it was.
   */
  write(batch: PacketBatch, count: number = batch.count): number {
    return native().tunWrite(this.liveFd(), batch.data, batch.desc, count);
  }
}
