// The admin socket (--admin-socket): a unix socket, mode 0600 so only root
// connects, speaking JSON lines. `flannel-ts trace` sends one request and
// reads events until it hangs up.
//   {"cmd":"trace","host":"198.19.3.2","protocol":1,"dropsOnly":false,"sample":1}
//   {"cmd":"leases"}   -> one line: this node's lease table
//   {"cmd":"counters"} -> one line: the flannel_* metrics as JSON (what /metrics
//                         says, for a caller outside the node's namespace)

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { type TraceEvent, type TraceFilter, Tracer } from '../encap/trace';
import { parseIp4 } from '../routes/ip4';
import type { Logger } from '../util/log';
import { FlannelError } from '../util/errors';

export interface AdminHandlers {
  /** Attaches a tracer to the data plane; false when the backend forwards in the kernel (nothing to trace). */
  setTracer(t: Tracer | undefined): boolean;
  leases(): unknown;
  /** The flannel_* metrics (prom-client's JSON form); optional so a node without metrics still answers the rest. */
  counters?(): Promise<unknown>;
}

export interface AdminServer {
  close(): Promise<void>;
}

/**
 * Listens on `socketPath`. A socket file already there is probed first: a
 * stale one (nobody answers) is removed; a live one belongs to another
 * flanneld, which is an error (FLANNEL_ERR_ADMIN) when
 * --admin-socket was `given`, else a warning and `undefined` (flanneld runs
 * without tracing rather than take another daemon's socket).
 */
export async function startAdminServer(socketPath: string, h: AdminHandlers, log: Logger, given = true): Promise<AdminServer | undefined> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  const inUse = (why: string) => {
    const msg = `the admin socket ${socketPath} ${why}`;
    if (given) throw new AdminSocketError(`${msg}: stop that flanneld, or give this one another --admin-socket (or --admin-socket= to disable it)`);
    log.warn(`${msg}: running without the admin socket (no flannel-ts trace on this daemon); give --admin-socket=<path> to have one`);
  };
  if (await isLive(socketPath)) return void inUse('is in use by another running flanneld');
  let tracing: net.Socket | undefined;
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let req: { cmd?: string; host?: string; protocol?: number; dropsOnly?: boolean; sample?: number };
      try {
        req = JSON.parse(line);
      } catch {
        return void sock.end(`${JSON.stringify({ error: 'request is not JSON' })}\n`);
      }
      if (req.cmd === 'leases') return void sock.end(`${JSON.stringify(h.leases())}\n`);
      if (req.cmd === 'counters' && h.counters) {
        return void h.counters().then(
          (c) => sock.end(`${JSON.stringify(c)}\n`),
          (e: Error) => sock.end(`${JSON.stringify({ error: e.message })}\n`),
        );
      }
      if (req.cmd !== 'trace') return void sock.end(`${JSON.stringify({ error: `unknown command ${req.cmd}` })}\n`);
      if (tracing) return void sock.end(`${JSON.stringify({ error: 'another trace is running on this node' })}\n`);
      const filter: TraceFilter = { dropsOnly: req.dropsOnly === true };
      try {
        if (req.host) filter.host = parseIp4(req.host);
      } catch (e) {
        return void sock.end(`${JSON.stringify({ error: (e as Error).message })}\n`);
      }
      if (req.protocol !== undefined) filter.protocol = req.protocol;
      const sink = (e: TraceEvent) => {
        if (!sock.write(`${JSON.stringify(e)}\n`)) sock.pause();
      };
      if (!h.setTracer(new Tracer(filter, sink, Math.max(1, req.sample ?? 1)))) {
        return void sock.end(`${JSON.stringify({ error: 'this backend forwards in the kernel: there is nothing to trace in flanneld' })}\n`);
      }
      tracing = sock;
      log.info(`Trace attached (${line})`);
      sock.write(`${JSON.stringify({ attached: true })}\n`);
    });
    const detach = () => {
      if (tracing !== sock) return;
      tracing = undefined;
      h.setTracer(undefined);
      log.info('Trace detached');
    };
    sock.on('close', detach);
    sock.on('error', detach);
  });
  const listening = await new Promise<boolean>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      // Another flanneld started at the same moment and won the race.
      if (e.code === 'EADDRINUSE' && !given) return resolve(false);
      reject(new AdminSocketError(`cannot listen on --admin-socket ${socketPath}: ${e.message} (pick another path, or --admin-socket= to disable)`, { cause: e }));
    });
    // Root only: the socket shows every packet's headers. The umask makes it
    // 0600 from its creation (bind happens inside listen(), synchronously),
    // so there is no moment when others may connect.
    const old = process.umask(0o177);
    try {
      server.listen(socketPath, () => resolve(true));
    } finally {
      process.umask(old);
    }
  });
  if (!listening) return void inUse('was just taken by another flanneld starting at the same time');
  log.info(`Admin socket (flannel-ts trace) on ${socketPath}`);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        tracing?.destroy();
        server.close(() => resolve());
        fs.rmSync(socketPath, { force: true });
      }),
  };
}

export class AdminSocketError extends FlannelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLANNEL_ERR_ADMIN', message, options);
    this.name = 'AdminSocketError';
  }
}

/**
 * Whether a flanneld answers on `p`. A socket file nobody answers on was left
 * by a daemon that died: it is removed. Anything else at that path is an error.
 */
async function isLive(p: string): Promise<boolean> {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return false;
  }
  if (!st.isSocket()) throw new AdminSocketError(`--admin-socket ${p} exists and is not a socket: remove it or pick another path`);
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(p);
    const done = (v: boolean) => {
      clearTimeout(timer);
      c.destroy();
      resolve(v);
    };
    // A live daemon accepts at once; a wedged one that never accepts counts as live (never steal a socket).
    const timer = setTimeout(() => done(true), 1000);
    c.once('connect', () => done(true));
    c.once('error', (e: NodeJS.ErrnoException) => done(e.code !== 'ECONNREFUSED' && e.code !== 'ENOENT'));
  });
  if (!live) fs.rmSync(p, { force: true });
  return live;
}
