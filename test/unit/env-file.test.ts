// subnet.env's one reader: the lines flannel writes, and what godotenv (flannel's reader) also accepts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseEnvText } from '../../src/util/env-file';

test('KEY=VALUE lines as flanneld writes them', () => {
  const kv = parseEnvText('FLANNEL_NETWORK=198.19.0.0/16\nFLANNEL_SUBNET=198.19.7.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n');
  assert.deepEqual(
    [...kv],
    [
      ['FLANNEL_NETWORK', '198.19.0.0/16'],
      ['FLANNEL_SUBNET', '198.19.7.1/24'],
      ['FLANNEL_MTU', '1472'],
      ['FLANNEL_IPMASQ', 'true'],
    ],
  );
});

test('export, quotes, comments, CRLF and lines without = as godotenv reads them', () => {
  const kv = parseEnvText('# written by hand\r\nexport A=1\r\nB="two words"\nC=\'x\' \nD=3 # note\nnot a line\n=nokey\n');
  assert.deepEqual(Object.fromEntries(kv), { A: '1', B: 'two words', C: 'x', D: '3' });
});
