// `flannel-ts mk-docker-opts` against flannel's own test cases for
// mk-docker-opts.sh (dist/mk_docker_opts_test.go) and the seed's
// /run/flannel/docker; then the shipped systemd unit and env file, expanded
// as systemd expands them, parsed by flanneld's flag parser.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { conflictingRoutes, generate, parseArgs, run, UsageError } from '../../src/cli/mk-docker-opts';
import { type FlanneldOptions, parseFlags } from '../../src/cli/flags';
import { REPO_ROOT } from '../../src/lab/lab';

// flannel's dist/sample_subnet.env
const SAMPLE = 'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.74.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n';

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'flannel-ts-mkdo-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs the command with a clean environment and no routes; returns the written file and exit code. */
async function mk(flags: string[], subnetEnv = SAMPLE, env: NodeJS.ProcessEnv = {}, routes = ''): Promise<{ code: number; text: string }> {
  const input = path.join(dir, `subnet-${Math.random()}.env`);
  const output = path.join(dir, `docker-${Math.random()}.env`);
  if (subnetEnv !== '') fs.writeFileSync(input, subnetEnv);
  const code = await run(['-f', input, '-d', output, ...flags], { env, routes: () => routes });
  return { code, text: fs.existsSync(output) ? fs.readFileSync(output, 'utf8') : '' };
}

describe("mk-docker-opts: flannel's own test cases", () => {
  const cases: [string, string[], string][] = [
    [
      'default (individual + combined)',
      [],
      'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1472"\nDOCKER_OPTS=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n',
    ],
    ['individual only (-i)', ['-i'], 'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1472"\n'],
    ['combined only (-c)', ['-c'], 'DOCKER_OPTS=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n'],
    [
      'custom key (-k CUSTOM_KEY)',
      ['-k', 'CUSTOM_KEY'],
      'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1472"\nCUSTOM_KEY=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n',
    ],
    ['strip ip-masq (-m)', ['-m'], 'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_MTU="--mtu=1472"\nDOCKER_OPTS=" --bip=10.1.74.1/24 --mtu=1472"\n'],
  ];
  for (const [name, flags, want] of cases) {
    test(name, async () => {
      const r = await mk(flags);
      assert.equal(r.code, 0);
      assert.equal(r.text, want);
    });
  }
});

