// Keeps flannel's iptables rules in place: the FORWARD accept rules
// (--iptables-forward-rules) and the masquerade rules (--ip-masq), installed
// once the lease is known, checked every --iptables-resync seconds and
// re-installed when any is missing, the masquerade rules removed on a clean
// stop.
//
// Every check is one `iptables-save` and every change one
// `iptables-restore --noflush` transaction (never one process per rule), run
// asynchronously: the data plane shares this event loop. The commands act on
// the network namespace of the process, i.e. the host flanneld runs in.
//
// Callers' rules: operations are serialised internally (a resync never
// overlaps a change or the teardown); after stop() no timer is left and no
// further resync starts. Errors from setMasq/setForward/removeMasq reject with
// an IptablesError (code FLANNEL_ERR_IPTABLES); resync errors are logged and
// counted, and the next period tries again.

import {
  IptablesRule,
  allPresent,
  bootstrapPayload,
  forwardRules,
  masqRules,
  parseSave,
  supportsRandomFully,
  teardownPayload,
} from './rules';
import { FlannelError, errorMessage } from '../util/errors';
import { exec, execStatus } from '../util/exec';
import type { Logger } from '../util/log';

export class IptablesError extends FlannelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLANNEL_ERR_IPTABLES', message, options);
    this.name = 'IptablesError';
  }
}

/** The three iptables commands the manager needs; tests pass a fake. */
export interface IptablesRunner {
  /** `iptables-save` (all tables). */
  save(): Promise<string>;
  /** `iptables-restore --noflush` with `payload` on stdin. */
  restore(payload: string): Promise<void>;
  /** `iptables --version`. */
  version(): Promise<string>;
}

/** Runs an iptables command; its failure is an IptablesError that shows the command, stderr and the payload. */
async function run(cmd: string, args: string[], input?: string, timeoutMs = 15_000): Promise<string> {
  try {
    return await exec([cmd, ...args], { input, timeoutMs });
  } catch (e) {
    throw new IptablesError(`${errorMessage(e)}${input ? `\ninput:\n${input}` : ''}`, { cause: e });
  }
}

/** Runs the system's iptables (Debian's: the nft backend) in this process's network namespace. */
export const systemRunner: IptablesRunner = {
  save: () => run('iptables-save', []),
  // -w: wait for the xtables lock (legacy backend; the nft backend ignores it).
  restore: async (payload) => void (await run('iptables-restore', ['-w', '5', '--noflush'], payload)),
  version: async () => {
    const r = await execStatus(['iptables', '--version'], { timeoutMs: 15_000 });
    return r.status === 0 ? r.stdout : '';
  },
};

export interface IptablesManagerOptions {
  log: Logger;
  runner?: IptablesRunner;
  /** MASQUERADE --random-fully: undefined = when iptables supports it (flannel's default). */
  randomFully?: boolean;
}

export class IptablesManager {
  private readonly log: Logger;
  private readonly runner: IptablesRunner;
  private randomFully: boolean | undefined;
  private masq: { network: string; subnet: string; rules: IptablesRule[] } | undefined;
  private forward: IptablesRule[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  /** Resync passes, re-installs (a rule was missing) and failures, for logs and metrics. */
  readonly stats = { resyncs: 0, reinstalls: 0, failures: 0 };

  constructor(opts: IptablesManagerOptions) {
    this.log = opts.log;
    this.runner = opts.runner ?? systemRunner;
    this.randomFully = opts.randomFully;
  }

  /** Runs `fn` after every operation queued before it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /**
   * Installs (or, after a lease move, replaces) the masquerade rules for
   * `network` (FLANNEL_NETWORK) and this node's `subnet`, both CIDR text.
   */
  setMasq(network: string, subnet: string): Promise<void> {
    return this.serial(async () => {
      if (this.randomFully === undefined) this.randomFully = supportsRandomFully(await this.runner.version());
      const rules = masqRules(network, subnet, this.randomFully);
      this.log.info({ network, subnet, randomFully: this.randomFully }, `Setting up masquerade rules (${network}, node subnet ${subnet})`);
      await this.bootstrap(rules);
      this.masq = { network, subnet, rules };
    });
  }

  /** Installs the FORWARD accept rules for `network`. */
  setForward(network: string): Promise<void> {
    return this.serial(async () => {
      const rules = forwardRules(network);
      this.forward = rules; // kept even if this first try fails: the resync retries
      this.log.info({ network }, `Adding FORWARD accept rules for ${network} (chain FLANNEL-FWD)`);
      await this.bootstrap(rules);
    });
  }

  private async bootstrap(rules: IptablesRule[]): Promise<void> {
    const state = parseSave(await this.runner.save());
    await this.runner.restore(bootstrapPayload(state, rules));
  }

  /**
   * One resync pass: if any rule of a set is missing, that set is installed
   * again as a whole (flannel's ensureIPTables). Resolves true when something
   * was re-installed. Rejects on a command failure.
   */
  ensure(): Promise<boolean> {
    return this.serial(async () => {
      const sets = [this.masq?.rules, this.forward].filter((s): s is IptablesRule[] => s !== undefined);
      if (sets.length === 0) return false;
      this.stats.resyncs++;
      const state = parseSave(await this.runner.save());
      const missing = sets.filter((s) => !allPresent(state, s));
      if (missing.length === 0) return false;
      this.log.info('Some iptables rules are missing; deleting and recreating rules');
      await this.runner.restore(missing.map((s) => bootstrapPayload(state, s)).join(''));
      this.stats.reinstalls++;
      return true;
    });
  }

  /** Checks the rules every `periodSeconds` (--iptables-resync) until stop(). */
  startResync(periodSeconds: number): void {
    if (this.stopped || this.timer) return;
    const tick = () => {
      this.timer = undefined;
      if (this.stopped) return;
      this.ensure().then(
        () => undefined,
        (e: unknown) => {
          this.stats.failures++;
          this.log.error({ err: e }, `Failed to ensure iptables rules: ${e instanceof Error ? e.message : String(e)}`);
        },
      ).finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, periodSeconds * 1000);
      });
    };
    this.timer = setTimeout(tick, periodSeconds * 1000);
  }

  /** Stops the resync loop; waits for a pass in flight. Rules stay as they are. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.queue;
  }

  /** Removes the masquerade rules and the FLANNEL-POSTRTG chain (clean shutdown). The FORWARD rules stay, as flannel leaves them. */
  removeMasq(): Promise<void> {
    return this.serial(async () => {
      if (!this.masq) return;
      const state = parseSave(await this.runner.save());
      const text = teardownPayload(state, this.masq.rules);
      if (text !== '') await this.runner.restore(text);
      this.log.info('Removed the masquerade rules');
      this.masq = undefined;
    });
  }
}
