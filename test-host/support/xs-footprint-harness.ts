// The XS half of the footprint benchmark (bench/xs.bench.ts) and the leak
// test (test-host/xs-leak.test.ts):
// bundleForXS(<dist>/test-host/support/xs-footprint-harness.js, { globalName: "fp" }).
// PORTABLE: runs inside the XS engine. It holds no runtime code of its own:
// it drives the runtime bundle (xs-runtime-entry.ts, global `ssRuntime`),
// evaluated after it, so that the two bundles' heap can be told apart.
//
// The parent evaluates `fp.boot()` once (or its three steps, bootHost(),
// bootPolicy(), bootContext(), to measure each); after that it drives everything
// with XSBridge.post() messages (handleCommand cranks), not evaluate():
// xsnap keeps one slot (64 snapshot bytes) for every script it evaluates,
// which would read as growth. Messages (first byte):
//   g                 gc(): the crank's heap count is then the live slots
//   n                 nothing (the cost of delivering a message)
//   m 0|1             gc() at the end of every crank from now on (1) or not (0):
//                     each crank's heap count is then its live slots
//   i u16 n, type     n idle streams of `type` (never connected; only the context holds them)
//   d                 destroy every stream
//   o type            open the stream of `type` (not connected yet)
//   t                 requestTx on it (connects the first time)
//   c                 destroy it
//   b u16 k, type     a batch of k create/connect/destroy cycles (see batch())
//   s                 report stats() as JSON
// Reports to the parent, through XSBridgeHost.message():
//   [state]           the open stream reached QOS_ACK_REMOTE, QOS_NACK_REMOTE,
//                     UNREACHABLE or ALL_RETRIES_FAILED
//   [BATCH_DONE]      every stream of the last batch is destroyed
//   "{...}"           JSON, from stats()
//
// Handlers are shared objects where the measurement must see the runtime's
// own cost per stream (idle streams, downloads); the leak cycles use a
// closure per stream, as an app would, which must go with the stream.

import type { Runtime } from "./xs-runtime-entry.js";
import type { SecureStream } from "../../src/ss/stream.js";
import type { HandlerReturn } from "../../src/ss/states.js";

type RT = Runtime;
type Host = InstanceType<RT["XSBridgeHost"]>;
type Context = InstanceType<RT["SecureStreams"]>;

declare const globalThis: {
  ssRuntime?: RT;
  policyBytes?: Uint8Array;
  handleCommand?: (message: ArrayBuffer) => void;
  gc?: () => void;
};

/** The report that ends a batch (not a state number). */
export const BATCH_DONE = 200;

let rt: RT;
let host: Host;
let ss: Context;
let gcEachCrank = false;
const note = new Uint8Array(1);

function notify(code: number): void {
  note[0] = code;
  host.message(note);
}

/**
 * The runtime booted: the XS bridge host installed, the policy
 * (globalThis.policyBytes) open, a SecureStreams context with h1.
 */
export function boot(strict = false): void {
  bootHost();
  bootPolicy();
  bootContext(strict);
}

let policy: ReturnType<RT["Policy"]["open"]> | undefined;
/** The context's h1 binding: its pool of idle connections. */
let h1: ReturnType<RT["createH1Binding"]>;

/** boot(), step 1 of 3: the XS bridge host, installed, taking the parent's messages. */
export function bootHost(): void {
  rt = globalThis.ssRuntime!;
  host = new rt.XSBridgeHost().install();
  host.onMessage = command;
}

/** boot(), step 2 of 3: the policy open. */
export function bootPolicy(): void {
  policy = rt.Policy.open(globalThis.policyBytes!);
}

/** boot(), step 3 of 3: the SecureStreams context with the h1 binding. */
export function bootContext(strict = false): void {
  h1 = rt.createH1Binding();
  ss = new rt.SecureStreams(host, policy!, { bindings: [h1], strict });
  policy = undefined;
}

/** Installed by the first `m` message, so that boot() holds only what the runtime does. */
function gcAfterEachCrank(message: ArrayBuffer): void {
  host.handleCommand(message);
  if (gcEachCrank) globalThis.gc!();
}

