// The control-plane bench's near end. Runs inside the namespace of the host
// whose flanneld is measured; writes fake peers' leases to etcd the way
// flanneld writes them (its own 24 h etcd lease each, the value flanneld would
// write for the backend) and probes their subnets until the sink (cp-sink)
// acknowledges a forwarded probe. Prints one JSON object (DriverResult).
// Probed peers share 64 public IPs (see PROBED_POOL); the others have one each.
//
//   node cp-driver.js '<DriverArgs as JSON>'
//
// Phases, each optional by count:
//   latency  leases one at a time; for each, from the moment its put is sent
//            until a probe to its subnet has been forwarded (probes every 1 ms)
//   burst    `burst` leases put together, then one more (the sentinel): its
//            forwarding proves all before it applied (watch events and kernel
//            flushes are applied in order)
//   fill     more leases up to `fill` in total, then a sentinel: the daemon
//            holds them all when it returns (the bench then reads its RSS)
// With "probe": false nothing is probed (no sink needed): the phases only
// write leases, and the caller watches the daemon instead.

import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import { Etcd3 } from 'etcd3';
import { Ip4Net, formatIp4, parseIp4 } from '../routes/ip4';
import { formatLeaseValue } from '../subnet/lease-value';
import { subnetKey } from '../subnet/subnets';
import { probePayload } from './cp-probe';

export interface DriverArgs {
  endpoint: string;
  prefix: string;
  backend: 'udp' | 'vxlan' | 'host-gw';
  /** The measured daemon's subnet file (its own subnet is skipped). */
  subnetFile: string;
  network: string; // 198.19.0.0/16
  subnetLen: number; // 30
  /** Fake peers' public IPs start here (198.18.64.0: the sink answers for 198.18.64.0/18). */
  publicBase: string;
  probePort: number;
  ackPort: number;
  latency: number;
  burst: number;
  /** Total fake leases after the fill phase (0: no fill). */
  fill: number;
  /** Per-probe give-up time, ms (latency phase). */
  timeoutMs: number;
  /** Give-up time for the burst and fill sentinels, ms (default 120 000: the daemon may have thousands of leases to take in first). */
  sentinelTimeoutMs?: number;
  /** Probe forwarding (default true); false: only write the leases. */
  probe?: boolean;
}

export interface DriverResult {
  latencyMs: number[];
  latencyFailures: number;
  /** startedAt: wall clock (Date.now()) when the first put was sent, for observers outside the driver. */
  burst?: { leases: number; putMs: number; forwardedMs: number; startedAt: number };
  fill?: { leases: number; putMs: number; forwardedMs: number };
  leasesWritten: number;
}

const args = JSON.parse(process.argv[2]) as DriverArgs;
const RUN = Math.floor(Math.random() * 0x7fffffff);
const nowNs = () => process.hrtime.bigint();
const ms = (ns: bigint) => Number(ns) / 1e6;

function ownSubnet(): Ip4Net {
  const text = fs.readFileSync(args.subnetFile, 'utf8');
  const m = /^FLANNEL_SUBNET=(.+)$/m.exec(text);
  if (!m) throw new Error(`no FLANNEL_SUBNET in ${args.subnetFile}`);
  return Ip4Net.parse(m[1]);
}

interface Fake {
  index: number;
  subnet: Ip4Net;
  key: string;
  probeTo: string;
}

/**
 * Fake peers that are probed share a pool of PROBED_POOL public IPs; the
 * others get one each. Every probed public IP costs a neighbour entry, and
 * the kernel's ARP table is one for all namespaces (gc_thresh3, 1024 by
 * default): a thousand distinct probed peers would overflow it, drop packets
 * and disturb anything else running on the machine.
 */
const PROBED_POOL = 64;

