// The README's first command: `flannel-ts demo` runs to completion, each
// step's output carries the real facts of the cluster it built, and nothing
// is left behind — after a normal run, after --keep + --down, and after Ctrl-C.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT, destroyFromState, isRecordedProcessAlive, readLabState } from '../../src/lab/lab';
import { run, waitFor } from '../../src/lab/sh';
import { execStatus } from '../../src/util/exec';

const FLANNEL_TS = path.join(REPO_ROOT, 'bin/flannel-ts');
const cli = (args: string[], timeoutMs = 60_000) => execStatus([process.execPath, FLANNEL_TS, ...args], { timeoutMs });
const namespaces = () =>
  new Set(
    run(['ip', 'netns', 'list'])
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter(Boolean),
  );
/**
 * The namespaces that appeared since `before` and belong to the demo whose
 * output is `out` (other suites and the bench may build labs meanwhile).
 */
const newNamespaces = (before: Set<string>, out: string) => [...namespaces()].filter((n) => !before.has(n) && n.startsWith(`${prefixOf(out)}-`));
const prefixOf = (out: string) => {
  const m = /\b(ft[a-z0-9]+)-</.exec(out);
  assert.ok(m, 'the demo names its namespace prefix');
  return m![1];
};

/** Live (non-zombie) processes whose command line mentions `s` (the lab's directory). */
function processesMentioning(s: string): number[] {
  const found: number[] = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(s)) found.push(Number(pid));
    } catch {
      /* exited meanwhile */
    }
  }
  return found.filter((p) => p !== process.pid);
}

const labDirOf = (out: string) => {
  const m = /(\/\S+)\/etcd-data/.exec(out);
  assert.ok(m, 'the demo names its data directory');
  return m![1];
};

interface HostRow {
  name: string;
  ip: string;
  subnet: string; // 198.19.x.0/24
  pods: { name: string; ip: string }[];
}

/** The hosts table of step 2. */
function hostsTable(out: string): HostRow[] {
  const rows = [...out.matchAll(/^ {2}(h[123]) +(198\.18\.0\.\d+) +(198\.19\.\d+\.0\/24) +(h[123]-pod1) (198\.19\.[\d.]+), (h[123]-pod2) (198\.19\.[\d.]+)$/gm)];
  return rows.map((m) => ({
    name: m[1],
    ip: m[2],
    subnet: m[3],
    pods: [
      { name: m[4], ip: m[5] },
      { name: m[6], ip: m[7] },
    ],
  }));
}

/** The lines of the decoded header table titled `title` (up to the next blank line). */
function headerTable(out: string, title: string): string {
  const i = out.indexOf(`\n  ${title}`);
  assert.ok(i >= 0, `a decoded "${title}" table`);
  return out.slice(i + 1, out.indexOf('\n\n', i + 1));
}

const field = (table: string, name: string) => new RegExp(`^ {4}${name} {2,}(\\S+)`, 'm').exec(table)?.[1];

