// What checking a signed policy costs on XS (xsnap meter): one Ed25519
// verification (SHA-512 of R, A and the message, two scalar multiplications
// on BigInt), and SHA-512 per KiB of policy hashed. Run: npm run bench:system.
//
// Machine-readable results: `BENCH {json}` lines with "peer":"budget"
// (ARCHITECTURE.md); ratio is budget/ours, so >= 1 is within budget.

import path from "node:path";
import { fileURLToPath } from "node:url";
import { generateKeyPairSync, sign } from "node:crypto";
import { base64Encode } from "../src/util/base64.js";
import { bundleForXS } from "../hosts/xsnap/bundle.js";
import { runInXS } from "../hosts/xsnap/xs-worker.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const entry = path.join(here, "..", "test-host", "support", "ed25519-xs-entry.js");

/**
 * Ceilings against regressions, set a little above what the code costs now
 * (SHA-512 is most of a check: 64-bit words as 32-bit halves, every operation
 * metered).
 */
const VERIFY_BUDGET = 8_000_000;
const SHA_KIB_BUDGET = 400_000;
const POLICY_BYTES = 16 * 1024;

const { publicKey, privateKey } = generateKeyPairSync("ed25519");
const key = new Uint8Array(publicKey.export({ type: "spki", format: "der" })).subarray(12);
const message = new Uint8Array(POLICY_BYTES).map((_, i) => i * 7);
const signature = new Uint8Array(sign(null, message, privateKey));

const bundle = await bundleForXS(entry, { globalName: "lib" });
const { messages, steps } = await runInXS([
  bundle,
  `globalThis.k = lib.base64Decode("${base64Encode(key)}"); globalThis.s = lib.base64Decode("${base64Encode(signature)}");` +
    `globalThis.m = new Uint8Array(${POLICY_BYTES}).map((_, i) => i * 7); lib.sha512([new Uint8Array(1)]);`,
  `send(String(lib.ed25519Verify(k, new Uint8Array(0), s)));`, // warm: curve constants made on first use
  `send(String(lib.ed25519Verify(k, m, s)));`,
  `lib.sha512([m]);`,
]);
if (messages[1] !== "true") throw new Error("the signature did not verify on XS");
const verify = steps[3]!.compute;
const shaPerKiB = Math.round(steps[4]!.compute / (POLICY_BYTES / 1024));
const line = (name: string, unit: string, ours: number, budget: number) =>
  process.stdout.write(`BENCH ${JSON.stringify({ name, unit, ours, peer: "budget", theirs: budget, ratio: +(budget / ours).toFixed(2) })}\n`);
line(`ed25519-verify-${POLICY_BYTES / 1024}KiB-policy-xs`, "computrons", verify, VERIFY_BUDGET);
line("sha512-per-KiB-xs", "computrons", shaPerKiB, SHA_KIB_BUDGET);
