// flanneld's command line, parsed the way Go's `flag` package parses it.
//
// The flag set is flanneld's own (flannel main.go: `flannelFlags` plus the
// three klog flags it copies: -v, -vmodule, -log_backtrace_at). The syntax is
// Go's:
//   - one or two dashes: `-iface eth0` and `--iface eth0` are the same;
//   - `-flag=value` or `-flag value` for every non-boolean flag (the next
//     argument is taken as the value whatever it looks like, as Go does);
//   - booleans as `-flag` or `-flag=<strconv.ParseBool>`; `-flag false` is NOT
//     a boolean assignment: `false` is a positional argument, which flanneld
//     has none of, so it is an error here (stock flanneld silently stops
//     parsing there, leaving the flag true);
//   - `--` ends the flags; the first non-flag argument ends them too;
//   - the last value of a flag wins, except repeatable ones (--iface,
//     --iface-regex) which accumulate;
//   - `-h`, `-help`, `--help` print the usage.
// Then, as flannel's flagutil.SetFlagsFromEnv does, every flag not given on
// the command line is taken from FLANNELD_<NAME> (dashes → underscores, upper
// case) when that variable is non-empty.
//
// Callers' rules: parseFlags never prints and never exits. It returns the
// usage or version text (flanneld writes both to stderr and exits 0) or the
// options; every problem is a thrown FlagError (the caller prints its message
// and exits 1). It reads the filesystem only to check that TLS files given to
// --etcd-keyfile/--etcd-certfile/--etcd-cafile are readable.

import * as fs from 'node:fs';
import * as net from 'node:net';
import { versionText } from '../util/version';
import { type FlanneldOptions, defaultAdminSocket } from '../daemon/options';
import { FlannelError } from '../util/errors';

export type { FlanneldOptions };

// ---------------------------------------------------------------------------
// Public types

export class FlagError extends FlannelError {
  /** The flag concerned, without dashes, when there is one. */
  readonly flag?: string;
  /** Where the bad value came from: the command line or the named environment variable. */
  readonly source?: 'cli' | 'env';
  constructor(message: string, flag?: string, source?: 'cli' | 'env') {
    super('FLANNEL_ERR_FLAG', message);
    this.name = 'FlagError';
    this.flag = flag;
    this.source = source;
  }
}

export type ParseResult =
  | { kind: 'run'; options: FlanneldOptions }
  /** Usage text; flanneld writes it to stderr and exits 0. */
  | { kind: 'help'; text: string }
  /** Version line; flanneld writes it to stderr and exits 0. */
  | { kind: 'version'; text: string };

/** Prefix of the environment variables flanneld reads its flags from. */
export const ENV_PREFIX = 'FLANNELD';

// ---------------------------------------------------------------------------
// The flag table

/**
 * How a value is parsed (the Go flag.Value behind it):
 * string/int/bool are flag.String/Int/Bool (int is strconv.ParseInt base 0);
 * list is flannel's flagSlice (appends); level, vmodule, backtrace and
 * severity are klog's Level, moduleSpec, traceLocation and severityValue.
 */
type Kind = 'string' | 'int' | 'bool' | 'list' | 'level' | 'vmodule' | 'backtrace' | 'severity';

/**
 * supported:   implemented; lands in FlanneldOptions.
 * unsupported: a flanneld flag flannel-ts does not implement yet; refused
 *              unless given its default value (then it changes nothing).
 * ignored:     a flanneld flag accepted with no effect (klog's file-filter
 *              and backtrace settings have no meaning here).
 * klog-noop:   not a flanneld flag, but a harmless klog output flag that old
 *              unit files pass; accepted and ignored. Not read from env.
 */
type Support = 'supported' | 'unsupported' | 'ignored' | 'klog-noop';

interface FlagSpec {
  name: string;
  kind: Kind;
  /** Go's DefValue: the default as flag.Value.String() prints it. */
  def: string;
  usage: string;
  support: Support;
  /** Read from FLANNELD_<NAME>? (flanneld reads every flag of its set; --version has no effect there). */
  env: boolean;
  /** For list flags from the environment: split the value on commas. */
  envSplit?: boolean;
}

function f(name: string, kind: Kind, def: string, usage: string, support: Support = 'supported', extra: Partial<FlagSpec> = {}): FlagSpec {
  return { name, kind, def, usage, support, env: support !== 'klog-noop', ...extra };
}

