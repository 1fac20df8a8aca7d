// The network config rules (flannel's pkg/subnet/config.go) and the control
// plane's pure helpers: subnet keys, free-subnet choice, subnet.env.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ip4Net, formatIp4, parseIp4 } from '../../src/routes/ip4';
import { parseNetworkConfig, type NetworkConfig } from '../../src/subnet/config';
import { ConfigError } from '../../src/subnet/errors';
import { subnetKey, parseSubnetKey, pickFreeSubnet, freeSubnetCount, subnetCount, firstAddress, isSubnetCompatible } from '../../src/subnet/subnets';
import { formatSubnetFile, writeSubnetFile, readSubnetFile } from '../../src/subnet/subnet-env';
import { formatLeaseValue, parseLeaseValue } from '../../src/subnet/lease-value';

function ok(json: string): { c: NetworkConfig; warnings: string[] } {
  const { config, warnings } = parseNetworkConfig(json);
  return { c: config, warnings };
}

function view(c: NetworkConfig): Record<string, unknown> {
  return {
    network: c.network.toString(),
    subnetLen: c.subnetLen,
    subnetMin: formatIp4(c.subnetMin),
    subnetMax: formatIp4(c.subnetMax),
    backendType: c.backendType,
    port: c.port,
  };
}

describe('parseNetworkConfig: defaults', () => {
  const cases: Array<[string, string, Record<string, unknown>]> = [
    [
      'flannel TestConfigDefaults (lower-case key)',
      '{ "network": "10.3.0.0/16" }',
      { network: '10.3.0.0/16', subnetLen: 24, subnetMin: '10.3.1.0', subnetMax: '10.3.255.0', backendType: 'udp', port: 8285 },
    ],
    ['/22 still gets /24 subnets', '{"Network":"198.19.0.0/22"}', { network: '198.19.0.0/22', subnetLen: 24, subnetMin: '198.19.1.0', subnetMax: '198.19.3.0', backendType: 'udp', port: 8285 }],
    ['/23 gets prefix+2', '{"Network":"198.19.0.0/23"}', { network: '198.19.0.0/23', subnetLen: 25, subnetMin: '198.19.0.128', subnetMax: '198.19.1.128', backendType: 'udp', port: 8285 }],
    ['/28 is the smallest: four /30s', '{"Network":"198.19.0.0/28"}', { network: '198.19.0.0/28', subnetLen: 30, subnetMin: '198.19.0.4', subnetMax: '198.19.0.12', backendType: 'udp', port: 8285 }],
    [
      'flannel TestConfigOverrides',
      '{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.5.0", "SubnetMax": "10.3.8.0", "SubnetLen": 28 }',
      { network: '10.3.0.0/16', subnetLen: 28, subnetMin: '10.3.5.0', subnetMax: '10.3.8.0', backendType: 'udp', port: 8285 },
    ],
    [
      'udp backend with a port, type case-insensitive',
      '{"Network":"10.0.0.0/8","SubnetLen":20,"SubnetMin":"10.10.0.0","SubnetMax":"10.99.0.0","Backend":{"Type":"UDP","Port":7890}}',
      { network: '10.0.0.0/8', subnetLen: 20, subnetMin: '10.10.0.0', subnetMax: '10.99.0.0', backendType: 'udp', port: 7890 },
    ],
    [
      'SubnetLen 0 and SubnetMin 0.0.0.0 mean unset (Go zero values)',
      '{"Network":"10.3.0.0/16","SubnetLen":0,"SubnetMin":"0.0.0.0","SubnetMax":"0.0.0.0"}',
      { network: '10.3.0.0/16', subnetLen: 24, subnetMin: '10.3.1.0', subnetMax: '10.3.255.0', backendType: 'udp', port: 8285 },
    ],
    [
      'null SubnetLen and Backend are unset',
      '{"Network":"10.3.0.0/16","SubnetLen":null,"Backend":null,"EnableIPv4":null}',
      { network: '10.3.0.0/16', subnetLen: 24, subnetMin: '10.3.1.0', subnetMax: '10.3.255.0', backendType: 'udp', port: 8285 },
    ],
    [
      'explicit SubnetLen 30 in a /28',
      '{"Network":"10.3.0.0/28","SubnetLen":30}',
      { network: '10.3.0.0/28', subnetLen: 30, subnetMin: '10.3.0.4', subnetMax: '10.3.0.12', backendType: 'udp', port: 8285 },
    ],
    [
      'a /1 at the top of the address space',
      '{"Network":"128.0.0.0/1"}',
      { network: '128.0.0.0/1', subnetLen: 24, subnetMin: '128.0.1.0', subnetMax: '255.255.255.0', backendType: 'udp', port: 8285 },
    ],
  ];
  for (const [name, json, want] of cases) {
    test(name, () => {
      const { c, warnings } = ok(json);
      assert.deepEqual(view(c), want);
      assert.deepEqual(warnings, []);
    });
  }

  test('backend keeps the raw Backend object', () => {
    const { c } = ok('{"Network":"10.3.0.0/16","Backend":{"Type":"udp","Port":9000}}');
    assert.deepEqual(c.backend, { Type: 'udp', Port: 9000 });
    assert.deepEqual(ok('{"Network":"10.3.0.0/16"}').c.backend, {});
  });
});

