// Synchronous commands for the namespace lab only (tests, bench, demo set-up,
// where order matters and output is small). The daemon and everything it runs
// use src/util/exec.ts instead: nothing here may run on flanneld's event loop,
// and the dependency rules (.dependency-cruiser.cjs) forbid importing this
// file from outside the lab, the demo, the bench and the tests.

import { spawnSync } from 'node:child_process';
import { CommandError, type ExecResult } from '../util/exec';
import { sleep } from '../util/sleep';

export { sleep };

/** Runs argv, returns stdout; throws CommandError (FLANNEL_ERR_COMMAND) with stderr on failure. */
export function run(argv: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(argv[0], argv.slice(1), {
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 30_000,
    env: opts.env ?? process.env,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw new CommandError(argv, null, r.stderr ?? '', `cannot run ${argv[0]}: ${r.error.message}`, { cause: r.error });
  if (r.status !== 0) throw new CommandError(argv, r.status, r.stderr ?? '', r.signal ? `killed by ${r.signal}` : `exit ${r.status}`);
  return r.stdout;
}

/** Like run, but returns {status, stdout, stderr} instead of throwing. */
export function tryRun(argv: string[], opts: { timeoutMs?: number; input?: string } = {}): ExecResult {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: opts.timeoutMs ?? 30_000, input: opts.input, maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

/** Whether `cmd` is on PATH. */
export function which(cmd: string): boolean {
  return tryRun(['sh', '-c', `command -v ${cmd}`]).status === 0;
}

/** Polls `fn` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await sleep(everyMs);
  }
}
