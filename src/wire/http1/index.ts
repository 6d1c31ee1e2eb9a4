// HTTP/1.1 client wire codec: a streaming response parser and the request
// encoder. What the HTTP protocol binding (src/protocols) builds on.

export {
  Http1ResponseParser, Http1Error, DEFAULT_LIMITS,
  type Http1ErrorCode, type Http1Limits, type Http1Head, type Http1ParserOptions,
} from "./response-parser.js";
export { encodeRequestHead, encodeChunkHeader, CHUNK_END, LAST_CHUNK, type Http1Request } from "./request.js";
