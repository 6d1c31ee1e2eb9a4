// What the Node host works out once per trust context (the digest of every
// connect option, sessions.ts) instead of once per connection: the TLS
// options with their SecureContext (the CAs parsed, the client key checked),
// the chains the device's rules already accepted, and the server whose first
// flight was read and accepted (then TLS runs on the TCP socket itself, see
// NodeStream's handshake). Each costs more than a TLS handshake's own work on
// a desktop CPU.

import { createHash, X509Certificate } from "node:crypto";
import tls from "node:tls";
import type { TlsOptions } from "../../src/host.js";
import { tlsConnectOptions } from "./tls.js";

/** Trust contexts remembered at most; the oldest goes first. */
const MAX_CONTEXTS = 32;
/** Accepted chains remembered at most. */
const MAX_CHAINS = 64;

/** A trust context's server, as its first flight showed it when the device's rules accepted it. */
export interface KnownServer {
  /** Digest of the chain as Node's TLS reports it after its own checks (peerChainDigest() in tls.ts). */
  readonly peerChain: string;
  /** Bytes of the first flight, TLS record headers included. */
  readonly flightBytes: number;
  /** The first flight had a CertificateRequest (errors.ts reads handshake_failure by it). */
  readonly certificateRequested: boolean;
}

export class TlsContextCache {
  readonly #options = new Map<string, tls.ConnectionOptions>();
  /** Trust context + chain digest → until when (ms since the epoch) every certificate of it is within its dates. */
  readonly #accepted = new Map<string, number>();
  /** Trust context → its server, and until when that chain is within its dates. */
  readonly #known = new Map<string, { server: KnownServer; until: number }>();

  /** tlsConnectOptions() with its SecureContext; throws HostFailure (not remembered) for unusable bytes. */
  options(key: string, t: TlsOptions, host: string): tls.ConnectionOptions {
    let options = this.#options.get(key);
    if (options === undefined) {
      const made = tlsConnectOptions(t, host);
      options = { ...made, secureContext: tls.createSecureContext(made) };
      remember(this.#options, key, options, MAX_CONTEXTS);
    }
    return options;
  }

  /** The device's rules accepted this chain under this trust context, and every certificate of it is still within its dates. */
  accepted(key: string, chain: readonly Uint8Array[], now = Date.now()): boolean {
    const until = this.#accepted.get(chainKey(key, chain));
    return until !== undefined && now < until;
  }

  /** The device's rules accepted `chain`, read from `server`'s first flight, under this trust context. */
  accept(key: string, chain: readonly Uint8Array[], t: TlsOptions, server: KnownServer): void {
    let until = Infinity;
    for (const der of [...chain, ...t.ca]) {
      try {
        until = Math.min(until, Date.parse(new X509Certificate(der).validTo));
      } catch {
        return; // not remembered: the rules will look at it again next time
      }
    }
    if (until <= Date.now()) return;
    remember(this.#accepted, chainKey(key, chain), until, MAX_CHAINS);
    remember(this.#known, key, { server, until }, MAX_CONTEXTS);
  }

  /** The server this trust context's connections reached last time its first flight was read, while that chain is within its dates. */
  known(key: string, now = Date.now()): KnownServer | undefined {
    const entry = this.#known.get(key);
    return entry !== undefined && now < entry.until ? entry.server : undefined;
  }

  /** The server showed another chain: its next first flight is read again. */
  forget(key: string): void {
    this.#known.delete(key);
  }
}

function chainKey(key: string, chain: readonly Uint8Array[]): string {
  const hash = createHash("sha256").update(key);
  for (const der of chain) hash.update(`${der.length}:`).update(der);
  return hash.digest("base64");
}

function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value!);
}
