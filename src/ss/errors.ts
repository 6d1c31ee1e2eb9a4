// Errors the Secure Streams API throws at its caller, each with a code.

export type SSErrorCode =
  | "unknown-streamtype" | "unknown-metadata" | "bad-metadata" | "bad-argument"
  | "bad-policy" | "missing-blob" | "bad-tx";

export class SSError extends Error {
  readonly code: SSErrorCode;
  constructor(code: SSErrorCode, message: string) {
    super(message);
    this.name = "SSError";
    this.code = code;
  }
}
