// Security: etcd over mutual TLS and with username/password, and the local
// endpoints (admin socket, health/metrics) bound where the flags say.
//
// What a user sees when etcd refuses the daemon (wrong CA, no or a foreign
// client certificate, wrong password, no permission): flanneld does NOT exit.
// It logs one error line saying what etcd refused and which flag to check,
// keeps retrying every second (as flannel does: certificates and users are
// often fixed on the etcd side while nodes wait), answers /readyz with 503
// and the reason, and touches nothing on the host until etcd lets it in.

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab } from '../../src/lab/lab';
import { Etcd, type EtcdPki, makeEtcdPki } from '../../src/lab/etcd';
import { Host, type Pod } from '../../src/lab/host';
import { run, sleep, tryRun, waitFor } from '../../src/lab/sh';
import { NETWORK, failureAware, leaseKeys, uniquePrefix } from '../lib/helpers';

const HEALTHZ = 9141;

/** HTTP GET from inside `ns`: "status body" or "error <code>". */
function httpGet(ns: string, url: string): string {
  const r = tryRun(
    [
      'ip',
      'netns',
      'exec',
      ns,
      process.execPath,
      '-e',
      `fetch(${JSON.stringify(url)}).then(async r=>console.log(r.status+' '+(await r.text()).slice(0,80)),e=>console.log('error '+(e.cause?.code??e.message)))`,
    ],
    { timeoutMs: 10_000 },
  );
  return r.stdout.trim();
}

interface LogLine {
  level: string;
  msg: string;
}
const errorLines = (h: Host): LogLine[] =>
  h
    .daemon!.log()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine)
    .filter((l) => l.level === 'error');

