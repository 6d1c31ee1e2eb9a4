// WebSocket client wire codec (RFC 6455): the opening handshake, the frame
// encoder and the streaming frame decoder. What the ws binding
// (src/protocols/ws.ts) builds on.

export { Opcode, CloseCode, MAX_CONTROL_PAYLOAD, WsError, isValidCloseCode, encodeFrame, encodeFrameInto, frameLength, closePayload, type WsErrorCode } from "./frame.js";
export { WsDecoder, type WsDecoderEvents, type WsDecoderOptions } from "./decoder.js";
export { Utf8Check } from "./utf8-check.js";
export { makeKey, acceptFor, encodeUpgradeRequest, checkUpgradeResponse, type UpgradeRequest } from "./handshake.js";
