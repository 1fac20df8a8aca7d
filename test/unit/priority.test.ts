import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PriorityGovernor, WINDOW_NS } from '../../src/encap/priority';

/** Drives a governor through windows of the given busy shares; returns the nice values it set. */
function drive(busyShares: number[], setNice?: (n: number) => void): { set: number[]; g: PriorityGovernor } {
  const set: number[] = [];
  const g = new PriorityGovernor(setNice ?? ((n) => set.push(n)), -10, 0);
  let now = 1e9;
  let blocked = 0;
  g.tick(now, blocked);
  for (const busy of busyShares) {
    now += WINDOW_NS;
    blocked += (1 - busy) * WINDOW_NS;
    g.tick(now, blocked);
  }
  return { set, g };
}

test('a mostly idle thread stays boosted; a busy one steps down to the normal nice value, and back up when idle', () => {
  assert.deepEqual(drive([0.01, 0.2, 0.4]).set, []);
  const { set, g } = drive([0.1, 0.9, 0.9, 0.4, 0.3, 0.1]);
  // Down at the first busy window; 0.4 and 0.3 are inside the hysteresis band; up again at 0.1.
  assert.deepEqual(set, [0, -10]);
  assert.equal(g.boosted, true);
  assert.equal(g.changes, 2);
});

test('a refused nice value stops the governor instead of retrying every window', () => {
  let calls = 0;
  const { g } = drive([0.9, 0.9, 0.1, 0.9], () => {
    calls++;
    throw new Error('EPERM');
  });
  assert.equal(calls, 1);
  assert.equal(g.boosted, true);
  assert.equal(g.changes, 0);
});

test('a long sleep counts as idle time, not as one busy window', () => {
  const set: number[] = [];
  const g = new PriorityGovernor((n) => set.push(n), -10, 0);
  g.tick(0, 0);
  g.tick(5e9, 5e9 - 1e6); // five seconds, 1 ms of it awake
  assert.deepEqual(set, []);
});
