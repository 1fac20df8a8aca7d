// A minimal container runtime side of CNI (what libcni does for containerd
// or CRI-O): runs a network configuration list's plugins in order for ADD,
// each given the previous one's result as `prevResult`, in reverse for DEL,
// and in order for CHECK with the cached ADD result. Capabilities the list
// declares (portMappings...) are passed as `runtimeConfig`.
//
// Used by the namespace lab (pods networked through the real plugins) and by
// the tests; `wrap` runs the plugins somewhere else, e.g. inside a host's
// network namespace (`ip netns exec <ns>`).

import { spawnSync } from 'node:child_process';
import { CniError } from './errors';
import { findInPath, parseCniError } from './invoke';
import { versionAtLeast } from './version';

export interface ConfList {
  cniVersion: string;
  name: string;
  plugins: Record<string, unknown>[];
}

export interface RuntimeConf {
  containerId: string;
  /** Path of the container's network namespace, e.g. /run/netns/<name>. */
  netns: string;
  ifName: string;
  /** CNI_ARGS. */
  args?: string;
  /** Values for the capabilities plugins declare, e.g. { portMappings: [...] }. */
  capabilityArgs?: Record<string, unknown>;
}

export interface CniRuntimeOptions {
  /** CNI_PATH directories, searched in order. */
  path: string[];
  /** Argv prefix to run each plugin under (e.g. ['ip', 'netns', 'exec', ns]). */
  wrap?: string[];
  timeoutMs?: number;
}

/** A plugin failed: its CNI error (code, msg, details), with the plugin and command. */
export class CniInvokeError extends Error {
  constructor(
    readonly plugin: string,
    readonly command: string,
    readonly error: CniError,
    readonly stderr: string,
  ) {
    super(`${plugin} ${command} failed: code ${error.cniCode}: ${error.message}${stderr ? `\n${stderr.trim().slice(-2000)}` : ''}`);
  }
}

export type CniResult = Record<string, unknown>;

export class CniRuntime {
  constructor(private readonly opts: CniRuntimeOptions) {}

  /** Runs one plugin: resolves its stdout parsed as JSON (undefined when empty). @throws CniInvokeError */
  invoke(command: string, conf: Record<string, unknown>, rt: RuntimeConf): CniResult | undefined {
    const type = String(conf.type);
    const file = findInPath(type, this.opts.path.join(':'));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CNI_COMMAND: command,
      CNI_CONTAINERID: rt.containerId,
      CNI_NETNS: rt.netns,
      CNI_IFNAME: rt.ifName,
      CNI_ARGS: rt.args ?? '',
      CNI_PATH: this.opts.path.join(':'),
    };
    const argv = [...(this.opts.wrap ?? []), file];
    const r = spawnSync(argv[0], argv.slice(1), { input: JSON.stringify(conf), env, encoding: 'utf8', timeout: this.opts.timeoutMs ?? 60_000 });
    const stdout = r.stdout ?? '';
    if (r.status !== 0) {
      const e = parseCniError(stdout) ?? new CniError(999, `${type} ${command} exited with ${r.status ?? r.signal ?? r.error}`, stdout.trim());
      throw new CniInvokeError(type, command, e, r.stderr ?? '');
    }
    return stdout.trim() === '' ? undefined : (JSON.parse(stdout) as CniResult);
  }

  /** libcni's buildOneConfig: name and cniVersion from the list, prevResult, runtimeConfig from capabilities. */
  pluginConf(list: ConfList, plugin: Record<string, unknown>, prevResult: CniResult | undefined, rt: RuntimeConf): Record<string, unknown> {
    const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
    if (prevResult !== undefined) conf.prevResult = prevResult;
    const caps = (plugin.capabilities ?? {}) as Record<string, boolean>;
    const rc: Record<string, unknown> = {};
    for (const [cap, on] of Object.entries(caps)) {
      if (on && rt.capabilityArgs && cap in rt.capabilityArgs) rc[cap] = rt.capabilityArgs[cap];
    }
    if (Object.keys(rc).length > 0) conf.runtimeConfig = rc;
    return conf;
  }

  /** ADD through the chain; returns the last plugin's result (the runtime caches it for CHECK and DEL). */
  addList(list: ConfList, rt: RuntimeConf): CniResult {
    let prev: CniResult | undefined;
    for (const p of list.plugins) prev = this.invoke('ADD', this.pluginConf(list, p, prev, rt), rt);
    if (!prev) throw new Error(`ADD of ${list.name} gave no result`);
    return prev;
  }

  /** CHECK through the chain with the cached result (0.4.0 and later). */
  checkList(list: ConfList, rt: RuntimeConf, cached: CniResult): void {
    for (const p of list.plugins) this.invoke('CHECK', this.pluginConf(list, p, cached, rt), rt);
  }

  /** DEL through the chain in reverse; from 0.4.0 each plugin gets the cached result. */
  delList(list: ConfList, rt: RuntimeConf, cached?: CniResult): void {
    const prev = cached && versionAtLeast(list.cniVersion, '0.4.0') ? cached : undefined;
    for (const p of [...list.plugins].reverse()) this.invoke('DEL', this.pluginConf(list, p, prev, rt), rt);
  }
}

/** The first IPv4 address of a result ("198.19.7.2"), from `ips[].address`. */
export function resultIp4(result: CniResult): string | undefined {
  const ips = (result.ips ?? []) as { address?: string }[];
  for (const ip of ips) {
    const a = ip.address?.split('/')[0];
    if (a && !a.includes(':')) return a;
  }
  return undefined;
}

/** The host-side interface of a result: an interface without `sandbox` that is not the bridge. */
export function resultHostVeth(result: CniResult, bridge = 'cni0'): string | undefined {
  const ifs = (result.interfaces ?? []) as { name?: string; sandbox?: string }[];
  return ifs.find((i) => !i.sandbox && i.name !== bridge)?.name;
}
