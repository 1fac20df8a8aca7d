// A cluster on one machine: hosts are network namespaces on a bridge in a
// "switch" namespace, etcd runs in its own namespace on the same underlay.
// Used by the end-to-end tests, the bench and the demo.
//
// Safety rules this file enforces: every namespace name starts with the lab's
// run-unique prefix; underlay addresses come from 198.18.0.0/16; `destroy`
// ends every process inside the lab's namespaces and deletes them, and runs
// on process exit too, so a failing test leaves nothing behind. `keep()` is the
// one way out of that: it hands the lab over to a state file (namespaces,
// processes by pid and start time, directory) and `destroyFromState` tears it
// down later, from another process (`flannel-ts demo --keep` / `--down`).

import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run, tryRun, sleep, waitFor } from './sh';
import { FlannelError } from '../util/errors';

export const REPO_ROOT = path.resolve(__dirname, '../../..');

/**
 * The flanneld the lab starts: this checkout's, or another build's when
 * FLANNEL_TS_FLANNELD names one (A/B benchmarks of two branches in one run).
 */
export function flanneldBin(): string {
  return process.env.FLANNEL_TS_FLANNELD || path.join(REPO_ROOT, 'bin/flanneld');
}
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
  /**
   * Start processes in their own session (setsid), so they can outlive this
   * process after `keep()` and a Ctrl-C in the terminal reaches only us.
   */
  detached?: boolean;
}

/** A process the lab started, as recorded by `keep()`. */
export interface LabProcess {
  pid: number;
  ns: string;
  argv: string[];
  log: string;
  /** /proc/<pid>/stat start time: tells our process from a later one reusing the pid. */
  startTime: string;
}

/** What `keep()` writes: enough for `destroyFromState` and `flannel-ts shell`. */
export interface LabState {
  version: 1;
  createdAt: string;
  prefix: string;
  dir: string;
  switchNs: string;
  /** In creation order; destroyed in reverse. Every name starts with `<prefix>-`. */
  namespaces: string[];
  processes: LabProcess[];
  /** The caller's own facts (hosts, pods, endpoints...). */
  extra: Record<string, unknown>;
}

export class Lab {
  readonly prefix: string;
  readonly dir: string;
  readonly switchNs: string;
  readonly namespaces: string[] = [];
  private readonly procs = new Set<ChildProcess>();
  private readonly procInfo = new Map<ChildProcess, { ns: string; argv: string[]; log: string }>();
  private destroyed = false;
  private kept = false;

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
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', fd, fd], env, detached: this.opts.detached === true });
    fs.closeSync(fd);
    this.procs.add(child);
    this.procInfo.set(child, { ns, argv, log: logFile });
    child.once('exit', () => {
      this.procs.delete(child);
      this.procInfo.delete(child);
    });
    return child;
  }

  /** The lab's running processes (`ip netns exec` execs, so the pid is the program's). */
  processes(): { pid: number; ns: string; argv: string[]; log: string }[] {
    return [...this.procs].filter((p) => p.exitCode === null && p.signalCode === null && p.pid !== undefined).map((p) => ({ pid: p.pid!, ...this.procInfo.get(p)! }));
  }

  /**
   * Leaves the lab running past this process: writes `stateFile` (mode 0600)
   * with the namespaces, processes and directory, drops the exit-time cleanup
   * and unrefs the children. Afterwards `destroy` does nothing; tear down with
   * `destroyFromState(stateFile)`. Start the lab with `detached: true` so the
   * processes are in their own session.
   */
  keep(stateFile: string, extra: Record<string, unknown> = {}): LabState {
    if (this.destroyed) throw new Error('keep: the lab is already destroyed');
    const state: LabState = {
      version: 1,
      createdAt: new Date().toISOString(),
      prefix: this.prefix,
      dir: this.dir,
      switchNs: this.switchNs,
      namespaces: [...this.namespaces],
      processes: this.processes().map((p) => ({ ...p, startTime: procStartTime(p.pid) ?? '' })),
      extra,
    };
    writeStateFile(stateFile, state);
    this.kept = true;
    this.destroyed = true;
    live.delete(this);
    for (const p of this.procs) p.unref();
    return state;
  }

  get isKept(): boolean {
    return this.kept;
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

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); undefined if no such process. */
export function procStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid ..." — comm may hold spaces and parentheses.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/** Thread ids of a process whose name (comm, as ps -L shows it) is `comm`. */
export function threadsNamed(pid: number, comm: string): string[] {
  return fs.readdirSync(`/proc/${pid}/task`).filter((t) => fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim() === comm);
}

