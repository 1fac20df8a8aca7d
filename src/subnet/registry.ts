// The etcd side of the control plane: a thin layer over the etcd3 client (v3
// API) that speaks flannel's key layout and nothing else.
//
//   <prefix>/config              the network config JSON
//   <prefix>/subnets/<a.b.c.d>-<len>  one key per node subnet, value = lease
//                                JSON, attached to a 24 h etcd lease; a key
//                                without an etcd lease is a reservation
//
// No retries here (the SubnetManager owns retry policy); every failure is a
// RegistryError with code FLANNEL_ERR_ETCD and the etcd3 error as `cause`.
// Every unary request has a deadline (requestTimeoutMs) so a dead etcd shows
// up as an error instead of a hang.

import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { createRequire } from 'node:module';
// Types only: etcd3 (with gRPC and protobufjs) is loaded when the first
// registry is made, see loadEtcd3.
import type { Etcd3, IKeyValue, IOptions, IWatchResponse } from 'etcd3';
import { LRUCache } from 'lru-cache';
import type { Ip4Net } from '../routes/ip4';
import type { Lease } from '../routes/lease-table';
import { RegistryError, SubnetError, errorMessage } from './errors';
import { type LeaseAttrs, formatLeaseValue, parseLeaseValue } from './lease-value';
import { type Logger, silentLogger } from '../util/log';
import { parseSubnetKey, subnetKey } from './subnets';

export const DEFAULT_PREFIX = '/coreos.com/network';
/** flannel's subnetTTL: every lease is granted for 24 hours. */
export const LEASE_TTL_SEC = 24 * 60 * 60;

export interface RegistryOptions {
  /** etcd client URLs, e.g. ["http://127.0.0.1:2379"]; https:// ones use TLS. */
  endpoints: string[];
  /** Key prefix, default /coreos.com/network (flanneld's --etcd-prefix). */
  prefix?: string;
  /** PEM file paths (--etcd-keyfile, --etcd-certfile, --etcd-cafile). */
  tls?: { key?: string; cert?: string; ca?: string };
  username?: string;
  password?: string;
  /** Deadline of each unary request, ms (default 5000). */
  requestTimeoutMs?: number;
  /** How long a new watch may take to be accepted before it counts as broken, ms (default 10000). */
  watchConnectTimeoutMs?: number;
  /**
   * gRPC keepalive: ping etcd after this long without traffic on a
   * connection with an open stream (the lease watch), ms (default 10000; etcd
   * refuses pings more often than every 5 s). A partition that drops packets
   * silently is noticed within keepalive + keepaliveTimeout, not never.
   */
  keepaliveMs?: number;
  /** How long a keepalive ping may go unanswered before the connection counts as dead, ms (default 5000). */
  keepaliveTimeoutMs?: number;
  /** For warnings about unreadable subnet keys (default: silent). */
  log?: Logger;
}

/** A subnet key as read from etcd: the routing Lease plus what is needed to update it safely. */
export interface RegistryLease extends Lease {
  /** The full etcd key. */
  key: string;
  /** etcd lease ID (decimal), "0" for a reservation (a key without an etcd lease). */
  leaseId: string;
  /** The key's mod revision: updates and deletes are conditional on it. */
  modRevision: number;
  /** The value exactly as stored. */
  value: string;
}

export interface LeaseList {
  leases: RegistryLease[];
  /** The etcd revision the list is a snapshot of; watch from revision + 1. */
  revision: number;
}

/**
 * Callbacks of a lease watch. They are called in etcd's order, one at a time.
 * After `broken` nothing more is delivered.
 */
