// The nftables traffic manager (net-conf "EnableNFTables": true; see
// traffic.ts for the lifecycle), with upstream's layout
// (pkg/trafficmngr/nftables): table `ip flannel-ipv4`, base chain `postrtg`
// (nat, hook postrouting, priority srcnat) for the masquerade rules and base
// chain `forward` (filter, hook forward, priority filter) for the accept
// rules. Runs Debian's `nft`; no iptables binary is needed in this mode.
//
// The table is flannel's alone, so reconciling is simple and atomic: the
// wanted table is rendered exactly as `nft list table` prints it; when the
// listing differs, one `nft -f` transaction deletes and re-creates the table
// (never a moment without masquerade, never a duplicate).
//
// Departure from upstream's rule text: upstream's fourth masquerade rule
// returns for `saddr != <pod subnet>, daddr <Network>`, which makes its last
// rule (host -> remote pods: masquerade) unreachable. flannel-ts writes the
// iptables mode's rule (`saddr != <Network>, daddr <pod subnet>`), so both
// modes masquerade the same traffic.

import { execCommand } from './exec';
import { RuleKeeper, type TrafficDesired, type TrafficManager } from './traffic';
import { FlannelError } from '../util/errors';
import type { Logger } from '../util/log';

export const NFT_TABLE = 'flannel-ipv4';
export const NFT_MASQ_CHAIN = 'postrtg';
export const NFT_FORWARD_CHAIN = 'forward';

export class NftablesError extends FlannelError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLANNEL_ERR_NFTABLES', message, options);
    this.name = 'NftablesError';
  }
}

/** What flannel wants in its table. */
export interface NftDesired {
  masq?: { network: string; subnet: string; randomFully: boolean };
  forward?: { network: string };
}

/** The table as `nft list table ip flannel-ipv4` prints it; '' when nothing is wanted. */
export function renderTable(d: NftDesired): string {
  const chains: string[][] = [];
  if (d.masq) {
    const { network: net, subnet: sub } = d.masq;
    const masq = d.masq.randomFully ? 'masquerade fully-random' : 'masquerade';
    chains.push([
      `chain ${NFT_MASQ_CHAIN} {`,
      '\tcomment "chain to manage traffic masquerading by flannel"',
      '\ttype nat hook postrouting priority srcnat; policy accept;',
      // kube-proxy's mark (0x4000/0x4000 in the iptables mode): never masqueraded twice.
      '\tmeta mark & 0x00004000 == 0x00004000 return',
      `\tip saddr ${sub} ip daddr ${net} return`,
      `\tip saddr ${net} ip daddr ${sub} return`,
      `\tip saddr != ${net} ip daddr ${sub} return`,
      `\tip saddr ${net} ip daddr != 224.0.0.0/4 ${masq}`,
      `\tip saddr != ${net} ip daddr ${net} ${masq}`,
      '}',
    ]);
  }
  if (d.forward) {
    const net = d.forward.network;
    chains.push([
      `chain ${NFT_FORWARD_CHAIN} {`,
      '\tcomment "chain to accept flannel traffic"',
      '\ttype filter hook forward priority filter; policy accept;',
      `\tip saddr ${net} accept`,
      `\tip daddr ${net} accept`,
      '}',
    ]);
  }
  if (chains.length === 0) return '';
  const body = chains.map((c) => c.map((l) => `\t${l}`).join('\n')).join('\n\n');
  return `table ip ${NFT_TABLE} {\n\tcomment "rules for ${NFT_TABLE} (flanneld)"\n${body}\n}\n`;
}

