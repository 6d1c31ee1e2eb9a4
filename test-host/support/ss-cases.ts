// Unit cases of the Secure Streams state machine, retry and backoff, timeout
// and metadata, driven through a scripted binding on a fake clock. Portable:
// run on Node (test-host/ss-core.test.ts) and on the XS engine, which must
// agree. The wire itself is tested against real peers elsewhere.

import { Policy } from "../../src/policy/reader.js";
import { SecureStreams } from "../../src/ss/context.js";
import { SSError } from "../../src/ss/errors.js";
import { State, Ret, RxFlag, stateName, type HandlerReturn } from "../../src/ss/states.js";
import type { SecureStream, StreamHandlers } from "../../src/ss/stream.js";
import type { ConnectOptions } from "../../src/host.js";
import type { ProtocolBinding, StreamLink, Connection } from "../../src/protocols/binding.js";
import { FakeHost } from "./fake-host.js";

/** The policy these cases use (compiled by the caller, so XS gets the bytes). */
export const SS_CASES_POLICY = JSON.stringify({
  retry: [
    { three: { backoff: [1000, 2000, 4000], conceal: 3, jitterpc: 20 } },
    { long: { backoff: [100, 200], conceal: 5, jitterpc: 0 } },
    { nojitter: { backoff: [500] , conceal: 1 } },
    { exp: { exp_backoff_ms: 100, max_backoff_ms: 500, conceal: 5, backoff: [7000] } },
  ],
  s: [
    { lazy: { endpoint: "h.example", port: 80, protocol: "h1", retry: "three", opportunistic: true, timeout_ms: 3000,
      metadata: [{ id: "" }, { ctype: "content-type:" }], http_url: "/x/${id}" } },
    { nailed: { endpoint: "h.example", port: 80, protocol: "h1", retry: "long", nailed_up: true } },
    { plain: { endpoint: "h.example", port: 80, protocol: "h1", retry: "nojitter" } },
    { noretry: { endpoint: "${host}", port: 80, protocol: "h1", metadata: [{ host: "" }] } },
    { expo: { endpoint: "h.example", port: 80, protocol: "h1", retry: "exp" } },
  ],
});

/** A binding whose connections the cases drive by hand. */
class ScriptBinding implements ProtocolBinding {
  readonly name = "h1" as const;
  readonly opened: { link: StreamLink; options: ConnectOptions; txRequests: number; closed: boolean }[] = [];
  open(link: StreamLink, options: ConnectOptions): Connection {
    const c = { link, options, txRequests: 0, closed: false };
    this.opened.push(c);
    return { requestTx: () => void c.txRequests++, close: () => void (c.closed = true) };
  }
  get last() { return this.opened[this.opened.length - 1]!; }
}

interface Rig {
  host: FakeHost;
  binding: ScriptBinding;
  ss: SecureStreams;
  states: string[];
  create(streamtype: string, handlers?: StreamHandlers): SecureStream;
}

function rig(policy: Uint8Array): Rig {
  const host = new FakeHost();
  const binding = new ScriptBinding();
  const ss = new SecureStreams(host, Policy.open(policy), { bindings: [binding], strict: true });
  const states: string[] = [];
  return {
    host, binding, ss, states,
    create(streamtype, handlers = {}) {
      return ss.create(streamtype, {
        ...handlers,
        onState: (s, ack) => {
          states.push(stateName(s));
          return handlers.onState?.(s, ack);
        },
      });
    },
  };
}