describe('parseNetworkConfig: warnings', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['unknown top-level key', '{"Network":"10.3.0.0/16","Netwrok":"x"}', /unknown key "Netwrok"/],
    ['BackendType is not a config key', '{"Network":"10.3.0.0/16","BackendType":"udp"}', /unknown key "BackendType"/],
    ['host bits in Network are cleared', '{"Network":"10.3.1.5/16"}', /host bits set; using 10\.3\.0\.0\/16/],
    ['Backend without Type', '{"Network":"10.3.0.0/16","Backend":{"Port":9000}}', /Backend has no Type: using "udp"/],
    ['unknown udp option', '{"Network":"10.3.0.0/16","Backend":{"Type":"udp","VNI":1}}', /unknown key "VNI"/],
    ['IPv6 keys without EnableIPv6', '{"Network":"10.3.0.0/16","IPv6Network":"fc00::/48"}', /IPv6Network is ignored/],
  ];
  for (const [name, json, re] of cases) {
    test(name, () => {
      const { warnings } = ok(json);
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0], re);
    });
  }
  test('Network with host bits is still usable', () => {
    assert.equal(ok('{"Network":"10.3.1.5/16"}').c.network.toString(), '10.3.0.0/16');
  });
});

describe('parseNetworkConfig: errors', () => {
  // [name, json, field, message pattern]
  const cases: Array<[string, string, string, RegExp]> = [
    ['malformed JSON', '{"Network": "10.3.0.0/16"', '', /not valid JSON/],
    ['not an object', '["10.3.0.0/16"]', '', /must be a JSON object/],
    ['empty object: Network missing', '{}', 'Network', /Network is missing/],
    ['Network 0.0.0.0/0 counts as unset', '{"Network":"0.0.0.0/0"}', 'Network', /whole address space/],
    ['Network not a string', '{"Network":167968768}', 'Network', /must be a string in CIDR form/],
    ['Network null', '{"Network":null}', 'Network', /must be a string/],
    ['Network not CIDR', '{"Network":"10.3.0.0"}', 'Network', /not an IPv4 CIDR/],
    ['Network bad octet', '{"Network":"10.300.0.0/16"}', 'Network', /not an IPv4 CIDR/],
    ['Network IPv6', '{"Network":"fc00::/48"}', 'Network', /IPv6 is not supported by flannel-ts yet/],
    ['Network /29 without SubnetLen', '{"Network":"10.3.0.0/29"}', 'Network', /too small.*\/28/],
    ['Network /32', '{"Network":"10.3.0.1/32"}', 'Network', /too small/],
    ['Network /29 with SubnetLen 30', '{"Network":"10.3.0.0/29","SubnetLen":30}', 'SubnetLen', /at least 31/],
    ['SubnetLen 31', '{"Network":"10.3.0.0/16","SubnetLen":31}', 'SubnetLen', /at most 30.*less than \/31/],
    ['SubnetLen below prefix+2', '{"Network":"10.3.0.0/16","SubnetLen":17}', 'SubnetLen', /at least four subnets.*at least 18/],
    ['SubnetLen as a string', '{"Network":"10.3.0.0/16","SubnetLen":"24"}', 'SubnetLen', /whole number.*the string "24"/],
    ['SubnetLen fractional', '{"Network":"10.3.0.0/16","SubnetLen":24.5}', 'SubnetLen', /whole number/],
    ['SubnetLen negative', '{"Network":"10.3.0.0/16","SubnetLen":-1}', 'SubnetLen', /whole number/],
    ['SubnetMin outside Network', '{"Network":"10.3.0.0/16","SubnetMin":"10.4.0.0"}', 'SubnetMin', /not in Network 10\.3\.0\.0\/16/],
    ['SubnetMax outside Network', '{"Network":"10.3.0.0/16","SubnetMax":"10.2.0.0"}', 'SubnetMax', /not in Network/],
    ['SubnetMin unaligned', '{"Network":"10.3.0.0/16","SubnetMin":"10.3.1.7"}', 'SubnetMin', /not on a SubnetLen \(\/24\) boundary: use 10\.3\.1\.0/],
    ['SubnetMax unaligned', '{"Network":"10.3.0.0/16","SubnetLen":26,"SubnetMax":"10.3.9.32"}', 'SubnetMax', /boundary: use 10\.3\.9\.0/],
    ['SubnetMin above SubnetMax', '{"Network":"10.3.0.0/16","SubnetMin":"10.3.9.0","SubnetMax":"10.3.8.0"}', 'SubnetMax', /below SubnetMin/],
    ['SubnetMin not an address', '{"Network":"10.3.0.0/16","SubnetMin":"ten"}', 'SubnetMin', /not an IPv4 address/],
    ['SubnetMin a number', '{"Network":"10.3.0.0/16","SubnetMin":5}', 'SubnetMin', /must be a string/],
    ['EnableIPv6', '{"Network":"10.3.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48"}', 'EnableIPv6', /IPv6 is not supported by flannel-ts yet/],
    ['IPv6 only', '{"EnableIPv6":true,"IPv6Network":"fc00::/48","EnableIPv4":false}', 'EnableIPv6', /not supported by flannel-ts yet/],
    ['EnableIPv4 false', '{"Network":"10.3.0.0/16","EnableIPv4":false}', 'EnableIPv4', /supports only IPv4/],
    ['EnableIPv4 as a string', '{"Network":"10.3.0.0/16","EnableIPv4":"true"}', 'EnableIPv4', /must be true or false/],
    ['Backend a string', '{"Network":"10.3.0.0/16","Backend":"udp"}', 'Backend', /must be an object/],
    ['Backend.Type a number', '{"Network":"10.3.0.0/16","Backend":{"Type":1}}', 'Backend.Type', /must be a string/],
    ['ipip', '{"Network":"10.3.0.0/16","Backend":{"Type":"ipip"}}', 'Backend.Type', /^Backend\.Type "ipip" is not supported by flannel-ts yet \(supported: udp, vxlan, host-gw\)$/],
    ['ipsec', '{"Network":"10.3.0.0/16","Backend":{"Type":"ipsec"}}', 'Backend.Type', /"ipsec" is not supported by flannel-ts yet/],
    ['wireguard', '{"Network":"10.3.0.0/16","Backend":{"Type":"wireguard"}}', 'Backend.Type', /not supported by flannel-ts yet/],
    ['aws-vpc', '{"Network":"10.3.0.0/16","Backend":{"Type":"aws-vpc"}}', 'Backend.Type', /not supported by flannel-ts yet/],
    ['unknown backend', '{"Network":"10.3.0.0/16","Backend":{"Type":"carrier-pigeon"}}', 'Backend.Type', /"carrier-pigeon" is not a backend type flannel knows/],
    ['Port as a string', '{"Network":"10.3.0.0/16","Backend":{"Type":"udp","Port":"8285"}}', 'Backend.Port', /not a valid port.*1 to 65535/],
    ['Port 0', '{"Network":"10.3.0.0/16","Backend":{"Type":"udp","Port":0}}', 'Backend.Port', /not a valid port/],
    ['Port 65536', '{"Network":"10.3.0.0/16","Backend":{"Type":"udp","Port":65536}}', 'Backend.Port', /not a valid port/],
    ['Port fractional', '{"Network":"10.3.0.0/16","Backend":{"Type":"udp","port":80.5}}', 'Backend.Port', /not a valid port/],
  ];
  for (const [name, json, field, re] of cases) {
    test(name, () => {
      assert.throws(
        () => parseNetworkConfig(json),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError, `not a ConfigError: ${String(e)}`);
          assert.equal(e.code, 'FLANNEL_ERR_CONFIG');
          assert.equal(e.field, field);
          assert.match(e.message, re);
          if (field !== '') assert.ok(e.message.includes(field.split('.').pop()!), `message does not name ${field}: ${e.message}`);
          return true;
        },
      );
    });
  }
});