/** Compares listings line by line, ignoring indentation, blank lines and `# handle` annotations. */
export function normalizeListing(text: string): string {
  return text
    .split('\n')
    .map((l) => l.replace(/\s+# handle \d+$/, '').trim())
    .filter((l) => l !== '')
    .join('\n');
}

/** The one transaction that makes the table exactly `rendered` (deleted when '') atomically. */
export function replaceScript(rendered: string): string {
  // `table` first creates it if absent, so the delete cannot fail.
  return `table ip ${NFT_TABLE}\ndelete table ip ${NFT_TABLE}\n${rendered}`;
}

/** The nft commands the manager needs; tests pass a fake. */
export interface NftRunner {
  /** `nft list table ip flannel-ipv4`; undefined when the table does not exist. */
  list(): Promise<string | undefined>;
  /** `nft -f -` with `script` on stdin: one atomic transaction. */
  apply(script: string): Promise<void>;
}

const nft = (args: string[], input?: string) =>
  execCommand('nft', args, {
    input,
    installHint: 'the nftables package (apt-get install nftables), or remove "EnableNFTables" from the network config to use iptables',
    error: (m, cause) => new NftablesError(m, { cause }),
  });

export const systemNftRunner: NftRunner = {
  list: async () => {
    try {
      return await nft(['list', 'table', 'ip', NFT_TABLE]);
    } catch (e) {
      if (/No such file or directory/.test((e as Error).message)) return undefined;
      throw e;
    }
  },
  apply: async (script) => void (await nft(['-f', '-'], script)),
};

export interface NftablesManagerOptions {
  log: Logger;
  runner?: NftRunner;
  /** masquerade fully-random (default true; false = --ip-masq-fully-random-disable). */
  randomFully?: boolean;
}

export class NftablesManager extends RuleKeeper implements TrafficManager {
  readonly mode = 'nftables' as const;
  private readonly runner: NftRunner;
  private readonly randomFully: boolean;
  private readonly desired: NftDesired = {};

  constructor(opts: NftablesManagerOptions) {
    super(opts.log, 'nftables');
    this.runner = opts.runner ?? systemNftRunner;
    this.randomFully = opts.randomFully ?? true;
  }

  /** Makes the table what `desired` says; true when it changed something. */
  private async reconcile(): Promise<boolean> {
    const want = renderTable(this.desired);
    const have = await this.runner.list();
    if (normalizeListing(have ?? '') === normalizeListing(want)) return false;
    if (have === undefined && want === '') return false;
    await this.runner.apply(replaceScript(want));
    return true;
  }

  configure(d: TrafficDesired): Promise<void> {
    return this.serial(async () => {
      this.desired.masq = d.masq && { ...d.masq, randomFully: this.randomFully };
      this.desired.forward = d.forward && { ...d.forward };
      const changed = await this.reconcile();
      const what =
        [d.masq && `masquerade for ${d.masq.network} (node subnet ${d.masq.subnet}, ${this.randomFully ? 'fully-random' : 'not fully-random'})`, d.forward && `forward accept for ${d.forward.network}`]
          .filter(Boolean)
          .join(' and ') || 'no rules';
      this.log.info(changed ? `nftables: set table ip ${NFT_TABLE} to ${what}` : `nftables: table ip ${NFT_TABLE} already holds ${what}; kept as it is`);
    });
  }

  setMasq(network: string, subnet: string): Promise<void> {
    return this.serial(async () => {
      this.desired.masq = { network, subnet, randomFully: this.randomFully };
      const changed = await this.reconcile();
      this.log.info(
        { network, subnet, randomFully: this.randomFully },
        changed
          ? `Set up the masquerade rules (${network}, node subnet ${subnet}; nftables table ip ${NFT_TABLE}, chain ${NFT_MASQ_CHAIN})`
          : `The masquerade rules for ${network} (node subnet ${subnet}) are already in place in table ip ${NFT_TABLE}; kept as they are`,
      );
    });
  }

  setForward(network: string): Promise<void> {
    return this.serial(async () => {
      this.desired.forward = { network };
      const changed = await this.reconcile();
      this.log.info(
        { network },
        changed ? `Added the forward accept rules for ${network} (table ip ${NFT_TABLE}, chain ${NFT_FORWARD_CHAIN})` : `The forward accept rules for ${network} are already in place`,
      );
    });
  }

  removeMasq(): Promise<void> {
    return this.serial(async () => {
      this.desired.masq = undefined;
      if (await this.reconcile()) this.log.info(`Removed the nftables masquerade rules (table ip ${NFT_TABLE})`);
    });
  }

  removeForward(): Promise<void> {
    return this.serial(async () => {
      this.desired.forward = undefined;
      if (await this.reconcile()) this.log.info(`Removed the nftables forward rules (table ip ${NFT_TABLE})`);
    });
  }

  ensure(): Promise<boolean> {
    return this.serial(async () => {
      if (!this.desired.masq && !this.desired.forward) return false;
      this.stats.resyncs++;
      if (!(await this.reconcile())) return false;
      this.log.info(`The nftables rules in table ip ${NFT_TABLE} were missing or changed; recreated them`);
      this.stats.reinstalls++;
      return true;
    });
  }

  removeAll(): Promise<boolean> {
    return this.serial(async () => {
      this.desired.masq = undefined;
      this.desired.forward = undefined;
      if ((await this.runner.list()) === undefined) return false;
      await this.runner.apply(replaceScript(''));
      this.log.info(`Removed flannel's nftables table ip ${NFT_TABLE}`);
      return true;
    });
  }
}
