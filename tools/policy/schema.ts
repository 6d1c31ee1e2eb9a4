// The JSON Schema of the policy language, built from the streamtype key table
// so the two cannot drift. policies/policy.schema.json is this object written
// out (`npm run gen:schema`); a test keeps the file in step.
//
// Each leaf carries an "x-expected" annotation: the phrase our error messages
// use ("expected an integer 1..65535, got ...").

import { STREAMTYPE_KEYS, PROTOCOLS, type KeySpec } from "../../src/policy/keys.js";

type Schema = Record<string, unknown>;

/** Keys accepted in a streamtype besides STREAMTYPE_KEYS: aliases and ignored ones. */
export const STREAMTYPE_EXTRA_KEYS = ["aux", "http_multipart_content_type", "plugins"] as const;

// NUL ends strings in the binary table, and has no place in a header or URL
const str = (expected = "a string"): Schema => ({
  type: "string", maxLength: 4096, pattern: "^[^\\u0000]*$",
  "x-expected": expected, "x-expected-pattern": "a string without NUL characters",
});
const int = (min: number, max: number): Schema =>
  ({ type: "integer", minimum: min, maximum: max, "x-expected": `an integer ${min}..${max}` });
const bool: Schema = { type: "boolean", "x-expected": "true or false" };
const NAME_PATTERN = "^[^\\u0000-\\u001f]{1,64}$";
const article = (word: string) => (/^[aeiou]/.test(word) ? "an" : "a");
const name = (what: string): Schema =>
  ({ type: "string", pattern: NAME_PATTERN, "x-expected": `${article(what)} ${what} name of 1..64 printable characters` });

/** An array of objects holding "<name>": value pairs (lws takes several per object). */
function namedList(what: string, valueSchema: Schema, maxItems = 1024): Schema {
  return {
    type: "array",
    maxItems,
    "x-expected": `an array of {"<${what}>": ...} objects`,
    items: {
      type: "object",
      minProperties: 1,
      "x-expected": `an object of "<${what}>": ... pairs`,
      propertyNames: { pattern: NAME_PATTERN, "x-expected": `${article(what)} ${what} name of 1..64 printable characters` },
      additionalProperties: valueSchema,
    },
  };
}

function keySchema(spec: KeySpec): Schema {
  switch (spec.kind) {
    case "flag": return bool;
    case "str": return str();
    case "u8": case "u16": case "u32": return int(spec.min ?? 0, spec.max ?? 0);
    case "protocol": {
      const names = [...PROTOCOLS, "h1get"];
      return { type: "string", enum: names, "x-expected": `one of ${names.map((p) => JSON.stringify(p)).join(", ")}` };
    }
    case "retry": return name("retry");
    case "store": return name("trust store");
    case "cert": return name("cert");
    case "auth": return name("auth");
    case "metadata":
      return {
        type: "array",
        maxItems: 255,
        "x-expected": `an array of {"<name>": "<header:>" or ""} objects`,
        items: {
          type: "object",
          minProperties: 1,
          "x-expected": `an object mapping metadata names to "<header:>" or ""`,
          propertyNames: {
            pattern: "^[^\\u0000-\\u001f${}]{1,30}$",
            "x-expected": "a metadata name of 1..30 characters without '$', '{', '}' or control characters",
          },
          additionalProperties: {
            type: "string",
            pattern: "^(:?[!#$%&'*+.^_`|~0-9A-Za-z-]+:)?$",
            "x-expected": `"" or a header name ending in ':' (e.g. "content-type:")`,
          },
        },
      };
    case "respmap":
      return {
        type: "array",
        maxItems: 16,
        "x-expected": `an array of at most 16 {"<http status>": <state>} objects`,
        items: {
          type: "object",
          minProperties: 1,
          maxProperties: 1,
          "x-expected": `an object holding one "<http status>": <state> pair`,
          propertyNames: { pattern: "^[1-5][0-9][0-9]$", "x-expected": "an HTTP status 100..599" },
          additionalProperties: int(0, 65535),
        },
      };
    case "options":
      return namedList("option", str("a string option value"), 255);
  }
}

