// The flannel CNI plugin end to end: three hosts running flanneld, pods
// created through the real plugin chain (flannel → Debian's bridge and
// host-local, then portmap) as kubelet would, each host with its own
// subnetFile, plugin dataDir and host-local dataDir under the lab's temp dir.

import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Lab } from '../../src/lab/lab';
import type { Etcd } from '../../src/lab/etcd';
import { CNI_PATH, type CniPod, Host } from '../../src/lab/host';
import { CniInvokeError } from '../../src/cni/runtime';
import { marshalSorted } from '../../src/cni/conf';
import { tryRun, waitFor } from '../../src/lab/sh';
import { assertPodsPingAcrossHosts, dumpLogs, failureAware, scrape, startLab, uniquePrefix, writeConfig } from '../lib/helpers';

const HEALTHZ = 9102;

/** The node subnet as a network ("198.19.7.1/24" → "198.19.7.0/24"). */
const subnetOf = (h: Host) => h.subnetEnv().subnet.replace(/\.1\/24$/, '.0/24');
const inSubnet = (ip: string, h: Host) => ip.startsWith(h.subnetEnv().subnet.replace(/\.1\/24$/, '.'));

describe('CNI: pods networked by the flannel plugin', () => {
  let lab: Lab;
  let etcd: Etcd;
  const prefix = uniquePrefix('cni');
  const hosts: Host[] = [];
  const pods = new Map<string, CniPod[]>();
  const suite = failureAware();
  const check = suite.check;

  /** Runs the flannel plugin alone inside host `h` with `conf` on stdin; returns exit status and parsed stdout. */
  const invokeFlannel = (h: Host, command: string, conf: object, containerId = 'manual-1') => {
    const env = [`CNI_COMMAND=${command}`, `CNI_CONTAINERID=${containerId}`, `CNI_NETNS=/run/netns/${h.ns}-none`, 'CNI_IFNAME=eth0', `CNI_PATH=${CNI_PATH.join(':')}`];
    const r = tryRun(['ip', 'netns', 'exec', h.ns, 'env', ...env, path.join(CNI_PATH[0], 'flannel')], { input: JSON.stringify(conf) });
    return { status: r.status, out: r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined, stderr: r.stderr };
  };
  /** The flannel plugin's own config, as the runtime hands it over from the list. */
  const flannelConf = (h: Host, cniVersion = '0.3.1') => ({ ...h.cniConfList().plugins[0], name: 'cbr0', cniVersion }) as Record<string, unknown>;

  before(async () => {
    ({ lab, etcd } = await startLab());
    writeConfig(etcd, prefix);
    for (let i = 1; i <= 3; i++) hosts.push(new Host(lab, `h${i}`, `198.18.0.${i}`));
    for (const h of hosts) h.startFlanneld(etcd.endpoint, [`--etcd-prefix=${prefix}`, '--healthz-ip=127.0.0.1', `--healthz-port=${HEALTHZ}`]);
    await Promise.all(hosts.map((h) => h.waitReady()));
    for (const h of hosts) pods.set(h.name, [h.addCniPod(), h.addCniPod()]);
  });

  after(async () => {
    if (suite.failed) dumpLogs(hosts, etcd);
    await lab?.destroy();
  });

  check("pods get addresses from their host's subnet, with the bridge as gateway and flannel's MTU", () => {
    for (const h of hosts) {
      const env = h.subnetEnv();
      for (const p of pods.get(h.name)!) {
        assert.ok(inSubnet(p.ip, h), `${p.ip} in ${env.subnet}`);
        assert.notEqual(p.ip, env.subnet.split('/')[0], 'not the gateway address');
        const link = p.exec(['ip', '-o', 'link', 'show', 'eth0']);
        assert.match(link, new RegExp(`mtu ${env.mtu}\\b`));
        // isDefaultGateway: the default route goes to cni0's address, the subnet's first.
        assert.match(p.exec(['ip', 'route', 'show', 'default']), new RegExp(`via ${env.subnet.split('/')[0].replace(/\./g, '\\.')}`));
      }
      assert.match(h.exec(['ip', '-o', '-4', 'addr', 'show', 'dev', 'cni0']), new RegExp(`inet ${env.subnet.replace(/\./g, '\\.')}`));
      // hairpinMode from the delegate section: set on the pod's bridge port.
      const veth = pods.get(h.name)![0].hostVeth!;
      assert.match(h.exec(['ip', '-d', 'link', 'show', veth]), /hairpin on/);
    }
  });

  check('pods ping each other across every pair of hosts', () => assertPodsPingAcrossHosts(hosts, pods, 2));

  check("the delegate config is flannel's, saved per container under dataDir", () => {
    const h = hosts[0];
    const p = pods.get('h1')![0];
    const text = fs.readFileSync(path.join(h.cniDataDir, p.containerId), 'utf8');
    const want = {
      cniVersion: '0.3.1',
      hairpinMode: true,
      ipMasq: true, // flanneld runs without --ip-masq: the bridge masquerades
      ipam: { dataDir: h.ipamDataDir, ranges: [[{ subnet: subnetOf(h) }]], routes: [{ dst: '198.19.0.0/16' }], type: 'host-local' },
      isDefaultGateway: true,
      isGateway: true,
      mtu: 1472,
      name: 'cbr0',
      type: 'bridge',
    };
    assert.equal(text, marshalSorted(want));
    assert.equal(fs.statSync(path.join(h.cniDataDir, p.containerId)).mode & 0o777, 0o600);
    // host-local's store holds the address for this container.
    const lease = path.join(h.ipamDataDir, 'cbr0', p.ip);
    assert.match(fs.readFileSync(lease, 'utf8'), new RegExp(`^${p.containerId}`));
  });

  check('packet counters in /metrics move by exactly the number of pings', () => {
    const [h1, h2] = hosts;
    const from = pods.get('h1')![1];
    const to = pods.get('h2')![0];
    const key = (dir: string) => `flannel_packets_total{direction="${dir}"}`;
    const b1 = scrape(h1, HEALTHZ);
    const b2 = scrape(h2, HEALTHZ);
    const N = 7;
    const r = from.ping(to.ip, N, 0.05);
    assert.equal(r.received, N, r.output);
    const a1 = scrape(h1, HEALTHZ);
    const a2 = scrape(h2, HEALTHZ);
    const d = (a: Map<string, number>, b: Map<string, number>, k: string) => (a.get(k) ?? 0) - (b.get(k) ?? 0);
    assert.equal(d(a1, b1, key('tx')), N, 'h1 sent N echo requests');
    assert.equal(d(a1, b1, key('rx')), N, 'h1 received N echo replies');
    assert.equal(d(a2, b2, key('rx')), N, 'h2 received N echo requests');
    assert.equal(d(a2, b2, key('tx')), N, 'h2 sent N echo replies');
    const ipPacket = 20 + 8 + 56; // ping's default payload
    assert.equal(d(a1, b1, 'flannel_bytes_total{direction="tx"}'), N * ipPacket);
    const peer = `flannel_peer_packets_total{subnet="${subnetOf(h2)}",public_ip="${h2.ip}",direction="tx"}`;
    assert.equal(d(a1, b1, peer), N, 'per-peer counter for h2');
    // The batch-size histogram counts every batch, and its buckets are cumulative.
    const count = a1.get('flannel_batch_size_count')!;
    assert.ok(d(a1, b1, 'flannel_batch_size_count') >= 2, 'batches for requests and replies');
    assert.equal(a1.get('flannel_batch_size_bucket{le="+Inf"}'), count);
    assert.ok(a1.get('flannel_batch_size_sum')! >= count);
    assert.ok(d(a1, b1, 'flannel_batch_size_sum') >= 2 * N);
    for (const m of [
      'flannel_leases',
      'flannel_etcd_up',
      'flannel_watch_resyncs_total',
      'flannel_lease_renewals_total{result="ok"}',
      'flannel_lease_renewals_total{result="failed"}',
      'flannel_dropped_packets_total{direction="rx",reason="no_route"}',
    ]) {
      assert.ok(a1.has(m), `${m} is exposed`);
    }
    assert.equal(a1.get('flannel_leases'), 2);
    assert.equal(a1.get('flannel_etcd_up'), 1);
  });

  check('DEL frees the address in host-local and removes the veth', () => {
    const h = hosts[2];
    const p = h.addCniPod();
    const lease = path.join(h.ipamDataDir, 'cbr0', p.ip);
    const saved = path.join(h.cniDataDir, p.containerId);
    assert.ok(fs.existsSync(lease) && fs.existsSync(saved));
    const veth = p.hostVeth!;
    assert.equal(h.tryExec(['ip', 'link', 'show', veth]).status, 0, 'veth exists before DEL');
    p.del();
    assert.ok(!fs.existsSync(lease), 'host-local released the address');
    assert.ok(!fs.existsSync(saved), 'saved delegate config removed');
    assert.notEqual(h.tryExec(['ip', 'link', 'show', veth]).status, 0, 'veth removed');
    assert.doesNotMatch(p.exec(['ip', '-o', 'link']), /eth0/, 'no eth0 left in the pod');
    // DEL again: nothing left to do, and that is success.
    p.del();
  });

  check('DEL works after subnet.env vanished, from the saved config', () => {
    const h = hosts[1];
    const p = h.addCniPod();
    const lease = path.join(h.ipamDataDir, 'cbr0', p.ip);
    const moved = `${h.subnetFile}.away`;
    fs.renameSync(h.subnetFile, moved);
    try {
      // ADD cannot work without it: "try again later".
      const r = invokeFlannel(h, 'ADD', flannelConf(h));
      assert.equal(r.status, 1);
      assert.equal(r.out!.code, 11, JSON.stringify(r.out));
      assert.match(String(r.out!.msg), /subnet\.env.*does not exist/);
      p.del();
      assert.ok(!fs.existsSync(lease), 'address released without subnet.env');
    } finally {
      fs.renameSync(moved, h.subnetFile);
    }
  });

  check('CHECK passes on a live pod and fails once its veth is gone', () => {
    const h = hosts[0];
    const p = h.addCniPod({ confList: h.cniConfList('1.0.0', 'cbr0') });
    p.check();
    p.exec(['ip', 'link', 'del', 'eth0']);
    assert.throws(
      () => p.check(),
      (e: unknown) => e instanceof CniInvokeError && e.plugin === 'flannel' && /Interface name eth0 not found/.test(e.error.msg),
      'the bridge CHECK (through flannel) fails without the veth',
    );
    p.del();
    assert.ok(!fs.existsSync(path.join(h.ipamDataDir, 'cbr0', p.ip)));
  });

  check('CHECK below cniVersion 0.4.0 is refused with code 1', () => {
    const h = hosts[0];
    const r = invokeFlannel(h, 'CHECK', flannelConf(h));
    assert.equal(r.status, 1);
    assert.deepEqual(r.out, { cniVersion: '0.3.1', code: 1, msg: 'config version does not allow CHECK' });
  });

  check('chained portmap: a host port reaches the pod, and DEL removes the mapping', async () => {
    const h = hosts[0];
    const p = h.addCniPod({ capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 8080, protocol: 'tcp' }] } });
    const server = spawn('ip', [
      'netns',
      'exec',
      p.ns,
      process.execPath,
      '-e',
      `require('net').createServer((s) => s.end('hello from ' + ${JSON.stringify(p.ip)})).listen(8080, '0.0.0.0', () => console.log('listening'))`,
    ]);
    let out = '';
    server.stdout.on('data', (d) => (out += d));
    try {
      await waitFor('pod server listening', () => out.includes('listening'), 5000);
      const client = `const s = require('net').connect(8080, ${JSON.stringify(h.ip)}); let d = ''; s.on('data', (b) => (d += b)); s.on('end', () => { console.log(d); }); s.on('error', (e) => { console.log('error ' + e.code); }); s.setTimeout(2000, () => { console.log('timeout'); s.destroy(); });`;
      const got = hosts[1].exec([process.execPath, '-e', client]).trim();
      assert.equal(got, `hello from ${p.ip}`);
      assert.match(h.exec(['iptables-save', '-t', 'nat']), /CNI-HOSTPORT-DNAT/);
      p.del();
      assert.doesNotMatch(h.exec(['iptables-save', '-t', 'nat']), new RegExp(`--to-destination ${p.ip.replace(/\./g, '\\.')}:8080`));
      assert.notEqual(hosts[1].exec([process.execPath, '-e', client]).trim(), `hello from ${p.ip}`);
    } finally {
      server.kill();
    }
  });

  check("errors are CNI error JSON with the spec's codes", () => {
    const h = hosts[0];
    const base = flannelConf(h, '1.0.0');
    const cases: [string, Record<string, unknown>, number, RegExp][] = [
      ['delegate with a name', { ...base, delegate: { name: 'x' } }, 7, /must not have 'name'/],
      ['delegate with ipam', { ...base, delegate: { ipam: {} } }, 7, /must not have 'ipam'/],
      ['no network name', { ...base, name: '' }, 7, /missing network name/],
      ['an old cniVersion', { ...base, cniVersion: '0.2.0' }, 1, /incompatible CNI versions/],
      ['a delegate type not in CNI_PATH', { ...base, delegate: { type: 'no-such-plugin' } }, 999, /failed to find plugin "no-such-plugin"/],
    ];
    for (const [what, conf, code, msg] of cases) {
      const r = invokeFlannel(h, 'ADD', conf, `err-${code}`);
      assert.equal(r.status, 1, what);
      assert.equal(r.out!.code, code, `${what}: ${JSON.stringify(r.out)}`);
      assert.match(String(r.out!.msg), msg, what);
    }
    // A failure of the delegate itself comes back with the bridge's own code and message.
    const bad = invokeFlannel(h, 'ADD', { ...base, delegate: { bridge: 'a-name-too-long-for-linux' } }, 'err-bridge');
    assert.equal(bad.status, 1);
    assert.equal(bad.out!.code, 999, JSON.stringify(bad.out));
    assert.match(String(bad.out!.msg), /^failed to create bridge "a-name-too-long-for-linux"/, JSON.stringify(bad.out));
    invokeFlannel(h, 'DEL', { ...base, delegate: { bridge: 'a-name-too-long-for-linux' } }, 'err-bridge');
  });
});
