// The flannel CNI plugin (`flannel-ts cni`, or `bin/flannel` in a CNI bin
// directory): a meta-plugin that reads flanneld's subnet.env, builds a config
// for the bridge plugin (or the `delegate` section's type) and calls it, as
// flannel's own cni-plugin does. The dispatch (environment checks, version
// checks, errors as JSON) follows the reference library's skel package.
//
//   ADD    build the delegate config, save it as <dataDir>/<CNI_CONTAINERID>,
//          run the delegate's ADD and print its result.
//   DEL    run the delegate's DEL on the saved config (so DEL works after
//          subnet.env changed or vanished), then remove it; nothing saved:
//          success, per the spec.
//   CHECK  (cniVersion 0.4.0 and later) the delegate's CHECK on the saved
//          config with the runtime's prevResult. flannel's own CHECK does
//          nothing; flannel-ts asks the bridge, which verifies the veth, the
//          address and host-local's reservation.
//   VERSION the versions spoken: 0.3.1, 0.4.0, 1.0.0.
//
// runPlugin is pure apart from the files it reads and writes and the plugin
// it runs, so tests call it in-process; main() wires it to the process.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { type FlannelNetConf, buildDelegateConf, confVersion, loadSubnetEnv, marshalSorted, parseConfJson, parseFlannelConf } from './conf';
import { CNI_CODES, CniError, errorText } from './errors';
import { type PluginExec, delegate, execPlugin } from './invoke';
import { CURRENT_VERSION, SUPPORTED_VERSIONS, isSupported, parseVersion, versionAtLeast, versionInfo } from './version';
import { version } from '../util/version';

export interface PluginInput {
  env: NodeJS.ProcessEnv;
  stdin: Buffer | string;
  /** How delegates are run (tests replace it). */
  exec?: PluginExec;
}

export interface PluginOutput {
  stdout: string;
  stderr: string;
  exitCode: number;
}

type Command = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'GC' | 'STATUS';

/** Which variables each command needs (skel's table). */
const REQUIRED: Record<string, Command[]> = {
  CNI_CONTAINERID: ['ADD', 'CHECK', 'DEL'],
  CNI_NETNS: ['ADD', 'CHECK'],
  CNI_IFNAME: ['ADD', 'CHECK', 'DEL'],
  CNI_PATH: ['ADD', 'CHECK', 'DEL', 'GC', 'STATUS'],
};

const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function about(): string {
  return `CNI Plugin flannel version ${version()} (flannel-ts, ${process.platform}/${process.arch})\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(', ')}\n`;
}

function checkEnv(env: NodeJS.ProcessEnv): Command {
  const cmd = (env.CNI_COMMAND ?? '') as Command;
  const missing: string[] = [];
  if (!cmd) missing.push('CNI_COMMAND');
  for (const [name, cmds] of Object.entries(REQUIRED)) {
    const v = env[name] ?? '';
    if (v === '') {
      if (cmds.includes(cmd)) missing.push(name);
      continue;
    }
    if (!cmds.includes(cmd)) continue;
    if (name === 'CNI_CONTAINERID' && !ID_RE.test(v)) throw new CniError(CNI_CODES.invalidEnvironment, 'invalid characters in containerID', v);
    if (name === 'CNI_IFNAME') {
      if (v.length > 15) throw new CniError(CNI_CODES.invalidEnvironment, 'interface name is too long', 'interface name should be less than 16 characters');
      if (v === '.' || v === '..') throw new CniError(CNI_CODES.invalidEnvironment, 'interface name is . or ..');
      if (/[/:\s]/.test(v)) throw new CniError(CNI_CODES.invalidEnvironment, 'interface name contains / or : or whitespace characters');
    }
  }
  if (missing.length > 0) throw new CniError(CNI_CODES.invalidEnvironment, `required env variables [${missing.join(',')}] missing`);
  return cmd;
}

function incompatible(v: string): CniError {
  return new CniError(CNI_CODES.incompatibleVersion, 'incompatible CNI versions', `config is "${v}", plugin supports [${SUPPORTED_VERSIONS.map((s) => `"${s}"`).join(' ')}]`);
}

/** The config's version, checked parseable (code 6 if not). */
function versionOf(o: Record<string, unknown>): string {
  const v = confVersion(o) || '0.1.0';
  try {
    parseVersion(v);
  } catch (e) {
    throw new CniError(CNI_CODES.decodingFailure, errorText(e));
  }
  return v;
}

