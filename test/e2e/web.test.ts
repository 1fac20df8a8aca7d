// `flannel-ts demo --web` in a real browser: Debian's chromium, headless,
// driven by puppeteer-core, against a live demo cluster. The page must draw
// what etcd holds (and follow a lease deleted during the test), show the
// captured datagram's real addresses and ports (checked against tcpdump's
// own reading of the same pcap), speak Chinese with --lang zh, refuse
// requests without the token or from another origin, and Ctrl-C (SIGTERM)
// must leave nothing behind. A screenshot is kept in test-artifacts/.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { REPO_ROOT } from '../../src/lab/lab';
import { run, waitFor } from '../../src/lab/sh';
import { execStatus } from '../../src/util/exec';
import { launchChromium } from '../lib/browser';

// What the page.evaluate callbacks use of the browser's globals: they run in
// the page, while this file compiles for node (no DOM lib).
interface El {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  getAttribute(name: string): string | null;
  querySelector(sel: string): El | null;
}
declare const document: { body: El; querySelector(sel: string): El | null; querySelectorAll(sel: string): Iterable<El>; getElementById(id: string): El | null };
declare const location: { hash: string };

const FLANNEL_TS = path.join(REPO_ROOT, 'bin/flannel-ts');
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const ETCD = 'http://198.18.0.250:2379';
const PREFIX = '/coreos.com/network';

let child: ChildProcess | undefined;
let out = '';
let url = '';
let prefix = '';
let browser: Browser | undefined;

