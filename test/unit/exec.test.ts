// The one command runner: what a caller sees for each way a command can end.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlannelError } from '../../src/util/errors';
import { CommandError, exec, execStatus } from '../../src/util/exec';

test('exec resolves with stdout and feeds input on stdin', async () => {
  assert.equal(await exec(['cat'], { input: 'hello\n' }), 'hello\n');
});

test('a non-zero exit rejects with a CommandError carrying the command, status and stderr', async () => {
  const e = await exec(['sh', '-c', 'echo oops >&2; exit 3']).catch((x: unknown) => x);
  assert.ok(e instanceof CommandError && e instanceof FlannelError);
  assert.equal(e.code, 'FLANNEL_ERR_COMMAND');
  assert.equal(e.status, 3);
  assert.equal(e.stderr, 'oops\n');
  assert.match(e.message, /exit 3.*sh -c/);
  assert.match(e.message, /oops/);
});

test('a command that is not installed rejects (it does not crash the process)', async () => {
  const e = await exec(['flannel-ts-no-such-command']).catch((x: unknown) => x);
  assert.ok(e instanceof CommandError);
  assert.equal(e.status, null);
  assert.match(e.message, /cannot run flannel-ts-no-such-command.*installed/);
});

test('a command past its timeout is killed and rejects saying so', async () => {
  const t0 = Date.now();
  const e = await exec(['sleep', '5'], { timeoutMs: 100 }).catch((x: unknown) => x);
  assert.ok(e instanceof CommandError);
  assert.match(e.message, /timed out after 100 ms/);
  assert.ok(Date.now() - t0 < 2000);
});

test('aborting the signal kills the command', async () => {
  const ac = new AbortController();
  const p = exec(['sleep', '5'], { signal: ac.signal }).catch((x: unknown) => x);
  ac.abort();
  const e = await p;
  assert.ok(e instanceof CommandError);
  assert.match(e.message, /aborted/);
});

test('execStatus answers with the status and output instead of rejecting', async () => {
  assert.deepEqual(await execStatus(['sh', '-c', 'echo out; echo err >&2; exit 1']), { status: 1, stdout: 'out\n', stderr: 'err\n' });
  const missing = await execStatus(['flannel-ts-no-such-command']);
  assert.equal(missing.status, null);
  assert.match(missing.stderr, /cannot run/);
});
