// Logging for retry loops: flannel repeats the same failure every second; we
// log it once per change instead, and the repeats only at debug level. One
// instance per component; a "channel" is one thing that can fail (the config
// read, the renewal, one peer's lease).

import type { Logger } from './log';

export class LogOnce {
  private readonly last = new Map<string, string>();

  constructor(private readonly to: Logger) {}

  /** Logs `msg` at `level` unless it is what `channel` logged last; a repeat goes to debug. */
  log(channel: string, level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>): void {
    if (this.last.get(channel) === msg) {
      this.to.debug(msg);
      return;
    }
    this.last.set(channel, msg);
    if (fields) this.to[level](fields, msg);
    else this.to[level](msg);
  }

  /** The channel is healthy again: its next message is logged even if it repeats the last. */
  reset(channel: string): void {
    this.last.delete(channel);
  }
}