export interface LeaseWatchHandlers {
  /** A subnet key was created or changed. */
  put(lease: RegistryLease, revision: number): void;
  /** A subnet key was deleted (or its etcd lease expired or was revoked). */
  delete(subnet: Ip4Net, key: string, revision: number): void;
  /**
   * The watch has stopped for good: etcd cancelled it (most often because
   * its start revision was compacted away), the connection dropped, or it
   * never got going. Events may have been missed: list again and start a new
   * watch from that list's revision + 1. Called at most once.
   */
  broken(reason: Error): void;
  /** etcd accepted the watch. */
  connected?(): void;
  /**
   * `<prefix>/config` was written (its new text) or deleted (undefined). The
   * watch covers the whole prefix so a changed config is noticed without a
   * second stream; keys outside config and subnets/ are ignored.
   */
  config?(text: string | undefined, revision: number): void;
}

export interface LeaseWatch {
  /** Stops the watch. No handler is called afterwards. Resolves within a couple of seconds even if etcd is gone. */
  cancel(): Promise<void>;
}

/** What the SubnetManager needs from a registry (the seam for tests). */
export interface SubnetRegistry {
  readonly prefix: string;
  getConfig(): Promise<string | undefined>;
  listLeases(): Promise<LeaseList>;
  getLease(subnet: Ip4Net): Promise<RegistryLease | undefined>;
  createLease(subnet: Ip4Net, attrs: LeaseAttrs, ttlSec?: number): Promise<RegistryLease | false>;
  updateLease(existing: RegistryLease, attrs: LeaseAttrs, ttlSec?: number): Promise<RegistryLease | false>;
  deleteLease(existing: RegistryLease): Promise<boolean>;
  watchLeases(fromRevision: number, handlers: LeaseWatchHandlers): LeaseWatch;
  close(): void;
}

export class EtcdRegistry implements SubnetRegistry {
  readonly prefix: string;
  private readonly subnetsPrefix: string;
  private readonly client: Etcd3;
  private readonly endpoints: string;
  private readonly watchConnectTimeoutMs: number;
  private readonly log: Logger;
  private readonly tls: RegistryOptions['tls'];
  private readonly username: string | undefined;
  /** The last failure described (see wrap). */
  private lastFailure: string | undefined;
  // An etcd lease's expiry never moves: flannel renews by granting a new lease,
  // never by keepalive. So an ID's expiry is fetched once.
  private readonly expiries = new LRUCache<string, number>({ max: 8192 });

  /** @throws RegistryError FLANNEL_ERR_ETCD_OPTIONS for unusable endpoints or TLS files. Does not connect. */
  constructor(opts: RegistryOptions) {
    if (!Array.isArray(opts.endpoints) || opts.endpoints.length === 0 || opts.endpoints.some((e) => e.trim() === '')) {
      throw new RegistryError('no etcd endpoints given: set --etcd-endpoints, e.g. http://127.0.0.1:2379', {
        code: 'FLANNEL_ERR_ETCD_OPTIONS',
      });
    }
    for (const e of opts.endpoints) {
      if (/^[a-z]+:\/\//i.test(e) && !/^https?:\/\//i.test(e)) {
        throw new RegistryError(`etcd endpoint "${e}" must start with http:// or https://`, { code: 'FLANNEL_ERR_ETCD_OPTIONS' });
      }
    }
    // path.Join semantics, as flannel: "/coreos.com/network/" and "/coreos.com/network" are the same prefix.
    this.prefix = posix.join('/', opts.prefix ?? DEFAULT_PREFIX).replace(/\/$/, '') || '/';
    this.subnetsPrefix = posix.join(this.prefix, 'subnets') + '/';
    this.endpoints = opts.endpoints.join(',');
    this.watchConnectTimeoutMs = opts.watchConnectTimeoutMs ?? 10_000;
    this.log = opts.log ?? silentLogger;
    this.tls = opts.tls;
    this.username = opts.username;
    const timeout = opts.requestTimeoutMs ?? 5000;

    const options: IOptions = {
      hosts: opts.endpoints,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
      grpcOptions: {
        // Without keepalive a watch over a connection whose packets are
        // silently dropped (a partition, a dead NAT entry) waits forever and
        // the daemon never learns it is out of date.
        'grpc.keepalive_time_ms': opts.keepaliveMs ?? 10_000,
        'grpc.keepalive_timeout_ms': opts.keepaliveTimeoutMs ?? 5000,
        // gRPC's reconnect backoff grows to 2 minutes by default: after a long
        // outage the daemon would lag that long behind a recovered etcd.
        'grpc.max_reconnect_backoff_ms': 5000,
      },
    };
    const credentials = loadTls(opts.tls);
    if (credentials) options.credentials = credentials;
    if (opts.username) options.auth = { username: opts.username, password: opts.password ?? '' };
    this.client = new (loadEtcd3().Etcd3)(options);
  }

