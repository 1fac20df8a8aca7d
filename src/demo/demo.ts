// `flannel-ts demo`: a live three-host cluster on this machine (etcd, flanneld
// with the udp backend on each host, two pods per host), narrated step by step
// with the real output of each step, down to one ping's packet decoded off the
// underlay; then udp against kernel vxlan. Everything lives in namespaces this
// command creates and removes at the end, also on Ctrl-C or an error — unless
// --keep, which leaves the cluster up for `flannel-ts shell` until `--down`.
//
// The steps are in demo/steps.ts, the narration (English, Chinese) in
// demo/text.ts, the pcap decoding in demo/pcap.ts.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab, destroyFromState, isRecordedProcessAlive, liveNamespaces, readLabState } from '../lab/lab';
import { which } from '../lab/sh';
import { Ui } from './ui';
import { type Text, text } from './text';
import { DemoRun, ETCD_PREFIX } from './steps';
import { defaultStatePath } from './state';
import { runWeb } from './web/web';

const USAGE = `usage: flannel-ts demo [--keep] [--lang en|zh] [--plain] [--state FILE]
       flannel-ts demo --web [--port N] [--keep] [--lang en|zh]
       flannel-ts demo --down [--state FILE]

Builds a three-host flannel cluster in network namespaces on this machine
(root), walks a ping through the overlay hop by hop, compares udp with kernel
vxlan, and removes everything at the end (also on Ctrl-C or an error).

  --web         build the same cluster and draw it live in a browser: prints a
                URL (127.0.0.1 only, with a token) and runs until Ctrl-C, then
                removes everything (with --keep: leaves it for --down)
  --port N      the web view's port (default 7070; 0 picks a free one)
  --keep        leave the cluster up; step in with "flannel-ts shell h1"
  --down        tear down a cluster left by --keep
  --lang zh     narrate in Chinese (default: en)
  --plain       no colour, no progress line (automatic when stdout is not a terminal)
  --state FILE  where --keep records the cluster (default: $FLANNEL_TS_DEMO_STATE
                or ${defaultStatePath()})
`;

interface DemoOptions {
  plain: boolean;
  keep: boolean;
  down: boolean;
  lang: 'en' | 'zh';
  state: string;
  help: boolean;
  web: boolean;
  port: number;
}

function parse(argv: string[]): DemoOptions {
  const o: DemoOptions = { plain: false, keep: false, down: false, lang: 'en', state: defaultStatePath(), help: false, web: false, port: 7070 };
  for (let i = 0; i < argv.length; i++) {
    const [k, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`demo: ${k} needs a value\n${USAGE}`);
      return v;
    };
    switch (k) {
      case '--plain':
        o.plain = true;
        break;
      case '--keep':
        o.keep = true;
        break;
      case '--web':
        o.web = true;
        break;
      case '--port': {
        const v = value();
        o.port = Number(v);
        if (!/^\d+$/.test(v) || o.port > 65535) throw new Error(`demo: --port ${v}: use a port number 0-65535 (0 picks a free one)`);
        break;
      }
      case '--down':
        o.down = true;
        break;
      case '--lang': {
        const l = value().toLowerCase();
        if (l !== 'en' && l !== 'zh' && !l.startsWith('zh')) throw new Error(`demo: --lang ${l}: use en or zh`);
        o.lang = l.startsWith('zh') ? 'zh' : 'en';
        break;
      }
      case '--state':
        o.state = path.resolve(value());
        break;
      case '-h':
      case '--help':
        o.help = true;
        break;
      default:
        throw new Error(`demo: unknown option ${argv[i]}\n${USAGE}`);
    }
  }
  if (o.keep && o.down) throw new Error('demo: --keep and --down do not go together');
  if (o.web && o.down) throw new Error('demo: --web and --down do not go together (--down removes a kept cluster, web or not)');
  return o;
}

/** How the user invoked this tool, for printed hints: "bin/flannel-ts" from the repo, else "flannel-ts". */
export function selfCommand(): string {
  const script = process.argv[1] ?? 'flannel-ts';
  const rel = path.relative(process.cwd(), script);
  if (rel && !rel.startsWith('..') && !path.isAbsolute(rel)) return rel.includes('/') ? rel : `./${rel}`;
  return which('flannel-ts') ? 'flannel-ts' : script;
}

