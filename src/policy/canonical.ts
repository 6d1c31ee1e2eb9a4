// The canonical JSON form of a policy: what `ss-policy inspect` prints and
// what the compiler encodes. Keys come in a fixed order, streamtypes sorted by
// name, aliases resolved, false booleans and ignored keys dropped, every list
// of pairs as an array of one-key objects.

export interface CanonicalRetry {
  backoff?: number[];
  conceal?: number;
  jitterpc?: number;
  svalidping?: number;
  svalidhup?: number;
  exp_backoff_ms?: number;
  max_backoff_ms?: number;
}

export interface CanonicalTrustStore {
  name: string;
  stack: string[];
}

export interface CanonicalMetric {
  name: string;
  us_schedule?: number;
  us_halflife?: number;
  min_outlier?: number;
  report?: string;
}

export interface CanonicalAuth {
  name: string;
  type: string;
  streamtype?: string;
  blob?: number;
}

/** A list of one-key objects: metadata, http_resp_map, options. */
export type PairList = Record<string, string | number>[];

export type CanonicalValue = string | number | true | PairList;

/** Streamtype keys in STREAMTYPE_KEYS order. */
export type CanonicalStreamtype = Record<string, CanonicalValue>;

export interface CanonicalPolicy {
  release?: string;
  product?: string;
  "schema-version"?: number;
  "via-socks5"?: string;
  retry?: Record<string, CanonicalRetry>[];
  certs?: Record<string, string>[];
  trust_stores?: CanonicalTrustStore[];
  metrics?: CanonicalMetric[];
  auth?: CanonicalAuth[];
  s?: Record<string, CanonicalStreamtype>[];
}

/** Order in which a retry's keys appear, in JSON and in the binary presence bits. */
export const RETRY_NUMBER_KEYS = ["conceal", "jitterpc", "svalidping", "svalidhup", "exp_backoff_ms", "max_backoff_ms"] as const;
export const METRIC_NUMBER_KEYS = ["us_schedule", "us_halflife", "min_outlier"] as const;

/** Highest schema-version this implementation understands. */
export const SCHEMA_VERSION = 1;