  async getConfig(): Promise<string | undefined> {
    try {
      const v = await this.client.get(posix.join(this.prefix, 'config')).string();
      return v ?? undefined;
    } catch (e) {
      throw this.wrap(`read of ${posix.join(this.prefix, 'config')}`, e);
    }
  }

  /** Every subnet key, parsed; keys that are not flannel leases are skipped with a warning. */
  async listLeases(): Promise<LeaseList> {
    try {
      const res = await this.client.getAll().prefix(this.subnetsPrefix).exec();
      const parsed: RegistryLease[] = [];
      const kvs = res.kvs;
      // TTL lookups (one RPC per not-yet-seen etcd lease), a few at a time.
      for (let i = 0; i < kvs.length; i += 16) {
        const batch = await Promise.all(kvs.slice(i, i + 16).map((kv) => this.toLease(kv)));
        for (const l of batch) if (l) parsed.push(l);
      }
      return { leases: parsed, revision: Number(res.header.revision) };
    } catch (e) {
      throw this.wrap(`list of ${this.subnetsPrefix}`, e);
    }
  }

  async getLease(subnet: Ip4Net): Promise<RegistryLease | undefined> {
    const key = this.keyOf(subnet);
    try {
      const res = await this.client.get(key).exec();
      return res.kvs.length === 0 ? undefined : await this.toLease(res.kvs[0]);
    } catch (e) {
      throw this.wrap(`read of ${key}`, e);
    }
  }

  /**
   * Creates the subnet's key attached to a fresh etcd lease of ttlSec, in a
   * transaction that succeeds only if the key does not exist (flannel's
   * createSubnet). Returns false if someone holds the subnet already.
   */
  async createLease(subnet: Ip4Net, attrs: LeaseAttrs, ttlSec = LEASE_TTL_SEC): Promise<RegistryLease | false> {
    const key = this.keyOf(subnet);
    const value = formatLeaseValue(attrs);
    return this.putWithNewLease(key, subnet, value, attrs, ttlSec, `creation of ${key}`, (c) => c.if(key, 'Version', '==', 0));
  }

  /**
   * Re-puts an existing key with `attrs` on a fresh etcd lease of ttlSec —
   * flannel's renewal (updateSubnet), and how a restarted node takes back its
   * lease. Conditional on the key's mod revision being `existing.modRevision`:
   * returns false if the key changed or vanished since it was read, so an
   * expired key that another node re-created is never overwritten.
   */
  async updateLease(existing: RegistryLease, attrs: LeaseAttrs, ttlSec = LEASE_TTL_SEC): Promise<RegistryLease | false> {
    const value = formatLeaseValue(attrs);
    return this.putWithNewLease(existing.key, existing.subnet, value, attrs, ttlSec, `renewal of ${existing.key}`, (c) => c.if(existing.key, 'Mod', '==', existing.modRevision));
  }

  /** Deletes the key if it is unchanged since read; false if it changed or is gone. */
  async deleteLease(existing: RegistryLease): Promise<boolean> {
    try {
      const res = await this.client.if(existing.key, 'Mod', '==', existing.modRevision).then(this.client.delete().key(existing.key)).commit();
      return res.succeeded;
    } catch (e) {
      throw this.wrap(`deletion of ${existing.key}`, e);
    }
  }

