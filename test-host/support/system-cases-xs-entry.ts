// Bundle entry for running the system cases on XS.
export { runSystemCases } from "./system-cases.js";
export { base64Decode } from "../../src/util/base64.js";
