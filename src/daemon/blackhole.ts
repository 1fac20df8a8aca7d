// --ip-blackhole-route (upstream v0.27.1): a blackhole route for this node's
// own lease subnet, first added one --iptables-resync period after start and
// re-ensured every period, so packets for pod addresses that no local pod
// holds are dropped here instead of leaving by the default route (setups
// without a bridge, e.g. Canal).
//
// Departure from upstream: the route has metric BLACKHOLE_METRIC, so it sits
// beside cni0's connected route for the same subnet (metric 0, which wins)
// instead of colliding with it (upstream adds it at metric 0, where it cannot
// coexist with the bridge's route). With a bridge, local pods stay reachable;
// without one, the blackhole catches the subnet.
//
// Callers' rules: start() once; setSubnet() after a lease move (the old
// route is removed); stop() ends the loop and leaves the route, as upstream
// does (`flannel-ts cleanup` removes it). Commands run asynchronously.

import type { Ip4Net } from '../routes/ip4';
import type { Logger } from '../util/log';
import { execStatus } from '../util/exec';

export const BLACKHOLE_METRIC = 4242;

export class BlackholeRoute {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private busy: Promise<void> = Promise.resolve();
  private announced: string | undefined;

  constructor(
    private subnet: Ip4Net,
    private readonly periodSeconds: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    const tick = () => {
      this.timer = undefined;
      if (this.stopped) return;
      this.busy = this.ensure().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.periodSeconds * 1000);
      });
    };
    this.timer = setTimeout(tick, this.periodSeconds * 1000);
  }

  /** The lease moved: drop the old subnet's route; the next period adds the new one. */
  async setSubnet(subnet: Ip4Net): Promise<void> {
    if (subnet.equals(this.subnet)) return;
    const old = this.subnet;
    this.subnet = subnet;
    await execStatus(['ip', 'route', 'del', 'blackhole', old.toString(), 'metric', String(BLACKHOLE_METRIC)], { timeoutMs: 10_000 });
  }

  /** Adds the route if it is missing; never throws (a failure is logged, the next period retries). */
  async ensure(): Promise<void> {
    const dst = this.subnet.toString();
    const list = await execStatus(['ip', '-4', 'route', 'show', 'type', 'blackhole', 'exact', dst], { timeoutMs: 10_000 });
    if (list.status === 0 && list.stdout.includes(`metric ${BLACKHOLE_METRIC}`)) return;
    const add = await execStatus(['ip', 'route', 'replace', 'blackhole', dst, 'metric', String(BLACKHOLE_METRIC)], { timeoutMs: 10_000 });
    if (add.status !== 0) {
      this.log.error(`Failed to set up the blackhole route for ${dst} (--ip-blackhole-route; retrying every ${this.periodSeconds} s): ${add.stderr.trim()}`);
      return;
    }
    this.log.info(`${this.announced === dst ? 'Re-added' : 'Added'} the blackhole route for ${dst} (metric ${BLACKHOLE_METRIC}, below cni0's connected route)`);
    this.announced = dst;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.busy;
  }
}
