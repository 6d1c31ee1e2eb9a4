// The HTTP/2 wire codec (src/wire/h2): RFC 7541 Appendix C byte for byte,
// frame fixtures and fuzz, on Node and on the real XS engine (same results
// required).

import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bundleForXS } from "../hosts/xsnap/bundle.js";
import { runInXS } from "../hosts/xsnap/xs-worker.js";
import { runH2Cases } from "./support/h2-cases.js";

const here = path.dirname(fileURLToPath(import.meta.url));

test("fixtures: every case passes on Node", () => {
  const results = runH2Cases();
  const failed = results.filter((r) => !r.ok);
  assert.deepEqual(failed, [], failed.map((r) => `${r.name}: ${r.detail}`).join("\n"));
  assert.ok(results.length >= 60, `only ${results.length} cases`);
});

test("fixtures: XS gives the same results as Node", async () => {
  const bundle = await bundleForXS(path.join(here, "support", "h2-cases.js"), { globalName: "lib", forbidGlobals: ["console"] });
  const { messages } = await runInXS([bundle, "send(JSON.stringify(lib.runH2Cases()))"]);
  assert.deepEqual(JSON.parse(messages[0]!), runH2Cases());
});
