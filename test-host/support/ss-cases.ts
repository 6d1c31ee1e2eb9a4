// Unit cases of the Secure Streams state machine, retry and backoff, timeout
// and metadata, driven through a scripted binding on a fake clock. Portable:
// run on Node (test-host/ss-core.test.ts) and on the XS engine, which must
// agree. The wire itself is tested against real peers elsewhere.

import { Policy } from "../../src/policy/reader.js";
import { SecureStreams } from "../../src/ss/context.js";
import { SSError } from "../../src/ss/errors.js";
import { State, Ret, RxFlag, stateName, type HandlerReturn } from "../../src/ss/states.js";
import { MIN_RECONNECT_MS, type SecureStream, type StreamHandlers } from "../../src/ss/stream.js";
import type { ConnectOptions } from "../../src/host.js";
import type { ProtocolBinding, StreamLink, Connection, ConnectionEnd } from "../../src/protocols/binding.js";
import { FakeHost } from "./fake-host.js";

/** The policy these cases use (compiled by the caller, so XS gets the bytes). */
export const SS_CASES_POLICY = JSON.stringify({
  retry: [
    { three: { backoff: [1000, 2000, 4000], conceal: 3, jitterpc: 20 } },
    { long: { backoff: [600, 700], conceal: 5, jitterpc: 0 } },
    { nojitter: { backoff: [500] , conceal: 1 } },
    { exp: { exp_backoff_ms: 1000, max_backoff_ms: 5000, conceal: 5, backoff: [7000] } },
    { storm: { backoff: [0], conceal: 3, jitterpc: 0 } },
    { huge: { backoff: [4294967295], conceal: 1, jitterpc: 50 } },
  ],
  s: [
    { lazy: { endpoint: "h.example", port: 80, protocol: "h1", retry: "three", timeout_ms: 3000,
      metadata: [{ id: "" }, { ctype: "content-type:" }], http_url: "/x/${id}" } },
    { opp: { endpoint: "h.example", port: 80, protocol: "h1", retry: "three", opportunistic: true } },
    { nailed: { endpoint: "h.example", port: 80, protocol: "h1", retry: "long", nailed_up: true } },
    { plain: { endpoint: "h.example", port: 80, protocol: "h1", retry: "nojitter" } },
    { noretry: { endpoint: "${host}", port: 80, protocol: "h1", metadata: [{ host: "" }, { hosthdr: "x-host:" }] } },
    { expo: { endpoint: "h.example", port: 80, protocol: "h1", retry: "exp" } },
    { stormy: { endpoint: "h.example", port: 80, protocol: "h1", retry: "storm" } },
    { patient: { endpoint: "h.example", port: 80, protocol: "h1", retry: "huge", timeout_ms: 4294967295 } },
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
  create(streamtype: string, handlers?: StreamHandlers, user?: unknown): SecureStream;
}

function rig(policy: Uint8Array): Rig {
  const host = new FakeHost();
  const binding = new ScriptBinding();
  const ss = new SecureStreams(host, Policy.open(policy), { bindings: [binding], strict: true });
  const states: string[] = [];
  return {
    host, binding, ss, states,
    create(streamtype, handlers = {}, user) {
      return ss.create(streamtype, {
        ...handlers,
        onState: (s, ack, stream) => {
          states.push(stateName(s));
          return handlers.onState?.(s, ack, stream);
        },
      }, user);
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

const DNS: ConnectionEnd = { reason: "dns: nothing.invalid", error: "dns" };
const UP = { timings: {} };

/** Fails every attempt until the stream stops retrying; returns the delays it waited. */
function failUntilGivenUp(r: Rig): number[] {
  const delays: number[] = [];
  for (;;) {
    r.binding.last.link.ended(DNS);
    const next = r.host.nextTimer();
    if (next === undefined) return delays;
    delays.push(next);
    r.host.advance(next);
  }
}

/** Connects the stream's last connection and runs one transaction on it to `result`. */
function transact(r: Rig, result: number = State.QOS_ACK_REMOTE): StreamLink {
  const link = r.binding.last.link;
  link.connected(UP);
  link.done(result);
  return link;
}

type Case = [string, (policy: Uint8Array) => void];

const CASES: Case[] = [
  ["create reports CREATING; unknown streamtypes are refused", (p) => {
    const r = rig(p);
    r.create("lazy");
    eq(r.states, ["CREATING"], "states");
    throwsCode(() => r.create("nope"), "unknown-streamtype", "unknown");
  }],

  ["requestTx connects on demand: POLL, CONNECTING; the link says a transaction is pending", (p) => {
    const r = rig(p);
    r.create("lazy").requestTx();
    eq(r.states, ["CREATING", "POLL", "CONNECTING"], "states");
    eq(r.binding.last.options, { host: "h.example", port: 80, timeoutMs: 3000 }, "connect options");
    eq(r.binding.last.link.pending, true, "pending");
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
    eq(failUntilGivenUp(r), [600, 700, 700, 700, 700], "delays");
    eq(r.states[r.states.length - 1], "ALL_RETRIES_FAILED", "last state");
  }],

  ["without jitterpc lws' default of 30% applies", (p) => {
    const r = rig(p);
    r.host.randoms = [0.999];
    r.create("plain").requestTx();
    r.binding.last.link.ended(DNS);
    eq(r.host.nextTimer(), 649, "500 + 29.97%");
  }],

  ["exp_backoff_ms: capped exponential backoff with full jitter, in place of the table", (p) => {
    const r = rig(p);
    r.host.randoms = [0.999, 0.999, 0.999, 0.999, 0, 0.5];
    r.create("expo").requestTx();
    // uniform in 0..min(5000, 1000 × 2^(k-1)); never under the 500 ms floor
    eq(failUntilGivenUp(r), [999, 1998, 3996, 4995, 500], "delays");
    eq(r.binding.opened.length, 6, "attempts = conceal + 1");
  }],

  ["backoff [0] still waits the minimum reconnect interval; delays over 2^31 ms reach the host as they are", (p) => {
    const r = rig(p);
    r.create("stormy").requestTx();
    eq(failUntilGivenUp(r), [MIN_RECONNECT_MS, MIN_RECONNECT_MS, MIN_RECONNECT_MS], "delays");
    const q = rig(p);
    q.host.randoms = [0.999];
    const s = q.create("patient");
    s.startTimeout();
    eq(q.host.nextTimer(), 4294967295, "timeout_ms of 2^32 - 1");
    s.cancelTimeout();
    s.requestTx();
    q.binding.last.link.ended(DNS);
    eq(q.host.nextTimer(), 4294967295, "backoff plus jitter, capped at the host contract's u32");
  }],

  ["without a retry policy the first failure is final", (p) => {
    const r = rig(p);
    const s = r.create("noretry");
    s.setMetadata("host", "nothing.invalid");
    s.requestTx();
    r.binding.last.link.ended(DNS);
    eq(r.host.nextTimer(), undefined, "no retry timer");
    eq(r.states.slice(-2), ["UNREACHABLE", "ALL_RETRIES_FAILED"], "states");
  }],

  ["after ALL_RETRIES_FAILED the next requestTx starts again", (p) => {
    const r = rig(p);
    const s = r.create("noretry");
    s.setMetadata("host", "nothing.invalid");
    s.requestTx();
    r.binding.last.link.ended(DNS);
    s.requestTx();
    eq(r.states.slice(-3), ["ALL_RETRIES_FAILED", "POLL", "CONNECTING"], "states");
  }],

  ["a finished transaction is never sent again: the connection's end owes nothing, with or without a retry policy", (p) => {
    for (const name of ["lazy", "noretry"]) {
      const r = rig(p);
      const s = r.create(name);
      if (name === "noretry") s.setMetadata("host", "h.example");
      s.requestTx();
      const link = transact(r);
      eq(link.pending, false, "done");
      // stray bytes, a reset of the idle connection: the binding says why, nothing was interrupted
      link.ended({ reason: "1 byte from the server while no request was outstanding", error: "reset" });
      eq(r.host.nextTimer(), undefined, `${name}: no retry`);
      eq(r.binding.opened.length, 1, `${name}: one connection`);
      eq(r.states.slice(-3), ["CONNECTED", "QOS_ACK_REMOTE", "DISCONNECTED"], `${name}: states`);
    }
  }],

  ["a finished transaction resets the retry count; a transaction after it gets a new connection at once", (p) => {
    const r = rig(p);
    const s = r.create("lazy", {
      onState: (st, _ack, stream) => (st === State.QOS_ACK_REMOTE && r.binding.opened.length === 3 ? stream.requestTx() : Ret.OK),
    });
    s.requestTx();
    r.binding.last.link.ended(DNS);
    r.host.advance(r.host.nextTimer()!);
    r.binding.last.link.ended(DNS);
    eq(r.host.nextTimer(), 2000 + 200, "second delay");
    r.host.advance(r.host.nextTimer()!);
    // the QOS handler asks for the next transaction; the server then closes the connection
    transact(r).ended({});
    eq(r.binding.opened.length, 4, "a new connection without waiting");
    eq(r.states.slice(-5), ["CONNECTED", "QOS_ACK_REMOTE", "DISCONNECTED", "POLL", "CONNECTING"], "states");
    r.binding.last.link.ended(DNS);
    eq(r.host.nextTimer(), 1000 + 100, "back to the first delay");
  }],

  ["an interrupted transaction is retried when it may be sent again, and given up when it may not", (p) => {
    const r = rig(p);
    r.create("plain").requestTx();
    r.binding.last.link.connected(UP);
    r.binding.last.link.ended({ reason: "reset", error: "reset", interrupted: true, replayable: true });
    eq(r.states.slice(-1), ["DISCONNECTED"], "states");
    r.host.advance(r.host.nextTimer()!);
    eq(r.states.slice(-1), ["CONNECTING"], "retried");
    r.binding.last.link.connected(UP);
    r.binding.last.link.ended({ reason: "reset", error: "reset", interrupted: true, replayable: false });
    eq(r.states.slice(-2), ["DISCONNECTED", "ALL_RETRIES_FAILED"], "not replayable");
    eq(r.host.nextTimer(), undefined, "no retry");
  }],

  ["every interrupted transaction counts: a server that always fails mid-way ends in ALL_RETRIES_FAILED", (p) => {
    const r = rig(p);
    r.create("lazy").requestTx();
    for (let i = 0; i < 10 && r.binding.last.link.pending; i++) {
      r.binding.last.link.connected(UP);
      r.binding.last.link.ended({ reason: "HTTP 503", interrupted: true, replayable: true, retryAfterMs: 0 });
      const next = r.host.nextTimer();
      if (next !== undefined) r.host.advance(next);
    }
    eq(r.binding.opened.length, 4, "conceal + 1 connections");
    eq(r.states[r.states.length - 1], "ALL_RETRIES_FAILED", "given up");
  }],

  ["a server's Retry-After is a floor on the backoff delay", (p) => {
    const r = rig(p);
    r.host.randoms = [0];
    r.create("lazy").requestTx();
    r.binding.last.link.connected(UP);
    r.binding.last.link.ended({ reason: "HTTP 503", interrupted: true, replayable: true, retryAfterMs: 5000 });
    eq(r.host.nextTimer(), 5000, "max(1000, 5000)");
    r.host.advance(5000);
    eq(r.states.slice(-3), ["CONNECTED", "DISCONNECTED", "CONNECTING"], "states");
  }],

  ["opportunistic: nothing is retried by itself but what the server asked to get later; a failure is reported once", (p) => {
    const r = rig(p);
    const s = r.create("opp");
    s.requestTx();
    r.binding.last.link.connected(UP);
    r.binding.last.link.ended({ reason: "reset", error: "reset", interrupted: true, replayable: true });
    eq(r.states.slice(-3), ["CONNECTED", "DISCONNECTED", "ALL_RETRIES_FAILED"], "states");
    eq(r.host.nextTimer(), undefined, "no retry");
    s.requestTx();
    r.binding.last.link.ended(DNS);
    eq(r.states.slice(-2), ["UNREACHABLE", "ALL_RETRIES_FAILED"], "a failed connect too");
    s.requestTx();
    r.binding.last.link.connected(UP);
    r.binding.last.link.ended({ reason: "HTTP 503", interrupted: true, replayable: true, retryAfterMs: 0 });
    eq(r.host.nextTimer() !== undefined, true, "a 503 is retried, as lws does");
  }],

  ["a connection that dies before CONNECTED is a failed attempt", (p) => {
    const r = rig(p);
    r.create("lazy").requestTx();
    r.binding.last.link.ended({ reason: "closed", error: "reset" });
    eq(r.states.slice(-1), ["UNREACHABLE"], "states");
    eq(r.host.nextTimer() !== undefined, true, "backing off");
  }],

  ["a refused client certificate is AUTH_FAILED at once, without burning retries", (p) => {
    const r = rig(p);
    const s = r.create("lazy");
    s.requestTx();
    r.binding.last.link.ended({ reason: "certificate required", error: "tls-auth" });
    eq(r.host.nextTimer(), undefined, "no backoff");
    s.requestTx();
    eq(r.states.slice(-3), ["AUTH_FAILED", "POLL", "CONNECTING"], "the app asks again");
  }],

  ["a local fault fails once, without UNREACHABLE and without a retry", (p) => {
    const r = rig(p);
    r.create("lazy").requestTx();
    r.binding.last.link.ended({ reason: "request refused: blob \"auth\" holds a line break", local: true });
    eq(r.states.slice(-2), ["CONNECTING", "ALL_RETRIES_FAILED"], "states");
    eq(r.host.nextTimer(), undefined, "no retry");
    eq(r.host.logs.some((l) => l.includes("holds a line break")), true, "the reason is logged");
  }],

  ["nailed_up connects at create and reconnects, counted, whenever the connection ends", (p) => {
    const r = rig(p);
    r.create("nailed");
    eq(r.states, ["CREATING"], "nothing before the timer queue runs");
    r.host.advance(0);
    eq(r.binding.last.link.pending, false, "a connection, no transaction");
    r.binding.last.link.connected(UP);
    r.binding.last.link.ended({});
    eq(r.host.nextTimer(), 600, "backoff after the drop");
    r.host.advance(600);
    eq(r.binding.opened.length, 2, "reconnected");
    eq(r.states, ["CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED", "CONNECTING"], "states");
    for (let i = 0; i < 10 && r.host.nextTimer() === undefined; i++) {
      r.binding.last.link.connected(UP);
      r.binding.last.link.ended({});
      const next = r.host.nextTimer();
      if (next !== undefined) r.host.advance(next);
    }
    eq(r.binding.opened.length, 6, "conceal + 1 reconnects without a finished transaction");
    eq(r.states[r.states.length - 1], "ALL_RETRIES_FAILED", "then it stops");
  }],

  ["connect() from CREATING, then requestTx() once CONNECTED (lws' client-tx)", (p) => {
    const r = rig(p);
    let asked = 0;
    r.create("plain", {
      onState: (st, _ack, stream) => {
        if (st === State.CREATING) return stream.connect();
        if (st === State.CONNECTED) { asked++; return stream.requestTx(); }
        return Ret.OK;
      },
    });
    eq(r.states, ["CREATING", "CONNECTING"], "connects from CREATING, no POLL");
    eq(r.binding.last.link.pending, false, "no transaction yet");
    r.binding.last.link.connected(UP);
    eq([asked, r.binding.last.txRequests, r.binding.last.link.pending], [1, 1, true], "the body is asked for once connected");
  }],

  ["handlers get their stream (and its user object) as their last argument", (p) => {
    const r = rig(p);
    const seen: unknown[] = [];
    const user = { name: "mine" };
    const s = r.create("lazy", {
      onState: (st, _ack, stream) => {
        seen.push([stateName(st), (stream.user as typeof user).name]);
        if (st === State.CREATING) {
          stream.setMetadata("id", "abc");
          return stream.requestTx();
        }
        return Ret.OK;
      },
      onRx: (_payload, _flags, stream) => void seen.push(["rx", stream.getMetadata("id")]),
      onTx: (_max, flags, stream) => {
        seen.push(["tx", flags, stream.streamtype]);
        return Ret.TX_DONT_SEND;
      },
    }, user);
    const link = r.binding.last.link;
    eq(link.expand("/x/${id}"), "/x/abc", "metadata set in CREATING");
    link.connected(UP);
    link.tx(10, RxFlag.SOM);
    link.rx(new Uint8Array(1), RxFlag.SOM);
    eq(s.user, user, "user");
    eq(seen, [["CREATING", "mine"], ["POLL", "mine"], ["CONNECTING", "mine"], ["CONNECTED", "mine"], ["tx", 1, "lazy"], ["rx", "abc"]], "seen");
  }],

  ["requestTx while connected asks the connection, and is ignored while backing off", (p) => {
    const r = rig(p);
    const s = r.create("lazy");
    s.requestTx();
    r.binding.last.link.connected(UP);
    s.requestTx();
    eq(r.binding.last.txRequests, 1, "passed to the connection");
    r.binding.last.link.ended({ reason: "reset", error: "reset", interrupted: true, replayable: true });
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
    transact(r);
    eq(r.host.nextTimer(), undefined, "cancelled");
  }],

  ["TIMEOUT answered with DISCONNECT_ME closes the connection without a retry", (p) => {
    const r = rig(p);
    const s = r.create("plain", { onState: (st) => (st === State.TIMEOUT ? Ret.DISCONNECT_ME : Ret.OK) });
    s.requestTx();
    r.binding.last.link.connected(UP);
    s.startTimeout(100);
    r.host.advance(100);
    eq(r.binding.last.closed, true, "closed");
    eq(r.states.slice(-2), ["TIMEOUT", "DISCONNECTED"], "states");
    eq(r.host.nextTimer(), undefined, "no retry");
  }],

  ["DISCONNECT_ME from CONNECTING gives up the attempt; the stream is not stuck", (p) => {
    const r = rig(p);
    let once = true;
    const s = r.create("lazy", {
      onState: (st) => (st === State.CONNECTING && once ? ((once = false), Ret.DISCONNECT_ME) : Ret.OK),
    });
    s.requestTx();
    eq(r.binding.opened.length, 0, "nothing opened");
    eq(r.host.nextTimer(), undefined, "nothing scheduled");
    s.requestTx();
    eq(r.states, ["CREATING", "POLL", "CONNECTING", "POLL", "CONNECTING"], "states");
    eq(r.binding.opened.length, 1, "requestTx works again");
    s.connect();
    eq(r.binding.opened.length, 1, "connect() with a connection under way adds none");
  }],

  ["DISCONNECT_ME from CONNECTED: DISCONNECTED, and nothing more from that connection", (p) => {
    const r = rig(p);
    r.create("lazy", { onState: (st) => (st === State.CONNECTED ? Ret.DISCONNECT_ME : Ret.OK) }).requestTx();
    const link = r.binding.last.link;
    eq(link.connected(UP), false, "the binding is told to stop");
    eq(link.rx(new Uint8Array(0), RxFlag.EOM), false, "rx refused");
    eq(link.done(State.QOS_ACK_REMOTE), false, "done refused");
    eq(r.states.slice(-2), ["CONNECTED", "DISCONNECTED"], "states");
    eq([r.binding.last.closed, r.host.nextTimer()], [true, undefined], "closed, no retry");
  }],

  ["metadata: declared names only; no CR, LF, NUL, lone surrogate or over-long value; endpoint metadata is a host name", (p) => {
    const r = rig(p);
    const s = r.create("lazy");
    throwsCode(() => s.setMetadata("nope", "x"), "unknown-metadata", "undeclared");
    throwsCode(() => s.setMetadata("id", "a\r\nX-Evil: 1"), "bad-metadata", "CRLF");
    throwsCode(() => s.setMetadata("id", "a\nb"), "bad-metadata", "LF");
    throwsCode(() => s.setMetadata("id", "a\0b"), "bad-metadata", "NUL");
    throwsCode(() => s.setMetadata("id", "x\uD800"), "bad-metadata", "lone high surrogate");
    throwsCode(() => s.setMetadata("id", "\uDC00x"), "bad-metadata", "lone low surrogate");
    throwsCode(() => s.setMetadata("id", "x".repeat(4097)), "bad-metadata", "over 4096");
    s.setMetadata("id", "a b/c\uD83D\uDE00");
    eq(s.getMetadata("id"), "a b/c\uD83D\uDE00", "stored");
    s.requestTx();
    eq(r.binding.last.link.expand("/x/${id}?${ctype}", encodeURIComponent), "/x/a%20b%2Fc%F0%9F%98%80?", "expanded, unset is empty");
    eq(r.binding.last.link.expand("$${id}${id}/${}/${a${id}/${id", encodeURIComponent), "$a%20b%2Fc%F0%9F%98%80a%20b%2Fc%F0%9F%98%80///${id", "adjacent, empty, \"${\" in a name");
    eq(r.binding.last.link.expand("/${id/x", encodeURIComponent), "/${id/x", "an unclosed ${ stays");
    s.setMetadata("ctype", "text/plain");
    eq(r.binding.last.link.headerMetadata(), [["content-type", "text/plain"]], "headers");
    r.binding.last.link.receivedHeader("content-type", "application/json");
    eq(s.getMetadata("ctype"), "application/json", "captured from the response");
    r.binding.last.link.receivedHeader("content-type", "y".repeat(5000));
    eq(s.getMetadata("ctype"), undefined, "a captured value over the limit is dropped, not sent back");
    const n = r.create("noretry");
    throwsCode(() => n.setMetadata("host", "evil.example:443/x"), "bad-metadata", "not a host name");
    n.requestTx();
    eq(r.states.slice(-3), ["POLL", "CONNECTING", "ALL_RETRIES_FAILED"], "an empty endpoint: a local fault, no connection");
    n.setMetadata("host", "dev.example");
    n.requestTx();
    eq(r.binding.last.options.host, "dev.example", "endpoint expanded");
  }],

  ["rx and tx pass through; onTx may not overfill; DISCONNECT_ME from onRx closes", (p) => {
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
    let link = r.binding.last.link;
    link.connected(UP);
    eq(link.tx(2, RxFlag.SOM), "none", "TX_DONT_SEND");
    const pulled = link.tx(10, 0);
    eq(typeof pulled === "object" && pulled.payload.length, 10, "payload");
    eq(link.tx(99, 0), "stop", "overfilled");
    eq(r.states.slice(-2), ["DISCONNECTED", "ALL_RETRIES_FAILED"], "a local fault: no retry");
    eq(r.host.logs.some((l) => l.includes("onTx gave 100 bytes, more than the 99 asked for")), true, "logged");
    s.requestTx();
    link = r.binding.last.link;
    link.connected(UP);
    eq(link.rx(new Uint8Array(3), RxFlag.SOM), true, "rx ok");
    eq(link.rx(new Uint8Array(0), RxFlag.EOM), false, "DISCONNECT_ME stops");
    eq(got, [3, 1, 0, 2], "rx seen");
    eq(r.binding.last.closed, true, "closed");
    eq(r.states.slice(-1), ["DISCONNECTED"], "states");
  }],

  ["a handler that throws ends its own stream only, with a log line", (p) => {
    const r = rig(p);
    const other = r.create("lazy");
    other.requestTx();
    const s = r.create("plain", {
      onRx: () => {
        throw new TypeError("app bug");
      },
    });
    s.requestTx();
    const link = r.binding.last.link;
    link.connected(UP);
    eq(link.rx(new Uint8Array(1), RxFlag.SOM), false, "the binding is told to stop");
    eq([s.destroyed, other.destroyed, r.ss.streams], [true, false, 1], "only the thrower is gone");
    eq(r.binding.last.closed, true, "its connection closed");
    eq(r.host.logs.some((l) => l.includes("plain: a handler threw TypeError: app bug")), true, "logged");
    eq(r.states.slice(-2), ["DISCONNECTED", "DESTROYING"], "it still hears its end");
  }],

  ["a throw from onState(CREATING) leaves no stream: create() throws it", (p) => {
    const r = rig(p);
    for (let i = 0; i < 1000; i++) {
      let caught: unknown;
      try {
        r.create("lazy", {
          onState: (st) => {
            if (st === State.CREATING) throw new RangeError("no");
          },
        });
      } catch (e) {
        caught = e;
      }
      if (!(caught instanceof RangeError)) throw new Error(`create() did not throw the handler's error: ${String(caught)}`);
    }
    eq(r.ss.streams, 0, "none left");
  }],

  ["destroy from inside a handler waits for it; DISCONNECTED comes before DESTROYING", (p) => {
    const r = rig(p);
    const stream = r.create("lazy", {
      onState: (st, _ack, s) => {
        if (st === State.CONNECTED) s.destroy();
        return Ret.OK;
      },
    });
    stream.requestTx();
    eq(r.binding.last.link.connected(UP), false, "the binding is told to stop");
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
