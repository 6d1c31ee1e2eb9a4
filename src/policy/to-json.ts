// The canonical JSON form of a compiled policy (what `ss-policy inspect`
// prints). Portable, so the XS engine can prove it reads what Node reads.

import { Policy, type StreamType } from "./reader.js";
import { STREAMTYPE_KEYS } from "./keys.js";
import { base64Encode } from "../util/base64.js";
import type { CanonicalPolicy, CanonicalRetry, CanonicalMetric, CanonicalAuth, CanonicalStreamtype, PairList } from "./canonical.js";

function range<T>(count: number, f: (i: number) => T): T[] {
  const out: T[] = [];
  for (let i = 0; i < count; i++) out.push(f(i));
  return out;
}

/** Sets `key` on `o` only when the value is given. */
function put<T extends object>(o: T, key: keyof T, value: T[keyof T] | undefined): void {
  if (value !== undefined) o[key] = value;
}

function streamtypeToJson(st: StreamType): CanonicalStreamtype {
  const out: CanonicalStreamtype = {};
  for (const key of st.keys()) {
    const kind = STREAMTYPE_KEYS.find((k) => k.name === key)!.kind;
    switch (kind) {
      case "flag": out[key] = true; break;
      case "str": out[key] = st.string(key)!; break;
      case "u8": case "u16": case "u32": out[key] = st.number(key)!; break;
      case "protocol": out[key] = st.protocol; break;
      case "retry": out[key] = st.retry!.name; break;
      case "store": out[key] = st.trustStore!.name; break;
      case "auth": out[key] = st.auth!.name; break;
      case "cert": out[key] = st.cert(key as "server_cert" | "server_key")!.name; break;
      case "metadata": case "options": case "respmap":
        out[key] = st.pairs(key as "metadata").map(([k, v]): PairList[number] => ({ [String(k)]: v }));
        break;
    }
  }
  return out;
}

export function policyToJson(p: Policy): CanonicalPolicy {
  const out: CanonicalPolicy = {};
  put(out, "release", p.release);
  put(out, "product", p.product);
  put(out, "schema-version", p.schemaVersion);
  put(out, "via-socks5", p.viaSocks5);
  const retry = range(p.retryCount, (i) => {
    const r = p.retry(i);
    const o: CanonicalRetry = {};
    const backoff = r.backoff;
    if (backoff.length) o.backoff = backoff;
    put(o, "conceal", r.conceal);
    put(o, "jitterpc", r.jitterpc);
    put(o, "svalidping", r.svalidping);
    put(o, "svalidhup", r.svalidhup);
    put(o, "exp_backoff_ms", r.expBackoffMs);
    put(o, "max_backoff_ms", r.maxBackoffMs);
    return { [r.name]: o };
  });
  if (retry.length) out.retry = retry;
  const certs = range(p.certCount, (i) => ({ [p.cert(i).name]: base64Encode(p.cert(i).der) }));
  if (certs.length) out.certs = certs;
  const stores = range(p.trustStoreCount, (i) => {
    const t = p.trustStore(i);
    return { name: t.name, stack: range(t.size, (j) => t.cert(j).name) };
  });
  if (stores.length) out.trust_stores = stores;
  const metrics = range(p.metricsCount, (i) => {
    const m = p.metrics(i);
    const o: CanonicalMetric = { name: m.name };
    put(o, "us_schedule", m.usSchedule);
    put(o, "us_halflife", m.usHalflife);
    put(o, "min_outlier", m.minOutlier);
    put(o, "report", m.report);
    return o;
  });
  if (metrics.length) out.metrics = metrics;
  const auth = range(p.authCount, (i) => {
    const a = p.auth(i);
    const o: CanonicalAuth = { name: a.name, type: a.type };
    put(o, "streamtype", a.streamtype);
    put(o, "blob", a.blob);
    return o;
  });
  if (auth.length) out.auth = auth;
  const s = range(p.streamtypeCount, (i) => {
    const st = p.streamtypeAt(i);
    return { [st.name]: streamtypeToJson(st) };
  });
  if (s.length) out.s = s;
  return out;
}
