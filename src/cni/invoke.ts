// Calling another CNI plugin, as the reference library's invoke package does
// for delegating plugins: find the executable named by `type` in CNI_PATH,
// run it with the config on stdin and the caller's environment (CNI_COMMAND
// replaced), read a result or a CNI error from its stdout.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ExecResult } from '../util/exec';
import { CNI_CODES, CniError } from './errors';

/** The first regular file named `plugin` in the CNI_PATH directories. @throws CniError */
export function findInPath(plugin: string, cniPath: string): string {
  if (plugin === '' || plugin.includes('/') || plugin === '.' || plugin === '..') {
    throw new CniError(CNI_CODES.invalidNetworkConfig, `invalid plugin name: "${plugin}"`);
  }
  const dirs = cniPath.split(':').filter(Boolean);
  for (const dir of dirs) {
    const full = path.join(dir, plugin);
    try {
      if (fs.statSync(full).isFile()) return full;
    } catch {
      /* not here */
    }
  }
  throw new CniError(CNI_CODES.internal, `failed to find plugin "${plugin}" in path [${dirs.join(' ')}]`, 'check CNI_PATH and that the containernetworking plugins are installed');
}

export type { ExecResult };

/**
 * Runs a plugin executable: stdin = config, env = the environment to pass.
 * Tests may replace it. Synchronous on purpose: the plugin is a short-lived
 * process of its own that the container runtime waits on, never flanneld.
 */
export type PluginExec = (file: string, stdin: string, env: NodeJS.ProcessEnv) => ExecResult;

export const execPlugin: PluginExec = (file, stdin, env) => {
  const r = spawnSync(file, [], { input: stdin, env, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024, timeout: 120_000 });
  if (r.error) return { status: null, stdout: '', stderr: String(r.error) };
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
};

/**
 * Runs `command` of the plugin `type` (found in env.CNI_PATH) on `conf`.
 * Returns its stdout on success. A failing plugin's own CNI error is thrown
 * as is (its code, msg and details, as a Go delegating plugin passes it on);
 * a plugin that fails without one gives code 999 with its exit status and
 * stderr.
 */
export function delegate(command: 'ADD' | 'DEL' | 'CHECK', type: string, conf: string, env: NodeJS.ProcessEnv, exec: PluginExec = execPlugin): string {
  const file = findInPath(type, env.CNI_PATH ?? '');
  const r = exec(file, conf, { ...env, CNI_COMMAND: command });
  if (r.status === 0) return r.stdout;
  const e = parseCniError(r.stdout);
  if (e) throw e;
  const why = r.status === null ? 'did not run to completion' : `exited with status ${r.status}`;
  throw new CniError(CNI_CODES.internal, `netplugin ${type} failed (${command}): ${why}`, (r.stderr.trim() || r.stdout.trim()).slice(0, 2000));
}

/** A CNI error object from a plugin's stdout, or undefined when it is not one. */
export function parseCniError(stdout: string): CniError | undefined {
  try {
    const o = JSON.parse(stdout) as { code?: unknown; msg?: unknown; details?: unknown };
    if (typeof o.code === 'number' && typeof o.msg === 'string') {
      return new CniError(o.code, o.msg, typeof o.details === 'string' ? o.details : '');
    }
  } catch {
    /* not JSON */
  }
  return undefined;
}
