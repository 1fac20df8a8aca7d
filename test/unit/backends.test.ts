// The kernel backends without a kernel: config validation of their options
// (flannel's VXLANConfig rules and defaults), the batch lines they plan for
// each lease change, the device compatibility check, and the batch protocol
// spoken to `ip -batch` (against a stand-in tool, so nothing here needs root
// or touches this machine's network).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseNetworkConfig } from '../../src/subnet/config';
import { ConfigError } from '../../src/subnet/errors';
import { parseVxlanOptions } from '../../src/subnet/backends';
import { BatchShell, type FlushLines, isNotThere, normalizeMac, onLinkFor } from '../../src/backend/kernel';
import { vxlanIncompatibility, vxlanLines } from '../../src/backend/vxlan/vxlan-backend';
import { hostGwLines } from '../../src/backend/hostgw/hostgw-backend';
import { createBackend } from '../../src/backend';
import { Ip4Net, parseIp4 } from '../../src/routes/ip4';

const cfg = (backend: object) => parseNetworkConfig(JSON.stringify({ Network: '198.19.0.0/16', Backend: backend }));

describe('config: vxlan options', () => {
  test('defaults: VNI 1, Port 8472, no GBP, no learning, no DirectRouting', () => {
    const { config, warnings } = cfg({ Type: 'vxlan' });
    assert.equal(config.backendType, 'vxlan');
    assert.equal(config.port, 8472);
    assert.deepEqual(parseVxlanOptions(config.backend), { vni: 1, port: 8472, gbp: false, learning: false, directRouting: false });
    assert.deepEqual(warnings, []);
  });

  test('every option, keys matched case-insensitively as Go does', () => {
    const { config, warnings } = cfg({ type: 'VXLAN', vni: 4096, port: 4789, mtu: 9000, gbp: true, learning: true, directRouting: true });
    assert.equal(config.backendType, 'vxlan');
    assert.equal(config.port, 4789);
    assert.deepEqual(parseVxlanOptions(config.backend), { vni: 4096, port: 4789, mtu: 9000, gbp: true, learning: true, directRouting: true });
    assert.deepEqual(warnings, []);
  });

  test("Port 0 (Go's zero value) and null mean the default 8472; VNI 0 is a valid VNI", () => {
    assert.equal(cfg({ Type: 'vxlan', Port: 0 }).config.port, 8472);
    assert.equal(cfg({ Type: 'vxlan', Port: null }).config.port, 8472);
    assert.equal(parseVxlanOptions({ Type: 'vxlan', VNI: 0 }).vni, 0);
    assert.equal(parseVxlanOptions({ Type: 'vxlan', VNI: null }).vni, 1);
  });

  test('unknown keys are warned about and ignored', () => {
    const { warnings } = cfg({ Type: 'vxlan', VNI: 2, MacPrefix: '0E-2A' });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /Backend \(vxlan\): unknown key "MacPrefix" is ignored/);
  });

  const bad: Array<[string, object, string, RegExp]> = [
    ['VNI as a string', { Type: 'vxlan', VNI: '1' }, 'Backend.VNI', /Backend\.VNI "1" is not valid: set it to an integer from 0 to 16777215/],
    ['VNI negative', { Type: 'vxlan', VNI: -1 }, 'Backend.VNI', /from 0 to 16777215/],
    ['VNI above 24 bits', { Type: 'vxlan', VNI: 16777216 }, 'Backend.VNI', /from 0 to 16777215/],
    ['VNI fractional', { Type: 'vxlan', VNI: 1.5 }, 'Backend.VNI', /not valid/],
    ['Port above 65535', { Type: 'vxlan', Port: 70000 }, 'Backend.Port', /Backend\.Port 70000 is not valid: set it to an integer from 1 to 65535 \(or leave it out for the default 8472\)/],
    ['Port as a string', { Type: 'vxlan', Port: '8472' }, 'Backend.Port', /not valid/],
    ['MTU too small for the 50-byte overhead', { Type: 'vxlan', MTU: 100 }, 'Backend.MTU', /from 118 to 65535/],
    ['GBP as a string', { Type: 'vxlan', GBP: 'true' }, 'Backend.GBP', /Backend\.GBP must be true or false, not "true"/],
    ['Learning as a number', { Type: 'vxlan', Learning: 1 }, 'Backend.Learning', /must be true or false/],
    ['DirectRouting as a string', { Type: 'vxlan', DirectRouting: 'yes' }, 'Backend.DirectRouting', /must be true or false/],
  ];
  for (const [name, backend, field, re] of bad) {
    test(`refused: ${name}`, () => {
      assert.throws(
        () => cfg(backend),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError, String(e));
          assert.equal(e.code, 'FLANNEL_ERR_CONFIG');
          assert.equal(e.field, field);
          assert.match(e.message, re);
          return true;
        },
      );
    });
  }
});

