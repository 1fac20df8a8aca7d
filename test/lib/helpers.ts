// Shared pieces of the end-to-end tests: a lab with its own etcd, hosts
// running flanneld, and fixtures run inside namespaces.

import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab, REPO_ROOT } from '../../src/lab/lab';
export { threadsNamed } from '../../src/lab/lab';
import { Etcd } from '../../src/lab/etcd';
import type { Host, Pod } from '../../src/lab/host';
import { run } from '../../src/lab/sh';
import { requireCommands } from '../../src/lab/requirements';
import { test } from 'node:test';

export const FIXTURES = path.join(REPO_ROOT, 'dist/test/e2e/fixtures');
export const NETWORK = '198.19.0.0/16';

/** etcd key prefix per test, so tests sharing one etcd never see each other's leases. */
let prefixes = 0;
export function uniquePrefix(name: string): string {
  return `/flannel-ts-test/${process.pid}-${++prefixes}-${name}/network`;
}

/**
 * Hosts lease below 198.19.200.0 (SubnetMax), so the fake leases tests write
 * in 198.19.200.0-198.19.255.0 can never overwrite a real host's random lease.
 */
export const DEFAULT_CONFIG = { Network: NETWORK, SubnetMax: '198.19.199.0', Backend: { Type: 'udp' } };

export function writeConfig(etcd: Etcd, prefix: string, config: object | string = DEFAULT_CONFIG): void {
  etcd.put(`${prefix}/config`, typeof config === 'string' ? config : JSON.stringify(config));
}

/** Starts a lab with an etcd; `after` must call `lab.destroy()` (also on failure). */
export async function startLab(): Promise<{ lab: Lab; etcd: Etcd }> {
  requireCommands(); // names the missing package before a namespace exists
  const lab = new Lab();
  const etcd = new Etcd(lab);
  await etcd.start();
  return { lab, etcd };
}

/** Prints each daemon's log tail when a test failed, so CI output explains itself. */
export function dumpLogs(hosts: Host[], etcd?: Etcd): void {
  for (const h of hosts) {
    if (h.daemon) console.error(`--- ${h.name} flanneld log (tail)\n${h.daemon.log().slice(-3000)}`);
  }
  if (etcd) console.error(`--- etcd log (tail)\n${etcd.logTail()}`);
}

/** Runs a compiled fixture inside a namespace (synchronously). */
export function fixture(ns: string, name: string, args: string[], timeoutMs = 30_000): string {
  return run(['ip', 'netns', 'exec', ns, process.execPath, path.join(FIXTURES, `${name}.js`), ...args], { timeoutMs });
}

/** Fetches /metrics from a daemon's healthz port inside its namespace. */
export function scrape(host: Host, port: number): Map<string, number> {
  const out = host.exec([process.execPath, '-e', `fetch('http://127.0.0.1:${port}/metrics').then(r=>r.text()).then(t=>process.stdout.write(t))`]);
  return parseProm(out);
}

/** A small Prometheus text-format parser: "name{labels}" → value. */
export function parseProm(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

/** Every host's first pod pings every other host's second pod `count` times, all answered. */
export function assertPodsPingAcrossHosts(hosts: Host[], pods: Map<string, Pod[]>, count: number): void {
  for (const a of hosts) {
    for (const b of hosts) {
      if (a === b) continue;
      const from = pods.get(a.name)![0];
      const to = pods.get(b.name)![1];
      const r = from.ping(to.ip, count, 0.1);
      assert.equal(r.received, count, `${from.ip} -> ${to.ip}\n${r.output}`);
    }
  }
}

export function leaseKeys(etcd: Etcd, prefix: string): string[] {
  return [...etcd.list(`${prefix}/subnets/`).keys()].map((k) => k.slice(`${prefix}/subnets/`.length));
}

/** A thread's scheduler slice (ns, se.slice in /proc/<pid>/task/<tid>/sched); undefined on kernels before EEVDF. */
export function schedSliceNs(pid: number, tid: string): number | undefined {
  const m = /^se\.slice\s*:\s*(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/task/${tid}/sched`, 'utf8'));
  return m ? Number(m[1]) : undefined;
}

export function fileExists(p: string): boolean {
  return fs.existsSync(p);
}

/**
 * `test` that remembers a failure, so the suite's `after` can print the
 * daemons' logs (`if (suite.failed) dumpLogs(...)`) and CI output explains itself.
 */
export function failureAware(): { failed: boolean; check: (name: string, fn: () => Promise<void> | void) => void } {
  const state = {
    failed: false,
    check: (name: string, fn: () => Promise<void> | void) =>
      test(name, async () => {
        try {
          await fn();
        } catch (e) {
          state.failed = true;
          throw e;
        }
      }),
  };
  return state;
}
