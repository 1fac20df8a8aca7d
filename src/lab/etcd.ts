// A real etcd (Debian's etcd-server) inside a lab namespace, and etcdctl
// (Debian's etcd-client, v3 API) for the tests' own reads and writes.

import { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab } from './lab';
import { run, tryRun, waitFor } from '../util/sh';

export interface EtcdOptions {
  /** Underlay address, default 198.18.0.250. */
  ip?: string;
  /** Extra etcd flags (TLS, auth, compaction...). */
  extraArgs?: string[];
  name?: string;
}

export class Etcd {
  readonly ns: string;
  readonly ip: string;
  readonly endpoint: string;
  readonly dataDir: string;
  readonly logFile: string;
  private proc: ChildProcess | undefined;

  constructor(private readonly lab: Lab, private readonly opts: EtcdOptions = {}) {
    const name = opts.name ?? 'etcd';
    this.ip = opts.ip ?? '198.18.0.250';
    this.ns = lab.addNamespace(name);
    lab.plug(this.ns, 'eth0', `${this.ip}/16`);
    this.endpoint = `http://${this.ip}:2379`;
    this.dataDir = path.join(lab.dir, `${name}-data`);
    this.logFile = path.join(lab.dir, `${name}.log`);
  }

  async start(): Promise<void> {
    const args = [
      'etcd',
      '--name', 'lab',
      '--data-dir', this.dataDir,
      '--listen-client-urls', `http://${this.ip}:2379`,
      '--advertise-client-urls', this.endpoint,
      '--listen-peer-urls', 'http://127.0.0.1:2380',
      '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
      '--initial-cluster', 'lab=http://127.0.0.1:2380',
      ...(this.opts.extraArgs ?? []),
    ];
    this.proc = this.lab.spawnIn(this.ns, args, this.logFile);
    await waitFor('etcd to answer', () => tryRun(this.ctlArgv(['endpoint', 'health']), { timeoutMs: 3000 }).status === 0, 20_000, 100);
  }

  /** Stops etcd (SIGKILL, as a crash would) and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await exited;
  }

  private ctlArgv(args: string[]): string[] {
    return ['ip', 'netns', 'exec', this.ns, 'env', 'ETCDCTL_API=3', 'etcdctl', `--endpoints=${this.endpoint}`, '--dial-timeout=2s', ...args];
  }

  ctl(...args: string[]): string {
    return run(this.ctlArgv(args));
  }

  put(key: string, value: string): void {
    run(this.ctlArgv(['put', key, '--', value]));
  }

  get(key: string): string | undefined {
    const out = this.ctl('get', key, '--print-value-only');
    return out === '' ? undefined : out.replace(/\n$/, '');
  }

  /** Key → value for every key under `prefix`. */
  list(prefix: string): Map<string, string> {
    const out = this.ctl('get', prefix, '--prefix', '-w', 'json');
    const j = JSON.parse(out) as { kvs?: { key: string; value: string; lease?: number }[] };
    const m = new Map<string, string>();
    for (const kv of j.kvs ?? []) m.set(Buffer.from(kv.key, 'base64').toString(), Buffer.from(kv.value, 'base64').toString());
    return m;
  }

  del(key: string, prefix = false): void {
    this.ctl('del', key, ...(prefix ? ['--prefix'] : []));
  }

  logTail(): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8').slice(-4000) : '';
  }
}