describe('subnet keys', () => {
  test('format and round trip', () => {
    for (const s of ['198.19.7.0/24', '10.0.0.0/8', '10.5.52.0/24', '198.19.0.4/30', '0.0.0.0/0', '255.255.255.0/24']) {
      const n = Ip4Net.parse(s);
      const k = subnetKey(n);
      assert.equal(k, s.replace('/', '-'));
      assert.ok(parseSubnetKey(k)!.equals(n), k);
    }
  });
  test('full etcd keys and dual-stack keys', () => {
    assert.equal(parseSubnetKey('/coreos.com/network/subnets/10.5.52.0-24')!.toString(), '10.5.52.0/24');
    assert.equal(parseSubnetKey('/coreos.com/network/subnets/10.5.52.0-24&fc00:0:0:34::-64')!.toString(), '10.5.52.0/24');
  });
  test('host bits are cleared', () => {
    assert.equal(parseSubnetKey('10.5.52.9-24')!.toString(), '10.5.52.0/24');
  });
  test('invalid keys', () => {
    for (const k of [
      '',
      'config',
      '/coreos.com/network/config',
      '10.5.52.0',
      '10.5.52.0/24',
      '10.5.52.0-',
      '10.5.52-24',
      '10.5.52.0-24x',
      'x10.5.52.0-24',
      '10.5.52.256-24',
      '10.5.52.0-32',
      '10.5.52.0-99',
      '10.5.52.0-024',
      '10.5.52.0--24',
    ]) {
      assert.equal(parseSubnetKey(k), undefined, k);
    }
  });
});

