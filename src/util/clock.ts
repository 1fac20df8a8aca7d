// Time for code whose behaviour depends on the wall clock over hours (lease
// renewal 23 h after acquisition): production passes systemClock; tests pass a
// manual clock and move it on, instead of shrinking the product's units to
// fit a test's seconds.

export interface Clock {
  /** Milliseconds since the epoch, as Date.now(). */
  now(): number;
  /** Calls fn once after ms; the handle is for clearTimeout. */
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
};
