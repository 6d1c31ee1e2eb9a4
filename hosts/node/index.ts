// The Node host (desktop simulator and tests); see host.ts.

export { NodeHost, type NodeHostOptions } from "./host.js";
export { BLOB_LIMITS, FileBlobStore, MemoryBlobStore } from "./blobs.js";
export { DEVICE_TLS } from "./tls.js";
export { classifySocketError } from "./errors.js";
export { SsProxy, type ProxyOptions, type ProxyListen, type ProxyStats } from "./proxy.js";
