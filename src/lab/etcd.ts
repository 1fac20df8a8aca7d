// A real etcd (Debian's etcd-server) inside a lab namespace, and etcdctl
// (Debian's etcd-client, v3 API) for the tests' own reads and writes.
//
// Beyond the single plain-HTTP member: a member of a multi-member cluster
// (EtcdCluster: one namespace per member, peers on the underlay), TLS with
// client certificates (makeEtcdPki makes a CA, server and client certificates
// with openssl), username/password auth (enableAuth), and the helpers tests
// use to damage history (revision, compact) and to write leases as another
// node would (grantLease, putWithLease).

import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Lab } from './lab';
import { run, tryRun, waitFor } from './sh';

/** PEM files of a TLS etcd: the server's certificate and key, and the CA that signs client certificates. */
export interface EtcdTls {
  cert: string;
  key: string;
  /** CA that client certificates must chain to (with clientCertAuth) and etcdctl trusts for the server. */
  ca: string;
  /** Require a client certificate signed by `ca` (etcd's --client-cert-auth). Default true. */
  clientCertAuth?: boolean;
}

export interface EtcdOptions {
  /** Underlay address, default 198.18.0.250. */
  ip?: string;
  /** Extra etcd flags. */
  extraArgs?: string[];
  /** Namespace name suffix and file names, default "etcd". */
  name?: string;
  /** Serve clients over https (and make etcdctl use `ctlCert`). */
  tls?: EtcdTls;
  /** etcdctl's client certificate for a TLS etcd. */
  ctlCert?: { cert: string; key: string };
  /**
   * Member of a multi-member cluster: its member name and the whole
   * cluster's `name=http://ip:2380,...` (see EtcdCluster). Peers talk over
   * the underlay.
   */
  member?: { name: string; initialCluster: string };
}

export class Etcd {
  readonly ns: string;
  readonly ip: string;
  readonly endpoint: string;
  readonly dataDir: string;
  readonly logFile: string;
  /** etcdctl's `--user` once auth is enabled (user:password); see enableAuth. */
  ctlUser: string | undefined;
  private proc: ChildProcess | undefined;

  constructor(
    private readonly lab: Lab,
    private readonly opts: EtcdOptions = {},
  ) {
    const name = opts.name ?? 'etcd';
    this.ip = opts.ip ?? '198.18.0.250';
    this.ns = lab.addNamespace(name);
    lab.plug(this.ns, 'eth0', `${this.ip}/16`);
    this.endpoint = `${opts.tls ? 'https' : 'http'}://${this.ip}:2379`;
    this.dataDir = path.join(lab.dir, `${name}-data`);
    this.logFile = path.join(lab.dir, `${name}.log`);
  }

  /** Starts etcd (again, after stop: same data) and waits until it answers. */
  async start(): Promise<void> {
    this.spawn();
    await this.waitHealthy();
  }

  /** Starts the process without waiting (a cluster's members must start together). */
  spawn(): void {
    const m = this.opts.member;
    const peer = m ? `http://${this.ip}:2380` : 'http://127.0.0.1:2380';
    const tls = this.opts.tls;
    const args = [
      'etcd',
      '--name',
      m?.name ?? 'lab',
      '--data-dir',
      this.dataDir,
      '--listen-client-urls',
      this.endpoint,
      '--advertise-client-urls',
      this.endpoint,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      m?.initialCluster ?? `lab=${peer}`,
      ...(tls ? ['--cert-file', tls.cert, '--key-file', tls.key, '--trusted-ca-file', tls.ca, ...(tls.clientCertAuth === false ? [] : ['--client-cert-auth'])] : []),
      ...(this.opts.extraArgs ?? []),
    ];
    fs.appendFileSync(this.logFile, `--- start ${new Date().toISOString()}\n`);
    this.proc = this.lab.spawnIn(this.ns, args, this.logFile);
  }

  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    await waitFor(`etcd ${this.opts.member?.name ?? ''} to answer`, () => tryRun(this.ctlArgv(['endpoint', 'health']), { timeoutMs: 3000 }).status === 0, timeoutMs, 100);
  }

  get running(): boolean {
    const p = this.proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** Stops etcd (SIGKILL, as a crash would) and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill(signal);
    await exited;
  }

  /** etcdctl's argv against `endpoints` (default this member), with TLS files and credentials as configured. */
  ctlArgv(args: string[], endpoints = this.endpoint): string[] {
    const tls = this.opts.tls;
    const cert = this.opts.ctlCert;
    return [
      'ip',
      'netns',
      'exec',
      this.ns,
      'env',
      'ETCDCTL_API=3',
      'etcdctl',
      `--endpoints=${endpoints}`,
      '--dial-timeout=2s',
      '--command-timeout=5s',
      ...(tls ? [`--cacert=${tls.ca}`] : []),
      ...(cert ? [`--cert=${cert.cert}`, `--key=${cert.key}`] : []),
      ...(this.ctlUser ? [`--user=${this.ctlUser}`] : []),
      ...args,
    ];
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

  /** The store's current revision. */
  revision(): number {
    // Read from the text: JSON.parse is fine for revisions (< 2^53).
    const j = JSON.parse(this.ctl('get', '/', '--limit=1', '-w', 'json')) as { header: { revision: number } };
    return Number(j.header.revision);
  }

  /** Compacts the history up to `revision` (default: the current one), physically; returns it. */
  compact(revision = this.revision()): number {
    this.ctl('compact', String(revision), '--physical');
    return revision;
  }

  /** Grants an etcd lease of `ttlSec`; returns its ID in hex, as etcdctl takes it. */
  grantLease(ttlSec: number): string {
    const out = this.ctl('lease', 'grant', String(ttlSec));
    const m = /lease (\w+) granted/.exec(out);
    if (!m) throw new Error(`etcdctl lease grant: unexpected output ${out}`);
    return m[1];
  }

  /** Writes `key` attached to a fresh etcd lease of `ttlSec`, as a node's lease is; returns the lease ID (hex). */
  putWithLease(key: string, value: string, ttlSec: number): string {
    const id = this.grantLease(ttlSec);
    run(this.ctlArgv(['put', `--lease=${id}`, key, '--', value]));
    return id;
  }

  /** The etcd lease ID (hex) `key` is attached to; undefined for no key, '0' for a key without a lease. */
  leaseOf(key: string): string | undefined {
    const out = this.ctl('get', key, '-w', 'json');
    if (!/"kvs"/.test(out)) return undefined;
    const m = /"lease":(\d+)/.exec(out);
    return m ? BigInt(m[1]).toString(16) : '0';
  }

  /** Seconds left on the etcd lease `key` is attached to (-1 when none). */
  ttlOf(key: string): number {
    const id = this.leaseOf(key);
    if (!id || id === '0') return -1;
    const m = /remaining\((-?\d+)s\)/.exec(this.ctl('lease', 'timetolive', id));
    return m ? Number(m[1]) : -1;
  }

  /**
   * Turns on etcd's authentication: a root user (required by etcd) and a
   * user with read/write on `prefix` only. etcdctl then runs as root.
   */
  enableAuth(rootPassword: string, user: { name: string; password: string; prefix: string }): void {
    const role = `${user.name}-rw`;
    this.ctl('user', 'add', `root:${rootPassword}`);
    this.ctl('role', 'add', role);
    this.ctl('role', 'grant-permission', role, '--prefix=true', 'readwrite', user.prefix);
    this.ctl('user', 'add', `${user.name}:${user.password}`);
    this.ctl('user', 'grant-role', user.name, role);
    this.ctl('auth', 'enable');
    this.ctlUser = `root:${rootPassword}`;
  }

  logTail(): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8').slice(-4000) : '';
  }
}

