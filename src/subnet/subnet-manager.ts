// The control plane's driver for the daemon: wait for the network config,
// acquire this node's subnet lease by flannel's rules, keep it renewed, and
// mirror every node's lease into the LeaseTable the data plane reads.
//
// Where flannel exits ("Lease has been revoked. Shutting down daemon."), this
// re-acquires instead — the same subnet if nobody took it — and emits 'lease'.
// Background work (renewal, watch, re-acquire) never throws: it logs and
// retries with backoff, and reports etcd reachability through 'etcd'.
//
// Events:
//   'lease'  (lease: Lease)     after a re-acquire; the subnet may have changed
//   'change' (diff: LeaseDiff)  after the LeaseTable changed (never empty)
//   'etcd'   (up: boolean)      when etcd became reachable / unreachable
//   'config' (change?: string)  the config in etcd now differs from the running
//                               one (what changed), or matches it again (undefined)

import { leaseProblem } from './lease-check';
import { EventEmitter } from 'node:events';
import { type Ip4, type Ip4Net, formatIp4 } from '../routes/ip4';
import type { Lease, LeaseDiff, LeaseTable } from '../routes/lease-table';
import { type NetworkConfig, parseNetworkConfig } from './config';
import { ConfigError, RegistryError, SubnetError, errorMessage } from './errors';
import type { LeaseAttrs } from './lease-value';
import { type Logger, silentLogger } from '../util/log';
import { LEASE_TTL_SEC, type RegistryLease, type SubnetRegistry, type LeaseWatch } from './registry';
import { Backoff } from './backoff';
import { type Clock, systemClock } from '../util/clock';
import { LogOnce } from '../util/log-once';
import { sleep } from '../util/sleep';
import { acquireSubnetLease } from './acquire';
import { describeConfigChange } from './config-change';

export interface SubnetManagerOptions {
  registry: SubnetRegistry;
  /** This node's public IP: the PublicIP of its lease, and how a restart finds the lease again. */
  publicIp: Ip4;
  /** Written as BackendType (default "udp"). */
  backendType?: string;
  /** Written as BackendData (vxlan: {"VtepMAC": …}); udp has none. */
  backendData?: unknown;
  /**
   * Which peers' leases go into the LeaseTable (default: all). A backend
   * ignores leases it cannot reach, as flannel's do (vxlan skips udp nodes).
   */
  acceptLease?: (lease: Lease) => boolean;
  /** FLANNEL_SUBNET from the subnet file of the previous run (readSubnetFile). */
  previousSubnet?: Ip4Net;
  /** Renew this many whole minutes before expiry (--subnet-lease-renew-margin, default 60). */
  renewMarginMinutes?: number;
  /** The clock renewals are timed by (default the system's; tests move a manual one). */
  clock?: Clock;
  log?: Logger;
  /** TTL of the etcd lease, seconds (default 86400, flannel's). */
  leaseTtlSec?: number;
  /** Pause between network config reads while waiting (default 1000 ms, flannel's). */
  configRetryMs?: number;
  /** Backoff of background retries: from retryMinMs doubling to retryMaxMs (default 1000 → 10000). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Pause before retrying a failed renewal (default 60000 ms, flannel's "trying again in 1 min"). */
  renewRetryMs?: number;
  /** Create attempts lost to other nodes before giving up (default 10, flannel's raceRetries). */
  raceRetries?: number;
  /** Random integer in [0, n) for subnet choice (tests). */
  random?: (n: number) => number;
}

/** The events a SubnetManager emits, with their arguments (see the header). */
interface SubnetManagerEvents {
  lease: [lease: Lease];
  change: [diff: LeaseDiff];
  etcd: [up: boolean];
  config: [change: string | undefined];
}

interface WatchOutcome {
  reason?: Error;
  /** How long the watch had been connected when it ended, ms (0 if it never connected). */
  connectedMs: number;
  /** Ended on purpose (resync requested or manager closed). */
  requested: boolean;
}

export class SubnetManager extends EventEmitter<SubnetManagerEvents> {
  private readonly registry: SubnetRegistry;
  private attrs: LeaseAttrs;
  private accept: (lease: Lease) => boolean;
  private readonly previousSubnet: Ip4Net | undefined;
  private readonly log: Logger;
  private readonly ttlSec: number;
  private readonly marginMs: number;
  private readonly configRetryMs: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly renewRetryMs: number;
  private readonly raceRetries: number;
  private readonly random: ((n: number) => number) | undefined;

