// The flannel_tun addon (src/tun/native/*.c, built by node-gyp at `npm ci`),
// loaded lazily so that code which never touches the data plane (unit tests,
// the CLI's help) works without it.
//
// Rules for every batch call (see batch.ts for the descriptor layout):
// - fds are plain ints owned by the caller: the addon never closes one except
//   in closeFd, and never keeps one after a call returns (pollStart keeps the
//   number until pollStop).
// - `data`/`desc` belong to the caller; the addon touches them only during the
//   call. Every descriptor is checked against `data` before any syscall: a row
//   outside it is a RangeError, never an out-of-bounds access.
// - Readers return the number of descriptors filled. Usually descriptor i is
//   slot i, but a UDP GRO receive cuts one slot into several descriptors, so
//   udpRecv may fill more rows than `max`; always go by D_OFF.
// - Addresses are IPv4 in host byte order as int32 bits (198.18.0.1 is
//   0xc6120001 | 0); ports are plain numbers.
// - Syscall failures throw an Error with `code` (errno name, e.g. 'EPERM'),
//   `errno` (number) and `syscall` (the export's name). Wrong argument types
//   throw TypeError; out-of-range numbers and rows, RangeError.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as batch from './batch';
import { FlannelError } from '../util/errors';

export interface TunOpenResult {
  fd: number;
  /** The kernel's name for the device (differs from the request for "" or "tun%d"). */
  name: string;
}

export interface TunOffloads {
  /** IFF_VNET_HDR: reads and writes carry a 10-byte virtio_net_hdr (hidden from JS). */
  vnetHdr: boolean;
  /** tunWrite coalesces TCPv4 segments into GSO writes (off by request, or after the kernel refused one). */
  gro: boolean;
  /**
   * TUNSETOFFLOAD CSUM|TSO4 is on: tunRead may get TCPv4 super-packets and
   * splits them into MTU-sized segments (packed layout, slotSize >= 65545).
   */
  tso: boolean;
}

