// Runs one firewall command (iptables-save, iptables-restore, nft) without
// blocking the event loop: the data plane shares it. One place, so the
// architecture issue's shared async runner can replace it in one edit.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';

export interface ExecOptions {
  /** Written to stdin (iptables-restore's payload, nft -f -'s script). */
  input?: string;
  timeoutMs?: number;
  /** Builds the error to reject with (the caller's class and code). */
  error: (message: string, cause?: unknown) => Error;
  /** What to install when the command is missing, e.g. "the iptables package". */
  installHint: string;
}

/** Resolves with stdout on exit 0; rejects with opts.error(...) naming the command, its exit and stderr. */
export function execCommand(cmd: string, args: string[], opts: ExecOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why = e.code === 'ENOENT' ? `${cmd} is not installed or not on PATH (install ${opts.installHint})` : e.message;
      reject(opts.error(`cannot run ${cmd}: ${why}`, e));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(opts.error(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${err.trim()}${opts.input ? `\ninput:\n${opts.input}` : ''}`));
    });
    child.stdin.on('error', () => undefined); // reported through 'close'
    child.stdin.end(opts.input ?? '');
  });
}

/** Whether `cmd` is on PATH (checked without spawning: the daemon's loop must not wait on a process). */
export function onPath(cmd: string, pathVar = process.env.PATH ?? ''): boolean {
  return pathVar.split(':').some((dir) => {
    if (dir === '') return false;
    try {
      fs.accessSync(`${dir}/${cmd}`, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