  private readonly stopper = new AbortController();
  private own: RegistryLease | undefined;
  private cfg: NetworkConfig | undefined;
  private cfgText: string | undefined;
  private up = false;
  private table: LeaseTable | undefined;
  private renewTimer: unknown;
  private readonly clock: Clock;
  private renewing = false;
  private reacquiring: Promise<void> | undefined;
  private activeWatch: { watch: LeaseWatch; end: () => void } | undefined;
  private readonly logOnce: LogOnce;
  /** How the config in etcd differs from the running one, as last reported (undefined: the same). */
  private configDrift: string | undefined;

  /** @throws SubnetError FLANNEL_ERR_OPTIONS if the renew margin does not fit in the lease TTL. */
  constructor(opts: SubnetManagerOptions) {
    super();
    this.registry = opts.registry;
    this.attrs = { publicIp: opts.publicIp, backendType: opts.backendType ?? 'udp', backendData: opts.backendData };
    this.accept = opts.acceptLease ?? (() => true);
    this.previousSubnet = opts.previousSubnet;
    this.log = opts.log ?? silentLogger;
    this.logOnce = new LogOnce(this.log);
    this.ttlSec = opts.leaseTtlSec ?? LEASE_TTL_SEC;
    const margin = opts.renewMarginMinutes ?? 60;
    if (!(Number.isInteger(margin) && margin > 0 && margin * 60 < this.ttlSec)) {
      throw new SubnetError(
        'FLANNEL_ERR_OPTIONS',
        `--subnet-lease-renew-margin ${margin} is out of range: it must be a whole number of minutes, more than 0 and less than the lease TTL ` + `(${this.ttlSec / 60} minutes), e.g. the default 60`,
      );
    }
    this.marginMs = margin * 60_000;
    this.clock = opts.clock ?? systemClock;
    this.configRetryMs = opts.configRetryMs ?? 1000;
    this.retryMinMs = opts.retryMinMs ?? 1000;
    this.retryMaxMs = opts.retryMaxMs ?? 10_000;
    this.renewRetryMs = opts.renewRetryMs ?? 60_000;
    this.raceRetries = opts.raceRetries ?? 10;
    this.random = opts.random;
  }

  /** Counters for /metrics: renewals by result, and full re-lists after the first. */
  readonly stats = { renewals: 0, renewFailures: 0, resyncs: 0 };
  private lists = 0;

  /**
   * Sets what the lease will say about the backend, once the config has named
   * it (flannel creates the backend between reading the config and leasing).
   * Call before acquireLease.
   */
  useBackend(backendType: string, backendData: unknown, acceptLease: (lease: Lease) => boolean): void {
    this.attrs = { ...this.attrs, backendType, backendData };
    this.accept = acceptLease;
  }

  /** This node's current lease (undefined before acquireLease). */
  get lease(): Lease | undefined {
    return this.own;
  }

  /** The config given to acquireLease (or last returned by waitForConfig). */
  get config(): NetworkConfig | undefined {
    return this.cfg;
  }

  /** The config's JSON text as waitForConfig read it. */
  get configText(): string | undefined {
    return this.cfgText;
  }

  /** Whether the last etcd request succeeded. False until the first one does. */
  get etcdUp(): boolean {
    return this.up;
  }

  /**
   * Reads <prefix>/config every configRetryMs until it holds a valid network
   * config, and returns it. Each distinct failure is logged once, as flannel
   * does ("Couldn't fetch network config: ..."), with the config field named;
   * config warnings are logged on success. Writes nothing to etcd.
   * Rejects only when `signal` aborts or the manager is closed.
   */
  async waitForConfig(signal?: AbortSignal): Promise<NetworkConfig> {
    for (;;) {
      this.throwIfStopped(signal);
      let failure: Error;
      try {
        const text = await this.registry.getConfig();
        this.setUp(true);
        if (text === undefined) {
          const p = this.registry.prefix;
          failure = new SubnetError(
            'FLANNEL_ERR_CONFIG_MISSING',
            `flannel config not found in etcd store at ${p}/config. Did you create your config using etcdv3 API? ` +
              `(e.g. etcdctl put ${p}/config '{"Network": "10.5.0.0/16", "Backend": {"Type": "udp"}}')`,
          );
        } else {
          const { config, warnings } = parseNetworkConfig(text);
          for (const w of warnings) this.log.warn(`network config: ${w}`);
          this.log.info(
            `Found network config - Backend type: ${config.backendType} (Network ${config.network}, SubnetLen ${config.subnetLen}, ` +
              `subnets ${formatIp4(config.subnetMin)} ... ${formatIp4(config.subnetMax)}, port ${config.port})`,
          );
          this.logOnce.reset('config');
          this.cfg = config;
          this.cfgText = text;
          return config;
        }
      } catch (e) {
        if (e instanceof RegistryError) this.setUp(false);
        failure = e instanceof Error ? e : new Error(String(e));
      }
      const fields: Record<string, unknown> = { code: (failure as SubnetError).code };
      if (failure instanceof ConfigError) fields.field = failure.field;
      this.logOnce.log('config', 'error', `Couldn't fetch network config: ${failure.message}`, fields);
      await sleep(this.configRetryMs, signal, this.stopper.signal);
    }
  }

