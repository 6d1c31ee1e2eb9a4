// The README's fenced code blocks, for the tests that hold the README to what
// it says (readme.test.ts runs its shell commands, package.test.ts checks its
// imports against the installed package).

import { readFileSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "./corpus.js";

export interface Block {
  /** The info string after the opening fence, e.g. "sh" or "sh device". */
  readonly info: string;
  readonly text: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
}

export function readmeBlocks(file = path.join(repoRoot, "README.md")): Block[] {
  const blocks: Block[] = [];
  let open: { info: string; line: number; lines: string[] } | undefined;
  readFileSync(file, "utf8").split("\n").forEach((line, i) => {
    const fence = /^```(.*)$/.exec(line);
    if (!open) {
      if (fence) open = { info: fence[1]!.trim(), line: i + 1, lines: [] };
    } else if (fence && fence[1]!.trim() === "") {
      blocks.push({ info: open.info, text: open.lines.join("\n"), line: open.line });
      open = undefined;
    } else {
      open.lines.push(line);
    }
  });
  if (open) throw new Error(`README.md:${open.line}: code block never closed`);
  return blocks;
}

/** Every `import ... from "...";` line of the README's ts blocks (not `ts device`: firmware code). */
export function readmeImports(): string[] {
  return readmeBlocks()
    .filter((b) => b.info === "ts")
    .flatMap((b) => b.text.split("\n").filter((l) => /^import .* from "[^"]+";?\s*(\/\/.*)?$/.test(l)))
    .map((l) => l.replace(/\s*\/\/.*$/, ""));
}
