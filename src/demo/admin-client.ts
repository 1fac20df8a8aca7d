// The demo's side of flanneld's admin socket (src/daemon/admin.ts): one
// request and its one-line answer (leases, counters), or a trace that waits
// for a matching packet. A unix socket is a file, so this works from any
// namespace: the web view runs in the root namespace, the daemons in theirs.

import * as net from 'node:net';
import { FlannelError } from '../util/errors';

/** The JSON `flannel-ts trace --json` prints for one packet (the admin socket's trace event). */
export interface TraceEventJson {
  direction: 'tx' | 'rx';
  decision: string;
  peer?: { subnet: string; publicIp: string };
  outer?: { src: string; srcPort: number; dst: string; dstPort: number; udpLength: number };
  inner?: { length: number; ttl: number; protocol: number; src: string; dst: string; icmp?: { type: number; code: number; id?: number; seq?: number } };
  hex: string;
}

function connect(socket: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    s.once('connect', () => resolve(s));
    s.once('error', (e) => reject(new FlannelError('FLANNEL_ERR_ADMIN', `cannot reach flanneld's admin socket ${socket}: ${e.message} (is that flanneld running?)`)));
  });
}

/** Lines from a socket, one callback per complete line. */
function onLines(s: net.Socket, fn: (line: string) => void): void {
  let buf = '';
  s.setEncoding('utf8');
  s.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      fn(line);
    }
  });
}

/** One request, one answer line (leases, counters). */
export async function adminRequest(socket: string, req: Record<string, unknown>, timeoutMs = 3000): Promise<unknown> {
  const s = await connect(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      s.destroy();
      reject(new FlannelError('FLANNEL_ERR_ADMIN', `no answer on ${socket} to ${JSON.stringify(req)} in ${timeoutMs} ms`));
    }, timeoutMs);
    onLines(s, (line) => {
      clearTimeout(timer);
      s.destroy();
      const msg = JSON.parse(line) as { error?: string };
      if (msg && typeof msg === 'object' && 'error' in msg && msg.error) reject(new FlannelError('FLANNEL_ERR_ADMIN', msg.error));
      else resolve(msg);
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.write(`${JSON.stringify(req)}\n`);
  });
}

export interface TraceFilterJson {
  host?: string;
  protocol?: number;
  dropsOnly?: boolean;
}

/** A trace waiting for its first event; `first` resolves with its JSON line, or undefined after `stop()`. */
export interface PendingTrace {
  first: Promise<string | undefined>;
  stop(): void;
}

/**
 * Attaches a trace (resolves once the daemon says it is attached, so a packet
 * sent next is seen) and keeps the first matching event. The daemon allows one
 * trace at a time: callers serialise.
 */
export async function attachTrace(socket: string, filter: TraceFilterJson, timeoutMs = 5000): Promise<PendingTrace> {
  const s = await connect(socket);
  let settle: (v: string | undefined) => void = () => undefined;
  const first = new Promise<string | undefined>((r) => (settle = r));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      s.destroy();
      reject(new FlannelError('FLANNEL_ERR_ADMIN', `the trace on ${socket} was not attached in ${timeoutMs} ms`));
    }, timeoutMs);
    onLines(s, (line) => {
      const msg = JSON.parse(line) as { error?: string; attached?: boolean };
      if (msg.error) {
        clearTimeout(timer);
        s.destroy();
        return reject(new FlannelError('FLANNEL_ERR_ADMIN', `${socket}: ${msg.error}`));
      }
      if (msg.attached) {
        clearTimeout(timer);
        return resolve();
      }
      settle(line);
      s.destroy();
    });
    s.on('close', () => settle(undefined));
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.write(`${JSON.stringify({ cmd: 'trace', ...filter })}\n`);
  });
  return {
    first,
    stop: () => {
      s.destroy();
      settle(undefined);
    },
  };
}
