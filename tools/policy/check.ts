// Policy validation: JSON syntax, the JSON Schema (ajv), then the rules a
// schema cannot express (forward references, duplicate names, ${metadata}
// references, certificate DER, aliases). Every error of a file is collected;
// only a syntax error stops early. The result is the canonical policy.

import { Ajv, type ErrorObject } from "ajv";
import { parseJsonSource, plainValue, pointerToken, JsonSyntaxError, type JsonNode, type Pos } from "./json-source.js";
import { policySchema } from "./schema.js";
import { didYouMean, shown, type Diagnostic } from "./diagnostics.js";
import { STREAMTYPE_KEYS } from "../../src/policy/keys.js";
import { base64Decode, base64Encode } from "../../src/util/base64.js";
import {
  SCHEMA_VERSION, RETRY_NUMBER_KEYS, METRIC_NUMBER_KEYS,
  type CanonicalPolicy, type CanonicalRetry, type CanonicalStreamtype, type CanonicalMetric, type CanonicalAuth,
  type PairList,
} from "../../src/policy/canonical.js";

export interface CheckResult {
  /** Present only when there are no errors (there may be warnings). */
  readonly canonical?: CanonicalPolicy;
  readonly diagnostics: Diagnostic[];
}

/** Keys whose string values may hold ${metadata} references. */
const EXPANDED_KEYS = [
  "endpoint", "http_url", "mqtt_topic", "mqtt_subscribe",
  "mqtt_will_topic", "mqtt_will_message", "mqtt_birth_topic", "mqtt_birth_message",
];

const MAX_CERT_BYTES = 65535;

/** An HTTP token (RFC 9110): methods and header names. */
const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Headers the runtime writes itself, from the endpoint and the body's framing. */
const RESERVED_HEADERS = ["host", "content-length", "transfer-encoding"];

let compiledSchema: ReturnType<Ajv["compile"]> | undefined;
function schemaValidator(): ReturnType<Ajv["compile"]> {
  if (!compiledSchema) {
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictRequired: false });
    ajv.addVocabulary(["x-expected", "x-expected-pattern"]);
    compiledSchema = ajv.compile(policySchema());
  }
  return compiledSchema;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

export function checkPolicy(text: string): CheckResult {
  let root: JsonNode;
  const diagnostics: Diagnostic[] = [];
  try {
    const parsed = parseJsonSource(text);
    root = parsed.root;
    for (const d of parsed.duplicates) {
      diagnostics.push({ pointer: d.pointer, pos: d.pos, message: `duplicate key ${JSON.stringify(d.key)}` });
    }
  } catch (e) {
    if (e instanceof JsonSyntaxError) return { diagnostics: [{ pointer: "", pos: e.pos, message: `invalid JSON: ${e.message}` }] };
    throw e;
  }
  const index = new NodeIndex(root);
  const value = plainValue(root);
  const validate = schemaValidator();
  if (!validate(value)) diagnostics.push(...schemaDiagnostics(validate.errors ?? [], index));
  const canonical = new Semantics(index, diagnostics).run(value);
  diagnostics.sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col);
  return diagnostics.some((d) => !d.warning) ? { diagnostics } : { canonical, diagnostics };
}

/** Where each JSON pointer's value (and, for object members, its key) starts. */
class NodeIndex {
  readonly values = new Map<string, Pos>();
  readonly keys = new Map<string, Pos>();

  constructor(root: JsonNode) {
    this.walk(root, "");
  }

  private walk(node: JsonNode, pointer: string): void {
    this.values.set(pointer, node.pos);
    if (node.kind === "object") {
      for (const e of node.entries) {
        const child = `${pointer}/${pointerToken(e.key)}`;
        this.keys.set(child, e.keyPos);
        this.walk(e.value, child);
      }
    } else if (node.kind === "array") {
      node.items.forEach((item, i) => this.walk(item, `${pointer}/${i}`));
    }
  }

