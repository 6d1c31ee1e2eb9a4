// XS test host: drives the `xsnap-worker` binary of @agoric/xsnap directly.
//
// Why not xsnap's own JS wrapper (`@agoric/xsnap` src/xsnap.js)? It expects a
// SES-locked-down Node (global `harden`, `assert`) and pulls in the @endo
// stack. The worker's wire protocol is tiny, so we speak it ourselves.
//
// Protocol (see xsnap-native/xsnap/sources/xsnap-worker.c): netstrings
// (`<len>:<bytes>,`) — parent -> worker on fd 3, worker -> parent on fd 4.
//   parent sends  `e<js source>`   evaluate a script (global indirect eval), one "crank"
//                 `?<bytes>`       call globalThis.handleCommand(ArrayBuffer) in XS
//                 `w<path>`        write a heap snapshot to <path>; reply carries its size
//                 `/<bytes>`       reply to a worker's issueCommand()
//                 `q`              quit
//   worker sends  `.<meterJSON>\x01<reply>`  crank done; reply = the script's
//                                 completion value if it is an ArrayBuffer, else empty
//                 `!<message>`     uncaught exception
//                 `?<bytes>`       issueCommand(ArrayBuffer) from XS: blocks XS until `/`
// The worker exits with a code on fatal conditions (11 out of memory, 12 stack
// overflow, 17 too much computation = meter limit exceeded, ...).
//
// Globals the xsnap XS machine offers (XS 13.3, xsnap 0.15; checked in
// test-host/xsnap-smoke.test.ts): issueCommand, print (to worker stdout), gc,
// performance.now, setImmediate (no setTimeout/setInterval), currentMeterLimit,
// resetMeter, TextEncoder, TextDecoder, Base64 (xs base64 module), harden,
// trace, global (alias of globalThis), Compartment, ModuleSource. The realm is
// NOT locked down. Missing: console, setTimeout/setInterval, queueMicrotask,
// structuredClone, URL. Promise jobs run before a crank replies.

import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';

/** Meter figures xsnap reports at the end of every crank (evaluate call). */
export interface XSMeter {
  /** Computrons (XS "meter index": roughly bytecodes + builtin work) used by the crank. */
  compute: number;
  /** Heap slots (32-byte XS slots: objects, properties, closures...) in use at the
   *  end of the crank. Includes garbage unless the crank ended with gc(). */
  currentHeapCount: number;
  /** Bytes the machine has reserved from the OS so far (slot heaps + chunk
   *  area for strings/ArrayBuffers/bytecode). Coarse: grows in 4 MiB / 128K-slot steps. */
  allocate: number;
  /** gettimeofday() stamps (seconds, µs precision) taken inside the worker:
   *  command received, each issueCommand out/in, reply sent. */
  timestamps: number[];
}

export interface EvalResult {
  /** The script's completion value when it is an ArrayBuffer, else empty. */
  reply: Uint8Array;
  meter: XSMeter;
}