/** True while `p` is the process the lab recorded and it has not exited (a zombie has exited). */
export function isRecordedProcessAlive(p: Pick<LabProcess, 'pid' | 'startTime'>): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${p.pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19] === p.startTime && fields[0] !== 'Z' && fields[0] !== 'X';
}

function writeStateFile(file: string, state: LabState): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(dir);
  if (!st.isDirectory() || (typeof process.getuid === 'function' && st.uid !== process.getuid())) {
    throw new Error(`${dir} is not a directory owned by this user: refusing to write the lab's state there`);
  }
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** Reads and checks a state file written by `keep()`. */
export function readLabState(file: string): LabState {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new FlannelError('FLANNEL_ERR_NO_STATE', `no kept lab: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? e})`, { cause: e });
  }
  const s = JSON.parse(text) as LabState;
  const bad = (why: string) => new Error(`${file} is not a lab state file (${why})`);
  if (s.version !== 1) throw bad(`version ${s.version}`);
  if (typeof s.prefix !== 'string' || !/^[a-z0-9]+$/.test(s.prefix)) throw bad('prefix');
  if (!Array.isArray(s.namespaces) || !s.namespaces.every((n) => typeof n === 'string' && n.startsWith(`${s.prefix}-`))) throw bad('namespaces');
  if (!Array.isArray(s.processes) || !s.processes.every((p) => Number.isInteger(p.pid) && p.pid > 1)) throw bad('processes');
  if (typeof s.dir !== 'string' || !path.isAbsolute(s.dir)) throw bad('dir');
  return s;
}

/** The lab's namespaces that still exist. */
export function liveNamespaces(state: LabState): string[] {
  const existing = new Set(
    tryRun(['ip', 'netns', 'list'])
      .stdout.split('\n')
      .map((l) => l.split(' ')[0]),
  );
  return state.namespaces.filter((n) => existing.has(n));
}

/**
 * Tears down a lab kept by `keep()`: SIGTERM to each recorded process that is
 * still the one recorded (pid and start time), SIGKILL after 3 s, then anything
 * left inside the lab's namespaces, then the namespaces, the lab's directory
 * and the state file. Safe to run twice, and after a reboot.
 */
export async function destroyFromState(file: string): Promise<{ processes: number[]; namespaces: string[]; dir: string }> {
  const s = readLabState(file);
  const alive = () => s.processes.filter(isRecordedProcessAlive);
  const ended = alive().map((p) => p.pid);
  for (const p of alive()) {
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && alive().length > 0) await sleep(50);
  for (const p of alive()) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  const namespaces = liveNamespaces(s);
  for (const ns of [...namespaces].reverse()) {
    for (const pid of tryRun(['ip', 'netns', 'pids', ns]).stdout.split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    tryRun(['ip', 'netns', 'del', ns]);
  }
  // Only a directory the lab named after its own prefix.
  if (path.basename(s.dir).startsWith(`${s.prefix}-`)) fs.rmSync(s.dir, { recursive: true, force: true });
  fs.rmSync(file, { force: true });
  return { processes: ended, namespaces, dir: s.dir };
}

/** Waits until `file` contains a line matching `re`; returns the match. */
export async function waitForLog(file: string, re: RegExp, timeoutMs = 10_000, from = 0): Promise<RegExpMatchArray> {
  return waitFor(
    `${re} in ${file}`,
    () => {
      if (!fs.existsSync(file)) return null;
      return fs.readFileSync(file, 'utf8').slice(from).match(re);
    },
    timeoutMs,
  );
}
