// The device's rules for trusting the chain a TLS server sends (Moddable's
// certificate manager, modules/crypt/ssl), restated so that the simulator
// refuses what the device refuses, and says what the device would say. Node's
// own verification runs first; these rules are the device's extra refusals.
//
// The device looks only at the certificates it is sent, in the order sent.
// For each certificate but the last, it matches the server name against the
// certificate's subjectAltName, then, if the certificate is within its dates
// and signed by the next one, reads the next one's Authority Key Identifier
// and looks for the trusted CA whose Subject Key Identifier equals it and
// whose key verifies the next one: found, the chain is trusted. Failing that,
// the last certificate sent must be within its dates and signed by the
// trusted CA (so the device would take a leaf the CA never signed, sent
// with the CA; Node's verification refuses that here). Either way the answer
// is the name match, and the name is only matched in that loop, so a leaf
// sent alone never passes. The AKI is compared as a byte buffer, so a
// certificate after the leaf without one makes the device throw "invalid
// buffer". The device trusts only the policy's CAs, one per handshake, tried
// in the policy's order (hosts/moddable). Not modelled: the lookup in
// Moddable's built-in store index (ca.ski), which hosts/moddable builds
// without the CA files, so that a chain whose AKI names a public CA not in
// the policy fails there ("Resource not found", tls-untrusted) before a later
// certificate could be trusted. These outcomes match Moddable SDK 8.2.3 run
// in its Linux simulator against the test PKI's chains.

import { X509Certificate } from "node:crypto";
import type { HostErrorKind } from "../../src/host.js";
import { CertificateFormatError, deviceCertificate, type DeviceCertificate } from "./device-cert.js";

/** Why the device would refuse the server; undefined when it would trust it. */
export interface ChainRefusal {
  readonly kind: HostErrorKind;
  readonly message: string;
}

/** Signature algorithms the device can check (PKCS#1 v1.5 RSA, DSA-SHA1, ECDSA with SHA-2). */
const DEVICE_SIGNATURES = new Set([
  "1.2.840.113549.1.1.4", "1.2.840.113549.1.1.5", "1.2.840.113549.1.1.11", "1.2.840.113549.1.1.12",
  "1.2.840.113549.1.1.13", "1.2.840.113549.1.1.14", "1.2.840.10040.4.3", "1.3.14.3.2.27",
  "1.2.840.10045.4.3.1", "1.2.840.10045.4.3.2", "1.2.840.10045.4.3.3", "1.2.840.10045.4.3.4",
]);

/** What the device throws: the connection fails with `kind`, and no other CA is tried. */
class DeviceThrow extends Error {
  constructor(message: string, readonly kind: HostErrorKind = "tls") {
    super(message);
  }
}

type Outcome = { readonly trusted: true } | { readonly trusted: false; readonly kind: HostErrorKind; readonly reason: string };

/**
 * Checks `sent` (the server's Certificate message, leaf first) against each
 * trust store CA in turn, as the device would with that CA alone.
 */
export function deviceChainRefusal(
  sent: readonly Uint8Array[],
  trustStore: readonly Uint8Array[],
  serverName: string,
  now = Date.now(),
): ChainRefusal | undefined {
  if (sent.length === 0) return { kind: "tls", message: "the server sent no certificate" };
  const chain = new Chain(sent);
  const refusals: { ca: string; outcome: Outcome & { trusted: false } }[] = [];
  for (const der of trustStore) {
    let outcome: Outcome;
    try {
      outcome = withCa(chain, der, serverName.toLowerCase(), now);
    } catch (error) {
      if (error instanceof DeviceThrow) return { kind: error.kind, message: error.message };
      throw error;
    }
    if (outcome.trusted) return undefined;
    refusals.push({ ca: subjectOf(der), outcome });
  }
  if (refusals.length === 0) return { kind: "tls-untrusted", message: "the trust store is empty" };
  // The device reports the last CA's failure; each CA's reason is told.
  const last = refusals.at(-1)!.outcome;
  const reasons = new Set(refusals.map((r) => r.outcome.reason));
  const told = reasons.size === 1
    ? [...reasons][0]
    : refusals.map((r) => `with CA ${r.ca}: ${r.outcome.reason}`).join("; ");
  return { kind: last.kind, message: `the device's TLS would refuse this server: ${told}` };
}

/** The sent certificates, each read on first use: the device only reads as far as its checks go. */
class Chain {
  readonly #read: (DeviceCertificate | undefined)[] = [];
  constructor(readonly der: readonly Uint8Array[]) {}

  get length(): number {
    return this.der.length;
  }

