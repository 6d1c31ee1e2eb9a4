// The Secure Streams state machine on Node and on the XS engine: same cases,
// same results.

import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { compilePolicy } from "../tools/policy/compile.js";
import { runSSCases, SS_CASES_POLICY } from "./support/ss-cases.js";
import { bundleForXS } from "../hosts/xsnap/bundle.js";
import { runInXS } from "../hosts/xsnap/xs-worker.js";
import { base64Encode } from "../src/util/base64.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const policy = compilePolicy(SS_CASES_POLICY).binary!;
const onNode = runSSCases(policy);

for (const r of onNode) {
  test(`ss: ${r.name}`, () => assert.ok(r.ok, r.detail));
}

test("ss: the same cases on XS give the same results", async () => {
  const bundle = await bundleForXS(path.join(here, "support/ss-cases-xs-entry.js"), { globalName: "lib" });
  const { messages } = await runInXS([bundle, `send(JSON.stringify(lib.runSSCases(lib.base64Decode("${base64Encode(policy)}"))))`]);
  assert.deepEqual(JSON.parse(messages[messages.length - 1]!), onNode);
});
