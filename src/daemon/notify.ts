// systemd readiness (sd_notify): with $NOTIFY_SOCKET set (a Type=notify
// unit), flanneld sends READY=1 once it is ready (see Flanneld.markReady for
// what that means, cold and warm) and STOPPING=1 when a stop begins. Upstream
// flanneld has sent READY=1 since v0.1.0, so units written for it are often
// Type=notify. Without $NOTIFY_SOCKET nothing is sent.
//
// The datagram goes through the addon (src/tun/native/notify.c): Node has no
// AF_UNIX datagram socket. A send that fails is logged once per kind of
// message and never stops flanneld.

import { native } from '../tun/native';
import type { Logger } from '../util/log';

export class SystemdNotifier {
  private readonly failed = new Set<string>();

  constructor(
    private readonly log: Logger,
    /** $NOTIFY_SOCKET: a path, or '@name' for an abstract socket. */
    private readonly socket: string | undefined = process.env.NOTIFY_SOCKET,
  ) {}

  get enabled(): boolean {
    return this.socket !== undefined && this.socket !== '';
  }

  /** Sends `lines` (e.g. ["READY=1", "STATUS=..."]) as one message; false when not sent. */
  send(lines: string[]): boolean {
    if (!this.enabled) return false;
    const kind = lines[0].split('=')[0];
    try {
      native().sdNotify(this.socket!, lines.join('\n'));
      this.log.debug(`sd_notify: ${lines.join(' | ')}`);
      return true;
    } catch (e) {
      if (!this.failed.has(kind)) {
        this.failed.add(kind);
        this.log.warn(
          { err: e },
          `FLANNEL_ERR_SD_NOTIFY: could not tell systemd ${kind} on NOTIFY_SOCKET=${this.socket}: ${(e as Error).message}. ` +
            'Check the unit (Type=notify, NotifyAccess) or unset NOTIFY_SOCKET; flanneld goes on.',
        );
      }
      return false;
    }
  }
}