function streamtypeSchema(): Schema {
  const properties: Record<string, Schema> = {};
  for (const spec of STREAMTYPE_KEYS) properties[spec.name] = keySchema(spec);
  properties.aux = str("a string (legacy name of http_url)");
  properties.http_multipart_content_type = str("a string (README name of http_mime_content_type)");
  properties.plugins = { type: "array", "x-expected": "an array (plugins are ignored)" };
  return { type: "object", "x-expected": "an object of streamtype keys", properties, additionalProperties: false };
}

export function policySchema(): Schema {
  const retry: Schema = {
    type: "object",
    "x-expected": "a retry object",
    properties: {
      backoff: {
        type: "array", minItems: 1, maxItems: 8,
        "x-expected": "an array of 1..8 delays in ms",
        items: int(0, 0xffffffff),
      },
      conceal: int(0, 65535),
      jitterpc: int(0, 100),
      svalidping: int(0, 65535),
      svalidhup: int(0, 65535),
      exp_backoff_ms: int(1, 0xffffffff),
      max_backoff_ms: int(1, 0xffffffff),
    },
    additionalProperties: false,
  };
  const storeLong: Schema = {
    type: "object",
    "x-expected": `{"name": "<store>", "stack": ["<cert>", ...]}`,
    required: ["name", "stack"],
    properties: {
      name: name("trust store"),
      stack: { type: "array", minItems: 1, maxItems: 16, "x-expected": "an array of 1..16 cert names", items: name("cert") },
    },
    additionalProperties: false,
  };
  const storeShort: Schema = {
    type: "object",
    minProperties: 1,
    maxProperties: 1,
    "x-expected": `{"<store>": ["<cert>", ...]} or {"name": "<store>", "stack": [...]}`,
    propertyNames: { pattern: NAME_PATTERN, "x-expected": "a trust store name of 1..64 printable characters" },
    additionalProperties: { type: "array", minItems: 1, maxItems: 16, "x-expected": "an array of 1..16 cert names", items: name("cert") },
  };
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    $id: "https://xs-secure-streams/policy.schema.json",
    title: "Secure Streams policy (lws policy language, as compiled by ss-policy)",
    type: "object",
    "x-expected": "a policy object",
    properties: {
      release: str(),
      product: str(),
      "schema-version": int(0, 254),
      "via-socks5": str("a string \"[user:pass@]host:port\""),
      retry: namedList("retry", retry, 255),
      certs: namedList("cert", { type: "string", minLength: 4, "x-expected": "a base64 DER certificate string" }, 255),
      trust_stores: {
        type: "array",
        maxItems: 255,
        "x-expected": "an array of trust stores",
        items: { if: { type: "object", anyOf: [{ required: ["name"] }, { required: ["stack"] }] }, then: storeLong, else: storeShort },
      },
      metrics: {
        type: "array",
        maxItems: 255,
        "x-expected": "an array of metrics policies",
        items: {
          type: "object",
          "x-expected": "a metrics policy object",
          required: ["name"],
          properties: {
            name: name("metrics policy"),
            us_schedule: int(0, 0xffffffff),
            us_halflife: int(0, 0xffffffff),
            min_outlier: int(0, 255),
            report: str(),
          },
          additionalProperties: false,
        },
      },
      auth: {
        type: "array",
        maxItems: 255,
        "x-expected": "an array of auth objects",
        items: {
          type: "object",
          "x-expected": "an auth object",
          required: ["name", "type"],
          properties: { name: name("auth"), type: str(), streamtype: name("streamtype"), blob: int(0, 3) },
          additionalProperties: false,
        },
      },
      s: namedList("streamtype", streamtypeSchema(), 4096),
    },
    additionalProperties: false,
  };
}