  /**
   * Gets this node a subnet lease by flannel's rules, in order:
   *  1. a lease carrying our PublicIP: reused (re-put on a fresh 24 h etcd
   *     lease; a reservation is used as it is); deleted if it no longer fits
   *     the config (outside [SubnetMin, SubnetMax] or another SubnetLen);
   *  2. the previous subnet from the subnet file, if it fits and nobody holds it;
   *  3. a random free subnet.
   * Creation is a transaction that fails if the key exists; a lost race is
   * retried (raceRetries times). etcd errors are logged and retried with
   * backoff. Then renewal is scheduled.
   * @throws SubnetError FLANNEL_ERR_SUBNET_EXHAUSTED when no subnet is free,
   *   FLANNEL_ERR_LEASE_RACE after raceRetries lost races; the abort reason.
   */
  async acquireLease(config: NetworkConfig, signal?: AbortSignal): Promise<Lease> {
    this.cfg = config;
    const backoff = new Backoff(this.retryMinMs, this.retryMaxMs);
    for (;;) {
      this.throwIfStopped(signal);
      try {
        const lease = await this.acquireOnce(config, this.previousSubnet);
        this.logOnce.reset('acquire');
        this.adoptOwn(lease);
        return lease;
      } catch (e) {
        if (!(e instanceof RegistryError)) throw e;
        this.setUp(false);
        const wait = backoff.next();
        this.logOnce.log('acquire', 'error', `Couldn't acquire a subnet lease: ${e.message} (retrying in ${wait / 1000} s)`);
        await sleep(wait, signal, this.stopper.signal);
      }
    }
  }

  /**
   * Fills `table` with every node's lease and keeps it current: a full list
   * (table.reset), then a watch from the list's revision + 1 applying puts
   * (upsert) and deletes (remove). On compaction, a cancelled watch or a lost
   * connection it lists again and resets (flannel's resync). Marks this
   * node's subnet local in the table. Call once, after acquireLease.
   */
  startWatch(table: LeaseTable): void {
    if (this.table) throw new Error('SubnetManager.startWatch called twice');
    this.table = table;
    if (this.own) this.emitDiff(table.setLocalSubnet(this.own.subnet));
    void this.watchLoop();
  }

  /**
   * Lists every lease again and resets the table from it (as after a
   * reconnect), and checks this node's own lease on the way (re-acquiring it
   * if it is gone). Returns at once; the list happens in the watch loop.
   */
  resync(): void {
    this.log.info('Resyncing every lease from etcd');
    this.requestResync();
  }

  /**
   * Reads the network config from etcd again and compares it with the
   * running one; logs the outcome either way (warning naming the changed
   * fields, or that it is unchanged). The running config is never replaced:
   * flannel reads it only at start. Returns the change (undefined: none).
   * @throws RegistryError when etcd cannot be read.
   */
  async recheckConfig(): Promise<string | undefined> {
    const text = await this.registry.getConfig();
    this.setUp(true);
    const change = this.cfg ? describeConfigChange(this.cfg, text) : undefined;
    this.observeConfig(text, true);
    return change;
  }

  /**
   * Stops renewal, re-acquisition and the watch. The lease stays in etcd (as
   * flannel leaves it) so a restart takes it back. Does not close the registry.
   */
  async close(): Promise<void> {
    if (this.stopper.signal.aborted) return;
    this.stopper.abort(Object.assign(new Error('SubnetManager closed'), { name: 'AbortError', code: 'ABORT_ERR' }));
    this.clock.clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    const w = this.activeWatch;
    this.activeWatch = undefined;
    if (w) {
      w.end();
      await w.watch.cancel();
    }
  }

