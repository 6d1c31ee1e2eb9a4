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

export function compilePolicy(text: string): CompileResult {
  const { canonical, diagnostics } = checkPolicy(text);
  if (!canonical) return { diagnostics };
  try {
    return { diagnostics, canonical, binary: emitPolicy(canonical) };
  } catch (e) {
    if (!(e instanceof PolicyTooLargeError)) throw e;
    return { diagnostics: [...diagnostics, { pointer: "", pos: { line: 1, col: 1 }, message: `policy too large for the binary format: ${e.message}` }] };
  }
}
