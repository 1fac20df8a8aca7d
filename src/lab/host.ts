// A lab host: a namespace on the underlay switch that runs flanneld, with a
// cni0 bridge holding the first address of its subnet and pods (namespaces)
// on that bridge, as the seeds' diagrams draw a node.

import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Lab, REPO_ROOT, flanneldBin, waitForLog } from './lab';
import { run, tryRun, waitFor } from './sh';
import { parseEnvText } from '../util/env-file';
import { type CniResult, CniRuntime, type ConfList, type RuntimeConf, resultHostVeth, resultIp4 } from '../cni/runtime';

/** CNI_PATH for pods networked through the plugins: bin/flannel, then Debian's plugins. */
export const CNI_PATH = [path.join(REPO_ROOT, 'bin'), '/usr/lib/cni'];

export interface SubnetEnv {
  network: string;
  subnet: string; // e.g. 198.19.7.1/24
  mtu: number;
  ipMasq: boolean;
}

/** The values a lab host needs from its subnet.env; throws naming a missing key. */
export function parseSubnetEnv(text: string): SubnetEnv {
  const kv = parseEnvText(text);
  const need = (k: string) => {
    const v = kv.get(k);
    if (v === undefined) throw new Error(`subnet.env has no ${k}`);
    return v;
  };
  return { network: need('FLANNEL_NETWORK'), subnet: need('FLANNEL_SUBNET'), mtu: Number(need('FLANNEL_MTU')), ipMasq: need('FLANNEL_IPMASQ') === 'true' };
}

/**
 * The one flanneld command line of the lab: node (with FLANNEL_TS_NODE_ARGS,
 * extra node flags such as --cpu-prof for profiling runs), bin/flanneld, and
 * the flags every lab daemon needs. Never the default /run/flannel/ paths: lab
 * daemons keep to the lab's directory. `extra` flags come last and win.
 */
export function flanneldArgv(o: { etcdEndpoint: string; subnetFile: string; adminSocket: string }, extra: string[]): string[] {
  const nodeArgs = (process.env.FLANNEL_TS_NODE_ARGS ?? '').split(' ').filter(Boolean);
  return [process.execPath, ...nodeArgs, flanneldBin(), `--etcd-endpoints=${o.etcdEndpoint}`, '--iface=eth0', `--subnet-file=${o.subnetFile}`, `--admin-socket=${o.adminSocket}`, ...extra];
}

export class Daemon {
  readonly exited: Promise<number | null>;
  constructor(
    readonly host: Host,
    readonly proc: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise((r) => proc.once('exit', (code) => r(code)));
  }
  get pid(): number {
    return this.proc.pid!;
  }
  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }
  log(): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : '';
  }
  waitForLog(re: RegExp, timeoutMs = 10_000, from = 0): Promise<RegExpMatchArray> {
    return waitForLog(this.logFile, re, timeoutMs, from);
  }
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<number | null> {
    if (this.running) this.proc.kill(signal);
    return Promise.race([this.exited, new Promise<null>((_, rej) => setTimeout(() => rej(new Error(`flanneld on ${this.host.name} did not exit after ${signal}`)), timeoutMs))]);
  }
}

export class Host {
  readonly ns: string;
  readonly dir: string;
  readonly subnetFile: string;
  readonly adminSocket: string;
  private pods = 0;
  daemon: Daemon | undefined;

