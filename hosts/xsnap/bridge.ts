// The Node side of the XS bridge: runs portable code inside the real XS
// engine (an xsnap worker) and serves its host requests (XSBridgeHost,
// xs-host.ts) with a real host, NodeHost by default. Every connect is a real
// NodeHost connection, so TLS verification and error classification are
// exactly the Node host's. Message format: bridge-protocol.ts.
//
// Ordering. xsnap is single-threaded and a crank must finish before the next
// command, so events (connected, data, writable, closed, error, timer fired)
// are queued in the order Node produced them and delivered one crank at a
// time; evaluate() and post() calls join the same queue. XS's requests arrive during a
// crank (issueCommand) and are answered synchronously, before the crank goes
// on. When XS closes a stream or clears a timer, events of it that are
// already queued are dropped: nothing of a stream reaches XS after XS closed
// it, and no timer fires after XS cleared it.
//
// A crank that throws (an uncaught exception in XS, e.g. a strict-mode bug)
// or a worker that dies is a failure: the bridge stops, closes every
// connection and timer, and reports it through onFailure and `failure`.

import { NodeHost } from "../node/host.js";
import type { ByteStream, Host, TimerId } from "../../src/host.js";
import { XSWorker, XSError, type EvalResult, type XSWorkerOptions } from "./xs-worker.js";
import {
  Req, Ev, ID_HEADER, withId, withOp, readId, text, json, decodeConnect, okReply, failedReply,
} from "./bridge-protocol.js";

/** Meter figures of one crank. */
export interface Crank {
  /** What the crank delivered: an event name, "evaluate" or "message" (post). */
  readonly kind: "evaluate" | "message" | "connected" | "data" | "writable" | "closed" | "error" | "timer";
  /** Message bytes sent into XS (payload + header; the script for evaluate). */
  readonly bytes: number;
  /** Computrons the crank used. */
  readonly compute: number;
  /** XS heap slots in use at the end of the crank, garbage included. */
  readonly heapCount: number;
  /** Heap slots still in use after the crank, by a gc() crank right after it (only with the liveSlots option). */
  readonly liveSlots?: number;
  /** Wall time of the crank in the parent, requests served included (ms). */
  readonly ms: number;
}

export interface XSBridgeOptions extends Pick<XSWorkerOptions, "meteringLimit" | "output" | "debug"> {
  /** Serves XS's requests; default a NodeHost whose log goes to `log`. */
  readonly host?: Host;
  /** Where XS's log() lines (and the default NodeHost's) go; default stderr. */
  readonly log?: (message: string) => void;
  /** Answers XSBridgeHost.message(); default: an empty reply. */
  readonly onMessage?: (bytes: Uint8Array) => Uint8Array | void;
  /** Called after every crank with its meter figures. */
  readonly onCrank?: (crank: Crank) => void;
  /** Measure live heap slots after every crank (one extra gc() crank each: slow). */
  readonly liveSlots?: boolean;
  /** The bridge failed (see `failure`); it has stopped and closed its connections. */
  readonly onFailure?: (error: Error) => void;
}

interface Conn {
  readonly id: number;
  stream: ByteStream | undefined;
  /** XS closed it: drop whatever of it is still queued. */
  dead: boolean;
}

interface Timer {
  readonly id: number;
  handle: TimerId;
  dead: boolean;
}

interface Item {
  readonly kind: Crank["kind"];
  /** The stream or timer the event belongs to; stale once it is dead. */
  readonly owner?: Conn | Timer;
  readonly run: () => Promise<EvalResult>;
  readonly bytes: number;
  readonly done?: { resolve(r: EvalResult): void; reject(e: Error): void };
}

const EVENT_KIND: Record<number, Crank["kind"]> = {
  [Ev.connected]: "connected", [Ev.data]: "data", [Ev.writable]: "writable",
  [Ev.closed]: "closed", [Ev.error]: "error", [Ev.timer]: "timer",
};

export class XSBridge {
  readonly host: Host;
  readonly worker: XSWorker;
  readonly #options: XSBridgeOptions;
  readonly #log: (message: string) => void;
  readonly #conns = new Map<number, Conn>();
  readonly #timers = new Map<number, Timer>();
  #queue: Item[] = [];
  #head = 0;
  #pumping = false;
  #idle: (() => void)[] = [];
  #failure: Error | undefined;
  #closed = false;
  #dropped = 0;