  value(pointer: string): Pos {
    return this.values.get(pointer) ?? { line: 1, col: 1 };
  }

  key(pointer: string): Pos {
    return this.keys.get(pointer) ?? this.value(pointer);
  }
}

function schemaDiagnostics(errors: ErrorObject[], index: NodeIndex): Diagnostic[] {
  const out: Diagnostic[] = [];
  const reported = new Set<string>();
  const add = (pointer: string, pos: Pos, message: string) => {
    if (reported.has(pointer)) return; // one message per place: the first is the most specific
    reported.add(pointer);
    out.push({ pointer, pos, message });
  };
  for (const e of errors) {
    const parent = (e.parentSchema ?? {}) as Obj;
    if (e.keyword === "if" || e.propertyName !== undefined) continue; // summarised by their parent error
    if (e.keyword === "additionalProperties") {
      const key = String(e.params.additionalProperty);
      const pointer = `${e.instancePath}/${pointerToken(key)}`;
      const known = Object.keys((parent.properties ?? {}) as Obj);
      const guess = didYouMean(key, known);
      add(pointer, index.key(pointer), `unknown key ${JSON.stringify(key)}${guess ? `; did you mean ${JSON.stringify(guess)}?` : ""}`);
    } else if (e.keyword === "propertyNames") {
      const key = String(e.params.propertyName);
      const pointer = `${e.instancePath}/${pointerToken(key)}`;
      const expected = ((parent.propertyNames ?? {}) as Obj)["x-expected"];
      add(pointer, index.key(pointer), `expected ${expected}, got ${shown(key)}`);
    } else if (e.keyword === "required") {
      add(`${e.instancePath}/${pointerToken(String(e.params.missingProperty))}`, index.value(e.instancePath),
        `missing required key ${JSON.stringify(e.params.missingProperty)}`);
    } else {
      const expected = (e.keyword === "pattern" && parent["x-expected-pattern"]) || parent["x-expected"] || "a valid value";
      add(e.instancePath, index.value(e.instancePath), `expected ${expected}, got ${shown(e.data)}`);
    }
  }
  return out;
}

/** Rules beyond the schema, applied in document order (for forward references). */
class Semantics {
  private readonly retries = new Set<string>();
  private readonly certs = new Set<string>();
  private readonly stores = new Set<string>();
  private readonly auths = new Set<string>();
  private readonly rideshares: { pointer: string; name: string }[] = [];
  private readonly streamtypes = new Set<string>();

  constructor(private readonly index: NodeIndex, private readonly diagnostics: Diagnostic[]) {}

  private error(pointer: string, message: string, atKey = false): void {
    this.diagnostics.push({ pointer, pos: atKey ? this.index.key(pointer) : this.index.value(pointer), message });
  }

  private warn(pointer: string, message: string): void {
    this.diagnostics.push({ pointer, pos: this.index.key(pointer), message, warning: true });
  }

  /** Records a name defined in a section; reports a duplicate. */
  private define(set: Set<string>, name: string, pointer: string, what: string): void {
    if (set.has(name)) this.error(pointer, `duplicate ${what} name ${JSON.stringify(name)}`, true);
    set.add(name);
  }

  /** A reference must name something already defined above it. */
  private reference(set: Set<string>, name: unknown, pointer: string, what: string, section: string): void {
    if (typeof name !== "string" || set.has(name)) return;
    const guess = didYouMean(name, set);
    this.error(pointer, `${what} ${JSON.stringify(name)} is not defined before this point ` +
      `(define it in "${section}" above its first use)${guess ? `; did you mean ${JSON.stringify(guess)}?` : ""}`);
  }