/** Handler for issueCommand(ArrayBuffer) calls made by XS code. */
export type CommandHandler = (bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>;

export interface XSWorkerOptions {
  /** Answers XS's issueCommand(); default echoes the bytes back. */
  onCommand?: CommandHandler;
  /** Per-crank compute limit (worker exits with code 17 when exceeded). Default 1e9; 0 = none. */
  meteringLimit?: number;
  /** Where XS print() (worker stdout) and worker diagnostics go. Default 'stderr':
   *  the parent's stderr, so print() never mixes with node:test's stdout protocol. */
  output?: 'stderr' | 'inherit' | 'ignore';
  /** Use the debug build of the worker. */
  debug?: boolean;
}

export class XSError extends Error {
  override name = 'XSError';
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Absolute path of the xsnap-worker binary (override with $XSNAP_WORKER). */
export function xsnapWorkerPath(debug = false): string {
  if (process.env.XSNAP_WORKER) return process.env.XSNAP_WORKER;
  const pkg = createRequire(import.meta.url).resolve('@agoric/xsnap/package.json');
  const platform = process.platform === 'darwin' ? 'mac' : 'lin';
  return path.join(path.dirname(pkg), 'xsnap-native/xsnap/build/bin', platform, debug ? 'debug' : 'release', 'xsnap-worker');
}

/** Incremental netstring decoder fed from a stream; `next()` yields whole messages. */
class NetstringReader {
  private buf = new Uint8Array(0);
  private queue: Uint8Array[] = [];
  private waiter: { resolve: (m: Uint8Array) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(stream: Readable) {
    stream.on('data', (chunk: Uint8Array) => this.push(chunk));
    stream.on('error', (e: Error) => this.fail(e));
    stream.on('end', () => this.fail(new XSError('xsnap worker closed its output')));
  }

  fail(e: Error): void {
    this.failure ??= e;
    this.waiter?.reject(this.failure);
    this.waiter = undefined;
  }

  next(): Promise<Uint8Array> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private push(chunk: Uint8Array): void {
    const b = new Uint8Array(this.buf.length + chunk.length);
    b.set(this.buf);
    b.set(chunk, this.buf.length);
    let pos = 0;
    for (;;) {
      const colon = b.indexOf(0x3a, pos);
      if (colon < 0) break;
      const len = Number(dec.decode(b.subarray(pos, colon)));
      if (!Number.isSafeInteger(len)) return this.fail(new XSError('xsnap protocol error: bad netstring length'));
      const end = colon + 1 + len;
      if (b.length < end + 1) break;
      if (b[end] !== 0x2c) return this.fail(new XSError('xsnap protocol error: missing netstring terminator'));
      this.queue.push(b.slice(colon + 1, end));
      pos = end + 1;
    }
    this.buf = b.slice(pos);
    while (this.waiter && this.queue.length) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(this.queue.shift()!);
    }
  }
}

function netstring(prefix: string, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const p = enc.encode(prefix);
  const head = enc.encode(`${p.length + body.length}:`);
  const out = new Uint8Array(head.length + p.length + body.length + 1);
  out.set(head);
  out.set(p, head.length);
  out.set(body, head.length + p.length);
  out[out.length - 1] = 0x2c;
  return out;
}

const EXIT_REASONS: Record<number, string> = {
  1: 'bad argument usage', 2: 'I/O error', 11: 'not enough memory', 12: 'stack overflow',
  15: 'unhandled exception', 16: 'property (key) name space exhausted', 17: 'too much computation (meter limit)',
};

export class XSWorker {
  /** Replace to change how issueCommand() calls from XS are answered. */
  onCommand: CommandHandler;
  private readonly reader: NetstringReader;
  private readonly toWorker: Writable;
  private baton: Promise<unknown> = Promise.resolve();
  private exited: Promise<number | null>;
  private exitReason: Error | undefined;

  private constructor(private readonly child: ChildProcess, opts: XSWorkerOptions) {
    this.onCommand = opts.onCommand ?? ((b) => b);
    const stdio = child.stdio as unknown as [unknown, unknown, unknown, Writable, Readable];
    this.toWorker = stdio[3];
    this.toWorker.on('error', () => {}); // EPIPE after a worker crash surfaces via `exited`
    this.reader = new NetstringReader(stdio[4]);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        if (code !== 0) {
          const why = signal ? `signal ${signal}` : `code ${code} (${EXIT_REASONS[code ?? -1] ?? 'unknown'})`;
          this.exitReason = new XSError(`xsnap worker exited with ${why}`);
          this.reader.fail(this.exitReason);
        }
        resolve(code);
      }),
    );
  }

  /** Start a worker and wait until it answers (~30 ms: XS machine creation). */
  static async create(opts: XSWorkerOptions = {}): Promise<XSWorker> {
    const limit = opts.meteringLimit ?? 1e9;
    const args = ['xs-test-host', ...(limit ? ['-l', String(Math.min(limit, 2 ** 31 - 1))] : [])];
    const out = opts.output === 'ignore' ? 'ignore' : opts.output === 'inherit' ? 'inherit' : 2;
    const child = spawn(xsnapWorkerPath(opts.debug), args, {
      stdio: ['ignore', out, out, 'pipe', 'pipe'],
    });
    const w = new XSWorker(child, opts);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (e) => reject(new XSError(`cannot start xsnap worker ${xsnapWorkerPath(opts.debug)}: ${e.message} (did the @agoric/xsnap install script run?)`)));
    });
    await w.request(netstring('R'));
    return w;
  }

  /** Evaluate a script as global code. In a sloppy script top-level `var`s and
   *  functions become globals; `let`/`const` and everything in a "use strict"
   *  script (e.g. an esbuild bundle) stay local to that evaluation. */
  evaluate(script: string): Promise<EvalResult> {
    return this.request(netstring('e', enc.encode(script)));
  }

  /** Call globalThis.handleCommand(ArrayBuffer) inside XS; its ArrayBuffer return is the reply. */
  command(bytes: Uint8Array): Promise<EvalResult> {
    return this.request(netstring('?', bytes));
  }

  /** Live heap slots: runs gc() in a crank of its own and returns currentHeapCount. */
  async heapSlots(): Promise<number> {
    return (await this.evaluate('gc()')).meter.currentHeapCount;
  }

  /** Size in bytes of a heap snapshot (slots + chunks in use, after XS's own GC) —
   *  the only figure that also counts string/ArrayBuffer bytes. Writes to /dev/null. */
  async snapshotSize(): Promise<number> {
    return Number(dec.decode((await this.request(netstring('w/dev/null'))).reply));
  }

  /** Ask the worker to quit; kills it if it does not exit within 2 s. */
  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      await this.baton;
      this.toWorker.end(netstring('q'));
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
      await this.exited;
      clearTimeout(timer);
    }
  }

  /** Send one request and serve issueCommand()s until its reply; requests are serialized. */
  private request(msg: Uint8Array): Promise<EvalResult> {
    const run = async (): Promise<EvalResult> => {
      if (this.exitReason) throw this.exitReason;
      this.toWorker.write(msg);
      for (;;) {
        const m = await this.reader.next().catch(async (e: Error) => {
          // The output pipe can close before 'exit' fires; prefer the exit code's story.
          await Promise.race([this.exited, new Promise((r) => setTimeout(r, 1000))]);
          throw this.exitReason ?? e;
        });
        const tag = m[0];
        if (tag === 0x3f /* ? */) {
          let answer: Uint8Array;
          try {
            answer = await this.onCommand(m.subarray(1));
          } catch (e) {
            // XS is blocked in issueCommand; there is no error channel, so kill it.
            this.child.kill('SIGKILL');
            throw e;
          }
          this.toWorker.write(netstring('/', answer));
        } else if (tag === 0x2e /* . */) {
          const sep = m.indexOf(1);
          const meter = sep < 0 ? undefined : (JSON.parse(dec.decode(m.subarray(1, sep))) as XSMeter);
          return { reply: m.slice(sep < 0 ? 1 : sep + 1), meter: meter ?? { compute: 0, currentHeapCount: 0, allocate: 0, timestamps: [] } };
        } else if (tag === 0x21 /* ! */) {
          throw new XSError(`uncaught exception in XS: ${dec.decode(m.subarray(1))}`);
        } else {
          this.child.kill('SIGKILL');
          throw new XSError(`xsnap protocol error: unexpected message ${JSON.stringify(dec.decode(m.subarray(0, 40)))}`);
        }
      }
    };
    const result = this.baton.then(run);
    this.baton = result.catch(() => {});
    return result;
  }
}

