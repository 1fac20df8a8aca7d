// Runs one firewall command (iptables-save, iptables-restore, nft) through
// the project's one async runner (src/util/exec.ts: never blocks the event
// loop the data plane shares), turning its failure into the mode's error
// (IptablesError / NftablesError) with what to install when the command is
// missing.

import * as fs from 'node:fs';
import { exec } from '../util/exec';
import { errorMessage } from '../util/errors';

export interface FirewallExecOptions {
  /** Written to stdin (iptables-restore's payload, nft -f -'s script). */
  input?: string;
  timeoutMs?: number;
  /** Builds the error to reject with (the caller's class and code). */
  error: (message: string, cause?: unknown) => Error;
  /** What to install when the command is missing, e.g. "the iptables package". */
  installHint: string;
}

/** Resolves with stdout on exit 0; rejects with opts.error(...) naming the command, its exit and stderr (and the input). */
export async function execCommand(cmd: string, args: string[], opts: FirewallExecOptions): Promise<string> {
  try {
    return await exec([cmd, ...args], { input: opts.input, timeoutMs: opts.timeoutMs ?? 15_000 });
  } catch (e) {
    const missing = (e as { cause?: NodeJS.ErrnoException }).cause?.code === 'ENOENT';
    const msg = missing ? `cannot run ${cmd}: ${cmd} is not installed or not on PATH (install ${opts.installHint})` : `${errorMessage(e)}${opts.input ? `\ninput:\n${opts.input}` : ''}`;
    throw opts.error(msg, e);
  }
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
