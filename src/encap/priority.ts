// The data-plane thread's priority, decided the way the kernel treats its own
// packet work. Softirq runs ahead of every process while the work is light,
// but work that keeps coming is handed to ksoftirqd, an ordinary nice-0
// thread, so that a flood cannot starve the host's applications. The thread
// does the same by its duty cycle:
// - boosted (--dataplane-nice, default -10) while it sleeps most of the time:
//   a woken thread then runs before the control plane, etcd and whatever else
//   is at nice 0 (ping p99 during lease churn halves);
// - the process's own nice value while it is busy for more than half of a
//   window: at -10 a small-packet flood kept the CPU from the application
//   receiving it (35 kpkt/s received against 57 at nice 0).
// Measured in the README (Numbers, the data-plane thread).

/** Length of the window over which the busy share is judged (ns). */
export const WINDOW_NS = 100e6;
/** Busy share above which a boosted thread steps down... */
const STEP_DOWN = 0.5;
/** ...and below which it is boosted again (hysteresis: no flapping in between). */
const STEP_UP = 0.25;

export class PriorityGovernor {
  private windowStart = Number.NaN;
  private blockedAtStart = 0;
  /** The nice value was refused: the governor leaves the thread as it is. */
  private stopped = false;
  /** Whether the boosted value is in force. */
  boosted = true;
  /** Times the priority changed (either way). */
  changes = 0;

  /**
   * `setNice` applies a nice value to the thread (it may throw: the
   * governor then stops and leaves the thread as it is). The thread starts
   * boosted.
   */
  constructor(
    private readonly setNice: (nice: number) => void,
    private readonly boostedNice: number,
    private readonly normalNice: number,
  ) {}

  /**
   * Called at each wake-up with the thread's clock and the total time it has
   * spent blocked so far (ns; dpWait's stats[3] and stats[2]). Cheap: one
   * subtraction until a window is over.
   */
  tick(now: number, blockedNs: number): void {
    if (!(now - this.windowStart < WINDOW_NS) && !this.stopped) {
      if (!Number.isNaN(this.windowStart)) this.judge(1 - (blockedNs - this.blockedAtStart) / (now - this.windowStart));
      this.windowStart = now;
      this.blockedAtStart = blockedNs;
    }
  }

  private judge(busy: number): void {
    const want = this.boosted ? busy <= STEP_DOWN : busy < STEP_UP;
    if (want === this.boosted || this.boostedNice === this.normalNice) return;
    try {
      this.setNice(want ? this.boostedNice : this.normalNice);
    } catch {
      this.stopped = true; // refused: stay as we are, never ask again
      return;
    }
    this.boosted = want;
    this.changes++;
  }
}
