// The policy tools as a library (`xs-secure-streams/policy-tools`, host only):
// compile a policy's JSON to the binary table with every diagnostic, format
// diagnostics as ss-policy prints them, the JSON Schema, and the canonical
// JSON of a compiled policy.

export { compilePolicy, MAX_POLICY_TEXT, type CompileResult } from "./compile.js";
export { formatDiagnostic, type Diagnostic } from "./diagnostics.js";
export { policySchema } from "./schema.js";
export { policyToJson } from "../../src/policy/to-json.js";
export type { CanonicalPolicy } from "../../src/policy/canonical.js";
export { signPolicy, signingKeySpki } from "./sign.js";
