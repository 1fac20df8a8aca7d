// Logging: pino, JSON lines, written synchronously to stderr (fd 2) so that
// nothing is lost when flanneld exits right after logging (fatal errors,
// signals) and so that it lands in journald like flanneld's klog output.
//
// Messages are plain English sentences; structured detail goes in the object
// argument: log.info({ subnet: '198.19.7.0/24' }, 'Acquired the lease').
//
// Verbosity follows flanneld's -v: klog's V(1) messages are debug detail,
// V(2) and above are trace.

import pino from 'pino';

/**
 * The one logger type every layer takes: pino's shape (a message string,
 * optionally preceded by an object of fields), so the daemon passes its pino
 * instance straight in and tests pass a recorder or silentLogger.
 */
export interface Logger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export type LogLevel = pino.Level;

/** Discards everything (a library used without a logger). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** The pino level for flannel's -v: 0 (or less) → info, 1 → debug, 2 and more → trace. */
export function levelForVerbosity(verbosity: number): LogLevel {
  if (verbosity >= 2) return 'trace';
  if (verbosity >= 1) return 'debug';
  return 'info';
}

/**
 * A logger at the level -v asks for. `name` tags every line (e.g. "flanneld",
 * "subnet"); children from logger.child({ component }) share the destination.
 * `destination` is for tests; by default lines go synchronously to stderr.
 * Returns pino itself (the entry point also needs fatal); it is a Logger.
 */
export function createLogger(verbosity: number, name?: string, destination?: pino.DestinationStream): pino.Logger {
  const options: pino.LoggerOptions = {
    level: levelForVerbosity(verbosity),
    timestamp: pino.stdTimeFunctions.isoTime,
    // Level names rather than numbers: "level":"info" reads as English.
    formatters: { level: (label) => ({ level: label }) },
  };
  if (name !== undefined) options.name = name;
  return pino(options, destination ?? pino.destination({ dest: 2, sync: true }));
}
