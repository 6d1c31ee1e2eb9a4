// A host with a hand-driven clock, for the state machine's unit tests: what a
// real peer cannot give is exact time (backoff delays measured to the
// millisecond). Connections are not made: the tests drive the binding.
// Portable: these tests also run on the XS engine.

import type { Host, ByteStream, TimerId, BlobStore, ConnectOptions, StreamHandlers } from "../../src/host.js";

interface Timer {
  readonly id: number;
  readonly at: number;
  readonly callback: () => void;
}

export class FakeHost implements Host {
  #now = 0;
  #nextId = 1;
  #timers: Timer[] = [];
  readonly logs: string[] = [];
  /** Values random() returns in turn (then 0.5). */
  randoms: number[] = [];
  readonly #blobMap = new Map<string, Uint8Array>();
  readonly blobs: BlobStore = {
    get: (n) => this.#blobMap.get(n),
    set: (n, v) => void this.#blobMap.set(n, v),
    delete: (n) => void this.#blobMap.delete(n),
  };

  connect(_options: ConnectOptions, _handlers: StreamHandlers): ByteStream {
    throw new Error("FakeHost makes no connections");
  }

  setTimer(ms: number, callback: () => void): TimerId {
    const t = { id: this.#nextId++, at: this.#now + ms, callback };
    this.#timers.push(t);
    return t.id;
  }

  clearTimer(id: TimerId): void {
    this.#timers = this.#timers.filter((t) => t.id !== id);
  }

  now(): number { return this.#now; }
  timeValid(): boolean { return true; }
  random(): number { return this.randoms.length ? this.randoms.shift()! : 0.5; }
  log(message: string): void { this.logs.push(message); }

  /** Delay until the next timer fires, or undefined if none is set. */
  nextTimer(): number | undefined {
    if (!this.#timers.length) return undefined;
    return Math.min(...this.#timers.map((t) => t.at)) - this.#now;
  }

  /** Moves the clock on by ms, firing due timers in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = due.at;
      due.callback();
    }
    this.#now = end;
  }
}
