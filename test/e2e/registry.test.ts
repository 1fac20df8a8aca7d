// The control plane against a real etcd (Debian's /usr/bin/etcd), started
// here on 127.0.0.1 with random free ports and a temporary data dir, and
// killed by pid afterwards. No root needed. Each test uses its own prefix.

import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { Ip4Net, formatIp4, parseIp4 } from '../../src/routes/ip4';
import { type Lease, type LeaseDiff, LeaseTable } from '../../src/routes/lease-table';
import { parseNetworkConfig, type NetworkConfig } from '../../src/subnet/config';
import type { Logger } from '../../src/util/log';
import { EtcdRegistry, type RegistryLease } from '../../src/subnet/registry';
import { SubnetManager, type SubnetManagerOptions } from '../../src/subnet/subnet-manager';
import { ManualClock } from '../lib/manual-clock';

const ETCD = '/usr/bin/etcd';
const skip = existsSync(ETCD) ? false : `${ETCD} not installed`;

let etcd: ChildProcess | undefined;
let dataDir = '';
let endpoint = '';
let raw: Etcd3; // a plain client playing operator and other nodes
let prefixSeq = 0;
const cleanup: Array<() => unknown> = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Line {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}
function recorder(): { log: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const mk =
    (level: string) =>
    (...args: unknown[]): void => {
      const fields = typeof args[0] === 'object' && args[0] !== null ? (args[0] as Record<string, unknown>) : undefined;
      lines.push({ level, msg: String(args.find((a) => typeof a === 'string') ?? ''), fields });
      if (process.env.FLANNEL_TS_TEST_LOG) console.error(`[${level}] ${lines[lines.length - 1].msg}`);
    };
  return { log: { debug: mk('debug'), info: mk('info'), warn: mk('warn'), error: mk('error') }, lines };
}

function newPrefix(): string {
  return `/e2e${++prefixSeq}/coreos.com/network`;
}

function registry(prefix: string): EtcdRegistry {
  const r = new EtcdRegistry({ endpoints: [endpoint], prefix, requestTimeoutMs: 3000 });
  cleanup.push(() => r.close());
  return r;
}

function config(json: string): NetworkConfig {
  return parseNetworkConfig(json).config;
}

const NET16 = '{"Network":"198.19.0.0/16","Backend":{"Type":"udp"}}';
const ip = parseIp4;

function manager(reg: EtcdRegistry, opts: Partial<SubnetManagerOptions> & { publicIp: number }): { m: SubnetManager; lines: Line[] } {
  const { log, lines } = recorder();
  const m = new SubnetManager({ registry: reg, log, retryMinMs: 50, retryMaxMs: 200, configRetryMs: 50, renewRetryMs: 200, ...opts });
  cleanup.push(() => m.close());
  return { m, lines };
}

async function rawValue(key: string): Promise<{ value: string; lease: string } | undefined> {
  const res = await raw.get(key).exec();
  if (res.kvs.length === 0) return undefined;
  return { value: res.kvs[0].value.toString(), lease: res.kvs[0].lease };
}

/** What another node (stock flannel or flannel-ts) would write: a key on a 24 h lease. */
async function otherNode(prefix: string, subnet: string, publicIp: string, ttl = 86400, value?: string): Promise<void> {
  const g = await raw.leaseClient.leaseGrant({ TTL: ttl });
  await raw
    .put(`${prefix}/subnets/${subnet.replace('/', '-')}`)
    .value(value ?? `{"PublicIP":"${publicIp}","PublicIPv6":null}`)
    .lease(g.ID)
    .exec();
}

let peerUrl = '';

