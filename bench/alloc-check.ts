// Proof that the hot path allocates nothing per packet: on a worker thread,
// as flanneld's data plane runs, with a 1 MiB young generation, the real
// Pump moves N batches each way between replay ports (fixed packets copied
// into the batch, no kernel) through Encapsulator and Decapsulator, and we
// count that thread's garbage collections. Even 16 bytes per packet would be
// 16 MB per million packets: dozens of scavenges. Prints JSON {packets, gcs, thread}.
//   node --expose-gc --max-semi-space-size=1 dist/bench/alloc-check.js [batches] [--leak]
// --leak injects the fault the check exists to catch (one small object per
// packet, as a careless hot path would make): its companion test proves that
// this very harness then counts GCs.

import { PerformanceObserver } from 'node:perf_hooks';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Pump } from '../src/encap/pump';
import type { TunPort, UdpPort } from '../src/encap/ports';
import { D_ADDR, D_LEN, D_OFF, D_PORT, DESC_WORDS, type PacketBatch, READ_INFO_DRAINED } from '../src/tun/batch';
import { PACKETS, hotPathFixture } from './hot-path-fixture';

/**
 * Ports that hand out the fixture's packets again and again. The bytes are
 * copied into the pump's batch once (Buffer.copy with offsets makes a view,
 * an allocation, so not per call); each later call restores only what the
 * pump changed: TTL, header checksum and the descriptors.
 */
function replayPorts(f: ReturnType<typeof hotPathFixture>): { tun: TunPort; udp: UdpPort } {
  const replay = (src: PacketBatch, fromPeer: boolean) => {
    let primed: PacketBatch | undefined;
    return (b: PacketBatch): number => {
      const sd = src.data;
      const bd = b.data;
      for (let i = 0; i < PACKETS; i++) {
        const so = src.desc[i * DESC_WORDS + D_OFF];
        const len = src.desc[i * DESC_WORDS + D_LEN];
        const off = i * b.slotSize;
        if (primed !== b) sd.copy(bd, off, so, so + len);
        bd[off + 8] = sd[so + 8];
        bd[off + 10] = sd[so + 10];
        bd[off + 11] = sd[so + 11];
        b.desc[i * DESC_WORDS + D_OFF] = off;
        b.desc[i * DESC_WORDS + D_LEN] = len;
        b.desc[i * DESC_WORDS + D_ADDR] = fromPeer ? src.desc[i * DESC_WORDS + D_ADDR] : 0;
        b.desc[i * DESC_WORDS + D_PORT] = fromPeer ? 8285 : 0;
      }
      primed = b;
      b.count = PACKETS;
      return PACKETS;
    };
  };
  const tx = replay(f.tx.batch, false);
  const rx = replay(f.rx.batch, true);
  // Each pump call moves one batch: a TUN read says the queue is now empty;
  // every other UDP receive is empty.
  let udpTurn = 0;
  return {
    tun: {
      read: (b) => {
        b.readInfo[READ_INFO_DRAINED] = 1;
        return tx(b);
      },
      write: (_b, n) => n,
    },
    udp: {
      recv: (b) => (b.count = udpTurn++ % 2 === 0 ? rx(b) : 0),
      send: (_b, n) => n,
    },
  };
}

function run(batches: number, leak: boolean): void {
  const kept: unknown[] = new Array(1024);
  const f = hotPathFixture();
  const { tun, udp } = replayPorts(f);
  const pump = new Pump(tun, udp, f.table, f.counters, { batchSize: PACKETS });
  f.tx.reset();
  f.rx.reset();
  const step = () => {
    pump.pumpTun();
    pump.pumpUdp();
  };
  // Warm up so the functions are optimised before counting.
  for (let i = 0; i < 2000; i++) step();
  (globalThis as { gc?: () => void }).gc?.();
  let gcs = 0;
  const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
  obs.observe({ entryTypes: ['gc'] });
  setImmediate(() => {
    const before = gcs;
    const sent0 = f.counters.txPackets + f.counters.rxPackets;
    for (let i = 0; i < batches; i++) {
      step();
      if (leak) for (let p = 0; p < PACKETS * 2; p++) kept[p & 1023] = { p };
    }
    const packets = f.counters.txPackets + f.counters.rxPackets - sent0;
    // GC entries are delivered asynchronously: wait a tick before reading.
    setTimeout(() => {
      obs.disconnect();
      parentPort!.postMessage({ packets, gcs: gcs - before, thread: 'worker' });
    }, 100);
  });
}

if (isMainThread) {
  const args = process.argv.slice(2);
  const leak = args.includes('--leak');
  const batches = Number(args.find((a) => a !== '--leak') ?? 20000);
  const w = new Worker(__filename, { workerData: { batches, leak }, resourceLimits: { maxYoungGenerationSizeMb: 1 } });
  w.once('message', (m) => {
    console.log(JSON.stringify(m));
    void w.terminate();
  });
  w.once('error', (e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  const d = workerData as { batches: number; leak: boolean };
  run(d.batches, d.leak);
}
