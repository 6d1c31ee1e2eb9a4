// Errors the Secure Streams API throws at its caller, each with a code.

export type SSErrorCode =
  | "unknown-streamtype" | "unknown-metadata" | "bad-metadata" | "bad-argument"
  | "bad-policy" | "missing-blob" | "bad-tx";

export class SSError extends Error {
  // A field, defined on the instance: assigning this.name throws on the
  // device, where Error.prototype is frozen in flash.
  override readonly name = "SSError";
  readonly code: SSErrorCode;
  constructor(code: SSErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
