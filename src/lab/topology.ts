// Every backend through flannel-ts's own daemon, side by side on the same lab
// hosts: one flanneld per backend per host, each with its own etcd prefix,
// Network, subnet file, log and bridge, so udp, vxlan and host-gw can all be
// up at once and measured alternately on one topology (the bench), or checked
// one after another (the tests).
//
//   udp      Network 198.19.0.0/18    device flannel0   bridge cni0
//   vxlan    Network 198.19.64.0/18   device flannel.1  bridge brvx
//   host-gw  Network 198.19.128.0/18  (routes on eth0)  bridge brgw

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Etcd } from './etcd';
import { Daemon, type Host, Pod, type SubnetEnv, flanneldArgv, parseSubnetEnv } from './host';
import { run, waitFor } from './sh';

export const BACKENDS = ['udp', 'vxlan', 'host-gw'] as const;
export type BackendName = (typeof BACKENDS)[number];

export const BACKEND_NETWORKS: Readonly<Record<BackendName, string>> = {
  udp: '198.19.0.0/18',
  vxlan: '198.19.64.0/18',
  'host-gw': '198.19.128.0/18',
};

const BRIDGES: Readonly<Record<BackendName, string>> = { udp: 'cni0', vxlan: 'brvx', 'host-gw': 'brgw' };
const SHORT: Readonly<Record<BackendName, string>> = { udp: 'ud', vxlan: 'vx', 'host-gw': 'gw' };

export function isBackendName(s: string): s is BackendName {
  return (BACKENDS as readonly string[]).includes(s);
}

/** Writes `<prefix>/config` for a backend: its own Network, Backend.Type and any Backend options. */
export function writeBackendConfig(etcd: Etcd, prefix: string, backend: BackendName, opts: { network?: string; subnetLen?: number; backend?: Record<string, unknown> } = {}): void {
  const config: Record<string, unknown> = { Network: opts.network ?? BACKEND_NETWORKS[backend], Backend: { Type: backend, ...(opts.backend ?? {}) } };
  if (opts.subnetLen !== undefined) config.SubnetLen = opts.subnetLen;
  etcd.put(`${prefix}/config`, JSON.stringify(config));
}

/**
 * One flanneld of one backend on one lab host, with its own subnet file and
 * log, its bridge and pods. `start` may be called again after `stop` (a restart).
 */
export class BackendNode {
  readonly subnetFile: string;
  readonly logFile: string;
  readonly bridge: string;
  daemon: Daemon | undefined;
  env: SubnetEnv | undefined;
  readonly pods: Pod[] = [];
  private logOffset = 0;

  constructor(
    readonly host: Host,
    readonly backend: BackendName,
    readonly etcdEndpoint: string,
    readonly prefix: string,
    readonly extraArgs: string[] = [],
  ) {
    const tag = SHORT[backend];
    this.subnetFile = path.join(host.dir, `subnet-${tag}.env`);
    this.logFile = path.join(host.dir, `flanneld-${tag}.log`);
    this.bridge = BRIDGES[backend];
  }

  /** This node's admin socket: never the default /run/flannel/...: lab daemons keep to the lab's directory. */
  get adminSocket(): string {
    return path.join(this.host.dir, `admin-${SHORT[this.backend]}.sock`);
  }

  /** Starts bin/flanneld in the host's namespace (the lab's one command line, flanneldArgv). */
  start(extraArgs: string[] = []): Daemon {
    fs.appendFileSync(this.logFile, `--- start ${new Date().toISOString()}\n`);
    this.logOffset = fs.statSync(this.logFile).size;
    const argv = flanneldArgv({ etcdEndpoint: this.etcdEndpoint, subnetFile: this.subnetFile, adminSocket: this.adminSocket }, [`--etcd-prefix=${this.prefix}`, ...this.extraArgs, ...extraArgs]);
    this.daemon = new Daemon(this.host, this.host.lab.spawnIn(this.host.ns, argv, this.logFile), this.logFile);
    return this.daemon;
  }

