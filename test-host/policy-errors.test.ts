// Every malformed policy gets exactly the errors a person can act on:
// file:line:col, JSON pointer, what was expected and what was found.

import { test } from "node:test";
import assert from "node:assert/strict";
import { compilePolicy } from "../tools/policy/compile.js";
import { formatDiagnostic } from "../tools/policy/diagnostics.js";
import { BAD_POLICIES } from "./fixtures/bad-policies.js";

test("the table holds at least 30 malformed policies", () => {
  assert.ok(BAD_POLICIES.length >= 30, `${BAD_POLICIES.length} cases`);
});

for (const c of BAD_POLICIES) {
  test(`malformed policy: ${c.name}`, () => {
    const result = compilePolicy(c.text);
    assert.equal(result.binary, undefined, "nothing is compiled");
    assert.deepEqual(result.diagnostics.map((d) => formatDiagnostic("p.json", d)), c.errors);
  });
}

test("a policy with many errors reports all of them in one run", () => {
  const many = BAD_POLICIES.find((c) => c.name === "several errors at once")!;
  assert.ok(many.errors.length >= 5);
});

test("a policy over 1 MiB is refused before it is parsed", () => {
  const result = compilePolicy(`{"release": "${"x".repeat(1024 * 1024)}"}`);
  assert.equal(result.binary, undefined);
  assert.deepEqual(result.diagnostics.map((d) => formatDiagnostic("p.json", d)), ["p.json:1:1: /: the policy is 1048591 characters; the limit is 1048576"]);
});
