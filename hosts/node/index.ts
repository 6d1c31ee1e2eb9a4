// The Node host (desktop simulator and tests); see host.ts.

export { BLOB_LIMITS, DEVICE_TLS, FileBlobStore, MemoryBlobStore, NodeHost, classifySocketError } from "./host.js";
export type { NodeHostOptions } from "./host.js";
