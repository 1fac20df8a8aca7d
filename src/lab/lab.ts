// A cluster on one machine: hosts are network namespaces on a bridge in a
// "switch" namespace, etcd runs in its own namespace on the same underlay.
// Used by the end-to-end tests, the bench and the demo.
//
// Safety rules this file enforces: every namespace name starts with the lab's
// run-unique prefix; underlay addresses come from 198.18.0.0/16; `destroy`
// ends every process inside the lab's namespaces and deletes them, and runs
// on process exit too, so a failing test leaves nothing behind.

import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run, tryRun, sleep, waitFor } from '../util/sh';

export const REPO_ROOT = path.resolve(__dirname, '../../..');
const live = new Set<Lab>();

function onExitCleanup(): void {
  for (const lab of live) lab.destroySync();
}
process.once('exit', onExitCleanup);

export interface LabOptions {
  /** Namespace name prefix; default is unique to this process. */
  prefix?: string;
  /** Directory for logs and state; default a new temp dir. */
  dir?: string;
  /** Keep the temp dir after destroy (logs for debugging). */
  keepDir?: boolean;
}

export class Lab {
  readonly prefix: string;
  readonly dir: string;
  readonly switchNs: string;
  readonly namespaces: string[] = [];
  private readonly procs = new Set<ChildProcess>();
  private destroyed = false;

  constructor(private readonly opts: LabOptions = {}) {
    this.prefix = opts.prefix ?? `ft${process.pid.toString(36)}${Math.floor(Math.random() * 1296).toString(36)}`;
    this.dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), `${this.prefix}-`));
    fs.mkdirSync(this.dir, { recursive: true });
    live.add(this);
    this.switchNs = this.addNamespace('sw');
    run(['ip', '-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge']);
    run(['ip', '-n', this.switchNs, 'link', 'set', 'br0', 'up']);
  }

  /** Creates a namespace named `<prefix>-<name>` with loopback up. */
  addNamespace(name: string): string {
    const ns = `${this.prefix}-${name}`;
    run(['ip', 'netns', 'add', ns]);
    this.namespaces.push(ns);
    run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  /**
   * Plugs namespace `ns` into the switch as `dev` with `cidr` (198.18.x.y/16).
   * `mtu` applies to both veth ends and the bridge port.
   */
  plug(ns: string, dev: string, cidr: string, mtu = 1500): void {
    if (!cidr.startsWith('198.18.')) throw new Error(`lab underlay addresses must be in 198.18.0.0/16, got ${cidr}`);
    const port = `p${this.namespaces.indexOf(ns)}`;
    run(['ip', 'link', 'add', dev, 'netns', ns, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', port, 'netns', this.switchNs, 'mtu', String(mtu)]);
    run(['ip', '-n', this.switchNs, 'link', 'set', port, 'master', 'br0', 'up']);
    run(['ip', '-n', ns, 'addr', 'add', cidr, 'dev', dev]);
    run(['ip', '-n', ns, 'link', 'set', dev, 'up']);
  }

  /** The bridge's MTU follows its smallest port; raise it for jumbo-frame tests. */
  setSwitchMtu(mtu: number): void {
    run(['ip', '-n', this.switchNs, 'link', 'set', 'br0', 'mtu', String(mtu)]);
  }

  /**
   * Starts argv inside `ns`, stdout+stderr appended to `logFile`. The process
   * is ended by `destroy` if still running.
   */
  spawnIn(ns: string, argv: string[], logFile: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
    const fd = fs.openSync(logFile, 'a');
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', fd, fd], env });
    fs.closeSync(fd);
    this.procs.add(child);
    child.once('exit', () => this.procs.delete(child));
    return child;
  }

  /** Ends our processes, then anything else inside our namespaces, then deletes them. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline && [...this.procs].some((p) => p.exitCode === null && p.signalCode === null)) {
      await sleep(50);
    }
    this.destroySync();
  }

  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const ns of [...this.namespaces].reverse()) {
      const pids = tryRun(['ip', 'netns', 'pids', ns]).stdout.split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      tryRun(['ip', 'netns', 'del', ns]);
    }
    if (!this.opts.keepDir && !this.opts.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Waits until `file` contains a line matching `re`; returns the match. */
export async function waitForLog(file: string, re: RegExp, timeoutMs = 10_000, from = 0): Promise<RegExpMatchArray> {
  return waitFor(`${re} in ${file}`, () => {
    if (!fs.existsSync(file)) return null;
    return fs.readFileSync(file, 'utf8').slice(from).match(re);
  }, timeoutMs);
}
