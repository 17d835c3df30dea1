/**
 * The broker-wide budget for request memory (Kafka's `queued.max.request.bytes`, KIP-72): the
 * bytes of request frames being received or waiting to be handled, over all connections.
 *
 * A connection reserves a frame's declared size as soon as its 4-byte length is read, before
 * its body is kept, and returns it when the request has been handled or the connection closes.
 * A frame the budget cannot cover waits in a FIFO queue while its connection stops reading, so
 * the bytes stay in the kernel's socket buffers and the sender's TCP window closes.
 *
 * Kafka's pool treats every request alike, so a few clients that send most of a huge frame
 * and stop can hold all of it while every other connection waits. Here frames are of two
 * classes:
 * - **large** frames (over {@link RequestBudget.largeFrameBytes}: a sixteenth of the budget,
 *   but never more than 1 MiB, the default `max.request.size` of Kafka producers) may together
 *   hold at most half of the budget (a single large frame bigger than that half is admitted
 *   only while no other large frame is held), and queue among themselves;
 * - **small** frames may use all of the budget the large ones leave, and queue among
 *   themselves, never behind a large frame.
 * So anything bigger than an ordinary request can hold at most half of the budget, and
 * ordinary requests keep flowing beside stalled huge frames. The budget is never exceeded:
 * bytes in use ≤ capacity at all times. With the budget at least twice
 * `socket.request.max.bytes` (the defaults: 256 and 100 MiB) the large half is never exceeded
 * either.
 *
 * Classes alone cannot stop clients that stall in the middle of many small frames (256 of
 * 1 MiB fill the default budget), so a frame must also arrive in time: the connection that
 * holds an admitted frame closes when its body has not fully arrived
 * `--request-receive-timeout-ms` (60 s) after admission, returning its bytes (see
 * `connection.ts`). A frame's wait in the queue does not count, since the broker, not the
 * client, holds it back. A stalled frame therefore holds budget for at most that long, and as
 * a new frame never overtakes a waiting one of its class, a client that reconnects to stall
 * again queues behind the frames already waiting: each waiting frame is reached once the
 * frames ahead of it have been handled or timed out.
 */

/** The most a small frame can be: Kafka producers' default `max.request.size`. */
const SMALL_FRAME_CEILING_BYTES = 1024 * 1024;

/** Accounts waiting for bytes, oldest first, of one class of frames. */
type WaitQueue = BudgetAccount[];

/** The broker-wide budget; connections draw on it through their {@link BudgetAccount}. */
export class RequestBudget {
  /** Bytes that may be reserved at once. */
  readonly capacity: number;
  /**
   * Frames larger than this are large: together they may hold at most {@link largeShare}. A
   * sixteenth of the capacity, at most 1 MiB.
   */
  readonly largeFrameBytes: number;
  /** The most that large frames may hold together (half the capacity). */
  readonly largeShare: number;
  #inUse = 0;
  #largeInUse = 0;
  #peak = 0;
  readonly #smallQueue: WaitQueue = [];
  readonly #largeQueue: WaitQueue = [];

  constructor(capacityBytes: number) {
    if (!(capacityBytes > 0)) throw new RangeError(`request budget ${capacityBytes} must be positive`);
    this.capacity = capacityBytes;
    this.largeFrameBytes = Math.min(Math.floor(capacityBytes / 16), SMALL_FRAME_CEILING_BYTES);
    this.largeShare = Math.floor(capacityBytes / 2);
  }

  /** Bytes reserved now. */
  get inUse(): number {
    return this.#inUse;
  }

  /** Bytes reserved now by large frames. */
  get largeInUse(): number {
    return this.#largeInUse;
  }

  /** The most bytes ever reserved at once (never above {@link capacity}). */
  get peakInUse(): number {
    return this.#peak;
  }

  /** Connections waiting for bytes, i.e. paused until the budget has room. */
  get waiting(): number {
    return this.#smallQueue.length + this.#largeQueue.length;
  }

  /**
   * Opens an account for one connection. `onGrant` is called (from a microtask) when a frame
   * that had to wait has been reserved.
   */
  open(onGrant: () => void): BudgetAccount {
    return new BudgetAccount(this, onGrant);
  }

  /** Whether a frame of `bytes` counts against the large share. */
  isLarge(bytes: number): boolean {
    return bytes > this.largeFrameBytes;
  }

