// Where a kept demo (`flannel-ts demo --keep`) records its cluster, read by
// `flannel-ts shell` and `flannel-ts demo --down`. One kept demo at a time.
//
// Default: <tmpdir>/flannel-ts-demo/state.json (tmpdir is $TMPDIR or /tmp),
// or $FLANNEL_TS_DEMO_STATE, or --state FILE on each command.

import * as os from 'node:os';
import * as path from 'node:path';
import type { LabState } from '../lab/lab';

export function defaultStatePath(): string {
  return process.env.FLANNEL_TS_DEMO_STATE || path.join(os.tmpdir(), 'flannel-ts-demo', 'state.json');
}

/** What the demo adds to the lab's own record (LabState.extra). */
export interface DemoFacts {
  etcd: { ns: string; endpoint: string; prefix: string };
  hosts: {
    name: string;
    ns: string;
    ip: string;
    subnet: string;
    adminSocket: string;
    subnetFile: string;
  }[];
  /** Every namespace a user may step into: short name (h1, h1-pod1, etcd...) → namespace. */
  places: Record<string, { ns: string; what: string; ip?: string; host?: string }>;
  /** The command that runs this tool (bin/flannel-ts or flannel-ts), for printed hints. */
  self: string;
}

export function demoFacts(state: LabState): DemoFacts {
  const f = state.extra as unknown as DemoFacts;
  if (!f || typeof f.places !== 'object') throw new Error('the state file has no demo record (was it written by flannel-ts demo --keep?)');
  return f;
}
