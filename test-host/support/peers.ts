// Tests that need an external peer binary (openssl, mosquitto, ...) call
// requirePeer first. A missing peer must never pass silently: locally the test
// is skipped with a loud message, and under REQUIRE_PEERS=1 (CI) it fails.

import { spawnSync } from "node:child_process";
import type { TestContext } from "node:test";

/**
 * Returns true when the peer is there. Otherwise skips `t` (or, with
 * REQUIRE_PEERS=1, throws so the test fails) and returns false.
 */
export function requirePeer(name: string, available: boolean, t: TestContext): boolean {
  if (available) return true;
  const message = `peer '${name}' is not installed: ${t.name} cannot run`;
  if (process.env.REQUIRE_PEERS === "1") throw new Error(`${message} (REQUIRE_PEERS=1)`);
  process.stderr.write(`\n*** SKIPPED: ${message}. Install it, or set REQUIRE_PEERS=1 to make this a failure. ***\n\n`);
  t.skip(message);
  return false;
}

/** Whether `command args...` runs and exits 0 (e.g. `openssl version`). */
export function commandRuns(command: string, args: readonly string[] = ["--version"]): boolean {
  const result = spawnSync(command, args, { stdio: "ignore" });
  return result.error === undefined && result.status === 0;
}