// flanneld's flags, in main.go's order; usage strings are flanneld's own.
const FLANNELD_FLAGS: FlagSpec[] = [
  f('etcd-endpoints', 'string', 'http://127.0.0.1:4001,http://127.0.0.1:2379', 'a comma-delimited list of etcd endpoints'),
  f('etcd-prefix', 'string', '/coreos.com/network', 'etcd prefix'),
  f('etcd-keyfile', 'string', '', 'SSL key file used to secure etcd communication'),
  f('etcd-certfile', 'string', '', 'SSL certification file used to secure etcd communication'),
  f('etcd-cafile', 'string', '', 'SSL Certificate Authority file used to secure etcd communication'),
  f('etcd-username', 'string', '', 'username for BasicAuth to etcd'),
  f('etcd-password', 'string', '', 'password for BasicAuth to etcd'),
  f('iface', 'list', '[]', 'interface to use (IP or name) for inter-host communication. Can be specified multiple times to check each option in order. Returns the first match found.', 'supported', {
    envSplit: true,
  }),
  // Not split from the environment: a regex may contain commas (e.g. `eth{1,2}`).
  f(
    'iface-regex',
    'list',
    '[]',
    'regex expression to match the first interface to use (IP or name) for inter-host communication. Can be specified multiple times to check each regex in order. Returns the first match found. Regexes are checked after specific interfaces specified by the iface option have already been checked.',
  ),
  f(
    'iface-can-reach',
    'string',
    '',
    "detect interface to use (IP or name) for inter-host communication based on which will be used for provided IP. This is exactly the interface to use of command 'ip route get <ip-address>'",
  ),
  f('subnet-file', 'string', '/run/flannel/subnet.env', 'filename where env variables (subnet, MTU, ... ) will be written to'),
  f('public-ip', 'string', '', 'IP accessible by other nodes for inter-host communication'),
  f('public-ipv6', 'string', '', 'IPv6 accessible by other nodes for inter-host communication', 'unsupported'),
  f('subnet-lease-renew-margin', 'int', '60', 'subnet lease renewal margin, in minutes, ranging from 1 to 1439'),
  f('ip-masq', 'bool', 'false', 'setup IP masquerade rule for traffic destined outside of overlay network'),
  f('ip-masq-fully-random-disable', 'bool', 'false', 'disable fully-random mode for MASQUERADE'),
  f('kube-subnet-mgr', 'bool', 'false', 'contact the Kubernetes API for subnet assignment instead of etcd.', 'unsupported'),
  f('kube-api-url', 'string', '', 'Kubernetes API server URL. Does not need to be specified if flannel is running in a pod.', 'unsupported'),
  f('kube-annotation-prefix', 'string', 'flannel.alpha.coreos.com', 'Kubernetes annotation prefix. Can contain single slash "/", otherwise it will be appended at the end.', 'unsupported'),
  f('kubeconfig-file', 'string', '', 'kubeconfig file location. Does not need to be specified if flannel is running in a pod.', 'unsupported'),
  f('version', 'bool', 'false', 'print version and exit', 'supported', { env: false }),
  f('healthz-ip', 'string', '0.0.0.0', 'the IP address for healthz server to listen'),
  f('healthz-port', 'int', '0', 'the port for healthz server to listen(0 to disable)'),
  f('iptables-resync', 'int', '5', 'resync period for iptables rules, in seconds'),
  f('iptables-forward-rules', 'bool', 'true', 'add default accept rules to FORWARD chain in iptables'),
  f('ip-blackhole-route', 'bool', 'false', 'add blackroute route ont the node for the local podCIDR'),
  f('net-config-path', 'string', '/etc/kube-flannel/net-conf.json', 'path to the network configuration file', 'unsupported'),
  f('set-node-network-unavailable', 'bool', 'true', 'set NodeNetworkUnavailable after ready', 'unsupported'),
  // klog flags flanneld copies into its flag set (copyFlag in main.go).
  f('v', 'level', '0', 'number for the log level verbosity'),
  f('vmodule', 'vmodule', '', 'comma-separated list of pattern=N settings for file-filtered logging', 'ignored'),
  f('log_backtrace_at', 'backtrace', ':0', 'when logging hits line file:N, emit a stack trace', 'ignored'),
];

/**
 * Flags only flannel-ts has, read from FLANNELD_<NAME> like every other flag.
 * Their usage starts with "flannel-ts:". The offload switches only change how
 * this node moves packets: the wire (one IPv4 packet per datagram) is the same
 * either way, so a node with them off talks to one with them on.
 */