  private constructor(worker: XSWorker, options: XSBridgeOptions) {
    this.worker = worker;
    this.#options = options;
    this.#log = options.log ?? ((m) => process.stderr.write(`[xs] ${m}\n`));
    this.host = options.host ?? new NodeHost({ log: this.#log });
    worker.onCommand = (request) => this.#serve(request);
  }

  /** Starts a worker and evaluates `scripts` (e.g. a bundleForXS bundle), each as a crank. */
  static async start(scripts: string | readonly string[], options: XSBridgeOptions = {}): Promise<XSBridge> {
    const worker = await XSWorker.create({ meteringLimit: options.meteringLimit, output: options.output, debug: options.debug });
    const bridge = new XSBridge(worker, options);
    try {
      for (const s of typeof scripts === "string" ? [scripts] : scripts) await bridge.evaluate(s);
    } catch (e) {
      await bridge.close();
      throw e;
    }
    return bridge;
  }

  /** The error that stopped the bridge, if any. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Queued events dropped because XS had closed their stream or cleared their timer meanwhile. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Connections and timers the parent still holds for XS. */
  get pending(): { connections: number; timers: number } {
    return { connections: this.#conns.size, timers: this.#timers.size };
  }

  /** Evaluates a script in XS as a crank of its own, in turn with the queued events. */
  evaluate(script: string): Promise<EvalResult> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new XSError("XSBridge is closed"));
    return new Promise((resolve, reject) =>
      this.#enqueue({ kind: "evaluate", bytes: script.length, run: () => this.worker.evaluate(script), done: { resolve, reject } }));
  }

  /** Delivers `bytes` to XSBridgeHost.onMessage in XS, as a crank of its own in turn with the events. */
  post(bytes: Uint8Array): Promise<EvalResult> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new XSError("XSBridge is closed"));
    const message = withOp(Ev.message, bytes);
    return new Promise((resolve, reject) =>
      this.#enqueue({ kind: "message", bytes: message.length, run: () => this.worker.command(message), done: { resolve, reject } }));
  }

  /** Resolves when no event is queued and no crank runs. */
  idle(): Promise<void> {
    if (!this.#pumping) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Closes every connection and timer, then the worker. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#release();
    await this.idle();
    await this.worker.close();
  }

  // ---- XS -> parent ----

  /** Answers one issueCommand() from XS, synchronously. Failures go back to XS as exceptions. */
  #serve(m: Uint8Array): Uint8Array {
    try {
      switch (m[0]) {
        case Req.write: {
          const conn = this.#conns.get(readId(m));
          const stream = conn && !conn.dead ? conn.stream : undefined;
          // A stream that ended in the parent takes nothing, as NodeStream after its end.
          return okReply(new Uint8Array([stream && stream.write(m.subarray(ID_HEADER)) ? 1 : 0]));
        }
        case Req.connect:
          this.#connect(m);
          return okReply();
        case Req.close: {
          const conn = this.#conns.get(readId(m));
          if (conn) {
            conn.dead = true;
            this.#conns.delete(conn.id);
            conn.stream?.close();
          }
          return okReply();
        }
        case Req.setTimer: {
          const id = readId(m);
          const ms = new DataView(m.buffer, m.byteOffset, m.byteLength).getFloat64(ID_HEADER, true);
          const timer: Timer = { id, handle: undefined, dead: false };
          timer.handle = this.host.setTimer(ms, () => this.#event(Ev.timer, timer));
          this.#timers.set(id, timer);
          return okReply();
        }
        case Req.clearTimer: {
          const timer = this.#timers.get(readId(m));
          if (timer) {
            timer.dead = true;
            this.#timers.delete(timer.id);
            this.host.clearTimer(timer.handle);
          }
          return okReply();
        }
        case Req.blobGet: {
          const value = this.host.blobs.get(text(m.subarray(1)));
          if (value === undefined) return okReply(new Uint8Array([0]));
          const body = new Uint8Array(1 + value.length);
          body[0] = 1;
          body.set(value, 1);
          return okReply(body);
        }
        case Req.blobSet: {
          const n = m[1]! | (m[2]! << 8);
          this.host.blobs.set(text(m.subarray(3, 3 + n)), m.slice(3 + n));
          return okReply();
        }
        case Req.blobDelete:
          this.host.blobs.delete(text(m.subarray(1)));
          return okReply();
        case Req.log:
          this.#log(text(m.subarray(1)));
          return okReply();
        case Req.random: {
          const body = new Uint8Array(8);
          new DataView(body.buffer).setFloat64(0, this.host.random(), true);
          return okReply(body);
        }
        case Req.message:
          return okReply(this.#options.onMessage?.(m.subarray(1)) ?? undefined);
        default:
          throw new Error(`XSBridge: unknown request 0x${(m[0] ?? 0).toString(16)}`);
      }
    } catch (e) {
      return failedReply(e);
    }
  }

  #connect(m: Uint8Array): void {
    const { id, options } = decodeConnect(m);
    const conn: Conn = { id, stream: undefined, dead: false };
    this.#conns.set(id, conn);
    try {
      conn.stream = this.host.connect(options, {
        onConnected: (info) => this.#event(Ev.connected, conn, json(info)),
        onData: (bytes) => this.#event(Ev.data, conn, bytes),
        onWritable: () => this.#event(Ev.writable, conn),
        onClosed: () => this.#event(Ev.closed, conn),
        onError: (error) => this.#event(Ev.error, conn, json({ kind: error.kind, message: error.message })),
      });
    } catch (e) {
      // The contract reports connect failures as events, never as a throw.
      this.#event(Ev.error, conn, json({ kind: "other", message: (e as Error).message }));
    }
  }

  // ---- parent -> XS ----

  #event(op: number, owner: Conn | Timer, body?: Uint8Array): void {
    if (owner.dead || this.#closed || this.#failure) return;
    const message = withId(op, owner.id, body);
    this.#enqueue({ kind: EVENT_KIND[op]!, owner, bytes: message.length, run: () => this.worker.command(message) });
  }

  #enqueue(item: Item): void {
    this.#queue.push(item);
    if (!this.#pumping) void this.#pump();
  }

  /** Delivers queued items one crank at a time, in order. */
  async #pump(): Promise<void> {
    this.#pumping = true;
    while (this.#head < this.#queue.length) {
      const item = this.#queue[this.#head++]!;
      if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head);
        this.#head = 0;
      }
      if (item.owner?.dead) {
        this.#dropped++;
        continue;
      }
      this.#settle(item);
      const started = performance.now();
      let result: EvalResult;
      try {
        result = await item.run();
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        if (item.done) item.done.reject(error);
        // A failed evaluate is the caller's to handle; a failed event crank stops the bridge.
        else this.#fail(error, item);
        continue;
      }
      const ms = performance.now() - started;
      let liveSlots: number | undefined;
      if (this.#options.liveSlots && !this.#failure) liveSlots = await this.worker.heapSlots().catch(() => undefined);
      this.#options.onCrank?.({ kind: item.kind, bytes: item.bytes, compute: result.meter.compute, heapCount: result.meter.currentHeapCount, liveSlots, ms });
      item.done?.resolve(result);
    }
    this.#pumping = false;
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** A terminal stream event or a timer firing: the parent forgets it as it is delivered. */
  #settle(item: Item): void {
    const owner = item.owner;
    if (!owner) return;
    if (item.kind === "timer") this.#timers.delete(owner.id);
    else if (item.kind === "closed" || item.kind === "error") this.#conns.delete(owner.id);
  }

  #fail(error: Error, item: Item): void {
    if (this.#failure) return;
    this.#failure = new XSError(`XS crank delivering ${item.kind} failed: ${error.message}`);
    this.#release();
    this.#options.onFailure?.(this.#failure);
  }

  /** Closes every connection and timer and drops the queued events. */
  #release(): void {
    for (const conn of this.#conns.values()) {
      conn.dead = true;
      conn.stream?.close();
    }
    this.#conns.clear();
    for (const timer of this.#timers.values()) {
      timer.dead = true;
      this.host.clearTimer(timer.handle);
    }
    this.#timers.clear();
    for (let i = this.#head; i < this.#queue.length; i++) this.#queue[i]!.done?.reject(this.#failure ?? new XSError("XSBridge is closed"));
    this.#queue = [];
    this.#head = 0;
  }
}