describe('security', () => {
  let lab: Lab;
  let tls: Etcd;
  let auth: Etcd;
  let pki: EtcdPki;
  const hosts: Host[] = [];
  const suite = failureAware();
  const check = suite.check;
  const prefix = uniquePrefix('secure');
  let ip = 10;
  const newHost = () => {
    const h = new Host(lab, `t${ip}`, `198.18.3.${ip++}`);
    hosts.push(h);
    return h;
  };
  /** Waits until each daemon has logged an error, then checks they stay not ready and change nothing while retrying; their messages. */
  const refused = async (hs: Host[], etcd: Etcd): Promise<string[]> => {
    await waitFor('each daemon to log why etcd refused it', () => hs.every((h) => errorLines(h).length > 0), 20_000, 200);
    await sleep(2500); // a few retries
    return hs.map((h) => checkRefused(h, etcd));
  };
  const checkRefused = (h: Host, etcd: Etcd): string => {
    const errors = errorLines(h);
    assert.ok(h.daemon!.running, 'flanneld keeps retrying, it does not exit');
    assert.equal(errors.length, 1, `one error line while it retries, got:\n${errors.map((e) => e.msg).join('\n')}`);
    assert.match(httpGet(h.ns, `http://127.0.0.1:${HEALTHZ}/readyz`), /^503 flanneld is not ready yet: waiting for the network config/);
    assert.notEqual(h.tryExec(['ip', 'link', 'show', 'flannel0']).status, 0, 'no flannel0');
    assert.ok(!fs.existsSync(h.subnetFile), 'no subnet.env');
    assert.equal(leaseKeys(etcd, prefix).filter((k) => etcd.get(`${prefix}/subnets/${k}`)?.includes(h.ip)).length, 0, 'no lease');
    return errors[0].msg;
  };

  before(async () => {
    lab = new Lab();
    pki = makeEtcdPki(path.join(lab.dir, 'pki'), ['198.18.0.250']);
    tls = new Etcd(lab, { tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca }, ctlCert: { cert: pki.clientCert, key: pki.clientKey } });
    auth = new Etcd(lab, { name: 'etcd-auth', ip: '198.18.0.249' });
    await Promise.all([tls.start(), auth.start()]);
    tls.put(`${prefix}/config`, JSON.stringify({ Network: NETWORK, Backend: { Type: 'udp' } }));
    auth.put(`${prefix}/config`, JSON.stringify({ Network: NETWORK, Backend: { Type: 'udp' } }));
    auth.enableAuth('root-secret', { name: 'flannel', password: 'flannel-secret', prefix: `${prefix}/` });
  });
  after(async () => {
    if (suite.failed) for (const h of hosts) console.error(`--- ${h.name}\n${h.daemon?.log().slice(-2500)}`);
    await lab?.destroy();
  });

  check('etcd over mutual TLS: the right CA and client certificate work, traffic flows', async () => {
    const flags = (_h: Host, healthzIp: string) => [
      `--etcd-prefix=${prefix}`,
      `--etcd-cafile=${pki.ca}`,
      `--etcd-certfile=${pki.clientCert}`,
      `--etcd-keyfile=${pki.clientKey}`,
      `--healthz-ip=${healthzIp}`,
      `--healthz-port=${HEALTHZ}`,
    ];
    const a = newHost();
    const b = newHost();
    a.startFlanneld(tls.endpoint, flags(a, '127.0.0.1'));
    b.startFlanneld(tls.endpoint, flags(b, b.ip));
    const pods: Pod[] = [];
    for (const h of [a, b]) pods.push(await h.waitReadyWithPod());
    assert.equal(pods[0].ping(pods[1].ip, 2, 0.1).received, 2);
    assert.equal(leaseKeys(tls, prefix).length, 2);
  });

  check('the metrics endpoint listens only where --healthz-ip/--healthz-port say', () => {
    const [a, b] = hosts;
    // a: 127.0.0.1 only: answers inside its namespace, not on its underlay address, not from another host.
    assert.match(httpGet(a.ns, `http://127.0.0.1:${HEALTHZ}/metrics`), /^200 /);
    assert.match(httpGet(a.ns, `http://${a.ip}:${HEALTHZ}/readyz`), /^error ECONNREFUSED/);
    assert.match(httpGet(b.ns, `http://${a.ip}:${HEALTHZ}/readyz`), /^error ECONNREFUSED/);
    // b: its underlay address: reachable from a, not on its loopback.
    assert.match(httpGet(a.ns, `http://${b.ip}:${HEALTHZ}/readyz`), /^200 flanneld is ready/);
    assert.match(httpGet(b.ns, `http://127.0.0.1:${HEALTHZ}/readyz`), /^error ECONNREFUSED/);
    // Nothing else listens on TCP in a's namespace.
    const listening = a.exec(['ss', '-Htln']).trim().split('\n').filter(Boolean);
    assert.deepEqual(
      listening.map((l) => l.split(/\s+/)[3]),
      [`127.0.0.1:${HEALTHZ}`],
    );
  });

  check('the admin socket is where --admin-socket says, mode 0600, and refuses other users', async () => {
    const a = hosts[0];
    // The lab's directory is private (0700); open the path to it so that only the socket's own mode guards it.
    fs.chmodSync(lab.dir, 0o711);
    fs.chmodSync(a.dir, 0o711);
    const sock = a.adminSocket;
    const st = fs.statSync(sock);
    assert.ok(st.isSocket(), `${sock} is a socket`);
    assert.equal(st.mode & 0o777, 0o600, `mode ${(st.mode & 0o777).toString(8)}`);
    assert.equal(st.uid, 0, 'owned by root');
    const connect = `const s=require('net').connect(${JSON.stringify(sock)});s.on('connect',()=>s.write('{"cmd":"leases"}\\n'));s.on('data',d=>process.stdout.write(d));s.on('error',e=>{console.log('error '+e.code)})`;
    const asRoot = run([process.execPath, '-e', connect]);
    assert.match(asRoot, /"local":"198\.19\.\d+\.0\/24"/, 'root gets the lease table');
    const asNobody = tryRun(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', connect]);
    assert.match(asNobody.stdout, /^error EACCES/, `another user is refused: ${asNobody.stdout}${asNobody.stderr}`);
  });

  check('TLS refusals: wrong CA, no client certificate, a foreign client certificate', async () => {
    const cases = [
      {
        name: 'wrong CA',
        flags: [`--etcd-cafile=${pki.otherCa}`, `--etcd-certfile=${pki.clientCert}`, `--etcd-keyfile=${pki.clientKey}`],
        says: /TLS: etcd's server certificate is not trusted \(unable to verify the first certificate\); --etcd-cafile \(.*other-ca\.crt\) must be the CA/,
      },
      { name: 'no client certificate', flags: [`--etcd-cafile=${pki.ca}`], says: /TLS: etcd refused this node's client certificate \(.*\); .*--etcd-certfile \(not given\)/ },
      {
        name: 'client certificate from another CA',
        flags: [`--etcd-cafile=${pki.ca}`, `--etcd-certfile=${pki.otherClientCert}`, `--etcd-keyfile=${pki.otherClientKey}`],
        says: /TLS: etcd refused this node's client certificate .*other-client\.crt/,
      },
      { name: 'plain http to a TLS etcd', flags: [], endpoint: tls.endpoint.replace('https', 'http'), says: /cannot reach etcd .*does not expect TLS/ },
    ];
    const started = cases.map((c) => {
      const h = newHost();
      h.startFlanneld(c.endpoint ?? tls.endpoint, [`--etcd-prefix=${prefix}`, '--healthz-ip=127.0.0.1', `--healthz-port=${HEALTHZ}`, ...c.flags]);
      return { ...c, h };
    });
    const msgs = await refused(
      started.map((c) => c.h),
      tls,
    );
    for (const [i, c] of started.entries()) {
      const msg = msgs[i];
      console.log(`${c.name}: ${msg}`);
      assert.match(msg, /^Couldn't fetch network config: etcd read of .*\/config failed: /, c.name);
      assert.match(msg, c.says, c.name);
    }
  });

  check('etcd with username/password: the right password works; a wrong one is refused until the user is fixed in etcd', async () => {
    const good = newHost();
    good.startFlanneld(auth.endpoint, [`--etcd-prefix=${prefix}`, '--etcd-username=flannel', '--etcd-password=flannel-secret']);
    await good.waitReady();
    assert.ok(auth.get(`${prefix}/subnets/${good.subnetEnv().subnet.replace(/\.1\/24$/, '.0-24')}`)?.includes(good.ip));
    const cases = [
      {
        name: 'wrong password',
        flags: ['--etcd-username=flannel', '--etcd-password=guess'],
        says: /etcd refused the credentials of user "flannel" \(etcdserver: authentication failed, invalid user ID or password\); check --etcd-username and --etcd-password/,
      },
      { name: 'no credentials', flags: [], says: /etcd requires authentication \(etcdserver: user name is empty\); give --etcd-username and --etcd-password/ },
    ];
    const started = cases.map((c) => {
      const h = newHost();
      h.startFlanneld(auth.endpoint, [`--etcd-prefix=${prefix}`, '--healthz-ip=127.0.0.1', `--healthz-port=${HEALTHZ}`, ...c.flags]);
      return { ...c, h };
    });
    const msgs = await refused(
      started.map((c) => c.h),
      auth,
    );
    for (const [i, c] of started.entries()) {
      const msg = msgs[i];
      console.log(`${c.name}: ${msg}`);
      assert.match(msg, c.says, c.name);
    }
    // The operator sets the password the node was given: it comes up by itself.
    run(auth.ctlArgv(['user', 'passwd', 'flannel', '--interactive=false']), { input: 'guess\n' });
    await started[0].h.waitReady(15_000);
    // A user with no permission on the prefix is told so.
    auth.ctl('user', 'add', 'other:other-secret');
    const h = newHost();
    h.startFlanneld(auth.endpoint, [`--etcd-prefix=${prefix}`, '--healthz-ip=127.0.0.1', `--healthz-port=${HEALTHZ}`, '--etcd-username=other', '--etcd-password=other-secret']);
    const [msg] = await refused([h], auth);
    console.log(`no permission: ${msg}`);
    assert.match(msg, /etcd user "other" may not use .*permission denied.*grant it read\/write on the prefix/);
  });
});
