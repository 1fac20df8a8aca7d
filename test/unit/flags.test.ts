import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { FlagError, type FlanneldOptions, parseFlags, parseGoInt, usage, envName, unsupportedFlags, compileIfaceRegex, redactOptions } from '../../src/cli/flags';
import { version, versionText } from '../../src/util/version';

function run(argv: string[], env: NodeJS.ProcessEnv = {}): FlanneldOptions {
  const r = parseFlags(argv, env);
  assert.equal(r.kind, 'run');
  return (r as { kind: 'run'; options: FlanneldOptions }).options;
}

/** Asserts parseFlags throws a FlagError whose message matches every pattern. */
function fails(argv: string[], env: NodeJS.ProcessEnv, ...patterns: (RegExp | string)[]): FlagError {
  let err: unknown;
  try {
    parseFlags(argv, env);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof FlagError, `expected a FlagError for ${JSON.stringify(argv)}, got ${String(err)}`);
  assert.equal(err.code, 'FLANNEL_ERR_FLAG');
  for (const p of patterns) {
    if (typeof p === 'string') assert.ok(err.message.includes(p), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(p)}`);
    else assert.match(err.message, p);
  }
  return err;
}

describe('defaults', () => {
  test('match flanneld main.go', () => {
    const o = run([]);
    assert.deepEqual(o, {
      etcdEndpoints: ['http://127.0.0.1:4001', 'http://127.0.0.1:2379'],
      etcdPrefix: '/coreos.com/network',
      etcdKeyfile: undefined,
      etcdCertfile: undefined,
      etcdCafile: undefined,
      etcdUsername: undefined,
      etcdPassword: undefined,
      iface: [],
      ifaceRegex: [],
      publicIp: undefined,
      subnetFile: '/run/flannel/subnet.env',
      subnetLeaseRenewMargin: 60,
      adminSocket: '/run/flannel/subnet.env.sock',
      adminSocketGiven: false,
      tunOffload: true,
      tunGro: true,
      udpGso: true,
      udpGro: true,
      dataplaneWarmupMs: 20,
      dataplaneSpinUs: 0,
      dataplaneNice: -10,
      dataplaneSliceUs: 0,
      dataplaneMlock: false,
      dataplaneTiming: false,
      ipMasq: false,
      ipMasqFullyRandomDisable: false,
      ipBlackholeRoute: false,
      ifaceCanReach: '',
      healthzIp: '0.0.0.0',
      healthzPort: 0,
      iptablesResync: 5,
      iptablesForwardRules: true,
      verbosity: 0,
      ignoredFlags: [],
    });
  });
});

describe('Go flag syntax', () => {
  test('one or two dashes, = or space', () => {
    for (const argv of [['-etcd-prefix=/a'], ['--etcd-prefix=/a'], ['-etcd-prefix', '/a'], ['--etcd-prefix', '/a']]) {
      assert.equal(run(argv).etcdPrefix, '/a', JSON.stringify(argv));
    }
  });

  test('a value after = may contain =, and the value is taken verbatim', () => {
    assert.equal(run(['--etcd-password=a=b']).etcdPassword, 'a=b');
    // Go takes the next argument as the value even when it starts with a dash.
    assert.equal(run(['--etcd-password', '-secret']).etcdPassword, '-secret');
  });

  test('the last value of a scalar flag wins', () => {
    assert.equal(run(['--healthz-port=1', '-healthz-port', '2']).healthzPort, 2);
  });

  test('ints parse like strconv.ParseInt base 0', () => {
    assert.equal(run(['--healthz-port=0x10']).healthzPort, 16);
    assert.equal(run(['--healthz-port=010']).healthzPort, 8);
    assert.equal(run(['--healthz-port=8_080']).healthzPort, 8080);
    assert.equal(parseGoInt('-0b101'), -5n);
    assert.equal(parseGoInt('0o17'), 15n);
    assert.throws(() => parseGoInt('08'));
    assert.throws(() => parseGoInt('1__0'));
    assert.throws(() => parseGoInt('9223372036854775808'), /out of range/);
  });

  test('booleans: bare, =true/false and every strconv.ParseBool spelling', () => {
    assert.equal(run(['-ip-masq']).ipMasq, true);
    assert.equal(run(['--ip-masq']).ipMasq, true);
    assert.equal(run(['-ip-masq=false']).ipMasq, false);
    assert.equal(run(['--ip-masq=true']).ipMasq, true);
    for (const t of ['1', 't', 'T', 'TRUE', 'true', 'True']) assert.equal(run([`--ip-masq=${t}`]).ipMasq, true, t);
    for (const f of ['0', 'f', 'F', 'FALSE', 'false', 'False']) assert.equal(run([`--ip-masq=${f}`]).ipMasq, false, f);
    assert.equal(run(['--iptables-forward-rules=false']).iptablesForwardRules, false);
  });

  test('a bad boolean value names the flag', () => {
    fails(['--ip-masq=yes'], {}, 'invalid boolean value "yes" for -ip-masq');
    fails(['--ip-masq=tRUE'], {}, '-ip-masq');
  });

  test('"-ip-masq false" is an error with a hint, not a silent true', () => {
    const e = fails(['-ip-masq', 'false'], {}, 'unexpected argument "false"', 'no positional arguments', '-ip-masq=false');
    assert.equal(e.flag, 'ip-masq');
  });

  test('positional arguments are refused', () => {
    fails(['--ip-masq=true', 'eth0'], {}, 'unexpected argument "eth0"');
    fails(['-'], {}, 'unexpected argument "-"');
  });

  test('-- ends the flags', () => {
    assert.equal(run(['--ip-masq', '--']).ipMasq, true);
    fails(['--', '--ip-masq'], {}, 'unexpected argument "--ip-masq"', 'nothing may follow "--"');
  });

  test('bad syntax and missing values are Go errors', () => {
    fails(['---ip-masq'], {}, 'bad flag syntax: ---ip-masq');
    fails(['-=x'], {}, 'bad flag syntax: -=x');
    fails(['--etcd-prefix'], {}, 'flag needs an argument: -etcd-prefix');
    fails(['-v'], {}, 'flag needs an argument: -v');
  });
});

describe('repeatable flags', () => {
  test('--iface accumulates in order, names and IPs', () => {
    const o = run(['--iface', 'eth0', '-iface=198.18.0.2', '--iface=fd00::1']);
    assert.deepEqual(o.iface, ['eth0', '198.18.0.2', 'fd00::1']);
  });

  test('--iface-regex accumulates and must compile', () => {
    assert.deepEqual(run(['--iface-regex=^eth', '--iface-regex', 'ens[0-9]+']).ifaceRegex, ['^eth', 'ens[0-9]+']);
    fails(['--iface-regex=eth('], {}, 'flag --iface-regex', 'regular expression');
    assert.ok(compileIfaceRegex('(?i)^ETH').test('eth0'));
  });

  test('bad --iface values name the flag', () => {
    fails(['--iface='], {}, 'flag --iface', 'empty');
    fails(['--iface=a-very-long-interface-name'], {}, 'flag --iface', '15 characters');
  });
});

describe('environment', () => {
  test('every flag from FLANNELD_<NAME>', () => {
    const o = run([], {
      FLANNELD_ETCD_ENDPOINTS: 'https://198.18.0.1:2379',
      FLANNELD_ETCD_PREFIX: '/x/network',
      FLANNELD_IP_MASQ: 'true',
      FLANNELD_PUBLIC_IP: '198.18.0.7',
      FLANNELD_SUBNET_LEASE_RENEW_MARGIN: '30',
      FLANNELD_HEALTHZ_PORT: '8285',
      FLANNELD_IPTABLES_FORWARD_RULES: 'false',
      FLANNELD_V: '2',
    });
    assert.deepEqual(o.etcdEndpoints, ['https://198.18.0.1:2379']);
    assert.equal(o.etcdPrefix, '/x/network');
    assert.equal(o.ipMasq, true);
    assert.equal(o.publicIp, '198.18.0.7');
    assert.equal(o.subnetLeaseRenewMargin, 30);
    assert.equal(o.healthzPort, 8285);
    assert.equal(o.iptablesForwardRules, false);
    assert.equal(o.verbosity, 2);
  });

  test('names: dashes to underscores, upper case', () => {
    assert.equal(envName('iface-regex'), 'FLANNELD_IFACE_REGEX');
    assert.equal(envName('log_backtrace_at'), 'FLANNELD_LOG_BACKTRACE_AT');
  });

  test('FLANNELD_IFACE may be comma-separated; FLANNELD_IFACE_REGEX is one regex', () => {
    assert.deepEqual(run([], { FLANNELD_IFACE: 'eth0, 198.18.0.2' }).iface, ['eth0', '198.18.0.2']);
    assert.deepEqual(run([], { FLANNELD_IFACE_REGEX: 'eth[0-9]{1,2}' }).ifaceRegex, ['eth[0-9]{1,2}']);
    fails([], { FLANNELD_IFACE: 'eth0,,eth1' }, 'FLANNELD_IFACE', 'empty entry');
  });

  test('the command line wins over the environment, flag by flag', () => {
    const o = run(['--ip-masq=false', '--iface=eth1'], { FLANNELD_IP_MASQ: 'true', FLANNELD_IFACE: 'eth0', FLANNELD_ETCD_PREFIX: '/env' });
    assert.equal(o.ipMasq, false);
    assert.deepEqual(o.iface, ['eth1']); // not merged with the environment's
    assert.equal(o.etcdPrefix, '/env');
  });

  test('empty variables are ignored, as flagutil does', () => {
    assert.equal(run([], { FLANNELD_ETCD_PREFIX: '' }).etcdPrefix, '/coreos.com/network');
  });

  test('a bad value names the variable', () => {
    fails([], { FLANNELD_HEALTHZ_PORT: 'abc' }, 'invalid value "abc" for FLANNELD_HEALTHZ_PORT');
    fails([], { FLANNELD_IP_MASQ: 'yes' }, 'FLANNELD_IP_MASQ');
    fails([], { FLANNELD_PUBLIC_IP: '1.2.3' }, 'FLANNELD_PUBLIC_IP', 'IPv4');
    fails([], { FLANNELD_SUBNET_LEASE_RENEW_MARGIN: '1440' }, 'FLANNELD_SUBNET_LEASE_RENEW_MARGIN', '1 to 1439');
  });

  test('an unsupported flag from the environment is refused, naming the variable', () => {
    fails([], { FLANNELD_KUBE_SUBNET_MGR: 'true' }, 'flag --kube-subnet-mgr is not supported by flannel-ts yet', 'FLANNELD_KUBE_SUBNET_MGR');
  });

  test('FLANNELD_VERSION does nothing (flanneld checks --version before reading the environment)', () => {
    assert.equal(parseFlags([], { FLANNELD_VERSION: 'true' }).kind, 'run');
  });
});

describe('flanneld flags flannel-ts does not implement', () => {
  test('are refused with a clear message', () => {
    const e = fails(['--kube-subnet-mgr'], {}, /^flag --kube-subnet-mgr is not supported by flannel-ts yet$/);
    assert.equal(e.flag, 'kube-subnet-mgr');
    fails(['-kube-api-url=https://k8s:6443'], {}, 'flag --kube-api-url is not supported by flannel-ts yet');
    fails(['--public-ipv6', 'fd00::2'], {}, 'flag --public-ipv6 is not supported by flannel-ts yet');
    fails(['--set-node-network-unavailable=false'], {}, 'flag --set-node-network-unavailable is not supported');
  });

  test('every one of them is recognised (never "not defined")', () => {
    const list = unsupportedFlags();
    for (const name of ['kube-subnet-mgr', 'kube-api-url', 'kube-annotation-prefix', 'kubeconfig-file', 'net-config-path', 'public-ipv6', 'set-node-network-unavailable']) {
      assert.ok(list.includes(name), name);
    }
    for (const name of list) {
      const messages = ['true', 'false', 'x'].map((v) => {
        try {
          parseFlags([`--${name}=${v}`], {});
          return 'accepted';
        } catch (e) {
          return (e as Error).message;
        }
      });
      assert.ok(
        messages.every((m) => !m.includes('not defined')),
        name,
      );
      assert.ok(messages.includes(`flag --${name} is not supported by flannel-ts yet`), `${name}: ${messages.join(' | ')}`);
    }
  });

  test('given their default value they change nothing and are accepted', () => {
    const o = run(['--kube-subnet-mgr=false', '--set-node-network-unavailable=true', '--kube-annotation-prefix', 'flannel.alpha.coreos.com']);
    assert.deepEqual(o.ignoredFlags, ['--kube-subnet-mgr', '--set-node-network-unavailable', '--kube-annotation-prefix']);
  });
});

describe('flags upstream units use: --iface-can-reach, --ip-masq-fully-random-disable, --ip-blackhole-route', () => {
  test('are parsed as flanneld does, from flags and the environment', () => {
    const o = run(['--iface-can-reach=198.18.0.1', '--ip-masq-fully-random-disable', '-ip-blackhole-route=true']);
    assert.equal(o.ifaceCanReach, '198.18.0.1');
    assert.equal(o.ipMasqFullyRandomDisable, true);
    assert.equal(o.ipBlackholeRoute, true);
    const e = run([], { FLANNELD_IFACE_CAN_REACH: '198.18.0.9', FLANNELD_IP_BLACKHOLE_ROUTE: 'true', FLANNELD_IP_MASQ_FULLY_RANDOM_DISABLE: '1' });
    assert.deepEqual([e.ifaceCanReach, e.ipBlackholeRoute, e.ipMasqFullyRandomDisable], ['198.18.0.9', true, true]);
  });
  test('--iface-can-reach must be an IPv4 address', () => {
    fails(['--iface-can-reach=eth0'], {}, /not an IPv4 address/);
  });
});

describe('--admin-socket', () => {
  test('defaults to <subnet-file>.sock, so daemons with separate subnet files never share one', () => {
    const o = run(['--subnet-file=/tmp/x/subnet-vx.env']);
    assert.equal(o.adminSocket, '/tmp/x/subnet-vx.env.sock');
    assert.equal(o.adminSocketGiven, false);
  });
  test('given, even empty (disabled), it is used as given', () => {
    assert.deepEqual([run(['--admin-socket=/tmp/a.sock']).adminSocket, run(['--admin-socket=/tmp/a.sock']).adminSocketGiven], ['/tmp/a.sock', true]);
    assert.equal(run(['--admin-socket=']).adminSocket, '');
  });
});

describe('unknown flags', () => {
  test("use Go's wording and point to --help", () => {
    const e = fails(['--foo'], {}, /^flag provided but not defined: -foo/, '--help');
    assert.equal(e.flag, 'foo');
    fails(['-foo=1'], {}, 'flag provided but not defined: -foo');
  });

  test('suggest a near miss', () => {
    fails(['--etcd-endpoint=http://a:2379'], {}, 'did you mean --etcd-endpoints?');
    fails(['--etcd_prefix=/a'], {}, 'did you mean --etcd-prefix?');
  });

  test('klog file-logging flags are not flanneld flags', () => {
    fails(['--log_dir=/var/log'], {}, 'flag provided but not defined: -log_dir', 'stderr');
  });

  test('the first problem is reported, in argument order', () => {
    fails(['--foo', '--kube-subnet-mgr'], {}, '-foo');
  });
});

describe('klog flags', () => {
  test('-v sets the verbosity (base 10, 32-bit)', () => {
    assert.equal(run(['-v', '3']).verbosity, 3);
    assert.equal(run(['--v=1']).verbosity, 1);
    fails(['-v=0x1'], {}, 'invalid value "0x1" for flag -v');
  });

  test('-vmodule and -log_backtrace_at are accepted, checked, and ignored', () => {
    const o = run(['-vmodule=main=2,etcd*=3', '-log_backtrace_at=main.go:10']);
    assert.deepEqual(o.ignoredFlags, ['--vmodule', '--log_backtrace_at']);
    fails(['-vmodule=main'], {}, '-vmodule', 'filename=N');
    fails(['-log_backtrace_at=main:10'], {}, '-log_backtrace_at', 'file.go:234');
  });

  test('-logtostderr, -alsologtostderr and friends are harmless no-ops', () => {
    const o = run(['-logtostderr', '--alsologtostderr=false', '-stderrthreshold=INFO', '-skip_headers']);
    assert.deepEqual(o.ignoredFlags, ['--logtostderr', '--alsologtostderr', '--stderrthreshold', '--skip_headers']);
    fails(['-logtostderr', 'false'], {}, 'unexpected argument "false"');
    // not read from the environment (flanneld does not have them)
    assert.deepEqual(run([], { FLANNELD_LOGTOSTDERR: 'bogus' }).ignoredFlags, []);
  });
});

describe('values', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flags-test-'));
    for (const n of ['ca.pem', 'cert.pem', 'key.pem']) fs.writeFileSync(path.join(dir, n), 'x');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('etcd endpoints: a comma list of http(s)://host:port', () => {
    assert.deepEqual(run(['--etcd-endpoints=http://198.18.0.1:2379, https://etcd.example:2379/,http://[fd00::1]:2379']).etcdEndpoints, [
      'http://198.18.0.1:2379',
      'https://etcd.example:2379',
      'http://[fd00::1]:2379',
    ]);
  });

  test('data-plane tuning: flags or FLANNELD_DATAPLANE_*, ranges checked', () => {
    const d = run([], {});
    assert.deepEqual([d.dataplaneNice, d.dataplaneSliceUs, d.dataplaneMlock, d.dataplaneSpinUs, d.dataplaneWarmupMs], [-10, 0, false, 0, 20]);
    const o = run(['--dataplane-nice=-5', '-dataplane-spin-us', '50', '--dataplane-timing', '--dataplane-slice-us=100', '--dataplane-mlock'], { FLANNELD_DATAPLANE_WARMUP_MS: '0' });
    assert.deepEqual([o.dataplaneNice, o.dataplaneSpinUs, o.dataplaneTiming, o.dataplaneWarmupMs, o.dataplaneSliceUs, o.dataplaneMlock], [-5, 50, true, 0, 100, true]);
    assert.equal(run([], { FLANNELD_DATAPLANE_SLICE_US: '3000' }).dataplaneSliceUs, 3000);
    fails(['--dataplane-slice-us=50'], {}, 'flag --dataplane-slice-us', "0 (the kernel's default) or 100 to 100000");
    fails(['--dataplane-nice=20'], {}, 'flag --dataplane-nice', '-20 to 19');
    fails(['--dataplane-warmup-ms=-1'], {}, 'flag --dataplane-warmup-ms', '0 to 60000');
    fails([], { FLANNELD_DATAPLANE_SPIN_US: 'fast' }, 'FLANNELD_DATAPLANE_SPIN_US');
  });

  test('bad etcd endpoints name the flag and say what is wrong', () => {
    fails(['--etcd-endpoints=198.18.0.1:2379'], {}, 'flag --etcd-endpoints', 'no scheme');
    fails(['--etcd-endpoints=http://198.18.0.1'], {}, 'flag --etcd-endpoints', 'no port');
    fails(['--etcd-endpoints=unix:///run/etcd.sock'], {}, 'flag --etcd-endpoints', 'http:// and https://');
    fails(['--etcd-endpoints=http://:2379'], {}, 'no host');
    fails(['--etcd-endpoints=http://a:2379,'], {}, 'empty entry');
    fails(['--etcd-endpoints=http://a:99999'], {}, 'port');
    fails(['--etcd-endpoints=http://user:pw@a:2379'], {}, '--etcd-username');
    fails(['--etcd-endpoints=http://a:2379/v3'], {}, 'path');
  });

  test('--public-ip must be IPv4', () => {
    assert.equal(run(['--public-ip=198.18.0.2']).publicIp, '198.18.0.2');
    fails(['--public-ip=198.18.0'], {}, 'invalid value "198.18.0" for flag --public-ip', 'not an IPv4 address');
    fails(['--public-ip=fd00::2'], {}, 'flag --public-ip', 'IPv6');
    fails(['--public-ip=0.0.0.0'], {}, 'flag --public-ip');
  });

  test('ints: non-integers and out-of-range values name the flag', () => {
    fails(['--healthz-port=http'], {}, 'invalid value "http" for flag -healthz-port', 'not an integer');
    fails(['--healthz-port', '70000'], {}, 'flag --healthz-port', '0 to 65535');
    fails(['--subnet-lease-renew-margin=0'], {}, 'flag --subnet-lease-renew-margin', '1 to 1439');
    fails(['--subnet-lease-renew-margin=1440'], {}, 'flag --subnet-lease-renew-margin');
    fails(['--iptables-resync=0'], {}, 'flag --iptables-resync');
    assert.equal(run(['--subnet-lease-renew-margin=1439']).subnetLeaseRenewMargin, 1439);
  });

  test('TLS files must exist and be readable', () => {
    const o = run([`--etcd-cafile=${dir}/ca.pem`, `--etcd-certfile=${dir}/cert.pem`, `--etcd-keyfile=${dir}/key.pem`]);
    assert.equal(o.etcdCafile, `${dir}/ca.pem`);
    assert.equal(o.etcdKeyfile, `${dir}/key.pem`);
    const e = fails([`--etcd-cafile=${dir}/missing.pem`], {}, 'flag --etcd-cafile', `${dir}/missing.pem`, 'does not exist');
    assert.equal(e.flag, 'etcd-cafile');
    fails([`--etcd-cafile=${dir}`], {}, 'flag --etcd-cafile', 'not a regular file');
    fails([], { FLANNELD_ETCD_KEYFILE: `${dir}/nope.pem` }, 'FLANNELD_ETCD_KEYFILE', 'does not exist');
    // A key without its certificate parses: the registry refuses the pair (registry.test.ts, badinput.test.ts).
    assert.equal(run([`--etcd-keyfile=${dir}/key.pem`]).etcdKeyfile, `${dir}/key.pem`);
  });

  test('--healthz-ip takes an address or host name', () => {
    assert.equal(run(['--healthz-ip=127.0.0.1']).healthzIp, '127.0.0.1');
    assert.equal(run(['--healthz-ip=::']).healthzIp, '::');
    fails(['--healthz-ip=not an ip'], {}, 'flag --healthz-ip');
  });

  test('redactOptions hides the etcd password', () => {
    assert.equal(redactOptions(run(['--etcd-password=s3cret'])).etcdPassword, '<redacted>');
  });
});

describe('--help and --version', () => {
  test('-h, -help and --help give the usage', () => {
    for (const h of ['-h', '-help', '--help', '--h', '-help=1']) {
      const r = parseFlags(['--ip-masq', h, '--whatever'], {});
      assert.equal(r.kind, 'help', h);
      assert.equal((r as { text: string }).text, usage());
    }
  });

  test("usage lists every flag like Go's PrintDefaults", () => {
    const u = usage();
    assert.match(u, /^Usage: flanneld \[OPTION\]\.\.\.\n/);
    assert.ok(u.includes('  -etcd-endpoints string\n    \ta comma-delimited list of etcd endpoints (default "http://127.0.0.1:4001,http://127.0.0.1:2379")\n'));
    assert.ok(u.includes('  -ip-masq\n    \tsetup IP masquerade rule'));
    assert.ok(u.includes('  -subnet-lease-renew-margin int\n'));
    assert.ok(u.includes('(default 60)'));
    assert.ok(u.includes('  -iptables-forward-rules\n    \tadd default accept rules to FORWARD chain in iptables (default true)\n'));
    assert.ok(u.includes('  -iface value\n'));
    assert.ok(u.includes('  -v value\n    \tnumber for the log level verbosity\n'));
    assert.match(u, /-kube-subnet-mgr\n.*\[not supported by flannel-ts yet\]/);
    assert.ok(u.includes('FLANNELD_ETCD_ENDPOINTS'));
    // sorted by name, as Go does
    const names = [...u.matchAll(/^ {2}-([a-z_-]+)/gm)].map((m) => m[1]);
    assert.deepEqual(names, [...names].sort());
    // flanneld's 31 flags plus flannel-ts's own: --admin-socket, the four offload switches, the six data-plane tunings
    assert.equal(names.length, 42);
    for (const n of [
      'admin-socket',
      'tun-offload',
      'tun-gro',
      'udp-gso',
      'udp-gro',
      'dataplane-warmup-ms',
      'dataplane-spin-us',
      'dataplane-nice',
      'dataplane-slice-us',
      'dataplane-mlock',
      'dataplane-timing',
    ])
      assert.ok(names.includes(n), n);
    assert.ok(u.includes('  -tun-offload\n    \tflannel-ts: read TCP super-packets from flannel0 (TSO)'));
    assert.match(u, /-udp-gro\n.*\(default true\)\n/);
  });

  test('offload switches: booleans, default on, from the command line or FLANNELD_*', () => {
    const o = run(['--tun-offload=false', '-udp-gso=0']);
    assert.deepEqual([o.tunOffload, o.tunGro, o.udpGso, o.udpGro], [false, true, false, true]);
    const e = run([], { FLANNELD_TUN_GRO: 'false', FLANNELD_UDP_GRO: 'F', FLANNELD_TUN_OFFLOAD: 'false' });
    assert.deepEqual([e.tunOffload, e.tunGro, e.udpGso, e.udpGro], [false, false, true, false]);
    // The command line wins over the environment.
    assert.equal(run(['--udp-gro'], { FLANNELD_UDP_GRO: 'false' }).udpGro, true);
    fails(['--udp-gso=maybe'], {}, '-udp-gso');
  });

  test('--version gives the version from package.json', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '../../../package.json'), 'utf8'));
    assert.equal(version(), pkg.version);
    for (const v of [['--version'], ['-version'], ['-version=true']]) {
      const r = parseFlags(v, {});
      assert.deepEqual(r, { kind: 'version', text: versionText() });
    }
    assert.match(versionText(), new RegExp(`^v${pkg.version.replace(/\./g, '\\.')} \\(flannel-ts\\)$`));
    assert.equal(parseFlags(['--version=false'], {}).kind, 'run');
  });

  test('--version comes before value checks and the environment, as in flanneld', () => {
    assert.equal(parseFlags(['--version', '--subnet-lease-renew-margin=0', '--kube-subnet-mgr'], { FLANNELD_HEALTHZ_PORT: 'abc' }).kind, 'version');
    // but a syntax error on the command line still comes first
    fails(['--version', '--healthz-port=abc'], {}, '-healthz-port');
  });
});
