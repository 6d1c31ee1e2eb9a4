// Bundle entry for running the state machine cases on XS.
export { runSSCases } from "./ss-cases.js";
export { base64Decode } from "../../src/util/base64.js";
