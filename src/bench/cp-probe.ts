// The probe marker shared by the control-plane bench's driver and sink.

export const PROBE_MAGIC = 0x46544350; // "FTCP"
export const PROBE_MAGIC2 = 0x50524f42; // "PROB"
/** Probe payload size: large enough that no layer pads the frame behind the marker. */
export const PROBE_SIZE = 32;

export function probePayload(run: number, index: number): Buffer {
  const b = Buffer.alloc(PROBE_SIZE);
  const off = PROBE_SIZE - 16;
  b.writeUInt32BE(PROBE_MAGIC, off);
  b.writeUInt32BE(run >>> 0, off + 4);
  b.writeUInt32BE(index >>> 0, off + 8);
  b.writeUInt32BE(PROBE_MAGIC2, off + 12);
  return b;
}