  /** Certificate `i`, with its public key decoded (where the device throws for a key it cannot read). */
  at(i: number): DeviceCertificate {
    const cert = (this.#read[i] ??= readOrThrow(this.der[i]!, `certificate ${i + 1} the server sent`));
    if (cert.keyError !== undefined) {
      throw new DeviceThrow(`the device's TLS fails with "${cert.keyError}" on certificate ${i + 1} the server sent (${cert.subject})`);
    }
    return cert;
  }

  get subjects(): string {
    return this.der.map(subjectOf).join(" → ");
  }
}

function withCa(chain: Chain, caDer: Uint8Array, name: string, now: number): Outcome {
  // The CA is registered before connecting: what it throws there fails the connect as "other".
  const ca = readOrThrow(caDer, `CA ${subjectOf(caDer)}`, "other");
  if (ca.keyError !== undefined) {
    throw new DeviceThrow(`the device's TLS fails with "${ca.keyError}" on CA ${ca.subject}`, "other");
  }
  if (!within(ca, now)) {
    return { trusted: false, kind: "tls-expired", reason: `CA ${ca.subject} is outside its dates ("date validation failed")` };
  }
  let match: boolean | undefined;
  const answer = (): Outcome => match
    ? { trusted: true }
    : { trusted: false, kind: "tls-untrusted", reason: nameReason(chain, name) };
  const last = chain.length - 1;
  for (let i = 0; i < last; i++) {
    const cert = chain.at(i);
    match = matchName(cert, name, match);
    if (!within(cert, now)) continue;
    const next = chain.at(i + 1);
    if (!signs(next, cert)) continue;
    const aki = next.authorityKeyId;
    if (aki === undefined) {
      throw new DeviceThrow(`the device's TLS fails with "invalid buffer": certificate ${i + 2} the server sent ` +
        `(${next.subject}) has no Authority Key Identifier. The device finds the CA of every certificate after the leaf ` +
        `by that identifier, so each one needs it (openssl: authorityKeyIdentifier = keyid:always)`);
    }
    if (equal(ca.subjectKeyId, aki) && signs(ca, next)) return answer();
  }
  const end = chain.at(last);
  if (!within(end, now)) {
    return { trusted: false, kind: "tls-untrusted", reason: `certificate ${last + 1} the server sent (${end.subject}) is ` +
      `outside its dates ("certificate: auth err", trace "date validation failed")` };
  }
  if (signs(ca, end)) return answer();
  return {
    trusted: false,
    kind: "tls-untrusted",
    reason: `the chain the server sent (${chain.subjects}) does not lead to CA ${ca.subject} ("certificate: auth err"). ` +
      "The device checks only the certificates it is sent: one of them must be signed by the next, and that one by " +
      "the CA (found by its Subject Key Identifier), or the last one sent must be signed by the CA. The server must send leaf + CA",
  };
}

function nameReason(chain: Chain, name: string): string {
  const reason = `the server name ${name} matches no subjectAltName DNS name or IPv4 address the device checks ` +
    `("certificate: auth err", trace "subjectAltName match failed for ${name}")`;
  return chain.length > 1 ? reason
    : `${reason}: the server sent 1 certificate, its leaf alone, and the device matches the name only on a ` +
      "certificate sent with its issuer. The server must send leaf + CA";
}

/**
 * The device's name check on one certificate: dNSName entries (one leading
 * "*" standing for the first label) and 4-byte iPAddress entries; no CN. The
 * result carries over from the previous certificate when this one has no
 * such entry, as on the device.
 */
function matchName(cert: DeviceCertificate, name: string, previous: boolean | undefined): boolean | undefined {
  let match = previous;
  for (const entry of cert.names) {
    if (entry.type === "dns") {
      const pattern = entry.name.toLowerCase();
      if (pattern.startsWith("*")) {
        const dot = name.indexOf(".");
        if (pattern.indexOf("*", 1) > 0 || dot < 0) continue;
        match = pattern.slice(1) === name.slice(dot);
      } else {
        match = pattern === name;
      }
    } else {
      if (entry.bytes.length !== 4) continue;
      match = entry.bytes.join(".") === name;
    }
    if (match) break;
  }
  return match;
}

function within(cert: DeviceCertificate, now: number): boolean {
  return cert.notBefore < now && now < cert.notAfter;
}

/** `issuer`'s key verifies `cert`'s signature, as far as the device can check it. */
function signs(issuer: DeviceCertificate, cert: DeviceCertificate): boolean {
  if (!DEVICE_SIGNATURES.has(cert.signatureAlgorithm)) {
    throw new DeviceThrow(`the device's TLS fails with "Cert: unsupported algorithm: ${cert.signatureAlgorithm.replaceAll(".", ",")}": ` +
      `it cannot check the signature of ${cert.subject}`);
  }
  if (!issuer.keyUsable) return false;
  try {
    return cert.x509.verify(issuer.x509.publicKey);
  } catch {
    return false;
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function readOrThrow(der: Uint8Array, what: string, kind?: HostErrorKind): DeviceCertificate {
  try {
    return deviceCertificate(der);
  } catch (error) {
    if (error instanceof CertificateFormatError) {
      throw new DeviceThrow(`the device's TLS fails with "${error.deviceText}" on ${what}: ${error.message}`, kind);
    }
    throw error;
  }
}

function subjectOf(der: Uint8Array): string {
  try {
    return new X509Certificate(der).subject.replaceAll("\n", ", ");
  } catch {
    return "(not a certificate)";
  }
}