  constructor(
    readonly lab: Lab,
    readonly name: string,
    /** Underlay address, 198.18.x.y */
    readonly ip: string,
    readonly mtu = 1500,
  ) {
    this.ns = lab.addNamespace(name);
    lab.plug(this.ns, 'eth0', `${ip}/16`, mtu);
    // A node forwards between cni0 and flannel0 (kubelet/docker normally set this).
    run(['ip', 'netns', 'exec', this.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    this.dir = path.join(lab.dir, name);
    fs.mkdirSync(this.dir, { recursive: true });
    this.subnetFile = path.join(this.dir, 'subnet.env');
    this.adminSocket = path.join(this.dir, 'admin.sock');
  }

  exec(argv: string[], timeoutMs?: number): string {
    return run(['ip', 'netns', 'exec', this.ns, ...argv], { timeoutMs });
  }
  tryExec(argv: string[], timeoutMs?: number) {
    return tryRun(['ip', 'netns', 'exec', this.ns, ...argv], { timeoutMs });
  }

  /** Starts bin/flanneld in this host with its own subnet file; extra flags after the defaults. */
  startFlanneld(etcdEndpoint: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = process.env): Daemon {
    const logFile = path.join(this.dir, `flanneld.log`);
    fs.appendFileSync(logFile, `--- start ${new Date().toISOString()}\n`);
    const argv = flanneldArgv({ etcdEndpoint, subnetFile: this.subnetFile, adminSocket: this.adminSocket }, extraArgs);
    this.daemon = new Daemon(this, this.lab.spawnIn(this.ns, argv, logFile, env), logFile);
    return this.daemon;
  }

  subnetEnv(): SubnetEnv {
    return parseSubnetEnv(fs.readFileSync(this.subnetFile, 'utf8'));
  }

  /** Waits for flannel0 to be up with an address (the daemon is forwarding). */
  async waitReady(timeoutMs = 15_000): Promise<SubnetEnv> {
    await waitFor(
      `flannel0 up on ${this.name}`,
      () => {
        const r = this.tryExec(['ip', '-o', '-4', 'addr', 'show', 'dev', 'flannel0']);
        return r.status === 0 && r.stdout.includes('inet ') && fs.existsSync(this.subnetFile);
      },
      timeoutMs,
      50,
    );
    return this.subnetEnv();
  }

  /** Waits for the daemon (waitReady), bridges cni0 and returns a pod on it: a host ready for traffic. */
  async waitReadyWithPod(): Promise<Pod> {
    const env = await this.waitReady();
    this.setupBridge(env);
    return this.addPod(env);
  }

  /** Creates cni0 with the subnet's first address, as the CNI bridge plugin does. */
  setupBridge(env: SubnetEnv = this.subnetEnv()): void {
    this.tryExec(['ip', 'link', 'del', 'cni0']);
    this.exec(['ip', 'link', 'add', 'cni0', 'type', 'bridge']);
    this.exec(['ip', 'addr', 'add', env.subnet, 'dev', 'cni0']);
    this.exec(['ip', 'link', 'set', 'cni0', 'mtu', String(env.mtu), 'up']);
  }

  /** A pod: a namespace with eth0 on cni0, the next free address, default route via cni0. */
  addPod(env: SubnetEnv = this.subnetEnv()): Pod {
    const n = ++this.pods;
    const ns = this.lab.addNamespace(`${this.name}-pod${n}`);
    const [first, len] = env.subnet.split('/');
    const parts = first.split('.').map(Number);
    parts[3] += n;
    const ip = parts.join('.');
    const hostSide = `veth${n}`;
    run(['ip', 'link', 'add', 'eth0', 'netns', ns, 'mtu', String(env.mtu), 'type', 'veth', 'peer', 'name', hostSide, 'netns', this.ns, 'mtu', String(env.mtu)]);
    this.exec(['ip', 'link', 'set', hostSide, 'master', 'cni0', 'up']);
    run(['ip', '-n', ns, 'addr', 'add', `${ip}/${len}`, 'dev', 'eth0']);
    run(['ip', '-n', ns, 'link', 'set', 'eth0', 'up']);
    run(['ip', '-n', ns, 'route', 'add', 'default', 'via', first]);
    return new Pod(this, ns, ip);
  }

  // --- CNI: pods networked through the flannel plugin, as kubelet would ---

  /** The flannel plugin's dataDir (saved delegate configs) for this host. */
  get cniDataDir(): string {
    return path.join(this.dir, 'cni', 'flannel');
  }

  /** host-local's store for this host (one file per reserved address). */
  get ipamDataDir(): string {
    return path.join(this.dir, 'cni', 'networks');
  }

  /**
   * The seed's cni-conf.json (flannel with hairpinMode and isDefaultGateway,
   * then portmap), pointed at this host's subnet file, dataDir and
   * host-local dataDir so nothing touches /run or /var/lib/cni.
   */
  cniConfList(cniVersion = '0.3.1', name = 'cbr0'): ConfList {
    return {
      cniVersion,
      name,
      plugins: [
        {
          type: 'flannel',
          subnetFile: this.subnetFile,
          dataDir: this.cniDataDir,
          ipam: { dataDir: this.ipamDataDir },
          delegate: { hairpinMode: true, isDefaultGateway: true },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    };
  }

  /** A CNI runtime whose plugins run inside this host's namespace. */
  cniRuntime(): CniRuntime {
    return new CniRuntime({ path: CNI_PATH, wrap: ['ip', 'netns', 'exec', this.ns] });
  }

  /** A pod namespace networked by ADD through `confList` (default: the seed's chain). */
  addCniPod(opts: { confList?: ConfList; capabilityArgs?: Record<string, unknown> } = {}): CniPod {
    const n = ++this.pods;
    const ns = this.lab.addNamespace(`${this.name}-c${n}`);
    const list = opts.confList ?? this.cniConfList();
    const rt: RuntimeConf = { containerId: ns, netns: `/run/netns/${ns}`, ifName: 'eth0', capabilityArgs: opts.capabilityArgs };
    const result = this.cniRuntime().addList(list, rt);
    const ip = resultIp4(result);
    if (!ip) throw new Error(`CNI ADD on ${this.name} gave no IPv4 address: ${JSON.stringify(result)}`);
    return new CniPod(this, ns, ip, list, rt, result);
  }
}

export class Pod {
  constructor(
    readonly host: Host,
    readonly ns: string,
    readonly ip: string,
  ) {}
  exec(argv: string[], timeoutMs?: number): string {
    return run(['ip', 'netns', 'exec', this.ns, ...argv], { timeoutMs });
  }
  tryExec(argv: string[], timeoutMs?: number) {
    return tryRun(['ip', 'netns', 'exec', this.ns, ...argv], { timeoutMs });
  }
  /** ping -c count; returns packets received and the raw output. */
  ping(target: string, count = 3, intervalS = 0.2, waitS = 2): { received: number; output: string } {
    const r = this.tryExec(['ping', '-n', '-c', String(count), '-i', String(intervalS), '-W', String(waitS), target], (count * intervalS + waitS + 5) * 1000);
    const m = /(\d+) received/.exec(r.stdout);
    return { received: m ? Number(m[1]) : 0, output: r.stdout + r.stderr };
  }
}

/** A pod created through CNI: keeps what the runtime caches (the list, its args, the ADD result). */
export class CniPod extends Pod {
  constructor(
    host: Host,
    ns: string,
    ip: string,
    readonly confList: ConfList,
    readonly rt: RuntimeConf,
    readonly result: CniResult,
  ) {
    super(host, ns, ip);
  }
  get containerId(): string {
    return this.rt.containerId;
  }
  /** The host side of the pod's veth (from the ADD result). */
  get hostVeth(): string | undefined {
    return resultHostVeth(this.result);
  }
  /** CHECK through the chain; throws CniInvokeError on failure. */
  check(): void {
    this.host.cniRuntime().checkList(this.confList, this.rt, this.result);
  }
  /** DEL through the chain, in reverse. */
  del(): void {
    this.host.cniRuntime().delList(this.confList, this.rt, this.result);
  }
}
