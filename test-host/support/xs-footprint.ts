// Node side of the XS footprint benchmark (bench/xs.bench.ts) and the leak
// test (test-host/xs-leak.test.ts): a loopback http/1.1 server, a policy
// pointing at it, and FootprintWorker, an XSBridge running the runtime bundle
// (xs-runtime-entry.ts) driven by the harness bundle (xs-footprint-harness.ts)
// with heap figures between cranks.
//
// Heap figures (hosts/xsnap/README.md): `slots` is currentHeapCount at the
// end of a gc() crank (what is retained); `bytes` the size of a heap snapshot
// (slots, 32 bytes each on xsnap's 64-bit build, plus chunks: strings,
// ArrayBuffer data, bytecode, array items). `chunks` = bytes - 32 x slots.

import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { AddressInfo } from "node:net";
import { bundleForXS } from "../../hosts/xsnap/bundle.js";
import { XSBridge, type Crank } from "../../hosts/xsnap/bridge.js";
import { compilePolicy } from "../../tools/policy/compile.js";

const here = path.dirname(fileURLToPath(import.meta.url));

/** Bytes of one XS slot: xsnap (64-bit) and the ESP32 (32-bit). */
export const SLOT_BYTES_XSNAP = 32;
export const SLOT_BYTES_ESP32 = 16;

/** Globals xsnap's XS lacks, which the runtime must not reach for. */
export const XS_MISSING_GLOBALS = ["console", "setTimeout", "setInterval", "queueMicrotask", "structuredClone"];

/** The runtime bundle (sets globalThis.ssRuntime) and the harness bundle (global `fp`). */
export async function footprintBundles(): Promise<{ runtime: string; harness: string }> {
  const forbid = XS_MISSING_GLOBALS;
  const [runtime, harness] = await Promise.all([
    bundleForXS(path.join(here, "xs-runtime-entry.js"), { forbidGlobals: forbid }),
    bundleForXS(path.join(here, "xs-footprint-harness.js"), { globalName: "fp", forbidGlobals: forbid }),
  ]);
  return { runtime, harness };
}

export interface LoopbackServer {
  readonly port: number;
  /** Requests served. */
  readonly requests: () => number;
  close(): void;
}

/**
 * GET /small         "hello", keep-alive
 * GET /bytes/N       N bytes (Content-Length), in 64 KiB writes with backpressure
 */
