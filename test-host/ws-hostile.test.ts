// The ws binding against malformed peers: a raw TCP server that answers the
// upgrade (correctly or not) and then sends frames RFC 6455 forbids. Every
// violation must end the connection with a close code where a WebSocket
// connection exists, a reason in the log and a state change, never an
// uncaught exception (which would fail this test file).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { compile } from "./support/run-stream.js";
import { startRawPeer, switching, closeCodeIn, type RawScript } from "./support/ws-servers.js";
import { runWs, has } from "./support/ws-run.js";
import { prng } from "./support/prng.js";

const b = (...parts: (number[] | string)[]) => Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p))));

interface Case {
  name: string;
  /** The server's bytes after the upgrade request (head included). */
  script: RawScript;
  /** Close code we must send back; undefined: no close frame (no WebSocket connection, or TCP gone). */
  code?: number;
  /** The context's responseTimeoutMs. */
  responseTimeoutMs?: number;
  states: string[];
  log: string;
}

const ok = (frames: Buffer, extraHead = ""): RawScript => (_, accept) => ({ reply: b(switching(accept, extraHead), frames as unknown as number[]) });
const CONNECTED_THEN_DOWN = ["CREATING", "CONNECTING", "CONNECTED", "DISCONNECTED"];
const REFUSED = ["CREATING", "CONNECTING", "UNREACHABLE", "ALL_RETRIES_FAILED"];

const CASES: Case[] = [
  { name: "a masked frame", script: ok(b([0x81, 0x82, 1, 2, 3, 4, 0x61 ^ 1, 0x62 ^ 2])), code: 1002, states: CONNECTED_THEN_DOWN, log: "masked frame" },
  { name: "RSV1 without an extension", script: ok(b([0xc1, 0x01], "a")), code: 1002, states: CONNECTED_THEN_DOWN, log: "reserved bits" },
  { name: "a reserved opcode", script: ok(b([0x85, 0x00])), code: 1002, states: CONNECTED_THEN_DOWN, log: "reserved data opcode" },
  { name: "a fragmented ping", script: ok(b([0x09, 0x00])), code: 1002, states: CONNECTED_THEN_DOWN, log: "fragmented control" },
  { name: "a 126-byte ping", script: ok(b([0x89, 126, 0, 126], "p".repeat(126))), code: 1002, states: CONNECTED_THEN_DOWN, log: "control frame of 126" },
  { name: "a continuation with nothing to continue", script: ok(b([0x80, 0x01], "a")), code: 1002, states: CONNECTED_THEN_DOWN, log: "no message to continue" },
  { name: "a new message inside a fragmented one", script: ok(b([0x01, 1], "a", [0x81, 1], "b")), code: 1002, states: CONNECTED_THEN_DOWN, log: "before the previous" },
  { name: "text that is not UTF-8", script: ok(b([0x81, 0x02, 0xc3, 0x28])), code: 1007, states: CONNECTED_THEN_DOWN, log: "not UTF-8" },
  { name: "a close code that may not be sent", script: ok(b([0x88, 0x02, 0x03, 0xed])), code: 1002, states: CONNECTED_THEN_DOWN, log: "close code 1005" },
  { name: "a close frame with a 1-byte payload", script: ok(b([0x88, 0x01, 0x03])), code: 1002, states: CONNECTED_THEN_DOWN, log: "1-byte payload" },
  { name: "a 2^63-byte frame", script: ok(b([0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])), code: 1009, states: CONNECTED_THEN_DOWN, log: "over the 1048576-byte limit" },
  { name: "a frame cut short by the TCP close", script: (_, accept) => ({ reply: b(switching(accept), [0x82, 10], "abc"), end: true }), states: CONNECTED_THEN_DOWN, log: "without a close frame (1006)" },
  { name: "a wrong Sec-WebSocket-Accept", script: () => ({ reply: b(switching("d3Jvbmc=")) }), states: REFUSED, log: "does not match the key" },
  { name: "200 instead of 101", script: () => ({ reply: b("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi") }), states: REFUSED, log: "HTTP 200 OK instead of 101" },
  { name: "an extension nobody offered", script: ok(b([]), "Sec-WebSocket-Extensions: permessage-deflate\r\n"), states: REFUSED, log: "extension" },
  { name: "no HTTP at all", script: () => ({ reply: b("\x00\x01garbage\r\n\r\n") }), states: REFUSED, log: "malformed answer to the upgrade request" },
  { name: "a close before any answer", script: () => ({ reply: b([]), end: true }), states: REFUSED, log: "before the handshake was done" },
  { name: "no answer at all", script: () => ({ reply: b([]) }), states: REFUSED, log: "no answer to the upgrade request within 300 ms", responseTimeoutMs: 300 },
  { name: "a head that never ends", script: () => ({ reply: b("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n") }), states: REFUSED, log: "within 300 ms", responseTimeoutMs: 300 },
];

