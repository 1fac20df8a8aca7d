// The logger the control plane writes to: pino's shape (a message string,
// optionally preceded by an object of fields), so the daemon can pass its pino
// instance straight in and tests can pass a recorder.

export interface Logger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
