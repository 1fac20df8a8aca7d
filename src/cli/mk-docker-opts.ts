// `flannel-ts mk-docker-opts`: flannel's dist/mk-docker-opts.sh in
// TypeScript. Reads subnet.env and writes docker daemon options to an env
// file, e.g. with `-k DOCKER_NETWORK_OPTIONS -d /run/flannel/docker`:
//
//   DOCKER_OPT_BIP="--bip=10.10.81.1/24"
//   DOCKER_OPT_IPMASQ="--ip-masq=true"
//   DOCKER_OPT_MTU="--mtu=1472"
//   DOCKER_NETWORK_OPTIONS=" --bip=10.10.81.1/24 --ip-masq=true --mtu=1472"
//
// Options as the script's getopts "f:d:icmk:?h":
//   -f FILE  subnet.env to read (default /run/flannel/subnet.env)
//   -d FILE  env file to write (default /run/docker_opts.env)
//   -i       individual DOCKER_OPT_* variables only     } neither: both
//   -c       combined variable only                      }
//   -k KEY   name of the combined variable (default DOCKER_OPTS)
//   -m       leave out --ip-masq (older docker)
// plus one flannel-ts addition for the systemd unit:
//   -w SECS  wait up to SECS for flanneld to write the subnet file; under
//            systemd ($MAINPID set, as in ExecStartPost) a file written
//            after that process started, else any existing file.
//
// The script's quirks are kept: variables come from the file over the
// environment (it sources the file), DOCKER_OPT_* variables already in the
// environment are included (its `set | grep DOCKER_OPT_`), in name order; the
// combined value starts with the environment's value of KEY, if any; a
// missing subnet file is not an error. And its last check: if the routing
// table already routes the node subnet via a gateway, it says so and fails
// (after writing the file, as the script does).

import * as fs from 'node:fs';
import { parseEnvText } from '../util/env-file';
import { execStatus } from '../util/exec';
import { sleep } from '../util/sleep';

export const USAGE = `flannel-ts mk-docker-opts [-f FLANNEL-ENV-FILE] [-d DOCKER-ENV-FILE] [-i] [-c] [-m] [-k COMBINED-KEY] [-w SECONDS]

Generate Docker daemon options based on flannel env file
OPTIONS:
	-f	Path to flannel env file. Defaults to /run/flannel/subnet.env
	-d	Path to Docker env file to write to. Defaults to /run/docker_opts.env
	-i	Output each Docker option as individual var. e.g. DOCKER_OPT_MTU=1500
	-c	Output combined Docker options into DOCKER_OPTS var
	-k	Set the combined options key to this value (default DOCKER_OPTS=)
	-m	Do not output --ip-masq (useful for older Docker version)
	-w	flannel-ts: wait up to this many seconds for flanneld to write the
		flannel env file (under systemd: written after $MAINPID started)
`;

export interface MkDockerOptsOptions {
  flannelEnv: string;
  dockerEnv: string;
  combinedKey: string;
  indiv: boolean;
  combined: boolean;
  ipMasq: boolean;
  waitSeconds: number;
}

export class UsageError extends Error {}

/** getopts "f:d:icmk:w:?h": clustered flags (-ic), values attached (-ffile) or next; stops at `--` or the first operand. */
export function parseArgs(argv: string[]): MkDockerOptsOptions {
  const o: MkDockerOptsOptions = {
    flannelEnv: '/run/flannel/subnet.env',
    dockerEnv: '/run/docker_opts.env',
    combinedKey: 'DOCKER_OPTS',
    indiv: false,
    combined: false,
    ipMasq: true,
    waitSeconds: 0,
  };
  const withArg = new Set(['f', 'd', 'k', 'w']);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') break;
    if (!a.startsWith('-') || a === '-') break;
    for (let j = 1; j < a.length; j++) {
      const c = a[j];
      if (withArg.has(c)) {
        let v = a.slice(j + 1);
        if (v === '') {
          if (i + 1 >= argv.length) throw new UsageError(`No arg for -${c} option`);
          v = argv[++i];
        }
        if (c === 'f') o.flannelEnv = v;
        else if (c === 'd') o.dockerEnv = v;
        else if (c === 'k') o.combinedKey = v;
        else {
          if (!/^\d+(\.\d+)?$/.test(v)) throw new UsageError(`-w wants a number of seconds, got "${v}"`);
          o.waitSeconds = Number(v);
        }
        break;
      }
      if (c === 'i') o.indiv = true;
      else if (c === 'c') o.combined = true;
      else if (c === 'm') o.ipMasq = false;
      else if (c === 'h' || c === '?') throw new UsageError('');
      else throw new UsageError(`Illegal option -${c}`);
    }
  }
  if (!o.indiv && !o.combined) {
    o.indiv = true;
    o.combined = true;
  }
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(o.combinedKey)) throw new UsageError(`-k: "${o.combinedKey}" is not a variable name`);
  return o;
}

