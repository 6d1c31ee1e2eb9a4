// Bundle entry for the SHA-512 and Ed25519 checks on XS.
export { ed25519Verify } from "../../src/system/ed25519.js";
export { sha512 } from "../../src/system/sha512.js";
export { base64Decode, base64Encode } from "../../src/util/base64.js";
