// The README's commands as a reader pastes them: every `sh` block in order,
// each as one bash script (-euo pipefail), in a copy of the repository (so its
// builds and files stay there) with this checkout's node_modules and dist, as
// `npm install` leaves them. Blocks marked `sh setup` or `sh device` are not
// run (the README says why); any other mark fails, so that a typo cannot skip
// a block. Then `npm start`, the other half of the set-up, in the same copy.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { repoRoot } from "./support/corpus.js";
import { readmeBlocks } from "./support/readme.js";

const NOT_RUN = new Set(["setup", "device"]);
const SKIPPED_IN_COPY = new Set(["node_modules", ".git", "build"]);

interface Run { status: number | null; stdout: string; stderr: string }

/** A user's shell environment: without the npm_* variables `npm test` sets for its scripts. */
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith("npm_")));

/** Runs a command without blocking this process. The kill only guards against a hang. */
function run(file: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env, timeout: 180_000, killSignal: "SIGKILL", maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = (error as { code?: unknown } | null)?.code;
      resolve({ status: error ? (typeof code === "number" ? code : null) : 0, stdout, stderr });
    });
  });
}

test("every sh block of the README runs, in order; then npm start", async (t) => {
  const blocks = readmeBlocks().filter((b) => b.info.split(/\s+/)[0] === "sh");
  for (const b of blocks) {
    const mark = b.info.split(/\s+/).slice(1).join(" ");
    assert.ok(mark === "" || NOT_RUN.has(mark), `README.md:${b.line}: unknown mark "sh ${mark}" (known: ${[...NOT_RUN].join(", ")})`);
  }
  const runnable = blocks.filter((b) => b.info === "sh");
  assert.ok(runnable.length >= 2, "the README has commands to run");

  const copy = path.join(mkdtempSync(path.join(tmpdir(), "ss-readme-")), "repo");
  cpSync(repoRoot, copy, { recursive: true, filter: (src) => !SKIPPED_IN_COPY.has(path.relative(repoRoot, src)) });
  symlinkSync(path.join(repoRoot, "node_modules"), path.join(copy, "node_modules"));
  t.after(async () => {
    // servers a failed block left up (demo:up before its demo:down)
    await run(process.execPath, ["dist/hosts/node/demo.js", "down"], copy);
    rmSync(path.dirname(copy), { recursive: true, force: true });
  });

  for (const b of runnable) {
    const r = await run("bash", ["-euo", "pipefail", "-c", b.text], copy);
    assert.equal(r.status, 0, `README.md:${b.line}: the block failed (exit ${r.status}):\n${b.text}\n--- output\n${r.stdout}${r.stderr}`);
    t.diagnostic(`README.md:${b.line}: ok (${b.text.split("\n").length} lines)`);
  }

  const start = await run("npm", ["start"], copy);
  assert.equal(start.status, 0, start.stdout + start.stderr);
  assert.match(start.stdout, /demo done: every stream behaved as its policy says\n$/);
});
