// lws' serialized Secure Streams (the SSPC ↔ proxy link): frames, encoders, decoders.

export * from "./frames.js";
export * from "./encode.js";
export * from "./decoder.js";
