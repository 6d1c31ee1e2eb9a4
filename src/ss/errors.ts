// Errors the Secure Streams API throws at its caller, each with a code.

export type SSErrorCode =
  | "unknown-streamtype" | "unknown-metadata" | "bad-metadata" | "bad-argument"
  | "bad-policy" | "missing-blob" | "bad-tx";

export class SSError extends Error {
  readonly code: SSErrorCode;
  constructor(code: SSErrorCode, message: string) {
    super(message);
    // defined, not assigned: on the device Error.prototype is frozen (preloaded), and assigning
    // a property it has read-only throws
    Object.defineProperty(this, "name", { value: "SSError", configurable: true, writable: true });
    this.code = code;
  }
}
