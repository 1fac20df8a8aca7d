// SubnetManager's background logic against an in-memory registry: resync
// after a broken watch, etcd reachability events, renewal retries, lost
// races, reservations, close(). The real-etcd behaviour is in
// test/e2e/registry.test.ts; this covers what is hard to provoke there.

import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { Ip4Net, formatIp4, parseIp4 } from '../../src/routes/ip4';
import { leaseProblem } from '../../src/subnet/lease-check';
import { type Lease, type LeaseDiff, LeaseTable } from '../../src/routes/lease-table';
import { parseNetworkConfig } from '../../src/subnet/config';
import { RegistryError } from '../../src/subnet/errors';
import { type LeaseAttrs, formatLeaseValue } from '../../src/subnet/lease-value';
import type { Logger } from '../../src/util/log';
import type { LeaseList, LeaseWatch, LeaseWatchHandlers, RegistryLease, SubnetRegistry } from '../../src/subnet/registry';
import { SubnetManager, type SubnetManagerOptions } from '../../src/subnet/subnet-manager';
import { subnetKey } from '../../src/subnet/subnets';
import { ManualClock } from '../lib/manual-clock';

const PREFIX = '/coreos.com/network';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** etcd in a Map: revisions, conditional writes, watches that can be broken, and an off switch. */
class FakeRegistry implements SubnetRegistry {
  readonly prefix = PREFIX;
  config: string | undefined;
  keys = new Map<string, RegistryLease>();
  revision = 1;
  down = false;
  calls: string[] = [];
  /** Next createLease calls answer "conflict" this many times. */
  conflicts = 0;
  watches: Array<{ from: number; h: LeaseWatchHandlers; live: boolean }> = [];
  /** Time for lease expirations: the manager's clock in the renewal tests. */
  now: () => number = Date.now;

  private check(op: string): void {
    this.calls.push(op);
    if (this.down) throw new RegistryError(`etcd ${op} failed: connection refused`);
  }
  private key(sn: Ip4Net): string {
    return `${PREFIX}/subnets/${subnetKey(sn)}`;
  }
  private write(sn: Ip4Net, attrs: LeaseAttrs, leaseId: string, expiration?: number): RegistryLease {
    const l: RegistryLease = {
      subnet: sn,
      publicIp: attrs.publicIp,
      backendType: attrs.backendType || 'udp',
      key: this.key(sn),
      leaseId,
      modRevision: ++this.revision,
      value: formatLeaseValue(attrs),
      ...(expiration !== undefined ? { expiration } : {}),
    };
    this.keys.set(l.key, l);
    for (const w of this.watches) if (w.live) w.h.put({ ...l }, this.revision);
    return { ...l };
  }
  /** Another node or an operator writes a key (no revision checks). */
  put(sn: string, publicIp: string, opts: { reservation?: boolean; silent?: boolean } = {}): void {
    const watches = this.watches;
    if (opts.silent) this.watches = [];
    this.write(Ip4Net.parse(sn), { publicIp: parseIp4(publicIp), backendType: 'udp' }, opts.reservation ? '0' : String(this.revision + 100), opts.reservation ? undefined : this.now() + 86400_000);
    this.watches = watches;
  }
  del(sn: string, opts: { silent?: boolean } = {}): void {
    const net = Ip4Net.parse(sn);
    this.keys.delete(this.key(net));
    this.revision++;
    if (!opts.silent) for (const w of this.watches) if (w.live) w.h.delete(net, this.key(net), this.revision);
  }
  breakWatches(): void {
    for (const w of this.watches) {
      if (w.live) {
        w.live = false;
        w.h.broken(new RegistryError('etcd cancelled the watch (compacted)'));
      }
    }
  }

