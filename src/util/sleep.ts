// The one sleep: node:timers/promises, abortable by any number of signals
// (a caller's and the owner's "closing" signal), so that a closed component
// keeps no timer alive and a wait ends the moment either side gives up.

import { setTimeout as wait } from 'node:timers/promises';

/**
 * Resolves after `ms`, or rejects as soon as any of `signals` is aborted,
 * with that signal's reason (as fetch() does).
 */
export async function sleep(ms: number, ...signals: Array<AbortSignal | undefined>): Promise<void> {
  const live = signals.filter((s): s is AbortSignal => s !== undefined);
  const signal = live.length <= 1 ? live[0] : AbortSignal.any(live);
  try {
    await wait(ms, undefined, signal ? { signal } : undefined);
  } catch (e) {
    throw signal?.aborted && signal.reason !== undefined ? signal.reason : e;
  }
}
