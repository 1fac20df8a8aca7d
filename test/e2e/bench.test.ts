// `flannel-ts bench` end to end with tiny durations: it builds its lab, runs
// every backend through flanneld, writes a JSON document of the documented
// schema and an SVG chart, and leaves no namespace behind. Its numbers are
// not asserted (they depend on the machine), only their presence and shape.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../../src/lab/lab';
import { tryRun } from '../../src/lab/sh';
import { execStatus } from '../../src/util/exec';
import { spawn } from 'node:child_process';

const BIN = path.join(REPO_ROOT, 'bin/flannel-ts');

function runBench(args: string[], timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string; pid: number }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'bench', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, pid: child.pid! });
    });
  });
}

test('bench: bad options are clear errors, --help prints the options', async () => {
  const bad = await execStatus([process.execPath, BIN, 'bench', '--backends', 'udp,ipip']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /unknown backend "ipip" \(choose from udp, vxlan, host-gw\)/);
  const dur = await execStatus([process.execPath, BIN, 'bench', '--duration', 'soon']);
  assert.equal(dur.status, 1);
  assert.match(dur.stderr, /--duration needs a number/);
  const help = await execStatus([process.execPath, BIN, 'bench', '--help']);
  assert.equal(help.status, 0);
  for (const opt of ['--backends', '--duration', '--repeat', '--mtu', '--json', '--svg', '--control-plane', '--pings', '--sparse', '--no-load-latency', '--churn-seconds'])
    assert.ok(help.stdout.includes(opt), opt);
});

test('bench: a tiny run of every backend writes a table, JSON and SVG, and cleans up', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-bench-'));
  const json = path.join(dir, 'bench.json');
  const svg = path.join(dir, 'bench.svg');
  try {
    const r = await runBench(
      [
        ...['--duration', '1', '--repeat', '1', '--json', json, '--svg', svg, '--control-plane', '--cp-leases', '20', '--cp-burst', '100', '--cp-memory-leases', '300'],
        // The latency phases, short: 100 dense pings, 2 sparse, 1 s of churn with 20 leases (load latency runs with --duration).
        ...['--pings', '100', '--sparse', '2', '--churn-seconds', '1', '--churn-leases', '20'],
      ],
      240_000,
    );
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    // The table names every metric and backend; the progress line went to stderr.
    for (const s of [
      'TCP, 1 stream',
      'TCP, 4 streams',
      'UDP 64 B received',
      'ping RTT p50',
      'ping RTT p99',
      'daemon CPU per GB',
      'machine CPU per GB',
      'ping RTT at 1/s',
      'under 1 Gbit/s TCP',
      'under unthrottled TCP',
      'during lease churn',
      'lease → forwarded p50',
    ]) {
      assert.ok(r.stdout.includes(s), `table has "${s}"\n${r.stdout}`);
    }
    assert.match(r.stderr, /round 1\/1, host-gw/);

    const doc = JSON.parse(fs.readFileSync(json, 'utf8'));
    assert.equal(doc.schema, 'flannel-ts-bench/1');
    assert.deepEqual(doc.options.backends, ['udp', 'vxlan', 'host-gw']);
    assert.equal(doc.options.duration, 1);
    assert.deepEqual(
      doc.metrics.map((m: { id: string }) => m.id),
      [...['tcp1', 'tcp4', 'udp64', 'rttP50', 'rttP99', 'cpuPerGB', 'machineCpuPerGB'], ...['sparseAvg', 'loadP50', 'loadP99', 'satP50', 'satP99', 'churnP50', 'churnP99']],
    );
    for (const b of ['udp', 'vxlan', 'host-gw']) {
      const res = doc.backends[b];
      assert.ok(res, b);
      for (const m of ['tcp1', 'tcp4', 'udp64', 'rttP50', 'rttP99', 'sparseAvg', 'loadP99', 'satP99', 'churnP99']) {
        const x = res.metrics[m];
        assert.equal(x.runs.length, 1, `${b} ${m}`);
        assert.equal(typeof x.median, 'number', `${b} ${m} median is a number`);
        assert.ok(x.min <= x.median && x.median <= x.max, `${b} ${m} min ≤ median ≤ max`);
        assert.equal(typeof x.ratioToVxlan, 'number', `${b} ${m} ratio to vxlan`);
      }
      assert.ok(res.metrics.tcp1.median > 0, `${b} moved TCP`);
      // The whole-machine figure is measured for every backend, kernel ones
      // included (busy minus an idle baseline: on a machine shared with other
      // work it can come out 0, so only its presence is asserted here).
      const m = res.metrics.machineCpuPerGB.median;
      assert.ok(Number.isFinite(m) && m >= 0, `${b} machine CPU per GB is a number (${m})`);
      assert.equal(typeof res.podMtu, 'number');
      const cp = doc.controlPlane[b];
      assert.ok(cp, `control plane ${b}`);
      assert.equal(cp.latencyMs.leases, 20);
      assert.equal(typeof cp.latencyMs.p50, 'number');
      assert.equal(cp.burst.leases, 100);
      assert.equal(cp.memory.leases, 300);
      assert.ok(cp.memory.rssMiB > 0);
    }
    assert.deepEqual([doc.backends.udp.podMtu, doc.backends.vxlan.podMtu, doc.backends['host-gw'].podMtu], [1472, 1450, 1500]);

    const chart = fs.readFileSync(svg, 'utf8');
    assert.match(chart, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*viewBox="0 0 \d+ \d+"/);
    assert.match(chart, /<\/svg>\n$/);
    // A bar (with its tooltip) per backend per metric, plus the control-plane panels.
    const bars = [...chart.matchAll(/<rect [^>]*><title>(udp|vxlan|host-gw): /g)].length;
    assert.ok(bars >= 3 * 5 + 3 * 3, `bars in the chart: ${bars}`);
    assert.ok(!/NaN|undefined/.test(chart), 'no NaN/undefined in the SVG');
    // Well-formed enough: every element opened is closed.
    const opened = (chart.match(/<(g|svg|text|rect|line|title)(\s[^>]*)?>/g) ?? []).filter((t) => !t.endsWith('/>')).length;
    const closed = (chart.match(/<\/(g|svg|text|rect|line|title)>/g) ?? []).length;
    assert.equal(opened, closed);

    // The bench's lab is gone: no namespace with its prefix remains.
    const prefix = `ft${r.pid.toString(36)}`;
    const left = tryRun(['ip', 'netns', 'list'])
      .stdout.split('\n')
      .filter((l) => l.startsWith(prefix));
    assert.deepEqual(left, []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