function preflight(T: Text): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new Error(T.err.needRoot);
  const missing = ['ip', 'bridge', 'ss', 'etcd', 'etcdctl', 'tcpdump', 'iperf3', 'ping'].filter((t) => !which(t));
  if (missing.length > 0) throw new Error(T.err.missing(missing));
}

/** One kept demo at a time; a state file whose cluster is gone (a reboot) is cleared. */
async function ensureNoKeptDemo(stateFile: string, shell: string, down: string, T: Text): Promise<void> {
  if (!fs.existsSync(stateFile)) return;
  const s = readLabState(stateFile);
  if (liveNamespaces(s).length > 0 || s.processes.some(isRecordedProcessAlive)) throw new Error(T.err.keptExists(stateFile, shell, down));
  await destroyFromState(stateFile);
}

async function down(stateFile: string, ui: Ui, T: Text): Promise<void> {
  if (!fs.existsSync(stateFile)) {
    ui.line(T.down.nothing(stateFile));
    return;
  }
  const p = ui.progress(T.down.progress);
  const r = await destroyFromState(stateFile);
  p.done(T.down.done(r.processes.length, r.namespaces.length, r.dir));
}

export async function main(argv: string[]): Promise<void> {
  const o = parse(argv);
  if (o.help) {
    process.stdout.write(USAGE);
    return;
  }
  const T = text(o.lang);
  const tty = process.stdout.isTTY === true;
  const ui = new Ui({ color: !o.plain && tty && !process.env.NO_COLOR, progress: !o.plain && tty });
  if (o.down) return down(o.state, ui, T);

  const self = selfCommand();
  const stateFlag = o.state === defaultStatePath() ? '' : ` --state ${o.state}`;
  preflight(T);
  if (o.keep) await ensureNoKeptDemo(o.state, `${self} shell${stateFlag} h1`, `${self} demo --down${stateFlag}`, T);
  if (o.web) return runWeb({ port: o.port, lang: o.lang, keep: o.keep, state: o.state, self, shell: `${self} shell${stateFlag} h1`, down: `${self} demo --down${stateFlag}` }, ui);

  // --keep: the daemons get their own session, so they outlive us.
  const lab = new Lab({ detached: o.keep });
  const demo = new DemoRun(lab, ui, T, { keep: o.keep });
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const onSignal = (sig: NodeJS.Signals) => {
    ui.active?.clear();
    ui.line();
    ui.line(T.end.interrupted(sig));
    lab.destroySync();
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as Record<string, number>)[sig]);
  };
  for (const s of signals) process.on(s, onSignal);
  try {
    await demo.run();
    if (o.keep) {
      const facts = demo.facts(self);
      lab.keep(o.state, facts as unknown as Record<string, unknown>);
      ui.heading(T.end.keptTitle);
      ui.para(T.end.keptIntro(o.state, true));
      ui.para(T.end.stepInto);
      ui.line();
      ui.table(
        T.end.placesHeader,
        Object.entries(facts.places).map(([name, p]) => [name, p.what, p.ip ?? '', p.ns]),
      );
      ui.line();
      ui.para(T.end.try);
      const dstIp = demo.pods.get(demo.hosts[2])![1].ip;
      const sh = `${self} shell${stateFlag}`;
      for (const c of [
        `${sh} h1`,
        `${sh} h1 -- ip route`,
        `${sh} h1-pod1 -- ping -c 3 ${dstIp}`,
        `${sh} h1 -- flannel-ts trace --host ${dstIp}`,
        `${sh} etcd -- etcdctl get ${ETCD_PREFIX}/subnets --prefix`,
      ]) {
        ui.line(`  ${ui.style('bold', c)}`);
      }
      ui.line();
      ui.line(T.end.teardown(ui.style('bold', `${self} demo --down${stateFlag}`)));
      ui.line(T.end.logs(lab.dir));
    } else {
      ui.heading(T.end.title);
      const n = lab.namespaces.length;
      const p = ui.progress(T.end.removing);
      await lab.destroy();
      p.done(T.end.removed(n));
    }
  } catch (e) {
    ui.active?.clear();
    throw e;
  } finally {
    for (const s of signals) process.removeListener(s, onSignal);
    if (!lab.isKept) await lab.destroy();
  }
}
