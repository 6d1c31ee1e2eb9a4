// The published schema and docs keep step with the key table.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { policySchema, STREAMTYPE_EXTRA_KEYS } from "../tools/policy/schema.js";
import { STREAMTYPE_KEYS } from "../src/policy/keys.js";
import { repoRoot } from "./support/corpus.js";

test("policies/policy.schema.json is the schema the compiler uses (npm run gen:schema)", () => {
  const file = JSON.parse(readFileSync(path.join(repoRoot, "policies/policy.schema.json"), "utf8"));
  assert.deepEqual(file, policySchema());
});

test("docs/policy.md documents every streamtype key", () => {
  const doc = readFileSync(path.join(repoRoot, "docs/policy.md"), "utf8");
  const missing = [...STREAMTYPE_KEYS.map((k) => k.name), ...STREAMTYPE_EXTRA_KEYS]
    .filter((key) => !doc.includes(`| \`${key}\``));
  assert.deepEqual(missing, []);
});
