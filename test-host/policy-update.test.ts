// fetch_policy against a local HTTPS server: the new policy takes effect
// (new streams go to its endpoint, streams alive keep the old one), and
// each bad download is refused with a clear report while the old policy
// keeps working. Signed policies: an unsigned or wrongly signed update is
// refused when the policy in force names a signing key.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { execFile, execFileSync } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import { compilePolicy } from "../tools/policy/compile.js";
import { base64Encode } from "../src/util/base64.js";
import { Blobs } from "../src/system/blobs.js";
import { FileBlobStore } from "../hosts/node/blobs.js";
import { requirePeer } from "./support/peers.js";
import { opensslAvailable, testPki, type TestPki } from "./support/pki.js";
import { startPolicyServers, testPolicy, testDevice, dataRequest, until, type PolicyServers } from "./support/policy-update-rig.js";
import { FilePolicyStore } from "../hosts/node/policy-store.js";
import { signPolicy, signingKeySpki } from "../tools/policy/sign.js";
import { SystemState } from "../src/system/states.js";

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

function storeDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), "ss-policy-store-"));
  dirs.push(d);
  return d;
}

const oldPolicy = (extra: { signingKey?: Uint8Array } = {}) =>
  testPolicy(pki!, { release: "old", dataPort: servers!.ports.a, policyPort: servers!.ports.a, ...extra });
const newPolicy = (extra: { product?: string; padding?: number } = {}) =>
  testPolicy(pki!, { release: "new", dataPort: servers!.ports.b, policyPort: servers!.ports.a, ...extra });

function ed25519Pem(): string {
  const dir = storeDir();
  const file = path.join(dir, "key.pem");
  execFileSync("openssl", ["genpkey", "-algorithm", "ed25519", "-out", file]);
  return readFileSync(file, "utf8");
}

test("fetch_policy: the new policy takes effect; a stream made before the switch keeps the old one", async (t) => {
  if (!requirePeer("openssl", opensslAvailable(), t)) return;
  servers!.download = newPolicy();
  const store = new FilePolicyStore(storeDir());
  const device = testDevice(oldPolicy(), store);
  // made before the boot: it waits at the gate, then connects with the policy it was made from
  const early = dataRequest(device);
  assert.equal(device.ss.waiting, 1);
  device.system.boot();
  assert.equal(device.system.state < SystemState.POLICY_VALID, true, "the boot waits for the first download");
  const report = await device.nextReport();
  assert.equal(report.outcome, "updated", device.logs.join("\n"));
  assert.match(report.message, /policy new is in force from slot 0/);
  await device.operational();
  assert.equal(await early, "A", "the early stream keeps the old policy");
  assert.equal(await device.fetchData(), "B", "a new stream uses the new policy");
  assert.equal(store.active(), 0);
  assert.equal(device.ss.policy.release, "new");

  // the next boot starts on the new policy, from its slot
  servers!.download = newPolicy();
  const again = testDevice(oldPolicy(), store);
  assert.equal(again.booted.slot, 0);
  assert.equal(again.booted.policy.release, "new");
  again.system.boot();
  const second = await again.nextReport();
  assert.equal(second.outcome, "updated", again.logs.join("\n"));
  assert.equal(store.active(), 1, "the update went to the other slot");
  await again.operational();
  assert.equal(await again.fetchData(), "B");
});

/** Boots on the old policy with `download` served; asserts a refusal matching `why`, and that the old policy works. */
async function refused(download: Uint8Array, why: RegExp, options: { builtIn?: Uint8Array; maxBytes?: number; good?: Uint8Array } = {}) {
  servers!.download = download;
  const fetchesBefore = servers!.fetches;
  const store = new FilePolicyStore(storeDir());
  const device = testDevice(options.builtIn ?? oldPolicy(), store, options.maxBytes);
  device.system.boot();
  const report = await device.nextReport();
  assert.equal(report.outcome, "refused", `${report.message}\n${device.logs.join("\n")}`);
  assert.match(report.message, why);
  assert.equal(report.release, "old");
  await device.operational();
  assert.equal(await device.fetchData(), "A", "the old policy keeps working");
  assert.equal(store.active(), undefined, "no slot was switched to");
  assert.ok(device.logs.some((l) => l.includes("fetch_policy: refused:") && l.includes("policy old stays in force")), device.logs.join("\n"));
  // it is tried again after the streamtype's backoff; a good download then goes in
  servers!.download = options.good ?? newPolicy();
  let report2 = await device.nextReport();
  while (report2.outcome === "refused") report2 = await device.nextReport();
  assert.equal(report2.outcome, "updated", report2.message);
  assert.ok(servers!.fetches - fetchesBefore >= 2);
  assert.equal(await device.fetchData(), "B");
  return report;
}

test("fetch_policy refuses a truncated download", async (t) => {
  if (!requirePeer("openssl", opensslAvailable(), t)) return;
  const good = newPolicy();
  await refused(good.subarray(0, good.length - 100), /^truncated: \d+ bytes of \d+$/);
});

test("fetch_policy refuses a download with a flipped byte", async (t) => {
  if (!requirePeer("openssl", opensslAvailable(), t)) return;
  const bad = newPolicy().slice();
  bad[bad.length >> 1]! ^= 0x10;
  await refused(bad, /^policy: checksum [0-9a-f]+ does not match [0-9a-f]+ \(bad-checksum\)$/);
});

test("fetch_policy refuses a policy for another product", async (t) => {
  if (!requirePeer("openssl", opensslAvailable(), t)) return;
  await refused(newPolicy({ product: "toaster" }), /it is for product "toaster", this device is "update-test"/);
});