  /**
   * Watches every subnet key (and the config key) from `fromRevision` on. etcd3 would silently
   * resume a dropped stream, but a resume can miss nothing only if the
   * revision is still in etcd's history; rather than reason about that, any
   * disconnect or cancellation ends this watch via `broken` and the caller
   * resyncs from a fresh list.
   */
  watchLeases(fromRevision: number, h: LeaseWatchHandlers): LeaseWatch {
    const configKey = posix.join(this.prefix, 'config');
    const watcher: ReturnType<ReturnType<Etcd3['watch']>['watcher']> = this.client
      .watch()
      .prefix(this.prefix === '/' ? '/' : `${this.prefix}/`)
      .startRevision(String(fromRevision))
      .watcher();
    let done = false;
    let queue: Promise<void> = Promise.resolve();

    const stop = (how: 'cancel' | 'forget'): Promise<void> => {
      clearTimeout(connectTimer);
      if (how === 'forget') return Promise.resolve(); // etcd cancelled it and etcd3 has dropped it
      const cancelled = watcher.cancel().catch(() => undefined);
      return Promise.race([cancelled, new Promise<void>((r) => setTimeout(r, 2000).unref())]);
    };
    const fail = (reason: Error, how: 'cancel' | 'forget'): void => {
      if (done) return;
      done = true;
      void stop(how);
      h.broken(reason);
    };

    const connectTimer = setTimeout(
      () => fail(new RegistryError(`etcd did not accept a watch on ${this.subnetsPrefix} within ${this.watchConnectTimeoutMs} ms (endpoints ${this.endpoints}); is etcd reachable?`), 'cancel'),
      this.watchConnectTimeoutMs,
    );

    watcher.on('connected', () => {
      clearTimeout(connectTimer);
      if (!done) h.connected?.();
    });
    watcher.on('data', (res: IWatchResponse) => {
      if (done) return;
      const revision = Number(res.header.revision);
      const events = res.events;
      // TTL lookups make event handling async. They start at once (a burst of
      // new leases costs one round trip, not one per lease) and are settled
      // here, so none rejects unhandled; the handlers run in a chain, in order.
      const keys = events.map((ev) => ev.kv.key.toString());
      const leases = events.map((ev, i) =>
        ev.type === 'Delete' || !keys[i].startsWith(this.subnetsPrefix)
          ? undefined
          : this.toLease(ev.kv).then(
              (lease) => ({ lease }),
              (err: unknown) => ({ err }),
            ),
      );
      queue = queue
        .then(async () => {
          for (let i = 0; i < events.length; i++) {
            const ev = events[i];
            if (done) return;
            const key = keys[i];
            if (key === configKey) {
              h.config?.(ev.type === 'Delete' ? undefined : ev.kv.value.toString(), revision);
              continue;
            }
            if (!key.startsWith(this.subnetsPrefix)) continue; // another key under the prefix: not ours
            const subnet = parseSubnetKey(key);
            if (!subnet) {
              this.log.warn(`ignoring etcd key ${key}: not a subnet lease`);
              continue;
            }
            if (ev.type === 'Delete') {
              h.delete(subnet, key, revision);
            } else {
              const r = (await leases[i])!;
              if ('err' in r) throw r.err;
              if (r.lease && !done) h.put(r.lease, revision);
            }
          }
        })
        .catch((e) => fail(this.wrap('watch event handling', e), 'cancel'));
    });
    // etcd3 keeps a disconnected watcher and re-attaches it on reconnect: detach it, we resync instead.
    watcher.on('disconnected', (e: Error) => fail(this.wrap(`watch of ${this.subnetsPrefix}`, e), 'cancel'));
    // Always listening for 'error': an EventEmitter without one throws.
    watcher.on('error', (e: Error) =>
      fail(
        new RegistryError(
          `etcd cancelled the watch on ${this.subnetsPrefix} from revision ${fromRevision} (${e.message || 'no reason given'}); ` +
            'usually the revision was compacted away; resyncing from a fresh list',
          { cause: e },
        ),
        'forget',
      ),
    );

    return {
      cancel: () => {
        if (done) return Promise.resolve();
        done = true;
        return stop('cancel');
      },
    };
  }