const FLANNEL_TS_FLAGS: FlagSpec[] = [
  f('admin-socket', 'string', '', 'flannel-ts: unix socket for `flannel-ts trace` (mode 0600, root only; default <subnet-file>.sock; empty disables)'),
  f('tun-offload', 'bool', 'true', 'flannel-ts: read TCP super-packets from flannel0 (TSO) and split them in user space; off: the kernel segments them'),
  f('tun-gro', 'bool', 'true', 'flannel-ts: coalesce received TCP segments into one GSO write to flannel0'),
  f('udp-gso', 'bool', 'true', 'flannel-ts: send runs of datagrams to one peer as one UDP_SEGMENT (GSO) message'),
  f('udp-gro', 'bool', 'true', 'flannel-ts: receive datagrams coalesced by the kernel (UDP_GRO)'),
  f('dataplane-warmup-ms', 'int', '20', 'flannel-ts: while traffic is sparse, the data-plane thread rehearses one packet after this many idle ms, keeping its path resident (0 disables)'),
  f('dataplane-spin-us', 'int', '0', 'flannel-ts: microseconds the data-plane thread polls before it sleeps (0: sleep at once)'),
  f(
    'dataplane-nice',
    'int',
    '-10',
    "flannel-ts: nice value of the data-plane thread alone while it is mostly idle, -20 to 19, so that it forwards ahead of busy control-plane work (busy more than half the time, it steps to the process's own, as the kernel defers a flood to ksoftirqd); never real-time",
  ),
  f(
    'dataplane-slice-us',
    'int',
    '0',
    "flannel-ts: the data-plane thread's scheduler time slice in microseconds, 100 to 100000 (sched_setattr; a short slice wakes it ahead of busy tasks without a bigger CPU share, but measured slower on sparse traffic), or 0: the kernel's default",
  ),
  f(
    'dataplane-mlock',
    'bool',
    'false',
    'flannel-ts: lock the pages of node, its libraries and the addon that flanneld has touched in memory, so that reclaim cannot take the forwarding path from a long-idle daemon',
  ),
  f('dataplane-timing', 'bool', 'false', 'flannel-ts: time each stage of the data-plane thread (flannel_dataplane_stage_seconds_total in /metrics)'),
];

/**
 * klog output flags stock flanneld does NOT register (it copies only -v,
 * -vmodule and -log_backtrace_at), accepted here as no-ops because they are
 * harmless: flannel-ts always logs to stderr.
 */
const KLOG_NOOP_FLAGS: FlagSpec[] = [
  f('logtostderr', 'bool', 'true', 'log to standard error instead of files', 'klog-noop'),
  f('alsologtostderr', 'bool', 'false', 'log to standard error as well as files', 'klog-noop'),
  f('stderrthreshold', 'severity', '', 'logs at or above this threshold go to stderr', 'klog-noop'),
  f('add_dir_header', 'bool', 'false', 'adds the file directory to the header of the log messages', 'klog-noop'),
  f('skip_headers', 'bool', 'false', 'avoid header prefixes in the log messages', 'klog-noop'),
  f('skip_log_headers', 'bool', 'false', 'avoid headers when opening log files', 'klog-noop'),
  f('one_output', 'bool', 'false', 'only write logs to their native severity level', 'klog-noop'),
];

/** klog flags that would send logs somewhere flannel-ts never writes: refused with a hint. */
const KLOG_FILE_FLAGS = new Set(['log_dir', 'log_file', 'log_file_max_size']);

const ALL_FLAGS: FlagSpec[] = [...FLANNELD_FLAGS, ...FLANNEL_TS_FLAGS, ...KLOG_NOOP_FLAGS];
const BY_NAME = new Map<string, FlagSpec>(ALL_FLAGS.map((s) => [s.name, s]));

/** The environment variable flanneld reads a flag from: `iface-regex` → `FLANNELD_IFACE_REGEX`. */
export function envName(flag: string): string {
  return `${ENV_PREFIX}_${flag.replace(/-/g, '_').toUpperCase()}`;
}

/** Names of flanneld's flags that flannel-ts refuses (unless given their default). */
export function unsupportedFlags(): string[] {
  return FLANNELD_FLAGS.filter((s) => s.support === 'unsupported').map((s) => s.name);
}

// ---------------------------------------------------------------------------
// Value parsers: Go's strconv and klog's Set methods

type Value = string | bigint | boolean | number;

const TRUE_WORDS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_WORDS = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** strconv.ParseBool. */
export function parseGoBool(s: string): boolean | undefined {
  if (TRUE_WORDS.has(s)) return true;
  if (FALSE_WORDS.has(s)) return false;
  return undefined;
}

// strconv.ParseInt(s, 0, 64): sign, 0x/0o/0b prefixes, leading-0 octal, `_` between digits.
const GO_INT = /^[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[bB](?:_?[01])+|0[oO](?:_?[0-7])+|0(?:_?[0-7])*|[1-9](?:_?[0-9])*)$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

class ValueError extends Error {}