function eq(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${what}: got ${a}, expected ${e}`);
}

function throwsCode(f: () => unknown, code: string, what: string): void {
  try {
    f();
  } catch (e) {
    if (e instanceof SSError && e.code === code) return;
    throw new Error(`${what}: threw ${String(e)}`);
  }
  throw new Error(`${what}: did not throw`);
}

const DNS = { kind: "dns", message: "nothing.invalid" } as const;

/** Fails every attempt until the stream stops retrying; returns the delays it waited. */
function failUntilGivenUp(r: Rig): number[] {
  const delays: number[] = [];
  for (;;) {
    r.binding.last.link.failed(DNS);
    const next = r.host.nextTimer();
    if (next === undefined) return delays;
    delays.push(next);
    r.host.advance(next);
  }
}
const established = { timings: {} };

type Case = [string, (policy: Uint8Array) => void];

const CASES: Case[] = [
  ["create reports CREATING; unknown streamtypes are refused", (p) => {
    const r = rig(p);
    r.create("lazy");
    eq(r.states, ["CREATING"], "states");
    throwsCode(() => r.create("nope"), "unknown-streamtype", "unknown");
  }],

  ["requestTx connects on demand: POLL, CONNECTING", (p) => {
    const r = rig(p);
    r.create("lazy").requestTx();
    eq(r.states, ["CREATING", "POLL", "CONNECTING"], "states");
    eq(r.binding.last.options, { host: "h.example", port: 80, timeoutMs: 3000 }, "connect options");
  }],

  ["failures back off through the table with jitter, then ALL_RETRIES_FAILED after conceal + 1 attempts", (p) => {
    const r = rig(p);
    r.host.randoms = [0, 0.999, 0.5];
    r.create("lazy").requestTx();
    const delays = failUntilGivenUp(r);
    // table 1000, 2000, 4000; jitter 20%: random 0 -> +0, 0.999 -> +19.98%, 0.5 -> +10%
    eq(delays, [1000, 2399, 4400], "delays");
    eq(r.binding.opened.length, 4, "attempts = conceal + 1");
    eq(r.states, ["CREATING", "POLL", "CONNECTING", "UNREACHABLE", "CONNECTING", "UNREACHABLE", "CONNECTING",
      "UNREACHABLE", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED"], "states");
  }],

  ["past the end of the table the last delay repeats; jitterpc 0 means none", (p) => {
    const r = rig(p);
    r.create("nailed");
    r.host.advance(0);
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      r.binding.last.link.failed(DNS);
      const next = r.host.nextTimer();
      if (next === undefined) break;
      delays.push(next);
      r.host.advance(next);
    }
    eq(delays, [100, 200, 200, 200, 200], "delays");
    eq(r.states[r.states.length - 1], "ALL_RETRIES_FAILED", "last state");
  }],

  ["without jitterpc lws' default of 30% applies", (p) => {
    const r = rig(p);
    r.host.randoms = [0.999];
    r.create("plain").requestTx();
    r.binding.last.link.failed(DNS);
    eq(r.host.nextTimer(), 649, "500 + 29.97%");
  }],

  ["exp_backoff_ms: capped exponential backoff with full jitter, in place of the table", (p) => {
    const r = rig(p);
    r.host.randoms = [0.999, 0.999, 0.999, 0.999, 0, 0.5];
    r.create("expo").requestTx();
    const delays = failUntilGivenUp(r);
    // uniform in 0..min(500, 100 × 2^(k-1)): 100, 200, 400, 500, 500, 500
    eq(delays, [99, 199, 399, 499, 0], "delays");
    eq(r.binding.opened.length, 6, "attempts = conceal + 1");
  }],

  ["without a retry policy the first failure is final", (p) => {
    const r = rig(p);
    const s = r.create("noretry");
    s.setMetadata("host", "nothing.invalid");
    s.requestTx();
    r.binding.last.link.failed(DNS);
    eq(r.host.nextTimer(), undefined, "no retry timer");
    eq(r.states.slice(-2), ["UNREACHABLE", "ALL_RETRIES_FAILED"], "states");
  }],

  ["after ALL_RETRIES_FAILED the next requestTx starts again", (p) => {
    const r = rig(p);
    const s = r.create("noretry");
    s.setMetadata("host", "nothing.invalid");
    s.requestTx();
    r.binding.last.link.failed(DNS);
    s.requestTx();
    eq(r.states.slice(-3), ["ALL_RETRIES_FAILED", "POLL", "CONNECTING"], "states");
  }],

  ["nailed_up connects at create and reconnects when the link drops", (p) => {
    const r = rig(p);
    r.create("nailed");
    eq(r.states, ["CREATING"], "nothing before the timer queue runs");
    r.host.advance(0);
    const first = r.binding.last;
    first.link.established(established);
    first.link.state(State.CONNECTED);
    first.link.closed({ complete: true });
    eq(r.host.nextTimer(), 100, "backoff after the drop");
    r.host.advance(100);
    eq(r.binding.opened.length, 2, "reconnected");
    eq(r.states, ["CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "CONNECTING"], "states");
  }],

  ["an established connection resets the retry count", (p) => {
    const r = rig(p);
    r.create("nailed");
    r.host.advance(0);
    r.binding.last.link.failed(DNS);
    r.host.advance(r.host.nextTimer()!);
    r.binding.last.link.failed(DNS);
    eq(r.host.nextTimer(), 200, "second delay");
    r.host.advance(200);
    r.binding.last.link.established(established);
    r.binding.last.link.state(State.CONNECTED);
    r.binding.last.link.closed({ complete: false });
    eq(r.host.nextTimer(), 100, "back to the first delay");
  }],

  ["opportunistic: a completed transaction ends with DISCONNECTED and no reconnect", (p) => {
    const r = rig(p);
    r.create("lazy").requestTx();
    const c = r.binding.last;
    c.link.established(established);
    c.link.state(State.CONNECTED);
    c.link.state(State.QOS_ACK_REMOTE);
    c.link.closed({ complete: true });
    eq(r.host.nextTimer(), undefined, "no retry");
    eq(r.states.slice(2), ["CONNECTING", "CONNECTED", "QOS_ACK_REMOTE", "DISCONNECTED"], "states");
  }],

  ["a server's Retry-After is a floor on the backoff delay, even for an opportunistic stream", (p) => {
    const r = rig(p);
    r.host.randoms = [0];
    r.create("lazy").requestTx();
    const c = r.binding.last;
    c.link.established(established);
    c.link.state(State.CONNECTED);
    c.link.state(State.QOS_NACK_REMOTE);
    c.link.closed({ complete: true, retryAfterMs: 5000 });
    eq(r.host.nextTimer(), 5000, "max(1000, 5000)");
    r.host.advance(5000);
    eq(r.states.slice(-3), ["QOS_NACK_REMOTE", "DISCONNECTED", "CONNECTING"], "states");
  }],

  ["a connection that dies before CONNECTED is a failed attempt, even when opportunistic", (p) => {
    const r = rig(p);
    r.create("lazy").requestTx();
    r.binding.last.link.established(established);
    r.binding.last.link.closed({ complete: false });
    eq(r.states.slice(-1), ["UNREACHABLE"], "states");
    eq(r.host.nextTimer() !== undefined, true, "backing off");
  }],

  ["not opportunistic: a drop mid-transaction is retried", (p) => {
    const r = rig(p);
    r.create("plain").requestTx();
    r.binding.last.link.established(established);
    r.binding.last.link.state(State.CONNECTED);
    r.binding.last.link.failed({ kind: "reset", message: "peer reset" });
    eq(r.states.slice(-1), ["DISCONNECTED"], "states");
    r.host.advance(r.host.nextTimer()!);
    eq(r.states.slice(-1), ["CONNECTING"], "retried");
  }],

  ["a refused client certificate is AUTH_FAILED at once, without burning retries", (p) => {
    const r = rig(p);
    const s = r.create("lazy");
    s.requestTx();
    r.binding.last.link.failed({ kind: "tls-auth", message: "certificate required" });
    eq(r.host.nextTimer(), undefined, "no backoff");
    s.requestTx();
    eq(r.states.slice(-3), ["AUTH_FAILED", "POLL", "CONNECTING"], "the app asks again");
  }],

  ["requestTx while connected asks the connection, and is ignored while backing off", (p) => {
    const r = rig(p);
    const s = r.create("lazy");
    s.requestTx();
    s.requestTx();
    eq(r.binding.last.txRequests, 1, "passed to the connection");
    r.binding.last.link.failed(DNS);
    s.requestTx();
    eq(r.binding.opened.length, 1, "no connect during backoff");
  }],

  ["startTimeout reports TIMEOUT; 0 means the policy's timeout_ms; a finished transaction cancels it", (p) => {
    const r = rig(p);
    const s = r.create("lazy");
    s.startTimeout(500);
    r.host.advance(499);
    eq(r.states, ["CREATING"], "not yet");
    r.host.advance(1);
    eq(r.states, ["CREATING", "TIMEOUT"], "at 500 ms");
    s.startTimeout();
    eq(r.host.nextTimer(), 3000, "timeout_ms");
    s.requestTx();
    r.binding.last.link.transactionDone();
    eq(r.host.nextTimer(), undefined, "cancelled");
  }],

  ["TIMEOUT answered with DISCONNECT_ME closes the connection without a retry", (p) => {
    const r = rig(p);
    const s = r.create("plain", { onState: (st) => (st === State.TIMEOUT ? Ret.DISCONNECT_ME : Ret.OK) });
    s.requestTx();
    r.binding.last.link.established(established);
    r.binding.last.link.state(State.CONNECTED);
    s.startTimeout(100);
    r.host.advance(100);
    eq(r.binding.last.closed, true, "closed");
    eq(r.states.slice(-2), ["TIMEOUT", "DISCONNECTED"], "states");
    eq(r.host.nextTimer(), undefined, "no retry");
  }],

  ["metadata: only declared names, no CR, LF or NUL; expanded into endpoint and URL", (p) => {
    const r = rig(p);
    const s = r.create("lazy");
    throwsCode(() => s.setMetadata("nope", "x"), "unknown-metadata", "undeclared");
    throwsCode(() => s.setMetadata("id", "a\r\nX-Evil: 1"), "bad-metadata", "CRLF");
    throwsCode(() => s.setMetadata("id", "a\nb"), "bad-metadata", "LF");
    throwsCode(() => s.setMetadata("id", "a\0b"), "bad-metadata", "NUL");
    s.setMetadata("id", "a b/c");
    eq(s.getMetadata("id"), "a b/c", "stored");
    s.requestTx();
    eq(r.binding.last.link.expand("/x/${id}?${ctype}", encodeURIComponent), "/x/a%20b%2Fc?", "expanded, unset is empty");
    s.setMetadata("ctype", "text/plain");
    eq(r.binding.last.link.headerMetadata(), [["content-type", "text/plain"]], "headers");
    r.binding.last.link.receivedHeader("content-type", "application/json");
    eq(s.getMetadata("ctype"), "application/json", "captured from the response");
    const n = r.create("noretry");
    n.requestTx();
    eq(r.states.slice(-3), ["CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED"], "an empty endpoint cannot connect");
    n.setMetadata("host", "evil.example:443/x");
    n.requestTx();
    eq(r.states.slice(-3), ["CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED"], "not a host name: refused");
    n.setMetadata("host", "dev.example");
    n.requestTx();
    eq(r.binding.last.options.host, "dev.example", "endpoint expanded");
  }],

  ["rx and tx pass through; DISCONNECT_ME from onRx closes; onTx may not overfill", (p) => {
    const r = rig(p);
    const got: number[] = [];
    const s = r.create("lazy", {
      onRx: (payload, flags) => {
        got.push(payload.length, flags);
        return flags & RxFlag.EOM ? Ret.DISCONNECT_ME : Ret.OK;
      },
      onTx: (max) => (max < 4 ? Ret.TX_DONT_SEND : { payload: new Uint8Array(max + (max === 99 ? 1 : 0)), flags: RxFlag.SOM | RxFlag.EOM }),
    });
    s.requestTx();
    const link = r.binding.last.link;
    link.established(established);
    link.state(State.CONNECTED);
    eq(link.tx(2), "none", "TX_DONT_SEND");
    const pulled = link.tx(10);
    eq(typeof pulled === "object" && pulled.payload.length, 10, "payload");
    let threw = false;
    try { link.tx(99); } catch (e) { threw = e instanceof SSError && e.code === "bad-tx"; }
    eq(threw, true, "overfilled");
    eq(link.rx(new Uint8Array(3), RxFlag.SOM), true, "rx ok");
    eq(link.rx(new Uint8Array(0), RxFlag.EOM), false, "DISCONNECT_ME stops");
    eq(got, [3, 1, 0, 2], "rx seen");
    eq(r.binding.last.closed, true, "closed");
    eq(r.states.slice(-1), ["DISCONNECTED"], "states");
  }],

  ["destroy from inside a handler waits for it; DISCONNECTED comes before DESTROYING", (p) => {
    const r = rig(p);
    let stream: SecureStream | undefined;
    stream = r.create("lazy", {
      onState: (st) => {
        if (st === State.CONNECTED) stream!.destroy();
        return Ret.OK;
      },
    });
    stream.requestTx();
    r.binding.last.link.established(established);
    eq(r.binding.last.link.state(State.CONNECTED), false, "the binding is told to stop");
    eq(r.states.slice(-3), ["CONNECTED", "DISCONNECTED", "DESTROYING"], "states");
    eq(r.binding.last.closed, true, "connection closed");
    eq(r.ss.streams, 0, "forgotten");
    eq(r.binding.last.link.state(State.QOS_ACK_REMOTE), false, "a dead link reports nothing");
  }],

  ["DESTROY_ME from CREATING destroys the stream at once", (p) => {
    const r = rig(p);
    const s = r.create("nailed", { onState: (st): HandlerReturn => (st === State.CREATING ? Ret.DESTROY_ME : Ret.OK) });
    r.host.advance(0);
    eq(s.destroyed, true, "destroyed");
    eq(r.states, ["CREATING", "DESTROYING"], "states");
    eq(r.binding.opened.length, 0, "never connected");
  }],

  ["an illegal transition is caught", (p) => {
    const r = rig(p);
    r.create("lazy").requestTx();
    let caught = "";
    try { r.binding.last.link.state(State.CREATING); } catch (e) { caught = (e as Error).message; }
    eq(caught, "lazy: illegal state transition CONNECTING -> CREATING", "message");
  }],
];

export interface CaseResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export function runSSCases(policy: Uint8Array): CaseResult[] {
  return CASES.map(([name, f]) => {
    try {
      f(policy);
      return { name, ok: true, detail: "" };
    } catch (e) {
      return { name, ok: false, detail: String((e as Error)?.message ?? e) };
    }
  });
}