  /** Closes the connections. Pending requests fail. */
  close(): void {
    this.client.close();
  }

  private keyOf(subnet: Ip4Net): string {
    return this.subnetsPrefix + subnetKey(subnet);
  }

  private async putWithNewLease(
    key: string,
    subnet: Ip4Net,
    value: string,
    attrs: LeaseAttrs,
    ttlSec: number,
    what: string,
    cond: (c: Etcd3) => ReturnType<Etcd3['if']>,
  ): Promise<RegistryLease | false> {
    let leaseId: string | undefined;
    try {
      const t0 = Date.now();
      const grant = await this.client.leaseClient.leaseGrant({ TTL: ttlSec });
      leaseId = grant.ID;
      const expiration = t0 + Number(grant.TTL) * 1000;
      const res = await cond(this.client).then(this.client.put(key).value(value).lease(leaseId)).commit();
      if (!res.succeeded) {
        this.revokeQuietly(leaseId);
        return false;
      }
      this.expiries.set(leaseId, expiration);
      return {
        subnet,
        publicIp: attrs.publicIp,
        backendType: attrs.backendType,
        ...(attrs.backendData !== undefined ? { backendData: attrs.backendData } : {}),
        expiration,
        key,
        leaseId,
        modRevision: Number(res.header.revision),
        value,
      };
    } catch (e) {
      if (leaseId !== undefined) this.revokeQuietly(leaseId);
      throw this.wrap(what, e);
    }
  }

  // The lease was granted for a key we did not get; don't leave it to expire.
  private revokeQuietly(id: string): void {
    this.client.leaseClient.leaseRevoke({ ID: id }).catch(() => undefined);
  }

  private async toLease(kv: IKeyValue): Promise<RegistryLease | undefined> {
    const key = kv.key.toString();
    const subnet = parseSubnetKey(key);
    if (!subnet) {
      this.log.warn(`ignoring etcd key ${key}: not a subnet lease`);
      return undefined;
    }
    const value = kv.value.toString();
    const attrs = parseLeaseValue(value);
    if (typeof attrs === 'string') {
      this.log.warn(`ignoring bad subnet lease ${key}: ${attrs}`);
      return undefined;
    }
    const leaseId = String(kv.lease ?? '0');
    const lease: RegistryLease = {
      subnet,
      publicIp: attrs.publicIp,
      backendType: attrs.backendType,
      key,
      leaseId,
      modRevision: Number(kv.mod_revision),
      value,
    };
    if (attrs.backendData !== undefined) lease.backendData = attrs.backendData;
    if (leaseId !== '0') lease.expiration = await this.expiryOf(leaseId);
    return lease;
  }

  private async expiryOf(leaseId: string): Promise<number> {
    const cached = this.expiries.get(leaseId);
    if (cached !== undefined) return cached;
    const t0 = Date.now();
    const res = await this.client.leaseClient.leaseTimeToLive({ ID: leaseId });
    const ttl = Number(res.TTL);
    if (ttl < 0) return t0; // expired or revoked a moment ago; its delete event follows
    const exp = t0 + ttl * 1000;
    this.expiries.set(leaseId, exp);
    return exp;
  }

  private wrap(what: string, e: unknown): Error {
    if (e instanceof SubnetError) return e;
    // etcd3 stops calling an endpoint for 5 s after 3 failures in a row
    // (cockatiel's circuit breaker). Its error says nothing of the cause:
    // repeat the last real one, so the log shows one stable line per cause.
    let why: string;
    if ((e as { isBrokenCircuitError?: boolean } | null)?.isBrokenCircuitError) {
      why = this.lastFailure ?? 'etcd has been failing repeatedly (requests are paused for a few seconds)';
    } else {
      why = describeEtcdFailure(e, { endpoints: this.endpoints, tls: this.tls, username: this.username, prefix: this.prefix });
      this.lastFailure = why;
    }
    return new RegistryError(`etcd ${what} failed: ${why}`, { cause: e });
  }
}

