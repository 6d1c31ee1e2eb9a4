// The lws policy corpus, when present: real policies from libwebsockets'
// examples and tests, the .json.in templates' placeholders filled in with
// loopback test values. It is not part of this repository; its folder is
// $LWS_POLICIES (default ../shared/lws-policies, from the repository root).
// Tests use it when it is there and skip loudly when it is not, failing under
// REQUIRE_PEERS=1 (see peers.ts); the repository's own policies need nothing.

import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { TestContext } from "node:test";
import { requirePeer } from "./peers.js";

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root (this file runs from dist/test-host/support/). */
export const repoRoot = path.resolve(here, "../../..");
export const corpusDir = path.resolve(repoRoot, process.env.LWS_POLICIES || "../shared/lws-policies");

export interface CorpusPolicy {
  readonly file: string;
  readonly text: string;
}

export function fillTemplate(text: string): string {
  let port = 7680;
  const ports = new Map<string, number>();
  return text
    .replace(/@LWS_CTEST_SERVER_RESOLVE@/g, "127.0.0.1")
    .replace(/@PORT_[A-Z0-9_]+@/g, (name) => {
      if (!ports.has(name)) ports.set(name, port++);
      return String(ports.get(name));
    });
}

/** Whether the corpus folder is there. */
export function corpusPresent(): boolean {
  return existsSync(corpusDir);
}

/** For a test that needs the corpus: true when present, else skips `t` (or fails it under REQUIRE_PEERS=1). */
export function requireCorpus(t: TestContext): boolean {
  return requirePeer(`lws policy corpus (${corpusDir}; set LWS_POLICIES)`, corpusPresent(), t);
}

/** Every corpus policy, sorted by file name; throws when the corpus is not there. */
export function corpusPolicies(): CorpusPolicy[] {
  if (!corpusPresent()) throw new Error(`the lws policy corpus is not at ${corpusDir} (set LWS_POLICIES to its folder)`);
  return readdirSync(corpusDir)
    .filter((f) => f.endsWith(".json") || f.endsWith(".json.in"))
    .sort()
    .map((file) => ({ file, text: fillTemplate(readFileSync(path.join(corpusDir, file), "utf8")) }));
}

/** The repository's own policies (always there), as CorpusPolicy entries. */
export function repoPolicies(): CorpusPolicy[] {
  const file = "policies/demo.json";
  return [{ file, text: readFileSync(path.join(repoRoot, file), "utf8") }];
}