function spawnEtcd(dir: string, client: string, peer: string, extra: string[] = []): ChildProcess {
  return spawn(
    ETCD,
    [
      '--name=e2e',
      `--data-dir=${join(dir, 'data')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=e2e=${peer}`,
      '--logger=zap',
      '--log-level=error',
      ...extra,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
}

async function killProcess(p: ChildProcess | undefined): Promise<void> {
  if (!p?.pid) return;
  const exited = p.exitCode !== null || p.signalCode !== null ? Promise.resolve() : new Promise((r) => p.once('exit', r));
  process.kill(p.pid, 'SIGKILL');
  await exited;
}

/** Starts etcd on the chosen ports (again, after a kill: same data dir, same cluster). */
async function startEtcd(): Promise<void> {
  etcd = spawnEtcd(dataDir, endpoint, peerUrl);
  await waitFor('etcd to start', async () => (await raw.get('ping').exec()) && true, 20_000);
}

async function stopEtcd(): Promise<void> {
  const p = etcd;
  etcd = undefined;
  await killProcess(p);
}

before(async () => {
  if (skip) return;
  dataDir = await mkdtemp(join(tmpdir(), 'flannel-ts-etcd-'));
  const [cp, pp] = [await freePort(), await freePort()];
  endpoint = `http://127.0.0.1:${cp}`;
  peerUrl = `http://127.0.0.1:${pp}`;
  raw = new Etcd3({ hosts: [endpoint] });
  await startEtcd();
});

afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

after(async () => {
  raw?.close();
  await stopEtcd();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('EtcdRegistry', { skip }, () => {
  test('createLease: transaction refuses an existing key; value and TTL exactly as flannel', async () => {
    const prefix = newPrefix();
    const reg = registry(prefix);
    const sn = Ip4Net.parse('198.19.7.0/24');
    const a = await reg.createLease(sn, { publicIp: ip('198.18.0.1'), backendType: 'udp' });
    assert.ok(a, 'first create succeeds');
    assert.equal(a.key, `${prefix}/subnets/198.19.7.0-24`);
    const b = await reg.createLease(sn, { publicIp: ip('198.18.0.2'), backendType: 'udp' });
    assert.equal(b, false, 'second create conflicts');

    const stored = await rawValue(`${prefix}/subnets/198.19.7.0-24`);
    assert.equal(stored?.value, '{"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"udp"}');
    assert.equal(stored?.lease, a.leaseId);
    const ttl = await raw.leaseClient.leaseTimeToLive({ ID: a.leaseId });
    assert.equal(Number(ttl.grantedTTL), 86400);
    assert.ok(Math.abs(a.expiration! - (Date.now() + 86400_000)) < 10_000);
  });

  test('listLeases: leases, reservations, stock values, junk; getConfig', async () => {
    const prefix = newPrefix();
    const reg = registry(prefix);
    assert.equal(await reg.getConfig(), undefined);
    await raw.put(`${prefix}/config`).value(NET16).exec();
    assert.equal(await reg.getConfig(), NET16);

    await otherNode(prefix, '198.19.1.0/24', '198.18.0.11'); // stock flannel udp: no BackendType
    await raw.put(`${prefix}/subnets/198.19.2.0-24`).value('{"PublicIP":"198.18.0.12","PublicIPv6":null,"BackendType":"udp"}').exec(); // reservation
    await raw.put(`${prefix}/subnets/not-a-subnet`).value('{}').exec();
    await raw.put(`${prefix}/subnets/198.19.3.0-24`).value('garbage').exec();
    const { leases, revision } = await reg.listLeases();
    assert.ok(revision > 0);
    const by = new Map(leases.map((l) => [l.subnet.toString(), l]));
    assert.deepEqual([...by.keys()].sort(), ['198.19.1.0/24', '198.19.2.0/24']);
    const stock = by.get('198.19.1.0/24')!;
    assert.equal(stock.backendType, 'udp');
    assert.equal(formatIp4(stock.publicIp), '198.18.0.11');
    assert.ok(stock.expiration! > Date.now() + 86000_000);
    const resv = by.get('198.19.2.0/24')!;
    assert.equal(resv.leaseId, '0');
    assert.equal(resv.expiration, undefined);
  });

  test('a watch from a compacted revision reports itself broken', async () => {
    const prefix = newPrefix();
    const reg = registry(prefix);
    await raw.put(`${prefix}/subnets/198.19.1.0-24`).value('{"PublicIP":"198.18.0.1"}').exec();
    const r2 = await raw.put(`${prefix}/subnets/198.19.1.0-24`).value('{"PublicIP":"198.18.0.2"}').exec();
    await raw.kv.compact({ revision: r2.header.revision, physical: true });
    const reason = await new Promise<Error>((resolve) => {
      reg.watchLeases(1, { put: () => undefined, delete: () => undefined, broken: resolve });
    });
    assert.match(reason.message, /cancelled the watch|compact/);
  });

  test('an unreachable etcd is an error with a code, not a hang', async () => {
    const port = await freePort();
    const reg = new EtcdRegistry({ endpoints: [`http://127.0.0.1:${port}`], requestTimeoutMs: 500 });
    try {
      await assert.rejects(reg.getConfig(), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'FLANNEL_ERR_ETCD');
        assert.match(e.message, /--etcd-endpoints/);
        return true;
      });
    } finally {
      reg.close();
    }
  });
});

describe('EtcdRegistry over TLS with client certificates', { skip: skip || (existsSync('/usr/bin/openssl') ? false : 'no openssl') }, () => {
  let dir = '';
  let proc: ChildProcess | undefined;
  let url = '';
  const f = (n: string): string => join(dir, n);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flannel-ts-etcd-tls-'));
    const ssl = (...args: string[]): void => {
      execFileSync('/usr/bin/openssl', args, { cwd: dir, stdio: 'ignore' });
    };
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=flannel-ts test CA');
    for (const [name, usage] of [
      ['server', 'serverAuth,clientAuth'],
      ['client', 'clientAuth'],
    ]) {
      await writeFile(f(`${name}.ext`), `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=${usage}\n`);
      ssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
      ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`);
    }
    const [cp, pp] = [await freePort(), await freePort()];
    url = `https://127.0.0.1:${cp}`;
    proc = spawnEtcd(dir, url, `http://127.0.0.1:${pp}`, [`--cert-file=${f('server.crt')}`, `--key-file=${f('server.key')}`, `--trusted-ca-file=${f('ca.crt')}`, '--client-cert-auth']);
    const probe = new EtcdRegistry({ endpoints: [url], tls: { ca: f('ca.crt'), cert: f('client.crt'), key: f('client.key') } });
    try {
      await waitFor('TLS etcd to start', async () => (await probe.getConfig()) === undefined, 20_000);
    } finally {
      probe.close();
    }
  });

  after(async () => {
    await killProcess(proc);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('client certificate accepted; leases work', async () => {
    const reg = new EtcdRegistry({ endpoints: [url], tls: { ca: f('ca.crt'), cert: f('client.crt'), key: f('client.key') } });
    try {
      const l = await reg.createLease(Ip4Net.parse('198.19.3.0/24'), { publicIp: ip('198.18.0.3'), backendType: 'udp' });
      assert.ok(l);
      assert.equal((await reg.listLeases()).leases.length, 1);
    } finally {
      reg.close();
    }
  });

  test('without a client certificate the request fails with FLANNEL_ERR_ETCD', async () => {
    const reg = new EtcdRegistry({ endpoints: [url], tls: { ca: f('ca.crt') }, requestTimeoutMs: 2000 });
    try {
      await assert.rejects(reg.getConfig(), (e: Error & { code?: string }) => e.code === 'FLANNEL_ERR_ETCD');
    } finally {
      reg.close();
    }
  });

  test('unusable TLS options are refused up front', async () => {
    const opt = (tls: { key?: string; cert?: string; ca?: string }) => () => new EtcdRegistry({ endpoints: [url], tls });
    const isOptions = (re: RegExp) => (e: Error & { code?: string }) => e.code === 'FLANNEL_ERR_ETCD_OPTIONS' && re.test(e.message);
    assert.throws(opt({ key: f('client.key') }), isOptions(/needs both --etcd-keyfile and --etcd-certfile/));
    assert.throws(opt({ ca: f('missing.crt') }), isOptions(/cannot read --etcd-cafile .*missing\.crt/));
    assert.throws(opt({ ca: f('client.key') }), isOptions(/--etcd-cafile .* is not a PEM certificate/));
    assert.throws(opt({ cert: f('client.crt'), key: f('client.crt') }), isOptions(/--etcd-keyfile .* is not a PEM private key/));
    assert.throws(() => new EtcdRegistry({ endpoints: [] }), isOptions(/--etcd-endpoints/));
    assert.throws(() => new EtcdRegistry({ endpoints: ['unix:///run/etcd.sock'] }), isOptions(/http:\/\/ or https:\/\//));
  });
});

describe('SubnetManager', { skip }, () => {
  test('waitForConfig waits, logs the bad field once, writes nothing, then returns', async () => {
    const prefix = newPrefix();
    const reg = registry(prefix);
    const { m, lines } = manager(reg, { publicIp: ip('198.18.0.1') });
    const start = await raw.get('x').exec();
    const p = m.waitForConfig();
    await waitFor('missing-config log', () => lines.some((l) => /Couldn't fetch network config: flannel config not found/.test(l.msg)));
    await raw.put(`${prefix}/config`).value('{"Network":"198.19.0.0/16","SubnetLen":"24"}').exec();
    await waitFor('bad-config log', () => lines.find((l) => l.level === 'error' && /SubnetLen/.test(l.msg)));
    await waitFor('several more retries', () => lines.filter((l) => l.level === 'debug' && /SubnetLen/.test(l.msg)).length >= 3); // repeats go to debug
    const bad = lines.filter((l) => l.level === 'error' && /SubnetLen/.test(l.msg));
    assert.equal(bad.length, 1, 'each distinct failure is logged once');
    assert.equal(bad[0].fields?.field, 'SubnetLen');
    assert.equal(bad[0].fields?.code, 'FLANNEL_ERR_CONFIG');
    await raw.put(`${prefix}/config`).value('{"Network":"198.19.0.0/16","Backend":{"Type":"udp","Port":8285},"Extra":1}').exec();
    const cfg = await p;
    assert.equal(cfg.network.toString(), '198.19.0.0/16');
    assert.equal(cfg.subnetLen, 24);
    assert.ok(lines.some((l) => l.level === 'warn' && /unknown key "Extra"/.test(l.msg)));
    // Only our two config puts happened: nothing under subnets/.
    const now = await raw.get('x').exec();
    assert.equal(Number(now.header.revision) - Number(start.header.revision), 2);
    assert.deepEqual(await raw.getAll().prefix(`${prefix}/subnets/`).keys(), []);
  });

  test('waitForConfig honours its abort signal', async () => {
    const reg = registry(newPrefix());
    const { m } = manager(reg, { publicIp: ip('198.18.0.1') });
    const ac = new AbortController();
    const p = m.waitForConfig(ac.signal);
    setTimeout(() => ac.abort(new Error('stop')), 100);
    await assert.rejects(p, /stop/);
  });

  test('acquire creates a lease; a restarted node takes back the lease carrying its PublicIP', async () => {
    const prefix = newPrefix();
    const reg = registry(prefix);
    const cfg = config(NET16);
    const { m: m1 } = manager(reg, { publicIp: ip('198.18.0.1') });
    const l1 = (await m1.acquireLease(cfg)) as RegistryLease;
    assert.ok(cfg.network.containsNet(l1.subnet) && l1.subnet.prefixLen === 24);
    const key = `${prefix}/subnets/${formatIp4(l1.subnet.ip)}-24`;
    const before = await rawValue(key);
    assert.equal(before?.value, '{"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"udp"}');
    await m1.close();

    // "restart": a new manager, no subnet file
    const { m: m2, lines } = manager(reg, { publicIp: ip('198.18.0.1') });
    const l2 = await m2.acquireLease(cfg);
    assert.ok(l2.subnet.equals(l1.subnet), `${l2.subnet} != ${l1.subnet}`);
    assert.ok(lines.some((l) => /Found lease 198\.19\.\d+\.0\/24 for current IP \(198\.18\.0\.1\), reusing/.test(l.msg)));
    const afterRestart = await rawValue(key);
    assert.notEqual(afterRestart?.lease, before?.lease, 're-put on a fresh etcd lease, as flannel does');
    assert.equal(afterRestart?.value, before?.value);
    assert.equal((await raw.getAll().prefix(`${prefix}/subnets/`).keys()).length, 1);
  });

  test('a reservation for our PublicIP is used as it is', async () => {
    const prefix = newPrefix();
    const reg = registry(prefix);
    const value = '{"PublicIP":"198.18.0.5","PublicIPv6":null}';
    await raw.put(`${prefix}/subnets/198.19.42.0-24`).value(value).exec();
    const { m } = manager(reg, { publicIp: ip('198.18.0.5'), previousSubnet: Ip4Net.parse('198.19.9.0/24') });
    const l = await m.acquireLease(config(NET16));
    assert.equal(l.subnet.toString(), '198.19.42.0/24');
    assert.equal(l.expiration, undefined);
    const stored = await rawValue(`${prefix}/subnets/198.19.42.0-24`);
    assert.deepEqual(stored, { value, lease: '0' }, 'not attached to an etcd lease, not rewritten');
    assert.equal((await raw.getAll().prefix(`${prefix}/subnets/`).keys()).length, 1);
  });

  test('reservations of other nodes are never handed out', async () => {
    const prefix = newPrefix();
    const reg = registry(prefix);
    // Network /28: subnets .4, .8, .12 (/30); two reserved by others, one free
    await raw.put(`${prefix}/subnets/198.19.0.4-30`).value('{"PublicIP":"198.18.0.7","PublicIPv6":null}').exec();
    await otherNode(prefix, '198.19.0.12/30', '198.18.0.8');
    const { m } = manager(reg, { publicIp: ip('198.18.0.6'), previousSubnet: Ip4Net.parse('198.19.0.4/30') });
    const l = await m.acquireLease(config('{"Network":"198.19.0.0/28"}'));
    assert.equal(l.subnet.toString(), '198.19.0.8/30');
  });

  test('the previous subnet is reused only if nobody holds it', async () => {
    const prefix = newPrefix();
    const reg = registry(prefix);
    const cfg = config(NET16);
    const { m: a, lines } = manager(reg, { publicIp: ip('198.18.0.21'), previousSubnet: Ip4Net.parse('198.19.77.0/24') });
    assert.equal((await a.acquireLease(cfg)).subnet.toString(), '198.19.77.0/24');
    assert.ok(lines.some((l) => /Found previously leased subnet \(198\.19\.77\.0\/24\), reusing/.test(l.msg)));

    // Another host whose subnet file names the same subnet (it was offline past its TTL).
    const { m: b, lines: bl } = manager(reg, { publicIp: ip('198.18.0.22'), previousSubnet: Ip4Net.parse('198.19.77.0/24') });
    const lb = await b.acquireLease(cfg);
    assert.notEqual(lb.subnet.toString(), '198.19.77.0/24');
    assert.ok(bl.some((l) => /Previous subnet 198\.19\.77\.0\/24 is now held by 198\.18\.0\.21/.test(l.msg)));

    // A previous subnet that does not fit the config is ignored.
    const { m: c, lines: cl } = manager(reg, { publicIp: ip('198.18.0.23'), previousSubnet: Ip4Net.parse('10.9.0.0/24') });
    const lc = await c.acquireLease(cfg);
    assert.ok(cfg.network.containsNet(lc.subnet));
    assert.ok(cl.some((l) => l.level === 'error' && /not compatible/.test(l.msg)));
  });

  test('a lease carrying our IP that no longer fits the config is deleted and replaced', async () => {
    const prefix = newPrefix();
    const reg = registry(prefix);
    await otherNode(prefix, '198.19.5.0/25', '198.18.0.31'); // from an old SubnetLen 25 config
    const { m } = manager(reg, { publicIp: ip('198.18.0.31') });
    const l = await m.acquireLease(config(NET16));
    assert.equal(l.subnet.prefixLen, 24);
    assert.equal(await rawValue(`${prefix}/subnets/198.19.5.0-25`), undefined);
    assert.deepEqual(await raw.getAll().prefix(`${prefix}/subnets/`).keys(), [`${prefix}/subnets/${formatIp4(l.subnet.ip)}-24`]);
  });

  test('subnet exhaustion is FLANNEL_ERR_SUBNET_EXHAUSTED', async () => {
    const prefix = newPrefix();
    const reg = registry(prefix);
    for (const [i, s] of ['198.19.0.4/30', '198.19.0.8/30', '198.19.0.12/30'].entries()) await otherNode(prefix, s, `198.18.1.${i + 1}`);
    const { m } = manager(reg, { publicIp: ip('198.18.0.41') });
    await assert.rejects(m.acquireLease(config('{"Network":"198.19.0.0/28"}')), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'FLANNEL_ERR_SUBNET_EXHAUSTED');
      assert.match(e.message, /all 3 \/30 subnets/);
      return true;
    });
  });

  test('watch events reach the LeaseTable', async () => {
    const prefix = newPrefix();
    const reg = registry(prefix);
    await otherNode(prefix, '198.19.1.0/24', '198.18.0.51');
    const { m } = manager(reg, { publicIp: ip('198.18.0.50') });
    const own = await m.acquireLease(config(NET16));
    const table = new LeaseTable(8285);
    const diffs: LeaseDiff[] = [];
    m.on('change', (d) => diffs.push(d));
    m.startWatch(table);
    await waitFor('initial list', () => table.size === 1);
    assert.ok(table.localSubnet?.equals(own.subnet));
    assert.equal(formatIp4(table.lookup(ip('198.19.1.9'))!.publicIp), '198.18.0.51');
    assert.equal(table.lookup(own.subnet.ip + 5), undefined, 'own subnet is not a peer');
    assert.ok(m.etcdUp);

    await otherNode(prefix, '198.19.2.0/24', '198.18.0.52');
    await waitFor('put event', () => table.lookup(ip('198.19.2.1')));
    await otherNode(prefix, '198.19.2.0/24', '198.18.0.53'); // peer moved
    await waitFor('changed event', () => table.lookup(ip('198.19.2.1'))?.publicIp === ip('198.18.0.53'));
    await raw.delete().key(`${prefix}/subnets/198.19.1.0-24`).exec();
    await waitFor('delete event', () => table.lookup(ip('198.19.1.9')) === undefined);
    assert.ok(diffs.some((d) => d.added.some((p) => p.subnet.toString() === '198.19.2.0/24')));
    assert.ok(diffs.some((d) => d.changed.some((p) => p.publicIp === ip('198.18.0.53'))));
    assert.ok(diffs.some((d) => d.removed.some((p) => p.subnet.toString() === '198.19.1.0/24')));
    assert.ok(diffs.every((d) => d.added.length + d.removed.length + d.changed.length > 0));
  });

  test('our key deleted under a running manager is re-created (same subnet)', async () => {
    const prefix = newPrefix();
    const reg = registry(prefix);
    const { m, lines } = manager(reg, { publicIp: ip('198.18.0.60') });
    const own = await m.acquireLease(config(NET16));
    m.startWatch(new LeaseTable(8285));
    const key = `${prefix}/subnets/${formatIp4(own.subnet.ip)}-24`;
    await waitFor('watch connected', () => lines.some((l) => /^Watching leases from revision/.test(l.msg)));
    const got = new Promise<Lease>((r) => m.once('lease', r));
    await raw.delete().key(key).exec();
    const l = await got;
    assert.ok(l.subnet.equals(own.subnet));
    assert.equal((await rawValue(key))?.value, '{"PublicIP":"198.18.0.60","PublicIPv6":null,"BackendType":"udp"}');
    assert.notEqual((await rawValue(key))?.lease, '0');
    assert.ok(lines.some((x) => /was deleted from etcd/.test(x.msg)));
  });

  test('an etcd lease revoked under a running manager: re-acquired; taken-over subnet moves us', async () => {
    const prefix = newPrefix();
    const reg = registry(prefix);
    const { m, lines } = manager(reg, { publicIp: ip('198.18.0.70') });
    const own = (await m.acquireLease(config(NET16))) as RegistryLease;
    const table = new LeaseTable(8285);
    m.startWatch(table);
    await waitFor('watch connected', () => lines.some((l) => /^Watching leases from revision/.test(l.msg)));

    // Revocation (what expiry looks like): back on the same subnet.
    let got = new Promise<Lease>((r) => m.once('lease', r));
    await raw.leaseClient.leaseRevoke({ ID: own.leaseId });
    const again = await got;
    assert.ok(again.subnet.equals(own.subnet));

    // Now an operator hands our subnet to another node: we move, and it becomes a peer.
    got = new Promise<Lease>((r) => m.once('lease', r));
    const key = `${prefix}/subnets/${formatIp4(own.subnet.ip)}-24`;
    await raw.put(key).value('{"PublicIP":"198.18.0.71","PublicIPv6":null}').exec();
    const moved = await got;
    assert.ok(!moved.subnet.equals(own.subnet));
    await waitFor('old subnet as a peer', () => table.lookup(own.subnet.ip + 1)?.publicIp === ip('198.18.0.71'));
    assert.ok(table.localSubnet?.equals(moved.subnet));
  });

  test('renewal re-puts the key on a fresh etcd lease before expiry, so the old lease ending does not take it', async () => {
    const prefix = newPrefix();
    const reg = registry(prefix);
    // flannel's 24 h lease and 60 min margin; the manager's clock is moved to the renewal time.
    const clock = new ManualClock();
    const { m, lines } = manager(reg, { publicIp: ip('198.18.0.80'), clock });
    const own = (await m.acquireLease(config(NET16))) as RegistryLease;
    const key = `${prefix}/subnets/${formatIp4(own.subnet.ip)}-24`;
    assert.ok(Math.abs(own.expiration! - (Date.now() + 24 * 3600_000)) < 60_000, 'a 24 h etcd lease');
    const due = own.expiration! - 60 * 60_000; // the default margin: 60 minutes before expiry
    clock.advance(due - clock.now() - 1000);
    assert.equal(clock.pending, 1, 'the renewal still waits a second before the margin');
    clock.advance(1000);
    await waitFor('renewed', () => lines.some((l) => /Lease renewed/.test(l.msg)));
    const stored = await rawValue(key);
    assert.ok(stored);
    assert.notEqual(stored.lease, own.leaseId, 'the key moved to a new etcd lease');
    // What expiry of the old lease does, now: the key must survive it.
    await raw.leaseClient.leaseRevoke({ ID: own.leaseId });
    assert.equal((await rawValue(key))?.lease, stored.lease, 'the key outlives its first lease');
    assert.equal((m.lease as RegistryLease).leaseId, stored.lease);
  });

  test('renew margin must fit in the TTL', () => {
    const reg = registry(newPrefix());
    assert.throws(
      () => new SubnetManager({ registry: reg, publicIp: 1, renewMarginMinutes: 1440 }),
      (e: Error & { code?: string }) => e.code === 'FLANNEL_ERR_OPTIONS' && /subnet-lease-renew-margin/.test(e.message),
    );
    assert.throws(() => new SubnetManager({ registry: reg, publicIp: 1, renewMarginMinutes: 0 }), /out of range/);
    assert.throws(() => new SubnetManager({ registry: reg, publicIp: 1, renewMarginMinutes: 0.5 }), /whole number of minutes/);
  });

  // Last: it takes etcd down.
  test('etcd outage: reported down then up, watch resyncs, routes kept meanwhile', async () => {
    const prefix = newPrefix();
    const reg = registry(prefix);
    await otherNode(prefix, '198.19.1.0/24', '198.18.0.91');
    const { m, lines } = manager(reg, { publicIp: ip('198.18.0.90') });
    await m.acquireLease(config(NET16));
    const table = new LeaseTable(8285);
    const states: boolean[] = [];
    m.on('etcd', (up) => states.push(up));
    m.startWatch(table);
    await waitFor('initial list', () => table.size === 1);

    await stopEtcd();
    await waitFor('etcd reported down', () => states.includes(false), 15_000);
    assert.equal(m.etcdUp, false);
    assert.equal(table.size, 1, 'peers stay while etcd is away');

    await startEtcd();
    await waitFor('etcd reported up again', () => m.etcdUp, 20_000);
    await otherNode(prefix, '198.19.2.0/24', '198.18.0.92');
    await waitFor('event after the outage', () => table.lookup(ip('198.19.2.1')), 15_000);
    assert.equal(table.size, 2);
    assert.deepEqual(states.slice(-2), [false, true]);
    // One live watcher on the server: the dropped one was not resumed beside the new one.
    const metrics = await (await fetch(`${endpoint}/metrics`)).text();
    assert.match(metrics, /^etcd_debugging_mvcc_watcher_total 1$/m);
    assert.ok(lines.some((l) => /Lease watch ended|Couldn't list subnet leases/.test(l.msg)));
  });
});