/** Runs one plugin invocation. Never throws: errors become the spec's error JSON and exit code 1. */
export function runPlugin(input: PluginInput): PluginOutput {
  const { env } = input;
  const exec = input.exec ?? execPlugin;
  const stderr: string[] = [];
  let cniVersion = CURRENT_VERSION;
  try {
    let cmd: Command;
    try {
      cmd = checkEnv(env);
    } catch (e) {
      // No command at all: print what this is (skel's "about"), successfully.
      if (!env.CNI_COMMAND) return { stdout: '', stderr: about(), exitCode: 0 };
      throw e;
    }
    if (cmd === 'VERSION') return { stdout: `${JSON.stringify(versionInfo())}\n`, stderr: '', exitCode: 0 };
    if (!['ADD', 'DEL', 'CHECK', 'GC', 'STATUS'].includes(cmd)) {
      throw new CniError(CNI_CODES.invalidEnvironment, `unknown CNI_COMMAND: ${cmd}`);
    }
    const raw = parseConfJson(input.stdin);
    if (confVersion(raw)) cniVersion = confVersion(raw);
    const version = versionOf(raw);
    if (cmd === 'CHECK' || cmd === 'GC' || cmd === 'STATUS') {
      const since = cmd === 'CHECK' ? '0.4.0' : '1.1.0';
      if (!versionAtLeast(version, since)) throw new CniError(CNI_CODES.incompatibleVersion, `config version does not allow ${cmd}`);
      if (cmd !== 'CHECK') {
        if (!isSupported(version)) throw new CniError(CNI_CODES.incompatibleVersion, `plugin version does not allow ${cmd}`);
      }
    }
    if (!isSupported(version)) throw incompatible(version);
    const conf = parseFlannelConf(raw);
    const ctx: Ctx = { env, exec, conf, log: (s) => stderr.push(s) };
    let stdout = '';
    if (cmd === 'ADD') stdout = cmdAdd(ctx);
    else if (cmd === 'DEL') cmdDel(ctx);
    else if (cmd === 'CHECK') cmdCheck(ctx);
    return { stdout, stderr: stderr.join(''), exitCode: 0 };
  } catch (e) {
    const err = e instanceof CniError ? e : new CniError(CNI_CODES.internal, errorText(e));
    return { stdout: `${JSON.stringify(err.toJSON(cniVersion), null, 4)}\n`, stderr: stderr.join(''), exitCode: 1 };
  }
}

interface Ctx {
  env: NodeJS.ProcessEnv;
  exec: PluginExec;
  conf: FlannelNetConf;
  log: (s: string) => void;
}

function savedPath(ctx: Ctx): string {
  return path.join(ctx.conf.dataDir, ctx.env.CNI_CONTAINERID!);
}

/** flannel's saveScratchNetConf: dataDir 0700, the file 0600, synced before the delegate runs. */
function saveDelegateConf(file: string, text: string): void {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const fd = fs.openSync(file, 'w', 0o600);
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw new CniError(CNI_CODES.ioFailure, `cannot save the delegate config to ${file}: ${errorText(e)}`, 'check the plugin\'s "dataDir"');
  }
}

/** The namespace at CNI_NETNS must not be the plugin's own (skel checks it too). */
function checkNetns(netns: string): void {
  try {
    const ours = fs.statSync('/proc/self/ns/net');
    const theirs = fs.statSync(netns);
    if (ours.dev === theirs.dev && ours.ino === theirs.ino) {
      throw new CniError(CNI_CODES.invalidNetns, "plugin's netns and netns from CNI_NETNS should not be the same");
    }
  } catch (e) {
    if (e instanceof CniError) throw e;
    // A netns that cannot be stat'ed: the delegate reports it.
  }
}

function cmdAdd(ctx: Ctx): string {
  const env = loadSubnetEnv(ctx.conf.subnetFile);
  const d = buildDelegateConf(ctx.conf, env);
  checkNetns(ctx.env.CNI_NETNS!);
  const text = marshalSorted(d);
  ctx.log(`delegateAdd: netconf sent to delegate plugin:\n${text}\n`);
  // Saved before the delegate runs: a failed ADD is followed by a DEL that needs it.
  saveDelegateConf(savedPath(ctx), text);
  return delegate('ADD', d.type as string, text, ctx.env, ctx.exec);
}

