// A network namespace for one TUN test file and a runner for its fixture
// script: the fixture runs inside the namespace (it refuses to run anywhere
// else, see test/e2e/fixtures/tun-guard.ts) and prints a JSON report as its last line.
// `create` in before(), `destroy` in after(): children killed by pid, the
// namespace deleted, also when a test failed.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { run, tryRun } from '../../src/lab/sh';

export class TunFixtureNamespace {
  readonly ns: string;
  private readonly children: ChildProcess[] = [];
  private created = false;

  /** @param tag names the namespace ftun-<pid>-<tag>; @param script the fixture, e.g. 'tun-gro'. */
  constructor(
    tag: string,
    private readonly script: string,
  ) {
    this.ns = `ftun-${process.pid}-${tag}`;
  }

  create(): void {
    run(['ip', 'netns', 'add', this.ns]);
    this.created = true;
    run(['ip', '-n', this.ns, 'link', 'set', 'lo', 'up']);
  }

  /** Runs `<script>.js <mode> ...args` in the namespace and returns its JSON report. */
  async fixture(mode: string, ...args: string[]): Promise<Record<string, any>> {
    const file = path.join(__dirname, '..', 'e2e', 'fixtures', `${this.script}.js`);
    const child = spawn('ip', ['netns', 'exec', this.ns, process.execPath, file, mode, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, FTUN_NETNS: this.ns }, // fixtures refuse to run outside it (tun-guard.ts)
    });
    this.children.push(child);
    const lines: string[] = [];
    readline.createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    assert.equal(code, 0, `${this.script}.js ${mode} failed`);
    assert.ok(lines.length > 0, `${this.script}.js ${mode} printed nothing`);
    return JSON.parse(lines[lines.length - 1]);
  }

  destroy(): void {
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(c.pid!, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
    if (this.created) tryRun(['ip', 'netns', 'del', this.ns]);
  }
}