  // ---------------------------------------------------------------- acquire

  private get closed(): boolean {
    return this.stopper.signal.aborted;
  }

  private throwIfStopped(signal?: AbortSignal): void {
    if (signal?.aborted) throw signal.reason;
    if (this.closed) throw this.stopper.signal.reason;
  }

  private async acquireOnce(config: NetworkConfig, previous: Ip4Net | undefined): Promise<RegistryLease> {
    const lease = await acquireSubnetLease({
      registry: this.registry,
      config,
      attrs: this.attrs,
      previous,
      ttlSec: this.ttlSec,
      raceRetries: this.raceRetries,
      random: this.random,
      log: this.log,
      signal: this.stopper.signal,
    });
    this.setUp(true);
    return lease;
  }

  /** Makes `lease` this node's lease: schedules its renewal (none for a reservation) and marks it local. */
  private adoptOwn(lease: RegistryLease): void {
    const old = this.own;
    this.own = lease;
    this.scheduleRenew();
    if (this.table && !old?.subnet.equals(lease.subnet)) {
      this.emitDiff(this.table.setLocalSubnet(lease.subnet));
    }
  }

  /**
   * Our key is gone or someone else's: acquire again (same subnet if it is
   * still free), retrying forever with backoff. Concurrent calls share one run.
   */
  private reacquire(reason: string): Promise<void> {
    if (this.closed || !this.cfg) return Promise.resolve();
    if (this.reacquiring) return this.reacquiring;
    const config = this.cfg;
    this.reacquiring = (async () => {
      this.log.warn(`${reason}; acquiring a lease again`);
      this.clock.clearTimeout(this.renewTimer);
      const old = this.own;
      const backoff = new Backoff(this.retryMinMs, this.retryMaxMs);
      let lease: RegistryLease | undefined;
      while (!this.closed) {
        try {
          lease = await this.acquireOnce(config, old?.subnet ?? this.previousSubnet);
          this.logOnce.reset('reacquire');
          break;
        } catch (e) {
          if (this.closed) return;
          if (e instanceof RegistryError) this.setUp(false);
          const wait = backoff.next();
          this.logOnce.log('reacquire', 'error', `Couldn't re-acquire a subnet lease: ${errorMessage(e)} (retrying in ${wait / 1000} s)`);
          await sleep(wait, this.stopper.signal).catch(() => undefined);
        }
      }
      if (!lease || this.closed) return;
      this.adoptOwn(lease);
      if (old && !old.subnet.equals(lease.subnet)) {
        this.log.warn(`This node's subnet changed from ${old.subnet} to ${lease.subnet}`);
        // Events for the old subnet were ignored while it was local: list again.
        this.requestResync();
      } else {
        this.log.info(`Re-acquired lease ${lease.subnet}`);
      }
      this.emit('lease', lease);
    })().finally(() => {
      this.reacquiring = undefined;
    });
    return this.reacquiring;
  }

  // ---------------------------------------------------------------- renewal

  private scheduleRenew(delayMs?: number): void {
    this.clock.clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    const own = this.own;
    if (this.closed || !own || own.leaseId === '0' || own.expiration === undefined) return; // reservations never expire
    const due = delayMs ?? own.expiration - this.marginMs - this.clock.now();
    this.log.debug(`Lease ${own.subnet} (etcd lease ${own.leaseId}) renews in ${Math.max(0, Math.round(due / 1000))} s`);
    // setTimeout fires at once beyond 2^31-1 ms; an early renewal is harmless.
    this.renewTimer = this.clock.setTimeout(() => void this.renew(), Math.min(Math.max(0, due), 0x7fffffff));
  }

