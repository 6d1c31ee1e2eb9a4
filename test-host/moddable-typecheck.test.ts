// The Moddable host (hosts/moddable) type-checked against the npm package
// @moddable/typings, with or without the Moddable SDK: with it (MODDABLE),
// mcsim.test.ts also builds it with mcconfig, whose tsc checks it against
// the SDK's own typings, and runs it. hosts/moddable/tsconfig.json says what
// gets checked here, and how.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

// This file runs from dist/test-host/.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const tsc = path.join(repoRoot, "node_modules/typescript/bin/tsc");

test("hosts/moddable type-checks against @moddable/typings", () => {
  const r = spawnSync(process.execPath, [tsc, "-p", "hosts/moddable/tsconfig.json", "--noEmit"], {
    cwd: repoRoot,
    encoding: "utf8",
  });
  assert.equal(r.error, undefined, `could not run ${tsc}: ${r.error?.message}`);
  assert.equal(r.status, 0, `tsc -p hosts/moddable/tsconfig.json failed:\n${r.stdout}${r.stderr}`);
});
