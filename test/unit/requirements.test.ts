// The one list of required commands (scripts/requirements.txt): it parses,
// and every command the source visibly runs is on it, so setup.sh installs it.

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../../src/lab/lab';
import { commandExists, describeMissing, parseRequirements, readRequirements } from '../../src/lab/requirements';

/** Always there on Debian (essential packages), or not a command at all (ftgro*: a fixture's local run() on TUN names; exec.test's deliberately missing command). */
const ESSENTIAL = new Set(['ftgro3', 'ftgro4', 'flannel-ts-no-such-command', 'sh', 'env', 'cat', 'true', 'kill', 'sleep', 'flannel-ts', 'flanneld', 'route']);

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

test('requirements.txt parses: every line has a command and a package', () => {
  const reqs = readRequirements();
  assert.ok(reqs.length > 10);
  assert.ok(
    reqs.some((r) => r.command === 'nft' && r.pkg === 'nftables'),
    'nft (nftables) is listed',
  );
  assert.throws(() => parseRequirements('ip\n'), /needs a command and a package/);
});

test('every command the source runs is listed in scripts/requirements.txt', () => {
  const listed = new Set(readRequirements().map((r) => r.command));
  // The first argv word of run/tryRun/runAsync/spawn/execFile calls, and the
  // word after `ip netns exec <ns>` / `exec([...`: the commands started by name.
  const patterns = [
    /\b(?:run|tryRun|runAsync|exec|execStatus|spawnSync|spawn|execFile|execFileSync|spawnChild)\(\s*\[?\s*'([a-z0-9][a-z0-9_.-]*)'/g,
    /'exec',\s*[a-zA-Z_.]+(?:\.ns)?,\s*'([a-z0-9][a-z0-9_.-]*)'/g,
    /\.exec(?:Async)?\(\s*\[\s*'([a-z0-9][a-z0-9_.-]*)'/g,
  ];
  const unlisted = new Map<string, string>();
  for (const dir of ['src', 'test', 'bench']) {
    for (const f of sources(path.join(REPO_ROOT, dir))) {
      const text = fs.readFileSync(f, 'utf8');
      for (const re of patterns) {
        for (const m of text.matchAll(re)) {
          const cmd = m[1];
          if (!listed.has(cmd) && !ESSENTIAL.has(cmd) && !cmd.startsWith('-')) unlisted.set(cmd, path.relative(REPO_ROOT, f));
        }
      }
    }
  }
  assert.deepEqual(
    [...unlisted].map(([c, f]) => `${c} (${f})`),
    [],
    'add these to scripts/requirements.txt with their Debian package',
  );
});

test('commandExists finds names on PATH and absolute paths; describeMissing names the package and setup.sh', () => {
  assert.equal(commandExists('sh', '/usr/bin:/bin'), true);
  assert.equal(commandExists('no-such-command-here', '/usr/bin:/bin'), false);
  assert.equal(commandExists('/bin/sh'), true);
  assert.equal(commandExists('nft', '/nonexistent'), false);
  const msg = describeMissing([{ command: 'nft', pkg: 'nftables' }]);
  assert.match(msg, /FLANNEL_ERR_MISSING_COMMAND: nft \(package nftables\) is not installed/);
  assert.match(msg, /bash scripts\/setup\.sh/);
});
