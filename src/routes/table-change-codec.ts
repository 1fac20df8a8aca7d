// Lease-table changes packed into one Int32Array for the trip to the
// data-plane thread. Posted as objects, every change's nested arrays were
// structured-cloned, and under lease churn deserializing them cost the thread
// more than forwarding (perf: V8's ValueDeserializer and IC misses on the
// thread); a transferred buffer arrives as one object.
//
// Per change: [local prefix length (-1: none), local ip, removed count, put
// count, then (ip, len) per removed row, then (ip, len, publicIp, index) per
// put row]. Addresses travel as int32 bits and come back unsigned.

import type { TableChange } from './lease-table';

const HEADER = 4;

export function encodeChanges(changes: readonly TableChange[]): Int32Array {
  let words = 0;
  for (const c of changes) words += HEADER + 2 * c.removed.length + 4 * c.put.length;
  const w = new Int32Array(words);
  let i = 0;
  for (const c of changes) {
    w[i++] = c.local === null ? -1 : c.local[1];
    w[i++] = c.local === null ? 0 : c.local[0];
    w[i++] = c.removed.length;
    w[i++] = c.put.length;
    for (const [ip, len] of c.removed) {
      w[i++] = ip;
      w[i++] = len;
    }
    for (const [ip, len, publicIp, index] of c.put) {
      w[i++] = ip;
      w[i++] = len;
      w[i++] = publicIp;
      w[i++] = index;
    }
  }
  return w;
}

export function decodeChanges(w: Int32Array): TableChange[] {
  const out: TableChange[] = [];
  let i = 0;
  while (i < w.length) {
    if (w.length - i < HEADER) throw new RangeError(`table change truncated at word ${i} of ${w.length}`);
    const localLen = w[i];
    const local: [number, number] | null = localLen < 0 ? null : [w[i + 1] >>> 0, localLen];
    const nRemoved = w[i + 2];
    const nPut = w[i + 3];
    i += HEADER;
    if (nRemoved < 0 || nPut < 0 || w.length - i < 2 * nRemoved + 4 * nPut) throw new RangeError(`table change truncated at word ${i} of ${w.length}`);
    const removed: [number, number][] = [];
    for (let k = 0; k < nRemoved; k++, i += 2) removed.push([w[i] >>> 0, w[i + 1]]);
    const put: [number, number, number, number][] = [];
    for (let k = 0; k < nPut; k++, i += 4) put.push([w[i] >>> 0, w[i + 1], w[i + 2] >>> 0, w[i + 3]]);
    out.push({ local, removed, put });
  }
  return out;
}
