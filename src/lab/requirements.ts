// The commands the tests, the demo and the bench run, read from
// scripts/requirements.txt: the same list scripts/setup.sh installs from, so
// "installed by setup.sh" and "checked by the tests" cannot drift apart.
// Looked up on PATH by reading directories (no process per command).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './lab';
import { FlannelError } from '../util/errors';

export const REQUIREMENTS_FILE = path.join(REPO_ROOT, 'scripts/requirements.txt');

export interface Requirement {
  /** A command name looked up on PATH, or an absolute path. */
  command: string;
  /** The Debian package that provides it. */
  pkg: string;
}

/** Parses the list: `command package (comment)` per line; `#` lines and blanks skipped. */
export function parseRequirements(text: string): Requirement[] {
  const out: Requirement[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [command, pkg] = line.split(/\s+/);
    if (!command || !pkg) throw new Error(`${REQUIREMENTS_FILE}: a line needs a command and a package: ${JSON.stringify(raw)}`);
    out.push({ command, pkg });
  }
  return out;
}

export function readRequirements(file = REQUIREMENTS_FILE): Requirement[] {
  return parseRequirements(fs.readFileSync(file, 'utf8'));
}

function executable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function present(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Whether `command` is there: a name must be an executable on `pathVar`
 * (PATH); an absolute path is checked as it is, present (a CNI plugin, or a
 * data file such as the CJK font the Chinese web page needs).
 */
export function commandExists(command: string, pathVar = process.env.PATH ?? ''): boolean {
  if (command.includes('/')) return present(command);
  return pathVar.split(':').some((dir) => dir !== '' && executable(path.join(dir, command)));
}

/** The requirements whose command is missing here. */
export function missingRequirements(reqs = readRequirements()): Requirement[] {
  return reqs.filter((r) => !commandExists(r.command));
}

/** The message for missing commands: each with its package, and the one command that installs them all. */
export function describeMissing(missing: Requirement[]): string {
  const pkgs = [...new Set(missing.map((r) => r.pkg))];
  return (
    `FLANNEL_ERR_MISSING_COMMAND: ${missing.map((r) => `${r.command} (package ${r.pkg})`).join(', ')} ` +
    `${missing.length === 1 ? 'is' : 'are'} not installed. Run: bash scripts/setup.sh (or apt-get install ${pkgs.join(' ')})`
  );
}

/** Throws (code FLANNEL_ERR_MISSING_COMMAND) when any listed command is missing. */
export function requireCommands(reqs = readRequirements()): void {
  const missing = missingRequirements(reqs);
  if (missing.length > 0) throw new FlannelError('FLANNEL_ERR_MISSING_COMMAND', describeMissing(missing));
}
