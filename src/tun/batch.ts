// A batch of packets: the unit of work of the whole data plane.
//
// One pooled slab holds `slots` buffers of `slotSize` bytes each; beside it,
// an Int32Array of `descCapacity` descriptors, DESC_WORDS each, one per packet.
// The C addon reads packets into the slab and fills descriptors; TypeScript
// reads headers in place, edits them in place and sets each packet's
// destination (or drops it by setting its length to 0); C then sends from the
// same bytes. Nothing is copied or allocated per packet.
//
// Usually one packet fills one slot and descriptor i points into slot i. A UDP
// receive with GRO is the exception: one slot then holds up to 64 datagrams
// that arrived coalesced, and each gets its own descriptor pointing into that
// slot, so there are more descriptors than slots (count may exceed slots).
// Such a batch needs 65536-byte slots and 64 descriptors per slot:
// `new PacketBatch(64, 65536, 64 * 64)` (see UdpSocket.recv).
//
// A TUN opened with vnetHdr reads a 10-byte virtio_net_hdr into the start of
// each slot: its packet is at slot offset + 10 (D_OFF says so) and at most
// slotSize - 10 bytes long. Descriptors always describe bare IPv4 packets.
//
// A TUN with TSO reads "packed" instead: reads land one after another in
// `data` (slotSize >= 65545 each), and a TCP super-packet of up to 64 KiB is
// split in place into MTU-sized segments, one descriptor each, so count may
// exceed slots. On such a read, D_PORT of a super-packet's first segment is
// its number of segments k (the next k - 1 rows are the rest; they differ
// only in length, IP ID, sequence number, FIN/PSH and checksums), else 0.
// `readInfo` says what the last TUN read did (READ_INFO_*).
//
// Callers' rules: descriptors say where packets are; never assume descriptor i
// is at i * slotSize. Read only rows 0..count-1. On send, rows may point
// anywhere inside `data` (UDP GSO groups consecutive rows to the same
// destination with the same length, wherever they lie).
//
// Ownership: a batch belongs to one loop (TUN->UDP or UDP->TUN). Descriptors
// are valid from the call that filled them until the next fill.

/** Byte offset of the packet in `data`. */
export const D_OFF = 0;
/**
 * Packet length in bytes; 0 means dropped (C skips it on send/write). After
 * udpSend/tunWrite a row the kernel refused is set to 0 as well, so the rows
 * still > 0 are exactly the packets that went (exact byte and peer counts).
 */
export const D_LEN = 1;
/** IPv4 address, host byte order, as int32 bits: the UDP source on receive, destination on send. */
export const D_ADDR = 2;
/** UDP port: the source on receive, destination on send. */
export const D_PORT = 3;
export const DESC_WORDS = 4;

/** Most rows one udpRecv/udpSend call handles (the addon's MAX_BATCH). */
export const MAX_BATCH = 1024;

/** Largest IPv4 packet; a slot of this size never truncates a datagram or a TUN read. */
export const MAX_PACKET = 65535;

/** Most datagrams the kernel coalesces into one UDP GRO receive (UDP_GRO_CNT_MAX). */
export const GRO_MAX_SEGMENTS = 64;

/** Least slotSize for reading a TUN with TSO: a 65535-byte super-packet behind its 10-byte virtio_net_hdr. */
export const TSO_MIN_SLOT = 65545;

// PacketBatch.readInfo after TunDevice.read; [0], the packets read, is also read()'s return value.
/** 1 when the read stopped because the queue was empty (EAGAIN), 0 when the batch filled up. */
export const READ_INFO_DRAINED = 1;
/** TCP super-packets split (TSO). */
export const READ_INFO_SUPER = 2;
/** Rows those super-packets made. */
export const READ_INFO_SEGMENTS = 3;
/** Reads dropped by the addon: a malformed or unexpected GSO packet, or one too big for the batch. */
export const READ_INFO_DROPPED = 4;
/** 1 when a super-packet did not fit behind what the batch held and was kept for the next read (split first then). */
export const READ_INFO_STASHED = 5;
/** Words of readInfo. */
export const READ_INFO_WORDS = 6;

export class PacketBatch {
  readonly data: Buffer;
  readonly desc: Int32Array;
  /** Number of filled descriptors (set by the reader); may exceed `slots` after a GRO receive or a TSO read. */
  count = 0;
  /** What the last TunDevice.read did: READ_INFO_* words. */
  readonly readInfo = new Int32Array(READ_INFO_WORDS);

  /**
   * @param slots buffers of `slotSize` bytes in `data`
   * @param descCapacity descriptor rows in `desc` (>= slots; default slots).
   *   A UDP receive batch with GRO wants slots * GRO_MAX_SEGMENTS.
   */
  constructor(
    readonly slots: number,
    readonly slotSize: number = MAX_PACKET + 1,
    readonly descCapacity: number = slots,
  ) {
    if (!Number.isInteger(descCapacity) || descCapacity < slots) {
      throw new RangeError(`descCapacity must be an integer >= slots (${slots}), got ${descCapacity}`);
    }
    // Buffer.alloc, not allocUnsafe: a pooled slab must never expose stale heap memory.
    this.data = Buffer.alloc(slots * slotSize);
    // Fault every page in now. A large zeroed slab comes from mmap untouched,
    // so otherwise the kernel supplies its pages on first use: in the hot path
    // (a page fault the first time a bigger burst reaches a slot) and for
    // minutes after start, which showed as RSS creeping up in the soak.
    // fill(0) stores to each page; a read would map the shared zero page only.
    this.data.fill(0);
    this.desc = new Int32Array(descCapacity * DESC_WORDS);
  }
}
