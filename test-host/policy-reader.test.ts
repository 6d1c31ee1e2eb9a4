// The reader's own checks: each kind of damage gives a PolicyError with its
// code, and a policy can be read where it lies inside a larger buffer.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { compilePolicy } from "../tools/policy/compile.js";
import { Policy, PolicyError, type PolicyErrorCode } from "../src/policy/reader.js";
import { policyToJson } from "../src/policy/to-json.js";
import { policyCrc } from "../src/policy/crc.js";
import { H_CRC, H_LENGTH, H_VERSION, H_INDEX_COUNT, H_SECTION_LENGTHS, HEADER_SIZE } from "../src/policy/format.js";
import { repoRoot } from "./support/corpus.js";

const demo = compilePolicy(readFileSync(path.join(repoRoot, "policies/demo.json"), "utf8")).binary!;

function damaged(edit: (b: Uint8Array, v: DataView) => void, fixCrc = true): Uint8Array {
  const b = demo.slice();
  const v = new DataView(b.buffer);
  edit(b, v);
  if (fixCrc) v.setUint32(H_CRC, policyCrc(b), true);
  return b;
}

function code(f: () => unknown): PolicyErrorCode | "none" {
  try {
    f();
    return "none";
  } catch (e) {
    assert.ok(e instanceof PolicyError, `not a PolicyError: ${e}`);
    return e.code;
  }
}

const readAll = (b: Uint8Array) => () => policyToJson(Policy.open(b).verify());

test("a good policy opens, verifies and reads", () => {
  assert.equal(code(readAll(demo)), "none");
});

test("damage is reported with a code", () => {
  assert.equal(code(() => Policy.open(demo.subarray(0, HEADER_SIZE - 1))), "truncated");
  assert.equal(code(() => Policy.open(damaged((b) => { b[0] = 0x58; }))), "bad-magic");
  assert.equal(code(() => Policy.open(damaged((b) => { b[H_VERSION] = 2; }))), "bad-version");
  assert.equal(code(() => Policy.open(demo.subarray(0, demo.length - 1))), "bad-length");
  assert.equal(code(() => Policy.open(damaged((_, v) => v.setUint32(H_LENGTH, 10, true)))), "bad-length");
  assert.equal(code(() => Policy.open(damaged((_, v) => v.setUint16(H_INDEX_COUNT, 5000, true)))), "bad-section");
  // a flipped bit anywhere is caught by verify()
  for (const at of [H_VERSION + 1, 20, HEADER_SIZE + 3, demo.length - 1]) {
    assert.equal(code(() => Policy.open(damaged((b) => { b[at]! ^= 0x10; }, false)).verify()), "bad-checksum", `byte ${at}`);
  }
});

test("deep damage that passes the checksum is still caught when read", () => {
  // the string table loses its last bytes: names run off its end
  const shortStrings = damaged((_, v) => v.setUint16(H_SECTION_LENGTHS, 3, true));
  assert.equal(code(readAll(shortStrings)), "bad-reference");
  // a streamtype record names a key id past the key table
  const p = Policy.open(demo);
  let der = 0;
  for (let i = 0; i < p.certCount; i++) der += p.cert(i).der.length;
  const records = demo.length - der - new DataView(demo.buffer).getUint16(H_SECTION_LENGTHS + 4, true);
  const badKey = damaged((b) => { b[records + 1] = 250; });
  assert.equal(code(readAll(badKey)), "bad-record");
});

test("a policy is read in place inside a larger buffer", () => {
  const flash = new Uint8Array(demo.length + 100);
  flash.set(demo, 37);
  const view = flash.subarray(37); // trailing bytes past the policy's length are ignored
  const p = Policy.open(view).verify();
  assert.deepEqual(policyToJson(p), policyToJson(Policy.open(demo)));
  const lastCert = p.cert(p.certCount - 1).der;
  assert.equal(lastCert.buffer, flash.buffer);
  assert.equal(lastCert.byteOffset, 37 + demo.length - lastCert.length);
});
