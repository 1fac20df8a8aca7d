// Kernel state for the kernel backends (vxlan, host-gw): routes, neighbours
// and fdb entries written through `ip -batch -` and `bridge -batch -`: two
// long-lived processes per backend fed batches of lines, never one process
// spawn per route.
//
// KernelPeers turns the lease table's diffs into kernel state. Diffs are
// coalesced: `leasesChanged` only records what each subnet should look like
// and schedules a flush; one flush at a time runs, and everything that
// arrived meanwhile goes into the next one. So a thousand leases arriving
// together cost one or two batches, not three thousand commands.
//
// It remembers what it programmed per subnet (the kernel entries to remove
// when a peer goes, or changes its MAC or public IP), and after the first
// flush — the control plane's first full list of leases — it removes entries
// left in the kernel by an earlier run for peers that are gone.

import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { type Ip4, Ip4Net, parseIp4 } from '../routes/ip4';
import type { LeaseDiff, Peer } from '../routes/lease-table';
import type { Logger } from '../util/log';
import { exec } from '../util/exec';

/** One command of a batch, with the subnet it is for (to name it in errors). */
export interface BatchLine {
  line: string;
  subnet?: string;
  /** A deletion: "not there" is not an error. */
  del?: boolean;
}

export interface BatchFailure {
  line: BatchLine;
  message: string;
}

/** A device name no one uses: `<tool> ... show dev` on it fails at once, marking the end of a batch. */
const SENTINEL_DEV = 'ftsentinel0';

/**
 * A long-lived `<tool> -force -batch -`, fed one batch at a time. Spawning a
 * process from Node costs a few milliseconds; a batch written to a running
 * `ip` costs about one. `ip`/`bridge` execute each line as it is read and
 * report failures on stderr (unbuffered) as the kernel's message and
 * "Command failed -:<line>"; each batch ends with a command that always fails
 * (showing a device that does not exist), so its report marks the batch done.
 * If the tool dies, the batch in flight fails and the next one starts a new
 * process. Batches are serialized.
 */
export class BatchShell {
  private child: ChildProcessWithoutNullStreams | undefined;
  private lineNo = 0;
  private stderrBuf = '';
  private message: string[] = [];
  private current:
    | { child: ChildProcessWithoutNullStreams; first: number; sentinel: number; lines: BatchLine[]; failures: BatchFailure[]; done: (f: BatchFailure[]) => void; timer: NodeJS.Timeout }
    | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Processes started (1 unless the tool died). */
  spawned = 0;

  /** @param argv the command (tests substitute a stand-in); default `<tool> -force -batch -`. */
  constructor(
    private readonly tool: 'ip' | 'bridge',
    private readonly timeoutMs = 30_000,
    private readonly argv: string[] = [tool, '-force', '-batch', '-'],
  ) {}

  run(lines: BatchLine[]): Promise<BatchFailure[]> {
    if (lines.length === 0) return Promise.resolve([]);
    const p = this.chain.then(() => this.runNow(lines));
    this.chain = p.catch(() => undefined);
    return p;
  }

  close(): void {
    this.closed = true;
    this.child?.stdin.end();
    this.child = undefined;
  }

  /**
   * Ends the current process; the next batch starts a fresh one. Needed when
   * a device is recreated: ip and bridge cache interface indexes by name.
   */
  restart(): void {
    this.child?.stdin.end();
    this.child = undefined;
  }

