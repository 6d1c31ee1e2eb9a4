// The runtime against a hostile server: raw TCP peers (support/
// hostile-server.ts) that produce the faults a well-behaved HTTP server
// never does. Each case runs twice: on Node (the runtime in this process) and
// inside the real XS engine (the runtime in an xsnap worker, its sockets
// bridged to this process), against its own server.
//
// What must hold: a finished transaction is never sent again; every failure
// counts against the retry policy until ALL_RETRIES_FAILED; a fault of ours
// fails once without a network retry; a throwing handler ends its own stream
// only. "Never sent again" is shown without timing: when the run stops, no
// host timer is left set (a retry would be one), and the server saw one
// request.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import type net from "node:net";
import { HostileServer, response, type Behaviour } from "./support/hostile-server.js";
import { runStream } from "./support/run-stream.js";
import { runStreamInXS } from "./support/run-stream-xs.js";
import type { ScenarioOptions } from "./support/stream-record.js";
import { compilePolicy } from "../tools/policy/compile.js";
import { Policy } from "../src/policy/reader.js";
import { Ret, stateName, type HandlerReturn } from "../src/ss/states.js";
import { patternBytes } from "./support/run-stream.js";
import { createHash } from "node:crypto";

interface Outcome {
  states: string[];
  after: string[];
  logs: string[];
  timersPending: number;
  rxBytes: number;
  eoms: number;
}

interface Run extends ScenarioOptions {
  readonly until: (states: string[]) => boolean;
  /** The app's answer to a state, by name. */
  readonly answer?: (state: string) => HandlerReturn | void;
  readonly blobs?: Record<string, Uint8Array>;
  readonly responseTimeoutMs?: number;
}

type Runner = (policy: Uint8Array, run: Run) => Promise<Outcome>;

const RUNNERS: [string, Runner][] = [
  ["Node", (policy, run) => runStream(Policy.open(policy), "s", {
    ...run, onState: run.answer && ((state) => run.answer!(stateName(state))),
  })],
  ["XS", (policy, run) => runStreamInXS(policy, "s", { ...run, onState: run.answer && ((state) => run.answer!(state)) })],
];

const servers: HostileServer[] = [];
after(() => servers.forEach((s) => s.close()));

async function serve(behaviour: Behaviour, host?: string): Promise<HostileServer> {
  const s = await HostileServer.start(behaviour, host);
  servers.push(s);
  return s;
}

/** Streamtype "s" on `server`, with retry "two" (conceal 2: three attempts) unless `st` says otherwise. */
function policyFor(server: HostileServer, st: object, endpoint = "127.0.0.1"): Uint8Array {
  const r = compilePolicy(JSON.stringify({
    retry: [{ two: { backoff: [50], conceal: 2, jitterpc: 0 } }],
    s: [{ s: { endpoint, port: server.port, protocol: "h1", http_method: "GET", retry: "two", ...st } }],
  }));
  if (!r.binary) throw new Error(JSON.stringify(r.diagnostics));
  return r.binary;
}

/** Defines the case once per runner. */
function both(name: string, body: (run: Runner) => Promise<void>): void {
  for (const [where, runner] of RUNNERS) test(`${name} (${where})`, () => body(runner));
}

const has = (s: string) => (states: string[]) => states.includes(s);
const logged = (o: Outcome, text: string) => assert.ok(o.logs.some((l) => l.includes(text)), `no log line with ${JSON.stringify(text)}:\n${o.logs.join("\n")}`);
const OK = ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"];
const reset = (socket: net.Socket) => socket.resetAndDestroy();

// ---- 1. a finished transaction is never sent again ----

const STRAY: [string, string, string, string][] = [
  ["one byte after a complete 200", "/extra", response("200 OK", "ok") + "X", "QOS_ACK_REMOTE"],
  ["a 204 carrying a body", "/204", "HTTP/1.1 204 No Content\r\n\r\nbody!", "QOS_ACK_REMOTE"],
  ["a 304 carrying a body", "/304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nbody!", "QOS_NACK_REMOTE"],
  ["an unrequested second response", "/two", response("200 OK", "ok") + response("200 OK", "again"), "QOS_ACK_REMOTE"],
];

