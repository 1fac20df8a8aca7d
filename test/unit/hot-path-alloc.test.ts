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

test('the allocation check can fail: the same harness with one object per packet injected counts GCs', () => {
  const out = execFileSync(process.execPath, ['--expose-gc', '--max-semi-space-size=1', script, '20000', '--leak'], { encoding: 'utf8' });
  const r = JSON.parse(out) as { packets: number; gcs: number };
  assert.equal(r.packets, 20000 * 64 * 2);
  assert.ok(r.gcs > 0, 'allocating one small object per packet triggers GCs');
});
