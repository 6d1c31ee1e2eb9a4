// A JSON parser that keeps where every value came from, so that policy errors
// can name the line and column. It also reports duplicate keys, which
// JSON.parse silently resolves to the last one.

export interface Pos {
  readonly line: number; // 1-based
  readonly col: number; // 1-based, in UTF-16 code units
}

export type JsonNode =
  | { kind: "object"; pos: Pos; entries: JsonEntry[] }
  | { kind: "array"; pos: Pos; items: JsonNode[] }
  | { kind: "string"; pos: Pos; value: string }
  | { kind: "number"; pos: Pos; value: number; raw: string }
  | { kind: "boolean"; pos: Pos; value: boolean }
  | { kind: "null"; pos: Pos };

export interface JsonEntry {
  readonly key: string;
  readonly keyPos: Pos;
  readonly value: JsonNode;
}

export class JsonSyntaxError extends Error {
  constructor(readonly pos: Pos, message: string) {
    super(message);
  }
}

/** Maximum nesting depth; policies are at most five levels deep. */
const MAX_DEPTH = 64;

export interface ParseResult {
  readonly root: JsonNode;
  /** Keys that appear twice in one object: the second occurrence of each. */
  readonly duplicates: { pointer: string; pos: Pos; key: string }[];
}

export function parseJsonSource(text: string): ParseResult {
  const p = new Parser(text);
  p.skipSpace();
  const root = p.value("", 0);
  p.skipSpace();
  if (p.i < text.length) p.fail("expected end of input after the top-level value");
  return { root, duplicates: p.duplicates };
}

