// Whether two connections may be one: the rule every binding that shares or
// reuses connections (h1's pool, h2's multiplexing) keys them by.

import { sameBytes } from "../util/bytes.js";

/**
 * Whether two sets of connect options are the same trust context: every
 * field, at any depth (endpoint, port, TLS, each CA, client certificate and
 * key bytes, ALPN, and whatever field the contract gains, such as a proxy),
 * so that a new field is part of the comparison without anyone adding it.
 * Bytes compare by content; an object that is not plain data compares by
 * identity. Absent and undefined are the same.
 */
export function sameOptions(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && sameBytes(a, b);
  }
  const array = Array.isArray(a);
  if (array !== Array.isArray(b)) return false;
  if (!array && (Object.getPrototypeOf(a) !== Object.prototype || Object.getPrototypeOf(b) !== Object.prototype)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let fields = 0;
  for (const k in x) {
    if (x[k] === undefined) continue;
    fields++;
    if (!sameOptions(x[k], y[k])) return false;
  }
  for (const k in y) if (y[k] !== undefined) fields--;
  return fields === 0;
}