describe('mk-docker-opts: the seed and the script’s other behaviour', () => {
  test("the seed's /run/flannel/docker (-k DOCKER_NETWORK_OPTIONS)", async () => {
    const r = await mk(['-k', 'DOCKER_NETWORK_OPTIONS'], 'FLANNEL_NETWORK=10.10.0.0/16\nFLANNEL_SUBNET=10.10.81.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n');
    assert.equal(
      r.text,
      'DOCKER_OPT_BIP="--bip=10.10.81.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1472"\nDOCKER_NETWORK_OPTIONS=" --bip=10.10.81.1/24 --ip-masq=true --mtu=1472"\n',
    );
  });

  test('flanneld masquerading means docker must not', async () => {
    const r = await mk(['-i'], SAMPLE.replace('FLANNEL_IPMASQ=false', 'FLANNEL_IPMASQ=true'));
    assert.match(r.text, /^DOCKER_OPT_IPMASQ="--ip-masq=false"$/m);
  });

  test('an invalid FLANNEL_IPMASQ fails', async () => {
    const r = await mk([], SAMPLE.replace('FLANNEL_IPMASQ=false', 'FLANNEL_IPMASQ=yes'));
    assert.equal(r.code, 1);
    assert.throws(() => generate(parseArgs([]), { FLANNEL_IPMASQ: 'yes' }), /Invalid value of FLANNEL_IPMASQ: yes/);
  });

  test('the environment: existing DOCKER_OPT_* and KEY are kept, the file wins over FLANNEL_*', async () => {
    const r = await mk([], SAMPLE, { DOCKER_OPT_DNS: '--dns=10.1.0.10', DOCKER_OPTS: '-H unix:///x.sock', FLANNEL_MTU: '9000' });
    assert.equal(
      r.text,
      'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_DNS="--dns=10.1.0.10"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1472"\nDOCKER_OPTS="-H unix:///x.sock  --bip=10.1.74.1/24 --dns=10.1.0.10 --ip-masq=true --mtu=1472"\n',
    );
  });

  test('no subnet file: an empty combined variable, and success (as the script)', async () => {
    const r = await mk([], '');
    assert.equal(r.code, 0);
    assert.equal(r.text, 'DOCKER_OPTS=""\n');
  });

  test('a route to the subnet via a gateway fails after writing the file', async () => {
    const r = await mk([], SAMPLE, {}, 'default via 192.168.1.1 dev eth0\n10.1.74.0/24 via 192.168.1.7 dev eth0\n');
    assert.equal(r.code, 1);
    assert.match(r.text, /DOCKER_OPTS=/);
    assert.deepEqual(conflictingRoutes('10.1.74.1/24', '10.1.74.0/24 dev cni0 proto kernel scope link src 10.1.74.1\n'), []);
  });

  test("getopts syntax: clustered flags, attached values, '--', errors", () => {
    const o = parseArgs(['-icm', '-kKEY', '-f/x/s.env', '--', '-d', 'ignored']);
    assert.deepEqual([o.indiv, o.combined, o.ipMasq, o.combinedKey, o.flannelEnv, o.dockerEnv], [true, true, false, 'KEY', '/x/s.env', '/run/docker_opts.env']);
    const d = parseArgs([]);
    assert.deepEqual([d.flannelEnv, d.dockerEnv, d.combinedKey, d.indiv, d.combined, d.ipMasq], ['/run/flannel/subnet.env', '/run/docker_opts.env', 'DOCKER_OPTS', true, true, true]);
    assert.throws(
      () => parseArgs(['-x']),
      (e: unknown) => e instanceof UsageError && /Illegal option -x/.test(e.message),
    );
    assert.throws(() => parseArgs(['-f']), /No arg for -f option/);
    assert.throws(() => parseArgs(['-h']), UsageError);
    assert.throws(() => parseArgs(['-w', 'soon']), UsageError);
  });

  test('-w waits for flanneld to write the subnet file', async () => {
    const input = path.join(dir, 'late.env');
    const output = path.join(dir, 'late-docker.env');
    setTimeout(() => fs.writeFileSync(input, SAMPLE), 400);
    const t0 = Date.now();
    const code = await run(['-w', '5', '-f', input, '-d', output], { env: {}, routes: () => '' });
    assert.equal(code, 0);
    assert.ok(Date.now() - t0 >= 350);
    assert.match(fs.readFileSync(output, 'utf8'), /--bip=10\.1\.74\.1\/24/);
    assert.equal(await run(['-w', '0.3', '-f', path.join(dir, 'never.env'), '-d', output], { env: {}, routes: () => '' }), 1);
  });

  test('-w under systemd: a file older than $MAINPID does not count', async () => {
    const input = path.join(dir, 'stale.env');
    const output = path.join(dir, 'stale-docker.env');
    fs.writeFileSync(input, SAMPLE);
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(input, old, old);
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)']);
    try {
      await new Promise((r) => setTimeout(r, 100));
      const env = { MAINPID: String(child.pid) };
      assert.equal(await run(['-w', '0.5', '-f', input, '-d', output], { env, routes: () => '' }), 1, 'stale file refused');
      fs.writeFileSync(input, SAMPLE); // flanneld writes this start's file
      assert.equal(await run(['-w', '2', '-f', input, '-d', output], { env, routes: () => '' }), 0);
    } finally {
      child.kill();
    }
  });
});

/** Reads an EnvironmentFile= as systemd does for these simple KEY="value" lines. */
function readEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m || line.trim().startsWith('#')) continue;
    env[m[1]] = m[2].replace(/^"(.*)"$/, '$1');
  }
  return env;
}

