// The traffic manager: flannel's masquerade (--ip-masq) and forward
// (--iptables-forward-rules) rules, kept in place by one of two
// implementations as upstream's pkg/trafficmngr: iptables (manager.ts) or
// nftables (nftables.ts, net-conf "EnableNFTables": true).
//
// Lifecycle (the same in both modes):
//  - at start, set*/remove* reconcile the host with this start's config: what
//    is missing is added, nothing is duplicated, and flannel's rules that no
//    longer match (another Network or subnet, --ip-masq now off) are removed.
//    Upstream never removes stale rules; flannel-ts does. Rules already in
//    place are left untouched (no gap, no churn);
//  - every --iptables-resync seconds ensure() repairs them;
//  - stop() ends the resync and LEAVES THE RULES, as upstream >= 0.27 does, so
//    pods keep masquerading new connections across a restart;
//  - removeAll() takes away everything this mode installs, whatever the
//    network: the other mode's leftovers at start, and `flannel-ts cleanup`.
//
// Callers' rules: operations are serialised (a resync never overlaps a
// change); after stop() no timer is left. Errors reject with the mode's
// error class (FLANNEL_ERR_IPTABLES / FLANNEL_ERR_NFTABLES); resync errors are
// logged and counted, and the next period tries again.

export type TrafficMode = 'iptables' | 'nftables';

import type { Logger } from '../util/log';

/** Everything flannel wants of the traffic rules at once (what this start's flags and config say). */
export interface TrafficDesired {
  /** --ip-masq: the overlay Network and this node's subnet, CIDR text. */
  masq?: { network: string; subnet: string };
  /** --iptables-forward-rules: the overlay Network. */
  forward?: { network: string };
}

export interface TrafficManager {
  readonly mode: TrafficMode;
  /**
   * The start's reconcile: makes flannel's rules exactly `desired` (what is
   * absent from it is removed), touching nothing that is already right, in
   * as few transactions as the mode allows (nftables: one). Rejects on the
   * first failure; the resync loop retries what was asked.
   */
  configure(desired: TrafficDesired): Promise<void>;
  /** Resync passes, repairs (something was missing or extra) and failures. */
  readonly stats: { resyncs: number; reinstalls: number; failures: number };
  /** Masquerade for `network` (FLANNEL_NETWORK) and this node's `subnet`, both CIDR text; replaces other masquerade rules of flannel's. */
  setMasq(network: string, subnet: string): Promise<void>;
  /** Removes flannel's masquerade rules, if any (ip-masq off). */
  removeMasq(): Promise<void>;
  /** The forward accept rules for `network`; replaces other forward rules of flannel's. */
  setForward(network: string): Promise<void>;
  /** Removes flannel's forward rules, if any. */
  removeForward(): Promise<void>;
  /** One resync pass; true when something was repaired. */
  ensure(): Promise<boolean>;
  startResync(periodSeconds: number): void;
  /** Ends the resync loop; the rules stay. */
  stop(): Promise<void>;
  /** Removes everything of flannel's in this mode; true when something was there. */
  removeAll(): Promise<boolean>;
}

/** Serialisation and the resync loop, shared by both modes. */
export abstract class RuleKeeper {
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  readonly stats = { resyncs: 0, reinstalls: 0, failures: 0 };

  protected constructor(
    protected readonly log: Logger,
    private readonly what: string,
  ) {}

  /** Runs `fn` after every operation queued before it. */
  protected serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  abstract ensure(): Promise<boolean>;

  /** Checks the rules every `periodSeconds` (--iptables-resync) until stop(). */
  startResync(periodSeconds: number): void {
    if (this.stopped || this.timer) return;
    const tick = () => {
      this.timer = undefined;
      if (this.stopped) return;
      this.ensure()
        .then(
          () => undefined,
          (e: unknown) => {
            this.stats.failures++;
            this.log.error({ err: e }, `Failed to ensure ${this.what} rules: ${e instanceof Error ? e.message : String(e)}`);
          },
        )
        .finally(() => {
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
}
