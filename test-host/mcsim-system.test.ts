// The boot sequence with a policy update in Moddable's simulator (mcsim):
// blobs in Preference (a client certificate over its ~4000-byte value limit,
// split and put back together), the system
// states with the clock held at TIME_VALID until the app sets it, a stream
// made before the boot that waits for OPERATIONAL, and fetch_policy from a
// local HTTPS server into the simulator's file system (A/B slots). Booted a
// second time, the simulator starts on the stored policy. (Blobs are not
// checked across the two boots: the simulator's Preference loads its file
// when it is preloaded, at build time, so a new run does not see the last
// run's values.)
//
// Needs the Moddable SDK (MODDABLE) and Xvfb; skipped without them, a
// failure under REQUIRE_PEERS=1.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { requirePeer } from "./support/peers.js";
import { opensslAvailable, testPki } from "./support/pki.js";
import { moddableSdk, buildApp, runInMcsim, repoRoot, SDK_HINT } from "./support/mcsim.js";
import { startPolicyServers, testPolicy, type PolicyServers } from "./support/policy-update-rig.js";

const sdk = moddableSdk();
let servers: PolicyServers | undefined;
let dir: string | undefined;

before(async () => {
  if (!sdk || !opensslAvailable()) return;
  servers = await startPolicyServers(testPki());
  dir = mkdtempSync(path.join(tmpdir(), "ss-mcsim-system-"));
});

after(() => {
  servers?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const SYSTEM_MODULES = ["boot", "states", "system", "blobs", "split-blobs", "policy-store", "policy-update", "policy-signature", "ed25519", "sha512"];
const CERT_BYTES = 6000;

/** The lines of one mcsim run, from "sys ..." traces. */
async function boot(so: string): Promise<string[]> {
  const run = await runInMcsim(sdk!, so, { done: (line) => line === "sys done", limitMs: 120000 });
  // the app's "sys ..." lines, and the runtime's own "system: ..." log
  return run.lines.filter((l) => l.startsWith("sys ") || l.startsWith("system: ")).map((l) => (l.startsWith("sys ") ? l.slice(4) : l));
}

test("mcsim: blobs in Preference, the clock held at TIME_VALID, fetch_policy into the simulator's storage, then a boot on the stored policy", async (t) => {
  if (!requirePeer(SDK_HINT, sdk !== undefined, t) || !requirePeer("openssl", opensslAvailable(), t)) return;
  const pki = testPki();
  const { a, b } = servers!.ports;
  const builtIn = testPolicy(pki, { release: "old", dataPort: a, policyPort: a });
  servers!.download = testPolicy(pki, { release: "new", dataPort: b, policyPort: a });
  const modules: Record<string, string> = {
    main: path.join(repoRoot, "hosts/moddable/system-example/main"),
    "xs-secure-streams/moddable/policy-store": path.join(repoRoot, "hosts/moddable/policy-store"),
  };
  for (const m of SYSTEM_MODULES) modules[`xs-secure-streams/system/${m}`] = path.join(repoRoot, "src/system", m);
  const app = await buildApp(sdk!, {
    name: "system",
    modules,
    preload: Object.keys(modules).filter((m) => m !== "main"),
    include: [path.join(sdk!.root, "modules/files/file/manifest.json")],
    policy: builtIn,
    config: { dir: `${dir}/`, domain: "ss-sys-test", certBytes: CERT_BYTES, clockAfterMs: 1500 },
  });

  // xsl: the system modules preloaded, with no unfrozen object and no module variable written at run time
  const ours = app.log.split("\n").filter((l) => /^### warning: xs-secure-streams\/(system\/|moddable\/policy-store)/.test(l));
  assert.deepEqual(ours, [], "warnings of the preloading linker on the system modules");

  const first = await boot(app.so);
  t.diagnostic(`first boot: ${first.join(" | ")}`);
  const at = (line: string) => {
    const i = first.findIndex((l) => l.startsWith(line));
    assert.ok(i >= 0, `"${line}" in:\n${first.join("\n")}`);
    return i;
  };
  assert.ok(first.includes(`blob client_cert.1 ${CERT_BYTES} same`), first.join("\n"));
  assert.ok(first.includes("blob device_serial mcsim-0001"));
  assert.ok(first.includes("booted old built-in"));
  assert.ok(first.includes("early waits: 1"));
  assert.ok(at("system: TIME_VALID held by clock") < at("clock set"));
  assert.ok(at("clock set") < at("state TIME_VALID"), "TIME_VALID only once the clock is set");
  assert.ok(at("state TIME_VALID") < at("policy updated: policy new is in force from slot 0"));
  assert.ok(at("state OPERATIONAL") < at("early connecting"), "the early stream connects from OPERATIONAL");
  assert.ok(first.includes("early QOS_ACK_REMOTE A"), "the early stream keeps the boot policy");
  assert.ok(first.includes("late QOS_ACK_REMOTE B"), "a stream made after the update uses the new policy");
  assert.equal(readFileSync(path.join(dir!, "active"), "latin1"), "0");

  const second = await boot(app.so);
  t.diagnostic(`second boot: ${second.join(" | ")}`);
  assert.ok(second.includes("booted new slot 0"), second.join("\n"));
  assert.ok(second.some((l) => l.startsWith("policy updated: policy new is in force from slot 1")), second.join("\n"));
  assert.ok(second.includes("early QOS_ACK_REMOTE B"));
});
