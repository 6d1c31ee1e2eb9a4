// The streamtype keys of the policy language and how each is stored in the
// binary table. The compiler and the reader share this table, so a key's
// position here is its id in the binary format. Ids never change: a new key
// is appended and keeps the format version, since an older reader refuses a
// record holding an id it does not know (docs/policy-format.md, Versioning).

/**
 * How a key's value is held in a streamtype record (sizes in bytes).
 * - flag: a boolean; the key's presence in the record means true. 0 bytes.
 * - u8 (1), u16 (2), u32 (4): the number, little-endian.
 * - protocol (1): an index into PROTOCOLS.
 * - retry, store, cert, auth (1): an index into that table.
 * - str (2): an offset into the string table.
 * - metadata, respmap, options (2): an offset into the list section.
 */
export type KeyKind =
  | "flag" | "str" | "u8" | "u16" | "u32" | "protocol"
  | "retry" | "store" | "cert" | "auth"
  | "metadata" | "respmap" | "options";

export interface KeySpec {
  readonly name: string;
  readonly kind: KeyKind;
  /** Inclusive numeric range for u8/u16/u32 keys. */
  readonly min?: number;
  readonly max?: number;
}

// The tables here are frozen: on the device they are preloaded into flash
// (manifest.json), where an object that is never written costs no RAM.
const k = (name: string, kind: KeyKind, min?: number, max?: number): KeySpec =>
  Object.freeze(min === undefined ? { name, kind } : { name, kind, min, max });

export const STREAMTYPE_KEYS: readonly KeySpec[] = Object.freeze([
  k("endpoint", "str"),
  k("port", "u16", 1, 65535),
  k("protocol", "protocol"),
  k("tls", "flag"),
  k("tls_trust_store", "store"),
  k("client_cert", "u8", 0, 255),
  k("retry", "retry"),
  k("timeout_ms", "u32", 0, 0xffffffff),
  k("opportunistic", "flag"),
  k("nailed_up", "flag"),
  k("urgent_tx", "flag"),
  k("urgent_rx", "flag"),
  k("long_poll", "flag"),
  k("allow_redirects", "flag"),
  k("swake_validity", "flag"),
  k("perf", "flag"),
  k("attr_priority", "u8", 0, 7),
  k("attr_low_latency", "flag"),
  k("attr_high_throughput", "flag"),
  k("attr_high_reliability", "flag"),
  k("attr_low_cost", "flag"),
  k("metadata", "metadata"),
  k("rideshare", "str"),
  k("payload_fmt", "str"),
  k("via-socks5", "str"),
  k("use_auth", "auth"),
  k("aws_region", "str"),
  k("aws_service", "str"),
  k("direct_proto_str", "flag"),
  k("local_sink", "flag"),
  k("server", "flag"),
  k("server_cert", "cert"),
  k("server_key", "cert"),
  k("options", "options"),
  k("proxy_buflen", "u32", 0, 0xffffffff),
  k("proxy_buflen_rxflow_on_above", "u32", 0, 0xffffffff),
  k("proxy_buflen_rxflow_off_below", "u32", 0, 0xffffffff),
  k("client_buflen", "u32", 0, 0xffffffff),
  k("client_buflen_rxflow_on_above", "u32", 0, 0xffffffff),
  k("client_buflen_rxflow_off_below", "u32", 0, 0xffffffff),
  k("http_method", "str"),
  k("http_url", "str"),
  k("http_expect", "u16", 100, 599),
  k("http_fail_redirect", "flag"),
  k("http_resp_map", "respmap"),
  k("http_auth_header", "str"),
  k("http_dsn_header", "str"),
  k("http_fwv_header", "str"),
  k("http_devtype_header", "str"),
  k("http_auth_preamble", "str"),
  k("http_no_content_length", "flag"),
  k("http_www_form_urlencoded", "flag"),
  k("http_multipart_name", "str"),
  k("http_multipart_filename", "str"),
  k("http_mime_content_type", "str"),
  k("http_multipart_ss_in", "flag"),
  k("http_cookies", "flag"),
  k("nghttp2_quirk_end_stream", "flag"),
  k("h2q_oflow_txcr", "flag"),
  k("auth_hexify", "flag"),
  k("ws_subprotocol", "str"),
  k("ws_binary", "flag"),
  k("ws_prioritize_reads", "flag"),
  k("mqtt_topic", "str"),
  k("mqtt_subscribe", "str"),
  k("mqtt_qos", "u8", 0, 2),
  k("mqtt_retain", "flag"),
  k("mqtt_keep_alive", "u16", 0, 65535),
  k("mqtt_clean_start", "flag"),
  k("mqtt_will_topic", "str"),
  k("mqtt_will_message", "str"),
  k("mqtt_will_qos", "u8", 0, 2),
  k("mqtt_will_retain", "flag"),
  k("mqtt_birth_topic", "str"),
  k("mqtt_birth_message", "str"),
  k("mqtt_birth_qos", "u8", 0, 2),
  k("mqtt_birth_retain", "flag"),
  k("aws_iot", "flag"),
  // not an lws key: the MQTT binding's outbox cap (docs/mqtt.md)
  k("mqtt_outbox_bytes", "u32", 0, 0xffffffff),
]);

/** Key name → id (its index in STREAMTYPE_KEYS). */
export const KEY_ID: ReadonlyMap<string, number> =
  new Map(STREAMTYPE_KEYS.map((spec, id) => [spec.name, id]));

/** Bytes a value of this kind occupies in a record. */
export function valueSize(kind: KeyKind): number {
  switch (kind) {
    case "flag": return 0;
    case "u8": case "protocol": case "retry": case "store": case "cert": case "auth": return 1;
    case "u32": return 4;
    default: return 2;
  }
}

/** Bytes of each key's value, by key id: the reader walks records with it. */
export const KEY_SIZE: readonly number[] = Object.freeze(STREAMTYPE_KEYS.map((k) => valueSize(k.kind)));

/** How the reader's accessors group the kinds: a key is read by the accessor of its class. */
export type KeyClass = "flag" | "str" | "small" | "u32" | "protocol" | "retry" | "store" | "cert" | "auth" | "list";

/** The class of each key, by key id. */
export const KEY_CLASS: readonly KeyClass[] = Object.freeze(STREAMTYPE_KEYS.map((k): KeyClass => {
  switch (k.kind) {
    case "u8": case "u16": return "small";
    case "metadata": case "options": case "respmap": return "list";
    default: return k.kind;
  }
}));

/** Wire protocols by their index in the binary table (lws' order). */
export const PROTOCOLS = Object.freeze(["h1", "h2", "h3", "ws", "mqtt", "raw"] as const);
export type ProtocolName = (typeof PROTOCOLS)[number];