describe('subnet arithmetic', () => {
  const range = { network: Ip4Net.parse('10.3.0.0/16'), subnetLen: 24, subnetMin: parseIp4('10.3.1.0'), subnetMax: parseIp4('10.3.255.0') };

  test('first address and compatibility', () => {
    assert.equal(formatIp4(firstAddress(Ip4Net.parse('198.19.7.0/24'))), '198.19.7.1');
    assert.ok(isSubnetCompatible(range, Ip4Net.parse('10.3.1.0/24')));
    assert.ok(isSubnetCompatible(range, Ip4Net.parse('10.3.255.0/24')));
    assert.ok(!isSubnetCompatible(range, Ip4Net.parse('10.3.0.0/24')), 'below SubnetMin');
    assert.ok(!isSubnetCompatible(range, Ip4Net.parse('10.4.0.0/24')), 'outside Network');
    assert.ok(!isSubnetCompatible(range, Ip4Net.parse('10.3.1.0/25')), 'wrong length');
  });

  test('never returns a taken subnet, and exhausts exactly', () => {
    const small = { network: Ip4Net.parse('10.9.0.0/24'), subnetLen: 28, subnetMin: parseIp4('10.9.0.16'), subnetMax: parseIp4('10.9.0.240') };
    assert.equal(subnetCount(small), 15);
    const taken: Ip4Net[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < 15; i++) {
      const n = pickFreeSubnet(small, taken)!;
      assert.ok(n, `ran out after ${i}`);
      assert.equal(n.prefixLen, 28);
      assert.ok(isSubnetCompatible(small, n), n.toString());
      assert.ok(!taken.some((t) => t.overlaps(n)), `${n} was taken`);
      assert.ok(!seen.has(n.toString()));
      seen.add(n.toString());
      taken.push(n);
      assert.equal(freeSubnetCount(small, taken), 14 - i);
    }
    assert.equal(pickFreeSubnet(small, taken), undefined);
  });

  test('every draw index maps to a distinct free subnet (uniform choice)', () => {
    const taken = ['10.3.1.0/24', '10.3.3.0/24', '10.3.4.0/23', '10.3.200.0/21', '10.3.255.0/24'].map((s) => Ip4Net.parse(s));
    const free = freeSubnetCount(range, taken);
    assert.equal(free, 255 - 1 - 1 - 2 - 8 - 1);
    const got = new Set<string>();
    for (let i = 0; i < free; i++) {
      const n = pickFreeSubnet(range, taken, () => i)!;
      assert.ok(!taken.some((t) => t.overlaps(n)), `${n} overlaps a taken subnet`);
      got.add(n.toString());
    }
    assert.equal(got.size, free);
  });

  test('leases of other lengths block what they overlap', () => {
    // a /26 blocks its /24; a /16 from an old config blocks everything
    const n = pickFreeSubnet({ ...range, subnetMax: parseIp4('10.3.2.0') }, [Ip4Net.parse('10.3.1.64/26')])!;
    assert.equal(n.toString(), '10.3.2.0/24');
    assert.equal(pickFreeSubnet(range, [Ip4Net.parse('10.3.0.0/16')]), undefined);
    assert.equal(pickFreeSubnet(range, [Ip4Net.parse('10.0.0.0/8')]), undefined);
    // leases outside the range change nothing
    assert.equal(freeSubnetCount(range, [Ip4Net.parse('10.4.0.0/24'), Ip4Net.parse('10.3.0.0/24')]), 255);
  });

  test('a /8 cut into /30s with 50k leases is fast', () => {
    const big = { network: Ip4Net.parse('10.0.0.0/8'), subnetLen: 30, subnetMin: parseIp4('10.0.0.4'), subnetMax: parseIp4('10.255.255.252') };
    assert.equal(subnetCount(big), 2 ** 22 - 1);
    const taken: Ip4Net[] = [];
    for (let i = 0; i < 50_000; i++) taken.push(new Ip4Net(parseIp4('10.0.0.4') + i * 4 * 3, 30));
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) {
      const n = pickFreeSubnet(big, taken)!;
      assert.ok(n && !taken.some((t) => t.ip === n.ip));
    }
    // nearly full: everything but the last subnet
    const full = { ...big, subnetMax: parseIp4('10.0.3.252') };
    const allButOne: Ip4Net[] = [];
    for (let ip = parseIp4('10.0.0.4'); ip < parseIp4('10.0.3.252'); ip += 4) allButOne.push(new Ip4Net(ip, 30));
    assert.equal(pickFreeSubnet(full, allButOne)!.toString(), '10.0.3.252/30');
    // A guard against quadratic picking (minutes here), not a speed target:
    // linear picking takes well under a second even on a loaded machine.
    assert.ok(performance.now() - t0 < 20_000, 'picking is no longer linear in the leases held');
  });
});