/** strconv.ParseInt(s, 0, 64), as flag.Int does it. */
export function parseGoInt(s: string): bigint {
  if (!GO_INT.test(s)) throw new ValueError('not an integer');
  let t = s;
  let negative = false;
  if (t[0] === '+' || t[0] === '-') {
    negative = t[0] === '-';
    t = t.slice(1);
  }
  t = t.replace(/_/g, '');
  let v: bigint;
  if (/^0[xXoObB]/.test(t)) v = BigInt(t);
  else if (t.length > 1 && t[0] === '0') v = BigInt('0o' + t.slice(1));
  else v = BigInt(t);
  if (negative) v = -v;
  if (v < INT64_MIN || v > INT64_MAX) throw new ValueError('value out of range');
  return v;
}

/** strconv.ParseInt(s, 10, 32), as klog's Level.Set does it. */
function parseInt32(s: string): number {
  if (!/^[+-]?[0-9]+$/.test(s)) throw new ValueError('not an integer');
  const v = BigInt(s);
  if (v < -(2n ** 31n) || v > 2n ** 31n - 1n) throw new ValueError('value out of range');
  return Number(v);
}

/** klog's moduleSpec.Set: `pattern=N,pattern=N`. */
function checkVmodule(s: string): void {
  for (const pat of s.split(',')) {
    if (pat === '') continue;
    const parts = pat.split('=');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new ValueError('syntax error: expect comma-separated list of filename=N');
    }
    const n = parseInt32Loose(parts[1]);
    if (n === undefined) throw new ValueError('syntax error: expect comma-separated list of filename=N');
    if (n < 0) throw new ValueError('negative value for vmodule level');
  }
}

function parseInt32Loose(s: string): number | undefined {
  try {
    return parseInt32(s);
  } catch {
    return undefined;
  }
}

/** klog's traceLocation.Set: empty, or `file.go:N` with N > 0. */
function checkBacktrace(s: string): void {
  if (s === '') return;
  const parts = s.split(':');
  if (parts.length !== 2 || !parts[0].includes('.')) throw new ValueError('syntax error: expect file.go:234');
  const n = /^[+-]?[0-9]+$/.test(parts[1]) ? Number(parts[1]) : NaN;
  if (!Number.isInteger(n)) throw new ValueError('syntax error: expect file.go:234');
  if (n <= 0) throw new ValueError('negative or zero value for level');
}

/** klog's severityValue.Set: INFO, WARNING, ERROR, FATAL (any case) or 0..3. */
function checkSeverity(s: string): void {
  if (['INFO', 'WARNING', 'ERROR', 'FATAL'].includes(s.toUpperCase())) return;
  if (/^[+-]?[0-9]+$/.test(s) && Number(s) >= 0 && Number(s) <= 3) return;
  throw new ValueError(`unknown severity; use INFO, WARNING, ERROR or FATAL`);
}

/** Convert one raw value as the flag's Go type would; throws ValueError with the reason. */
function convert(spec: FlagSpec, raw: string): Value {
  switch (spec.kind) {
    case 'string':
    case 'list':
      return raw;
    case 'int':
      return parseGoInt(raw);
    case 'bool': {
      const b = parseGoBool(raw);
      if (b === undefined) throw new ValueError('use true or false (Go also takes 1, 0, t, f, T, F, TRUE, FALSE, True, False)');
      return b;
    }
    case 'level':
      return parseInt32(raw);
    case 'vmodule':
      checkVmodule(raw);
      return raw;
    case 'backtrace':
      checkBacktrace(raw);
      return raw;
    case 'severity':
      checkSeverity(raw);
      return raw;
  }
}

// ---------------------------------------------------------------------------
// Parsing

interface Setting {
  spec: FlagSpec;
  /** Converted value; for list flags, every value in order. */
  value: Value | string[];
  source: 'cli' | 'env';
  /** The raw text last given (for error messages). */
  raw: string;
}

/** How an error names where a value came from. */
function origin(s: Setting): string {
  return s.source === 'env' ? envName(s.spec.name) : `flag --${s.spec.name}`;
}

function badValue(s: Setting, raw: string, reason: string): FlagError {
  return new FlagError(`invalid value ${goQuote(raw)} for ${origin(s)}: ${reason}`, s.spec.name, s.source);
}

/** Go's %q for the strings we print (JSON quoting is the same for printable text). */
function goQuote(s: string): string {
  return JSON.stringify(s);
}

const HELP_HINT = 'run "flanneld --help" to list the flags';

function unknownFlag(name: string): FlagError {
  let msg = `flag provided but not defined: -${name}`;
  if (KLOG_FILE_FLAGS.has(name)) {
    msg += "; flanneld takes only -v, -vmodule and -log_backtrace_at of klog's flags, and flannel-ts always logs to stderr";
  } else {
    const close = suggest(name);
    if (close) msg += `; did you mean --${close}?`;
  }
  return new FlagError(`${msg} (${HELP_HINT})`, name, 'cli');
}