/** Checks every step's facts against each other and against the cluster's own numbers. */
function checkFacts(out: string, labels: { outer: string; udp: string; inner: string; icmp: string }): HostRow[] {
  // Step 2: three hosts, each with a /24 and two pods at .2 and .3 of it.
  const hosts = hostsTable(out);
  assert.deepEqual(
    hosts.map((h) => h.name),
    ['h1', 'h2', 'h3'],
    out,
  );
  assert.equal(new Set(hosts.map((h) => h.subnet)).size, 3, 'three different subnets');
  for (const h of hosts) {
    const base = h.subnet.replace(/\.0\/24$/, '');
    assert.deepEqual(
      h.pods.map((p) => p.ip),
      [`${base}.2`, `${base}.3`],
    );
    assert.equal(h.ip, `198.18.0.${h.name[1]}`);
  }
  const [h1, , h3] = hosts;
  const src = h1.pods[0];
  const dst = h3.pods[1];

  // Step 3: the keys etcdctl printed are exactly the hosts' subnets; h3's value names h3.
  const keys = [...out.matchAll(/^ {4}\/coreos\.com\/network\/subnets\/(198\.19\.\d+\.0-24)$/gm)].map((m) => m[1]);
  const listed = new Set(keys);
  assert.deepEqual([...listed].sort(), hosts.map((h) => h.subnet.replace('/', '-')).sort(), 'lease keys = hosts subnets');
  assert.match(out, new RegExp(`/coreos\\.com/network/subnets/${h3.subnet.replace('/', '-').replace(/\./g, '\\.')}\\n {4}\\{"PublicIP":"198\\.18\\.0\\.3","PublicIPv6":null,"BackendType":"udp"\\}`));
  assert.match(out, /lease [0-9a-f]+ granted with TTL\(86400s\)/);
  assert.match(out, /etcdctl set KEY VALUE +etcdctl put KEY VALUE/);
  assert.match(out, /etcdctl ls \/coreos\.com\/network\/subnets +etcdctl get \/coreos\.com\/network\/subnets --prefix --keys-only/);

  // Step 4: flannel0 holds the subnet's network address /32, cni0 the first address; the routes.
  const net = (h: HostRow) => h.subnet.replace('/24', '');
  assert.match(out, new RegExp(`inet ${net(h1).replace(/\./g, '\\.')}/32 scope global flannel0`));
  for (const h of hosts.slice(1)) {
    assert.match(out, new RegExp(`flannel0 +UNKNOWN +${net(h).replace(/\./g, '\\.')}/32`));
    assert.match(out, new RegExp(`cni0 +UP +${net(h).replace(/\.0$/, '.1').replace(/\./g, '\\.')}/24`));
  }
  assert.equal(out.match(/^ {4}198\.19\.0\.0\/16 dev flannel0$/gm)?.length, 3, 'each host routes the Network to flannel0');
  for (const h of hosts) assert.match(out, new RegExp(`^ {4}${h.subnet.replace(/\./g, '\\.')} dev cni0 proto kernel`, 'm'));

  // Step 5: the ping and each hop's decision.
  assert.match(out, /3 packets transmitted, 3 received/);
  const esc = (s: string) => s.replace(/\./g, '\\.');
  assert.match(out, new RegExp(`${esc(dst.ip)} via ${esc(net(h1).replace(/\.0$/, '.1'))} dev eth0 src ${esc(src.ip)}`), 'pod → gateway cni0');
  assert.match(out, new RegExp(`${esc(dst.ip)} from ${esc(src.ip)} dev flannel0\\s+cache iif cni0`), 'h1 routes to flannel0');
  assert.match(out, new RegExp(`${esc(dst.ip)} from ${esc(src.ip)} dev cni0\\s+cache iif flannel0`), 'h3 routes to cni0');
  assert.match(out, new RegExp(`"${esc(h3.subnet)} -> 198\\.18\\.0\\.3:8285"`), "h1's lease table");
  assert.match(out, /"direction": "tx",\n\s+"decision": "forwarded"/, 'trace on h1: forwarded');
  assert.match(out, /"peer": \{"subnet":"[\d./]+","publicIp":"198\.18\.0\.3"\}/, 'trace on h1: the peer chosen');
  assert.match(out, /"direction": "rx",\n\s+"decision": "forwarded"/, 'trace on h3: forwarded');

  // The captured datagram, decoded from the pcap.
  const outer = headerTable(out, labels.outer);
  assert.equal(field(outer, 'Protocol'), '17');
  assert.equal(field(outer, 'Source'), '198.18.0.1');
  assert.equal(field(outer, 'Destination'), '198.18.0.3');
  const udp = headerTable(out, labels.udp);
  assert.equal(field(udp, 'Destination Port'), '8285', udp);
  assert.equal(field(udp, 'Source Port'), '8285');
  const inner = headerTable(out, labels.inner);
  assert.equal(field(inner, 'Source'), src.ip, 'inner source: the pinging pod');
  assert.equal(field(inner, 'Destination'), dst.ip, 'inner destination: the pod pinged');
  assert.equal(field(inner, 'Protocol'), '1');
  assert.equal(Number(field(udp, 'Length')), 8 + Number(field(inner, 'Total Length')), 'the UDP payload is the whole inner packet');
  assert.match(field(outer, 'Header Checksum') ?? '', /^0x[0-9a-f]{4}$/);
  assert.equal(field(headerTable(out, labels.icmp), 'Type'), '8');
  // The hexdump marks each region, and its bytes agree with the decoded fields.
  assert.match(out, new RegExp(`-- ${labels.outer}.*\\n.* 45 00 `));
  assert.match(out, new RegExp(`-- ${labels.udp}.*\\n[0-9a-f]*.*20 5d 20 5d`), 'port 8285 = 0x205d in the UDP region');
  assert.match(out, new RegExp(`-- ${labels.inner}.*\\n.* 45 00 `));

  // Step 6: udp against vxlan, with numbers.
  assert.match(out, /^ {2}udp \(flannel-ts\) .* [\d.]+ ms +[\d.]+ [MG]bit\/s$/m);
  assert.match(out, /^ {2}vxlan \((flannel-ts|by hand)\) .* [\d.]+ ms +[\d.]+ [MG]bit\/s$/m);
  return hosts;
}

