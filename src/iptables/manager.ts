// The iptables traffic manager (see traffic.ts for the lifecycle): the
// FORWARD accept rules in chain FLANNEL-FWD and the masquerade rules in
// FLANNEL-POSTRTG, as upstream's pkg/trafficmngr/iptables lays them out.
//
// Every check is one `iptables-save` and every change one
// `iptables-restore --noflush` transaction (never one process per rule), run
// asynchronously: the data plane shares this event loop. The commands act on
// the network namespace of the process, i.e. the host flanneld runs in.

import { execCommand } from './exec';
import { type IptablesRule, type SavedState, bootstrapPayload, countRule, forwardRules, masqRules, parseSave, ruleKey, supportsRandomFully, teardownPayload } from './rules';
import { RuleKeeper, type TrafficDesired, type TrafficManager } from './traffic';
import { FlannelError } from '../util/errors';
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

const ipt = (cmd: string, args: string[], input?: string) =>
  execCommand(cmd, args, {
    input,
    installHint: 'the iptables package, or set "EnableNFTables": true in the network config to use nft instead',
    error: (m, cause) => new IptablesError(m, { cause }),
  });

/** Runs the system's iptables (Debian's: the nft backend) in this process's network namespace. */
export const systemRunner: IptablesRunner = {
  save: () => ipt('iptables-save', []),
  // -w: wait for the xtables lock (legacy backend; the nft backend ignores it).
  restore: async (payload) => void (await ipt('iptables-restore', ['-w', '5', '--noflush'], payload)),
  version: () => ipt('iptables', ['--version']).catch(() => ''),
};

export interface IptablesManagerOptions {
  log: Logger;
  runner?: IptablesRunner;
  /** MASQUERADE --random-fully: undefined = when iptables supports it (flannel's default); false = --ip-masq-fully-random-disable. */
  randomFully?: boolean;
}

/** Every rule once, and flannel's own chains holding exactly these rules in this order. */
export function inSync(s: SavedState, rules: IptablesRule[]): boolean {
  if (!rules.every((r) => countRule(s, r) === 1)) return false;
  const own = new Map<string, string[]>();
  for (const r of rules) {
    if (!r.chain.startsWith('FLANNEL-')) continue;
    const k = `${r.table}/${r.chain}`;
    own.set(k, [...(own.get(k) ?? []), ruleKey(r.table, r.chain, r.spec)]);
  }
  for (const [tc, want] of own) {
    const [t, c] = tc.split('/');
    const prefix = JSON.stringify([t, c]).slice(0, -1) + ',';
    const have = s.rules.filter((k) => k.startsWith(prefix));
    if (have.length !== want.length || have.some((k, i) => k !== want[i])) return false;
  }
  return true;
}

// The jumps and chain names do not depend on the network: these find
// flannel's rules whatever network they were made for.
const ANY = '0.0.0.0/0';
const ANY_MASQ = masqRules(ANY, ANY, false);
const ANY_FORWARD = forwardRules(ANY);

export class IptablesManager extends RuleKeeper implements TrafficManager {
  readonly mode = 'iptables' as const;
  private readonly runner: IptablesRunner;
  private randomFully: boolean | undefined;
  private masq: { network: string; subnet: string; rules: IptablesRule[] } | undefined;
  private forward: IptablesRule[] | undefined;

  constructor(opts: IptablesManagerOptions) {
    super(opts.log, 'iptables');
    this.runner = opts.runner ?? systemRunner;
    this.randomFully = opts.randomFully;
  }

  async configure(d: TrafficDesired): Promise<void> {
    if (d.forward) this.forward = forwardRules(d.forward.network); // the resync retries it even if the masquerade set-up fails
    if (d.masq) await this.setMasq(d.masq.network, d.masq.subnet);
    else await this.removeMasq();
    if (d.forward) await this.setForward(d.forward.network);
    else await this.removeForward();
  }

  setMasq(network: string, subnet: string): Promise<void> {
    return this.serial(async () => {
      if (this.randomFully === undefined) this.randomFully = supportsRandomFully(await this.runner.version());
      const rules = masqRules(network, subnet, this.randomFully);
      const changed = await this.reconcile(rules);
      this.log.info(
        { network, subnet, randomFully: this.randomFully },
        changed
          ? `Set up the masquerade rules (${network}, node subnet ${subnet}; chain FLANNEL-POSTRTG)`
          : `The masquerade rules for ${network} (node subnet ${subnet}) are already in place; kept as they are`,
      );
      this.masq = { network, subnet, rules };
    });
  }

  setForward(network: string): Promise<void> {
    return this.serial(async () => {
      const rules = forwardRules(network);
      this.forward = rules; // kept even if this first try fails: the resync retries
      const changed = await this.reconcile(rules);
      this.log.info({ network }, changed ? `Added the FORWARD accept rules for ${network} (chain FLANNEL-FWD)` : `The FORWARD accept rules for ${network} are already in place`);
    });
  }

  /** Installs `rules` in one transaction unless they are already exactly in place; true when it changed something. */
  private async reconcile(rules: IptablesRule[]): Promise<boolean> {
    const state = parseSave(await this.runner.save());
    if (inSync(state, rules)) return false;
    await this.runner.restore(bootstrapPayload(state, rules));
    return true;
  }

  /**
   * One resync pass: a set with a rule missing, repeated or out of place is
   * installed again as a whole, in one transaction (flannel's ensureIPTables,
   * which checks only for missing rules).
   */
  ensure(): Promise<boolean> {
    return this.serial(async () => {
      const sets = [this.masq?.rules, this.forward].filter((s): s is IptablesRule[] => s !== undefined);
      if (sets.length === 0) return false;
      this.stats.resyncs++;
      const state = parseSave(await this.runner.save());
      const broken = sets.filter((s) => !inSync(state, s));
      if (broken.length === 0) return false;
      this.log.info('Some iptables rules are missing or changed; deleting and recreating rules');
      await this.runner.restore(broken.map((s) => bootstrapPayload(state, s)).join(''));
      this.stats.reinstalls++;
      return true;
    });
  }

  private teardown(rules: IptablesRule[], what: string): Promise<boolean> {
    return this.serial(async () => {
      const state = parseSave(await this.runner.save());
      const text = teardownPayload(state, rules);
      if (text === '') return false;
      await this.runner.restore(text);
      this.log.info(`Removed ${what}`);
      return true;
    });
  }

  /** Removes the masquerade rules and the FLANNEL-POSTRTG chain, whatever network they were for. */
  async removeMasq(): Promise<void> {
    this.masq = undefined;
    await this.teardown(ANY_MASQ, 'the iptables masquerade rules (chain FLANNEL-POSTRTG)');
  }

  /** Removes the FORWARD accept rules and the FLANNEL-FWD chain. */
  async removeForward(): Promise<void> {
    this.forward = undefined;
    await this.teardown(ANY_FORWARD, 'the iptables FORWARD accept rules (chain FLANNEL-FWD)');
  }

  async removeAll(): Promise<boolean> {
    this.masq = undefined;
    this.forward = undefined;
    return this.teardown([...ANY_MASQ, ...ANY_FORWARD], "flannel's iptables rules (chains FLANNEL-POSTRTG, FLANNEL-FWD)");
  }
}
