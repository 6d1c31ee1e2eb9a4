// Bundle entry for the policy tests and benchmark on XS (hosts/xsnap):
// bundleForXS(<dist>/test-host/support/xs-policy-entry.js, { globalName: "lib" }).
// PORTABLE: everything here runs inside the XS engine.

export { Policy, PolicyError, StreamType, Cert, TrustStore } from "../../src/policy/reader.js";
export { policyToJson } from "../../src/policy/to-json.js";
export { policyCrc } from "../../src/policy/crc.js";
export { base64Decode, base64Encode } from "../../src/util/base64.js";
export { fuzzPolicies, MUTATIONS, type FuzzReport, type FuzzFailure } from "./policy-fuzz.js";