/** Escape one JSON pointer reference token (RFC 6901). */
export function pointerToken(key: string | number): string {
  return String(key).replace(/~/g, "~0").replace(/\//g, "~1");
}

/** The plain JS value of a node (the last of duplicate keys wins, as in JSON.parse). */
export function plainValue(node: JsonNode): unknown {
  switch (node.kind) {
    case "object": {
      const out: Record<string, unknown> = {};
      for (const e of node.entries) {
        // defineProperty so that a key named "__proto__" stays a plain key
        Object.defineProperty(out, e.key, { value: plainValue(e.value), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    case "array": return node.items.map(plainValue);
    case "null": return null;
    default: return node.value;
  }
}

class Parser {
  i = 0;
  line = 1;
  lineStart = 0;
  readonly duplicates: { pointer: string; pos: Pos; key: string }[] = [];

  constructor(readonly text: string) {}

  pos(): Pos {
    return { line: this.line, col: this.i - this.lineStart + 1 };
  }

  fail(message: string): never {
    throw new JsonSyntaxError(this.pos(), message);
  }

  skipSpace(): void {
    const t = this.text;
    while (this.i < t.length) {
      const c = t.charCodeAt(this.i);
      if (c === 0x0a) {
        this.i++;
        this.line++;
        this.lineStart = this.i;
      } else if (c === 0x20 || c === 0x09 || c === 0x0d) {
        this.i++;
      } else {
        break;
      }
    }
  }

  describeHere(): string {
    if (this.i >= this.text.length) return "end of input";
    return JSON.stringify(this.text.slice(this.i, this.i + 12));
  }

  value(pointer: string, depth: number): JsonNode {
    if (depth > MAX_DEPTH) this.fail(`nesting deeper than ${MAX_DEPTH} levels`);
    const pos = this.pos();
    const c = this.text[this.i];
    if (c === "{") return this.object(pointer, depth, pos);
    if (c === "[") return this.array(pointer, depth, pos);
    if (c === '"') return { kind: "string", pos, value: this.string() };
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return this.number(pos);
    for (const [word, node] of [
      ["true", { kind: "boolean", pos, value: true }],
      ["false", { kind: "boolean", pos, value: false }],
      ["null", { kind: "null", pos }],
    ] as const) {
      if (this.text.startsWith(word, this.i)) {
        this.i += word.length;
        return node;
      }
    }
    this.fail(`expected a JSON value, found ${this.describeHere()}`);
  }

  object(pointer: string, depth: number, pos: Pos): JsonNode {
    this.i++; // {
    const entries: JsonEntry[] = [];
    const seen = new Set<string>();
    this.skipSpace();
    if (this.text[this.i] === "}") {
      this.i++;
      return { kind: "object", pos, entries };
    }
    for (;;) {
      this.skipSpace();
      if (this.text[this.i] !== '"') this.fail(`expected a quoted key, found ${this.describeHere()}`);
      const keyPos = this.pos();
      const key = this.string();
      const childPointer = `${pointer}/${pointerToken(key)}`;
      if (seen.has(key)) this.duplicates.push({ pointer: childPointer, pos: keyPos, key });
      seen.add(key);
      this.skipSpace();
      if (this.text[this.i] !== ":") this.fail(`expected ':' after key ${JSON.stringify(key)}, found ${this.describeHere()}`);
      this.i++;
      this.skipSpace();
      entries.push({ key, keyPos, value: this.value(childPointer, depth + 1) });
      this.skipSpace();
      const c = this.text[this.i];
      if (c === ",") { this.i++; continue; }
      if (c === "}") { this.i++; return { kind: "object", pos, entries }; }
      this.fail(`expected ',' or '}' in object, found ${this.describeHere()}`);
    }
  }

  array(pointer: string, depth: number, pos: Pos): JsonNode {
    this.i++; // [
    const items: JsonNode[] = [];
    this.skipSpace();
    if (this.text[this.i] === "]") {
      this.i++;
      return { kind: "array", pos, items };
    }
    for (;;) {
      this.skipSpace();
      items.push(this.value(`${pointer}/${items.length}`, depth + 1));
      this.skipSpace();
      const c = this.text[this.i];
      if (c === ",") { this.i++; continue; }
      if (c === "]") { this.i++; return { kind: "array", pos, items }; }
      this.fail(`expected ',' or ']' in array, found ${this.describeHere()}`);
    }
  }

  string(): string {
    const t = this.text;
    const start = ++this.i; // opening quote
    let out = "";
    let chunkStart = start;
    for (;;) {
      if (this.i >= t.length) this.fail("unterminated string");
      const c = t.charCodeAt(this.i);
      if (c === 0x22) {
        out += t.slice(chunkStart, this.i);
        this.i++;
        return out;
      }
      if (c < 0x20) this.fail("control character in string (escape it)");
      if (c !== 0x5c) {
        this.i++;
        continue;
      }
      out += t.slice(chunkStart, this.i);
      const e = t[this.i + 1];
      const simple: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
      if (e !== undefined && e in simple) {
        out += simple[e];
        this.i += 2;
      } else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(t.slice(this.i + 2, this.i + 6))) {
        const unit = parseInt(t.slice(this.i + 2, this.i + 6), 16);
        // a surrogate must come in a high + low pair, or it is not Unicode text
        const low = /^\\u[dD][c-fC-F][0-9a-fA-F]{2}/.exec(t.slice(this.i + 6, this.i + 12));
        if (unit >= 0xdc00 && unit < 0xe000) this.fail(`lone surrogate \\u${unit.toString(16)} in string`);
        if (unit >= 0xd800 && unit < 0xdc00) {
          if (!low) this.fail(`lone surrogate \\u${unit.toString(16)} in string`);
          out += String.fromCharCode(unit, parseInt(low[0].slice(2), 16));
          this.i += 12;
        } else {
          out += String.fromCharCode(unit);
          this.i += 6;
        }
      } else {
        this.fail(`invalid escape in string: ${JSON.stringify(t.slice(this.i, this.i + 2))}`);
      }
      chunkStart = this.i;
    }
  }

  number(pos: Pos): JsonNode {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.text.slice(this.i, this.i + 64));
    if (!m) this.fail(`invalid number ${this.describeHere()}`);
    const raw = m[0];
    this.i += raw.length;
    return { kind: "number", pos, value: Number(raw), raw };
  }
}
