// End-to-end tests of the flannel_tun addon and its TypeScript face.
//
// Network safety: every TUN device and socket lives in network namespaces this
// file creates (named ftun-<pid>-*, removed in after() even on failure); the
// test process itself only runs `ip` and children under `ip netns exec`, and
// kills those children by pid. Addresses: 198.19.0.0/16 and 127.0.0.1 inside
// the namespaces. Needs root; skipped otherwise.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { DESC_WORDS, PacketBatch, native } from '../../src/tun';

const isRoot = process.getuid?.() === 0;
const PREFIX = `ftun-${process.pid}-`;
const FIXTURES = path.join(__dirname, 'fixtures');
const namespaces: string[] = [];
const children: ChildProcess[] = [];

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error}`);
}

function addNetns(suffix: string): string {
  const ns = PREFIX + suffix;
  run('ip', ['netns', 'add', ns]);
  namespaces.push(ns);
  run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  return ns;
}

/** Starts `node <fixture> args...` inside ns; ip netns exec execs node, so the pid is node's. */
function startChild(ns: string, fixture: string, args: string[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, path.join(FIXTURES, fixture), ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, FTUN_NETNS: ns }, // fixtures refuse to run outside it (tun-guard.ts)
  });
  children.push(child);
  return child;
}

/** Lines of a child's stdout, awaited one at a time. */
function lineReader(child: ChildProcess): (timeoutMs?: number) => Promise<string> {
  const queue: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  readline.createInterface({ input: child.stdout! }).on('line', (l) => {
    const w = waiters.shift();
    if (w) w(l);
    else queue.push(l);
  });
  return (timeoutMs = 10_000) =>
    new Promise((resolve, reject) => {
      const l = queue.shift();
      if (l !== undefined) return resolve(l);
      const timer = setTimeout(() => reject(new Error('timed out waiting for the child')), timeoutMs);
      waiters.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
}

/** Runs a tun-checks.js (or another fixture's) mode in ns and returns its JSON report. */
async function checks(ns: string, mode: string, fixture = 'tun-checks.js'): Promise<Record<string, any>> {
  const child = startChild(ns, fixture, [mode]);
  const next = lineReader(child);
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const line = await next(20_000);
  assert.equal(await exited, 0);
  return JSON.parse(line);
}

// ---- pinging from inside a namespace (iputils ping, installed by scripts/setup.sh) ----
const havePing = spawnSync('sh', ['-c', 'command -v ping'], { stdio: 'ignore' }).status === 0;

/** Output of a command run to completion (asynchronously: the echo child must keep being served). */
function output(cmd: string, args: string[], timeoutMs: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(p);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', reject);
    p.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** Pings dst from ns: `count` requests every `interval` s, or with burst > 1 a flood (-f) keeping `burst` in flight. */
async function ping(ns: string, dst: string, count: number, interval: number, burst = 1): Promise<{ sent: number; received: number }> {
  const flood = burst > 1 ? ['-f', '-l', String(burst)] : ['-i', String(interval)];
  const r = await output('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', String(count), '-W', '2', ...flood, dst], 60_000);
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  assert.ok(m, `ping output: ${r.stdout} ${r.stderr}`);
  return { sent: Number(m[1]), received: Number(m[2]) };
}

after(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      const gone = new Promise((res) => c.once('exit', res));
      try {
        process.kill(c.pid!, 'SIGKILL');
        await Promise.race([gone, new Promise((res) => setTimeout(res, 2000))]);
      } catch {
        /* already gone */
      }
    }
  }
  for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns]);
});

describe('addon without syscalls', () => {
  it('exports the descriptor layout of batch.ts', () => {
    assert.equal(native().DESC_WORDS, DESC_WORDS);
    assert.equal(native().MAX_BATCH, 1024);
  });

  it('rejects a descriptor outside data before any syscall', () => {
    // fd 2^31-1 is never open: a syscall would fail with EBADF, not RangeError.
    const b = new PacketBatch(2, 64);
    b.desc.set([0, 64, 0, 0, 100, 29, 0, 0]);
    for (const f of [() => native().tunWrite(0x7fffffff, b.data, b.desc, 2), () => native().udpSend(0x7fffffff, b.data, b.desc, 2)]) {
      assert.throws(f, (e: Error) => e instanceof RangeError && /descriptor 1/.test(e.message));
    }
    assert.throws(() => native().tunRead(0x7fffffff, b.data, b.desc, 3, 64), RangeError);
    assert.throws(() => native().tunRead(0x7fffffff, b.data, new Uint32Array(8) as never, 1, 64), TypeError);
  });
});

describe('in network namespaces', { skip: !isRoot && 'needs root (network namespaces, TUN)' }, () => {
  let ns: string;
  before(() => {
    ns = addNetns('a');
  });

  describe('TUN echo', { skip: !havePing && 'ping not installed (scripts/setup.sh installs iputils-ping)' }, () => {
    let child: ChildProcess;
    let next: (t?: number) => Promise<string>;
    const command = async (cmd: string) => {
      child.stdin!.write(cmd + '\n');
      return next();
    };

    before(async () => {
      child = startChild(ns, 'tun-echo.js', ['ftun0']);
      next = lineReader(child);
      assert.equal(await next(), 'READY ftun0');
    });

    after(async () => {
      if (child.exitCode === null) {
        const gone = new Promise((res) => child.once('exit', res));
        child.stdin!.write('exit\n');
        await gone;
      }
    });

    it('answers 5 pings through the TUN device', async () => {
      const r = await ping(ns, '198.19.0.2', 5, 0.2);
      assert.equal(r.received, 5, JSON.stringify(r));
    });

    it('reads more than one packet per batch under a flood', async () => {
      const r = await ping(ns, '198.19.0.2', 2000, 0.002, 100);
      const stats = JSON.parse(await command('stats'));
      console.log(`flood: ${r.received}/${r.sent} answered; batch sizes ${JSON.stringify(stats.batchSizes)}`);
      assert.ok(r.received >= r.sent * 0.9, `answered ${r.received} of ${r.sent}`);
      assert.ok(stats.maxBatch > 1, `largest batch ${stats.maxBatch}`);
      assert.equal(stats.written, stats.echoed);
    });

    it('delivers what queued while not reading in one batch', async () => {
      assert.equal(await command('hold'), 'HELD');
      const before = JSON.parse(await command('stats'));
      // 20 requests queue in the device while nobody reads; resume reads them at once.
      const pinger = ping(ns, '198.19.0.2', 20, 2, 20);
      await new Promise((res) => setTimeout(res, 500));
      assert.equal(await command('resume'), 'RESUMED');
      const r = await pinger;
      const stats = JSON.parse(await command('stats'));
      assert.equal(r.received, 20);
      assert.ok(stats.reads - before.reads <= 2, `20 queued packets took ${stats.reads - before.reads} reads`);
    });
  });

  it('UDP: a batch of 64 datagrams over loopback', async () => {
    const r = await checks(ns, 'udp');
    assert.equal(r.sent, 63, 'the D_LEN=0 row is not sent');
    assert.equal(r.received, 63);
    const expected = Array.from({ length: 63 }, (_, k) => (k < 7 ? 1 + k * 17 : 1 + (k + 1) * 17));
    expected[62] = -1; // 3000 bytes into a 2048-byte slot
    assert.deepEqual(r.lengths, expected);
    assert.deepEqual(r.badContent, []);
    assert.ok(r.offsetsOk);
    assert.deepEqual(r.sources, [`${0x7f000001}:40001`]);
    assert.ok(r.wakeups >= 4, 'a recv of 16 per wake-up needs >= 4 wake-ups (level-triggered)');
    assert.ok(r.blockingAfterPoll, 'pollStart leaves the socket blocking');
  });

  it('errors, validation and watchers', async () => {
    const r = await checks(ns, 'errors');
    const errno = (e: any, code: string) => {
      assert.ok(e, `expected ${code}`);
      assert.equal(e.code, code, e.message);
      assert.equal(typeof e.errno, 'number');
      assert.match(e.message, new RegExp(`\\(${code}\\)`));
    };
    errno(r.longName, 'EINVAL');
    assert.match(r.longName.message, /^tunOpen x{20}: /);
    errno(r.badName, 'EINVAL');
    assert.match(r.autoName, /^tun\d+$/);
    assert.deepEqual(r.mq, { names: ['ftunmq', 'ftunmq'], distinctFds: true });
    errno(r.mqMismatch, 'EINVAL');
    assert.ok(r.existsWhileOpen && r.existsWithOneQueue && r.deletedAfterClose, 'device lives until the last queue closes');

    assert.equal(r.writeWhileDown, null);
    assert.equal(r.writtenWhileDown, 0, 'a down device refuses writes (skipped, not thrown)');
    assert.deepEqual(r.lensAfterRefusal, [0, 0, 0], 'every row the down device refused comes back with D_LEN 0');
    assert.equal(r.writtenWhileUp, 1, 'malformed row skipped, D_LEN 0 row not written, valid row written');
    assert.equal(r.lensAfterWrite[0], 0, 'the malformed row, refused, is marked D_LEN 0');
    assert.ok(r.lensAfterWrite[2] > 0, 'the written row keeps its length');
    for (const k of ['tunWriteOutOfRange', 'tunReadBeyondData', 'sendOutOfRange', 'sendNegativeOffset', 'sendBadPort', 'sendCountBeyondDesc', 'sendCountOverMax', 'recvBeyondData', 'udpOpenBadPort']) {
      assert.equal(r[k]?.name, 'RangeError', k);
    }
    assert.ok(r.nothingSent, 'a bad row anywhere means nothing is sent');
    assert.equal(r.typeError?.name, 'TypeError');
    assert.equal(r.fdTypeError?.name, 'TypeError');
    assert.match(r.closedRead?.message, /closed/);
    assert.equal(r.sentMixed, 2, 'port 0 and 65600 bytes are skipped, the others sent');
    assert.deepEqual(r.recvMixedLens, [5, 7]);

    assert.equal(r.doubleStop, null, 'pollStop twice is harmless');
    errno(r.pollSameFdTwice, 'EEXIST');
    errno(r.pollBadFd, 'EBADF');
    assert.equal(r.pollNotAHandle?.name, 'TypeError');
    errno(r.udpOpenNotLocal, 'EADDRNOTAVAIL');
    assert.equal(r.uncaught, 'boom from poll callback');
  });

  it('watchers in worker threads', async () => {
    const r = await checks(ns, 'worker');
    assert.equal(r.workerReceived, 3);
    assert.equal(r.terminateCode, 1, 'terminate() with an active watcher completes');
    assert.equal(r.workerError, 'boom in worker');
    assert.equal(r.mainAfterWorkers, 1);
  });

  describe('UDP offloads', () => {
    /** A receiver's view must be exactly the datagrams sent to it, in order, contents intact. */
    const exact = (v: { expected: number[][]; seqLens: number[][]; bad: number[] }, what: string) => {
      assert.deepEqual(v.seqLens, v.expected, `${what}: [seq, length] of each datagram, in order`);
      assert.deepEqual(v.bad, [], `${what}: datagrams with wrong contents`);
    };

    it('GSO send: one datagram per packet on the wire, exact lengths and order', async () => {
      const r = await checks(ns, 'gso', 'tun-offload.js');
      assert.deepEqual(r.senderOffloads, { gso: true, gro: true });
      assert.deepEqual(r.receiverOffloads, { gso: true, gro: false });
      assert.equal(r.runSent, 41, 'the count is packets, not messages');
      exact(r.run, 'node:dgram receiver');
      assert.equal(r.run.messages, 41);
      assert.equal(r.mixedSent, r.mixedPackets, 'every non-dropped row sent');
      assert.equal(r.mixedPackets, r.mixedRows - 1);
      exact(r.mixed1, 'mixed, first destination');
      exact(r.mixed2, 'mixed, second destination');
      assert.equal(r.adjacentSent, 29);
      exact(r.adjacent1, 'adjacent packets (merged iovecs), first destination');
      exact(r.adjacent2, 'adjacent packets (merged iovecs), second destination');
      assert.deepEqual(r.senderOffloadsAfter, { gso: true, gro: true }, 'loopback accepts every GSO message');
    });

    it('GRO receive: coalesced datagrams come back one descriptor each', async () => {
      const r = await checks(ns, 'gro', 'tun-offload.js');
      assert.deepEqual(r.receiverOffloads, { gso: true, gro: true });
      assert.equal(r.runSent, 41);
      exact(r.run, 'run');
      assert.equal(r.run.messages, 1, '41 datagrams sent with GSO arrive as one message, one slot');
      assert.equal(r.run.calls, 1);
      exact(r.mixed, 'mixed');
      // GSO groups to port 40111: 10 | 3 + a shorter 500 | 500 | 46 + 4 (70 000 bytes) | 1400 | 1401 + a shorter 1400.
      assert.equal(r.mixed.messages, 7, 'one message per GSO group');
      assert.deepEqual(r.plainOffloads, { gso: false, gro: true });
      exact(r.plain, 'plain sender');
      assert.equal(r.plain.messages, 41, 'without GSO nothing is coalesced on loopback');
      assert.equal(r.smallSlots?.name, 'RangeError');
      assert.match(r.smallSlots.message, /GRO/);
      assert.equal(r.fewRows?.name, 'RangeError');
      assert.equal(r.descBelowSlots?.name, 'RangeError');
      assert.deepEqual(r.oneMessagePerCall, { first: 41, slots: 1 });
    });

    it('offloads off, refused by the device, and seen from another thread', async (t) => {
      const r = await checks(ns, 'fallback', 'tun-offload.js');
      assert.deepEqual(r.offTx, { gso: false, gro: false });
      assert.deepEqual(r.offRx, { gso: false, gro: false });
      assert.equal(r.offSent, 41);
      exact(r.off, 'offloads off');
      assert.equal(r.off.messages, 41);
      assert.equal(r.badOffloads, 'TypeError');
      assert.deepEqual(
        r.workerView,
        [
          { gso: true, gro: true },
          { gso: true, gro: false },
        ],
        'probed from the socket',
      );
      assert.equal(r.closedOffloads, 'EBADF');
      // EMSGSIZE (segments over the route's MTU): retried one by one, fragmented by the kernel; GSO stays on.
      assert.equal(r.mtuSent, 30);
      assert.deepEqual(r.mtuAfter, { gso: true, gro: true });
      assert.deepEqual(r.mtuUdpLens, [...Array(20).fill(1200), ...Array(10).fill(900)], 'one UDP datagram per packet');
      assert.equal(r.mtuLaterFragments, 20, 'each 1200-byte datagram in two fragments');
      // EINVAL for UDP_SEGMENT itself: resent one by one, GSO off from then on.
      if (r.refusalSkipped) return t.skip(r.refusalSkipped);
      assert.equal(r.noCheck, '1');
      assert.deepEqual(r.refusalBefore, { gso: true, gro: true });
      assert.equal(r.refusalSent, 41, 'the refused GSO message went out packet by packet');
      assert.deepEqual(r.refusalAfter, { gso: false, gro: true }, 'GSO off after the refusal');
      assert.equal(r.refusalSentAgain, 41);
      exact(r.refusal, 'after the refusal');
    });
  });
});
