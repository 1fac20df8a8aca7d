// The TUN device (flannel0): batches of IP packets in and out.
import { PacketBatch } from './batch';
import { FdHandle } from './fd-handle';
import { native } from './native';

export interface TunOpenOptions {
  /** IFF_MULTI_QUEUE: open() again with the same name attaches another queue (one per worker). */
  multiQueue?: boolean;
}

/**
 * An open TUN queue (IFF_TUN | IFF_NO_PI: every read and write is one bare IP
 * packet). Opening creates the device if needed; it is not persistent, so
 * closing the last queue deletes it. Addresses, MTU and routes are configured
 * elsewhere (iproute2). Not thread-safe: use a TunDevice from one thread.
 */
export class TunDevice extends FdHandle {
  private constructor(
    fd: number,
    /** The kernel's name for the device. */
    readonly name: string,
  ) {
    super(fd);
  }

  /** Throws an Error with `code` (e.g. 'EPERM' without CAP_NET_ADMIN, 'EINVAL' for a bad name). */
  static open(name = 'flannel0', opts: TunOpenOptions = {}): TunDevice {
    const r = native().tunOpen(name, opts.multiQueue ?? false);
    return new TunDevice(r.fd, r.name);
  }

  /**
   * Reads up to batch.slots packets (until the queue is empty) into the batch's
   * slots; sets batch.count and D_OFF/D_LEN of rows 0..count-1. Returns count,
   * 0 when nothing is queued. A packet longer than slotSize is truncated.
   */
  read(batch: PacketBatch): number {
    batch.count = native().tunRead(this.liveFd(), batch.data, batch.desc, batch.slots, batch.slotSize);
    return batch.count;
  }

  /**
   * Writes rows 0..count-1 whose D_LEN > 0 (D_OFF/D_LEN may point anywhere in
   * batch.data). Returns how many were written; packets the kernel refused
   * (malformed, device down) are skipped, not retried.
   */
  write(batch: PacketBatch, count: number = batch.count): number {
    return native().tunWrite(this.liveFd(), batch.data, batch.desc, count);
  }
}