  async getConfig(): Promise<string | undefined> {
    this.check('getConfig');
    return this.config;
  }
  async listLeases(): Promise<LeaseList> {
    this.check('list');
    return { leases: [...this.keys.values()].map((l) => ({ ...l })), revision: this.revision };
  }
  async getLease(sn: Ip4Net): Promise<RegistryLease | undefined> {
    this.check('get');
    const l = this.keys.get(this.key(sn));
    return l && { ...l };
  }
  async createLease(sn: Ip4Net, attrs: LeaseAttrs, ttl = 86400): Promise<RegistryLease | false> {
    this.check('create');
    if (this.conflicts > 0) {
      this.conflicts--;
      return false;
    }
    if (this.keys.has(this.key(sn))) return false;
    return this.write(sn, attrs, String(this.revision + 1000), this.now() + ttl * 1000);
  }
  async updateLease(existing: RegistryLease, attrs: LeaseAttrs, ttl = 86400): Promise<RegistryLease | false> {
    this.check('update');
    const cur = this.keys.get(existing.key);
    if (!cur || cur.modRevision !== existing.modRevision) return false;
    return this.write(existing.subnet, attrs, String(this.revision + 1000), this.now() + ttl * 1000);
  }
  async deleteLease(existing: RegistryLease): Promise<boolean> {
    this.check('delete');
    const cur = this.keys.get(existing.key);
    if (!cur || cur.modRevision !== existing.modRevision) return false;
    this.del(existing.subnet.toString());
    return true;
  }
  watchLeases(from: number, h: LeaseWatchHandlers): LeaseWatch {
    this.calls.push('watch');
    const w = { from, h, live: true };
    this.watches.push(w);
    if (this.down) {
      setImmediate(() => {
        if (w.live) {
          w.live = false;
          h.broken(new RegistryError('watch: connection refused'));
        }
      });
    } else {
      setImmediate(() => w.live && h.connected?.());
    }
    return {
      cancel: async () => {
        w.live = false;
      },
    };
  }
  close(): void {}
}

const cfg = parseNetworkConfig('{"Network":"198.19.0.0/16"}').config;
const ME = parseIp4('198.18.0.1');
const managers: SubnetManager[] = [];

function quietLog(): Logger & { lines: string[] } {
  // Lines as "level: message", so tests can tell a logged failure from its debug-level repeats.
  const lines: string[] = [];
  const f =
    (level: string) =>
    (...a: unknown[]): void => {
      lines.push(`${level}: ${String(a.find((x) => typeof x === 'string'))}`);
    };
  return { debug: f('debug'), info: f('info'), warn: f('warn'), error: f('error'), lines };
}

function make(reg: FakeRegistry, opts: Partial<SubnetManagerOptions> = {}): SubnetManager & { logLines: string[] } {
  const log = quietLog();
  const m = new SubnetManager({
    registry: reg,
    publicIp: ME,
    log,
    retryMinMs: 10,
    retryMaxMs: 40,
    configRetryMs: 10,
    renewRetryMs: 20,
    ...opts,
  }) as SubnetManager & { logLines: string[] };
  m.logLines = log.lines;
  managers.push(m);
  return m;
}

