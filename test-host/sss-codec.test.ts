// The serialized Secure Streams codec against lws' captured bytes, on Node
// and on the XS engine: same cases, same results.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runSssCases } from "./support/sss-cases.js";
import { bundleForXS } from "../hosts/xsnap/bundle.js";
import { runInXS } from "../hosts/xsnap/xs-worker.js";

const here = path.dirname(fileURLToPath(import.meta.url));
// dist/test-host → the source tree's fixtures
const fixtures = readFileSync(path.join(here, "../../test-host/fixtures/sss-lws.txt"), "utf8");
const onNode = runSssCases(fixtures);

for (const r of onNode) {
  test(`sss: ${r.name}`, () => assert.ok(r.ok, r.detail));
}

test("sss: the same cases on XS give the same results", async () => {
  const bundle = await bundleForXS(path.join(here, "support/sss-cases-xs-entry.js"), { globalName: "lib" });
  const { messages } = await runInXS([bundle, `send(JSON.stringify(lib.runSssCases(${JSON.stringify(fixtures)})))`]);
  assert.deepEqual(JSON.parse(messages[messages.length - 1]!), onNode);
});
