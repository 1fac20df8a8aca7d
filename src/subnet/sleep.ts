// Waiting between retries without keeping a closed manager alive.

/** The error a wait rejects with when one of its signals fires: the signal's reason, as fetch() does. */
function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ABORT_ERR' });
}

/** Resolves after `ms`, or rejects as soon as any of `signals` is aborted. */
export function sleep(ms: number, ...signals: Array<AbortSignal | undefined>): Promise<void> {
  return new Promise((resolve, reject) => {
    const live = signals.filter((s): s is AbortSignal => s !== undefined);
    const fired = live.find((s) => s.aborted);
    if (fired) {
      reject(abortReason(fired));
      return;
    }
    const onAbort = (ev: Event): void => {
      clearTimeout(timer);
      for (const s of live) s.removeEventListener('abort', onAbort);
      reject(abortReason(ev.target as AbortSignal));
    };
    const timer = setTimeout(() => {
      for (const s of live) s.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    for (const s of live) s.addEventListener('abort', onAbort, { once: true });
  });
}

/** Exponential backoff between `min` and `max` ms: next() doubles, reset() starts over. */
export class Backoff {
  private current: number;
  constructor(
    private readonly min: number,
    private readonly max: number,
  ) {
    this.current = min;
  }
  next(): number {
    const d = this.current;
    this.current = Math.min(this.current * 2, this.max);
    return d;
  }
  reset(): void {
    this.current = this.min;
  }
}