  /** flannel's RenewLease: re-put our key on a fresh 24 h etcd lease, if it is still ours. */
  private async renew(): Promise<void> {
    const own = this.own;
    if (this.closed || !own || this.renewing || this.reacquiring) return;
    this.renewing = true;
    try {
      const renewed = await this.registry.updateLease(own, this.attrs, this.ttlSec);
      this.setUp(true);
      if (this.closed) return;
      // The watch can hand us our own write before the transaction's reply
      // arrives (different gRPC streams): onPut has then already adopted it.
      const echoed = renewed && this.own !== own && this.own?.leaseId === renewed.leaseId;
      if (this.own !== own && !echoed) return;
      if (renewed) {
        if (!echoed) this.own = renewed;
        this.stats.renewals++;
        this.logOnce.reset('renew');
        this.log.info(`Lease renewed, new expiration: ${new Date(renewed.expiration ?? 0).toISOString()}`);
        this.scheduleRenew();
        return;
      }
      // The key changed since we wrote it: see what is there now.
      const current = await this.registry.getLease(own.subnet);
      if (this.closed || this.own !== own) return;
      if (current && current.publicIp === this.attrs.publicIp) {
        this.own = current;
        if (current.leaseId === '0') {
          this.log.info(`Lease ${own.subnet} was turned into a reservation; no more renewals needed`);
          this.scheduleRenew();
        } else {
          this.scheduleRenew(0); // re-put by someone else with our IP: renew from its revision
        }
        return;
      }
      void this.reacquire(current ? `subnet ${own.subnet} is now held by ${formatIp4(current.publicIp)}` : `lease ${own.subnet} is gone from etcd (expired, revoked or deleted)`);
    } catch (e) {
      if (this.closed) return;
      this.setUp(false);
      this.stats.renewFailures++;
      this.logOnce.log('renew', 'error', `Error renewing lease (trying again in ${this.renewRetryMs / 1000} s): ${errorMessage(e)}`);
      if (this.own === own) this.scheduleRenew(this.renewRetryMs);
    } finally {
      this.renewing = false;
    }
  }

  // ------------------------------------------------------------------ watch

  private async watchLoop(): Promise<void> {
    const backoff = new Backoff(this.retryMinMs, this.retryMaxMs);
    while (!this.closed) {
      let healthy = false;
      try {
        const list = await this.registry.listLeases();
        this.setUp(true);
        if (this.closed) return;
        this.logOnce.reset('list');
        if (this.lists++ > 0) this.stats.resyncs++;
        this.applySnapshot(list.leases);
        // After the list, so a change between the two is also seen by the watch.
        await this.registry.getConfig().then(
          (text) => this.observeConfig(text),
          (e: unknown) => this.log.debug(`Couldn't re-read the network config: ${errorMessage(e)}`),
        );
        if (this.closed) return;
        const outcome = await this.runWatch(list.revision + 1);
        if (this.closed) return;
        if (outcome.requested) continue; // resync asked for: list again right away
        healthy = outcome.connectedMs >= this.retryMaxMs;
        this.log.warn(`Lease watch ended (${errorMessage(outcome.reason)}); resyncing`);
      } catch (e) {
        if (this.closed) return;
        this.setUp(false);
        this.logOnce.log('list', 'error', `Couldn't list subnet leases: ${errorMessage(e)} (retrying with backoff)`);
      }
      if (healthy) backoff.reset();
      try {
        await sleep(backoff.next(), this.stopper.signal);
      } catch {
        return;
      }
    }
  }

  private runWatch(fromRevision: number): Promise<WatchOutcome> {
    return new Promise<WatchOutcome>((resolve) => {
      let connectedAt = 0;
      let settled = false;
      const finish = (o: Omit<WatchOutcome, 'connectedMs'>): void => {
        if (settled) return;
        settled = true;
        if (this.activeWatch?.watch === watch) this.activeWatch = undefined;
        resolve({ ...o, connectedMs: connectedAt ? Date.now() - connectedAt : 0 });
      };
      const watch = this.registry.watchLeases(fromRevision, {
        connected: () => {
          connectedAt = Date.now();
          this.log.debug(`Watching leases from revision ${fromRevision}`);
          this.setUp(true);
        },
        put: (lease) => this.onPut(lease),
        delete: (subnet) => this.onDelete(subnet),
        config: (text) => this.observeConfig(text),
        broken: (reason) => finish({ reason, requested: false }),
      });
      this.activeWatch = { watch, end: () => finish({ requested: true }) };
    });
  }

  /** Ends the current watch so the loop lists again (after our subnet moved). */
  private requestResync(): void {
    const w = this.activeWatch;
    if (!w) return; // the loop is between watches and will list anyway
    this.activeWatch = undefined;
    w.end();
    void w.watch.cancel();
  }

  private applySnapshot(leases: RegistryLease[]): void {
    if (this.table) this.emitDiff(this.table.reset(leases.filter((l) => this.admit(l))));
    const own = this.own;
    if (!own || this.reacquiring) return;
    const current = leases.find((l) => l.subnet.equals(own.subnet));
    if (!current) {
      void this.reacquire(`lease ${own.subnet} is no longer in etcd (expired, revoked or deleted)`);
    } else if (current.publicIp !== this.attrs.publicIp) {
      void this.reacquire(`subnet ${own.subnet} is now held by ${formatIp4(current.publicIp)}`);
    } else if (current.modRevision > own.modRevision) {
      this.own = current;
      if (current.leaseId !== own.leaseId) this.scheduleRenew();
    }
  }

