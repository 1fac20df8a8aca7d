// bin/flanneld as an operator types it: every mistake is exit 1 with a message
// saying what to fix, before anything on the host is touched. (These runs end
// at flag parsing, so they are safe in the root namespace: nothing starts.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT } from '../../src/lab/lab';

const flanneld = (args: string[], env: NodeJS.ProcessEnv = {}) => {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/flanneld'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, timeout: 10_000 });
  return { status: r.status, out: r.stdout + r.stderr };
};

test('--version and -version print the version and exit 0', () => {
  for (const f of ['--version', '-version']) {
    const r = flanneld([f]);
    assert.equal(r.status, 0);
    assert.match(r.out, /^v\d+\.\d+\.\d+/m);
  }
});

test('--help lists flanneld flags with defaults', () => {
  const r = flanneld(['--help']);
  assert.equal(r.status, 0);
  assert.match(r.out, /-etcd-endpoints/);
  assert.match(r.out, /\/coreos\.com\/network/);
  assert.match(r.out, /-subnet-file/);
});

test('an unknown flag is an error in Go’s words', () => {
  const r = flanneld(['--no-such-flag']);
  assert.equal(r.status, 1);
  assert.match(r.out, /flag provided but not defined: -no-such-flag/);
});

test('a flanneld flag flannel-ts lacks is refused as not supported yet', () => {
  const r = flanneld(['--kube-subnet-mgr']);
  assert.equal(r.status, 1);
  assert.match(r.out, /kube-subnet-mgr is not supported by flannel-ts yet/);
});

test('bad values name the flag or variable', () => {
  let r = flanneld(['--etcd-endpoints=not a url']);
  assert.equal(r.status, 1);
  assert.match(r.out, /etcd-endpoints/);
  r = flanneld(['-ip-masq', 'false']);
  assert.equal(r.status, 1);
  r = flanneld(['--etcd-cafile=/nonexistent/ca.pem']);
  assert.equal(r.status, 1);
  assert.match(r.out, /etcd-cafile/);
  r = flanneld([], { FLANNELD_HEALTHZ_PORT: 'eighty' });
  assert.equal(r.status, 1);
  assert.match(r.out, /FLANNELD_HEALTHZ_PORT/);
  r = flanneld(['--public-ip=300.1.1.1']);
  assert.equal(r.status, 1);
  assert.match(r.out, /public-ip/);
});