export async function startLoopbackServer(): Promise<LoopbackServer> {
  let requests = 0;
  const piece = new Uint8Array(65536).fill(0x61);
  const server = http.createServer((req, res) => {
    requests++;
    const m = /^\/bytes\/(\d+)$/.exec(req.url ?? "");
    if (req.url === "/small") {
      res.setHeader("content-type", "text/plain");
      res.end("hello");
    } else if (m) {
      const total = Number(m[1]);
      res.setHeader("content-type", "application/octet-stream");
      res.setHeader("content-length", total);
      let at = 0;
      const pump = () => {
        while (at < total) {
          const n = Math.min(piece.length, total - at);
          at += n;
          if (!res.write(piece.subarray(0, n))) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  server.keepAliveTimeout = 60000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests: () => requests,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

export const MB = 1024 * 1024;

/** Streamtypes: small (GET /small), dl_1m, dl_4m (GET /bytes/N), cycle (GET /small, quick retry), get_4k (GET /bytes/4096). */
export function loopbackPolicy(port: number): Uint8Array {
  const h1 = (url: string, extra: object = {}) => ({
    endpoint: "127.0.0.1", port, protocol: "h1", http_method: "GET", http_url: url, retry: "quick", ...extra,
  });
  const json = {
    release: "1", product: "xs-footprint", "schema-version": 1,
    retry: [{ quick: { backoff: [50, 100], conceal: 1, jitterpc: 10 } }],
    s: [
      { small: h1("/small") },
      { dl_1m: h1(`/bytes/${MB}`) },
      { dl_4m: h1(`/bytes/${4 * MB}`) },
      { cycle: h1("/small", { timeout_ms: 10000 }) },
      { get_4k: h1("/bytes/4096") },
    ],
  };
  return compileOrThrow(JSON.stringify(json), "loopback policy");
}

export function compileOrThrow(text: string, what: string): Uint8Array {
  const r = compilePolicy(text);
  if (!r.binary) throw new Error(`${what} does not compile: ${JSON.stringify(r.diagnostics.slice(0, 3))}`);
  return r.binary;
}

/** Heap figures between cranks. */
export interface Heap {
  /** Slots in use after gc(). */
  readonly slots: number;
  /** Heap snapshot bytes (slots + chunks). */
  readonly bytes: number;
  /** Scripts evaluated in the worker so far (see FootprintWorker.evaluate). */
  readonly evaluates: number;
}

/** A heap difference, in slots and snapshot bytes. */
export interface HeapDelta {
  readonly slots: number;
  readonly bytes: number;
}

/** Snapshot bytes that are not slots (xsnap). */
export const chunkBytes = (d: HeapDelta): number => d.bytes - SLOT_BYTES_XSNAP * d.slots;

/** The same difference on the ESP32: 16-byte slots, chunks as measured (an upper bound: XS arrays keep their items in chunks, 16 bytes each there, 32 here). */
export const esp32Bytes = (d: HeapDelta): number => SLOT_BYTES_ESP32 * d.slots + chunkBytes(d);

export interface FootprintWorkerOptions {
  readonly onCrank?: (c: Crank) => void;
}

/**
 * An XSBridge worker for the footprint measurements; nothing is evaluated in
 * it yet. Before fp.boot() the heap is read with an evaluated gc(); after
 * it, with a gc message, and everything is driven by messages (the header
 * of xs-footprint-harness.ts says why).
 */
export class FootprintWorker {
  readonly bridge: XSBridge;
  readonly logs: string[];
  /** Codes the harness reported, in order. */
  readonly reports: number[] = [];
  /** What xsnap keeps for each evaluated script (calibrated at start). */
  perEvaluate: HeapDelta = { slots: 0, bytes: 0 };
  #evaluates = 0;
  #booted = false;
  #waiters: { want: (code: number) => boolean; resolve: (code: number) => void }[] = [];
  #json: ((value: unknown) => void) | undefined;

  private constructor(bridge: XSBridge, logs: string[]) {
    this.bridge = bridge;
    this.logs = logs;
  }

  static async start(o: FootprintWorkerOptions = {}): Promise<FootprintWorker> {
    let me: FootprintWorker | undefined;
    const logs: string[] = [];
    const bridge = await XSBridge.start([], {
      log: (m) => logs.push(m),
      onMessage: (bytes) => me!.#onMessage(bytes),
      onCrank: o.onCrank,
    });
    me = new FootprintWorker(bridge, logs);
    // xsnap retains one slot (64 snapshot bytes) per evaluated script: measure it, to take it out
    const a = await me.heap();
    await me.heap();
    const b = await me.heap();
    me.perEvaluate = { slots: (b.slots - a.slots) / 2, bytes: (b.bytes - a.bytes) / 2 };
    return me;
  }

  #onMessage(bytes: Uint8Array): void {
    if (bytes[0] === 0x7b /* { */) {
      const resolve = this.#json;
      this.#json = undefined;
      resolve?.(JSON.parse(new TextDecoder().decode(bytes)));
      return;
    }
    const code = bytes[0]!;
    this.reports.push(code);
    const i = this.#waiters.findIndex((w) => w.want(code));
    if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(code);
  }

  /** Evaluates a script as a crank and waits until no event is queued; returns its compute. */
  async evaluate(script: string): Promise<number> {
    this.#evaluates++;
    const r = await this.bridge.evaluate(script);
    await this.bridge.idle();
    return r.meter.compute;
  }

  /** Evaluates `fp.boot(strict)`: from now on the worker is driven by messages. */
  async boot(strict = false): Promise<number> {
    const compute = await this.evaluate(`fp.boot(${strict});`);
    this.#booted = true;
    return compute;
  }

  /** boot() in its three steps, with the heap after each: [host, policy open, SecureStreams]. */
  async bootInSteps(strict = false): Promise<Heap[]> {
    const out: Heap[] = [];
    await this.evaluate("fp.bootHost();");
    out.push(await this.heap());
    await this.evaluate("fp.bootPolicy();");
    out.push(await this.heap());
    await this.evaluate(`fp.bootContext(${strict});`);
    this.#booted = true;
    out.push(await this.heap());
    return out;
  }

  /** Posts a harness message (a crank); returns its compute. */
  async post(op: string, n?: number, type?: string): Promise<number> {
    const head = n === undefined ? [op.charCodeAt(0)] : [op.charCodeAt(0), n & 0xff, n >> 8];
    const bytes = new Uint8Array([...head, ...new TextEncoder().encode(type ?? "")]);
    const r = await this.bridge.post(bytes);
    return r.meter.compute;
  }

  /** Live slots (a gc() crank) and snapshot bytes, once the queued events are delivered. */
  async heap(): Promise<Heap> {
    await this.bridge.idle();
    let slots: number;
    if (this.#booted) {
      slots = (await this.bridge.post(new Uint8Array([0x67 /* g */]))).meter.currentHeapCount;
    } else {
      this.#evaluates++;
      slots = (await this.bridge.evaluate("gc()")).meter.currentHeapCount;
    }
    const bytes = await this.bridge.worker.snapshotSize();
    return { slots, bytes, evaluates: this.#evaluates };
  }

  /** b - a, without what xsnap kept for the scripts evaluated in between. */
  delta(a: Heap, b: Heap): HeapDelta {
    const n = b.evaluates - a.evaluates;
    return { slots: b.slots - a.slots - n * this.perEvaluate.slots, bytes: b.bytes - a.bytes - n * this.perEvaluate.bytes };
  }

  /** Resolves with the next report `want` accepts (reports that came earlier do not count). */
  next(want: (code: number) => boolean, limitMs = 20000): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no report from XS in ${limitMs} ms; logs: ${this.logs.slice(-5).join(" | ")}`)), limitMs);
      this.#waiters.push({ want, resolve: (code) => { clearTimeout(timer); resolve(code); } });
    });
  }

  /** The harness's stats() report. */
  async stats<T>(): Promise<T> {
    const got = new Promise<T>((resolve) => (this.#json = resolve as (v: unknown) => void));
    await this.post("s");
    return got;
  }

  /** Puts `bytes` in XS as globalThis.policyBytes (on a device the policy is in flash). */
  async setPolicyBytes(bytes: Uint8Array): Promise<void> {
    await this.evaluate(`globalThis.policyBytes = new Uint8Array([${bytes.join(",")}]);`);
  }

  close(): Promise<void> {
    return this.bridge.close();
  }
}

export const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