  /** Waits for this run's "flanneld is ready", then reads subnet.env. */
  async waitReady(timeoutMs = 20_000): Promise<SubnetEnv> {
    const d = this.daemon;
    if (!d) throw new Error(`flanneld (${this.backend}) on ${this.host.name} was never started`);
    await Promise.race([
      d.waitForLog(/flanneld is ready/, timeoutMs, this.logOffset),
      d.exited.then((code) => {
        throw new Error(`flanneld (${this.backend}) on ${this.host.name} exited with ${code} before it was ready:\n${this.logTail()}`);
      }),
    ]);
    this.env = parseSubnetEnv(fs.readFileSync(this.subnetFile, 'utf8'));
    return this.env;
  }

  /** This run's log (since the last start). */
  log(): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8').slice(this.logOffset) : '';
  }

  logTail(n = 3000): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8').slice(-n) : '';
  }

  waitForLog(re: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    return this.daemon!.waitForLog(re, timeoutMs, this.logOffset);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    return this.daemon ? this.daemon.stop(signal) : null;
  }

  /** The bridge with the subnet's first address (as the CNI bridge plugin), created once. */
  setupBridge(env: SubnetEnv = this.env!): void {
    if (this.host.tryExec(['ip', 'link', 'show', this.bridge]).status === 0) return;
    this.host.exec(['ip', 'link', 'add', this.bridge, 'type', 'bridge']);
    this.host.exec(['ip', 'addr', 'add', env.subnet, 'dev', this.bridge]);
    this.host.exec(['ip', 'link', 'set', this.bridge, 'mtu', String(env.mtu), 'up']);
  }

  /** A pod on the bridge: the next address after the bridge's, default route via the bridge. */
  addPod(env: SubnetEnv = this.env!): Pod {
    const n = this.pods.length + 1;
    const tag = SHORT[this.backend];
    const ns = this.host.lab.addNamespace(`${this.host.name}-${tag}${n}`);
    const [first, len] = env.subnet.split('/');
    const parts = first.split('.').map(Number);
    parts[3] += n;
    const ip = parts.join('.');
    const hostSide = `v${tag}${n}`;
    run(['ip', 'link', 'add', 'eth0', 'netns', ns, 'mtu', String(env.mtu), 'type', 'veth', 'peer', 'name', hostSide, 'netns', this.host.ns, 'mtu', String(env.mtu)]);
    this.host.exec(['ip', 'link', 'set', hostSide, 'master', this.bridge, 'up']);
    run(['ip', '-n', ns, 'addr', 'add', `${ip}/${len}`, 'dev', 'eth0']);
    run(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
    run(['ip', '-n', ns, 'route', 'add', 'default', 'via', first]);
    const pod = new Pod(this.host, ns, ip);
    this.pods.push(pod);
    return pod;
  }
}

export interface BackendClusterOptions {
  prefix: string;
  network?: string;
  subnetLen?: number;
  /** Backend options besides Type, e.g. {VNI: 1, DirectRouting: true}. */
  backendOptions?: Record<string, unknown>;
  podsPerHost?: number;
  extraArgs?: string[];
}

/**
 * Writes the backend's config, starts its flanneld on every host, and gives
 * each a bridge and pods. Resolves when every daemon is ready and every pod
 * answers a ping from the first host's first pod.
 */
export async function startBackendCluster(etcd: Etcd, hosts: Host[], backend: BackendName, o: BackendClusterOptions): Promise<BackendNode[]> {
  writeBackendConfig(etcd, o.prefix, backend, { network: o.network, subnetLen: o.subnetLen, backend: o.backendOptions });
  const nodes = hosts.map((h) => new BackendNode(h, backend, etcd.endpoint, o.prefix, o.extraArgs));
  for (const n of nodes) n.start();
  await Promise.all(nodes.map((n) => n.waitReady()));
  for (const n of nodes) {
    n.setupBridge();
    for (let i = 0; i < (o.podsPerHost ?? 1); i++) n.addPod();
  }
  const from = nodes[0].pods[0];
  for (const n of nodes.slice(1)) {
    for (const p of n.pods) {
      await waitFor(`${backend}: ${from.ip} reaches ${p.ip}`, () => from.ping(p.ip, 1, 0.2, 1).received === 1, 15_000, 100);
    }
  }
  return nodes;
}