function u16(m: Uint8Array): number {
  return m[1]! | (m[2]! << 8);
}

function name(m: Uint8Array, from: number): string {
  return String.fromCharCode.apply(null, m.subarray(from) as unknown as number[]);
}

function command(m: Uint8Array): void {
  switch (m[0]) {
    case 0x67: /* g */ globalThis.gc!(); break;
    case 0x6e: /* n */ break;
    case 0x6d: /* m */
      gcEachCrank = m[1] === 1;
      globalThis.handleCommand = gcAfterEachCrank;
      break;
    case 0x69: /* i */ idle(u16(m), name(m, 3)); break;
    case 0x64: /* d */ ss.destroyAll(); break;
    case 0x6f: /* o */ current = ss.create(name(m, 1), ONE); break;
    case 0x74: /* t */ current!.requestTx(); break;
    case 0x63: /* c */ current?.destroy(); current = undefined; break;
    case 0x62: /* b */ batch(u16(m), name(m, 3)); break;
    case 0x73: /* s */ stats(); break;
    case 0x78: /* x */ h1.closeIdle(); break;
    default: throw new Error(`fp: unknown command ${m[0]}`);
  }
}

// ---- idle streams ----

const IDLE: object = {};

function idle(n: number, type: string): void {
  for (let i = 0; i < n; i++) ss.create(type, IDLE);
}

// ---- one stream: downloads and transactions ----

let current: SecureStream | undefined;
let rxBytes = 0;
let rxPieces = 0;
let largest = 0;

const ONE = {
  onState(state: number): HandlerReturn {
    const S = rt.State;
    if (state === S.QOS_ACK_REMOTE || state === S.QOS_NACK_REMOTE || state === S.UNREACHABLE || state === S.ALL_RETRIES_FAILED) notify(state);
    return 0;
  },
  onRx(payload: Uint8Array): HandlerReturn {
    rxBytes += payload.length;
    rxPieces++;
    if (payload.length > largest) largest = payload.length;
    return 0;
  },
};

// ---- create / connect / destroy cycles ----

let left = 0;
let failures = 0;
let cycles = 0;

/**
 * k streams of `type`, each: create, requestTx, then destroyed
 *   i % 3 == 0: at once, while CONNECTING (the socket is still opening)
 *   i % 3 == 1: by returning DESTROY_ME from onRx (the response body arriving)
 *   i % 3 == 2: from a 0 ms timer after QOS_ACK_REMOTE (connection kept alive)
 * BATCH_DONE is reported once all k are destroyed. A stream that fails
 * (UNREACHABLE, ALL_RETRIES_FAILED, QOS_NACK_REMOTE) is counted and destroyed.
 */
function batch(k: number, type: string): void {
  left = k;
  const S = rt.State;
  for (let i = 0; i < k; i++) {
    const mode = i % 3;
    let s: SecureStream | undefined;
    s = ss.create(type, {
      onState(state: number): HandlerReturn {
        if (state === S.DESTROYING) {
          cycles++;
          if (--left === 0) notify(BATCH_DONE);
          return 0;
        }
        if (state === S.UNREACHABLE || state === S.ALL_RETRIES_FAILED || state === S.QOS_NACK_REMOTE) {
          failures++;
          return rt.Ret.DESTROY_ME;
        }
        if (mode === 2 && state === S.QOS_ACK_REMOTE) host.setTimer(0, () => s!.destroy());
        return 0;
      },
      onRx: (): HandlerReturn => (mode === 1 ? rt.Ret.DESTROY_ME : 0),
    });
    s.requestTx();
    if (mode === 0) s.destroy();
  }
}

/** Reports {cycles, failures, streams, host: {streams, timers}, rx: {bytes, pieces, largest}} as JSON; resets rx. */
function stats(): void {
  const text = JSON.stringify({ cycles, failures, streams: ss.streams, host: host.pending, rx: { bytes: rxBytes, pieces: rxPieces, largest } });
  host.message(new TextEncoder().encode(text));
  rxBytes = rxPieces = largest = 0;
}
