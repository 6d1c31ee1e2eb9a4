// The policy checksum: CRC-32 of every byte of the policy except the four
// that hold it, so that the header is covered too.

import { H_CRC } from "./format.js";
import { crc32 } from "../util/crc32.js";

export function policyCrc(policy: Uint8Array): number {
  return crc32(policy.subarray(H_CRC + 4), crc32(policy.subarray(0, H_CRC)));
}
