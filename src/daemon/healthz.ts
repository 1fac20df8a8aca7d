// The health endpoint: flanneld's --healthz-ip/--healthz-port server.
//
//   GET /healthz  → 200 "flanneld is running" while the process lives
//   GET /readyz   → 200 "flanneld is ready" once ready() is true, else
//                   503 "flanneld is not ready yet" (plus the reason, if any)
//   GET /metrics  → 200 Prometheus text from metrics(), 404 when not given
//   anything else → 404; HEAD is answered like GET without a body; other
//                   methods on the three paths → 405.
// The bodies are flanneld's own words, so probes that match on them keep working.
//
// Callers' rules: flanneld runs this only when --healthz-port > 0; port 0
// here means "any free port" (tests). ready(), notReadyReason() and metrics()
// are called once per request and must not throw (a throwing metrics() gives
// a 500, a throwing ready() counts as not ready). close() stops listening, ends
// idle and in-flight keep-alive connections, and resolves when the server is
// fully closed; calling it again is harmless.

import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { FlannelError } from '../util/errors';

export interface HealthServerOptions {
  /** Address to listen on (flanneld's --healthz-ip, default 0.0.0.0). */
  host: string;
  /** Port to listen on; 0 = an ephemeral port (see `port` on the result). */
  port: number;
  /** True once subnet.env is written and traffic rules are in place (flanneld's isReady). */
  ready: () => boolean;
  /** Why not ready, in plain English (e.g. "waiting for the network config in etcd"). */
  notReadyReason?: () => string | undefined;
  /** Prometheus exposition text (e.g. prom-client's register.metrics()). */
  metrics?: () => Promise<string>;
  /** Content-Type of the metrics text; prom-client's register.contentType. */
  metricsContentType?: string;
}

export interface HealthServer {
  /** The host it listens on, as given. */
  readonly host: string;
  /** The port it actually listens on. */
  readonly port: number;
  close(): Promise<void>;
}

export class HealthzError extends FlannelError {
  constructor(message: string, cause?: unknown) {
    super('FLANNEL_ERR_HEALTHZ', message, { cause });
    this.name = 'HealthzError';
  }
}

const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

/** Start listening; rejects with a HealthzError (code FLANNEL_ERR_HEALTHZ) if it cannot. */
export function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    handle(opts, req, res).catch((e) => {
      // Only reachable if writing the response itself failed; nothing else to tell the client.
      res.destroy(e as Error);
    });
  });
  server.keepAliveTimeout = 5000;

  return new Promise<HealthServer>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      const why =
        e.code === 'EADDRINUSE'
          ? 'the address is already in use; pick another --healthz-port'
          : e.code === 'EADDRNOTAVAIL'
            ? 'that address is not on this host; check --healthz-ip'
            : e.code === 'EACCES'
              ? 'permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE'
              : e.message;
      reject(new HealthzError(`cannot start the health server on ${hostPort(opts.host, opts.port)}: ${why}`, e));
    };
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      const port = (server.address() as AddressInfo).port;
      let closing: Promise<void> | undefined;
      resolve({
        host: opts.host,
        port,
        close() {
          closing ??= new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          });
          return closing;
        },
      });
    });
  });
}

async function handle(opts: HealthServerOptions, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?', 1)[0];
  const known = path === '/healthz' || path === '/readyz' || path === '/metrics';
  if (!known) return reply(req, res, 404, '404 page not found');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return reply(req, res, 405, `method ${req.method} not allowed; use GET`);
  }

  if (path === '/healthz') return reply(req, res, 200, 'flanneld is running');

  if (path === '/readyz') {
    let ready = false;
    try {
      ready = opts.ready();
    } catch {
      ready = false;
    }
    if (ready) return reply(req, res, 200, 'flanneld is ready');
    let reason: string | undefined;
    try {
      reason = opts.notReadyReason?.();
    } catch {
      reason = undefined;
    }
    return reply(req, res, 503, reason ? `flanneld is not ready yet: ${reason}` : 'flanneld is not ready yet');
  }

  // /metrics
  if (!opts.metrics) return reply(req, res, 404, 'metrics are not enabled');
  let text: string;
  try {
    text = await opts.metrics();
  } catch (e) {
    return reply(req, res, 500, `cannot collect metrics: ${(e as Error)?.message ?? String(e)}`);
  }
  return reply(req, res, 200, text, opts.metricsContentType ?? PROMETHEUS_TEXT);
}

function reply(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  const buf = Buffer.from(body, 'utf8');
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': buf.length });
  res.end(req.method === 'HEAD' ? undefined : buf);
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