async function until(what: string, fn: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

afterEach(async () => {
  for (const m of managers.splice(0)) await m.close();
});

describe('SubnetManager (fake registry)', () => {
  test('a broken watch (compaction) is followed by a full resync that catches missed events', async () => {
    const reg = new FakeRegistry();
    reg.put('198.19.1.0/24', '198.18.0.11');
    reg.put('198.19.2.0/24', '198.18.0.12');
    const m = make(reg);
    await m.acquireLease(cfg);
    const table = new LeaseTable(8285);
    const diffs: LeaseDiff[] = [];
    m.on('change', (d) => diffs.push(d));
    m.startWatch(table);
    await until('initial list', () => table.size === 2);

    // Changes etcd's history no longer holds for us:
    reg.del('198.19.1.0/24', { silent: true });
    reg.put('198.19.3.0/24', '198.18.0.13', { silent: true });
    reg.breakWatches();
    await until('resync', () => table.size === 2 && table.lookup(parseIp4('198.19.3.1')) !== undefined);
    assert.equal(table.lookup(parseIp4('198.19.1.1')), undefined);
    const last = diffs[diffs.length - 1];
    assert.deepEqual(
      last.removed.map((p) => p.subnet.toString()),
      ['198.19.1.0/24'],
    );
    assert.deepEqual(
      last.added.map((p) => p.subnet.toString()),
      ['198.19.3.0/24'],
    );
    // the new watch starts right after the list's revision
    const w = reg.watches[reg.watches.length - 1];
    assert.equal(w.from, reg.revision + 1);
    assert.ok(m.logLines.some((l) => /Lease watch ended .*compacted.*resyncing/.test(l)));
  });

  test('etcd reachability is reported once per change; routes are kept while down', async () => {
    const reg = new FakeRegistry();
    reg.put('198.19.1.0/24', '198.18.0.11');
    const m = make(reg);
    const states: boolean[] = [];
    m.on('etcd', (u) => states.push(u));
    await m.acquireLease(cfg);
    const table = new LeaseTable(8285);
    m.startWatch(table);
    await until('list', () => table.size === 1);
    reg.down = true;
    reg.breakWatches();
    await until('down', () => !m.etcdUp);
    const listsBefore = reg.calls.filter((c) => c === 'list').length;
    await until('several failed retries', () => reg.calls.filter((c) => c === 'list').length >= listsBefore + 3);
    assert.equal(table.size, 1);
    const failures = m.logLines.filter((l) => /^error: Couldn't list subnet leases/.test(l));
    assert.equal(failures.length, 1, 'a repeated failure is logged once');
    reg.down = false;
    await until('up', () => m.etcdUp);
    assert.deepEqual(states, [true, false, true]);
  });

  test('waitForConfig retries until the config is valid, without writing', async () => {
    const reg = new FakeRegistry();
    const m = make(reg);
    const p = m.waitForConfig();
    const reads = () => reg.calls.filter((c) => c === 'getConfig').length;
    await until('the missing config logged', () => m.logLines.some((l) => /^error: Couldn't fetch network config: flannel config not found/.test(l)));
    reg.config = '{"Network":"198.19.0.0/16","Backend":{"Type":"ipip"}}';
    const readsBefore = reads();
    await until('the bad config read again and again', () => reads() >= readsBefore + 3);
    reg.config = '{"Network":"198.19.0.0/16"}';
    const c = await p;
    assert.equal(c.network.toString(), '198.19.0.0/16');
    assert.ok(reg.calls.every((c) => c === 'getConfig'));
    assert.ok(m.logLines.some((l) => /Couldn't fetch network config: flannel config not found in etcd store at \/coreos\.com\/network\/config/.test(l)));
    assert.equal(m.logLines.filter((l) => /^error: .*Backend\.Type "ipip" is not supported by flannel-ts yet/.test(l)).length, 1);
  });

  test('lost create races are retried; too many is FLANNEL_ERR_LEASE_RACE', async () => {
    const reg = new FakeRegistry();
    reg.conflicts = 3;
    const m = make(reg);
    const l = await m.acquireLease(cfg);
    assert.ok(cfg.network.containsNet(l.subnet));
    assert.equal(reg.calls.filter((c) => c === 'create').length, 4);

    const reg2 = new FakeRegistry();
    reg2.conflicts = 100;
    await assert.rejects(make(reg2, { raceRetries: 5 }).acquireLease(cfg), (e: Error & { code?: string }) => e.code === 'FLANNEL_ERR_LEASE_RACE');
  });

  test('acquireLease retries while etcd is down', async () => {
    const reg = new FakeRegistry();
    reg.down = true;
    const m = make(reg);
    const p = m.acquireLease(cfg);
    await until('a few failures', () => reg.calls.length >= 3);
    reg.down = false;
    const l = await p;
    assert.ok(cfg.network.containsNet(l.subnet));
  });

  test('renewal: due renew-margin before expiry, retried after an error, then re-put on a fresh lease', async () => {
    const clock = new ManualClock();
    const reg = new FakeRegistry();
    reg.now = () => clock.now();
    const m = make(reg, { clock, renewMarginMinutes: 60, renewRetryMs: MINUTE }); // 24 h lease: renewal 23 h in
    const first = (await m.acquireLease(cfg)) as RegistryLease;
    const updates = () => reg.calls.filter((c) => c === 'update').length;
    clock.advance(23 * HOUR - MINUTE);
    assert.equal(updates(), 0, 'not renewed an hour and a minute before expiry');
    reg.down = true;
    clock.advance(MINUTE);
    assert.equal(updates(), 1, 'renewed exactly the margin before expiry');
    await until('the failure logged and a retry scheduled', () => clock.pending === 1 && m.logLines.some((l) => /Error renewing lease \(trying again in 60 s\)/.test(l)));
    clock.advance(MINUTE);
    assert.equal(updates(), 2, 'retried a minute later');
    await until('a retry scheduled again', () => clock.pending === 1);
    reg.down = false;
    clock.advance(MINUTE);
    await until('renewed', () => (m.lease as RegistryLease).leaseId !== first.leaseId);
    assert.ok(m.lease!.subnet.equals(first.subnet));
    assert.equal(m.lease!.expiration, clock.now() + 24 * HOUR, 'a fresh 24 h lease');
    assert.ok(m.logLines.some((l) => /Lease renewed, new expiration/.test(l)));
    await until('the next renewal scheduled', () => clock.pending === 1);
  });

  test('a renewal whose own write comes back on the watch before the reply is still counted and logged', async () => {
    // The fake delivers a write to watchers before the writer's promise
    // settles: the order a real etcd gives when the watch stream's event
    // overtakes the transaction's reply (they travel on different streams).
    const clock = new ManualClock();
    const reg = new FakeRegistry();
    reg.now = () => clock.now();
    const m = make(reg, { clock });
    const first = (await m.acquireLease(cfg)) as RegistryLease;
    m.startWatch(new LeaseTable(8285));
    await until('watch', () => reg.watches.length > 0 && m.etcdUp);
    clock.advance(23 * HOUR);
    await until('renewed', () => (m.lease as RegistryLease).leaseId !== first.leaseId);
    await until('counted', () => m.stats.renewals >= 1);
    assert.equal(m.logLines.filter((l) => /^info: Lease renewed, new expiration/.test(l)).length, m.stats.renewals);
  });

  test('renewal finds our key taken by another node: moves, emits lease', async () => {
    const clock = new ManualClock();
    const reg = new FakeRegistry();
    reg.now = () => clock.now();
    const m = make(reg, { clock });
    const first = await m.acquireLease(cfg);
    const moved = new Promise<Lease>((r) => m.once('lease', r));
    reg.put(first.subnet.toString(), '198.18.0.99', { silent: true }); // no watch running: found at renewal
    clock.advance(23 * HOUR);
    const l = await moved;
    assert.ok(!l.subnet.equals(first.subnet));
    assert.ok(m.logLines.some((x) => /is now held by 198\.18\.0\.99/.test(x)));
  });

  test('our key turned into a reservation: renewals stop', async () => {
    const clock = new ManualClock();
    const reg = new FakeRegistry();
    reg.now = () => clock.now();
    const m = make(reg, { clock });
    const first = await m.acquireLease(cfg);
    m.startWatch(new LeaseTable(8285));
    await until('watch', () => reg.watches.length > 0 && m.etcdUp);
    assert.equal(clock.pending, 1, 'a renewal is scheduled');
    reg.put(first.subnet.toString(), '198.18.0.1', { reservation: true });
    await until('adopted', () => (m.lease as RegistryLease).leaseId === '0');
    assert.equal(clock.pending, 0, 'no renewal scheduled for a reservation');
    clock.advance(48 * HOUR);
    assert.equal(reg.calls.filter((c) => c === 'update').length, 0, 'no renewal of a reservation');
    assert.equal(m.lease!.expiration, undefined);
  });

  test('close() stops all background work and keeps the lease', async () => {
    const clock = new ManualClock();
    const reg = new FakeRegistry();
    reg.now = () => clock.now();
    const m = make(reg, { clock });
    const l = await m.acquireLease(cfg);
    m.startWatch(new LeaseTable(8285));
    await until('watch', () => reg.watches.length > 0);
    await m.close();
    assert.equal(clock.pending, 0, 'no renewal timer left');
    const n = reg.calls.length;
    reg.breakWatches();
    clock.advance(48 * HOUR); // past the renewal time
    await new Promise((r) => setTimeout(r, 50)); // a watch retry would come within retryMaxMs (40 ms): none does
    assert.equal(reg.calls.length, n);
    assert.ok(reg.keys.has(`${PREFIX}/subnets/${subnetKey(l.subnet)}`));
    await assert.rejects(m.waitForConfig(), /closed/);
  });
});

describe('leases checked against the network config', () => {
  test('leaseProblem: outside the Network, another length, unusable PublicIPs', () => {
    const c = { network: Ip4Net.parse('198.19.0.0/16'), subnetLen: 24 };
    const p = (sn: string, ip: string) => leaseProblem(Ip4Net.parse(sn), parseIp4(ip), c);
    assert.equal(p('198.19.5.0/24', '198.18.0.5'), undefined);
    assert.match(p('10.0.0.0/24', '198.18.0.5')!, /outside the Network 198\.19\.0\.0\/16/);
    assert.match(p('198.19.156.0/25', '198.18.0.5')!, /is a \/25, but SubnetLen is 24/);
    assert.match(p('198.19.0.0/16', '198.18.0.5')!, /is a \/16, but SubnetLen is 24/);
    assert.match(p('198.19.153.0/24', '127.0.0.1')!, /loopback/);
    assert.match(p('198.19.153.0/24', '224.0.0.5')!, /multicast/);
    assert.match(p('198.19.153.0/24', '0.0.0.0')!, /unspecified/);
    assert.match(p('198.19.153.0/24', '255.255.255.255')!, /broadcast/);
  });

  test('bad keys never reach the table, each warned about once; a duplicate PublicIP is a warning', async () => {
    const reg = new FakeRegistry();
    reg.put('198.19.1.0/24', '198.18.0.11');
    reg.put('10.0.0.0/24', '198.18.0.12');
    reg.put('198.19.156.0/25', '198.18.0.13');
    reg.put('198.19.0.0/16', '198.18.0.14');
    reg.put('198.19.153.0/24', '127.0.0.1');
    const m = make(reg);
    await m.acquireLease(cfg);
    const table = new LeaseTable(8285);
    m.startWatch(table);
    await until('initial list', () => table.size >= 1);
    // Written after this node took its lease (at start it would take this one back as its own).
    reg.put('198.19.154.0/24', formatIp4(ME));
    await until('duplicate listed', () => table.size === 2);
    assert.deepEqual(
      table
        .peers()
        .map((l) => l.subnet.toString())
        .sort(),
      ['198.19.1.0/24', '198.19.154.0/24'],
    );
    for (const k of ['10.0.0.0-24', '198.19.156.0-25', '198.19.0.0-16', '198.19.153.0-24']) {
      assert.equal(m.logLines.filter((l) => l.startsWith('warn') && l.includes(`subnets/${k}:`)).length, 1, k);
    }
    assert.ok(m.logLines.some((l) => /198\.19\.154\.0-24 carries this node's PublicIP .* \(duplicate PublicIP\)/.test(l)));
    // A resync lists them again: no second warning.
    reg.breakWatches();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(m.logLines.filter((l) => l.startsWith('warn') && l.includes('subnets/198.19.0.0-16:')).length, 1, 'the repeat is debug only');
    // A bad value put later replaces a good one: the subnet leaves the table.
    reg.put('198.19.1.0/24', '224.0.0.9');
    await until('bad update removed', () => table.lookup(parseIp4('198.19.1.1')) === undefined);
  });
});
