// TLS sessions the Node host may resume, each kept under its whole trust
// context: every field of the connect options (host, port, server name,
// each CA's bytes, client certificate and key, ALPN, and any field the
// contract gains, such as a proxy). A session made under one trust store is
// never offered under another, where resuming it would skip verification.

import { createHash } from "node:crypto";
import type { ConnectOptions } from "../../src/host.js";

/** Sessions kept at most; the oldest goes first. */
const MAX_SESSIONS = 32;

export class TlsSessionCache {
  readonly #sessions = new Map<string, Buffer>();

  get(key: string): Buffer | undefined {
    return this.#sessions.get(key);
  }

  /** Keeps the session of a connection that passed every check. */
  keep(key: string, session: Buffer): void {
    this.#sessions.delete(key);
    this.#sessions.set(key, session);
    if (this.#sessions.size > MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
  }

  forget(key: string): void {
    this.#sessions.delete(key);
  }
}

/** A digest of every field of the options, at any depth; bytes by content, fields in sorted order. */
export function trustContextKey(options: ConnectOptions): string {
  const hash = createHash("sha256");
  feed(hash, options);
  return hash.digest("base64");
}

function feed(hash: ReturnType<typeof createHash>, value: unknown): void {
  if (value instanceof Uint8Array) {
    hash.update(`b${value.length}:`);
    hash.update(value);
  } else if (Array.isArray(value)) {
    hash.update(`a${value.length}[`);
    for (const v of value) feed(hash, v);
    hash.update("]");
  } else if (typeof value === "object" && value !== null) {
    const keys = Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort();
    hash.update(`o${keys.length}{`);
    for (const k of keys) {
      hash.update(`${JSON.stringify(k)}:`);
      feed(hash, (value as Record<string, unknown>)[k]);
    }
    hash.update("}");
  } else {
    // strings, numbers, booleans: typed, so that "1" and 1 differ
    hash.update(`${typeof value}:${JSON.stringify(value)};`);
  }
}