test("fetch_policy refuses a download over the size limit, from its header, before taking the rest", async (t) => {
  if (!requirePeer("openssl", opensslAvailable(), t)) return;
  const good = newPolicy();
  const big = newPolicy({ padding: 4 });
  await refused(big, new RegExp(`^too large: ${big.length} bytes, over the ${good.length + 68}-byte limit$`), { maxBytes: good.length + 68 });
});

test("fetch_policy refuses garbage that is not a compiled policy", async (t) => {
  if (!requirePeer("openssl", opensslAvailable(), t)) return;
  await refused(new TextEncoder().encode("<html>hello, this is not a policy at all</html>"), /not a compiled policy \(bad magic\)/);
});

test("signed policies: unsigned and wrongly signed updates are refused; a rightly signed one goes in", async (t) => {
  if (!requirePeer("openssl", opensslAvailable(), t)) return;
  const key = ed25519Pem();
  const other = ed25519Pem();
  const builtIn = oldPolicy({ signingKey: signingKeySpki(key) });
  const good = signPolicy(newPolicy(), key);
  await refused(newPolicy(), /^signature: it is not signed, and the policy in force takes only signed updates$/, { builtIn, good });
  await refused(signPolicy(newPolicy(), other), /^signature: the signature does not match/, { builtIn, good });
  // the right key: in at the first attempt
  servers!.download = signPolicy(newPolicy(), key);
  const device = testDevice(builtIn, new FilePolicyStore(storeDir()));
  device.system.boot();
  const report = await device.nextReport();
  assert.equal(report.outcome, "updated", report.message);
  await until(() => device.system.stateName === "OPERATIONAL");
  assert.equal(await device.fetchData(), "B");
});

test("fetch_policy: an unreachable server does not hold the boot; the old policy is used and the fetch goes on", async (t) => {
  if (!requirePeer("openssl", opensslAvailable(), t)) return;
  const builtIn = testPolicy(pki!, { release: "old", dataPort: servers!.ports.a, policyPort: 1 });
  const device = testDevice(builtIn, new FilePolicyStore(storeDir()));
  device.system.boot();
  const report = await device.nextReport();
  assert.equal(report.outcome, "failed");
  assert.equal(report.message, "the policy server cannot be reached");
  await device.operational();
  assert.equal(await device.fetchData(), "A");
  let last = report;
  while (last.outcome !== "gave-up") last = await device.nextReport();
  assert.match(last.message, /no new policy: the streamtype's retries are used up/);
});

/** Runs ss-sim; resolves to its exit status and output. */
function ssSim(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "hosts", "node", "ss-sim.js");
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      const code = (error as { code?: unknown } | null)?.code;
      resolve({ status: error ? (typeof code === "number" ? code : null) : 0, stdout, stderr });
    });
  });
}

test("ss-sim --policy-store: the first run fetches the update (its stream, made before, keeps the old policy); the next boots on it", async (t) => {
  if (!requirePeer("openssl", opensslAvailable(), t)) return;
  servers!.download = newPolicy();
  const dir = storeDir();
  const policyFile = path.join(dir, "boot.ssp");
  writeFileSync(policyFile, oldPolicy());
  const out = path.join(dir, "out.txt");
  const args = ["--policy", policyFile, "--stream", "data", "--policy-store", path.join(dir, "slots"), "--out", out];
  const first = await ssSim(args);
  assert.equal(first.status, 0, first.stdout + first.stderr);
  assert.match(first.stdout, /policy updated: policy new is in force from slot 0/);
  assert.equal(readFileSync(out, "utf8"), "A");
  const second = await ssSim(args);
  assert.equal(second.status, 0, second.stdout + second.stderr);
  assert.match(second.stderr, /booting on policy new \(slot 0\)/);
  assert.equal(readFileSync(out, "utf8"), "B");
});

test("client certificate and key from blobs (a blob directory written with the blob API) for a server that requires them", async (t) => {
  if (!requirePeer("openssl", opensslAvailable(), t)) return;
  const seen: string[] = [];
  const server = https.createServer({ cert: pki!.server.chainPem, key: pki!.server.keyPem, ca: pki!.ca.certPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    seen.push(String((req.socket as TLSSocket).getPeerCertificate().subject?.CN ?? ""));
    res.end("mtls ok");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  const dir = storeDir();
  const policy = compilePolicy(JSON.stringify({
    certs: [{ test_ca: base64Encode(pki!.ca.certDer) }],
    trust_stores: [{ name: "test", stack: ["test_ca"] }],
    s: [{ mtls: { endpoint: "localhost", port, protocol: "h1", http_method: "GET", http_url: "/", tls: true, tls_trust_store: "test", client_cert: 0 } }],
  })).binary!;
  const policyFile = path.join(dir, "mtls.ssp");
  writeFileSync(policyFile, policy);
  const blobDir = path.join(dir, "blobs");
  const blobs = new Blobs(new FileBlobStore(blobDir));
  blobs.set("client_cert", pki!.client.certDer, 0);
  blobs.set("client_key", pki!.client.keyDer, 0);
  assert.deepEqual(readdirSync(blobDir).sort(), ["client_cert.0", "client_key.0"], "no temporary file left");
  const r = await ssSim(["--policy", policyFile, "--stream", "mtls", "--blob-dir", blobDir]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /QOS_ACK_REMOTE/);
  assert.equal(seen.length, 1);
  // without them: AUTH_FAILED, before any connection
  const empty = await ssSim(["--policy", policyFile, "--stream", "mtls", "--blob-dir", path.join(dir, "none")]);
  assert.equal(empty.status, 1);
  assert.match(empty.stdout, /AUTH_FAILED/);
  assert.equal(seen.length, 1);
});