for (const [what, url, bytes, result] of STRAY) {
  for (const retry of ["two", undefined]) {
    both(`${what} (${retry ? "with" : "without"} a retry policy): the connection is closed, the request is not sent again`, async (run) => {
      const server = await serve((_r, socket) => socket.write(bytes, "latin1"));
      const o = await run(policyFor(server, { http_url: url, retry }), { until: has("DISCONNECTED") });
      assert.deepEqual(o.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", result, "DISCONNECTED"]);
      assert.deepEqual(o.after, []);
      assert.equal(o.timersPending, 0, "a retry is scheduled");
      assert.equal(server.connections, 1);
      assert.equal(server.requests.length, 1);
      logged(o, "while no request was outstanding: connection closed");
    });
  }
}

both("requestTx() again from CONNECTED, with the transaction already pending, sends one request", async (run) => {
  const server = await serve((_r, socket) => socket.write(response("200 OK", "ok")));
  const o = await run(policyFor(server, { http_url: "/once" }), { requestTxOn: "CONNECTED", until: has("QOS_ACK_REMOTE") });
  assert.deepEqual(o.states, OK);
  assert.equal(o.timersPending, 0);
  assert.equal(server.requests.length, 1);
});

both("a reset of the idle kept-alive connection after a 200 is not a failure: nothing is sent again", async (run) => {
  const server = await serve((_r, socket) => {
    socket.write(response("200 OK", "ok"));
    setTimeout(() => reset(socket), 20);
  });
  const o = await run(policyFor(server, { http_url: "/rst" }), { until: has("DISCONNECTED") });
  assert.deepEqual(o.states, [...OK, "DISCONNECTED"]);
  assert.equal(o.timersPending, 0);
  assert.equal(server.requests.length, 1);
});

both("a POST answered with a byte too many is not sent again", async (run) => {
  const body = patternBytes(3000, 7);
  const server = await serve((_r, socket) => socket.write(response("200 OK", "ok") + "X"));
  const o = await run(policyFor(server, { http_url: "/post", http_method: "POST" }), { send: body, until: has("DISCONNECTED") });
  assert.deepEqual(o.states, [...OK, "DISCONNECTED"]);
  assert.equal(o.timersPending, 0);
  assert.equal(server.requests.length, 1);
  assert.deepEqual(new Uint8Array(server.requests[0]!.body), body);
});

both("a POST that reached the server is never replayed when the connection then breaks: ALL_RETRIES_FAILED", async (run) => {
  const server = await serve((_r, socket) => reset(socket));
  const o = await run(policyFor(server, { http_url: "/post", http_method: "POST" }), {
    send: patternBytes(500, 3), until: has("ALL_RETRIES_FAILED"),
  });
  assert.deepEqual(o.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED", "ALL_RETRIES_FAILED"]);
  assert.equal(server.requests.length, 1);
  assert.equal(server.requests[0]!.body.length, 500);
  logged(o, "not sent again: the server may have acted on it");
});

// ---- 2. every failure counts: no retry storms ----

const FAILURES: [string, Behaviour, string][] = [
  ["503 with Retry-After: 0", (_r, s) => s.write(response("503 Service Unavailable", "busy", ["Retry-After: 0"])), "HTTP 503"],
  ["429 with Retry-After: 0", (_r, s) => s.write(response("429 Too Many Requests", "slow down", ["Retry-After: 0"])), "HTTP 429"],
  ["a head, then a close mid-body", (_r, s) => s.end("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"), "connection closed mid-response"],
  ["a reset after the request (GET: sent again)", (_r, s) => reset(s), "reset"],
  ["a close before the response head is complete", (_r, s) => s.end("HTTP/1.1 200 OK\r\nContent-Le"), "the server closed the connection before the response head"],
  ["garbage for a response", (_r, s) => s.write("SSH-2.0-OpenSSH_9.2\r\n\r\n"), "malformed response"],
];

for (const [what, behaviour, why] of FAILURES) {
  both(`${what}: conceal + 1 connections, then ALL_RETRIES_FAILED, and no QOS result`, async (run) => {
    const server = await serve(behaviour);
    const o = await run(policyFor(server, { http_url: "/x" }), { until: has("ALL_RETRIES_FAILED") });
    assert.equal(server.connections, 3, `connections: ${o.states.join(" ")}`);
    assert.equal(o.states.filter((s) => s === "CONNECTING").length, 3);
    assert.ok(!o.states.some((s) => s.startsWith("QOS_")), o.states.join(" "));
    assert.equal(o.timersPending, 0);
    assert.equal(o.logs.filter((l) => l.includes(why)).length, 3, `each attempt's end is logged with its reason:\n${o.logs.join("\n")}`);
  });
}

both("opportunistic: a close mid-body is reported once (ALL_RETRIES_FAILED), not retried", async (run) => {
  const server = await serve((_r, s) => s.end("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"));
  const o = await run(policyFor(server, { http_url: "/x", opportunistic: true }), { until: has("ALL_RETRIES_FAILED") });
  assert.deepEqual(o.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED", "ALL_RETRIES_FAILED"]);
  assert.equal(server.connections, 1);
  logged(o, "connection closed mid-response");
});

both("opportunistic: a 503 is retried as the server asks, and still runs out", async (run) => {
  const server = await serve((_r, s) => s.write(response("503 Service Unavailable", "busy", ["Retry-After: 0"])));
  await run(policyFor(server, { http_url: "/x", opportunistic: true }), { until: has("ALL_RETRIES_FAILED") });
  assert.equal(server.connections, 3);
});

for (const [what, behaviour] of [
  ["a server that never answers", () => {}],
  ["a server that drips its head a byte every 50 ms", (_r: unknown, s: net.Socket) => {
    const head = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Padding: " + "x".repeat(200) + "\r\n\r\nok";
    let i = 0;
    const t = setInterval(() => (s.destroyed || i >= head.length ? clearInterval(t) : s.write(head[i++]!)), 50);
  }],
] as [string, Behaviour][]) {
  both(`${what}: the response head timeout fails the attempt, and it counts`, async (run) => {
    const server = await serve(behaviour);
    const o = await run(policyFor(server, { http_url: "/x" }), { until: has("ALL_RETRIES_FAILED"), responseTimeoutMs: 300 });
    assert.equal(server.connections, 3);
    logged(o, "no complete response head within 300 ms");
  });
}

// ---- 3, 9, 10: faults of ours fail once, with no connection ----

both("a metadata value with a lone surrogate is refused when it is set", async (run) => {
  const server = await serve(() => {});
  await assert.rejects(run(policyFor(server, { http_url: "/x/${device}", metadata: [{ device: "" }] }), {
    metadata: { device: "x\uD800" }, until: () => false,
  }), /lone UTF-16 surrogate/);
  assert.equal(server.connections, 0);
});

both("a dot segment from metadata is refused before connecting, once", async (run) => {
  const server = await serve(() => {});
  const o = await run(policyFor(server, { http_url: "/api/${x}/data", metadata: [{ x: "" }] }), {
    metadata: { x: ".." }, until: has("ALL_RETRIES_FAILED"),
  });
  assert.deepEqual(o.states, ["CREATING", "POLL", "CONNECTING", "ALL_RETRIES_FAILED"]);
  assert.equal(server.connections, 0);
  logged(o, 'has a ".." path segment');
});

both("an auth token ending in a newline fails once, before connecting, and is never logged", async (run) => {
  const server = await serve(() => {});
  const o = await run(policyFor(server, { http_url: "/x", http_auth_header: "authorization:", http_auth_preamble: "Bearer " }), {
    blobs: { auth: new TextEncoder().encode("s3cr3t-t0ken\n") }, until: has("ALL_RETRIES_FAILED"),
  });
  assert.deepEqual(o.states, ["CREATING", "POLL", "CONNECTING", "ALL_RETRIES_FAILED"]);
  assert.equal(server.connections, 0);
  logged(o, 'blob "auth" holds a line break');
  assert.ok(!o.logs.some((l) => l.includes("s3cr3t")), o.logs.join("\n"));
});

// ---- 4, 5: handlers that throw, DISCONNECT_ME ----

for (const throwOn of ["rx", "CONNECTED", "tx"]) {
  both(`a handler that throws (${throwOn === "rx" ? "onRx" : throwOn === "tx" ? "onTx" : "onState(CONNECTED)"}) ends its own stream, with a log line`, async (run) => {
    const server = await serve((_r, s) => s.write(response("200 OK", "hello")));
    const o = await run(policyFor(server, { http_url: "/x", http_method: throwOn === "tx" ? "POST" : "GET" }), {
      throwOn, send: throwOn === "tx" ? patternBytes(10) : undefined, until: has("DESTROYING"),
    });
    assert.deepEqual(o.states.slice(-2), ["DISCONNECTED", "DESTROYING"]);
    assert.ok(!o.states.includes("QOS_ACK_REMOTE"));
    logged(o, "s: a handler threw Error: scenario:");
  });
}

both("DISCONNECT_ME from onRx on a response that came in one segment: no EOM, no QOS result after DISCONNECTED", async (run) => {
  const server = await serve((_r, s) => s.write(response("200 OK", "all at once")));
  const o = await run(policyFor(server, { http_url: "/x" }), { rxReturn: Ret.DISCONNECT_ME, until: has("DISCONNECTED") });
  assert.deepEqual(o.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED"]);
  assert.deepEqual(o.after, []);
  assert.equal(o.eoms, 0);
  assert.equal(o.timersPending, 0);
});

both("DISCONNECT_ME from CONNECTED: DISCONNECTED, nothing sent, nothing more", async (run) => {
  const server = await serve((_r, s) => s.write(response("200 OK", "hi")));
  const o = await run(policyFor(server, { http_url: "/x" }), {
    answer: (s) => (s === "CONNECTED" ? Ret.DISCONNECT_ME : undefined), until: has("DISCONNECTED"),
  });
  assert.deepEqual(o.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED"]);
  assert.deepEqual(o.after, []);
  assert.equal(o.timersPending, 0);
});

// ---- 6, 7: the request body ----

both("requestTx() from inside onTx (lws' 'more to come') keeps the body in order", async (run) => {
  const body = patternBytes(20000, 11);
  const server = await serve((r, s) => s.write(response("200 OK", createHash("sha256").update(r.body).digest("hex"))));
  const o = await run(policyFor(server, { http_url: "/x", http_method: "POST" }), {
    send: body, reentrantTx: 7, until: has("QOS_ACK_REMOTE"),
  });
  assert.deepEqual(o.states, OK);
  assert.deepEqual(new Uint8Array(server.requests[0]!.body), body);
});

both("onTx giving more than requestTxLength() announced is refused: no smuggled request, no retry", async (run) => {
  const server = await serve((_r, s) => s.write(response("200 OK", "ok")));
  const o = await run(policyFor(server, { http_url: "/x", http_method: "POST" }), {
    send: new TextEncoder().encode("hello" + "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n".padEnd(47, " ")), announce: 5, txWhole: true,
    until: has("ALL_RETRIES_FAILED"),
  });
  assert.deepEqual(o.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "DISCONNECTED", "ALL_RETRIES_FAILED"]);
  assert.equal(server.requests.length, 0, "no complete request, let alone a second one");
  logged(o, "onTx gave 52 bytes, more than the 5 asked for");
});

both("onTx ending the body short of the announced length fails the transaction at once", async (run) => {
  const server = await serve((_r, s) => s.write(response("200 OK", "ok")));
  const o = await run(policyFor(server, { http_url: "/x", http_method: "POST" }), {
    send: new TextEncoder().encode("hello"), announce: 52, until: has("ALL_RETRIES_FAILED"),
  });
  assert.deepEqual(o.states.slice(-2), ["DISCONNECTED", "ALL_RETRIES_FAILED"]);
  assert.equal(server.requests.length, 0);
  logged(o, "onTx ended the body after 5 of the 52 bytes");
});

// ---- 11, 12, 13: captured headers, IPv6, redirect authority ----

both("a captured response header goes out again with the next request (as lws), bounded like set values", async (run) => {
  let n = 0;
  const server = await serve((_r, s) => {
    n++;
    const ctype = n === 1 ? "text/x-first" : "y".repeat(5000);
    s.write(response("200 OK", "ok", [`Content-Type: ${ctype}`]));
  });
  const o = await run(policyFor(server, { http_url: "/x", metadata: [{ ctype: "content-type:" }] }), {
    transactions: 3, until: (s) => s.filter((x) => x === "QOS_ACK_REMOTE").length === 3,
  });
  assert.equal(server.requests.length, 3);
  assert.equal(server.header(0, "content-type"), undefined);
  assert.equal(server.header(1, "content-type"), "text/x-first");
  assert.equal(server.header(2, "content-type"), undefined, "a 5000-character value is not kept, so not sent back");
  logged(o, 'response header "content-type" not kept in metadata "ctype": it is over 4096 characters');
});

both("an IPv6 literal endpoint sends Host: [::1]:port", async (run) => {
  const server = await serve((_r, s) => s.write(response("200 OK", "v6")), "::1");
  const o = await run(policyFor(server, { http_url: "/x" }, "::1"), { until: has("QOS_ACK_REMOTE") });
  assert.deepEqual(o.states, OK);
  assert.equal(server.header(0, "host"), `[::1]:${server.port}`);
});

both("a redirect whose authority carries userinfo is not followed", async (run) => {
  let port = 0;
  const server = await serve((_r, s) => s.write(response("302 Found", "", [`Location: http://127.0.0.1:${port}@evil.example/x`])));
  port = server.port;
  const o = await run(policyFor(server, { http_url: "/x", allow_redirects: true }), { until: has("QOS_NACK_REMOTE") });
  assert.deepEqual(o.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_NACK_REMOTE"]);
  assert.equal(server.requests.length, 1);
  logged(o, "not followed: it carries userinfo");
});

// ---- 8. delays past setTimeout's 2^31 - 1 ms ----

both("timeout_ms of 2^32 - 1 ms does not fire at once: the response still arrives first", async (run) => {
  const server = await serve((_r, s) => void setTimeout(() => s.write(response("200 OK", "late but fine")), 150));
  const o = await run(policyFor(server, { http_url: "/x", timeout_ms: 4294967295 }), {
    startTimeout: true, until: (s) => s.includes("QOS_ACK_REMOTE") || s.includes("TIMEOUT"),
  });
  assert.deepEqual(o.states, OK);
});
