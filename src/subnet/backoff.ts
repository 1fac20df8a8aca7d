// Retry pacing for the control plane's loops.

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
