// Crash safety of a policy update: a simulator process is killed (SIGKILL)
// right after each write step of an update (every block of the slot, its
// flush, the switch record written aside, the switch), then started again:
// it must boot on a valid policy, the old one or the new one, every time.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { requirePeer } from "./support/peers.js";
import { opensslAvailable, testPki, type TestPki } from "./support/pki.js";
import { startPolicyServers, testPolicy, type PolicyServers } from "./support/policy-update-rig.js";
import { base64Encode } from "../src/util/base64.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, "support", "policy-crash-child.js");
let pki: TestPki | undefined;
let servers: PolicyServers | undefined;
const dirs: string[] = [];

before(async () => {
  if (!opensslAvailable()) return;
  pki = testPki();
  servers = await startPolicyServers(pki);
});

after(() => {
  servers?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Runs the child asynchronously: the policy server runs in this process. */
async function runChild(args: object): Promise<{ signal: NodeJS.Signals | null; out: Record<string, unknown> | undefined; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, JSON.stringify(args)], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", reject);
    p.on("close", (code, signal) => {
      if (code !== 0 && signal === null) reject(new Error(`child exited ${code}: ${stderr}`));
      resolve({ signal, out: stdout.trim() ? (JSON.parse(stdout.trim()) as Record<string, unknown>) : undefined, stderr });
    });
  });
}

test("an update killed at every write step still boots, on the old policy or the new one", async (t) => {
  if (!requirePeer("openssl", opensslAvailable(), t)) return;
  const { a, b } = servers!.ports;
  const builtIn = base64Encode(testPolicy(pki!, { release: "old", dataPort: a, policyPort: a }));
  servers!.download = testPolicy(pki!, { release: "new", dataPort: b, policyPort: a, padding: 1 });
  const fresh = () => {
    const d = mkdtempSync(path.join(tmpdir(), "ss-crash-"));
    dirs.push(d);
    return d;
  };

  // an update that is not interrupted: how many write steps it takes
  const whole = await runChild({ dir: fresh(), builtIn, mode: "update" });
  assert.equal(whole.out?.outcome, "updated", whole.stderr);
  const steps = whole.out!.steps as number;
  assert.ok(steps >= 10, `${steps} write steps`);

  const booted: string[] = [];
  for (let k = 1; k <= steps; k++) {
    const dir = fresh();
    const crashed = await runChild({ dir, builtIn, mode: "update", crashAt: k });
    assert.equal(crashed.signal, "SIGKILL", `killed at step ${k}: ${crashed.stderr}`);
    const after = await runChild({ dir, builtIn, mode: "boot" });
    const release = after.out?.release;
    assert.ok(release === "old" || release === "new", `step ${k}: booted on ${String(release)}: ${after.stderr}`);
    booted.push(`${k}:${String(release)}`);
    // the last step is the switch: from there on, the new policy
    assert.equal(release, k === steps ? "new" : "old", `step ${k}`);
  }
  t.diagnostic(`first update (built-in -> slot 0), killed after each of ${steps} write steps; booted on: ${booted.join(" ")}`);

  // a second update, from slot 0 to slot 1: the slot in force is never touched
  const second: string[] = [];
  for (let k = 1; k <= steps; k++) {
    const dir = fresh();
    servers!.download = testPolicy(pki!, { release: "new", dataPort: b, policyPort: a, padding: 1 });
    assert.equal((await runChild({ dir, builtIn, mode: "update" })).out?.outcome, "updated");
    servers!.download = testPolicy(pki!, { release: "ne2", dataPort: b, policyPort: a, padding: 1 });
    const crashed = await runChild({ dir, builtIn, mode: "update", crashAt: k });
    assert.equal(crashed.signal, "SIGKILL", `killed at step ${k}: ${crashed.stderr}`);
    const after = await runChild({ dir, builtIn, mode: "boot" });
    second.push(`${k}:${String(after.out?.release)}@${String(after.out?.slot)}`);
    assert.deepEqual(after.out, k === steps ? { release: "ne2", slot: 1 } : { release: "new", slot: 0 }, `step ${k}: ${after.stderr}`);
  }
  t.diagnostic(`second update (slot 0 -> slot 1), killed after each write step; booted on: ${second.join(" ")}`);
  servers!.download = testPolicy(pki!, { release: "new", dataPort: b, policyPort: a, padding: 1 });

  // and a device killed mid-update finishes it at its next boot
  const dir = fresh();
  await runChild({ dir, builtIn, mode: "update", crashAt: 3 });
  const resumed = await runChild({ dir, builtIn, mode: "update" });
  assert.equal(resumed.out?.outcome, "updated");
  assert.equal((await runChild({ dir, builtIn, mode: "boot" })).out?.release, "new");
});
