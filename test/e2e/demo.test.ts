// The README's first command runs to completion and leaves nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { REPO_ROOT } from '../../src/lab/lab';
import { run, runAsync } from '../../src/util/sh';

const namespaces = () => new Set(run(['ip', 'netns', 'list']).split('\n').map((l) => l.split(' ')[0]).filter(Boolean));

test('flannel-ts demo --plain builds a cluster, pings across hosts and cleans up', async () => {
  const before = namespaces();
  const r = await runAsync([process.execPath, path.join(REPO_ROOT, 'bin/flannel-ts'), 'demo', '--plain'], 120_000);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const leases = [...r.stdout.matchAll(/\/coreos\.com\/network\/subnets\/(198\.19\.\d+\.0-24)\n\{"PublicIP":"(198\.18\.0\.\d)","PublicIPv6":null,"BackendType":"udp"\}/g)];
  assert.equal(leases.length, 3, r.stdout);
  assert.match(r.stdout, /inet 198\.19\.\d+\.0\/32 scope global flannel0/);
  assert.match(r.stdout, /3 packets transmitted, 3 received/);
  const leftover = [...namespaces()].filter((n) => !before.has(n));
  assert.deepEqual(leftover, [], 'no namespace left behind');
});
