// The flannel CNI plugin without namespaces: config parsing and its errors,
// subnet.env, the delegate config flannel builds, and the dispatch (env,
// versions, ADD/DEL/CHECK) with a fake delegate plugin.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { parseCidr } from '../../src/cni/cidr';
import { DEFAULT_DATA_DIR, DEFAULT_SUBNET_FILE, type FlannelSubnetEnv, buildDelegateConf, loadSubnetEnv, marshalSorted, parseConfJson, parseFlannelConf, parseSubnetEnv } from '../../src/cni/conf';
import { CniError } from '../../src/cni/errors';
import type { ExecResult, PluginExec } from '../../src/cni/invoke';
import { routesWithGateways, runPlugin } from '../../src/cni/plugin';
import { versionAtLeast } from '../../src/cni/version';

const SUBNET_ENV = 'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n';

function cniError(fn: () => unknown): CniError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CniError, `expected a CniError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a CniError');
}

const env4: FlannelSubnetEnv = { networks: ['10.1.0.0/16'], subnet: '10.1.17.0/24', ip6Networks: [], mtu: 1472, ipMasq: true };

describe('network config', () => {
  test('flannel keys and their defaults', () => {
    const c = parseFlannelConf(parseConfJson('{"cniVersion":"0.3.1","name":"cbr0","type":"flannel"}'));
    assert.equal(c.subnetFile, DEFAULT_SUBNET_FILE);
    assert.equal(c.subnetFile, '/run/flannel/subnet.env');
    assert.equal(c.dataDir, DEFAULT_DATA_DIR);
    assert.equal(c.dataDir, '/var/lib/cni/flannel');
    assert.equal(c.delegate, undefined);
    const d = parseFlannelConf(parseConfJson('{"name":"n","subnetFile":"/tmp/s.env","dataDir":"/tmp/d","delegate":{"hairpinMode":true},"ipam":{"dataDir":"/tmp/i"}}'));
    assert.equal(d.subnetFile, '/tmp/s.env');
    assert.equal(d.dataDir, '/tmp/d');
    assert.deepEqual(d.delegate, { hairpinMode: true });
    assert.deepEqual(d.ipam, { dataDir: '/tmp/i' });
    assert.equal(d.cniVersion, '');
  });

  test("keys match case-insensitively, as Go's encoding/json does", () => {
    const c = parseFlannelConf(parseConfJson('{"name":"n","SubnetFile":"/x/subnet.env","DATADIR":"/x/d"}'));
    assert.equal(c.subnetFile, '/x/subnet.env');
    assert.equal(c.dataDir, '/x/d');
  });

  test('bad JSON is code 6; a missing or bad name code 7; wrong types code 7', () => {
    assert.equal(cniError(() => parseConfJson('{"name": ')).cniCode, 6);
    assert.equal(cniError(() => parseConfJson('[]')).cniCode, 6);
    assert.equal(cniError(() => parseConfJson('{"name": 5}')).cniCode, 6);
    const noName = cniError(() => parseConfJson('{"type":"flannel"}'));
    assert.equal(noName.cniCode, 7);
    assert.equal(noName.msg, 'missing network name');
    assert.equal(cniError(() => parseConfJson('{"name":"a b"}')).cniCode, 7);
    assert.equal(cniError(() => parseFlannelConf(parseConfJson('{"name":"n","subnetFile":3}'))).cniCode, 7);
    assert.equal(cniError(() => parseFlannelConf(parseConfJson('{"name":"n","delegate":"bridge"}'))).cniCode, 7);
  });
});

describe('subnet.env', () => {
  test("parsed as flannel's plugin parses it: subnet as a network, networks de-duplicated", () => {
    const e = parseSubnetEnv('FLANNEL_NETWORK=10.1.0.0/16,10.1.0.0/16,10.2.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\nOTHER=1\n', 'f');
    assert.deepEqual(e, { networks: ['10.1.0.0/16', '10.2.0.0/16'], subnet: '10.1.17.0/24', ip6Networks: [], mtu: 1472, ipMasq: false });
  });

  test('dual stack keys', () => {
    const e = parseSubnetEnv(`${SUBNET_ENV}FLANNEL_IPV6_NETWORK=FD00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\n`, 'f');
    assert.deepEqual(e.ip6Networks, ['fd00:10:244::/56']);
    assert.equal(e.ip6Subnet, 'fd00:10:244:1::/64');
  });

  test('missing keys are named, as flannel names them (code 6)', () => {
    const e = cniError(() => parseSubnetEnv('FLANNEL_MTU=1472\n', '/x/subnet.env'));
    assert.equal(e.cniCode, 6);
    assert.match(e.msg, /\/x\/subnet\.env: is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_IPMASQ$/);
    assert.equal(cniError(() => parseSubnetEnv(SUBNET_ENV.replace('1472', 'big'), 'f')).cniCode, 6);
    assert.equal(cniError(() => parseSubnetEnv(SUBNET_ENV.replace('10.1.17.1/24', '10.1.17.1'), 'f')).cniCode, 6);
  });

  test('a missing file is "try again later" (code 11)', () => {
    const e = cniError(() => loadSubnetEnv('/nonexistent/flannel-ts/subnet.env'));
    assert.equal(e.cniCode, 11);
    assert.match(e.msg, /does not exist/);
  });

  test('CIDRs print as Go prints them', () => {
    assert.equal(parseCidr('10.1.17.9/24').text, '10.1.17.0/24');
    assert.equal(parseCidr('2001:DB8:0:0:1:0:0:1/128').text, '2001:db8::1:0:0:1/128');
    assert.equal(parseCidr('fd00::1:2/112').text, 'fd00::1:0/112');
    assert.equal(parseCidr('::ffff:10.0.0.1/128').text, '::ffff:a00:1/128');
    assert.equal(parseCidr('0:0:0:0:0:0:0:0/0').text, '::/0');
    assert.throws(() => parseCidr('1::2::3/64'));
    assert.throws(() => parseCidr('10.1.17.300/24'));
  });
});

describe('delegate config', () => {
  const conf = (extra: object = {}) => parseFlannelConf(parseConfJson(JSON.stringify({ cniVersion: '0.3.1', name: 'cbr0', type: 'flannel', ...extra })));

  test("the bridge config flannel builds: the seed's cni-conf.json", () => {
    const d = buildDelegateConf(conf({ delegate: { hairpinMode: true, isDefaultGateway: true } }), env4);
    assert.deepEqual(d, {
      hairpinMode: true,
      isDefaultGateway: true,
      name: 'cbr0',
      type: 'bridge',
      ipMasq: false, // flanneld masquerades (FLANNEL_IPMASQ=true)
      mtu: 1472,
      isGateway: true,
      cniVersion: '0.3.1',
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.1.17.0/24' }]], routes: [{ dst: '10.1.0.0/16' }] },
    });
    // Saved as Go marshals a map: keys sorted, no spaces.
    assert.equal(
      marshalSorted(d),
      '{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.1.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1472,"name":"cbr0","type":"bridge"}',
    );
  });

  test('the bridge masquerades when flanneld does not', () => {
    assert.equal(buildDelegateConf(conf(), { ...env4, ipMasq: false }).ipMasq, true);
  });

  test("the delegate section's keys win over flannel's defaults", () => {
    const d = buildDelegateConf(conf({ delegate: { ipMasq: true, mtu: 1400, isGateway: false, bridge: 'mynet0' } }), env4);
    assert.equal(d.ipMasq, true);
    assert.equal(d.mtu, 1400);
    assert.equal(d.isGateway, false);
    assert.equal(d.bridge, 'mynet0');
  });

  test('another delegate type gets no isGateway', () => {
    const d = buildDelegateConf(conf({ delegate: { type: 'ipvlan', master: 'eth0' } }), env4);
    assert.equal(d.type, 'ipvlan');
    assert.equal('isGateway' in d, false);
  });

  test('the ipam section is the base: other keys pass through, routes are extended, type defaults to host-local', () => {
    const d = buildDelegateConf(conf({ ipam: { dataDir: '/tmp/ipam', routes: [{ dst: '192.168.0.0/16', gw: '10.1.17.254' }] } }), env4);
    assert.deepEqual(d.ipam, {
      dataDir: '/tmp/ipam',
      type: 'host-local',
      ranges: [[{ subnet: '10.1.17.0/24' }]],
      routes: [{ dst: '192.168.0.0/16', gw: '10.1.17.254' }, { dst: '10.1.0.0/16' }],
    });
    assert.equal((buildDelegateConf(conf({ ipam: { type: 'static' } }), env4).ipam as { type: string }).type, 'static');
  });

  test('dual stack: a range and a route per family', () => {
    const d = buildDelegateConf(conf(), { ...env4, ip6Networks: ['fd00::/56'], ip6Subnet: 'fd00:0:0:1::/64' });
    assert.deepEqual((d.ipam as { ranges: unknown }).ranges, [[{ subnet: '10.1.17.0/24' }], [{ subnet: 'fd00:0:0:1::/64' }]]);
    assert.deepEqual((d.ipam as { routes: unknown }).routes, [{ dst: '10.1.0.0/16' }, { dst: 'fd00::/56' }]);
  });

  test('runtimeConfig (portMappings...) goes to the delegate', () => {
    const rc = { portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }] };
    assert.deepEqual(buildDelegateConf(conf({ runtimeConfig: rc }), env4).runtimeConfig, rc);
  });

  test("flannel's refusals, code 7", () => {
    for (const [delegate, msg] of [
      [{ name: 'x' }, /must not have 'name' field/],
      [{ ipam: {} }, /must not have 'ipam' field/],
      [{ type: 7 }, /must have \(string\) 'type' field/],
    ] as const) {
      const e = cniError(() => buildDelegateConf(conf({ delegate }), env4));
      assert.equal(e.cniCode, 7);
      assert.match(e.msg, msg);
    }
    assert.equal(cniError(() => buildDelegateConf(conf({ ipam: { routes: [{ gw: '1.2.3.4' }] } }), env4)).cniCode, 7);
    assert.equal(cniError(() => buildDelegateConf(conf({ ipam: { routes: 'x' } }), env4)).cniCode, 7);
  });
});

describe('plugin dispatch (fake delegate)', () => {
  let dir: string;
  let subnetFile: string;
  let dataDir: string;
  let calls: { file: string; stdin: string; env: NodeJS.ProcessEnv }[];
  let reply: ExecResult;
  const exec: PluginExec = (file, stdin, env) => {
    calls.push({ file, stdin, env });
    return reply;
  };
  const binDir = () => path.join(dir, 'bin');
  const env = (cmd: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    CNI_COMMAND: cmd,
    CNI_CONTAINERID: 'ctr1',
    CNI_NETNS: '/run/netns/does-not-exist',
    CNI_IFNAME: 'eth0',
    CNI_PATH: binDir(),
    ...extra,
  });
  const conf = (extra: object = {}) => JSON.stringify({ cniVersion: '1.0.0', name: 'cbr0', type: 'flannel', subnetFile, dataDir, ...extra });
  const out = (r: { stdout: string }) => JSON.parse(r.stdout) as Record<string, unknown>;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flannel-ts-cni-'));
    fs.mkdirSync(binDir());
    fs.writeFileSync(path.join(binDir(), 'bridge'), '#!/bin/sh\n', { mode: 0o755 });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const reset = () => {
    subnetFile = path.join(dir, `subnet-${Math.random()}.env`);
    dataDir = path.join(dir, `data-${Math.random()}`);
    fs.writeFileSync(subnetFile, SUBNET_ENV);
    calls = [];
    reply = { status: 0, stdout: '{"cniVersion":"1.0.0","ips":[{"address":"10.1.17.2/24","gateway":"10.1.17.1"}]}', stderr: '' };
  };

  test('VERSION', () => {
    const r = runPlugin({ env: { CNI_COMMAND: 'VERSION' }, stdin: '' });
    assert.equal(r.exitCode, 0);
    assert.deepEqual(out(r), { cniVersion: '1.0.0', supportedVersions: ['0.3.1', '0.4.0', '1.0.0'] });
  });

  test('no CNI_COMMAND: says what it is, on stderr', () => {
    const r = runPlugin({ env: {}, stdin: '' });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /CNI protocol versions supported: 0\.3\.1, 0\.4\.0, 1\.0\.0/);
  });

  test('missing or bad environment: code 4, as JSON with cniVersion', () => {
    reset();
    const r = runPlugin({ env: { CNI_COMMAND: 'ADD', CNI_IFNAME: 'eth0' }, stdin: conf() });
    assert.equal(r.exitCode, 1);
    assert.deepEqual(out(r), { cniVersion: '1.0.0', code: 4, msg: 'required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_PATH] missing' });
    assert.equal(out(runPlugin({ env: env('ADD', { CNI_CONTAINERID: '../../etc/x' }), stdin: conf() })).code, 4);
    assert.equal(out(runPlugin({ env: env('ADD', { CNI_IFNAME: 'a-very-long-interface' }), stdin: conf() })).code, 4);
    assert.equal(out(runPlugin({ env: env('FROB'), stdin: conf() })).code, 4);
    assert.equal(calls.length, 0);
  });

  test('versions: 0.3.1 to 1.0.0; CHECK from 0.4.0; GC and STATUS not spoken', () => {
    reset();
    for (const v of ['0.3.1', '0.4.0', '1.0.0']) assert.equal(runPlugin({ env: env('ADD'), stdin: conf({ cniVersion: v }), exec }).exitCode, 0, v);
    const old = out(runPlugin({ env: env('ADD'), stdin: conf({ cniVersion: '0.2.0' }), exec }));
    assert.deepEqual(old, { cniVersion: '0.2.0', code: 1, msg: 'incompatible CNI versions', details: 'config is "0.2.0", plugin supports ["0.3.1" "0.4.0" "1.0.0"]' });
    assert.equal(out(runPlugin({ env: env('ADD'), stdin: conf({ cniVersion: undefined }), exec })).code, 1, 'no cniVersion is 0.1.0');
    assert.deepEqual(out(runPlugin({ env: env('CHECK'), stdin: conf({ cniVersion: '0.3.1' }), exec })), { cniVersion: '0.3.1', code: 1, msg: 'config version does not allow CHECK' });
    assert.equal(out(runPlugin({ env: env('GC'), stdin: conf(), exec })).msg, 'config version does not allow GC');
    assert.equal(out(runPlugin({ env: env('ADD'), stdin: conf({ cniVersion: 'x.y' }), exec })).code, 6);
    assert.ok(versionAtLeast('1.0.0', '0.4.0') && !versionAtLeast('0.3.1', '0.4.0') && versionAtLeast('0.10.0', '0.4.0'));
  });

  test('ADD saves the delegate config under dataDir, calls the delegate with it, prints its result', () => {
    reset();
    const r = runPlugin({ env: env('ADD'), stdin: conf({ delegate: { hairpinMode: true } }), exec });
    assert.equal(r.exitCode, 0, r.stdout);
    assert.equal(r.stdout, reply.stdout, 'the delegate result, as is');
    assert.equal(calls.length, 1);
    assert.equal(calls[0].file, path.join(binDir(), 'bridge'));
    assert.equal(calls[0].env.CNI_COMMAND, 'ADD');
    assert.equal(calls[0].env.CNI_CONTAINERID, 'ctr1');
    const saved = path.join(dataDir, 'ctr1');
    assert.equal(fs.readFileSync(saved, 'utf8'), calls[0].stdin);
    assert.equal(fs.statSync(saved).mode & 0o777, 0o600);
    assert.equal(fs.statSync(dataDir).mode & 0o777, 0o700);
    const d = JSON.parse(calls[0].stdin) as Record<string, unknown>;
    assert.equal(d.type, 'bridge');
    assert.equal(d.ipMasq, false);
    assert.equal(d.hairpinMode, true);
    assert.match(r.stderr, /netconf sent to delegate plugin/);
  });

  test("a delegate's CNI error is passed on with its code; a crash is code 999", () => {
    reset();
    reply = { status: 1, stdout: '{"cniVersion":"1.0.0","code":11,"msg":"busy","details":"later"}', stderr: '' };
    assert.deepEqual(out(runPlugin({ env: env('ADD'), stdin: conf(), exec })), { cniVersion: '1.0.0', code: 11, msg: 'busy', details: 'later' });
    reply = { status: 2, stdout: 'panic', stderr: 'goroutine 1' };
    const e = out(runPlugin({ env: env('ADD'), stdin: conf(), exec }));
    assert.equal(e.code, 999);
    assert.match(String(e.msg), /netplugin bridge failed \(ADD\): exited with status 2/);
    const nf = out(runPlugin({ env: env('ADD'), stdin: conf({ delegate: { type: 'macvlan' } }), exec }));
    assert.equal(nf.code, 999);
    assert.match(String(nf.msg), /failed to find plugin "macvlan"/);
    assert.equal(out(runPlugin({ env: env('ADD'), stdin: conf({ delegate: { type: '../bridge' } }), exec })).code, 7);
  });

  test('a missing subnet.env is code 11 and runs nothing', () => {
    reset();
    fs.rmSync(subnetFile);
    const e = out(runPlugin({ env: env('ADD'), stdin: conf(), exec }));
    assert.equal(e.code, 11);
    assert.equal(calls.length, 0);
  });

  test('DEL uses the saved config even after subnet.env changed or vanished, then forgets it', () => {
    reset();
    runPlugin({ env: env('ADD'), stdin: conf(), exec });
    const savedText = calls[0].stdin;
    fs.writeFileSync(subnetFile, SUBNET_ENV.replace('10.1.17.1/24', '10.1.99.1/24'));
    const r1 = runPlugin({ env: env('DEL'), stdin: conf(), exec });
    assert.equal(r1.exitCode, 0, r1.stdout);
    assert.equal(r1.stdout, '');
    assert.equal(calls[1].env.CNI_COMMAND, 'DEL');
    assert.equal(calls[1].stdin, savedText, 'the saved config, not one built from the new subnet.env');
    assert.ok(!fs.existsSync(path.join(dataDir, 'ctr1')));
    // Unknown container (nothing saved): success without calling anything.
    fs.rmSync(subnetFile);
    assert.equal(runPlugin({ env: env('DEL', { CNI_NETNS: '' }), stdin: conf(), exec }).exitCode, 0);
    assert.equal(calls.length, 2);
  });

  test('a failing delegate DEL keeps the saved config for the retry', () => {
    reset();
    runPlugin({ env: env('ADD'), stdin: conf(), exec });
    reply = { status: 1, stdout: '{"code":5,"msg":"io"}', stderr: '' };
    assert.equal(out(runPlugin({ env: env('DEL'), stdin: conf(), exec })).code, 5);
    assert.ok(fs.existsSync(path.join(dataDir, 'ctr1')));
  });

  test('CHECK: the saved config plus the runtime prevResult goes to the delegate CHECK', () => {
    reset();
    runPlugin({ env: env('ADD'), stdin: conf(), exec });
    const prevResult = { cniVersion: '1.0.0', ips: [{ address: '10.1.17.2/24', gateway: '10.1.17.1' }], routes: [{ dst: '10.1.0.0/16' }, { dst: '0.0.0.0/0', gw: '10.1.17.1' }] };
    const r = runPlugin({ env: env('CHECK'), stdin: conf({ prevResult }), exec });
    assert.equal(r.exitCode, 0, r.stdout);
    const d = JSON.parse(calls[1].stdin) as Record<string, unknown>;
    assert.equal(calls[1].env.CNI_COMMAND, 'CHECK');
    assert.equal(d.type, 'bridge');
    assert.deepEqual((d.prevResult as { routes: unknown }).routes, [
      { dst: '10.1.0.0/16', gw: '10.1.17.1' },
      { dst: '0.0.0.0/0', gw: '10.1.17.1' },
    ]);
    reply = { status: 1, stdout: '{"code":999,"msg":"Interface name eth0 not found"}', stderr: '' };
    assert.equal(out(runPlugin({ env: env('CHECK'), stdin: conf({ prevResult }), exec })).msg, 'Interface name eth0 not found');
  });

  test('routesWithGateways fills only gateway-less routes, per family', () => {
    const r = routesWithGateways({
      ips: [
        { address: 'fd00::2/64', gateway: 'fd00::1' },
        { address: '10.0.0.2/24', gateway: '10.0.0.1' },
      ],
      routes: [{ dst: '10.0.0.0/8' }, { dst: 'fd00::/56' }, { dst: '0.0.0.0/0', gw: '10.0.0.9' }],
    });
    assert.deepEqual(r.routes, [
      { dst: '10.0.0.0/8', gw: '10.0.0.1' },
      { dst: 'fd00::/56', gw: 'fd00::1' },
      { dst: '0.0.0.0/0', gw: '10.0.0.9' },
    ]);
  });
});