  private onPut(lease: RegistryLease): void {
    const own = this.own;
    if (own && lease.subnet.equals(own.subnet)) {
      if (lease.publicIp !== this.attrs.publicIp) {
        void this.reacquire(`subnet ${own.subnet} was overwritten by ${formatIp4(lease.publicIp)}`);
      } else if (lease.modRevision > own.modRevision && !this.reacquiring) {
        // Our own renewal echoing back, or an operator re-putting our key
        // (e.g. turning it into a reservation): follow it.
        this.own = lease;
        if (lease.leaseId !== own.leaseId) {
          if (lease.leaseId === '0') this.log.info(`Lease ${own.subnet} is now a reservation`);
          this.scheduleRenew();
        }
      }
    }
    if (this.table) this.emitDiff(this.admit(lease) ? this.table.upsert(lease) : this.table.remove(lease.subnet));
  }

  private onDelete(subnet: Ip4Net): void {
    const own = this.own;
    if (own && subnet.equals(own.subnet)) {
      void this.reacquire(`lease ${subnet} was deleted from etcd (expired, revoked or removed by an operator)`);
    }
    if (this.table) this.emitDiff(this.table.remove(subnet));
  }

  /**
   * The config in etcd is `text`: warn once per distinct difference from the
   * running config (flannel applies a config only at start), and say so when
   * it matches again. `always` logs even an unchanged outcome (SIGHUP).
   */
  private observeConfig(text: string | undefined, always = false): void {
    const running = this.cfg;
    if (!running) return;
    const change = describeConfigChange(running, text);
    if (change === this.configDrift && !always) return;
    const was = this.configDrift;
    this.configDrift = change;
    if (change !== undefined) {
      this.log.warn(
        { configChange: change },
        `The network config in etcd changed: ${change}. flanneld keeps running with the config it started with ` +
          `(Network ${running.network}, SubnetLen ${running.subnetLen}, Backend ${running.backendType} port ${running.port}); ` +
          'restart flanneld to apply the new one (flannel reads the network config only at start)',
      );
    } else if (was !== undefined || always) {
      this.log.info('The network config in etcd is the one flanneld is running with');
    }
    if (change !== was) this.emit('config', change);
  }

  // -------------------------------------------------------------- plumbing

  private emitDiff(diff: LeaseDiff): void {
    if (diff.added.length + diff.removed.length + diff.changed.length > 0) this.emit('change', diff);
  }

  private setUp(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    if (up) this.log.info('etcd is reachable');
    else this.log.warn('etcd is unreachable; forwarding continues with the last known leases, retrying');
    this.emit('etcd', up);
  }

  /**
   * Whether a lease from etcd may enter the lease table: it fits the network
   * config (see lease-check.ts) and the backend can reach it. A bad one is
   * ignored with one warning naming its key (repeats of the same key and
   * reason, e.g. at every resync, go to debug); another subnet carrying this
   * node's own PublicIP is a warning (a duplicate PublicIP: two nodes
   * configured alike, or a stale lease of this node's).
   */
  private admit(lease: RegistryLease): boolean {
    const own = this.own;
    const isOwn = own !== undefined && lease.subnet.equals(own.subnet);
    const problem = this.cfg && !isOwn ? leaseProblem(lease.subnet, lease.publicIp, this.cfg) : undefined;
    if (problem !== undefined) {
      this.logOnce.log(`lease ${lease.key}`, 'warn', `ignoring subnet lease ${lease.key}: ${problem} (FLANNEL_ERR_LEASE_INVALID; delete the key or fix its value)`, { key: lease.key });
      return false;
    }
    if (!isOwn && lease.publicIp === this.attrs.publicIp) {
      this.logOnce.log(
        `lease ${lease.key}`,
        'warn',
        `subnet lease ${lease.key} carries this node's PublicIP ${formatIp4(lease.publicIp)} (duplicate PublicIP): another node with the same --public-ip, or a stale lease of this node's; give each node its own --public-ip or delete the key`,
        { key: lease.key },
      );
    } else {
      this.logOnce.reset(`lease ${lease.key}`);
    }
    return this.accept(lease);
  }
}