/**
 * What went wrong talking to etcd, in words an operator can act on, and
 * stable (no timestamps, no OpenSSL internals) so a retry loop logs it once:
 * "<what etcd or TLS said>; <what to check>".
 */
export function describeEtcdFailure(e: unknown, ctx: { endpoints: string; tls?: { key?: string; cert?: string; ca?: string }; username?: string; prefix: string }): string {
  const raw = errorMessage(e);
  const name = e instanceof Error ? e.constructor.name : '';
  // grpc-js: "14 UNAVAILABLE: No connection established. Last error: Error: <cause> (<timestamp>). Resolution note: ..."
  let cause = /Last error: (?:Error: )?([\s\S]*?)(?: \(\d{4}-\d\d-\d\dT[^)]*\))?\.? Resolution note/.exec(raw)?.[1] ?? raw;
  // OpenSSL: "8071...:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/...:SSL alert number 42\n"
  const ssl = /SSL routines:[^:]*:([^:]+):/.exec(cause);
  if (ssl) cause = ssl[1];
  // Timings and addresses vary from one failure to the next; the cause does not.
  cause = cause
    .replace(/(Deadline exceeded) after .*/i, '$1')
    .replace(/\s+/g, ' ')
    .trim();
  const tls = ctx.tls ?? {};
  const given = (f?: string) => (f ? f : 'not given');
  if (/unable to verify|self[- ]signed certificate|unable to get local issuer|certificate verify failed|certificate has expired|not yet valid/i.test(cause)) {
    return `TLS: etcd's server certificate is not trusted (${cause}); --etcd-cafile (${given(tls.ca)}) must be the CA that signed ` + `the certificate of etcd at ${ctx.endpoints}`;
  }
  if (/does not match certificate|altnames|Hostname\/IP/i.test(cause)) {
    return `TLS: etcd's server certificate is not for the address in --etcd-endpoints (${cause}); use an address its subjectAltName lists`;
  }
  if (/alert (bad certificate|certificate required|unknown ca|certificate unknown|handshake failure|access denied)/i.test(cause)) {
    return (
      `TLS: etcd refused this node's client certificate (${cause}); etcd requires one signed by its --trusted-ca-file: ` +
      `check --etcd-certfile (${given(tls.cert)}) and --etcd-keyfile (${given(tls.key)})`
    );
  }
  if (/wrong version number|packet length too long|http_request/i.test(cause)) {
    return `TLS: ${cause}; does etcd at ${ctx.endpoints} speak TLS? Use https:// endpoints for a TLS etcd and http:// otherwise`;
  }
  if (/authentication failed|invalid user ID or password/i.test(cause)) {
    return `etcd refused the credentials of user "${ctx.username ?? ''}" (${cause.replace(/^\d+ \w+: /, '')}); check --etcd-username and --etcd-password`;
  }
  if (/user name is empty|token.*(invalid|not found)|auth.*not.*enabled/i.test(cause)) {
    return `etcd requires authentication (${cause.replace(/^\d+ \w+: /, '')}); give --etcd-username and --etcd-password`;
  }
  if (/permission denied/i.test(cause) || /Permission/.test(name)) {
    return (
      `etcd user "${ctx.username ?? ''}" may not use ${ctx.prefix} (${cause.replace(/^\d+ \w+: /, '')}); grant it read/write on the prefix, ` +
      `e.g. etcdctl role grant-permission <role> --prefix=true readwrite ${ctx.prefix}/`
    );
  }
  if (/Auth|Unauthenticated/.test(name)) return `${cause}; check --etcd-username/--etcd-password and the user's permissions on ${ctx.prefix}`;
  if (/ECONNREFUSED/.test(cause)) return `${cause}: nothing listens there; check that etcd is running at ${ctx.endpoints} (--etcd-endpoints)`;
  if (/Failed to connect|ECONNRESET|socket hang up|Connection dropped|ENETUNREACH|EHOSTUNREACH|ETIMEDOUT|Deadline exceeded|DEADLINE_EXCEEDED/i.test(cause)) {
    return (
      `cannot reach etcd (${cause}); check that etcd is running and reachable at ${ctx.endpoints} (--etcd-endpoints)` +
      (/^http:/.test(ctx.endpoints) ? ', and that it does not expect TLS (an https:// endpoint with --etcd-cafile)' : '')
    );
  }
  return `${cause}; check that etcd is running and reachable at ${ctx.endpoints} (--etcd-endpoints, TLS files)`;
}