describe('lease value', () => {
  test('written exactly as flannel', () => {
    assert.equal(formatLeaseValue({ publicIp: parseIp4('198.18.0.1'), backendType: 'udp' }), '{"PublicIP":"198.18.0.1","PublicIPv6":null,"BackendType":"udp"}');
    assert.equal(
      formatLeaseValue({ publicIp: parseIp4('192.168.64.3'), backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: 'c6:d2:32:6f:8f:44' } }),
      '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
    );
    assert.equal(formatLeaseValue({ publicIp: parseIp4('198.18.0.1'), backendType: '' }), '{"PublicIP":"198.18.0.1","PublicIPv6":null}');
  });
  test('read with or without BackendType', () => {
    assert.deepEqual(parseLeaseValue('{"PublicIP":"198.18.0.2","PublicIPv6":null}'), { publicIp: parseIp4('198.18.0.2'), backendType: 'udp' });
    assert.deepEqual(parseLeaseValue('{"publicip":"198.18.0.2","BackendType":"udp","BackendData":null}'), {
      publicIp: parseIp4('198.18.0.2'),
      backendType: 'udp',
    });
    assert.match(parseLeaseValue('{"PublicIP":"nope"}') as string, /not an IPv4/);
    assert.match(parseLeaseValue('garbage') as string, /not JSON/);
  });
});

