// HTTP/2 client wire codec: frames and HPACK. What the h2 protocol binding builds on.

export { H2Error, ErrorCode, errorCodeName } from "./errors.js";
export {
  FrameType, Flag, Setting, PREFACE, FRAME_HEADER_LENGTH, MIN_MAX_FRAME_SIZE, MAX_WINDOW, FrameDecoder,
  encodeFrame, writeFrameHeader, encodeSettings, encodeSettingsAck, encodePing, encodeWindowUpdate, encodeRstStream, encodeGoaway,
  readSettings, readPing, readGoaway, readWindowUpdate, readRstStream, checkPriority, readData, readHeadersFragment,
  type Frame, type FrameDecoderOptions,
} from "./frame.js";
export { HpackDecoder, HpackEncoder, entrySize, type Header, type HpackDecoderOptions, type HpackEncoderOptions } from "./hpack.js";
export { huffmanEncode, huffmanDecode, huffmanLength, huffmanCode } from "./huffman.js";
