// The real lws policies in ../shared/lws-policies, with the .json.in
// templates' placeholders filled in with loopback test values.

import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root (this file runs from dist/test-host/support/). */
export const repoRoot = path.resolve(here, "../../..");
export const corpusDir = path.resolve(repoRoot, "../shared/lws-policies");

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

export function corpusPolicies(): CorpusPolicy[] {
  return readdirSync(corpusDir)
    .filter((f) => f.endsWith(".json") || f.endsWith(".json.in"))
    .sort()
    .map((file) => ({ file, text: fillTemplate(readFileSync(path.join(corpusDir, file), "utf8")) }));
}