// ---------------------------------------------------------------------------
// runInXS: one-shot helper with a text message channel and meter marks.

/**
 * Prelude evaluated before the user's script. Channel framing over
 * issueCommand: first byte 'm' = send(text), 'k' = mark(label) record.
 *  - send(text): deliver a string to the parent (collected in `messages`).
 *  - meterNow(): compute used so far in the current crank.
 *  - mark(label): record meterNow() under a label (collected in `marks`); the
 *    channel round trip is subtracted, so marks can bracket an operation.
 */
export const XS_PRELUDE = `(() => {
  const enc = new TextEncoder();
  const put = (s) => issueCommand(enc.encode(s).buffer);
  globalThis.send = (text) => { put('m' + String(text)); };
  globalThis.meterNow = () => { const l = currentMeterLimit(); const v = resetMeter(l, 0); resetMeter(l, v); return v; };
  globalThis.mark = (label) => {
    const l = currentMeterLimit();
    const v = resetMeter(l, 0);
    put('k' + JSON.stringify([String(label), v]));
    resetMeter(l, v);
    return v;
  };
})();`;

/** Meter figures for one step (crank) of runInXS. */
export interface StepMeter extends XSMeter {
  /** Heap slots still in use after the step, measured by a gc() crank right after it. */
  liveSlots: number;
  /** Heap snapshot size in bytes after the step (slots + strings/buffers/bytecode in use). */
  heapBytes: number;
}

export interface RunInXSResult {
  /** Texts passed to send(), in order. */
  messages: string[];
  /** mark(label) records: compute used within `step` when mark was called. */
  marks: { label: string; compute: number; step: number }[];
  /** Meter of the last step. */
  meter: StepMeter;
  /** Meter of every step, in order. */
  steps: StepMeter[];
}

export interface RunInXSOptions extends Omit<XSWorkerOptions, 'onCommand'> {
  /** Run on this worker (left open) instead of a fresh one (closed afterwards). */
  worker?: XSWorker;
}

/**
 * Evaluate `script` — or several scripts, each its own crank ("step") — in XS
 * with the prelude's send()/mark()/meterNow() available. Heap slots can only
 * be read between cranks, so put an operation whose retained memory you want
 * in a step of its own, keeping its result reachable (e.g. on globalThis):
 * `steps[i].liveSlots - steps[i-1].liveSlots` is what it retains, and
 * `steps[i].compute` what it cost.
 */
export async function runInXS(script: string | string[], opts: RunInXSOptions = {}): Promise<RunInXSResult> {
  const messages: string[] = [];
  const marks: RunInXSResult['marks'] = [];
  const steps: StepMeter[] = [];
  const worker = opts.worker ?? (await XSWorker.create(opts));
  const previous = worker.onCommand;
  worker.onCommand = (bytes) => {
    const text = dec.decode(bytes.subarray(1));
    if (bytes[0] === 0x6d /* m */) messages.push(text);
    else if (bytes[0] === 0x6b /* k */) {
      const [label, compute] = JSON.parse(text) as [string, number];
      marks.push({ label, compute, step: steps.length });
    }
    return new Uint8Array(0);
  };
  try {
    await worker.evaluate(XS_PRELUDE);
    for (const s of Array.isArray(script) ? script : [script]) {
      const { meter } = await worker.evaluate(s);
      const liveSlots = await worker.heapSlots();
      const heapBytes = await worker.snapshotSize();
      steps.push({ ...meter, liveSlots, heapBytes });
    }
  } catch (e) {
    if (e instanceof Error) Object.assign(e, { messages });
    throw e;
  } finally {
    worker.onCommand = previous;
    if (!opts.worker) await worker.close();
  }
  return { messages, marks, meter: steps[steps.length - 1]!, steps };
}