export interface FlannelTunNative {
  /** Opens /dev/net/tun (non-blocking, close-on-exec) and attaches it to a
   *  TUN device, IFF_TUN|IFF_NO_PI (|IFF_MULTI_QUEUE) (|IFF_VNET_HDR with a
   *  10-byte header when vnetHdr, default false). Non-persistent: closing
   *  the last fd deletes the device. Names longer than 15 bytes throw EINVAL.
   *  gro (default true) matters only with vnetHdr: see tunWrite. tso
   *  (default false, only with vnetHdr) asks the kernel for TCPv4
   *  super-packets (TUNSETOFFLOAD CSUM|TSO4), which tunRead splits; a kernel
   *  that refuses leaves it off (see tunOffloads). IFF_VNET_HDR and the
   *  offloads belong to the device: all queues of a multi-queue device must agree. */
  tunOpen(name: string, multiQueue: boolean, vnetHdr?: boolean, gro?: boolean, tso?: boolean): TunOpenResult;
  /** Reads packets into slots 0..max-1 (slot i at i*slotSize) until EAGAIN or
   *  `max`; fills D_OFF and D_LEN (D_ADDR, D_PORT = 0) of rows 0..count-1.
   *  Returns count (0 when nothing is queued). On a vnetHdr fd the slot
   *  starts with the header: D_OFF = slot offset + 10, packets up to
   *  slotSize - 10 bytes, checksums left partial by the kernel completed.
   *  On a TSO fd (slotSize >= 65545, else RangeError) the layout is packed:
   *  up to `max` reads land one after another, each TCPv4 super-packet is
   *  split in place into MTU-sized segments, one row each (so count may
   *  exceed max), and D_PORT of a super-packet's first row is its number of
   *  segments k >= 2 (the next k - 1 rows are the others), 0 elsewhere.
   *  Reading stops early when data or desc lacks room for another full read.
   *  info (Int32Array >= 6, optional) receives READ_INFO_* (batch.ts). */
  tunRead(fd: number, data: Buffer, desc: Int32Array, max: number, slotSize: number, info?: Int32Array): number;
  /** Writes each of rows 0..count-1 with D_LEN > 0, in order. Returns how
   *  many packets (rows) were written; refused packets are skipped (the
   *  caller counts the rest as drops). Throws only for a bad fd. On a
   *  vnetHdr fd with gro, runs of TCPv4 segments of one flow (see
   *  src/tun/native/tun_gro.c for the rules) go as one GSO write; packets of
   *  different flows may then be written in another order than their rows
   *  (never within a flow). If the kernel refuses a GSO write (EINVAL) whose
   *  segments go fine alone, gro turns off for the fd (see tunOffloads). */
  tunWrite(fd: number, data: Buffer, desc: Int32Array, count: number): number;
  /** The offloads of a TUN fd now; an fd opened by another thread is probed
   *  (gro is then assumed on when vnetHdr is). Throws for a non-TUN fd. */
  tunOffloads(fd: number): TunOffloads;
  /** A blocking IPv4 UDP socket (SO_SNDTIMEO 100 ms, SO_REUSEADDR) bound to
   *  bindAddr:port (0 = any). rcvbuf/sndbuf > 0 set buffer sizes, forced past
   *  net.core.*mem_max when CAP_NET_ADMIN allows. offloads (both default
   *  true): GRO is on if setsockopt(UDP_GRO) succeeds; GSO is on if the kernel
   *  knows UDP_SEGMENT, until its first refusal. Unsupported offloads are
   *  silently off (see udpOffloads), never an error. */
  udpOpen(bindAddr: number, port: number, rcvbuf: number, sndbuf: number, offloads?: { gso?: boolean; gro?: boolean }): number;
  /** The offloads on fd now. The state is per thread (env): a socket opened
   *  elsewhere is probed on first use. Throws EBADF/ENOTSOCK. */
  udpOffloads(fd: number): { gso: boolean; gro: boolean };
  /** The local port a UDP socket is bound to (getsockname). */
  udpLocalPort(fd: number): number;
  /** One non-blocking recvmmsg into slots of slotSize (message i in slot i);
   *  fills all four words of rows 0..n-1 (D_ADDR/D_PORT = source) and returns
   *  n, the number of descriptors. Without GRO: up to min(max, MAX_BATCH)
   *  messages, one descriptor each. With GRO on the socket: slotSize must be
   *  >= 65536 and desc must hold >= 64 rows (RangeError otherwise); up to
   *  min(max, MAX_BATCH, floor(rows / 64)) messages, and a coalesced message
   *  becomes one descriptor per datagram (D_OFF = slot offset + k * segment
   *  size, the last may be shorter), so n may exceed max. D_LEN = -1 marks a
   *  datagram longer than its slot. */
  udpRecv(fd: number, data: Buffer, desc: Int32Array, max: number, slotSize: number): number;
  /** sendmmsg of rows 0..count-1 with D_LEN > 0 to D_ADDR:D_PORT, one
   *  datagram per row; count must be <= MAX_BATCH. With GSO, consecutive rows
   *  to one destination with the same length (the last of a run may be
   *  shorter; <= 64 rows, <= 65507 bytes) go as one UDP_SEGMENT message whose
   *  iovecs point at the rows in place. Refused datagrams are skipped, the
   *  rest still go (a refused GSO message is retried row by row; EIO, or
   *  EINVAL for rows that go fine alone, turns GSO off for the socket); blocks
   *  at most ~100 ms in all on a full send buffer. Returns how many rows
   *  (packets) were sent. */
  udpSend(fd: number, data: Buffer, desc: Int32Array, count: number): number;
  /** Calls cb() whenever fd is readable (level-triggered) until pollStop.
   *  One watcher per fd per thread. Keeps the event loop alive. An exception
   *  thrown by cb goes to process 'uncaughtException'. */
  pollStart(fd: number, cb: () => void): PollHandle;
  /** Stops the watcher; idempotent. After it returns cb is not called again
   *  and the fd may be closed. */
  pollStop(handle: PollHandle): void;
  /** close(2); also forgets fd's UDP / TUN offload state. */
  closeFd(fd: number): void;
  /** The data-plane thread's wait: an epoll fd on `fds` (fd i reports bit 1 << i) and an eventfd (bit WAKE_BIT). */
  dpWaitOpen(fds: number[]): { epfd: number; wakeFd: number };
  /** Blocks until a watched fd is readable or dpWake; spins spinUs µs first. Returns the ready bits (0 on timeout).
   *  stats (optional Float64Array >= 4): [blocked wake-ups, wake-ups while spinning, ns blocked, monotonic ns at return]. */
  dpWait(epfd: number, wakeFd: number, timeoutMs: number, spinUs: number, stats?: Float64Array): number;
  /** Wakes the thread waiting on wakeFd (any thread may call it). */
  dpWake(wakeFd: number): void;
  /** The calling thread's [minor faults, major faults, user µs, system µs, monotonic ns]. */
  threadStats(out: Float64Array): void;
  /** out[index] = CLOCK_MONOTONIC ns (dpWait's clock), without allocating. */
  dpClock(out: Float64Array, index: number): void;
  /** prctl(PR_SET_NAME) for the calling thread (15 bytes at most). */
  threadName(name: string): void;
  /** setpriority for the calling thread only. */
  threadNice(nice: number): void;
  /** mlock2(MLOCK_ONFAULT) on every readable file-backed mapping (node's text, libraries, this addon): touched pages stay resident. */
  lockMappedFiles(): { regions: number; bytes: number; failed: number; error?: string };
  /** sched_setattr's time slice (µs, 100..100000) for the calling thread: an earlier deadline at wake-up, not a bigger CPU share. */
  threadSlice(sliceUs: number): void;
  /** This thread's offload state of a TUN fd and a UDP socket, to hand to another thread. */
  offloadState(tunFd: number, udpFd: number): [number, number];
  /** Uses another thread's offload state for these fds instead of probing them (offloadState). */
  adoptOffloadState(tunFd: number, udpFd: number, tunFlags: number, sockFlags: number): void;
  /** The descriptor layout compiled into the addon (checked against batch.ts at load). */
  readonly layout: Record<string, number>;
  /** One sd_notify datagram to `socketPath` ('@name' = abstract); never blocks. Returns bytes sent. (notify.c) */
  sdNotify(socketPath: string, message: string): number;
  readonly DESC_WORDS: number;
  /** Most messages per udpRecv/udpSend call. */
  readonly MAX_BATCH: number;
}

