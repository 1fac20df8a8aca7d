// The web view's HTTP server. It drives root actions (pings, iperf3, traces,
// stopping daemons), so binding to 127.0.0.1 is not enough: other local users
// can reach that address, and a page on another site can make the browser
// send requests to it (cross-site requests, DNS rebinding). Hence:
//   - a random token, given in the URL printed at start; every /api request
//     carries it in the X-Flannel-Token header (a custom header: another site
//     cannot set it without a CORS preflight, which this server never grants);
//   - the Host header must name 127.0.0.1 or localhost (a rebound DNS name
//     fails), and an Origin, when sent, must be this very origin;
//   - anything that changes something is a POST; GETs only read.
// Static files come from the repository (the page, its CSS, the compiled
// browser code): nothing is fetched from elsewhere.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { REPO_ROOT } from '../../lab/lab';
import { FlannelError } from '../../util/errors';

/** A request the page got wrong (400, or `status`): the message says what to send instead. */
export class WebRequestError extends FlannelError {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super('FLANNEL_ERR_WEB_REQUEST', message);
  }
}

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  /** Query (GET) or JSON body (POST) in, JSON out. Errors become {error, code} with status 400/500. */
  handle(input: Record<string, unknown>): Promise<unknown>;
}

/** The page's files: name in the URL → file in the repository. */
const STATIC_DIR = path.join(REPO_ROOT, 'src/demo/web/static');
const BROWSER_DIR = path.join(REPO_ROOT, 'dist/web/browser');
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json' };

function staticFile(urlPath: string): string | undefined {
  if (urlPath === '/') return path.join(STATIC_DIR, 'index.html');
  const m = /^\/(static|js)\/([\w.-]+)$/.exec(urlPath);
  if (!m || m[2].startsWith('.')) return undefined;
  const file = path.join(m[1] === 'static' ? STATIC_DIR : BROWSER_DIR, m[2]);
  return fs.existsSync(file) && fs.statSync(file).isFile() ? file : undefined;
}

const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

export interface WebServer {
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

/** Why a request is refused (403), or undefined when it may go on. */
export function refusal(req: { method?: string; headers: http.IncomingHttpHeaders; url?: string }, token: string): string | undefined {
  const host = req.headers.host ?? '';
  const hostname = host.replace(/:\d+$/, '');
  if (hostname !== '127.0.0.1' && hostname !== 'localhost') return `Host ${host} is not 127.0.0.1 or localhost`;
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${host}`) return `Origin ${origin} is not this page's (http://${host})`;
  const site = req.headers['sec-fetch-site'];
  if (req.method === 'POST' && site !== undefined && site !== 'same-origin') return `a POST from another site (Sec-Fetch-Site: ${site})`;
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/') {
    if (!sameToken(url.searchParams.get('token') ?? '', token)) return 'the page needs the token printed at start (?token=...)';
  } else if (url.pathname.startsWith('/api/')) {
    const t = req.headers['x-flannel-token'];
    if (typeof t !== 'string' || !sameToken(t, token)) return 'missing or wrong X-Flannel-Token';
  }
  return undefined;
}

function send(res: http.ServerResponse, status: number, body: string | Buffer, type: string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

async function readBody(req: http.IncomingMessage, limit = 64 * 1024): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) throw new WebRequestError('request body too large (64 KiB at most)', 413);
    chunks.push(c as Buffer);
  }
  if (size === 0) return {};
  if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) throw new WebRequestError('POST bodies are JSON (Content-Type: application/json)', 415);
  const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new WebRequestError('the body must be a JSON object');
  return v as Record<string, unknown>;
}

export async function startWebServer(port: number, routes: Route[], log: (s: string) => void): Promise<WebServer> {
  const token = crypto.randomBytes(18).toString('base64url');
  const server = http.createServer((req, res) => {
    void (async () => {
      const why = refusal(req, token);
      if (why) {
        log(`refused ${req.method} ${(req.url ?? '').replace(/token=[^&]*/, 'token=…')}: ${why}`);
        return send(res, 403, JSON.stringify({ error: why, code: 'FLANNEL_ERR_WEB_FORBIDDEN' }), 'application/json');
      }
      const url = new URL(req.url ?? '/', 'http://x');
      const route = routes.find((r) => r.path === url.pathname);
      if (route) {
        if (req.method !== route.method) return send(res, 405, JSON.stringify({ error: `${url.pathname} takes ${route.method}`, code: 'FLANNEL_ERR_WEB_METHOD' }), 'application/json');
        try {
          let input: Record<string, unknown>;
          try {
            input = req.method === 'POST' ? await readBody(req) : Object.fromEntries(url.searchParams);
          } catch (e) {
            throw e instanceof FlannelError ? e : new WebRequestError(`the body is not JSON: ${(e as Error).message}`);
          }
          const out = await route.handle(input);
          return send(res, 200, JSON.stringify(out), 'application/json');
        } catch (e) {
          const err = e as Error & { code?: string; status?: number };
          log(`${req.method} ${url.pathname}: ${err.message}`);
          return send(res, err.status ?? (err.code === 'FLANNEL_ERR_WEB_REQUEST' ? 400 : 500), JSON.stringify({ error: err.message, code: err.code ?? 'FLANNEL_ERR_WEB' }), 'application/json');
        }
      }
      if (req.method !== 'GET') return send(res, 405, JSON.stringify({ error: 'only the /api/ actions take POST', code: 'FLANNEL_ERR_WEB_METHOD' }), 'application/json');
      if (url.pathname === '/favicon.ico') return send(res, 204, '', 'image/x-icon');
      const file = staticFile(url.pathname);
      if (!file) return send(res, 404, 'not found', 'text/plain');
      send(res, 200, fs.readFileSync(file), TYPES[path.extname(file)] ?? 'application/octet-stream');
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new FlannelError('FLANNEL_ERR_WEB_LISTEN', `cannot listen on 127.0.0.1:${port}: ${e.message} (pick another --port, or --port 0 for a free one)`)),
    );
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${actual}/?token=${token}`,
    port: actual,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Runs `fn`s one after another: one trace per daemon at a time, one ping observed at a time. */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