/** A known flag close to a mistyped one (case, `_` for `-`, or a couple of typos). */
function suggest(name: string): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/_/g, '-');
  const n = norm(name);
  const visible = ALL_FLAGS.filter((s) => s.support !== 'klog-noop' || norm(s.name) === n);
  for (const s of visible) if (norm(s.name) === n) return s.name;
  if (n.length < 4) return undefined;
  let best: string | undefined;
  let bestD = 3;
  for (const s of visible) {
    const d = editDistance(n, norm(s.name));
    if (d < bestD) {
      bestD = d;
      best = s.name;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/**
 * Parse flanneld's arguments (without node and the script: process.argv.slice(2))
 * and environment. Returns the usage or version text when asked for; throws
 * FlagError for anything wrong, with a message that says what to fix.
 */
export function parseFlags(argv: readonly string[], env: NodeJS.ProcessEnv): ParseResult {
  const settings = new Map<string, Setting>();

  // 1. The command line, one argument at a time, as flag.FlagSet.parseOne.
  let i = 0;
  let lastBareBool: string | undefined; // a bool flag just given without `=`, for the `-flag false` hint
  let sawTerminator = false;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.length < 2 || arg[0] !== '-') break; // first non-flag argument
    let dashes = 1;
    if (arg[1] === '-') {
      dashes = 2;
      if (arg.length === 2) {
        i++; // `--` terminates the flags and is consumed
        lastBareBool = undefined;
        sawTerminator = true;
        break;
      }
    }
    let name = arg.slice(dashes);
    if (name.length === 0 || name[0] === '-' || name[0] === '=') {
      throw new FlagError(`bad flag syntax: ${arg} (${HELP_HINT})`, undefined, 'cli');
    }
    let value: string | undefined;
    const eq = name.indexOf('=', 1);
    if (eq > 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }

    const spec = BY_NAME.get(name);
    if (!spec) {
      if (name === 'help' || name === 'h') return { kind: 'help', text: usage() };
      throw unknownFlag(name);
    }

    lastBareBool = undefined;
    let raw: string;
    if (spec.kind === 'bool') {
      if (value === undefined) lastBareBool = name;
      raw = value ?? 'true';
    } else {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: -${name}`, name, 'cli');
        value = argv[++i];
      }
      raw = value;
    }

    let converted: Value;
    try {
      converted = convert(spec, raw);
    } catch (e) {
      if (!(e instanceof ValueError)) throw e;
      const what = spec.kind === 'bool' ? `invalid boolean value ${goQuote(raw)} for -${name}` : `invalid value ${goQuote(raw)} for flag -${name}`;
      throw new FlagError(`${what}: ${e.message}`, name, 'cli');
    }
    const prev = settings.get(name);
    if (spec.kind === 'list') {
      const list = prev ? (prev.value as string[]) : [];
      list.push(raw);
      settings.set(name, { spec, value: list, source: 'cli', raw });
    } else {
      settings.set(name, { spec, value: converted, source: 'cli', raw });
    }
  }

  // flanneld takes no positional arguments (stock flanneld ignores them silently).
  if (i < argv.length) {
    const extra = argv[i];
    let msg = `unexpected argument ${goQuote(extra)}: flanneld takes no positional arguments`;
    if (lastBareBool !== undefined && parseGoBool(extra) !== undefined) {
      msg += `; a boolean flag takes its value after "=", as in -${lastBareBool}=${extra}`;
    } else if (sawTerminator) {
      msg += '; nothing may follow "--"';
    }
    throw new FlagError(msg, lastBareBool, 'cli');
  }

  // 2. --version is acted on before the environment is read, as in flanneld.
  if (settings.get('version')?.value === true) return { kind: 'version', text: versionText() };

  // 3. The environment, for flags not set on the command line (flagutil.SetFlagsFromEnv).
  for (const spec of ALL_FLAGS) {
    if (!spec.env || settings.has(spec.name)) continue;
    const key = envName(spec.name);
    const raw = env[key];
    if (raw === undefined || raw === '') continue;
    const setting: Setting = { spec, value: raw, source: 'env', raw };
    if (spec.kind === 'list') {
      const parts = spec.envSplit ? raw.split(',').map((p) => p.trim()) : [raw];
      if (parts.some((p) => p === '')) throw badValue(setting, raw, 'an empty entry in the comma-separated list');
      setting.value = parts;
    } else {
      try {
        setting.value = convert(spec, raw);
      } catch (e) {
        if (!(e instanceof ValueError)) throw e;
        throw badValue(setting, raw, e.message);
      }
    }
    settings.set(spec.name, setting);
  }

  // 4. Flags flannel-ts accepts but does not act on, and flags it refuses.
  const ignoredFlags: string[] = [];
  for (const s of settings.values()) {
    const spec = s.spec;
    if (spec.support === 'unsupported') {
      if (String(s.value) !== spec.def) {
        const via = s.source === 'env' ? ` (set by ${envName(spec.name)})` : '';
        throw new FlagError(`flag --${spec.name} is not supported by flannel-ts yet${via}`, spec.name, s.source);
      }
      ignoredFlags.push(`--${spec.name}`);
    } else if (spec.support === 'ignored' || spec.support === 'klog-noop') {
      ignoredFlags.push(`--${spec.name}`);
    }
  }

  // 5. Values, checked.
  return { kind: 'run', options: buildOptions(settings, ignoredFlags) };
}

function buildOptions(settings: Map<string, Setting>, ignoredFlags: string[]): FlanneldOptions {
  const get = (name: string): Setting => {
    const s = settings.get(name);
    if (s) return s;
    const spec = BY_NAME.get(name)!;
    const value: Value | string[] = spec.kind === 'list' ? [] : convert(spec, spec.def);
    return { spec, value, source: 'cli', raw: spec.def };
  };
  const str = (name: string) => get(name).value as string;
  const bool = (name: string) => get(name).value as boolean;
  const optional = (name: string): string | undefined => (settings.has(name) && str(name) !== '' ? str(name) : undefined);
  const intIn = (name: string, min: number, max: number, unit: string, why = ''): number => {
    const s = get(name);
    const v = s.value as bigint;
    if (v < BigInt(min) || v > BigInt(max)) {
      throw badValue(s, s.raw, `${v} is out of range; it must be ${min} to ${max}${unit}${why}`);
    }
    return Number(v);
  };

  // The kernel clamps a slice to 100 µs..100 ms; 0 means its default.
  const sliceUs = (): number => {
    const s = get('dataplane-slice-us');
    const v = Number(s.value as bigint);
    if (v !== 0 && (v < 100 || v > 100000)) throw badValue(s, s.raw, `${v} is out of range; it must be 0 (the kernel's default) or 100 to 100000 µs`);
    return v;
  };

  const endpoints = checkEndpoints(get('etcd-endpoints'));

  const prefixS = get('etcd-prefix');
  if (prefixS.value === '') throw badValue(prefixS, '', 'the etcd prefix must not be empty (default /coreos.com/network)');

  const etcdKeyfile = checkReadable(settings.get('etcd-keyfile'));
  const etcdCertfile = checkReadable(settings.get('etcd-certfile'));
  const etcdCafile = checkReadable(settings.get('etcd-cafile'));
  // Whether key and certificate come as a pair (and are PEM) is checked once,
  // where they are loaded: the registry (FLANNEL_ERR_ETCD_OPTIONS, before connecting).

  const ifaceS = get('iface');
  const iface = ifaceS.value as string[];
  for (const name of iface) {
    const why = checkIface(name);
    if (why) throw badValue(ifaceS, name, why);
  }
  const ifaceRegexS = get('iface-regex');
  const ifaceRegex = ifaceRegexS.value as string[];
  for (const re of ifaceRegex) {
    if (re === '') throw badValue(ifaceRegexS, re, 'empty regex; leave the flag out to let flanneld choose the interface of the default route');
    try {
      compileIfaceRegex(re);
    } catch (e) {
      throw badValue(ifaceRegexS, re, `not a valid regular expression (${(e as Error).message})`);
    }
  }

  let publicIp: string | undefined;
  const publicS = settings.get('public-ip');
  if (publicS && publicS.value !== '') {
    const why = checkPublicIp(publicS.value as string);
    if (why) throw badValue(publicS, publicS.raw, why);
    publicIp = publicS.value as string;
  }

  const subnetFileS = get('subnet-file');
  if (subnetFileS.value === '') throw badValue(subnetFileS, '', 'give the path of the file to write the subnet to (default /run/flannel/subnet.env)');

  let ifaceCanReach = '';
  const reachS = settings.get('iface-can-reach');
  if (reachS && reachS.value !== '') {
    if (net.isIPv4(reachS.value as string) !== true) throw badValue(reachS, reachS.raw, 'not an IPv4 address; give the address whose route picks the interface (as in "ip route get <address>")');
    ifaceCanReach = reachS.value as string;
  }

  // --admin-socket: given (even empty: disabled) or <subnet-file>.sock, so two
  // daemons with separate subnet files never share a socket.
  const adminS = settings.get('admin-socket');
  const adminSocket = adminS ? (adminS.value as string) : defaultAdminSocket(str('subnet-file'));

  const healthzS = get('healthz-ip');
  const healthzIp = healthzS.value as string;
  if (!net.isIP(healthzIp) && !isHostName(healthzIp)) {
    throw badValue(healthzS, healthzIp, 'not an IP address or host name (e.g. 0.0.0.0, 127.0.0.1 or ::)');
  }

  return {
    etcdEndpoints: endpoints,
    etcdPrefix: str('etcd-prefix'),
    etcdKeyfile,
    etcdCertfile,
    etcdCafile,
    etcdUsername: optional('etcd-username'),
    etcdPassword: optional('etcd-password'),
    iface: [...iface],
    ifaceRegex: [...ifaceRegex],
    publicIp,
    subnetFile: str('subnet-file'),
    subnetLeaseRenewMargin: intIn('subnet-lease-renew-margin', 1, 1439, ' minutes', ' (less than the 24 h lease)'),
    ipMasq: bool('ip-masq'),
    ipMasqFullyRandomDisable: bool('ip-masq-fully-random-disable'),
    ipBlackholeRoute: bool('ip-blackhole-route'),
    ifaceCanReach,
    healthzIp,
    healthzPort: intIn('healthz-port', 0, 65535, '', ' (0 disables the health server)'),
    iptablesResync: intIn('iptables-resync', 1, 2147483, ' seconds'),
    iptablesForwardRules: bool('iptables-forward-rules'),
    adminSocket,
    adminSocketGiven: adminS !== undefined,
    tunOffload: bool('tun-offload'),
    tunGro: bool('tun-gro'),
    udpGso: bool('udp-gso'),
    udpGro: bool('udp-gro'),
    dataplaneWarmupMs: intIn('dataplane-warmup-ms', 0, 60000, ' ms'),
    dataplaneSpinUs: intIn('dataplane-spin-us', 0, 100000, ' µs'),
    dataplaneNice: intIn('dataplane-nice', -20, 19, ''),
    dataplaneSliceUs: sliceUs(),
    dataplaneMlock: bool('dataplane-mlock'),
    dataplaneTiming: bool('dataplane-timing'),
    verbosity: get('v').value as number,
    ignoredFlags: [...new Set(ignoredFlags)],
  };
}

function checkEndpoints(s: Setting): string[] {
  const raw = s.value as string;
  const out: string[] = [];
  for (const part of raw.split(',')) {
    const ep = part.trim();
    if (ep === '') {
      throw badValue(s, raw, 'an empty entry in the comma-separated list; give endpoints like http://127.0.0.1:2379');
    }
    const r = normaliseEndpoint(ep);
    if (typeof r !== 'string') throw badValue(s, raw, `endpoint ${goQuote(ep)} ${r.why}`);
    out.push(r);
  }
  return out;
}

/** `http(s)://host:port[/]` → `scheme://host:port`, or why not. */
function normaliseEndpoint(ep: string): string | { why: string } {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/.exec(ep);
  if (!m) return { why: 'has no scheme; write it as http://host:2379 or https://host:2379' };
  const scheme = m[1].toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return { why: `has scheme ${m[1]}://; only http:// and https:// are supported` };
  let rest = m[2];
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  if (/[/?#]/.test(rest)) return { why: 'has a path, query or fragment; give only scheme://host:port' };
  if (rest.includes('@')) return { why: 'has credentials in it; use --etcd-username and --etcd-password instead' };
  let host: string;
  let port: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) return { why: 'has an unterminated IPv6 address' };
    host = rest.slice(1, close);
    if (!net.isIPv6(host)) return { why: `has ${goQuote(host)}, which is not an IPv6 address` };
    const after = rest.slice(close + 1);
    if (after.startsWith(':')) port = after.slice(1);
    else if (after !== '') return { why: 'is not of the form scheme://[ipv6]:port' };
  } else {
    const colon = rest.lastIndexOf(':');
    host = colon >= 0 ? rest.slice(0, colon) : rest;
    port = colon >= 0 ? rest.slice(colon + 1) : undefined;
    if (host.includes(':')) return { why: 'has an IPv6 address without brackets; write it as http://[addr]:2379' };
    if (host === '') return { why: 'has no host' };
    if (!net.isIPv4(host) && !isHostName(host)) return { why: `has ${goQuote(host)}, which is not a host name or IPv4 address` };
  }
  if (port === undefined || port === '') return { why: 'has no port; etcd usually listens on 2379, e.g. http://127.0.0.1:2379' };
  if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return { why: `has port ${goQuote(port)}; a port is 1 to 65535` };
  return `${scheme}://${rest}`;
}

function isHostName(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  return s.split('.').every((label) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(label));
}

/** A TLS file flag: undefined when not given; otherwise the path, which must be a readable file. */
function checkReadable(s: Setting | undefined): string | undefined {
  if (!s || s.value === '') return undefined;
  const path = s.value as string;
  let why: string | undefined;
  try {
    const st = fs.statSync(path);
    if (!st.isFile()) why = 'is not a regular file';
    else fs.accessSync(path, fs.constants.R_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable by this user' : `cannot be read (${code ?? (e as Error).message})`;
  }
  if (why) throw new FlagError(`the file given by ${origin(s)}, ${path}, ${why}`, s.spec.name, s.source);
  return path;
}

/** --iface takes an interface name or an IP address; undefined when fine. */
function checkIface(v: string): string | undefined {
  if (v === '') return 'empty; give an interface name (e.g. eth0) or one of its IP addresses';
  if (net.isIP(v)) return undefined;
  if (v.length > 15) return 'not an IP address, and too long for an interface name (at most 15 characters)';
  if (v === '.' || v === '..' || /[\s/]/.test(v)) return 'neither an interface name nor an IP address';
  return undefined;
}

/** --public-ip: an IPv4 address other peers can send to; undefined when fine. */
function checkPublicIp(v: string): string | undefined {
  if (!net.isIPv4(v)) {
    return net.isIPv6(v) ? 'an IPv6 address; --public-ip takes IPv4 (--public-ipv6 is not supported by flannel-ts yet)' : 'not an IPv4 address (e.g. 198.18.0.2)';
  }
  const first = Number(v.split('.')[0]);
  if (v === '0.0.0.0') return 'the unspecified address; give the address other hosts reach this one at';
  if (v === '255.255.255.255' || (first >= 224 && first <= 239)) return "a broadcast or multicast address; give this host's unicast address";
  return undefined;
}

/**
 * Compile an --iface-regex the way the interface matcher must use it: Go's
 * regexp (RE2) syntax mostly matches JavaScript's; a leading `(?flags)` group
 * with i, m, s is translated to RegExp flags. Unanchored, like Go's MatchString.
 */
export function compileIfaceRegex(source: string): RegExp {
  const m = /^\(\?([ims]+)\)/.exec(source);
  if (m) return new RegExp(source.slice(m[0].length), [...new Set(m[1])].join(''));
  return new RegExp(source);
}

/** A copy fit for logging: the etcd password replaced. */
export function redactOptions(o: FlanneldOptions): FlanneldOptions {
  return o.etcdPassword === undefined ? { ...o } : { ...o, etcdPassword: '<redacted>' };
}

// ---------------------------------------------------------------------------
// Usage

const TYPE_NAME: Record<Kind, string> = {
  string: 'string',
  int: 'int',
  bool: '',
  list: 'value',
  level: 'value',
  vmodule: 'value',
  backtrace: 'value',
  severity: 'value',
};

/** Go's isZeroValue for the types in the table. */
function isZeroDefault(spec: FlagSpec): boolean {
  switch (spec.kind) {
    case 'string':
    case 'vmodule':
    case 'severity':
      return spec.def === '';
    case 'int':
    case 'level':
      return spec.def === '0';
    case 'bool':
      return spec.def === 'false';
    case 'list':
      return spec.def === '[]';
    case 'backtrace':
      return spec.def === ':0';
  }
}

/** One flag as Go's flag.PrintDefaults prints it. */
function describe(spec: FlagSpec): string {
  let line = `  -${spec.name}`;
  const type = TYPE_NAME[spec.kind];
  if (type) line += ` ${type}`;
  line += line.length <= 4 ? '\t' : '\n    \t';
  line += spec.usage.replace(/\n/g, '\n    \t');
  if (!isZeroDefault(spec)) line += spec.kind === 'string' ? ` (default ${goQuote(spec.def)})` : ` (default ${spec.def})`;
  if (spec.support === 'unsupported') line += ' [not supported by flannel-ts yet]';
  if (spec.support === 'ignored') line += ' [accepted; no effect in flannel-ts]';
  return line + '\n';
}

/** flanneld's usage text: `Usage: flanneld [OPTION]...` and PrintDefaults, plus flannel-ts notes. */
export function usage(program = 'flanneld'): string {
  const sorted = [...FLANNELD_FLAGS, ...FLANNEL_TS_FLAGS].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let text = `Usage: ${program} [OPTION]...\n`;
  for (const spec of sorted) text += describe(spec);
  text +=
    '\n' +
    'Flags take one or two dashes, as -flag=value or -flag value; a boolean flag\n' +
    'is set with -flag or -flag=false (not "-flag false").\n' +
    `Every flag can also be set in the environment as ${ENV_PREFIX}_<NAME>, the name in\n` +
    `upper case with dashes as underscores (e.g. ${envName('etcd-endpoints')}); the\n` +
    `command line wins. ${envName('iface')} may list several interfaces separated by commas.\n` +
    "klog's output flags flanneld lacks are accepted and ignored (flannel-ts always\n" +
    `logs to standard error): ${KLOG_NOOP_FLAGS.slice(0, 3)
      .map((s) => '-' + s.name)
      .join(', ')},\n` +
    `${KLOG_NOOP_FLAGS.slice(3)
      .map((s) => '-' + s.name)
      .join(', ')}.\n`;
  return text;
}
