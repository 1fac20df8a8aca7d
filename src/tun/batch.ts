// A batch of packets: the unit of work of the whole data plane.
//
// One pooled slab holds `slots` packets of up to `slotSize` bytes each; beside
// it, an Int32Array of descriptors, DESC_WORDS per packet. The C addon reads
// packets into the slab and fills descriptors; TypeScript reads headers in
// place, edits them in place and sets each packet's destination (or drops it
// by setting its length to 0); C then sends from the same bytes. Nothing is
// copied or allocated per packet.
//
// Ownership: a batch belongs to one loop (TUN->UDP or UDP->TUN). Descriptors
// are valid from the call that filled them until the next fill.

/** Byte offset of the packet in `data`. */
export const D_OFF = 0;
/** Packet length in bytes; 0 means dropped (C skips it on send/write). */
export const D_LEN = 1;
/** IPv4 address, host byte order, as int32 bits: the UDP source on receive, destination on send. */
export const D_ADDR = 2;
/** UDP port: the source on receive, destination on send. */
export const D_PORT = 3;
export const DESC_WORDS = 4;

/** Largest IPv4 packet; a slot of this size never truncates a datagram or a TUN read. */
export const MAX_PACKET = 65535;

export class PacketBatch {
  readonly data: Buffer;
  readonly desc: Int32Array;
  /** Number of filled descriptors (set by the reader). */
  count = 0;

  constructor(
    readonly slots: number,
    readonly slotSize: number = MAX_PACKET + 1,
  ) {
    // Buffer.alloc, not allocUnsafe: a pooled slab must never expose stale heap memory.
    this.data = Buffer.alloc(slots * slotSize);
    this.desc = new Int32Array(slots * DESC_WORDS);
  }
}
