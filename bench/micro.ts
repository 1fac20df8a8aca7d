// Micro benchmark (benchmark.js) of the TypeScript cost per packet of a batch:
// header checks, lease lookup, TTL with incremental checksum, descriptors.
//   npm run bench:micro

import Benchmark from 'benchmark';
import { PACKETS, hotPathFixture } from './hot-path-fixture';
import { Tracer } from '../src/encap/trace';

const f = hotPathFixture();
// What the data plane does per batch about tracing: one check when no tracer
// is attached; Tracer.observe (filter matching nothing) when one is.
let tracer: Tracer | undefined;
const attached = new Tracer({ host: 0x01020304 }, () => undefined);
const local = { ip: 0xc6120001, port: 8285 };
const suite = new Benchmark.Suite('hot path');
suite
  .add('reset only (baseline, subtracted)', () => f.tx.reset())
  .add('Encapsulator.process, 64 packets', () => {
    f.tx.reset();
    if (f.encap.process(f.tx.batch) !== PACKETS) throw new Error('encap dropped packets');
  })
  .add('…+ no tracer attached (the default)', () => {
    f.tx.reset();
    f.encap.process(f.tx.batch);
    if (tracer !== undefined) tracer.observe('tx', f.tx.batch, f.encap.verdicts, f.table, local);
  })
  .add('…+ a tracer attached, matching nothing', () => {
    f.tx.reset();
    f.encap.process(f.tx.batch);
    tracer = attached;
    if (tracer !== undefined) tracer.observe('tx', f.tx.batch, f.encap.verdicts, f.table, local);
    tracer = undefined;
  })
  .add('Decapsulator.process, 64 packets', () => {
    f.rx.reset();
    if (f.decap.process(f.rx.batch) !== PACKETS) throw new Error('decap dropped packets');
  })
  .on('complete', function (this: Benchmark.Suite) {
    const benches = this.map((b: Benchmark) => b) as Benchmark[];
    const base = benches[0].stats.mean;
    console.log('TypeScript hot path per packet (batch of 64, 100 peers), benchmark.js:');
    for (const b of benches.slice(1)) {
      const perPacketNs = ((b.stats.mean - base) / PACKETS) * 1e9;
      console.log(`  ${(b.name ?? '').padEnd(34)} ${perPacketNs.toFixed(1).padStart(6)} ns/packet  (±${b.stats.rme.toFixed(1)}%, ${b.stats.sample.length} samples)`);
    }
  })
  .run();