/** systemd's Exec line expansion: ${VAR} inside a word, $VAR alone splits into words (nothing if unset). */
function expandExec(line: string, env: Record<string, string>): string[] {
  const words: string[] = [];
  for (const w of line.trim().split(/\s+/)) {
    const whole = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(w);
    if (whole) {
      words.push(...(env[whole[1]] ?? '').split(/\s+/).filter(Boolean));
      continue;
    }
    words.push(w.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, k: string) => env[k] ?? ''));
  }
  return words;
}

describe('contrib: the systemd unit and /etc/sysconfig/flanneld', () => {
  const unit = fs.readFileSync(path.join(REPO_ROOT, 'contrib/systemd/flanneld.service'), 'utf8');
  const sysconfig = fs.readFileSync(path.join(REPO_ROOT, 'contrib/sysconfig/flanneld'), 'utf8');
  const directive = (name: string) =>
    unit
      .split('\n')
      .filter((l) => l.startsWith(`${name}=`))
      .map((l) => l.slice(name.length + 1));
  const flags = (env: Record<string, string>): FlanneldOptions => {
    const argv = expandExec(directive('ExecStart')[0], env);
    assert.match(argv[0], /\/flanneld$/);
    const r = parseFlags(argv.slice(1), {});
    assert.equal(r.kind, 'run');
    return (r as { options: FlanneldOptions }).options;
  };

  test('the env file is laid out like the seed (FLANNEL_ETCD_ENDPOINTS, FLANNEL_ETCD_PREFIX, FLANNEL_OPTIONS)', () => {
    const env = readEnvFile(sysconfig);
    assert.deepEqual(Object.keys(env).sort(), ['FLANNEL_ETCD_ENDPOINTS', 'FLANNEL_ETCD_PREFIX']);
    assert.match(sysconfig, /^#FLANNEL_OPTIONS=""$/m);
    assert.deepEqual(directive('EnvironmentFile'), ['/etc/sysconfig/flanneld', '-/etc/sysconfig/docker-network']);
  });

  test('ExecStart expands the env file into flanneld flags', () => {
    const o = flags(readEnvFile(sysconfig));
    assert.deepEqual(o.etcdEndpoints, ['http://127.0.0.1:2379']);
    assert.equal(o.etcdPrefix, '/coreos.com/network');
    assert.equal(o.ipMasq, false);
  });

  test("the seed's settings plus FLANNEL_OPTIONS, word by word", () => {
    const o = flags({ FLANNEL_ETCD_ENDPOINTS: 'http://etcd:2379', FLANNEL_ETCD_PREFIX: '/atomic.io/network', FLANNEL_OPTIONS: '--iface=eth1  -ip-masq --healthz-port=8471' });
    assert.deepEqual(o.etcdEndpoints, ['http://etcd:2379']);
    assert.equal(o.etcdPrefix, '/atomic.io/network');
    assert.deepEqual(o.iface, ['eth1']);
    assert.equal(o.ipMasq, true);
    assert.equal(o.healthzPort, 8471);
  });

  test("Type=notify: ExecStartPost writes the seed's docker options file after READY=1 (this start's subnet.env)", () => {
    const post = expandExec(directive('ExecStartPost')[0], {});
    assert.match(post[0], /\/flannel-ts$/);
    assert.equal(post[1], 'mk-docker-opts');
    const o = parseArgs(post.slice(2));
    assert.equal(o.combinedKey, 'DOCKER_NETWORK_OPTIONS');
    assert.equal(o.dockerEnv, '/run/flannel/docker');
    assert.equal(o.flannelEnv, '/run/flannel/subnet.env');
    assert.deepEqual(directive('Type'), ['notify'], 'flanneld sends READY=1 (src/daemon/notify.ts)');
    assert.equal(o.waitSeconds, 0, "no -w: after READY=1 the file is this start's, and a quick restart does not rewrite it");
    assert.ok(Number(directive('TimeoutStartSec')[0]) >= 60, 'a cold start may wait for etcd');
    assert.match(unit, /^Before=docker\.service$/m);
    assert.match(unit, /^RequiredBy=docker\.service$/m);
  });
});
