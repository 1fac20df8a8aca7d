// The addon's test build (build/Release/flannel_tun_test.node, binding.gyp's
// flannel_tun_test target): the product's exports plus the test hooks, which
// the production addon does not have. Loaded by tests only.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FlannelTunNative } from '../../src/tun/native';

/** One writev of tunWrite as planned by groPlan. */
export interface GroUnit {
  /** Rows of the batch in this write, in order; more than one = a GSO super-packet. */
  rows: number[];
  /** The 10-byte virtio_net_hdr written first (all zero for a plain packet). */
  vnetHdr: Buffer;
  /** A super-packet's IP + TCP header as written (the first row's, patched); null for a plain packet. */
  header: Buffer | null;
}

export interface FlannelTunTestNative extends FlannelTunNative {
  /** what tunWrite with gro would write for rows 0..count-1, one
   *  unit per writev, in order; no syscall, data is left unchanged. */
  groPlan(data: Buffer, desc: Int32Array, count: number): GroUnit[];
  /** what tunRead does with one read on a TSO fd, without a
   *  syscall. data[0..len) holds a 10-byte virtio_net_hdr (host byte order)
   *  and a packet as the kernel hands them over; it is checksummed or split
   *  in place, rows of desc filled as tunRead fills them. Returns the rows,
   *  0 if tunRead would drop the packet, -1 if data/desc are too small. */
  tsoSplit(data: Buffer, desc: Int32Array, len: number): number;
  /** the folded ones-complement sum (not inverted) of
   *  data[offset..offset+length), as a 16-bit big-endian number; 0xffff over
   *  a header or segment whose checksum is right. */
  onesSum(data: Buffer, offset: number, length: number): number;
  /** the next GSO write on fd carries a header the kernel refuses (EINVAL). */
  tunTestRefuseGso(fd: number): void;
}

// dist/test/lib/native-test.js -> <root>/build.
const FILE = path.resolve(__dirname, '..', '..', '..', 'build', 'Release', 'flannel_tun_test.node');

let loaded: FlannelTunTestNative | undefined;

/** The test build of the addon; throws (failing the test) if it was not built. */
export function testNative(): FlannelTunTestNative {
  if (loaded) return loaded;
  if (!fs.existsSync(FILE)) throw new Error(`the addon's test build is missing (${FILE}): run npm ci, or npm run install (node-gyp rebuild)`);
  loaded = require(FILE) as FlannelTunTestNative;
  return loaded;
}