function readSaved(ctx: Ctx): string | undefined {
  try {
    return fs.readFileSync(savedPath(ctx), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CniError(CNI_CODES.ioFailure, `cannot read the saved delegate config ${savedPath(ctx)}: ${errorText(e)}`);
  }
}

function cmdDel(ctx: Ctx): void {
  const text = readSaved(ctx);
  // Nothing saved: never added, or already deleted. The spec asks for success.
  if (text === undefined) return;
  let type: unknown;
  try {
    type = (JSON.parse(text) as { type?: unknown }).type;
  } catch (e) {
    // flannel's choice: the interface stays on the bridge until the node reboots.
    ctx.log(`failed to parse netconf: ${errorText(e)}\n`);
    return;
  }
  if (typeof type !== 'string') {
    ctx.log(`failed to parse netconf: no "type" in ${savedPath(ctx)}\n`);
    return;
  }
  delegate('DEL', type, text, ctx.env, ctx.exec);
  try {
    fs.unlinkSync(savedPath(ctx));
  } catch {
    // Per spec, DEL goes on despite a leftover.
  }
}

function cmdCheck(ctx: Ctx): void {
  let d: Record<string, unknown>;
  const text = readSaved(ctx);
  if (text !== undefined) {
    try {
      d = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw new CniError(CNI_CODES.decodingFailure, `cannot parse the saved delegate config ${savedPath(ctx)}: ${errorText(e)}`);
    }
  } else {
    // Saved config lost: check against what ADD would build now.
    d = buildDelegateConf(ctx.conf, loadSubnetEnv(ctx.conf.subnetFile));
  }
  if (typeof d.type !== 'string') throw new CniError(CNI_CODES.decodingFailure, `no "type" in the saved delegate config ${savedPath(ctx)}`);
  if (ctx.conf.cniVersion !== '') d.cniVersion = ctx.conf.cniVersion;
  if (ctx.conf.prevResult) d.prevResult = routesWithGateways(ctx.conf.prevResult);
  delegate('CHECK', d.type, marshalSorted(d), ctx.env, ctx.exec);
}

/**
 * prevResult for the delegate's CHECK, its gateway-less routes given the
 * gateway they were installed with (the result's gateway of the same
 * family: IPAM's ConfigureIface routes a route without `gw` via it). Flannel's
 * route to the Network has no `gw`, and containernetworking-plugins before
 * v1.3.0 (Debian 12 ships 1.1.1) looked such a route up as "no gateway" and
 * failed every CHECK (fixed upstream in c347755f). With the gateway filled in,
 * old and new plugins check the route the kernel really holds.
 */
export function routesWithGateways(prev: Record<string, unknown>): Record<string, unknown> {
  const ips = Array.isArray(prev.ips) ? (prev.ips as { address?: unknown; gateway?: unknown }[]) : [];
  const gw = (v6: boolean) => {
    for (const ip of ips) {
      if (typeof ip.gateway === 'string' && typeof ip.address === 'string' && ip.address.includes(':') === v6) return ip.gateway;
    }
    return undefined;
  };
  if (!Array.isArray(prev.routes)) return prev;
  const routes = (prev.routes as Record<string, unknown>[]).map((r) => {
    if (typeof r !== 'object' || r === null || r.gw !== undefined || typeof r.dst !== 'string') return r;
    const g = gw(r.dst.includes(':'));
    return g === undefined ? r : { ...r, gw: g };
  });
  return { ...prev, routes };
}

/** Entry point: reads stdin (except for VERSION), runs, writes, exits. */
export function main(): void {
  let stdin: Buffer = Buffer.alloc(0);
  if (process.env.CNI_COMMAND && process.env.CNI_COMMAND !== 'VERSION') {
    try {
      stdin = fs.readFileSync(0);
    } catch (e) {
      const err = new CniError(CNI_CODES.ioFailure, `error reading from stdin: ${errorText(e)}`);
      process.stdout.write(`${JSON.stringify(err.toJSON(CURRENT_VERSION), null, 4)}\n`);
      process.exitCode = 1;
      return;
    }
  }
  const out = runPlugin({ env: process.env, stdin });
  if (out.stderr) process.stderr.write(out.stderr);
  // Let the streams drain (a pipe may take the result in pieces), then exit with the code.
  process.exitCode = out.exitCode;
  if (out.stdout) process.stdout.write(out.stdout);
}
