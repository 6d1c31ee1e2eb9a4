// SHA-512 and Ed25519 verification (src/system), written for the device:
// checked against RFC 8032's test vectors and against node:crypto, on Node
// and on the XS engine (its cost: bench/system.bench.ts).

import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from "node:crypto";
import { ed25519Verify } from "../src/system/ed25519.js";
import { sha512 } from "../src/system/sha512.js";
import { base64Encode } from "../src/util/base64.js";
import { bundleForXS } from "../hosts/xsnap/bundle.js";
import { runInXS } from "../hosts/xsnap/xs-worker.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const hex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));

/** RFC 8032, section 7.1, TEST 1-3: public key, message, signature. */
const RFC8032 = [
  ["d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"],
  ["3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"],
  ["fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
    "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"],
].map(([k, m, s]) => ({ key: hex(k!), message: hex(m!), signature: hex(s!) }));

/** Signatures made by node:crypto with fresh keys, over messages of many lengths. */
const made = Array.from({ length: 12 }, (_, i) => {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const message = new Uint8Array(randomBytes(i * 97));
  const key = new Uint8Array(publicKey.export({ type: "spki", format: "der" })).subarray(12);
  return { key, message, signature: new Uint8Array(sign(null, message, privateKey)) };
});

/** Each case and the same with one bit of the signature, the message or the key flipped. */
function cases() {
  const all: { key: Uint8Array; message: Uint8Array; signature: Uint8Array; good: boolean }[] = [];
  for (const c of [...RFC8032, ...made]) {
    all.push({ ...c, good: true });
    const sig = c.signature.slice();
    sig[(c.message.length * 7) % 64]! ^= 1;
    all.push({ ...c, signature: sig, good: false });
    if (c.message.length) {
      const msg = c.message.slice();
      msg[msg.length >> 1]! ^= 0x80;
      all.push({ ...c, message: msg, good: false });
    }
    const key = c.key.slice();
    key[3]! ^= 4;
    all.push({ ...c, key, good: false });
  }
  return all;
}
const all = cases();

test("sha512: FIPS 180-4 'abc' and node:crypto for lengths 0-600, fed in parts", () => {
  assert.equal(Buffer.from(sha512([new TextEncoder().encode("abc")])).toString("hex"),
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  for (let n = 0; n <= 600; n += 1) {
    const b = new Uint8Array(randomBytes(n));
    const cut = (n * 13) % (n + 1);
    assert.equal(Buffer.from(sha512([b.subarray(0, cut), b.subarray(cut)])).toString("hex"), createHash("sha512").update(b).digest("hex"), `length ${n}`);
  }
});

test("ed25519: RFC 8032 vectors and node:crypto signatures verify; a flipped bit in signature, message or key does not", () => {
  for (const [i, c] of all.entries()) {
    const spki = createPublicKey({ key: Buffer.concat([hex("302a300506032b6570032100"), c.key]), format: "der", type: "spki" });
    let nodeSays: boolean;
    try {
      nodeSays = verify(null, c.message, spki, c.signature);
    } catch {
      nodeSays = false; // a flipped key that is no point
    }
    assert.equal(nodeSays, c.good, `node:crypto on case ${i}`);
    assert.equal(ed25519Verify(c.key, c.message, c.signature), c.good, `case ${i}`);
  }
  // a signature whose S is not below the group order is refused (malleability)
  const c = RFC8032[0]!;
  const s = c.signature.slice();
  s[63] = 0xff;
  assert.equal(ed25519Verify(c.key, c.message, s), false);
});

test("ed25519 on XS: the same answers", async () => {
  const bundle = await bundleForXS(path.join(here, "support/ed25519-xs-entry.js"), { globalName: "lib" });
  const data = JSON.stringify(all.map((c) => [base64Encode(c.key), base64Encode(c.message), base64Encode(c.signature)]));
  const { messages } = await runInXS([
    bundle,
    `globalThis.cases = ${data}.map((c) => c.map((x) => lib.base64Decode(x)));`,
    `send(JSON.stringify(cases.map(([k, m, s]) => lib.ed25519Verify(k, m, s))));`,
  ]);
  assert.deepEqual(JSON.parse(messages[0]!), all.map((c) => c.good));
});