  private start(): ChildProcessWithoutNullStreams {
    const child = spawn(this.argv[0], this.argv.slice(1), { stdio: ['pipe', 'ignore', 'pipe'] }) as unknown as ChildProcessWithoutNullStreams;
    this.spawned++;
    this.lineNo = 0;
    this.stderrBuf = '';
    this.message = [];
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => this.onStderr(d));
    child.stdin.on('error', () => undefined); // reported through 'close'
    const gone = (why: string) => {
      if (this.child === child) this.child = undefined;
      if (this.current?.child === child) this.finish([{ line: { line: `${this.tool} -batch` }, message: why }], true);
    };
    child.on('error', (e) => gone(`could not run "${this.tool} -batch": ${e.message}; is iproute2 installed?`));
    child.on('close', (status, signal) => gone(`${this.tool} -batch exited (${signal ?? `status ${status}`}) before finishing the batch`));
    return child;
  }

  private runNow(lines: BatchLine[]): Promise<BatchFailure[]> {
    if (this.closed) return Promise.resolve([{ line: { line: `${this.tool} -batch` }, message: 'closed' }]);
    if (!this.child) this.child = this.start();
    const first = this.lineNo + 1;
    this.lineNo += lines.length + 1;
    const sentinel = this.lineNo;
    const end = this.tool === 'ip' ? `link show dev ${SENTINEL_DEV}` : `fdb show dev ${SENTINEL_DEV}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.child?.kill('SIGKILL');
        this.finish([{ line: { line: `${this.tool} -batch` }, message: `did not finish ${lines.length} line(s) in ${this.timeoutMs} ms` }], true);
      }, this.timeoutMs);
      this.current = { child: this.child!, first, sentinel, lines, failures: [], done: resolve, timer };
      this.child!.stdin.write(lines.map((l) => l.line).join('\n') + `\n${end}\n`);
    });
  }

  private onStderr(d: string): void {
    this.stderrBuf += d;
    let nl: number;
    while ((nl = this.stderrBuf.indexOf('\n')) >= 0) {
      const l = this.stderrBuf.slice(0, nl).trim();
      this.stderrBuf = this.stderrBuf.slice(nl + 1);
      const m = /^Command failed -:(\d+)$/.exec(l);
      if (!m) {
        if (l !== '') this.message.push(l);
        continue;
      }
      const n = Number(m[1]);
      const msg = this.message.join(' ');
      this.message = [];
      const cur = this.current;
      if (!cur) continue;
      if (n === cur.sentinel) this.finish(cur.failures, false);
      else if (n >= cur.first && n < cur.sentinel) cur.failures.push({ line: cur.lines[n - cur.first], message: msg || 'failed' });
    }
  }

  private finish(extra: BatchFailure[], failedWhole: boolean): void {
    const cur = this.current;
    if (!cur) return;
    this.current = undefined;
    clearTimeout(cur.timer);
    if (failedWhole) {
      // Lines without a report may or may not have run: report each as failed so callers retry them.
      const reported = new Set(cur.failures.map((f) => f.line));
      for (const l of cur.lines) if (!reported.has(l)) cur.failures.push({ line: l, message: extra[0]?.message ?? 'failed' });
      cur.done(cur.failures);
    } else {
      cur.done(cur.failures);
    }
  }
}

/** A deletion that found nothing to delete is fine (someone else cleaned up, or it was never added). */
export function isNotThere(message: string): boolean {
  return /No such (process|file or directory)|Cannot find device|does not exist|not found/i.test(message);
}

/** A directly connected IPv4 prefix: a link-scope route of the main table. */
export interface OnLinkPrefix {
  net: Ip4Net;
  dev: string;
}

/** The main table's link-scope IPv4 routes (what `ip route get` would answer without a gateway). */
export async function onLinkPrefixes(): Promise<OnLinkPrefix[]> {
  const routes = JSON.parse((await exec(['ip', '-j', '-4', 'route', 'show', 'table', 'main', 'scope', 'link'])) || '[]') as {
    dst: string;
    dev: string;
    type?: string;
  }[];
  const out: OnLinkPrefix[] = [];
  for (const r of routes) {
    if (r.type && r.type !== 'unicast') continue;
    const dst = r.dst === 'default' ? '0.0.0.0/0' : r.dst.includes('/') ? r.dst : `${r.dst}/32`;
    try {
      out.push({ net: Ip4Net.parse(dst), dev: r.dev });
    } catch {
      /* not IPv4 */
    }
  }
  return out;
}

/** Finds the on-link prefix holding `ip`, longest first; `dev` narrows it to one interface. */
export function onLinkFor(prefixes: OnLinkPrefix[], ip: Ip4, dev?: string): OnLinkPrefix | undefined {
  let best: OnLinkPrefix | undefined;
  for (const p of prefixes) {
    if (dev !== undefined && p.dev !== dev) continue;
    if (p.net.contains(ip) && (!best || p.net.prefixLen > best.net.prefixLen)) best = p;
  }
  return best;
}

/**
 * The lines of one flush. Two processes run them: `bridge` (fdb deletions,
 * then additions), then `ip` (deletions, then additions). Deletions go first
 * so an entry that moves (a MAC or a subnet passing from one peer to another)
 * ends up present.
 */
export interface FlushLines {
  bridgeDel: BatchLine[];
  bridgeAdd: BatchLine[];
  ipDel: BatchLine[];
  ipAdd: BatchLine[];
}

export interface FlushStats {
  added: number;
  changed: number;
  removed: number;
  failed: number;
  /** Batches written to ip/bridge (one per tool with something to do). */
  batches: number;
  ms: number;
}

/**
 * Coalesces lease diffs into batched kernel changes. A backend supplies:
 *   beforeFlush(b)    → refresh what plan() needs (e.g. on-link prefixes), once per flush
 *   plan(peer)        → the state S it wants for a peer (or undefined: skip, already logged)
 *   lines(old, new)   → the batch lines turning `old` into `new` (either may be undefined)
 *   reconcile(keep)   → after the first flush: remove kernel entries not in `keep`
 *   check()           → every startChecks() period, between flushes: repair what others removed
 */
export abstract class KernelPeers<S> {
  /** subnet (string) → state in the kernel */
  protected readonly programmed = new Map<string, S>();
  private pending = new Map<string, Peer | null>();
  private running = false;
  private scheduled = false;
  private firstFlushDone = false;
  private idleWaiters: (() => void)[] = [];
  private stopped = false;
  private checkDue = false;
  private checkTimer: NodeJS.Timeout | undefined;
  /** Last flush, for logs and tests. */
  lastFlush: FlushStats | undefined;
  /** Sum over all flushes. */
  readonly totals = { flushes: 0, batches: 0, lines: 0 };
  /** Long-lived `ip -batch` and `bridge -batch` processes (for reconcile() too). */
  protected readonly ip = new BatchShell('ip');
  protected readonly bridge = new BatchShell('bridge');

  constructor(
    protected readonly name: string,
    protected readonly log: Logger,
  ) {}

  /** `batch`: subnet → the peer it should be (null: removed), this flush. */
  protected async beforeFlush(_batch: ReadonlyMap<string, Peer | null>): Promise<void> {}
  /** Runs every startChecks() period, between flushes: repair what someone else removed. */
  protected async check(): Promise<void> {}
  protected abstract plan(peer: Peer): S | undefined;
  protected abstract lines(subnet: string, old: S | undefined, next: S | undefined, out: FlushLines): void;
  protected abstract equal(a: S, b: S): boolean;
  /** Called once, after the first flush: delete what an earlier run left for peers that are gone. */
  protected abstract reconcile(keep: ReadonlyMap<string, S>): Promise<void>;

  /** Calls check() every `ms` (never during a flush). */
  startChecks(ms: number): void {
    if (this.checkTimer) return;
    this.checkTimer = setInterval(() => {
      this.checkDue = true;
      this.schedule();
    }, ms);
    this.checkTimer.unref();
  }

  /** Forgets what is programmed and programs `peers` again (after the device was recreated empty). */
  protected reprogram(peers: Peer[]): void {
    this.programmed.clear();
    for (const p of peers) this.pending.set(p.subnet.toString(), p);
  }

  /** Records the diff and schedules a flush (never throws, never blocks). */
  enqueue(diff: LeaseDiff): void {
    if (this.stopped) return;
    for (const p of diff.removed) this.pending.set(p.subnet.toString(), null);
    for (const p of diff.added) this.pending.set(p.subnet.toString(), p);
    for (const p of diff.changed) this.pending.set(p.subnet.toString(), p);
    this.schedule();
  }

  /** Resolves when nothing is pending or being applied (tests, bench). */
  idle(): Promise<void> {
    if (!this.running && !this.scheduled && this.pending.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  get size(): number {
    return this.programmed.size;
  }

  /** Stops applying changes (the kernel state stays, as flannel leaves it). */
  stop(): void {
    this.stopped = true;
    this.pending.clear();
    clearInterval(this.checkTimer);
    if (!this.running) this.closeShells();
  }

  private closeShells(): void {
    this.ip.close();
    this.bridge.close();
  }

  /** Fresh ip/bridge processes for the next batches (their cached interface indexes may be stale). */
  protected restartShells(): void {
    this.ip.restart();
    this.bridge.restart();
  }

  private schedule(): void {
    if (this.scheduled || this.running) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.loop();
    });
  }

  private async loop(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while ((this.pending.size > 0 || this.checkDue) && !this.stopped) {
        if (this.pending.size === 0) {
          this.checkDue = false;
          try {
            await this.check();
          } catch (e) {
            this.log.warn({ err: e }, `${this.name}: periodic check failed`);
          }
          continue;
        }
        const batch = this.pending;
        this.pending = new Map();
        try {
          await this.flush(batch);
        } catch (e) {
          this.log.error({ err: e }, `${this.name}: could not apply ${batch.size} lease change(s)`);
        }
        if (!this.firstFlushDone && !this.stopped) {
          this.firstFlushDone = true;
          try {
            await this.reconcile(this.programmed);
          } catch (e) {
            this.log.warn({ err: e }, `${this.name}: could not look for stale kernel entries from an earlier run`);
          }
        }
      }
    } finally {
      this.running = false;
      if (this.stopped) this.closeShells();
      if ((this.pending.size > 0 || this.checkDue) && !this.stopped) this.schedule();
      else {
        const w = this.idleWaiters;
        this.idleWaiters = [];
        for (const f of w) f();
      }
    }
  }

  private async flush(batch: Map<string, Peer | null>): Promise<void> {
    const t0 = process.hrtime.bigint();
    const out: FlushLines = { bridgeDel: [], bridgeAdd: [], ipDel: [], ipAdd: [] };
    const next = new Map<string, S | undefined>();
    await this.beforeFlush(batch);
    let added = 0;
    let changed = 0;
    let removed = 0;
    for (const [subnet, peer] of batch) {
      const old = this.programmed.get(subnet);
      const want = peer ? this.plan(peer) : undefined;
      if (old !== undefined && want !== undefined && this.equal(old, want)) continue;
      if (old === undefined && want === undefined) continue;
      this.lines(subnet, old, want, out);
      next.set(subnet, want);
      if (old === undefined) added++;
      else if (want === undefined) removed++;
      else changed++;
    }
    if (next.size === 0) return;
    // fdb first (a route must never point at a MAC the vxlan device cannot place).
    const bridge = [...out.bridgeDel, ...out.bridgeAdd];
    const ip = [...out.ipDel, ...out.ipAdd];
    const failures = [...(await this.bridge.run(bridge)), ...(await this.ip.run(ip))];
    const failedSubnets = new Set<string>();
    // A device deleted and recreated under the long-lived tools leaves them a stale interface index.
    if (failures.some((f) => /unknown ifindex|Cannot find device/i.test(f.message))) this.restartShells();
    for (const f of failures) {
      if (f.line.del && isNotThere(f.message)) continue;
      if (f.line.subnet) failedSubnets.add(f.line.subnet);
      this.log.error(`${this.name}: "${f.line.line}" failed: ${f.message}${f.line.subnet ? ` (peer ${f.line.subnet})` : ''}`);
    }
    for (const [subnet, state] of next) {
      if (state === undefined || failedSubnets.has(subnet)) this.programmed.delete(subnet);
      else this.programmed.set(subnet, state);
    }
    const batches = [bridge, ip].filter((l) => l.length > 0).length;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    this.lastFlush = { added, changed, removed, failed: failedSubnets.size, batches, ms };
    this.totals.flushes++;
    this.totals.batches += batches;
    this.totals.lines += bridge.length + ip.length;
    const what = `${added} added, ${changed} changed, ${removed} removed${failedSubnets.size ? `, ${failedSubnets.size} failed` : ''}`;
    const msg = `${this.name}: applied ${next.size} peer change(s) (${what}) in ${ms.toFixed(1)} ms, ${batches} batch(es)`;
    if (next.size >= 20 || failedSubnets.size > 0) this.log.info(msg);
    else this.log.debug(msg);
  }
}

/** "aa:bb:cc:dd:ee:ff", lower case, or undefined if `v` is not a unicast MAC. */
export function normalizeMac(v: unknown): string | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})[:-]([0-9a-f]{1,2})$/i.exec(v.trim());
  if (!m) return undefined;
  const bytes = m.slice(1).map((x) => parseInt(x, 16));
  if (bytes[0] & 1) return undefined; // multicast/broadcast
  if (bytes.every((b) => b === 0)) return undefined;
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** A route of the main table, as `ip -j route` reports it. */
export interface KernelRoute {
  dst: Ip4Net;
  dev: string;
  gateway?: Ip4;
}

/** The main table's IPv4 routes whose destination lies inside `network`. */
export async function routesWithin(network: Ip4Net): Promise<KernelRoute[]> {
  const rows = JSON.parse((await exec(['ip', '-j', '-4', 'route', 'show', 'table', 'main'])) || '[]') as {
    dst: string;
    dev?: string;
    gateway?: string;
    type?: string;
  }[];
  const out: KernelRoute[] = [];
  for (const r of rows) {
    if ((r.type && r.type !== 'unicast') || r.dst === 'default') continue;
    let dst: Ip4Net;
    try {
      dst = Ip4Net.parse(r.dst.includes('/') ? r.dst : `${r.dst}/32`);
    } catch {
      continue;
    }
    if (!network.containsNet(dst)) continue;
    let gateway: Ip4 | undefined;
    try {
      if (r.gateway) gateway = parseIp4(r.gateway);
    } catch {
      /* IPv6 gateway */
    }
    out.push({ dst, dev: r.dev ?? '', ...(gateway !== undefined ? { gateway } : {}) });
  }
  return out;
}
