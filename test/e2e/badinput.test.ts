// Bad input from an operator: network configs in etcd that flannel refuses,
// and flags or environment that cannot work. A bad config is one log line
// naming the field, no write to etcd, and the daemon comes up by itself once
// the config is fixed. A bad flag is exit 1 before anything on the host
// changes: no flannel0, no lease, no subnet.env, no socket, no iptables chain.

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Lab, REPO_ROOT } from '../../src/lab/lab';
import type { Etcd } from '../../src/lab/etcd';
import { Host } from '../../src/lab/host';
import { sleep, waitFor } from '../../src/lab/sh';
import { NETWORK, dumpLogs, failureAware, leaseKeys, startLab, uniquePrefix, writeConfig } from '../lib/helpers';

/** Config documents flannel refuses, and the field the one log line must name. */
const BAD_CONFIGS: { name: string; config: string; field: string; says: RegExp }[] = [
  { name: 'malformed JSON', config: '{"Network": "198.19.0.0/16", "Backend": {"Type": "udp"}', field: '', says: /not valid JSON/ },
  { name: 'not an object', config: '["198.19.0.0/16"]', field: '', says: /must be a JSON object/ },
  { name: 'Network of the wrong type', config: '{"Network": 19819, "Backend": {"Type": "udp"}}', field: 'Network', says: /Network must be a string/ },
  { name: 'SubnetLen of the wrong type', config: '{"Network": "198.19.0.0/16", "SubnetLen": "24"}', field: 'SubnetLen', says: /SubnetLen must be a whole number/ },
  { name: 'Network missing', config: '{"Backend": {"Type": "udp"}}', field: 'Network', says: /Network is missing/ },
  { name: 'Network too small', config: '{"Network": "198.19.0.0/29"}', field: 'Network', says: /Network 198\.19\.0\.0\/29 is too small/ },
  { name: 'SubnetLen too long', config: '{"Network": "198.19.0.0/16", "SubnetLen": 31}', field: 'SubnetLen', says: /SubnetLen 31 is too long/ },
  { name: 'SubnetLen too short', config: '{"Network": "198.19.0.0/16", "SubnetLen": 17}', field: 'SubnetLen', says: /SubnetLen 17 is too short/ },
  { name: 'SubnetMin misaligned', config: '{"Network": "198.19.0.0/16", "SubnetMin": "198.19.1.5"}', field: 'SubnetMin', says: /SubnetMin 198\.19\.1\.5 is not on a SubnetLen/ },
  { name: 'SubnetMax outside the Network', config: '{"Network": "198.19.0.0/16", "SubnetMax": "198.20.0.0"}', field: 'SubnetMax', says: /SubnetMax 198\.20\.0\.0 is not in Network/ },
  { name: 'unknown backend', config: '{"Network": "198.19.0.0/16", "Backend": {"Type": "carrier-pigeon"}}', field: 'Backend.Type', says: /Backend\.Type "carrier-pigeon"/ },
  { name: 'Backend.Port out of range', config: '{"Network": "198.19.0.0/16", "Backend": {"Type": "udp", "Port": 70000}}', field: 'Backend.Port', says: /Backend\.Port/ },
];

interface LogLine {
  level: string;
  msg: string;
  field?: string;
  code?: string;
}

