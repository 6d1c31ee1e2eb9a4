// Bundle entry for the policy tests and benchmark on XS (hosts/xsnap):
// bundleForXS(<dist>/test-host/support/xs-policy-entry.js, { globalName: "lib" }).
// PORTABLE: everything here runs inside the XS engine.

import { Policy } from "../../src/policy/reader.js";
import { policyToJson } from "../../src/policy/to-json.js";

export { Policy, PolicyError, StreamType, Cert, TrustStore } from "../../src/policy/reader.js";
export { policyToJson } from "../../src/policy/to-json.js";
export { policyCrc } from "../../src/policy/crc.js";
export { base64Decode, base64Encode } from "../../src/util/base64.js";
export { fuzzPolicies, mergeReports, MUTATIONS, type FuzzReport, type FuzzFailure } from "./policy-fuzz.js";

/** A name no corpus policy uses, sorting between the others. */
export const MISSING_STREAMTYPE = "no_such_streamtype";

export interface PolicyReading {
  /** JSON.stringify(policyToJson(policy)). */
  json: string;
  /** For every streamtype name in the index plus MISSING_STREAMTYPE and "": [name, found name, protocol, keys] or [name, null]. */
  lookups: (string | null)[][];
}

/** Opens, verifies and reads a whole policy; run on Node and on XS, the results must be equal. */
export function readPolicy(bytes: Uint8Array): PolicyReading {
  const p = Policy.open(bytes).verify();
  const json = JSON.stringify(policyToJson(p));
  const names: string[] = [];
  for (let i = 0; i < p.streamtypeCount; i++) names.push(p.streamtypeAt(i).name);
  names.push(MISSING_STREAMTYPE, "");
  const lookups = names.map((name) => {
    const st = p.streamtype(name);
    return st ? [name, st.name, st.protocol, st.keys().join(",")] : [name, null];
  });
  return { json, lookups };
}
