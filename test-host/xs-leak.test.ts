// 1,000 create / connect / destroy cycles with the runtime INSIDE XS (xsnap,
// the real bundle: src/ss, src/protocols/h1, src/policy, hosts/xsnap/xs-host)
// against a loopback http/1.1 server: once the streams are gone, the XS heap
// is back to its starting size within 1 KB on the ESP32 (64 slots of 16
// bytes; chunks counted too).
//
// Each cycle creates a stream and asks for a transaction (requestTx), which
// connects; the stream is then destroyed at one of three points, in turn:
// while CONNECTING (the socket still opening), from onRx (the response body
// arriving: DESTROY_ME), or from a 0 ms timer after QOS_ACK_REMOTE (the
// connection kept alive). Cycles run in batches of 20 concurrent streams, each batch
// started by one message crank (xs-footprint-harness.ts); the heap is read
// after gc() before and after, with messages rather than evaluated scripts
// (xsnap keeps a slot for every script it evaluates).
//
// The starting figure is taken after two warm-up batches: the first
// connection's one-time costs, and the last stream and connection XS keeps
// alive (an XS engine trait: the most recent instance of a class with
// private methods stays reachable until the next one is made), are in it.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  FootprintWorker, footprintBundles, startLoopbackServer, loopbackPolicy, chunkBytes, esp32Bytes,
  SLOT_BYTES_ESP32, type LoopbackServer, type Heap,
} from "./support/xs-footprint.js";
import { BATCH_DONE } from "./support/xs-footprint-harness.js";

const CYCLES = 1000;
const BATCH = 20;
const WARMUP_BATCHES = 2;
/** 1 KB on the ESP32. */
const MAX_GROWTH_SLOTS = 1024 / SLOT_BYTES_ESP32;
const MAX_GROWTH_BYTES = 1024;

let server: LoopbackServer;

before(async () => {
  server = await startLoopbackServer();
});

after(() => server?.close());

interface Stats {
  cycles: number;
  failures: number;
  streams: number;
  host: { streams: number; timers: number };
}

test(`${CYCLES} create/connect/destroy cycles in XS leave the heap where it was (<= ${MAX_GROWTH_SLOTS} slots, <= 1 KB on the ESP32)`, async (t) => {
  const started = performance.now();
  const { runtime, harness } = await footprintBundles();
  const w = await FootprintWorker.start();
  try {
    await w.setPolicyBytes(loopbackPolicy(server.port));
    await w.evaluate(harness);
    await w.evaluate(runtime);
    await w.boot(true); // strict: an illegal state transition throws, and the crank fails the test

    const runBatch = async () => {
      const done = w.next((c) => c === BATCH_DONE, 20000);
      await w.post("b", BATCH, "cycle");
      await done;
      await w.bridge.idle();
    };
    for (let i = 0; i < WARMUP_BATCHES; i++) await runBatch();
    const start: Heap = await w.heap();
    const served = server.requests();

    const figures: number[] = [];
    for (let i = 0; i < CYCLES / BATCH; i++) {
      await runBatch();
      if (i % 10 === 9) figures.push((await w.heap()).slots - start.slots);
    }
    const end: Heap = await w.heap();
    await w.post("x"); // the connection the pool keeps for a next stream (it held one at the start too)
    const stats = await w.stats<Stats>();

    const growth = w.delta(start, end);
    t.diagnostic(`start ${start.slots} slots / ${start.bytes} snapshot bytes; after ${CYCLES} cycles: ${growth.slots >= 0 ? "+" : ""}${growth.slots} slots, ` +
      `${chunkBytes(growth) >= 0 ? "+" : ""}${chunkBytes(growth)} chunk bytes (ESP32: ${esp32Bytes(growth)} bytes); ` +
      `every 200 cycles: ${figures.join(", ")}; ${server.requests() - served} requests served; ${Math.round(performance.now() - started)} ms`);

    // every cycle ran, none failed, and nothing of them is left in XS or in the bridge
    assert.equal(stats.cycles, (WARMUP_BATCHES + CYCLES / BATCH) * BATCH);
    assert.equal(stats.failures, 0, w.logs.slice(-5).join(" | "));
    assert.equal(stats.streams, 0, "streams still in the SecureStreams context");
    assert.deepEqual(stats.host, { streams: 0, timers: 0 }, "connections or timers XSBridgeHost still tracks");
    assert.deepEqual(w.bridge.pending, { connections: 0, timers: 0 }, "connections or timers the bridge still holds");
    // every cycle but those destroyed while connecting (i % 3 == 0 in a batch) sent its request
    const perBatch = BATCH - Math.ceil(BATCH / 3);
    assert.equal(server.requests() - served, (CYCLES / BATCH) * perBatch, "requests the server answered");

    assert.ok(growth.slots <= MAX_GROWTH_SLOTS, `heap grew by ${growth.slots} slots over ${CYCLES} cycles (every 200: ${figures.join(", ")})`);
    assert.ok(esp32Bytes(growth) <= MAX_GROWTH_BYTES, `heap grew by ${esp32Bytes(growth)} bytes (ESP32: slots at 16 bytes + ${chunkBytes(growth)} chunk bytes)`);
  } finally {
    await w.close();
  }
});