export interface Generated {
  /** The env file's text. */
  text: string;
  /** FLANNEL_SUBNET as used (for the route check), or undefined. */
  subnet?: string;
}

/**
 * The env file for `vars` (the subnet file's values over the environment).
 * @throws Error "Invalid value of FLANNEL_IPMASQ: x" as the script exits on it.
 */
export function generate(o: MkDockerOptsOptions, vars: Record<string, string | undefined>): Generated {
  const opts = new Map<string, string>();
  for (const [k, v] of Object.entries(vars)) {
    if (k.startsWith('DOCKER_OPT_') && v !== undefined) opts.set(k, v);
  }
  const subnet = vars.FLANNEL_SUBNET;
  const mtu = vars.FLANNEL_MTU;
  const masq = vars.FLANNEL_IPMASQ;
  if (subnet) opts.set('DOCKER_OPT_BIP', `--bip=${subnet}`);
  if (mtu) opts.set('DOCKER_OPT_MTU', `--mtu=${mtu}`);
  if (masq && o.ipMasq) {
    // flanneld masquerading means docker must not, and the other way round.
    if (masq === 'true') opts.set('DOCKER_OPT_IPMASQ', '--ip-masq=false');
    else if (masq === 'false') opts.set('DOCKER_OPT_IPMASQ', '--ip-masq=true');
    else throw new Error(`Invalid value of FLANNEL_IPMASQ: ${masq}`);
  }
  let combined = vars[o.combinedKey] ?? '';
  if (combined) combined += ' ';
  let text = '';
  for (const name of [...opts.keys()].sort()) {
    const value = opts.get(name)!;
    if (o.indiv) text += `${name}="${value}"\n`;
    combined += ` ${value}`;
  }
  if (o.combined) text += `${o.combinedKey}="${combined}"\n`;
  return { text, subnet: subnet || undefined };
}

/**
 * The script's last check: "10.1.74.1/24" → "10.1.74.0/24" (last octet minus
 * one, as it computes it); a route for that with a gateway ("via") means the
 * subnet is already routed elsewhere. Returns the offending route lines.
 */
export function conflictingRoutes(subnet: string, routeTable: string): string[] {
  const m = /^(\d+\.\d+\.\d+)\.(\d+)\/(\d+)$/.exec(subnet);
  if (!m) return [];
  const net = `${m[1]}.${Number(m[2]) - 1}/${m[3]}`;
  return routeTable.split('\n').filter((l) => l.includes(net) && l.includes('via'));
}

function processStartMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at ") ".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const startTicks = Number(fields[19]); // field 22: starttime, in clock ticks since boot
    const btime = Number(/^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'))![1]);
    return (btime + startTicks / 100) * 1000; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

async function waitForSubnetFile(file: string, seconds: number, env: NodeJS.ProcessEnv): Promise<void> {
  const pid = Number(env.MAINPID);
  const since = Number.isInteger(pid) && pid > 0 ? processStartMs(pid) : undefined;
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    try {
      const st = fs.statSync(file);
      // One second of slack: btime has whole-second precision.
      if (since === undefined || st.mtimeMs >= since - 1000) return;
    } catch {
      /* not yet */
    }
    if (Date.now() >= deadline) {
      throw new Error(`${file} was not written by flanneld within ${seconds} s${since !== undefined ? ` (flanneld pid ${pid})` : ''}`);
    }
    await sleep(200);
  }
}

export interface RunDeps {
  env?: NodeJS.ProcessEnv;
  /** `ip route show`'s output; default runs it. */
  routes?: () => string;
}

/** Runs the command; resolves the exit code (messages on stderr, as the script prints them). */
export async function run(argv: string[], deps: RunDeps = {}): Promise<number> {
  const env = deps.env ?? process.env;
  let o: MkDockerOptsOptions;
  try {
    o = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      if (e.message) process.stderr.write(`mk-docker-opts: ${e.message}\n`);
      process.stderr.write(USAGE);
      return 1;
    }
    throw e;
  }
  try {
    if (o.waitSeconds > 0) await waitForSubnetFile(o.flannelEnv, o.waitSeconds, env);
    const vars: Record<string, string | undefined> = { ...env };
    if (fs.existsSync(o.flannelEnv)) {
      for (const [k, v] of parseEnvText(fs.readFileSync(o.flannelEnv, 'utf8'))) vars[k] = v;
    }
    const g = generate(o, vars);
    fs.writeFileSync(o.dockerEnv, g.text);
    if (g.subnet) {
      const table = deps.routes ? deps.routes() : (await execStatus(['ip', 'route', 'show'])).stdout;
      const bad = conflictingRoutes(g.subnet, table);
      if (bad.length > 0) {
        process.stderr.write(`Your routing table already contains the subnet: ${bad.join('\n')}\n`);
        return 1;
      }
    }
    return 0;
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

export async function main(argv: string[]): Promise<void> {
  process.exitCode = await run(argv);
}