const namespaces = (p: string) =>
  run(['ip', 'netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(`${p}-`));

/** The leases as etcd holds them (read here, in etcd's namespace: not through the page or its server). */
async function etcdLeases(): Promise<Map<string, string>> {
  const r = await execStatus(['ip', 'netns', 'exec', `${prefix}-etcd`, 'env', 'ETCDCTL_API=3', 'etcdctl', `--endpoints=${ETCD}`, 'get', `${PREFIX}/subnets`, '--prefix']);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n').filter(Boolean);
  const m = new Map<string, string>(); // public IP -> subnet
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const subnet = /subnets\/([\d.]+)-(\d+)$/.exec(lines[i])!;
    m.set(JSON.parse(lines[i + 1]).PublicIP, `${subnet[1]}/${subnet[2]}`);
  }
  return m;
}

/** What the page draws: host → its lease subnet (empty when it shows none), and the leases in etcd's box. */
async function drawn(page: Page): Promise<{ hosts: Record<string, { ip: string; lease: string }>; etcd: Record<string, string> }> {
  return page.evaluate(() => {
    const hosts: Record<string, { ip: string; lease: string }> = {};
    for (const g of document.querySelectorAll('#topo g.host')) hosts[g.dataset.host!] = { ip: g.dataset.ip!, lease: g.dataset.lease ?? '' };
    const etcd: Record<string, string> = {};
    for (const t of document.querySelectorAll('#topo text.lease.udp')) etcd[t.dataset.publicIp!] = t.dataset.lease!;
    return { hosts, etcd };
  });
}

/** The page equals etcd: every host's drawn lease is etcd's lease for its underlay address. */
async function pageMatchesEtcd(page: Page): Promise<boolean> {
  const [d, e] = [await drawn(page), await etcdLeases()];
  if (Object.keys(d.hosts).sort().join() !== 'h1,h2,h3') return false;
  if (JSON.stringify(Object.fromEntries([...e].sort())) !== JSON.stringify(Object.fromEntries(Object.entries(d.etcd).sort()))) return false;
  return Object.values(d.hosts).every((h) => h.lease === (e.get(h.ip) ?? ''));
}

function request(method: string, p: string, headers: Record<string, string>, body?: string): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: u.port, method, path: p, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function openPage(lang = 'en', hash = ''): Promise<Page> {
  const page = await browser!.newPage();
  await page.setViewport({ width: 1600, height: 1000 });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push((e as Error).message));
  await page.goto(`${url}${lang === 'zh' ? '&lang=zh' : ''}${hash}`, { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => document.body.dataset.ready === 'yes', { timeout: 60_000 });
  assert.deepEqual(errors, [], 'no script errors on the page');
  return page;
}

describe('flannel-ts demo --web', { timeout: 240_000 }, () => {
  before(async () => {
    child = spawn(process.execPath, [FLANNEL_TS, 'demo', '--web', '--port', '0', '--plain'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (out += d));
    await waitFor('the URL', () => /^http:\/\/127\.0\.0\.1:\d+\/\?token=\S+$/m.test(out) || child!.exitCode !== null, 120_000);
    assert.equal(child.exitCode, null, `the demo ended early:\n${out}`);
    url = /^(http:\/\/127\.0\.0\.1:\d+\/\?token=\S+)$/m.exec(out)![1];
    prefix = /\/(ft[a-z0-9]+)-[^/]+\/narration\.log/.exec(out)![1];
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
  });

  test('the page draws the hosts and subnets etcd holds, and follows a lease deleted meanwhile', async () => {
    const page = await openPage();
    await waitFor('page = etcd', () => pageMatchesEtcd(page), 10_000, 250);
    const before = await drawn(page);
    assert.equal(new Set(Object.values(before.hosts).map((h) => h.lease)).size, 3, 'three different subnets drawn');
    for (const h of Object.values(before.hosts)) assert.match(h.lease, /^198\.19\.\d+\.0\/24$/);
    // Each cni0 holds the first address of the drawn subnet, each pod an address in it.
    const cni = await page.$$eval('#topo g.host', (gs) => gs.map((g) => [g.getAttribute('data-lease'), g.querySelector('[data-subnet]')?.getAttribute('data-subnet')]));
    for (const [lease, addr] of cni) assert.equal(addr, lease!.replace(/\.0\/24$/, '.1/24'));

    // h2's flanneld stopped by the page's own button, then its lease deleted in etcd from outside the page.
    await page.click('button.stop[data-host="h2"]');
    await page.waitForSelector('#topo [data-id="h2:flanneld"].down', { timeout: 15_000 });
    const h2ip = before.hosts.h2.ip;
    const del = await execStatus([
      'ip',
      'netns',
      'exec',
      `${prefix}-etcd`,
      'env',
      'ETCDCTL_API=3',
      'etcdctl',
      `--endpoints=${ETCD}`,
      'del',
      `${PREFIX}/subnets/${before.hosts.h2.lease.replace('/', '-')}`,
    ]);
    assert.equal(del.stdout.trim(), '1', del.stderr);
    const t0 = Date.now();
    await page.waitForFunction((ip) => document.querySelector(`#topo g.host[data-ip="${ip}"]`)?.getAttribute('data-lease') === '', { timeout: 8000 }, h2ip);
    assert.ok(Date.now() - t0 < 8000, 'the page followed within a few seconds');
    assert.ok(await pageMatchesEtcd(page), 'the page equals etcd without the deleted lease');
    assert.equal((await drawn(page)).etcd[h2ip], undefined, "etcd's box lost the lease too");

    // Started again by the page's button: h2 takes a lease and the page draws it.
    await page.click('button.start[data-host="h2"]');
    await waitFor('h2 leased again', async () => (await etcdLeases()).has(h2ip) && (await pageMatchesEtcd(page)), 30_000, 250);
    await page.close();
  });

  test("stepping through a ping shows the captured datagram's real addresses and ports, as tcpdump read them", async () => {
    const page = await openPage();
    await page.select('#sel-src', 'h1-pod1');
    await page.select('#sel-dst', 'h3-pod2');
    await page.click('#ping');
    await page.waitForFunction(() => document.body.dataset.journey === 'done', { timeout: 60_000 });
    const hops = Number(/of (\d+)/.exec(await page.$eval('#hop-count', (e) => e.textContent ?? ''))![1]);
    assert.ok(hops >= 8, `the journey has its hops (${hops})`);

    // Walk the hops by URL and collect what each shows.
    const seen: { at: string; text: string }[] = [];
    for (let n = 1; n <= hops; n++) {
      await page.evaluate((s) => (location.hash = `#step=${s}`), n);
      await page.waitForFunction((s) => document.getElementById('hop')?.dataset.step === String(s), {}, n);
      seen.push(await page.$eval('#hop', (e) => ({ at: (e as unknown as El).dataset.at!, text: e.textContent ?? '' })));
    }
    const ats = seen.map((s) => s.at);
    for (const want of ['pod:h1-pod1', 'h1:cni0', 'h1:flannel0', 'h1:flanneld', 'h1:eth0', 'switch', 'h3:flanneld', 'h3:flannel0', 'pod:h3-pod2'])
      assert.ok(ats.includes(want), `a hop at ${want}: ${ats.join(' ')}`);
    const leases = await etcdLeases();
    const h3Subnet = leases.get('198.18.0.3')!;
    assert.match(seen[ats.indexOf('h1:flanneld')].text, new RegExp(`${h3Subnet.replace(/\./g, '\\.')}.*198\\.18\\.0\\.3`), 'the tx hop names the lease of the peer');
    assert.match(seen[ats.indexOf('h1:flannel0')].text, /198\.19\.0\.0\/16 dev flannel0/, 'the route that matched');

    // The same bytes, read by tcpdump from the pcap the page decoded.
    const pcap = /# (\/\S+\.pcap)/.exec(seen[ats.indexOf('h1:eth0')].text)![1];
    const td = await execStatus(['tcpdump', '-r', pcap, '-n', '-xx', '-c', '1']);
    const hex = td.stdout
      .split('\n')
      .filter((l) => /^\s+0x/.test(l))
      .map((l) => l.replace(/^\s+0x[0-9a-f]+:\s+/, '').replace(/\s+/g, ''))
      .join('');
    const b = Buffer.from(hex, 'hex');
    const ip = (o: number) => [...b.subarray(o, o + 4)].join('.');
    const truth = { outerSrc: ip(26), outerDst: ip(30), srcPort: String(b.readUInt16BE(34)), dstPort: String(b.readUInt16BE(36)), innerSrc: ip(42 + 12), innerDst: ip(42 + 16) };
    assert.match(td.stdout, new RegExp(`${truth.outerSrc}\\.${truth.srcPort} > ${truth.outerDst}\\.${truth.dstPort}: UDP`), td.stdout);
    const shown = await page.evaluate(() => {
      const v = (layer: string, f: string) => document.querySelector(`#cap-udp tr[data-layer="${layer}"][data-field="${f}"] td.value`)?.textContent;
      return {
        outerSrc: v('outer', 'Source'),
        outerDst: v('outer', 'Destination'),
        srcPort: v('udp', 'Source Port'),
        dstPort: v('udp', 'Destination Port'),
        innerSrc: v('inner', 'Source'),
        innerDst: v('inner', 'Destination'),
      };
    });
    assert.deepEqual(shown, truth);
    assert.deepEqual(
      [truth.outerSrc, truth.outerDst, truth.dstPort, truth.innerDst],
      ['198.18.0.1', '198.18.0.3', '8285', await page.$eval('#topo [data-pod="h3-pod2"]', (e) => e.getAttribute('data-pod-ip'))],
    );
    const wire = seen[ats.indexOf('switch')].text;
    assert.ok(wire.includes(`${truth.outerSrc}:${truth.srcPort}`) && wire.includes(`${truth.outerDst}:${truth.dstPort}`), wire);
    // The vxlan datagram beside it: UDP 8472 and a VXLAN header.
    assert.equal(await page.$eval('#cap-vxlan tr[data-layer="udp"][data-field="Destination Port"] td.value', (e) => e.textContent), '8472');
    assert.ok(await page.$('#nest-vxlan .box.l-vxlan'), 'the vxlan layers have a VXLAN box');
    // Pointing at a field lights its bytes in the hex: UDP destination port 8285 = 0x205d.
    await page.hover('#cap-udp tr[data-layer="udp"][data-field="Destination Port"]');
    assert.deepEqual(await page.$$eval('#cap-udp .b.hl', (es) => es.map((e) => e.textContent)), ['20', '5d']);
    await page.hover('#cap-vxlan tr[data-layer="vxlan"][data-field="VNI"]');
    assert.deepEqual(await page.$$eval('#cap-vxlan .b.hl', (es) => es.map((e) => e.textContent)), ['00', '00', '01'], 'VNI 1');

    // The per-peer counters (each flanneld's admin socket) count the ping: h1 sent to h3's lease.
    await page.waitForFunction(
      (subnet) =>
        [...document.querySelectorAll('#counters tr')].some((tr) => {
          const cells = [...(tr as unknown as { cells: Iterable<El> }).cells].map((c) => c.textContent);
          return cells[0] === 'h1' && cells[1] === `${subnet} @ 198.18.0.3` && Number(cells[2]) > 0;
        }),
      { timeout: 10_000 },
      h3Subnet,
    );

    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.evaluate(() => (location.hash = '#step=6'));
    await new Promise((r) => setTimeout(r, 600));
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-demo.png'), fullPage: true });
    await page.close();
  });

  test('udp and vxlan RTT, measured on request, side by side as a chart', async () => {
    const page = await openPage();
    await page.click('#measure-rtt');
    await page.waitForSelector('#chart rect.bar', { timeout: 60_000 });
    const bars = await page.$$eval('#chart rect.bar', (es) => es.map((e) => [e.getAttribute('data-backend'), Number(e.getAttribute('data-value'))] as const));
    assert.deepEqual(
      bars.map((x) => x[0]),
      ['udp', 'vxlan'],
    );
    for (const [, ms] of bars) assert.ok(ms > 0 && ms < 1000, `an RTT in ms: ${ms}`);
    await page.close();
  });

  test('the Chinese page has Chinese labels', async () => {
    const page = await openPage('zh');
    const t = await page.evaluate(() => ({ title: document.querySelector('h1')!.textContent, ping: document.getElementById('ping')!.textContent, svg: document.getElementById('topo')!.textContent }));
    assert.equal(t.title, 'flannel-ts：实时的 overlay 网络');
    assert.equal(t.ping, '发送 ping');
    assert.ok(t.svg!.includes('底层交换机'), 'the switch is labelled in Chinese');
    await page.screenshot({ path: path.join(ARTIFACTS, 'web-demo-zh.png') });
    await page.close();
  });

  test('requests without the token, from another site or by GET for an action are refused', async () => {
    const u = new URL(url);
    const token = u.searchParams.get('token')!;
    const host = `127.0.0.1:${u.port}`;
    assert.equal(await request('GET', '/api/state', { Host: host }), 403, 'no token');
    assert.equal(await request('GET', '/?token=wrong', { Host: host }), 403, 'wrong token');
    assert.equal(await request('GET', '/api/state', { Host: `rebound.example:${u.port}`, 'X-Flannel-Token': token }), 403, 'DNS rebinding: another Host');
    assert.equal(
      await request('POST', '/api/flanneld', { Host: host, 'X-Flannel-Token': token, Origin: 'http://evil.example', 'Content-Type': 'application/json' }, '{"host":"h1","action":"stop"}'),
      403,
      'another Origin',
    );
    assert.equal(await request('GET', '/api/journey', { Host: host, 'X-Flannel-Token': token }), 405, 'actions are POST only');
    assert.equal(await request('GET', '/api/state', { Host: host, 'X-Flannel-Token': token }), 200);
  });

  test('SIGTERM removes every namespace and process', async () => {
    assert.ok(namespaces(prefix).length >= 10, 'the cluster is up');
    const exited = new Promise<number | null>((r) => child!.once('exit', (c) => r(c)));
    child!.kill('SIGTERM');
    assert.equal(await exited, 0, out);
    assert.deepEqual(namespaces(prefix), [], 'no namespace left');
    const dir = path.dirname(/(\/\S+\/narration\.log)/.exec(out)![1]);
    const left = fs
      .readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)
      .filter((pid) => {
        try {
          return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
        } catch {
          return false;
        }
      });
    assert.deepEqual(left, [], 'no process of the cluster left');
    assert.equal(fs.existsSync(dir), false, "the lab's directory is removed");
    assert.match(out, /SIGTERM/);
  });
});

describe('flannel-ts demo --web --keep', { timeout: 180_000 }, () => {
  test('Ctrl-C closes the page but keeps the cluster; demo --down removes it', async () => {
    const state = path.join(fs.mkdtempSync('/tmp/flannel-ts-webkeep-'), 'state.json');
    const c = spawn(process.execPath, [FLANNEL_TS, 'demo', '--web', '--keep', '--port', '0', '--plain', '--state', state], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    c.stdout.on('data', (d: Buffer) => (text += d));
    c.stderr.on('data', (d: Buffer) => (text += d));
    let p = '';
    try {
      await waitFor('the URL', () => /^http:\/\/127\.0\.0\.1:\d+\/\?token=/m.test(text) || c.exitCode !== null, 120_000);
      assert.equal(c.exitCode, null, text);
      p = /\/(ft[a-z0-9]+)-[^/]+\/narration\.log/.exec(text)![1];
      const up = namespaces(p).length;
      const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
      c.kill('SIGINT');
      assert.equal(await exited, 0, text);
      assert.match(text, /the cluster stays up/);
      assert.match(text, new RegExp(`demo --down --state ${state.replace(/[.]/g, '\\.')}`));
      assert.equal(namespaces(p).length, up, 'every namespace is kept');
      const down = await execStatus([process.execPath, FLANNEL_TS, 'demo', '--down', '--state', state], { timeoutMs: 60_000 });
      assert.equal(down.status, 0, down.stdout + down.stderr);
      assert.deepEqual(namespaces(p), [], 'demo --down removed them');
    } finally {
      if (c.exitCode === null) c.kill('SIGTERM');
      if (fs.existsSync(state)) await execStatus([process.execPath, FLANNEL_TS, 'demo', '--down', '--state', state], { timeoutMs: 60_000 });
    }
  });
});
