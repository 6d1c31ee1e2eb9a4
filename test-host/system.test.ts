// The system state machine, its gate on the streams, and the blob API, on
// Node and on the XS engine: same cases, same results.

import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { compilePolicy } from "../tools/policy/compile.js";
import { runSystemCases, SYSTEM_CASES_POLICY } from "./support/system-cases.js";
import { bundleForXS } from "../hosts/xsnap/bundle.js";
import { runInXS } from "../hosts/xsnap/xs-worker.js";
import { base64Encode } from "../src/util/base64.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const compiled = compilePolicy(SYSTEM_CASES_POLICY);
assert.ok(compiled.binary, JSON.stringify(compiled.diagnostics));
const policy = compiled.binary;
const onNode = runSystemCases(policy);

for (const r of onNode) {
  test(`system: ${r.name}`, () => assert.ok(r.ok, r.detail));
}

test("system: the same cases on XS give the same results", async () => {
  const bundle = await bundleForXS(path.join(here, "support/system-cases-xs-entry.js"), { globalName: "lib" });
  const { messages } = await runInXS([bundle, `send(JSON.stringify(lib.runSystemCases(lib.base64Decode("${base64Encode(policy)}"))))`]);
  assert.deepEqual(JSON.parse(messages[messages.length - 1]!), onNode);
});