/**
 * An etcd cluster of `size` members, each in its own namespace on the
 * underlay (198.18.0.251, .252, ...), peers on port 2380 of those addresses.
 */
export class EtcdCluster {
  readonly members: Etcd[];

  constructor(lab: Lab, size = 3, firstIp = 251) {
    const names = Array.from({ length: size }, (_, i) => `etcd${i + 1}`);
    const ips = names.map((_, i) => `198.18.0.${firstIp + i}`);
    const initialCluster = names.map((n, i) => `${n}=http://${ips[i]}:2380`).join(',');
    this.members = names.map((n, i) => new Etcd(lab, { name: n, ip: ips[i], member: { name: n, initialCluster } }));
  }

  /** Every member's client URL, comma-separated (flanneld's --etcd-endpoints). */
  get endpoints(): string {
    return this.members.map((m) => m.endpoint).join(',');
  }

  async start(): Promise<void> {
    for (const m of this.members) m.spawn();
    for (const m of this.members) await m.waitHealthy(30_000);
  }

  /** A running member, for etcdctl. */
  live(): Etcd {
    const m = this.members.find((x) => x.running);
    if (!m) throw new Error('no etcd member is running');
    return m;
  }

  /** etcdctl against every running member's endpoint (it picks one that answers). */
  ctl(...args: string[]): string {
    const eps = this.members
      .filter((m) => m.running)
      .map((m) => m.endpoint)
      .join(',');
    return run(this.live().ctlArgv(args, eps));
  }

  /** Index of the current leader in `members` (-1 if none answers). */
  leaderIndex(): number {
    for (let i = 0; i < this.members.length; i++) {
      const m = this.members[i];
      if (!m.running) continue;
      const r = tryRun(m.ctlArgv(['endpoint', 'status', '-w', 'json']), { timeoutMs: 5000 });
      if (r.status !== 0) continue;
      const st = /"member_id":(\d+).*"leader":(\d+)/.exec(r.stdout);
      if (st && st[1] === st[2]) return i;
    }
    return -1;
  }

  logTail(): string {
    return this.members.map((m) => `--- ${m.ns}\n${m.logTail()}`).join('\n');
  }
}

/** Files made by makeEtcdPki, all PEM. */
export interface EtcdPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A second CA that signed nothing etcd trusts: the "wrong CA". */
  otherCa: string;
  /** A client certificate signed by otherCa. */
  otherClientCert: string;
  otherClientKey: string;
}

/**
 * Makes a test PKI with openssl in `dir`: a CA, a server certificate for
 * `serverIps` (subjectAltName IP entries), a client certificate, and a second
 * CA with its own client certificate. EC P-256 keys, valid for a day.
 */
export function makeEtcdPki(dir: string, serverIps: string[]): EtcdPki {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ssl = (...args: string[]) => run(['openssl', ...args]);
  const f = (n: string) => path.join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) {
    ssl('req', '-x509', ...ec, '-keyout', f(`${ca}.key`), '-out', f(`${ca}.crt`), '-days', '1', '-subj', `/CN=flannel-ts test ${ca}`);
  }
  const issue = (name: string, ca: string, ext: string) => {
    fs.writeFileSync(f(`${name}.ext`), ext);
    ssl('req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${name}`);
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${ca}.crt`), '-CAkey', f(`${ca}.key`), '-CAcreateserial', '-out', f(`${name}.crt`), '-days', '1', '-extfile', f(`${name}.ext`));
  };
  issue('server', 'ca', `subjectAltName=${serverIps.map((ip) => `IP:${ip}`).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  issue('client', 'ca', 'extendedKeyUsage=clientAuth\n');
  issue('other-client', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: f('ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
    otherCa: f('other-ca.crt'),
    otherClientCert: f('other-client.crt'),
    otherClientKey: f('other-client.key'),
  };
}