let etcd3: typeof import('etcd3') | undefined;

/**
 * The etcd3 client library. It is the biggest part of flanneld's start-up
 * (gRPC, protobufjs and etcd's .proto files: ~150 ms of CPU), so nothing
 * loads it until a registry is made; a warm restart brings the data plane
 * up first (see preloadEtcd3).
 */
function loadEtcd3(): typeof import('etcd3') {
  etcd3 ??= require('etcd3') as typeof import('etcd3');
  return etcd3;
}

/**
 * Loads etcd3 in a few pieces, yielding to the event loop between them, so a
 * data plane already forwarding is held up by one piece (tens of ms) at a
 * time rather than by the whole library at once.
 */
export async function preloadEtcd3(): Promise<void> {
  if (etcd3) return;
  const fromEtcd3 = createRequire(require.resolve('etcd3'));
  for (const dep of ['@grpc/grpc-js', 'protobufjs', '@grpc/proto-loader', 'cockatiel']) {
    try {
      fromEtcd3(dep);
    } catch {
      // A layout where etcd3 cannot resolve it this way: it loads with etcd3 below.
    }
    await new Promise((r) => setImmediate(r));
  }
  loadEtcd3();
}

function loadTls(tls: RegistryOptions['tls']): IOptions['credentials'] | undefined {
  if (!tls || (!tls.key && !tls.cert && !tls.ca)) return undefined;
  if (Boolean(tls.key) !== Boolean(tls.cert)) {
    throw new RegistryError(`TLS client authentication needs both --etcd-keyfile and --etcd-certfile (got only ${tls.key ? '--etcd-keyfile' : '--etcd-certfile'})`, {
      code: 'FLANNEL_ERR_ETCD_OPTIONS',
    });
  }
  // Read and parse now: grpc would only say "connection failed" later.
  const read = (path: string | undefined, flag: string, kind: 'cert' | 'key'): Buffer | undefined => {
    if (!path) return undefined;
    let pem: Buffer;
    try {
      pem = readFileSync(path);
    } catch (e) {
      throw new RegistryError(`cannot read ${flag} ${path}: ${errorMessage(e)}`, { code: 'FLANNEL_ERR_ETCD_OPTIONS', cause: e });
    }
    try {
      if (kind === 'cert') new X509Certificate(pem);
      else createPrivateKey(pem);
    } catch (e) {
      throw new RegistryError(`${flag} ${path} is not a PEM ${kind === 'cert' ? 'certificate' : 'private key'}: ${errorMessage(e)}`, {
        code: 'FLANNEL_ERR_ETCD_OPTIONS',
        cause: e,
      });
    }
    return pem;
  };
  // grpc-js takes a null root certificate to mean "the system's roots"; etcd3's type says Buffer.
  return {
    rootCertificate: read(tls.ca, '--etcd-cafile', 'cert') as Buffer,
    privateKey: read(tls.key, '--etcd-keyfile', 'key'),
    certChain: read(tls.cert, '--etcd-certfile', 'cert'),
  };
}
