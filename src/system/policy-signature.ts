// Signed policies (beyond lws): `ss-policy compile --sign` appends a trailer
// after the policy's `length` bytes: "SSIG" and the Ed25519 signature of
// those bytes. A policy that names a `policy_signing_key` cert (the public
// key as SubjectPublicKeyInfo DER) takes only signed updates (docs/system.md).

import type { Policy } from "../policy/reader.js";
import { ed25519Verify } from "./ed25519.js";

/** "SSIG" */
export const SIGNATURE_MAGIC: readonly number[] = Object.freeze([0x53, 0x53, 0x49, 0x47]);
export const SIGNATURE_TRAILER_SIZE = 4 + 64;
/** The name of the cert entry that holds the key updates must be signed with. */
export const SIGNING_KEY_CERT = "policy_signing_key";

/** SubjectPublicKeyInfo DER of an Ed25519 key, up to the 32 key bytes (RFC 8410). */
const SPKI_PREFIX: readonly number[] = Object.freeze([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

/** The raw Ed25519 key out of its SPKI DER, or undefined when `der` is not one. */
export function ed25519KeyFromSpki(der: Uint8Array): Uint8Array | undefined {
  if (der.length !== SPKI_PREFIX.length + 32) return undefined;
  for (let i = 0; i < SPKI_PREFIX.length; i++) if (der[i] !== SPKI_PREFIX[i]) return undefined;
  return der.subarray(SPKI_PREFIX.length);
}

/**
 * The key `policy` requires its updates to be signed with; undefined when it
 * names none. A `policy_signing_key` that is not an Ed25519 key is an error,
 * not "no signing": a typo must not turn checking off.
 */
export function signingKeyOf(policy: Policy): Uint8Array | undefined {
  for (let i = 0; i < policy.certCount; i++) {
    const cert = policy.cert(i);
    if (cert.name !== SIGNING_KEY_CERT) continue;
    const key = ed25519KeyFromSpki(cert.der);
    if (!key) throw new Error(`${SIGNING_KEY_CERT} is not an Ed25519 public key (SubjectPublicKeyInfo DER)`);
    return key;
  }
  return undefined;
}

/** Whether `trailer` starts with the signature magic. */
export function isSignatureTrailer(trailer: Uint8Array): boolean {
  return trailer.length === SIGNATURE_TRAILER_SIZE && SIGNATURE_MAGIC.every((b, i) => trailer[i] === b);
}

/**
 * Checks the signature trailer after `length` bytes of `download`; returns
 * why it fails, or undefined when it is good.
 */
export function signatureProblem(download: Uint8Array, length: number, key: Uint8Array): string | undefined {
  if (download.length === length) return "it is not signed, and the policy in force takes only signed updates";
  const trailer = download.subarray(length);
  if (!isSignatureTrailer(trailer)) return `the ${trailer.length} bytes after the policy are not a signature trailer`;
  if (!ed25519Verify(key, download.subarray(0, length), trailer.subarray(4))) return "the signature does not match (wrong key, or altered bytes)";
  return undefined;
}
