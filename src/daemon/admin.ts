// The admin socket (--admin-socket): a unix socket, mode 0600 so only root
// connects, speaking JSON lines. `flannel-ts trace` sends one request and
// reads events until it hangs up.
//   {"cmd":"trace","host":"198.19.3.2","protocol":1,"dropsOnly":false,"sample":1}
//   {"cmd":"leases"}   -> one line: this node's lease table

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { TraceEvent, TraceFilter, Tracer } from '../encap/trace';
import { parseIp4 } from '../routes/ip4';
import type { Logger } from '../util/log';
import { FlannelError } from '../util/errors';

export interface AdminHandlers {
  /** Attaches a tracer to the data plane; false when the backend forwards in the kernel (nothing to trace). */
  setTracer(t: Tracer | undefined): boolean;
  leases(): unknown;
}

export interface AdminServer {
  close(): Promise<void>;
}

export async function startAdminServer(socketPath: string, h: AdminHandlers, log: Logger): Promise<AdminServer> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  removeStale(socketPath);
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new FlannelError('FLANNEL_ERR_ADMIN', `cannot listen on --admin-socket ${socketPath}: ${e.message} (pick another path, or --admin-socket= to disable)`, { cause: e })),
    );
    server.listen(socketPath, () => resolve());
  });
  // Root only: the socket shows every packet's headers.
  fs.chmodSync(socketPath, 0o600);
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

/** A socket file left by a daemon that died: remove it; a live one means another flanneld. */
function removeStale(p: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new FlannelError('FLANNEL_ERR_ADMIN', `--admin-socket ${p} exists and is not a socket: remove it or pick another path`);
  fs.rmSync(p);
}
