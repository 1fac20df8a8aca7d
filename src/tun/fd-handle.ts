// What TunDevice and UdpSocket share: an fd owned by this object, at most one
// readability watcher on it, and a close that undoes both.
import { native, type PollHandle } from './native';

export abstract class FdHandle {
  #fd: number;
  #poll: PollHandle | undefined;
  readonly #owned: boolean;

  /** @param owned false: the fd belongs to someone else (another thread's object); close() leaves it open. */
  protected constructor(fd: number, owned = true) {
    this.#fd = fd;
    this.#owned = owned;
  }

  /** The file descriptor, or -1 once closed. Owned by this object (unless attached): do not close it yourself. */
  get fd(): number {
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /**
   * Calls `cb` (no arguments) whenever the fd is readable; `null` stops.
   * A second call replaces the first callback. Level-triggered: data left
   * unread makes `cb` run again on the next event-loop turn, so a callback may
   * read a bounded number of batches and return. An exception thrown by `cb`
   * reaches process 'uncaughtException'. The watcher keeps the process alive
   * until close() or onReadable(null).
   */
  onReadable(cb: (() => void) | null): void {
    this.stopPolling();
    if (cb) this.#poll = native().pollStart(this.liveFd(), cb);
  }

  /**
   * Stops the watcher and closes the fd (an attached fd, owned elsewhere, is
   * left open). Idempotent. After it returns no callback runs and every other
   * method throws.
   */
  close(): void {
    if (this.#fd < 0) return;
    this.stopPolling();
    const fd = this.#fd;
    this.#fd = -1;
    if (this.#owned) native().closeFd(fd);
  }

  /** The fd, or a clear error instead of an EBADF from a closed object. */
  protected liveFd(): number {
    if (this.#fd < 0) throw new Error(`${this.constructor.name} is closed`);
    return this.#fd;
  }

  private stopPolling(): void {
    if (this.#poll === undefined) return;
    const p = this.#poll;
    this.#poll = undefined;
    native().pollStop(p);
  }
}