describe('config: host-gw options', () => {
  test('host-gw is supported, has no port, takes no options', () => {
    const { config, warnings } = cfg({ Type: 'host-gw' });
    assert.equal(config.backendType, 'host-gw');
    assert.equal(config.port, 0);
    assert.deepEqual(warnings, []);
  });

  test('a Port is ignored with a warning; other keys too', () => {
    const { config, warnings } = cfg({ Type: 'Host-GW', Port: 8285, DirectRouting: true });
    assert.equal(config.backendType, 'host-gw');
    assert.equal(config.port, 0);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0], /host-gw has no port .*Backend\.Port is ignored/);
    assert.match(warnings[1], /Backend \(host-gw\): unknown key "DirectRouting" is ignored/);
  });

  test('still unsupported backends name the supported ones', () => {
    assert.throws(() => cfg({ Type: 'wireguard' }), /"wireguard" is not supported by flannel-ts yet \(supported: udp, vxlan, host-gw\)/);
  });
});

describe('backend factories', () => {
  const ctx = { ext: { name: 'eth0', ifaceAddr: '198.18.0.1', publicIp: '198.18.0.1', mtu: 1500 }, log: { info() {}, warn() {}, error() {}, debug() {} } as never };
  test('each supported type has its backend', () => {
    for (const t of ['udp', 'vxlan', 'host-gw']) assert.equal(createBackend(t, ctx).type, t);
  });

  test('accepts: vxlan takes vxlan leases with a usable VtepMAC, host-gw takes host-gw leases', () => {
    const lease = (backendType: string, backendData?: unknown) => ({ subnet: Ip4Net.parse('198.19.3.0/24'), publicIp: parseIp4('198.18.0.3'), backendType, backendData });
    const vx = createBackend('vxlan', ctx);
    assert.equal(vx.accepts(lease('vxlan', { VNI: 1, VtepMAC: '0a:58:00:00:00:01' })), true);
    assert.equal(vx.accepts(lease('udp')), false);
    assert.equal(vx.accepts(lease('host-gw')), false);
    assert.equal(vx.accepts(lease('vxlan', { VNI: 1 })), false);
    assert.equal(vx.accepts(lease('vxlan', { VtepMAC: 'ff:ff:ff:ff:ff:ff' })), false);
    const gw = createBackend('host-gw', ctx);
    assert.equal(gw.accepts(lease('host-gw')), true);
    assert.equal(gw.accepts(lease('vxlan', { VtepMAC: '0a:58:00:00:00:01' })), false);
    assert.equal(gw.accepts(lease('udp')), false);
  });

  test('host-gw refuses a public IP that is not the interface address (NAT), as flannel', async () => {
    const gw = createBackend('host-gw', { ...ctx, ext: { ...ctx.ext, publicIp: '198.18.9.9' } });
    await assert.rejects(gw.prepare(parseNetworkConfig('{"Network":"198.19.0.0/16","Backend":{"Type":"host-gw"}}').config), /differs from interface IP .* not supported by host-gw backend/);
  });
});

const empty = (): FlushLines => ({ bridgeDel: [], bridgeAdd: [], ipDel: [], ipAdd: [] });
const text = (o: FlushLines) => ({
  bridge: [...o.bridgeDel, ...o.bridgeAdd].map((l) => l.line),
  ip: [...o.ipDel, ...o.ipAdd].map((l) => l.line),
});