describe("ws against malformed peers", { concurrency: true }, () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const peer = await startRawPeer(c.script);
      try {
        const policy = compile({ s: [{ bad: { endpoint: "127.0.0.1", port: peer.port, protocol: "ws", http_url: "/", ws_binary: true } }] });
        const closed = peer.nextClose();
        const r = await runWs(policy, "bad", { responseTimeoutMs: c.responseTimeoutMs, until: (r) => has(r, "DISCONNECTED") || has(r, "ALL_RETRIES_FAILED") });
        assert.deepEqual(r.states, c.states);
        assert.ok(r.logs.some((l) => l.includes(c.log)), `log has "${c.log}": ${r.logs.join(" | ")}`);
        if (c.code !== undefined) assert.ok(r.logs.some((l) => l.includes(`closed with ${c.code}`)), r.logs.join(" | "));
        assert.equal(closeCodeIn(await closed), c.code, "the close code sent back");
      } finally {
        peer.close();
      }
    });
  }

  it("40 peers sending random bytes after the 101, then closing: each run ends DISCONNECTED, never an exception", async () => {
    const rnd = prng(0x3e7);
    const frames = Array.from({ length: 40 }, (_, i) => {
      // half pure noise, half a valid frame header with noise after it
      const noise = Array.from({ length: 1 + (rnd() % 200) }, () => rnd() & 255);
      return i % 2 ? noise : [0x82, 0x05, 1, 2, 3, 4, 5, ...noise];
    });
    let index = 0;
    const peer = await startRawPeer((_, accept) => ({ reply: b(switching(accept), frames[index++ % frames.length]!), end: true }));
    try {
      const policy = compile({ s: [{ st: { endpoint: "127.0.0.1", port: peer.port, protocol: "ws", http_url: "/", ws_binary: true } }] });
      for (let i = 0; i < frames.length; i++) {
        const r = await runWs(policy, "st", { until: (r) => has(r, "DISCONNECTED") });
        assert.deepEqual(r.states, CONNECTED_THEN_DOWN, `peer ${i}`);
        assert.ok(r.logs.length > 0, `peer ${i}: a reason is logged`);
        assert.ok(!r.logs.some((l) => l.includes("BUG")), r.logs.join(" | "));
      }
    } finally {
      peer.close();
    }
  });

  it("frames in the same TCP segment as the 101 head are read as frames", async () => {
    const peer = await startRawPeer(ok(b([0x82, 0x03], "abc", [0x81, 0x02], "de", [0x88, 0x02, 0x03, 0xe8])));
    try {
      const policy = compile({ s: [{ st: { endpoint: "127.0.0.1", port: peer.port, protocol: "ws", http_url: "/" } }] });
      const closed = peer.nextClose();
      const r = await runWs(policy, "st", { until: (r) => has(r, "DISCONNECTED") });
      assert.deepEqual(r.messages.map(String), ["abc", "de"]);
      assert.deepEqual(r.states, CONNECTED_THEN_DOWN);
      assert.equal(closeCodeIn(await closed), 1000, "the close code echoed");
    } finally {
      peer.close();
    }
  });
});
