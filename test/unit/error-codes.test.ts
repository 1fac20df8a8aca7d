// The README's table of FLANNEL_ERR_* codes is what people who match on codes
// read: it must list every code the source raises, and no code that is gone.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { FlannelError } from '../../src/util/errors';
import { CommandError } from '../../src/util/exec';
import { Ip4Error } from '../../src/routes/ip4';
import { SubnetError } from '../../src/subnet/errors';
import { IptablesError } from '../../src/iptables/manager';
import { NftablesError } from '../../src/iptables/nftables';
import { AdminSocketError } from '../../src/daemon/admin';
import { FlagError } from '../../src/cli/flags';

const ROOT = path.resolve(__dirname, '../../..');
const CODE = /FLANNEL_ERR_[A-Z_]+/g;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.(ts|c|h)$/.test(e.name) ? [p] : [];
  });
}

test('every FLANNEL_ERR_* code in src/ is in the README table, and the table has no other', () => {
  const inSource = new Set<string>();
  for (const f of sourceFiles(path.join(ROOT, 'src'))) for (const m of fs.readFileSync(f, 'utf8').matchAll(CODE)) inSource.add(m[0]);
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Error codes'), readme.indexOf('\n## ', readme.indexOf('## Error codes') + 1));
  const inTable = new Set([...section.matchAll(/^\| `(FLANNEL_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]));
  assert.ok(inSource.size >= 15, `found ${inSource.size} codes in src/`);
  assert.deepEqual([...inSource].filter((c) => !inTable.has(c)).sort(), [], 'codes missing from the README table');
  assert.deepEqual([...inTable].filter((c) => !inSource.has(c)).sort(), [], 'README lists codes nothing raises');
});

test('the error classes are FlannelErrors with their code', () => {
  const cases: [FlannelError, string][] = [
    [new CommandError(['ip', 'link'], 1, 'x'), 'FLANNEL_ERR_COMMAND'],
    [new Ip4Error('bad'), 'FLANNEL_ERR_BAD_IP'],
    [new SubnetError('FLANNEL_ERR_LEASE_RACE', 'lost'), 'FLANNEL_ERR_LEASE_RACE'],
    [new IptablesError('failed'), 'FLANNEL_ERR_IPTABLES'],
    [new NftablesError('failed'), 'FLANNEL_ERR_NFTABLES'],
    [new AdminSocketError('in use'), 'FLANNEL_ERR_ADMIN'],
    [new FlagError('bad flag'), 'FLANNEL_ERR_FLAG'],
  ];
  for (const [e, code] of cases) {
    assert.ok(e instanceof FlannelError && e instanceof Error, e.name);
    assert.equal(e.code, code);
  }
});