describe('vxlan: batch lines per lease change', () => {
  const S = '198.19.7.0/24';
  const A = { kind: 'vxlan' as const, gw: '198.19.7.0', mac: '0a:58:00:00:00:01', publicIp: '198.18.0.7' };

  test('a new peer: fdb entry, permanent neighbour, onlink route (flannel.1)', () => {
    const o = empty();
    vxlanLines('flannel.1', S, undefined, A, o);
    assert.deepEqual(text(o), {
      bridge: ['fdb replace 0a:58:00:00:00:01 dev flannel.1 dst 198.18.0.7 self permanent'],
      ip: ['neigh replace 198.19.7.0 lladdr 0a:58:00:00:00:01 dev flannel.1 nud permanent', 'route replace 198.19.7.0/24 via 198.19.7.0 dev flannel.1 onlink'],
    });
  });

  test('a peer restarting with a new VtepMAC: the old fdb entry goes, the neighbour is replaced', () => {
    const o = empty();
    vxlanLines('flannel.1', S, A, { ...A, mac: '0a:58:00:00:00:02' }, o);
    assert.deepEqual(text(o), {
      bridge: ['fdb del 0a:58:00:00:00:01 dev flannel.1 dst 198.18.0.7 self', 'fdb replace 0a:58:00:00:00:02 dev flannel.1 dst 198.18.0.7 self permanent'],
      ip: ['neigh replace 198.19.7.0 lladdr 0a:58:00:00:00:02 dev flannel.1 nud permanent', 'route replace 198.19.7.0/24 via 198.19.7.0 dev flannel.1 onlink'],
    });
    assert.ok(
      o.bridgeDel.every((l) => l.del),
      'deletions tolerate "not there"',
    );
  });

  test('same MAC, new public IP: the fdb entry is replaced in place', () => {
    const o = empty();
    vxlanLines('flannel.1', S, A, { ...A, publicIp: '198.18.0.8' }, o);
    assert.deepEqual(text(o).bridge, ['fdb replace 0a:58:00:00:00:01 dev flannel.1 dst 198.18.0.8 self permanent']);
  });

  test('a peer leaving: fdb entry, neighbour and route removed', () => {
    const o = empty();
    vxlanLines('flannel.1', S, A, undefined, o);
    assert.deepEqual(text(o), {
      bridge: ['fdb del 0a:58:00:00:00:01 dev flannel.1 dst 198.18.0.7 self'],
      ip: ['neigh del 198.19.7.0 dev flannel.1', 'route del 198.19.7.0/24 dev flannel.1'],
    });
  });

  test('a MAC another peer still uses keeps its fdb entry (a node that moved to a new subnet)', () => {
    const o = empty();
    vxlanLines('flannel.1', S, A, undefined, o, (mac) => mac === A.mac);
    assert.deepEqual(text(o), { bridge: [], ip: ['neigh del 198.19.7.0 dev flannel.1', 'route del 198.19.7.0/24 dev flannel.1'] });
  });

  test('DirectRouting: a plain route via the public IP, tunnel entries removed when switching', () => {
    const o = empty();
    vxlanLines('flannel.1', S, A, { kind: 'direct', publicIp: '198.18.0.7' }, o);
    assert.deepEqual(text(o), {
      bridge: ['fdb del 0a:58:00:00:00:01 dev flannel.1 dst 198.18.0.7 self'],
      ip: ['neigh del 198.19.7.0 dev flannel.1', 'route replace 198.19.7.0/24 via 198.18.0.7'],
    });
    const gone = empty();
    vxlanLines('flannel.1', S, { kind: 'direct', publicIp: '198.18.0.7' }, undefined, gone);
    assert.deepEqual(text(gone), { bridge: [], ip: ['route del 198.19.7.0/24 via 198.18.0.7'] });
  });
});

describe('host-gw: batch lines per lease change', () => {
  test('add, move to a new public IP, remove', () => {
    const add = empty();
    hostGwLines('eth0', '198.19.7.0/24', undefined, { publicIp: '198.18.0.7' }, add);
    assert.deepEqual(text(add), { bridge: [], ip: ['route replace 198.19.7.0/24 via 198.18.0.7 dev eth0'] });
    const move = empty();
    hostGwLines('eth0', '198.19.7.0/24', { publicIp: '198.18.0.7' }, { publicIp: '198.18.0.8' }, move);
    assert.deepEqual(text(move).ip, ['route replace 198.19.7.0/24 via 198.18.0.8 dev eth0']);
    const del = empty();
    hostGwLines('eth0', '198.19.7.0/24', { publicIp: '198.18.0.8' }, undefined, del);
    assert.deepEqual(text(del).ip, ['route del 198.19.7.0/24 via 198.18.0.8 dev eth0']);
  });

  test('on-link check: the longest connected prefix of the external interface', () => {
    const prefixes = [
      { net: Ip4Net.parse('198.18.0.0/16'), dev: 'eth0' },
      { net: Ip4Net.parse('198.19.7.0/24'), dev: 'cni0' },
    ];
    assert.equal(onLinkFor(prefixes, parseIp4('198.18.3.4'), 'eth0')?.dev, 'eth0');
    assert.equal(onLinkFor(prefixes, parseIp4('198.19.7.4'), 'eth0'), undefined, 'on a link, but not the external one');
    assert.equal(onLinkFor(prefixes, parseIp4('198.19.7.4'))?.dev, 'cni0');
    assert.equal(onLinkFor(prefixes, parseIp4('198.19.255.7'), 'eth0'), undefined);
  });
});

