// V8 heap sizing for a daemon that runs for months.
//
// By default V8 lets the old generation grow by at least several MiB of
// garbage past what is live before a full GC, and keeps those pages
// committed afterwards. The control plane (etcd watch events, metrics
// scrapes) promotes a steady trickle of short-lived objects, so RSS climbed
// ~7 MiB over a soak while the live heap stayed flat. --optimize-for-size
// makes V8 grow the heap in small steps and collect sooner: in the soak RSS
// stays within a few per cent and the hot path measures the same (it
// allocates nothing per packet, so GC policy does not touch it).
//
// V8 reads this flag each time it sizes the heap after a GC, so setting it
// at start-up (rather than on the node command line) is enough, and any way
// of starting flanneld gets it. Node's own flag wins: started as
// `node --no-optimize-for-size bin/flanneld …` (in the lab:
// FLANNEL_TS_NODE_ARGS=--no-optimize-for-size), flanneld runs with V8's
// defaults, which is how the README's heap-policy comparison is reproduced.

import * as v8 from 'node:v8';

export function tuneHeapForDaemon(execArgv: readonly string[] = process.execArgv): void {
  if (execArgv.some((a) => /^--(no-)?optimize[-_]for[-_]size$/.test(a))) return;
  v8.setFlagsFromString('--optimize-for-size');
}
