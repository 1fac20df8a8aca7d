// `flannel-ts shell [--state FILE] [NAME] [-- COMMAND...]`: step into a
// namespace of the cluster that `flannel-ts demo --keep` left running — a host
// (h1), a pod (h1-pod1), etcd or the switch — with an interactive shell, or
// run one command there and exit with its status. With no NAME, lists them.
//
// Inside, etcdctl talks to the demo's etcd (ETCDCTL_API, ETCDCTL_ENDPOINTS),
// `flannel-ts` is on PATH, and in a host `flannel-ts trace` finds that host's
// flanneld (FLANNELD_ADMIN_SOCKET).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT, liveNamespaces, readLabState } from '../lab/lab';
import { defaultStatePath, demoFacts } from '../demo/state';
import { padEnd } from '../demo/ui';
import { errorCode } from '../util/errors';

const USAGE = `usage: flannel-ts shell [--state FILE] [NAME] [-- COMMAND [ARGS...]]

Runs an interactive shell (or COMMAND) in a namespace of the cluster left up by
"flannel-ts demo --keep": a host (h1), a pod (h1-pod1), etcd or sw (the switch).
With no NAME, lists them.
`;

interface ShellOptions {
  state: string;
  name?: string;
  command: string[];
}

function parse(argv: string[]): ShellOptions {
  const o: ShellOptions = { state: defaultStatePath(), command: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      o.command = argv.slice(i + 1);
      break;
    }
    if (a === '--state' || a.startsWith('--state=')) {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i];
      if (!v) throw new Error('shell: --state needs a value');
      o.state = path.resolve(v);
    } else if (a === '-h' || a === '--help') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else if (a.startsWith('-')) {
      throw new Error(`shell: unknown option ${a}\n${USAGE}`);
    } else if (o.name === undefined) {
      o.name = a;
    } else {
      // `flannel-ts shell h1 ip route`: the rest is the command.
      o.command = argv.slice(i);
      break;
    }
  }
  return o;
}

export async function main(argv: string[]): Promise<void> {
  const o = parse(argv);
  let state: ReturnType<typeof readLabState>;
  try {
    state = readLabState(o.state);
  } catch (e) {
    if (errorCode(e) === 'FLANNEL_ERR_NO_STATE') {
      throw new Error(`no kept demo (${o.state} does not exist): start one with "flannel-ts demo --keep"`);
    }
    throw e;
  }
  const facts = demoFacts(state);
  const names = Object.keys(facts.places);
  if (o.name === undefined) {
    const w = Math.max(...names.map((n) => n.length));
    const rows = names.map((n) => `  ${padEnd(n, w)}  ${padEnd(facts.places[n].ip ?? '', 14)}  ${facts.places[n].what}`.trimEnd());
    process.stdout.write(`${USAGE}\n${rows.join('\n')}\n`);
    return;
  }
  const place = facts.places[o.name];
  if (!place) throw new Error(`shell: no "${o.name}" in the kept demo; one of: ${names.join(', ')}`);
  if (!liveNamespaces(state).includes(place.ns)) {
    throw new Error(`shell: namespace ${place.ns} is gone (after a reboot?); clear the record with "${facts.self} demo --down"`);
  }
  const host = facts.hosts.find((h) => h.name === o.name);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ETCDCTL_API: '3',
    ETCDCTL_ENDPOINTS: facts.etcd.endpoint,
    PATH: `${path.join(REPO_ROOT, 'bin')}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
    FLANNEL_TS_PLACE: o.name,
  };
  if (host) env.FLANNELD_ADMIN_SOCKET = host.adminSocket;

  let argv2: string[];
  if (o.command.length > 0) {
    argv2 = o.command;
  } else {
    const sh = process.env.SHELL && fs.existsSync(process.env.SHELL) ? process.env.SHELL : '/bin/bash';
    if (path.basename(sh) === 'bash') {
      const rc = path.join(state.dir, 'shell.bashrc');
      fs.writeFileSync(rc, ['[ -f /etc/bash.bashrc ] && . /etc/bash.bashrc', '[ -f ~/.bashrc ] && . ~/.bashrc', 'PS1="(flannel-ts $FLANNEL_TS_PLACE) \\w\\$ "', ''].join('\n'));
      // -i only at a terminal: piped commands run as a script, without job-control warnings.
      argv2 = [sh, '--rcfile', rc, ...(process.stdin.isTTY ? ['-i'] : [])];
    } else {
      env.PS1 = `(flannel-ts ${o.name}) # `;
      argv2 = [sh, ...(process.stdin.isTTY ? ['-i'] : [])];
    }
    process.stderr.write(`${o.name}: ${place.what}${place.ip ? `, ${place.ip}` : ''} (namespace ${place.ns}). exit or Ctrl-D to leave.${os.EOL}`);
  }
  // The child owns the terminal: Ctrl-C is for it, not for us.
  const ignore = () => undefined;
  process.on('SIGINT', ignore);
  process.on('SIGQUIT', ignore);
  const r = spawnSync('ip', ['netns', 'exec', place.ns, ...argv2], { stdio: 'inherit', env });
  process.removeListener('SIGINT', ignore);
  process.removeListener('SIGQUIT', ignore);
  if (r.error) throw new Error(`shell: ${r.error.message}`);
  process.exitCode = r.status ?? 128 + (os.constants.signals[r.signal as NodeJS.Signals] ?? 0);
}