describe('bad input', () => {
  let lab: Lab;
  let etcd: Etcd;
  const hosts: Host[] = [];
  const suite = failureAware();
  const check = suite.check;

  before(async () => {
    ({ lab, etcd } = await startLab());
  });
  after(async () => {
    if (suite.failed) dumpLogs(hosts, etcd);
    await lab?.destroy();
  });

  check('each bad network config: one line naming the field, nothing written to etcd, up as soon as it is fixed', async () => {
    const cases = BAD_CONFIGS.map((c, i) => {
      const prefix = uniquePrefix(`badcfg${i}`);
      writeConfig(etcd, prefix, c.config);
      const h = new Host(lab, `c${i}`, `198.18.2.${i + 1}`);
      hosts.push(h);
      return { ...c, prefix, h };
    });
    const revision = etcd.revision();
    for (const c of cases) c.h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${c.prefix}`]);
    const errors = (c: (typeof cases)[number]): LogLine[] =>
      c.h
        .daemon!.log()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as LogLine)
        .filter((l) => l.level === 'error' || l.level === 'fatal');
    await waitFor('every daemon to log its config error', () => cases.every((c) => errors(c).length > 0), 30_000, 200);
    await sleep(2500); // two or three more retries each
    for (const c of cases) {
      const e = errors(c);
      assert.equal(e.length, 1, `${c.name}: exactly one error line, got\n${e.map((x) => x.msg).join('\n')}`);
      assert.match(e[0].msg, /^Couldn't fetch network config: /, c.name);
      assert.match(e[0].msg, c.says, c.name);
      assert.equal(e[0].field, c.field, `${c.name}: the line's field`);
      if (c.field) assert.ok(e[0].msg.includes(c.field), `${c.name}: the message names ${c.field}`);
      assert.equal(e[0].code, 'FLANNEL_ERR_CONFIG');
      assert.ok(c.h.daemon!.running, `${c.name}: still waiting, not exited`);
      assert.notEqual(c.h.tryExec(['ip', 'link', 'show', 'flannel0']).status, 0, `${c.name}: no flannel0`);
      assert.ok(!fs.existsSync(c.h.subnetFile), `${c.name}: no subnet.env`);
    }
    assert.equal(etcd.revision(), revision, 'not one write to etcd while the configs were bad');
    // Fixed: each comes up within a couple of retries.
    const t0 = Date.now();
    for (const c of cases) writeConfig(etcd, c.prefix, { Network: NETWORK, Backend: { Type: 'udp' } });
    await Promise.all(cases.map((c) => c.h.waitReady(15_000)));
    const upMs = Date.now() - t0;
    console.log(`${cases.length} bad configs: all up ${upMs} ms after the fix`);
    for (const c of cases) assert.equal(leaseKeys(etcd, c.prefix).length, 1, `${c.name}: one lease once fixed`);
    assert.ok(upMs < 10_000, `up within seconds of the fix (${upMs} ms)`);
  });

  check('bad flags and environment: exit 1 with a clear message, nothing changed on the host', async () => {
    const prefix = uniquePrefix('badflags');
    writeConfig(etcd, prefix);
    const h = new Host(lab, 'f1', '198.18.2.100');
    hosts.push(h);
    const notPem = path.join(h.dir, 'not-a-cert.pem');
    fs.writeFileSync(notPem, 'this is not a certificate\n');
    const aFile = path.join(h.dir, 'plain-file');
    fs.writeFileSync(aFile, 'not a socket\n');
    const base = [`--etcd-endpoints=${etcd.endpoint}`, `--etcd-prefix=${prefix}`, '--iface=eth0', `--subnet-file=${h.subnetFile}`, `--admin-socket=${h.adminSocket}`];
    const cases: { name: string; args: string[]; env?: Record<string, string>; says: RegExp }[] = [
      { name: 'unknown flag', args: ['--no-such-flag'], says: /flag provided but not defined: -no-such-flag/ },
      { name: 'misspelt flag', args: ['--etcd-endpoint=http://198.18.0.250:2379'], says: /flag provided but not defined: -etcd-endpoint; did you mean --etcd-endpoints\?/ },
      { name: 'bad endpoint URL', args: ['--etcd-endpoints=198.18.0.250:2379:x'], says: /invalid value .* for flag --etcd-endpoints/ },
      { name: 'bad endpoint scheme', args: ['--etcd-endpoints=ftp://198.18.0.250:2379'], says: /--etcd-endpoints/ },
      { name: 'bad endpoint in the environment', args: [], env: { FLANNELD_ETCD_ENDPOINTS: 'not a url' }, says: /FLANNELD_ETCD_ENDPOINTS/ },
      { name: 'missing CA file', args: ['--etcd-cafile=/nonexistent/ca.pem'], says: /--etcd-cafile.*\/nonexistent\/ca\.pem.*does not exist/ },
      { name: 'missing key file from the environment', args: [], env: { FLANNELD_ETCD_KEYFILE: '/nonexistent/key.pem', FLANNELD_ETCD_CERTFILE: notPem }, says: /FLANNELD_ETCD_KEYFILE/ },
      { name: 'certificate without its key', args: [`--etcd-certfile=${notPem}`], says: /etcd-keyfile/ },
      { name: 'CA file that is not PEM', args: [`--etcd-cafile=${notPem}`], says: /--etcd-cafile .*not-a-cert\.pem is not a PEM certificate/ },
      { name: 'no such interface', args: ['--iface=nosuch0'], says: /nosuch0/ },
      { name: 'renew margin out of range', args: ['--subnet-lease-renew-margin=1440'], says: /subnet-lease-renew-margin/ },
      { name: 'admin socket path taken by a file', args: [`--admin-socket=${aFile}`], says: /--admin-socket .*plain-file exists and is not a socket/ },
    ];
    // Each case its own admin socket: they run at once, and a case that gets
    // past flag parsing listens on it (a live socket refuses the next daemon).
    const socketOf = (i: number) => `${h.adminSocket}.${i}`;
    const runOne = (c: (typeof cases)[number], i: number) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, ...c.env };
        // A flag the case gives (on the command line or in the environment,
        // where the command line would win) replaces the base one: --iface
        // accumulates, the others would just be overridden.
        const given = [...Object.keys(c.env ?? {}).map((k) => `--${k.slice('FLANNELD_'.length).toLowerCase().replace(/_/g, '-')}=`), ...c.args.map((a) => a.replace(/=.*/, '='))];
        const args = base.filter((a) => !given.some((f) => a.startsWith(f))).map((a) => (a === `--admin-socket=${h.adminSocket}` ? `--admin-socket=${socketOf(i)}` : a));
        const p = spawn('ip', ['netns', 'exec', h.ns, process.execPath, path.join(REPO_ROOT, 'bin/flanneld'), ...args, ...c.args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        p.stdout.on('data', (d) => (out += d));
        p.stderr.on('data', (d) => (out += d));
        const timer = setTimeout(() => p.kill('SIGKILL'), 15_000);
        p.on('exit', (code) => {
          clearTimeout(timer);
          resolve({ code, out });
        });
      });
    const results = await Promise.all(cases.map(runOne));
    for (const [i, c] of cases.entries()) {
      const r = results[i];
      assert.equal(r.code, 1, `${c.name}: exit 1\n${r.out}`);
      assert.match(r.out, c.says, `${c.name}: the message\n${r.out}`);
      assert.ok(r.out.trim().split('\n').length <= 3, `${c.name}: a short message, not a stack trace\n${r.out}`);
    }
    // Nothing happened on the host or in etcd.
    assert.notEqual(h.tryExec(['ip', 'link', 'show', 'flannel0']).status, 0, 'no flannel0');
    assert.deepEqual(leaseKeys(etcd, prefix), [], 'no lease');
    assert.ok(!fs.existsSync(h.subnetFile), 'no subnet.env');
    assert.ok(
      cases.every((_, i) => !fs.existsSync(socketOf(i))),
      'no admin socket',
    );
    assert.equal(h.tryExec(['iptables', '-w', '-S', 'FLANNEL-FWD']).status === 0, false, 'no iptables chain');
    // The same host with good flags comes up: the failures were the flags.
    h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`]);
    await h.waitReady();
    assert.equal(leaseKeys(etcd, prefix).length, 1);
  });

  check('etcd keys that do not fit the network config: ignored with one warning each; unleased subnets still get net-unreachable', async () => {
    const prefix = uniquePrefix('badleases');
    writeConfig(etcd, prefix);
    const value = (ip: string) => JSON.stringify({ PublicIP: ip, PublicIPv6: null, BackendType: 'udp' });
    const bad: Record<string, string> = {
      '10.0.0.0-24': 'outside the Network',
      '198.19.156.0-25': 'is a /25, but SubnetLen is 24',
      '198.19.0.0-16': 'is a /16, but SubnetLen is 24',
      '198.19.153.0-24': 'loopback',
    };
    for (const k of Object.keys(bad)) etcd.put(`${prefix}/subnets/${k}`, value(k === '198.19.153.0-24' ? '127.0.0.1' : '198.18.0.99'));
    const h = new Host(lab, 'bl1', '198.18.0.81');
    hosts.push(h);
    h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`]);
    const pod = await h.waitReadyWithPod();
    await h.daemon!.waitForLog(/flanneld is ready/);
    await sleep(300); // the first list has been applied
    const log = h.daemon!.log();
    for (const [k, why] of Object.entries(bad)) {
      const lines = log.split('\n').filter((l) => l.includes(`ignoring subnet lease ${prefix}/subnets/${k}:`));
      assert.equal(lines.length, 1, `${k}: one warning\n${log.slice(-3000)}`);
      assert.ok(lines[0].includes(why) && lines[0].includes('FLANNEL_ERR_LEASE_INVALID'), lines[0]);
    }
    const leases = JSON.parse(h.exec([process.execPath, path.join(REPO_ROOT, 'bin/flannel-ts'), 'trace', `--admin-socket=${h.adminSocket}`, '--leases'])) as { peers: { subnet: string }[] };
    assert.deepEqual(leases.peers, [], 'none of them is a peer');
    // 198.19.160.5 would have matched the /16, 198.19.156.5 the /25: both are unleased.
    for (const dst of ['198.19.160.5', '198.19.156.5', '198.19.153.5']) {
      const r = pod.ping(dst, 1, 0.2, 1);
      assert.match(r.output, /Destination Net Unreachable/, `${dst}: ${r.output}`);
    }
    await h.daemon!.stop('SIGTERM');
  });

  check('admin socket: default <subnet-file>.sock, a live one is a warning (default) or exit 1 naming it (given), a stale one is replaced', async () => {
    const prefix = uniquePrefix('adminsock');
    writeConfig(etcd, prefix);
    const h = new Host(lab, 'as1', '198.18.0.82');
    hosts.push(h);
    const flanneld = (extra: string[]) => [process.execPath, path.join(REPO_ROOT, 'bin/flanneld'), `--etcd-endpoints=${etcd.endpoint}`, `--etcd-prefix=${prefix}`, '--iface=eth0', ...extra];
    // A daemon with the default admin socket: beside its subnet file, 0600 from the start.
    const subnetA = path.join(h.dir, 'subnet-a.env');
    const logA = path.join(h.dir, 'a.log');
    lab.spawnIn(h.ns, flanneld([`--subnet-file=${subnetA}`]), logA);
    await waitFor('daemon a ready', () => fs.existsSync(logA) && fs.readFileSync(logA, 'utf8').includes('flanneld is ready'), 15_000);
    const sockA = `${subnetA}.sock`;
    assert.ok(fs.statSync(sockA).isSocket());
    assert.equal(fs.statSync(sockA).mode & 0o777, 0o600);
    // `flannel-ts trace` finds it from the subnet file alone.
    const viaSubnetFile = JSON.parse(h.exec([process.execPath, path.join(REPO_ROOT, 'bin/flannel-ts'), 'trace', `--subnet-file=${subnetA}`, '--leases'])) as { local: string };
    assert.match(viaSubnetFile.local, /^198\.19\./);
    // Given explicitly while live: exit 1 naming the socket, nothing taken over.
    const given = h.tryExec([...flanneld([`--subnet-file=${path.join(h.dir, 'subnet-b.env')}`, `--admin-socket=${sockA}`, '--healthz-port=0'])], 20_000);
    assert.equal(given.status, 1, given.stderr);
    assert.match(given.stderr, new RegExp(`FLANNEL_ERR_ADMIN_SOCKET|admin socket ${sockA.replace(/[.]/g, '\\.')} is in use by another running flanneld`));
    assert.ok(fs.statSync(sockA).isSocket(), 'the live socket is untouched');
    assert.ok(!fs.existsSync(path.join(h.dir, 'subnet-b.env')), 'and the refused daemon changed nothing');
    // A stale socket file (its daemon was killed): removed and replaced. (Another
    // host namespace: each flanneld needs its own flannel0; the filesystem is shared.)
    const h2 = new Host(lab, 'as2', '198.18.0.83');
    hosts.push(h2);
    const logC = path.join(h.dir, 'c.log');
    const subnetC = path.join(h.dir, 'subnet-c.env');
    h.exec([process.execPath, '-e', `require('net').createServer().listen(${JSON.stringify(`${subnetC}.sock`)},()=>process.exit(0))`]);
    assert.ok(fs.statSync(`${subnetC}.sock`).isSocket(), 'a socket file nobody listens on');
    lab.spawnIn(h2.ns, flanneld([`--subnet-file=${subnetC}`, `--admin-socket=${subnetC}.sock`]), logC);
    await waitFor('daemon c ready', () => fs.existsSync(logC) && fs.readFileSync(logC, 'utf8').includes('flanneld is ready'), 15_000);
    // The default socket live (a second daemon given the same subnet file): a warning, no tracing, running.
    const h3 = new Host(lab, 'as3', '198.18.0.84');
    hosts.push(h3);
    const logD = path.join(h.dir, 'd.log');
    lab.spawnIn(h3.ns, flanneld([`--subnet-file=${subnetA}`]), logD);
    await waitFor('daemon d ready', () => fs.existsSync(logD) && fs.readFileSync(logD, 'utf8').includes('flanneld is ready'), 15_000);
    assert.match(fs.readFileSync(logD, 'utf8'), /the admin socket .*subnet-a\.env\.sock is in use by another running flanneld: running without the admin socket/);
    assert.match(h.exec([process.execPath, path.join(REPO_ROOT, 'bin/flannel-ts'), 'trace', `--subnet-file=${subnetA}`, '--leases']), /"local":"198\.19\./, 'daemon a still answers on its socket');
    assert.match(fs.readFileSync(logC, 'utf8'), /Admin socket \(flannel-ts trace\) on /);
  });
});