describe('flannel-ts demo', () => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'flannel-ts-demo-test-'));
  const state = path.join(stateDir, 'state.json');
  after(async () => {
    if (fs.existsSync(state)) await destroyFromState(state); // a failed test must not leave a cluster up
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  test("--plain runs to completion, shows each step's real facts and leaves nothing behind", async () => {
    const before = namespaces();
    const r = await cli(['demo', '--plain'], 90_000);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts an ANSI colour sequence.
    assert.doesNotMatch(r.stdout, /\x1b\[|\r/, 'no colour and no progress line with --plain');
    checkFacts(r.stdout, { outer: 'outer IPv4 header', udp: 'UDP header', inner: 'inner IPv4 header', icmp: 'ICMP header' });
    assert.match(r.stdout, /== 7\. Done\n {2}✓ removed 13 namespaces/);
    assert.deepEqual(newNamespaces(before, r.stdout), [], 'no namespace left behind');
    const dir = labDirOf(r.stdout);
    assert.equal(fs.existsSync(dir), false, 'the lab directory is removed');
    assert.deepEqual(processesMentioning(dir), [], 'no process left behind');
  });

  test('--lang zh --keep: Chinese narration, the cluster outlives the demo, shell steps in, --down removes it', async () => {
    const before = namespaces();
    // No --plain: stdout is a pipe, so colour and the progress line are off by themselves.
    const r = await cli(['demo', '--lang', 'zh', '--keep', '--state', state], 90_000);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts an ANSI colour sequence.
    assert.doesNotMatch(r.stdout, /\x1b\[|\r/, 'colour off when stdout is not a terminal');
    for (const heading of ['== 1. etcd：flannel 保存网络配置和租约的地方', '== 3. etcd 里的租约', '逐跳跟踪', '-- 5.5 底层网络上', '完整路径', '== 7. 集群继续运行（--keep）']) {
      assert.ok(r.stdout.includes(heading), `zh heading: ${heading}`);
    }
    const hosts = checkFacts(r.stdout, { outer: '外层 IPv4 头', udp: 'UDP 头', inner: '内层 IPv4 头', icmp: 'ICMP 头' });

    // The state file records what runs; it is still running after the demo exited.
    const s = readLabState(state);
    const flanneld = s.processes.filter((p) => p.argv.some((a) => a.endsWith('bin/flanneld')));
    assert.equal(s.processes.filter((p) => p.argv[0] === 'etcd').length, 1, 'etcd is recorded');
    assert.ok(flanneld.length === 3 || flanneld.length === 5, 'three flanneld (udp), and two (vxlan) unless it fell back to flannel.1 by hand');
    for (const p of s.processes) assert.ok(isRecordedProcessAlive(p), `pid ${p.pid} (${p.argv[0]}) outlives the demo`);
    assert.deepEqual(newNamespaces(before, r.stdout).sort(), [...s.namespaces].sort());

    // shell: a command in h1's namespace.
    const sh = await cli(['shell', '--state', state, 'h1', '--', 'ip', '-4', 'addr', 'show', 'flannel0']);
    assert.equal(sh.status, 0, sh.stderr);
    assert.match(sh.stdout, new RegExp(`inet ${hosts[0].subnet.replace('/24', '').replace(/\./g, '\\.')}/32 scope global flannel0`));
    // etcd's actual keys are the ones the demo printed.
    const keys = await cli(['shell', '--state', state, 'etcd', '--', 'etcdctl', 'get', '/coreos.com/network/subnets', '--prefix', '--keys-only']);
    assert.equal(keys.status, 0, keys.stderr);
    assert.deepEqual(keys.stdout.split('\n').filter(Boolean).sort(), hosts.map((h) => `/coreos.com/network/subnets/${h.subnet.replace('/', '-')}`).sort());
    // The overlay still forwards with the demo gone, and trace finds h1's daemon without flags.
    const ping = await cli(['shell', '--state', state, 'h1-pod1', '--', 'ping', '-c', '1', '-W', '2', hosts[2].pods[1].ip]);
    assert.match(ping.stdout, /1 received/, ping.stdout + ping.stderr);
    const leases = await cli(['shell', '--state', state, 'h1', '--', 'flannel-ts', 'trace', '--leases']);
    assert.match(leases.stdout, /"backend":"udp"/, leases.stderr);
    // The exit status of the command is the shell's.
    assert.equal((await cli(['shell', '--state', state, 'h2', '--', 'sh', '-c', 'exit 7'])).status, 7);
    const unknown = await cli(['shell', '--state', state, 'h9']);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /no "h9" in the kept demo; one of: etcd, h1, h1-pod1/);
    // One kept demo at a time.
    const again = await cli(['demo', '--keep', '--plain', '--state', state]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /a kept demo is still running/);

    const down = await cli(['demo', '--down', '--state', state]);
    assert.equal(down.status, 0, down.stderr);
    assert.match(down.stdout, new RegExp(`stopped ${s.processes.length} processes, removed ${s.namespaces.length} namespaces`));
    assert.deepEqual(newNamespaces(before, r.stdout), [], 'no namespace left behind');
    for (const p of s.processes) assert.equal(isRecordedProcessAlive(p), false, `pid ${p.pid} (${p.argv[0]}) is gone`);
    assert.equal(fs.existsSync(state), false, 'the state file is removed');
    assert.equal(fs.existsSync(s.dir), false, 'the lab directory is removed');
    assert.deepEqual(processesMentioning(s.dir), []);
    // Idempotent.
    const twice = await cli(['demo', '--down', '--state', state]);
    assert.equal(twice.status, 0);
    assert.match(twice.stdout, /nothing to tear down/);
    const noState = await cli(['shell', '--state', state, 'h1']);
    assert.equal(noState.status, 1);
    assert.match(noState.stderr, /no kept demo/);
  });

  test('Ctrl-C mid-run removes everything, also with --keep (daemons in their own session)', async () => {
    const before = namespaces();
    const child = spawn(process.execPath, [FLANNEL_TS, 'demo', '--plain', '--keep', '--state', state], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    let code: number | null | undefined;
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r((code = c))));
    await waitFor('flanneld up in the demo', () => out.includes('flanneld is up on') || code !== undefined, 60_000).catch((e: Error) => {
      child.kill('SIGINT');
      throw new Error(`${e.message}\n${out}`);
    });
    assert.equal(code, undefined, `the demo ended early:\n${out}`);
    const dir = labDirOf(out);
    assert.ok(processesMentioning(dir).length >= 4, 'etcd and flanneld are running');
    child.kill('SIGINT');
    assert.equal(await exited, 130, out);
    assert.match(out, /interrupted \(SIGINT\): removing the cluster/);
    assert.deepEqual(newNamespaces(before, out), [], 'no namespace left behind');
    assert.deepEqual(processesMentioning(dir), [], 'no process left behind');
    assert.equal(fs.existsSync(dir), false);
    assert.equal(fs.existsSync(state), false, 'an interrupted --keep records nothing');
  });

  test('bad options are refused before anything is built', async () => {
    const r = await cli(['demo', '--lang', 'fr']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--lang fr: use en or zh/);
    const k = await cli(['demo', '--keep', '--down']);
    assert.equal(k.status, 1);
    const h = await cli(['demo', '--help']);
    assert.equal(h.status, 0);
    assert.match(h.stdout, /--keep/);
  });
});
