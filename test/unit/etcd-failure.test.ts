// describeEtcdFailure turns what grpc-js, OpenSSL and etcd say into one stable
// line an operator can act on. The `raw` messages below were captured from the
// etcd3 client (grpc-js 1.x, Node 20's OpenSSL 3) failing against listeners
// in a private network namespace: nothing listening, a plain TCP server, TLS
// servers with an untrusted, a wrong-host and a client-certificate-demanding
// certificate, and a server that never answers. The etcd server's own
// refusals (auth, permissions) are etcd's rpctypes texts, in the error classes
// etcd3 casts them to.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EtcdAuthenticationFailedError, EtcdPermissionDeniedError, GRPCDeadlineExceededError, GRPCUnauthenticatedError, GRPCUnavailableError } from 'etcd3';
import { describeEtcdFailure } from '../../src/subnet/registry';

const ctx = { endpoints: 'https://198.18.0.250:2379', tls: { ca: '/etc/ca.pem', cert: '/etc/c.pem', key: '/etc/c.key' }, username: 'flannel', prefix: '/coreos.com/network' };
const plainCtx = { endpoints: 'http://198.18.0.250:2379', prefix: '/coreos.com/network' };

const cases: { name: string; error: Error; ctx?: Parameters<typeof describeEtcdFailure>[1]; says: RegExp }[] = [
  {
    name: 'nothing listens',
    error: new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379. Resolution note: '),
    ctx: plainCtx,
    says: /^connect ECONNREFUSED 127\.0\.0\.1:2379: nothing listens there; check that etcd is running at http:\/\/198\.18\.0\.250:2379 \(--etcd-endpoints\)$/,
  },
  {
    name: 'no route to the endpoint',
    error: new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: Error: connect ENETUNREACH 198.18.255.254:2379 - Local (0.0.0.0:0). Resolution note: '),
    ctx: plainCtx,
    says: /^cannot reach etcd \(connect ENETUNREACH .*\); check that etcd is running and reachable at http:\/\/198\.18\.0\.250:2379 \(--etcd-endpoints\), and that it does not expect TLS/,
  },
  {
    name: 'a server that never answers',
    error: new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded after 1.503s,name resolution: 0.001s,Waiting for LB pick'),
    ctx: plainCtx,
    says: /^cannot reach etcd \(4 DEADLINE_EXCEEDED: Deadline exceeded\); check that etcd is running/,
  },
  {
    name: 'https to a server without TLS',
    error: new GRPCUnavailableError(
      '14 UNAVAILABLE: No connection established. Last error: Error: 803C62E5DF7F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../deps/openssl/openssl/ssl/record/ssl3_record.c:350:\n. Resolution note: ',
    ),
    says: /^TLS: wrong version number; does etcd at https:\/\/198\.18\.0\.250:2379 speak TLS\? Use https:\/\/ endpoints for a TLS etcd and http:\/\/ otherwise$/,
  },
  {
    name: 'a server certificate nobody here trusts',
    error: new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: Error: self-signed certificate. Resolution note: '),
    says: /^TLS: etcd's server certificate is not trusted \(self-signed certificate\); --etcd-cafile \(\/etc\/ca\.pem\) must be the CA/,
  },
  {
    name: 'a server certificate for another address',
    error: new GRPCUnavailableError(
      "14 UNAVAILABLE: No connection established. Last error: Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: IP: 127.0.0.1 is not in the cert's list: 198.18.9.9. Resolution note: ",
    ),
    says: /^TLS: etcd's server certificate is not for the address in --etcd-endpoints \(.*altnames.*\); use an address its subjectAltName lists$/,
  },
  {
    name: 'no client certificate where etcd demands one (OpenSSL alert, timestamp dropped)',
    error: new GRPCUnavailableError(
      '14 UNAVAILABLE: No connection established. Last error: 80AC0D6CEA7F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 116\n (2026-12-04T15:14:03.343Z). Resolution note: ',
    ),
    says: /^TLS: etcd refused this node's client certificate \(tlsv13 alert certificate required\); .*check --etcd-certfile \(\/etc\/c\.pem\) and --etcd-keyfile \(\/etc\/c\.key\)$/,
  },
  {
    name: 'a client certificate the server rejects after the TLS 1.3 handshake (grpc-js says only "Failed to connect")',
    error: new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: Failed to connect (2026-12-04T15:14:03.395Z). Resolution note: '),
    says: /^cannot reach etcd \(Failed to connect\); check that etcd is running and reachable at https:\/\/198\.18\.0\.250:2379/,
  },
  {
    name: 'wrong password',
    error: new EtcdAuthenticationFailedError('3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password'),
    says: /^etcd refused the credentials of user "flannel" \(etcdserver: authentication failed, invalid user ID or password\); check --etcd-username and --etcd-password$/,
  },
  {
    name: 'auth enabled, no user given',
    error: new GRPCUnauthenticatedError('16 UNAUTHENTICATED: etcdserver: user name is empty'),
    says: /^etcd requires authentication \(etcdserver: user name is empty\); give --etcd-username and --etcd-password$/,
  },
  {
    name: 'a user without rights on the prefix',
    error: new EtcdPermissionDeniedError('7 PERMISSION_DENIED: etcdserver: permission denied'),
    says: /^etcd user "flannel" may not use \/coreos\.com\/network \(etcdserver: permission denied\); grant it read\/write on the prefix, e\.g\. etcdctl role grant-permission <role> --prefix=true readwrite \/coreos\.com\/network\/$/,
  },
];

for (const c of cases) {
  test(`describeEtcdFailure: ${c.name}`, () => {
    assert.match(describeEtcdFailure(c.error, c.ctx ?? ctx), c.says);
  });
}

test('describeEtcdFailure is stable across retries: timestamps and timings do not reach the line', () => {
  const at = (t: string) => new GRPCUnavailableError(`14 UNAVAILABLE: No connection established. Last error: Failed to connect (${t}). Resolution note: `);
  assert.equal(describeEtcdFailure(at('2026-12-04T15:14:03.395Z'), ctx), describeEtcdFailure(at('2026-12-04T15:14:09.001Z'), ctx));
  const after = (s: string) => new GRPCDeadlineExceededError(`4 DEADLINE_EXCEEDED: Deadline exceeded after ${s},name resolution: 0.001s,Waiting for LB pick`);
  assert.equal(describeEtcdFailure(after('1.503s'), plainCtx), describeEtcdFailure(after('5.012s'), plainCtx));
});
