// Signing a compiled policy (ss-policy compile --sign): the Ed25519
// signature trailer that src/system/policy-signature.ts checks on the device.

import { createPrivateKey, createPublicKey, sign, type KeyObject } from "node:crypto";
import { SIGNATURE_MAGIC } from "../../src/system/policy-signature.js";

function ed25519Key(pem: string): KeyObject {
  const key = createPrivateKey(pem);
  if (key.asymmetricKeyType !== "ed25519") throw new Error(`the signing key is ${key.asymmetricKeyType ?? "not a private key"}, not Ed25519`);
  return key;
}

/** The policy followed by its signature trailer ("SSIG" + 64 bytes). */
export function signPolicy(binary: Uint8Array, privateKeyPem: string): Uint8Array {
  const signature = sign(null, binary, ed25519Key(privateKeyPem));
  const out = new Uint8Array(binary.length + 4 + signature.length);
  out.set(binary);
  out.set(SIGNATURE_MAGIC, binary.length);
  out.set(signature, binary.length + 4);
  return out;
}

/** The public half of the key as SubjectPublicKeyInfo DER: the boot policy's `policy_signing_key` cert. */
export function signingKeySpki(privateKeyPem: string): Uint8Array {
  return new Uint8Array(createPublicKey(ed25519Key(privateKeyPem)).export({ type: "spki", format: "der" }));
}
