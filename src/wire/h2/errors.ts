// HTTP/2 error codes (RFC 9113, 7) and the one error class the codec throws.

export const ErrorCode = Object.freeze({
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const);

const NAMES: readonly string[] = Object.freeze(Object.keys(ErrorCode));

/** The RFC name of an error code, or its number in hex. */
export function errorCodeName(code: number): string {
  return NAMES[code] ?? `0x${code.toString(16)}`;
}

/**
 * A violation of HTTP/2 or HPACK. `code` is what goes in the GOAWAY (or
 * RST_STREAM when `streamId` is set: an error of that stream only).
 */
export class H2Error extends Error {
  readonly code: number;
  readonly streamId: number | undefined;
  constructor(code: number, message: string, streamId?: number) {
    super(message);
    this.name = "H2Error";
    this.code = code;
    this.streamId = streamId;
  }
}
