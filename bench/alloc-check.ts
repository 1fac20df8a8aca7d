// Proof that the hot path allocates nothing per packet: with a 1 MiB young
// generation, run N batches through Encapsulator and Decapsulator and count
// garbage collections. Even 16 bytes per packet would be 16 MB per million
// packets: dozens of scavenges. Prints JSON {packets, gcs}.
//   node --expose-gc --max-semi-space-size=1 dist/bench/alloc-check.js [batches] [--leak]
// --leak injects the fault the check exists to catch (one small object per
// packet, as a careless hot path would make): its companion test proves that
// this very harness then counts GCs.

import { PerformanceObserver } from 'node:perf_hooks';
import { PACKETS, hotPathFixture } from './hot-path-fixture';

const args = process.argv.slice(2);
const leak = args.includes('--leak');
const batches = Number(args.find((a) => a !== '--leak') ?? 20000);
const kept: unknown[] = new Array(1024);
const f = hotPathFixture();
// Warm up so the functions are optimised before counting.
for (let i = 0; i < 2000; i++) {
  f.tx.reset();
  f.encap.process(f.tx.batch);
  f.rx.reset();
  f.decap.process(f.rx.batch);
}
(globalThis as { gc?: () => void }).gc?.();
let gcs = 0;
const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
obs.observe({ entryTypes: ['gc'] });
setImmediate(() => {
  const before = gcs;
  for (let i = 0; i < batches; i++) {
    f.tx.reset();
    f.encap.process(f.tx.batch);
    f.rx.reset();
    f.decap.process(f.rx.batch);
    if (leak) for (let p = 0; p < PACKETS * 2; p++) kept[p & 1023] = { p };
  }
  // GC entries are delivered asynchronously: wait a tick before reading.
  setTimeout(() => {
    obs.disconnect();
    console.log(JSON.stringify({ packets: batches * PACKETS * 2, gcs: gcs - before }));
  }, 100);
});
