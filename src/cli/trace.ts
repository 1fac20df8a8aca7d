// `flannel-ts trace`: attach to a running flanneld's admin socket and print,
// for matching packets, the decision taken (peer chosen, or the drop reason)
// with the inner packet and the outer UDP datagram decoded.
//
//   flannel-ts trace [--admin-socket PATH | --subnet-file PATH] [--host IP] [--proto icmp|tcp|udp|N]
//                    [--drops] [--count N] [--sample N] [--json] [--leases]

import * as net from 'node:net';
import type { TraceEvent } from '../encap/trace';
import { defaultAdminSocket } from '../daemon/options';

/** flanneld's default: <subnet-file>.sock, with the subnet file from FLANNELD_SUBNET_FILE or flanneld's default. */
function defaultSocket(subnetFile?: string): string {
  return process.env.FLANNELD_ADMIN_SOCKET || defaultAdminSocket(subnetFile || process.env.FLANNELD_SUBNET_FILE || '/run/flannel/subnet.env');
}

const PROTOS: Record<string, number> = { icmp: 1, tcp: 6, udp: 17 };
const PROTO_NAMES: Record<number, string> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP' };
const ICMP_TYPES: Record<number, string> = { 0: 'echo-reply', 3: 'dest-unreachable', 8: 'echo-request', 11: 'time-exceeded' };

interface TraceOptions {
  socket: string;
  host?: string;
  protocol?: number;
  dropsOnly: boolean;
  count: number;
  sample: number;
  json: boolean;
  leases: boolean;
}

function parse(argv: string[]): TraceOptions {
  const o: TraceOptions = { socket: defaultSocket(), dropsOnly: false, count: 0, sample: 1, json: false, leases: false };
  for (let i = 0; i < argv.length; i++) {
    const [k, inline] = argv[i].replace(/^--?/, '').split(/=(.*)/s, 2);
    const v = () => {
      const x = inline ?? argv[++i];
      if (x === undefined) throw new Error(`trace: --${k} needs a value`);
      return x;
    };
    switch (k) {
      case 'admin-socket':
        o.socket = v();
        break;
      case 'subnet-file':
        // The socket flanneld makes beside this subnet file (--admin-socket wins when both are given).
        if (!argv.some((a) => /^--?admin-socket(=|$)/.test(a))) o.socket = defaultSocket(v());
        else v();
        break;
      case 'host':
        o.host = v();
        break;
      case 'proto': {
        const p = v().toLowerCase();
        o.protocol = PROTOS[p] ?? Number(p);
        if (!Number.isInteger(o.protocol) || o.protocol < 0 || o.protocol > 255) throw new Error(`trace: --proto ${p}: use icmp, tcp, udp or a protocol number`);
        break;
      }
      case 'drops':
        o.dropsOnly = true;
        break;
      case 'count':
        o.count = Number(v());
        break;
      case 'sample':
        o.sample = Number(v());
        break;
      case 'json':
        o.json = true;
        break;
      case 'leases':
        o.leases = true;
        break;
      default:
        throw new Error(`trace: unknown option --${k} (see the usage at the top of src/cli/trace.ts or the README)`);
    }
  }
  return o;
}

/** One line per packet, like tcpdump's: decision, inner packet, then the outer datagram. */
export function formatEvent(e: TraceEvent): string {
  const i = e.inner;
  let inner = '(not IPv4)';
  if (i) {
    inner = `${i.src} > ${i.dst} ${PROTO_NAMES[i.protocol] ?? `proto ${i.protocol}`}`;
    if (i.icmp) inner += ` ${ICMP_TYPES[i.icmp.type] ?? `type ${i.icmp.type}`}${i.icmp.seq !== undefined ? ` id ${i.icmp.id} seq ${i.icmp.seq}` : ''}`;
    if (i.ports) inner += ` ${i.ports.src} > ${i.ports.dst}`;
    inner += ` ttl ${i.ttl} len ${i.length}`;
  }
  const peer = e.peer ? ` peer ${e.peer.subnet} @ ${e.peer.publicIp}` : '';
  const outer = e.outer ? ` | UDP ${e.outer.src}:${e.outer.srcPort} > ${e.outer.dst}:${e.outer.dstPort} len ${e.outer.udpLength}` : '';
  const decision = e.decision === 'forwarded' ? 'forwarded' : `DROP ${e.decision}`;
  return `${e.time.slice(11, 23)} ${e.direction} ${decision.padEnd(24)} ${inner}${peer}${outer}`;
}

export async function main(argv: string[]): Promise<void> {
  const o = parse(argv);
  const sock = net.connect(o.socket);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(`cannot reach flanneld's admin socket ${o.socket}: ${e.code === 'EACCES' ? 'permission denied (root only)' : e.message}; is flanneld running with --admin-socket there?`)),
    );
  });
  sock.write(`${JSON.stringify(o.leases ? { cmd: 'leases' } : { cmd: 'trace', host: o.host, protocol: o.protocol, dropsOnly: o.dropsOnly, sample: o.sample })}\n`);
  let buf = '';
  let printed = 0;
  sock.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const msg = JSON.parse(line);
        if (msg.error) return reject(new Error(msg.error));
        if (msg.attached) {
          if (!o.json) process.stderr.write(`tracing on ${o.socket} (Ctrl-C to stop)\n`);
          continue;
        }
        process.stdout.write(o.json || o.leases ? `${line}\n` : `${formatEvent(msg as TraceEvent)}\n`);
        if (o.count > 0 && ++printed >= o.count) {
          sock.destroy();
          return resolve();
        }
      }
    });
    sock.on('close', () => resolve());
    sock.on('error', reject);
  });
}