  run(policy: unknown): CanonicalPolicy {
    const out: CanonicalPolicy = {};
    if (!isObj(policy)) return out;
    const sections: Partial<Record<keyof CanonicalPolicy, unknown>> = {};
    // document order matters for forward references, so walk the keys as written
    for (const key of Object.keys(policy)) {
      const v = policy[key];
      const pointer = `/${pointerToken(key)}`;
      switch (key) {
        case "release": case "product":
          if (typeof v === "string") sections[key] = v;
          break;
        case "schema-version":
          if (typeof v === "number" && v > SCHEMA_VERSION) {
            this.error(pointer, `policy needs schema version ${v}, this compiler supports up to ${SCHEMA_VERSION}`);
          }
          if (typeof v === "number") sections[key] = v;
          break;
        case "via-socks5":
          if (typeof v === "string" && this.socks5(v, pointer)) sections[key] = v;
          break;
        case "retry": sections.retry = this.retrySection(v); break;
        case "certs": sections.certs = this.certSection(v); break;
        case "trust_stores": sections.trust_stores = this.storeSection(v); break;
        case "metrics": sections.metrics = this.metricsSection(v); break;
        case "auth": sections.auth = this.authSection(v); break;
        case "s": sections.s = this.streamtypeSection(v); break;
      }
    }
    for (const r of this.rideshares) {
      if (!this.streamtypes.has(r.name)) {
        const guess = didYouMean(r.name, this.streamtypes);
        this.error(r.pointer, `rideshare names streamtype ${JSON.stringify(r.name)}, which the policy does not define` +
          (guess ? `; did you mean ${JSON.stringify(guess)}?` : ""));
      }
    }
    // fixed key order, empty sections dropped
    for (const key of ["release", "product", "schema-version", "via-socks5", "retry", "certs", "trust_stores", "metrics", "auth", "s"] as const) {
      const v = sections[key];
      if (v === undefined || (Array.isArray(v) && v.length === 0)) continue;
      (out as Obj)[key] = v;
    }
    return out;
  }