describe("vxlan device reuse (flannel's vxlanLinksIncompat)", () => {
  const want = { vni: 1, local: '198.18.0.1', dev: 'eth0', port: 8472, gbp: false, learning: false };
  const link = (data: object, kind = 'vxlan') => ({
    address: '0a:58:00:00:00:01',
    mtu: 1450,
    linkinfo: { info_kind: kind, info_data: { id: 1, local: '198.18.0.1', link: 'eth0', port: 8472, learning: false, ...data } },
  });
  test('the same configuration is reused', () => assert.equal(vxlanIncompatibility(link({}), want), ''));
  test('each difference is named', () => {
    assert.match(vxlanIncompatibility(link({}, 'bridge'), want), /link type: bridge vs vxlan/);
    assert.match(vxlanIncompatibility(link({ id: 2 }), want), /vni: 2 vs 1/);
    assert.match(vxlanIncompatibility(link({ local: '198.18.0.9' }), want), /vtep \(external\) IP/);
    assert.match(vxlanIncompatibility(link({ link: 'eth1' }), want), /vtep \(external\) interface/);
    assert.match(vxlanIncompatibility(link({ port: 4789 }), want), /port: 4789 vs 8472/);
    assert.match(vxlanIncompatibility(link({ gbp: true }), want), /gbp/);
    assert.match(vxlanIncompatibility(link({ learning: true }), want), /learning/);
  });
});

test('MACs from leases: normalized; multicast, zero and junk refused', () => {
  assert.equal(normalizeMac('0A:58:0:0:0:1'), '0a:58:00:00:00:01');
  assert.equal(normalizeMac('0a-58-00-00-00-01'), '0a:58:00:00:00:01');
  assert.equal(normalizeMac('01:00:5e:00:00:01'), undefined);
  assert.equal(normalizeMac('00:00:00:00:00:00'), undefined);
  assert.equal(normalizeMac('0a:58:00:00:00'), undefined);
  assert.equal(normalizeMac(42), undefined);
  assert.equal(normalizeMac('0a:58:00:00:00:01; reboot'), undefined);
});

test('deleting what is not there is not an error', () => {
  assert.ok(isNotThere('RTNETLINK answers: No such process'));
  assert.ok(isNotThere('RTNETLINK answers: No such file or directory'));
  assert.ok(!isNotThere('Error: Nexthop has invalid gateway.'));
});

describe('BatchShell: the ip -batch protocol, against a stand-in tool', () => {
  // Reads lines like ip -batch -force: a line containing "bad" or the sentinel
  // device fails with a message and "Command failed -:<n>"; "die" exits.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-batch-'));
  const tool = path.join(dir, 'fake-ip.js');
  fs.writeFileSync(
    tool,
    `let n = 0; let buf = '';
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1); n++;
    if (line.includes('die')) process.exit(3);
    if (line.includes('bad') || line.includes('ftsentinel0')) process.stderr.write('Error: ' + line + '\\nCommand failed -:' + n + '\\n');
  }
});`,
  );
  const shell = () => new BatchShell('ip', 5000, [process.execPath, tool]);

  test('failures are mapped back to their lines; batches share one process', async () => {
    const s = shell();
    try {
      assert.deepEqual(await s.run([{ line: 'route replace a' }, { line: 'route replace b' }]), []);
      const f = await s.run([{ line: 'ok 1' }, { line: 'bad 2', subnet: '198.19.2.0/24' }, { line: 'ok 3' }, { line: 'bad 4' }]);
      assert.deepEqual(
        f.map((x) => [x.line.line, x.message]),
        [
          ['bad 2', 'Error: bad 2'],
          ['bad 4', 'Error: bad 4'],
        ],
      );
      assert.equal(f[0].line.subnet, '198.19.2.0/24');
      assert.deepEqual(await s.run([{ line: 'ok 5' }]), []);
      assert.equal(s.spawned, 1);
    } finally {
      s.close();
    }
  });

  test('a tool that dies fails the batch in flight; the next batch starts a new one', async () => {
    const s = shell();
    try {
      const f = await s.run([{ line: 'ok' }, { line: 'die' }, { line: 'ok again' }]);
      assert.equal(f.length, 3, 'lines without a report count as failed');
      assert.match(f[0].message, /exited/);
      assert.deepEqual(await s.run([{ line: 'bad x' }]).then((x) => x.map((y) => y.line.line)), ['bad x']);
      assert.equal(s.spawned, 2);
    } finally {
      s.close();
    }
  });
});
