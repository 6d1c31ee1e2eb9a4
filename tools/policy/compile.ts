// The host-side policy compiler: JSON text in, diagnostics or binary out.

import { checkPolicy } from "./check.js";
import { emitPolicy, PolicyTooLargeError } from "./emit.js";
import type { Diagnostic } from "./diagnostics.js";
import type { CanonicalPolicy } from "../../src/policy/canonical.js";

export interface CompileResult {
  readonly diagnostics: Diagnostic[];
  readonly canonical?: CanonicalPolicy;
  readonly binary?: Uint8Array;
}

/** Largest policy text accepted: far above any real policy, and below what would strain the host. */
export const MAX_POLICY_TEXT = 1024 * 1024;

export function compilePolicy(text: string): CompileResult {
  if (text.length > MAX_POLICY_TEXT) {
    return { diagnostics: [{ pointer: "", pos: { line: 1, col: 1 }, message: `the policy is ${text.length} characters; the limit is ${MAX_POLICY_TEXT}` }] };
  }
  const { canonical, diagnostics } = checkPolicy(text);
  if (!canonical) return { diagnostics };
  try {
    return { diagnostics, canonical, binary: emitPolicy(canonical) };
  } catch (e) {
    if (!(e instanceof PolicyTooLargeError)) throw e;
    return { diagnostics: [...diagnostics, { pointer: "", pos: { line: 1, col: 1 }, message: `policy too large for the binary format: ${e.message}` }] };
  }
}
