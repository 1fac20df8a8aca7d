// The web view's request checks (src/demo/web/server.ts): what gets refused
// before any handler runs. The end-to-end test (test/e2e/web.test.ts) sends
// the same kinds of request to a live server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refusal } from '../../src/demo/web/server';

const TOKEN = 'k3y';
const req = (method: string, url: string, headers: Record<string, string>) => ({ method, url, headers });

test('the page and the API need the token; static files do not', () => {
  assert.equal(refusal(req('GET', `/?token=${TOKEN}`, { host: '127.0.0.1:7070' }), TOKEN), undefined);
  assert.match(refusal(req('GET', '/', { host: '127.0.0.1:7070' }), TOKEN)!, /token/);
  assert.match(refusal(req('GET', '/?token=k3', { host: '127.0.0.1:7070' }), TOKEN)!, /token/);
  assert.match(refusal(req('GET', '/api/state', { host: '127.0.0.1:7070' }), TOKEN)!, /X-Flannel-Token/);
  assert.match(refusal(req('GET', `/api/state?token=${TOKEN}`, { host: '127.0.0.1:7070' }), TOKEN)!, /X-Flannel-Token/, 'the API takes the header, not the query');
  assert.equal(refusal(req('GET', '/api/state', { host: '127.0.0.1:7070', 'x-flannel-token': TOKEN }), TOKEN), undefined);
  assert.equal(refusal(req('GET', '/js/main.js', { host: 'localhost:7070' }), TOKEN), undefined);
});

test('another Host (DNS rebinding) or another Origin is refused, also with the token', () => {
  const ok = { 'x-flannel-token': TOKEN };
  assert.match(refusal(req('GET', '/api/state', { ...ok, host: 'attacker.example:7070' }), TOKEN)!, /Host/);
  assert.match(refusal(req('GET', '/js/main.js', { host: 'attacker.example' }), TOKEN)!, /Host/);
  assert.match(refusal(req('POST', '/api/flanneld', { ...ok, host: '127.0.0.1:7070', origin: 'http://attacker.example' }), TOKEN)!, /Origin/);
  assert.match(refusal(req('POST', '/api/flanneld', { ...ok, host: '127.0.0.1:7070', origin: 'http://127.0.0.1:8080' }), TOKEN)!, /Origin/, 'another port is another origin');
  assert.match(refusal(req('POST', '/api/flanneld', { ...ok, host: '127.0.0.1:7070', 'sec-fetch-site': 'cross-site' }), TOKEN)!, /another site/);
  // Through ssh -L the local port may differ: Host and Origin agree with each other.
  assert.equal(refusal(req('POST', '/api/flanneld', { ...ok, host: 'localhost:9000', origin: 'http://localhost:9000', 'sec-fetch-site': 'same-origin' }), TOKEN), undefined);
});