  private socks5(v: string, pointer: string): boolean {
    const m = /^(?:[^:@\s]{1,95}:[^@\s]{1,95}@)?(?:\[[0-9A-Fa-f:.]+\]|[^\s:@[\]]+):([0-9]{1,5})$/.exec(v);
    if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) {
      this.error(pointer, `expected "[user:pass@]host:port" with port 1..65535, got ${shown(v)}`);
      return false;
    }
    return true;
  }

  /** Iterates a [{"<name>": value}] section, yielding each pair with its pointer. */
  private *pairs(section: unknown, base: string): Generator<[string, unknown, string]> {
    if (!Array.isArray(section)) return;
    for (let i = 0; i < section.length; i++) {
      const item = section[i];
      if (!isObj(item)) continue;
      for (const name of Object.keys(item)) yield [name, item[name], `${base}/${i}/${pointerToken(name)}`];
    }
  }

  private retrySection(v: unknown): Record<string, CanonicalRetry>[] {
    const out: Record<string, CanonicalRetry>[] = [];
    for (const [name, r, pointer] of this.pairs(v, "/retry")) {
      this.define(this.retries, name, pointer, "retry");
      if (!isObj(r)) continue;
      const retry: CanonicalRetry = {};
      if (Array.isArray(r.backoff)) retry.backoff = r.backoff as number[];
      for (const key of RETRY_NUMBER_KEYS) if (typeof r[key] === "number") retry[key] = r[key] as number;
      if (retry.max_backoff_ms !== undefined && retry.exp_backoff_ms === undefined) {
        this.error(`${pointer}/max_backoff_ms`, "max_backoff_ms caps exp_backoff_ms, which this retry does not give", true);
      }
      out.push({ [name]: retry });
    }
    return out;
  }

  private certSection(v: unknown): Record<string, string>[] {
    const out: Record<string, string>[] = [];
    for (const [name, b64, pointer] of this.pairs(v, "/certs")) {
      this.define(this.certs, name, pointer, "cert");
      if (typeof b64 !== "string") continue;
      const der = base64Decode(b64);
      if (!der) {
        this.error(pointer, "expected base64 (standard alphabet, padded, no whitespace) of a DER certificate");
        continue;
      }
      const problem = derSequenceProblem(der);
      if (problem) this.error(pointer, `expected a DER SEQUENCE (a certificate or key): ${problem}`);
      else out.push({ [name]: base64Encode(der) });
    }
    return out;
  }

  private storeSection(v: unknown): { name: string; stack: string[] }[] {
    const out: { name: string; stack: string[] }[] = [];
    if (!Array.isArray(v)) return out;
    v.forEach((item: unknown, i) => {
      if (!isObj(item)) return;
      // the lws form {"name", "stack"} or the README's short form {"<name>": [certs]}
      const long = "name" in item || "stack" in item;
      const name = long ? item.name : Object.keys(item)[0];
      const stack = long ? item.stack : typeof name === "string" ? item[name] : undefined;
      const namePointer = long ? `/trust_stores/${i}/name` : `/trust_stores/${i}/${pointerToken(String(name))}`;
      const stackPointer = long ? `/trust_stores/${i}/stack` : namePointer;
      if (typeof name !== "string" || !Array.isArray(stack)) return;
      this.define(this.stores, name, namePointer, "trust store");
      const seen = new Set<string>();
      stack.forEach((cert: unknown, j) => {
        this.reference(this.certs, cert, `${stackPointer}/${j}`, "cert", "certs");
        if (typeof cert !== "string") return;
        if (seen.has(cert)) this.error(`${stackPointer}/${j}`, `cert ${JSON.stringify(cert)} is listed twice in this trust store`);
        seen.add(cert);
      });
      out.push({ name, stack: stack as string[] });
    });
    return out;
  }

  private metricsSection(v: unknown): CanonicalMetric[] {
    const out: CanonicalMetric[] = [];
    if (!Array.isArray(v)) return out;
    const names = new Set<string>();
    v.forEach((m: unknown, i) => {
      if (!isObj(m) || typeof m.name !== "string") return;
      this.define(names, m.name, `/metrics/${i}/name`, "metrics policy");
      const metric: CanonicalMetric = { name: m.name };
      for (const key of METRIC_NUMBER_KEYS) if (typeof m[key] === "number") metric[key] = m[key] as number;
      if (typeof m.report === "string") metric.report = m.report;
      out.push(metric);
    });
    return out;
  }

  private authSection(v: unknown): CanonicalAuth[] {
    const out: CanonicalAuth[] = [];
    if (!Array.isArray(v)) return out;
    v.forEach((a: unknown, i) => {
      if (!isObj(a) || typeof a.name !== "string" || typeof a.type !== "string") return;
      this.define(this.auths, a.name, `/auth/${i}/name`, "auth");
      const auth: CanonicalAuth = { name: a.name, type: a.type };
      if (typeof a.streamtype === "string") auth.streamtype = a.streamtype;
      if (typeof a.blob === "number") auth.blob = a.blob;
      out.push(auth);
    });
    return out;
  }

  private streamtypeSection(v: unknown): Record<string, CanonicalStreamtype>[] {
    const out: [string, CanonicalStreamtype][] = [];
    for (const [name, st, pointer] of this.pairs(v, "/s")) {
      if (this.streamtypes.has(name)) this.error(pointer, `duplicate streamtype name ${JSON.stringify(name)}`, true);
      this.streamtypes.add(name);
      if (isObj(st)) out.push([name, this.streamtype(st, pointer)]);
    }
    out.sort((a, b) => compareUtf8(a[0], b[0]));
    return out.map(([name, st]) => ({ [name]: st }));
  }

  private streamtype(st: Obj, base: string): CanonicalStreamtype {
    const at = (key: string) => `${base}/${pointerToken(key)}`;
    const input: Obj = { ...st };
    // legacy and README spellings
    if (input.protocol === "h1get") {
      input.protocol = "h1";
      if (input.http_method === undefined) input.http_method = "GET";
      else if (input.http_method !== "GET") this.error(at("http_method"), `"protocol": "h1get" means GET, but http_method is ${shown(input.http_method)}`);
    }
    for (const [alias, key] of [["aux", "http_url"], ["http_multipart_content_type", "http_mime_content_type"]] as const) {
      if (input[alias] === undefined) continue;
      if (input[key] !== undefined) this.error(at(alias), `${JSON.stringify(alias)} is another name for ${JSON.stringify(key)}; give only one of them`, true);
      else input[key] = input[alias];
    }

    this.reference(this.retries, input.retry, at("retry"), "retry", "retry");
    this.reference(this.stores, input.tls_trust_store, at("tls_trust_store"), "trust store", "trust_stores");
    this.reference(this.certs, input.server_cert, at("server_cert"), "cert", "certs");
    this.reference(this.certs, input.server_key, at("server_key"), "cert", "certs");
    this.reference(this.auths, input.use_auth, at("use_auth"), "auth", "auth");
    if (typeof input.rideshare === "string") this.rideshares.push({ pointer: at("rideshare"), name: input.rideshare });
    if (typeof input["via-socks5"] === "string") this.socks5(input["via-socks5"], at("via-socks5"));
    if (input.tls === true && input.server !== true && input.tls_trust_store === undefined) {
      this.warn(base, "tls without tls_trust_store: no server certificate can be trusted, so this streamtype " +
        "will never connect (system CAs are never used)");
    }

    const metadata = this.pairList(input.metadata, at("metadata"), "metadata");
    const names = new Set(metadata.map((m) => Object.keys(m)[0]!));
    for (const key of EXPANDED_KEYS) {
      if (typeof input[key] === "string") this.expansions(input[key] as string, names, at(key));
    }

    const protocol = input.protocol ?? "h1";
    if (input.server !== true && (protocol === "h1" || protocol === "h2" || protocol === "h3" || protocol === "ws")) {
      this.httpFields(input, at);
    }

    const out: CanonicalStreamtype = {};
    for (const spec of STREAMTYPE_KEYS) {
      const value = input[spec.name];
      if (value === undefined || value === false) continue;
      if (spec.kind === "metadata") out[spec.name] = metadata;
      else if (spec.kind === "respmap") out[spec.name] = this.pairList(value, at(spec.name), "http status");
      else if (spec.kind === "options") out[spec.name] = this.pairList(value, at(spec.name), "option");
      else if (typeof value === "string" || typeof value === "number" || value === true) out[spec.name] = value;
    }
    return out;
  }

  /**
   * What a client's HTTP request is made of must be sendable as written:
   * a value the wire cannot carry would otherwise fail every attempt at run
   * time, one connection each.
   */
  private httpFields(input: Obj, at: (key: string) => string): void {
    const method = input.http_method;
    if (typeof method === "string" && !HTTP_TOKEN.test(method)) {
      this.error(at("http_method"), `expected an HTTP method (a token: letters, digits and !#$%&'*+.^_\`|~-), got ${shown(method)}`);
    }
    const url = input.http_url;
    if (typeof url === "string") {
      const literal = url.replace(/\$\{[^}]*\}/g, "x");
      const bad = literal.search(/[^\0\x21-\x7e]/); // (NUL is the schema's to report)
      if (bad >= 0) {
        this.error(at("http_url"), `a request target holds visible ASCII only: percent-encode the character U+${literal.charCodeAt(bad).toString(16).padStart(4, "0").toUpperCase()} at ${bad} of ${shown(url)}`);
      } else {
        const path = literal.split(/[?#]/)[0]!;
        const dot = path.split("/").find((segment) => segment === "." || segment === "..");
        if (dot) this.error(at("http_url"), `a "${dot}" path segment: servers resolve it differently, write the path without it (${shown(url)})`);
      }
    }
    const endpoint = input.endpoint;
    if (typeof endpoint === "string" && /[^A-Za-z0-9.:-]/.test(endpoint.replace(/\$\{[^}]*\}/g, ""))) {
      this.error(at("endpoint"), `expected a host name (an international one in its xn-- form) or an IP address, with \${metadata} parts, got ${shown(endpoint)}`);
    }
    const header = (value: unknown, pointer: string) => {
      if (typeof value !== "string" || value === "") return;
      const name = value.endsWith(":") ? value.slice(0, -1) : value;
      if (!HTTP_TOKEN.test(name)) this.error(pointer, `expected a header name (a token) ending in ":", got ${shown(value)}`);
      else if (RESERVED_HEADERS.includes(name.toLowerCase())) this.error(pointer, `${name} is written by the runtime from the connection and the body; it cannot come from the policy`);
    };
    for (const key of ["http_auth_header", "http_dsn_header", "http_fwv_header", "http_devtype_header"]) header(input[key], at(key));
    // (the schema checks that metadata header names are tokens)
    for (const [, value, pointer] of this.pairs(input.metadata, at("metadata"))) {
      if (typeof value === "string" && RESERVED_HEADERS.includes(value.slice(0, -1).toLowerCase())) header(value, pointer);
    }
    const preamble = input.http_auth_preamble;
    if (typeof preamble === "string" && /[^\t\x20-\x7e\x80-\xff]/.test(preamble)) {
      this.error(at("http_auth_preamble"), `a header value cannot hold CR, LF or other control characters, got ${shown(preamble)}`);
    }
  }

  /** Flattens [{a: x, b: y}, {c: z}] into one-key objects, reporting duplicate names. */
  private pairList(v: unknown, pointer: string, what: string): PairList {
    const out: PairList = [];
    const seen = new Set<string>();
    for (const [name, value, p] of this.pairs(v, pointer)) {
      if (seen.has(name)) this.error(p, `duplicate ${what} ${JSON.stringify(name)}`, true);
      seen.add(name);
      if (typeof value === "string" || typeof value === "number") out.push({ [name]: value });
    }
    const limit = what === "http status" ? 16 : 255;
    if (out.length > limit) this.error(pointer, `at most ${limit} ${what} entries, got ${out.length}`);
    return out;
  }

  private expansions(text: string, declared: Set<string>, pointer: string): void {
    const re = /\$\{([^}]*)\}/g;
    for (let m; (m = re.exec(text)); ) {
      const name = m[1]!;
      if (!declared.has(name)) {
        const guess = didYouMean(name, declared);
        this.error(pointer, `\${${name}} names no metadata declared in this streamtype` +
          (guess ? `; did you mean \${${guess}}?` : declared.size ? "" : ` (add "metadata": [{"${name}": ""}])`));
      }
    }
    if (text.replace(re, "").includes("${")) this.error(pointer, `unterminated "\${" in ${shown(text)}`);
  }
}

/** Why `der` is not exactly one well-formed DER SEQUENCE, or undefined if it is. */
export function derSequenceProblem(der: Uint8Array): string | undefined {
  if (der.length > MAX_CERT_BYTES) return `${der.length} bytes is over the ${MAX_CERT_BYTES}-byte limit`;
  if (der.length < 2 || der[0] !== 0x30) return "the first byte must be 0x30";
  let length = der[1]!;
  let header = 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 3) return "unsupported length encoding";
    if (der.length < 2 + n) return "truncated length";
    if (der[2] === 0 || (n === 1 && der[2]! < 0x80)) return "length is not minimally encoded";
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[2 + i]!;
    header = 2 + n;
  }
  if (header + length !== der.length) return `its length says ${header + length} bytes, but ${der.length} were given`;
  return undefined;
}

/** Order of UTF-8 bytes (= code point order), the order of the binary's streamtype index. */
export function compareUtf8(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0)!);
  const y = [...b].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}
