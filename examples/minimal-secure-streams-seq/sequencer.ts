// A minimal lws_sequencer: a named callback that receives events (its own
// CREATED and DESTROYED, timeouts, what the app queues) one at a time, from
// the event loop, in the order they were queued.

export const SEQ = {
  CREATED: 0,
  DESTROYED: 1,
  TIMED_OUT: 2,
  /** + a Secure Streams state: the state of a stream the sequencer drives. */
  SS_STATE_BASE: 7,
  /** Events of the app's own. */
  USER_BASE: 100,
} as const;

export const SeqRet = { CONTINUE: 0, DESTROY: 1 } as const;
export type SeqReturn = (typeof SeqRet)[keyof typeof SeqRet];

export type SequencerCallback<U> = (seq: Sequencer<U>, user: U, event: number, v?: unknown) => SeqReturn | void;

export class Sequencer<U> {
  readonly name: string;
  readonly user: U;
  readonly #cb: SequencerCallback<U>;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #destroyed = false;

  /** lws_seq_create(): CREATED is the first event. */
  constructor(name: string, user: U, cb: SequencerCallback<U>) {
    this.name = name;
    this.user = user;
    this.#cb = cb;
    this.queue(SEQ.CREATED);
  }

  /** lws_seq_queue_event(). */
  queue(event: number, v?: unknown): void {
    setImmediate(() => this.#deliver(event, v));
  }

  /** lws_seq_timeout_us(), in ms: TIMED_OUT after ms; 0 cancels. */
  timeout(ms: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = ms ? setTimeout(() => this.#deliver(SEQ.TIMED_OUT), ms) : undefined;
  }

  /** lws_seq_destroy(): DESTROYED is the last event. */
  destroy(): void {
    if (this.#destroyed) return;
    this.timeout(0);
    this.#cb(this, this.user, SEQ.DESTROYED);
    this.#destroyed = true;
  }

  #deliver(event: number, v?: unknown): void {
    if (this.#destroyed) return;
    if (this.#cb(this, this.user, event, v) === SeqRet.DESTROY) this.destroy();
  }
}
