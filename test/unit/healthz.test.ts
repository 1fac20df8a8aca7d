import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { Writable } from 'node:stream';

import { startHealthServer, HealthzError } from '../../src/daemon/healthz';
import { createLogger, levelForVerbosity } from '../../src/util/log';

interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

function request(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('health server', () => {
  test('/healthz is 200 while the process lives; /readyz follows ready()', async () => {
    let ready = false;
    const srv = await startHealthServer({ host: '127.0.0.1', port: 0, ready: () => ready, notReadyReason: () => 'waiting for the network config in etcd' });
    try {
      assert.ok(srv.port > 0);
      const h = await request(srv.port, '/healthz');
      assert.equal(h.status, 200);
      assert.equal(h.body, 'flanneld is running');

      const r1 = await request(srv.port, '/readyz');
      assert.equal(r1.status, 503);
      assert.equal(r1.body, 'flanneld is not ready yet: waiting for the network config in etcd');

      ready = true;
      const r2 = await request(srv.port, '/readyz?verbose');
      assert.equal(r2.status, 200);
      assert.equal(r2.body, 'flanneld is ready');
    } finally {
      await srv.close();
    }
  });

  test('a throwing ready() counts as not ready', async () => {
    const srv = await startHealthServer({
      host: '127.0.0.1',
      port: 0,
      ready: () => {
        throw new Error('boom');
      },
    });
    try {
      const r = await request(srv.port, '/readyz');
      assert.equal(r.status, 503);
      assert.equal(r.body, 'flanneld is not ready yet');
    } finally {
      await srv.close();
    }
  });

  test('/metrics: 404 without a callback, Prometheus text with one, 500 when it fails', async () => {
    const none = await startHealthServer({ host: '127.0.0.1', port: 0, ready: () => true });
    try {
      assert.equal((await request(none.port, '/metrics')).status, 404);
    } finally {
      await none.close();
    }

    let fail = false;
    const srv = await startHealthServer({
      host: '127.0.0.1',
      port: 0,
      ready: () => true,
      metrics: async () => {
        if (fail) throw new Error('registry broken');
        return '# HELP flannel_up 1 when up\n# TYPE flannel_up gauge\nflannel_up 1\n';
      },
    });
    try {
      const m = await request(srv.port, '/metrics');
      assert.equal(m.status, 200);
      assert.match(m.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
      assert.match(m.body, /^flannel_up 1$/m);
      fail = true;
      const e = await request(srv.port, '/metrics');
      assert.equal(e.status, 500);
      assert.match(e.body, /registry broken/);
    } finally {
      await srv.close();
    }
  });

  test('other paths are 404, other methods 405, HEAD has no body', async () => {
    const srv = await startHealthServer({ host: '127.0.0.1', port: 0, ready: () => true });
    try {
      assert.equal((await request(srv.port, '/')).status, 404);
      assert.equal((await request(srv.port, '/healthz/')).status, 404);
      assert.equal((await request(srv.port, '/nope')).status, 404);
      const p = await request(srv.port, '/healthz', 'POST');
      assert.equal(p.status, 405);
      assert.equal(p.headers.allow, 'GET, HEAD');
      const h = await request(srv.port, '/healthz', 'HEAD');
      assert.equal(h.status, 200);
      assert.equal(h.body, '');
    } finally {
      await srv.close();
    }
  });

  test('close() ends keep-alive connections, stops listening, and may be called twice', async () => {
    const srv = await startHealthServer({ host: '127.0.0.1', port: 0, ready: () => true });
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: srv.port, path: '/healthz', agent }, (res) => {
          res.resume();
          res.on('end', resolve);
        })
        .on('error', reject);
    });
    await Promise.all([srv.close(), srv.close()]);
    await srv.close();
    agent.destroy();
    await assert.rejects(request(srv.port, '/healthz'), /ECONNREFUSED/);
  });

  test('a port in use is a HealthzError that says so', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      await assert.rejects(startHealthServer({ host: '127.0.0.1', port, ready: () => true }), (e: unknown) => {
        assert.ok(e instanceof HealthzError);
        assert.equal(e.code, 'FLANNEL_ERR_HEALTHZ');
        assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}.*already in use`));
        return true;
      });
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});

describe('logger', () => {
  test('-v maps to pino levels', () => {
    assert.equal(levelForVerbosity(0), 'info');
    assert.equal(levelForVerbosity(-1), 'info');
    assert.equal(levelForVerbosity(1), 'debug');
    assert.equal(levelForVerbosity(2), 'trace');
    assert.equal(levelForVerbosity(10), 'trace');
  });

  test('writes JSON lines with the level name and message', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const log = createLogger(1, 'flanneld', sink);
    log.debug({ subnet: '198.19.7.0/24' }, 'Acquired the lease');
    log.trace('not shown at -v=1');
    assert.equal(lines.length, 1);
    const rec = JSON.parse(lines[0]);
    assert.equal(rec.level, 'debug');
    assert.equal(rec.name, 'flanneld');
    assert.equal(rec.msg, 'Acquired the lease');
    assert.equal(rec.subnet, '198.19.7.0/24');
    assert.equal(typeof rec.time, 'string');
  });

  test('the default destination is stderr', () => {
    const log = createLogger(0);
    assert.equal(log.level, 'info');
  });
});