describe('subnet.env', () => {
  const values = { network: Ip4Net.parse('198.19.0.0/16'), subnet: Ip4Net.parse('198.19.7.0/24'), mtu: 1472, ipMasq: true };

  test('format matches flannel WriteSubnetFile', () => {
    assert.equal(formatSubnetFile(values), 'FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.7.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n');
    assert.match(formatSubnetFile({ ...values, ipMasq: false }), /FLANNEL_IPMASQ=false\n$/);
  });

  test('atomic write into a new directory, then read back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flannel-ts-env-'));
    try {
      const path = join(dir, 'run', 'flannel', 'subnet.env');
      await writeSubnetFile(path, values);
      assert.equal(await readFile(path, 'utf8'), formatSubnetFile(values));
      assert.equal((await stat(path)).mode & 0o777, 0o644);
      await writeSubnetFile(path, { ...values, subnet: Ip4Net.parse('198.19.9.0/24') });
      assert.match(await readFile(path, 'utf8'), /FLANNEL_SUBNET=198\.19\.9\.1\/24/);
      assert.deepEqual(await readdir(join(dir, 'run', 'flannel')), ['subnet.env'], 'no temp files left');
      assert.equal(readSubnetFile(path)!.toString(), '198.19.9.0/24');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('write failure has a code and names the path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flannel-ts-env-'));
    try {
      await writeFile(join(dir, 'file'), 'x');
      await assert.rejects(writeSubnetFile(join(dir, 'file', 'subnet.env'), values), (e: Error & { code?: string }) => {
        assert.equal(e.code, 'FLANNEL_ERR_SUBNET_FILE');
        assert.match(e.message, /file\/subnet\.env/);
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('previous subnet parsing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flannel-ts-env-'));
    try {
      const p = join(dir, 'subnet.env');
      const cases: Array<[string, string | undefined]> = [
        ['FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.52.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n', '10.5.52.0/24'],
        ['export FLANNEL_SUBNET="10.5.52.1/24"\n', '10.5.52.0/24'],
        ["# comment\nFLANNEL_SUBNET='198.19.0.5/30'\r\n", '198.19.0.4/30'],
        ['FLANNEL_NETWORK=10.5.0.0/16\n', undefined],
        ['FLANNEL_SUBNET=\n', undefined],
        ['FLANNEL_SUBNET=banana\n', undefined],
        ['FLANNEL_SUBNET=10.5.52.1/24,10.5.53.1/24\n', undefined],
        ['', undefined],
      ];
      for (const [text, want] of cases) {
        await writeFile(p, text);
        assert.equal(readSubnetFile(p)?.toString(), want, JSON.stringify(text));
      }
      assert.equal(readSubnetFile(join(dir, 'absent.env')), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
