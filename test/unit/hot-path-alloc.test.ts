import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

const script = path.resolve(__dirname, '../../bench/alloc-check.js');

test('the hot path allocates nothing per packet: the pump on a worker thread, as in flanneld (no GC over 2.5 million packets)', () => {
  const out = execFileSync(process.execPath, ['--expose-gc', '--max-semi-space-size=1', script, '20000'], { encoding: 'utf8' });
  const r = JSON.parse(out) as { packets: number; gcs: number; thread: string };
  assert.equal(r.thread, 'worker');
  assert.equal(r.packets, 20000 * 64 * 2);
  assert.equal(r.gcs, 0, `${r.gcs} garbage collections while forwarding ${r.packets} packets`);
});

test('the allocation check can fail: a per-packet allocation shows up as GCs', () => {
  const leaky = `
    const { PerformanceObserver } = require('node:perf_hooks');
    let gcs = 0; const o = new PerformanceObserver((l) => (gcs += l.getEntries().length)); o.observe({ entryTypes: ['gc'] });
    const ring = new Array(1024); setImmediate(() => { for (let i = 0; i < 20000 * 128; i++) ring[i & 1023] = { i }; setTimeout(() => console.log(JSON.stringify({ gcs })), 100); });`;
  const r = JSON.parse(execFileSync(process.execPath, ['--max-semi-space-size=1', '-e', leaky], { encoding: 'utf8' })) as { gcs: number };
  assert.ok(r.gcs > 0, 'allocating one small object per packet triggers GCs');
});