function leaseValue(f: Fake, probed: boolean): string {
  const base = parseIp4(args.publicBase);
  const publicIp = (probed ? base + (f.index % PROBED_POOL) : base + PROBED_POOL + f.index) >>> 0;
  const mac = `0a:58:${[(f.index >> 16) & 0xff, (f.index >> 8) & 0xff, f.index & 0xff, 0x01].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
  return formatLeaseValue({
    publicIp,
    backendType: args.backend,
    ...(args.backend === 'vxlan' ? { backendData: { VNI: 1, VtepMAC: mac } } : {}),
  });
}

function fakes(count: number): Fake[] {
  const net = Ip4Net.parse(args.network);
  const own = ownSubnet();
  const size = 2 ** (32 - args.subnetLen);
  const out: Fake[] = [];
  for (let k = 1; out.length < count; k++) {
    if (k * size >= net.size) throw new Error(`Network ${net} has no room for ${count} fake /${args.subnetLen} leases`);
    const subnet = new Ip4Net((net.ip + k * size) >>> 0, args.subnetLen);
    if (subnet.equals(own)) continue;
    out.push({ index: out.length, subnet, key: `${args.prefix}/subnets/${subnetKey(subnet)}`, probeTo: formatIp4(subnet.ip + 1) });
  }
  return out;
}

async function main(): Promise<void> {
  const total = Math.max(args.latency + args.burst + (args.burst > 0 ? 1 : 0), args.fill) + 1;
  const all = fakes(total);
  const client = new Etcd3({ hosts: [args.endpoint] });
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(args.ackPort, '0.0.0.0', () => r()));
  const waiting = new Map<number, (t: bigint) => void>();
  sock.on('message', (m) => {
    if (m.length < 16 || m.readUInt32BE(0) !== RUN) return;
    const f = waiting.get(m.readUInt32BE(4));
    if (f) f(m.readBigUInt64BE(8));
  });
  sock.on('error', () => undefined);

  // One etcd lease (24 h, as flanneld's) per fake peer, granted before any timing starts.
  const leaseIds: string[] = [];
  for (let i = 0; i < all.length; i += 256) {
    const grants = await Promise.all(all.slice(i, i + 256).map(() => client.leaseClient.leaseGrant({ TTL: 86400 })));
    for (const g of grants) leaseIds.push(g.ID);
  }
  const put = (f: Fake, probed = false) => client.put(f.key).value(leaseValue(f, probed)).lease(leaseIds[f.index]).exec();

  /** Probes `f` every 1 ms until the sink acknowledges it; resolves with the sink's arrival time, or undefined on timeout. */
  const probe = (f: Fake, timeoutMs = args.timeoutMs): Promise<bigint | undefined> =>
    args.probe === false
      ? Promise.resolve(undefined)
      : new Promise((resolve) => {
          const payload = probePayload(RUN, f.index);
          const send = () => sock.send(payload, args.probePort, f.probeTo, () => undefined);
          const timer = setInterval(send, 1);
          const give = setTimeout(() => done(undefined), timeoutMs);
          const done = (t: bigint | undefined) => {
            clearInterval(timer);
            clearTimeout(give);
            waiting.delete(f.index);
            resolve(t);
          };
          waiting.set(f.index, done);
          send();
        });

  const result: DriverResult = { latencyMs: [], latencyFailures: 0, leasesWritten: 0 };
  let next = 0;

  for (let i = 0; i < args.latency; i++) {
    const f = all[next++];
    const t0 = nowNs();
    const acked = probe(f);
    await put(f, true);
    const t = await acked;
    if (t === undefined) result.latencyFailures++;
    else result.latencyMs.push(ms(t - t0));
  }

  const putMany = async (fs: Fake[]) => {
    for (let i = 0; i < fs.length; i += 1000) await Promise.all(fs.slice(i, i + 1000).map((f) => put(f)));
  };

  // Writes `batch`, then a sentinel lease, and times how long until the
  // sentinel forwards (-1: it never did): the daemon applied everything before it.
  const timePhase = async (batch: Fake[]) => {
    const sentinel = all[next + batch.length];
    next += batch.length + 1;
    const t0 = nowNs();
    await putMany(batch);
    const tPut = nowNs();
    const acked = probe(sentinel, args.sentinelTimeoutMs ?? 120_000);
    await put(sentinel, true);
    const t = await acked;
    return { putMs: ms(tPut - t0), forwardedMs: t === undefined ? -1 : ms(t - t0) };
  };

  if (args.burst > 0) {
    const batch = all.slice(next, next + args.burst);
    const startedAt = Date.now();
    result.burst = { leases: batch.length, ...(await timePhase(batch)), startedAt };
  }

  if (args.fill > next) {
    const timed = await timePhase(all.slice(next, args.fill - 1));
    result.fill = { leases: next, ...timed };
  }

  result.leasesWritten = next;
  process.stdout.write(JSON.stringify(result) + '\n');
  sock.close();
  client.close();
}

main().catch((e) => {
  process.stderr.write(`cp-driver: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