/** Opaque watcher handle returned by pollStart. */
export type PollHandle = { readonly __pollHandle: unique symbol };

// dist/src/tun/native.js -> <root>/build; src/tun/native.ts (ts-node) -> <root>/build.
const CANDIDATES = [path.resolve(__dirname, '..', '..', '..', 'build', 'Release', 'flannel_tun.node'), path.resolve(__dirname, '..', '..', 'build', 'Release', 'flannel_tun.node')];

let loaded: FlannelTunNative | undefined;

/** The addon; throws a clear error if it has not been built. */
export function native(): FlannelTunNative {
  if (loaded) return loaded;
  const file = CANDIDATES.find((f) => fs.existsSync(f));
  if (!file) {
    throw new Error(`flannel-ts native addon not built (looked for ${CANDIDATES[0]}): ` + 'run npm ci (node-gyp builds the addon), or npx node-gyp rebuild');
  }
  let mod: FlannelTunNative;
  try {
    mod = require(file) as FlannelTunNative;
  } catch (err) {
    throw new Error(`cannot load ${file} (rebuild it for this Node: npm run install): ${(err as Error).message}`, {
      cause: err,
    });
  }
  checkLayout(mod.layout, file);
  loaded = mod;
  return loaded;
}

/** The eventfd's bit in dpWait's result. */
export const WAKE_BIT = 1 << 30;

/**
 * The addon and batch.ts must agree on every descriptor column and limit: a
 * stale build after a layout change would otherwise misread every row.
 */
export function checkLayout(compiled: Record<string, number> | undefined, file: string): void {
  const want: Record<string, number> = {
    DESC_WORDS: batch.DESC_WORDS,
    D_OFF: batch.D_OFF,
    D_LEN: batch.D_LEN,
    D_ADDR: batch.D_ADDR,
    D_PORT: batch.D_PORT,
    MAX_BATCH: batch.MAX_BATCH,
    GRO_MAX_SEGMENTS: batch.GRO_MAX_SEGMENTS,
    TSO_MIN_SLOT: batch.TSO_MIN_SLOT,
    READ_INFO_DRAINED: batch.READ_INFO_DRAINED,
    READ_INFO_SUPER: batch.READ_INFO_SUPER,
    READ_INFO_SEGMENTS: batch.READ_INFO_SEGMENTS,
    READ_INFO_DROPPED: batch.READ_INFO_DROPPED,
    READ_INFO_STASHED: batch.READ_INFO_STASHED,
    READ_INFO_WORDS: batch.READ_INFO_WORDS,
  };
  const wrong = Object.keys(want).filter((k) => compiled?.[k] !== want[k]);
  if (wrong.length > 0) {
    throw new FlannelError(
      'FLANNEL_ERR_ADDON',
      `${file} was built for another descriptor layout than src/tun/batch.ts (${wrong
        .map((k) => `${k}: addon ${compiled?.[k]}, batch.ts ${want[k]}`)
        .join('; ')}): rebuild the addon (npm run install) and keep flannel_tun.h and batch.ts in step`,
    );
  }
}
