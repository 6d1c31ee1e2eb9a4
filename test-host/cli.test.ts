// ss-policy as a user runs it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { repoRoot } from "./support/corpus.js";

const cli = path.join(repoRoot, "dist/tools/policy/cli.js");
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", cwd: repoRoot });
const tmp = mkdtempSync(path.join(tmpdir(), "ss-policy-"));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

test("compile writes the binary and summarises it; inspect prints canonical JSON", () => {
  const out = path.join(tmp, "demo.ssp");
  const c = run("compile", "policies/demo.json", "-o", out);
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, /streamtypes {2}7: demo_get, demo_h2, demo_mqtt, demo_post, demo_tls, demo_untrusted, demo_ws/);
  assert.match(c.stdout, /certs {8}2: demo_ca \(\d+ bytes DER\), isrg_root_x1 \(1391 bytes DER\)/);
  assert.match(c.stdout, /\d+ bytes of minified JSON -> \d+ bytes binary/);
  const i = run("inspect", out);
  assert.equal(i.status, 0, i.stderr);
  const canonical = JSON.parse(i.stdout);
  assert.deepEqual(Object.keys(canonical.s[0]), ["demo_get"]);
  // the printed JSON compiles back to the same bytes
  const again = path.join(tmp, "again.json");
  writeFileSync(again, i.stdout);
  assert.equal(run("compile", again, "-o", `${out}2`).status, 0);
  assert.deepEqual(readFileSync(`${out}2`), readFileSync(out));
});

test("check reports every error and exits 1; nothing is written", () => {
  const bad = path.join(tmp, "bad.json");
  writeFileSync(bad, `{"s": [{"a": {"port": "4443x", "tls": 1}}]}`);
  const r = run("check", bad);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, [
    `${bad}:1:23: /s/0/a/port: expected an integer 1..65535, got "4443x"`,
    `${bad}:1:39: /s/0/a/tls: expected true or false, got 1`,
    `${bad}: 2 errors`,
    "",
  ].join("\n"));
  const c = run("compile", bad, "-o", path.join(tmp, "never.ssp"));
  assert.equal(c.status, 1);
  assert.throws(() => readFileSync(path.join(tmp, "never.ssp")));
});

test("inspect refuses a damaged binary", () => {
  const out = path.join(tmp, "d.ssp");
  assert.equal(run("compile", "policies/demo.json", "-o", out).status, 0);
  const b = readFileSync(out);
  b[b.length - 1]! ^= 1;
  writeFileSync(out, b);
  const r = run("inspect", out);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /policy: checksum \w+ does not match \w+ \(bad-checksum\)/);
});

test("help and usage errors", () => {
  for (const cmd of ["check", "compile", "inspect", "schema"]) {
    const h = run(cmd, "--help");
    assert.equal(h.status, 0);
    assert.match(h.stdout, new RegExp(`^usage: ss-policy ${cmd}`));
  }
  assert.match(run("--help").stdout, /Commands:/);
  assert.equal(run().status, 2);
  assert.equal(run("frobnicate").status, 2);
  assert.equal(run("compile", "policies/demo.json").status, 2);
  const missing = run("check", "no/such/file.json");
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /cannot read no\/such\/file\.json/);
});
