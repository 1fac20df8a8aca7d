// bin/flanneld: parse flags (exit 1 with a message on any error), run the
// daemon, stop cleanly on SIGTERM/SIGINT (flannel0 removed, lease kept).
// SIGHUP reloads without stopping (Flanneld.reload): the config is re-read
// and compared (applied only at the next start, as flannel), leases are
// resynced, flannel0 and subnet.env rewritten. Stock flanneld has no SIGHUP
// handler, so there it ends the process.

import { Flanneld } from '../daemon/daemon';
import { FlagError, parseFlags, redactOptions } from './flags';
import { createLogger } from '../util/log';
import { tuneHeapForDaemon } from '../daemon/heap';
import { errorCode, errorMessage } from '../util/errors';

export async function main(argv: string[]): Promise<void> {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(argv, process.env);
  } catch (e) {
    if (e instanceof FlagError) {
      process.stderr.write(`flanneld: ${e.message}\n`);
      process.exit(1);
    }
    throw e;
  }
  if (parsed.kind !== 'run') {
    process.stderr.write(parsed.text.endsWith('\n') ? parsed.text : `${parsed.text}\n`);
    process.exit(0);
  }
  const opts = parsed.options;
  tuneHeapForDaemon();
  const log = createLogger(opts.verbosity, 'flanneld');
  log.debug({ options: redactOptions(opts) }, 'Options');
  for (const f of opts.ignoredFlags) log.warn(`${f} is accepted for compatibility and has no effect in flannel-ts`);

  const daemon = new Flanneld(opts, log);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`Received ${signal}: stopping (the lease stays in etcd)`);
    daemon.stop().then(
      () => process.exit(0),
      (e) => {
        log.error({ err: e }, 'Error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    if (stopping) return;
    daemon.reload().catch((e: unknown) => log.error({ err: e }, `SIGHUP: reload failed: ${errorMessage(e)}`));
  });
  process.on('uncaughtException', (e) => {
    log.fatal({ err: e }, `Unexpected error: ${errorMessage(e)}`);
    process.exit(1);
  });

  try {
    await daemon.start();
  } catch (e) {
    if (stopping) return;
    const code = errorCode(e);
    log.fatal({ err: e, code }, `flanneld cannot start: ${errorMessage(e)}`);
    await daemon.stop().catch(() => undefined);
    process.exit(1);
  }
}
