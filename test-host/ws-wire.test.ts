// The WebSocket wire codec (src/wire/ws) and SHA-1: the byte fixtures on
// Node and on the real XS engine (same results required).

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bundleForXS } from "../hosts/xsnap/bundle.js";
import { runInXS } from "../hosts/xsnap/xs-worker.js";
import { runWsCases } from "./support/ws-cases.js";
import { sha1 } from "../src/util/sha1.js";
import { prng } from "./support/prng.js";

const here = path.dirname(fileURLToPath(import.meta.url));

test("fixtures: every case passes on Node", () => {
  const results = runWsCases();
  const failed = results.filter((r) => !r.ok);
  assert.deepEqual(failed, [], failed.map((r) => `${r.name}: ${r.detail}`).join("\n"));
  assert.ok(results.length >= 250, `only ${results.length} cases`);
});

test("fixtures: XS gives the same results as Node", async () => {
  const bundle = await bundleForXS(path.join(here, "support", "ws-cases.js"), { globalName: "lib", forbidGlobals: ["console"] });
  const { messages } = await runInXS([bundle, "send(JSON.stringify(lib.runWsCases()))"]);
  assert.deepEqual(JSON.parse(messages[0]!), runWsCases());
});

test("sha1 agrees with node:crypto at every length up to 300 bytes", () => {
  const rnd = prng(11);
  for (let n = 0; n <= 300; n++) {
    const data = Uint8Array.from({ length: n }, () => rnd() & 255);
    assert.equal(Buffer.from(sha1(data)).toString("hex"), createHash("sha1").update(data).digest("hex"), `length ${n}`);
  }
});
