// The XS bridge (hosts/xsnap/bridge.ts + xs-host.ts) on its own: XS code on
// XSBridgeHost, served by a NodeHost in this process. What it must
// guarantee: nothing of a stream reaches XS after XS closed it, no timer
// fires after XS cleared it, timers fire in due order, host services work
// with raw bytes both ways, and a crank that throws fails loudly.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { AddressInfo } from "node:net";
import { bundleForXS } from "../hosts/xsnap/bundle.js";
import { XSBridge, type XSBridgeOptions } from "../hosts/xsnap/bridge.js";

const entry = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "xs-bridge-cases.js");
let bundle: string;
let flood: net.Server;
let floodPort: number;
let sink: net.Server;
let sinkPort: number;

before(async () => {
  bundle = await bundleForXS(entry, { globalName: "cases" });
  // Writes 8 MB to whoever connects, as fast as the client reads.
  flood = net.createServer((socket) => {
    socket.on("error", () => {});
    const piece = new Uint8Array(65536).fill(0x5a);
    let left = 128;
    const pump = () => {
      while (left > 0) {
        left--;
        if (!socket.write(piece)) return void socket.once("drain", pump);
      }
      socket.end();
    };
    pump();
  });
  await new Promise<void>((resolve) => flood.listen(0, "127.0.0.1", resolve));
  floodPort = (flood.address() as AddressInfo).port;
  // Reads nothing for 300 ms, then everything.
  sink = net.createServer((socket) => {
    socket.on("error", () => {});
    socket.pause();
    setTimeout(() => socket.resume(), 300);
  });
  await new Promise<void>((resolve) => sink.listen(0, "127.0.0.1", resolve));
  sinkPort = (sink.address() as AddressInfo).port;
});

after(() => {
  flood?.close();
  sink?.close();
});

/** Runs `script` in a fresh bridge and resolves with the first report from XS. */
async function run(script: string, options: XSBridgeOptions = {}): Promise<{ report: any; bridge: XSBridge; logs: string[] }> {
  const logs: string[] = [];
  let got!: (r: unknown) => void;
  let failed!: (e: Error) => void;
  const report = new Promise<unknown>((resolve, reject) => ((got = resolve), (failed = reject)));
  report.catch(() => {});
  const bridge = await XSBridge.start(bundle, {
    log: (m) => logs.push(m),
    onMessage: (bytes) => void got(JSON.parse(new TextDecoder().decode(bytes))),
    onFailure: (e) => failed(e),
    ...options,
  });
  try {
    await bridge.evaluate(script);
    let limit: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise((_, reject) => (limit = setTimeout(() => reject(new Error("no report in time")), 10000)));
    const r = await Promise.race([report, timeout]).finally(() => clearTimeout(limit));
    await bridge.idle();
    return { report: r, bridge, logs };
  } finally {
    await bridge.close();
  }
}

test("nothing of a stream reaches XS after XS closed it, even what was already queued", async () => {
  const { report, bridge } = await run(`cases.closeMidStream(${floodPort}, 100)`);
  assert.equal(report.error, undefined, report.error);
  assert.equal(report.datas, 1);
  assert.equal(report.dataEventsAfterClose, 0);
  assert.deepEqual(report.pending, { streams: 0, timers: 0 });
  assert.ok(bridge.dropped > 0, "data was queued while XS was busy, and dropped at the close");
  assert.deepEqual(bridge.pending, { connections: 0, timers: 0 });
});

test("write() says when the parent's socket buffer is full, and onWritable follows when it drains", async () => {
  const { report, bridge } = await run(`cases.writeUntilFull(${sinkPort})`);
  assert.equal(report.error, undefined, report.error);
  assert.ok(report.refusedAt > 0, `refused after ${report.refusedAt} bytes`);
  assert.equal(report.writable, true);
  assert.deepEqual(report.pending, { streams: 0, timers: 0 });
  assert.deepEqual(bridge.pending, { connections: 0, timers: 0 });
});

test("a timer XS cleared never fires, even if the parent had already queued it", async () => {
  const { report, bridge } = await run(`cases.clearFiredTimer()`);
  assert.equal(report.ran, false);
  assert.deepEqual(report.pending, { streams: 0, timers: 0 });
  assert.equal(bridge.dropped, 1);
});

test("timers fire in due order", async () => {
  const { report } = await run(`cases.timerOrder()`);
  assert.deepEqual(report.fired, [0, 100, 200, 300, 400]);
});

test("host services: blobs as raw bytes, parent errors thrown in XS, random, now, log", async () => {
  const { report, logs } = await run(`cases.services()`);
  assert.equal(report.same, true, "a 4000-byte blob comes back intact");
  assert.equal(report.missing, true);
  assert.equal(report.deleted, true);
  assert.match(report.refused, /^RangeError: bad blob name "bad\/name"/);
  for (const r of report.randoms) assert.ok(r >= 0 && r < 1, String(r));
  assert.notEqual(report.randoms[0], report.randoms[1]);
  assert.ok(report.elapsed >= 1.5 && report.elapsed < 1000, `now() advanced ${report.elapsed} ms over a 2 ms spin`);
  assert.ok(logs.includes("hello from XS"), logs.join("\n"));
});

test("a handler that throws fails the bridge loudly and releases its connections", async () => {
  let failure: Error | undefined;
  const logs: string[] = [];
  const bridge = await XSBridge.start(bundle, { log: (m) => logs.push(m), onFailure: (e) => (failure = e) });
  try {
    await bridge.evaluate(`cases.throwInHandler(${floodPort})`);
    await new Promise((r) => setTimeout(r, 300));
    await bridge.idle();
    assert.match(String(failure), /crank delivering connected failed: .*handler bug/);
    assert.equal(bridge.failure, failure);
    assert.deepEqual(bridge.pending, { connections: 0, timers: 0 });
    await assert.rejects(bridge.evaluate("1"), /handler bug/);
  } finally {
    await bridge.close();
  }
});