  /** @internal Reserves `bytes` if the rules allow it now; waiters of the same class go first. */
  tryTake(bytes: number): boolean {
    const large = this.isLarge(bytes);
    if ((large ? this.#largeQueue : this.#smallQueue).length > 0) return false;
    if (!this.#fits(bytes, large)) return false;
    this.#take(bytes, large);
    return true;
  }

  /** @internal */
  enqueue(account: BudgetAccount, bytes: number): void {
    (this.isLarge(bytes) ? this.#largeQueue : this.#smallQueue).push(account);
  }

  /** @internal Removes a waiting account (its connection closed); the next ones may now fit. */
  dequeue(account: BudgetAccount, bytes: number): void {
    const queue = this.isLarge(bytes) ? this.#largeQueue : this.#smallQueue;
    const i = queue.indexOf(account);
    if (i >= 0) queue.splice(i, 1);
    if (i === 0) this.#grant();
  }

  /** @internal Returns `bytes`, of which `largeBytes` held by large frames, and serves waiters that now fit. */
  give(bytes: number, largeBytes: number): void {
    if (bytes === 0) return;
    this.#inUse -= bytes;
    this.#largeInUse -= largeBytes;
    this.#grant();
  }

  #fits(bytes: number, large: boolean): boolean {
    // A frame above the whole capacity cannot occur (configuration refuses a budget below
    // socket.request.max.bytes), but would otherwise wait forever: it may run alone.
    if (this.#inUse + bytes > this.capacity) return this.#inUse === 0;
    return !large || this.#largeInUse === 0 || this.#largeInUse + bytes <= this.largeShare;
  }

  #take(bytes: number, large: boolean): void {
    this.#inUse += bytes;
    if (large) this.#largeInUse += bytes;
    if (this.#inUse > this.#peak) this.#peak = this.#inUse;
  }

  /** Serves each queue's head while it fits: strict FIFO within a class. */
  #grant(): void {
    this.#serve(this.#smallQueue, false);
    this.#serve(this.#largeQueue, true);
  }

  #serve(queue: WaitQueue, large: boolean): void {
    while (queue.length > 0) {
      const head = queue[0]!;
      const bytes = head.wantedBytes;
      if (!this.#fits(bytes, large)) return;
      queue.shift();
      this.#take(bytes, large);
      head.granted();
    }
  }
}

/**
 * One connection's share of the {@link RequestBudget}: the frames it holds and the one frame
 * (at most) it waits for. Closing it returns everything and leaves the queue, so a connection
 * can never leak a reservation.
 */
export class BudgetAccount {
  readonly #budget: RequestBudget;
  readonly #onGrant: () => void;
  /** Bytes held by small and by large frames (a release must go back to its frame's class). */
  #heldSmall = 0;
  #heldLarge = 0;
  #wanted = -1;
  #closed = false;
  readonly #notify = (): void => {
    if (!this.#closed) this.#onGrant();
  };

  /** @internal Use {@link RequestBudget.open}. */
  constructor(budget: RequestBudget, onGrant: () => void) {
    this.#budget = budget;
    this.#onGrant = onGrant;
  }

  /** Bytes this connection holds. */
  get held(): number {
    return this.#heldSmall + this.#heldLarge;
  }

  /** True while a frame waits for bytes (the connection must not read meanwhile). */
  get waiting(): boolean {
    return this.#wanted >= 0;
  }

  /** @internal The size of the frame waited for. */
  get wantedBytes(): number {
    return this.#wanted;
  }

  /**
   * Reserves a frame's bytes. Returns true when reserved now; otherwise the frame joins the
   * queue of its class and `onGrant` runs once it has been reserved. One frame waits at a time.
   */
  reserve(bytes: number): boolean {
    if (this.#closed) return false;
    if (this.#wanted >= 0) throw new Error('a connection asked for a second frame while one was waiting; it must stop reading until granted');
    if (this.#budget.tryTake(bytes)) {
      this.#hold(bytes);
      return true;
    }
    this.#wanted = bytes;
    this.#budget.enqueue(this, bytes);
    return false;
  }

  /** Returns one frame's bytes, reserved earlier with the same size. No-op once closed. */
  release(bytes: number): void {
    if (this.#closed || bytes === 0) return;
    const large = this.#budget.isLarge(bytes);
    if (large) this.#heldLarge -= bytes;
    else this.#heldSmall -= bytes;
    this.#budget.give(bytes, large ? bytes : 0);
  }

  /** @internal Called by the budget once the waited-for frame has been reserved. */
  granted(): void {
    this.#hold(this.#wanted);
    this.#wanted = -1;
    // Deferred: the budget may be granting from inside another connection's release, which
    // can itself be inside this connection's request handling.
    queueMicrotask(this.#notify);
  }

  /** Returns every byte still held and leaves the queue; later calls do nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#wanted >= 0) {
      this.#budget.dequeue(this, this.#wanted);
      this.#wanted = -1;
    }
    this.#budget.give(this.#heldSmall + this.#heldLarge, this.#heldLarge);
    this.#heldSmall = 0;
    this.#heldLarge = 0;
  }

  #hold(bytes: number): void {
    if (this.#budget.isLarge(bytes)) this.#heldLarge += bytes;
    else this.#heldSmall += bytes;
  }
}
