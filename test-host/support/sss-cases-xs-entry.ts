// Bundle entry for running the serialized Secure Streams codec cases on XS.
export { runSssCases } from "./sss-cases.js";
