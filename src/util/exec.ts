// The one way flannel-ts runs a command: asynchronously (the daemon's event
// loop also carries the data plane's wake-ups, the etcd watch and /healthz, so
// nothing it runs may block), with a timeout, and with every failure — cannot
// start, non-zero exit, killed by a signal, timed out, aborted — reported as a
// CommandError (code FLANNEL_ERR_COMMAND) that names the command and carries
// its exit status and stderr.
//
// exec() rejects on failure; execStatus() resolves with the status for callers
// to whom a non-zero exit is an answer (is the device there? did ping get
// through?), never rejects, and folds a start failure into `stderr`.

import { spawn } from 'node:child_process';
import { FlannelError } from './errors';

export interface ExecOptions {
  /** Written to the command's stdin, which is then closed. Without it stdin is /dev/null. */
  input?: string;
  /** Killed with SIGKILL after this long. Default 30 s. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Aborting kills the command; exec() then rejects with a CommandError. */
  signal?: AbortSignal;
}

export interface ExecResult {
  /** Exit status; null when it could not start or was killed. */
  status: number | null;
  stdout: string;
  stderr: string;
}

export class CommandError extends FlannelError {
  constructor(
    readonly argv: readonly string[],
    readonly status: number | null,
    readonly stderr: string,
    why = `exit ${status}`,
    options?: { cause?: unknown },
  ) {
    super('FLANNEL_ERR_COMMAND', `command failed (${why}): ${argv.join(' ')}${stderr.trim() ? `\n${stderr.trim()}` : ''}`, options);
    this.name = 'CommandError';
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;

interface Outcome extends ExecResult {
  /** Why it failed, for the message: "exit 1", "timed out after …", "cannot run …"; undefined on success. */
  why: string | undefined;
  cause?: Error;
}

/** Spawns argv and collects everything; never rejects. The single place a child process is started. */
function collect(argv: readonly string[], opts: ExecOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let settled = false;
    let killedFor: string | undefined;
    let stdout = '';
    let stderr = '';
    const child = spawn(argv[0], argv.slice(1), {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
    });
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const kill = (reason: string): void => {
      killedFor ??= reason;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill(`timed out after ${timeoutMs} ms`), timeoutMs);
    const onAbort = (): void => kill('aborted');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();
    const done = (o: Omit<Outcome, 'stdout' | 'stderr'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ ...o, stdout, stderr });
    };
    child.on('error', (e: NodeJS.ErrnoException) => {
      const hint = e.code === 'ENOENT' ? ` (is ${argv[0]} installed and on PATH?)` : '';
      done({ status: null, why: `cannot run ${argv[0]}: ${e.message}${hint}`, cause: e });
    });
    child.on('close', (status, signal) => {
      const why = killedFor ?? (status === 0 ? undefined : signal ? `killed by ${signal}` : `exit ${status}`);
      done({ status: killedFor ? null : status, why });
    });
    if (child.stdin) {
      child.stdin.on('error', () => undefined); // an early exit is reported through 'close'
      child.stdin.end(opts.input);
    }
  });
}

/** Runs argv to completion; resolves with stdout, rejects with a CommandError. */
export async function exec(argv: readonly string[], opts: ExecOptions = {}): Promise<string> {
  const o = await collect(argv, opts);
  if (o.why !== undefined) throw new CommandError(argv, o.status, o.stderr, o.why, { cause: o.cause });
  return o.stdout;
}

/**
 * Runs argv to completion and resolves with its status and output; never
 * rejects. A command that could not start, timed out or was aborted has
 * status null and the reason appended to stderr.
 */
export async function execStatus(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const o = await collect(argv, opts);
  const stderr = o.status === null && o.why !== undefined ? `${o.stderr}${o.stderr && !o.stderr.endsWith('\n') ? '\n' : ''}${o.why}` : o.stderr;
  return { status: o.status, stdout: o.stdout, stderr };
}

/** `ip -batch -` with many lines: one process for many changes; in `netns` if given. */
export async function ipBatch(lines: readonly string[], netns?: string): Promise<void> {
  if (lines.length === 0) return;
  const argv = netns ? ['ip', '-n', netns, '-batch', '-'] : ['ip', '-batch', '-'];
  await exec(argv, { input: lines.join('\n') + '\n' });
}
