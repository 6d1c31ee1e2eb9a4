// The MQTT 3.1.1 wire codec (src/wire/mqtt): byte fixtures for every packet
// type, malformed input, topic rules and a fuzz, on Node and on the real XS
// engine (same results required).

import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bundleForXS } from "../hosts/xsnap/bundle.js";
import { runInXS } from "../hosts/xsnap/xs-worker.js";
import { runMqttCases } from "./support/mqtt-cases.js";

const here = path.dirname(fileURLToPath(import.meta.url));

test("fixtures and fuzz: every case passes on Node", () => {
  const results = runMqttCases();
  const failed = results.filter((r) => !r.ok);
  assert.deepEqual(failed, [], failed.map((r) => `${r.name}: ${r.detail}`).join("\n"));
  assert.ok(results.length >= 250, `only ${results.length} cases`);
});

test("fixtures and fuzz: XS gives the same results as Node", async () => {
  const bundle = await bundleForXS(path.join(here, "support", "mqtt-cases.js"), { globalName: "lib", forbidGlobals: ["console"] });
  const { messages } = await runInXS([bundle, "send(JSON.stringify(lib.runMqttCases()))"]);
  assert.deepEqual(JSON.parse(messages[0]!), runMqttCases());
});
