// What the device's TLS (Moddable's modules/crypt) reads from an X.509
// certificate when it verifies a server's chain: dates, signature algorithm,
// public key type, key identifiers and subjectAltName entries. Read from the
// DER with a small bounded reader, because Node's X509Certificate does not
// expose the key identifiers, and the device reads some fields its own way
// (a missing Subject Key Identifier is computed, dates have fixed forms).

import { createHash, X509Certificate } from "node:crypto";

/** A subjectAltName entry the device matches: dNSName (2) or iPAddress (7). */
export type SanEntry = { readonly type: "dns"; readonly name: string } | { readonly type: "ip"; readonly bytes: Uint8Array };

export interface DeviceCertificate {
  readonly x509: X509Certificate;
  /** The subject as Node prints it, for messages. */
  readonly subject: string;
  /** Validity in ms since 1970. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** The certificate's signature algorithm, dotted. */
  readonly signatureAlgorithm: string;
  /** Why the device cannot read the public key (it throws this), if it cannot. */
  readonly keyError: string | undefined;
  /** The device can check signatures with this key: RSA, or EC on P-256/P-384. */
  readonly keyUsable: boolean;
  /** The Subject Key Identifier extension, or SHA-1 of the public key as the device computes it without one. */
  readonly subjectKeyId: Uint8Array;
  /** The keyIdentifier of the Authority Key Identifier extension; undefined without one. */
  readonly authorityKeyId: Uint8Array | undefined;
  /** dNSName and iPAddress entries of subjectAltName, in order. */
  readonly names: readonly SanEntry[];
}

/** A certificate the device could not parse; `deviceText` is what it throws. */
export class CertificateFormatError extends Error {
  constructor(readonly deviceText: string, message: string) {
    super(message);
  }
}

const RSA_KEYS = new Set(["1.2.840.113549.1.1.1", "1.3.14.3.2.11", "2.5.8.1.1"]);
const EC_KEY = "1.2.840.10045.2.1";
const DEVICE_CURVES = new Set(["1.2.840.10045.3.1.7", "1.3.132.0.34"]); // secp256r1, secp384r1
const EXT_SKI = "2.5.29.14";
const EXT_SAN = "2.5.29.17";
const EXT_AKI = "2.5.29.35";

/** Reads what the device reads; throws CertificateFormatError for DER it could not parse. */
export function deviceCertificate(der: Uint8Array): DeviceCertificate {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(Buffer.from(der.buffer, der.byteOffset, der.byteLength));
  } catch {
    throw new CertificateFormatError("x509: malformed input", "not a DER X.509 certificate");
  }
  const cert = sequence(der, { start: 0, end: der.length }, "certificate");
  const [tbsTlv, algorithm] = children(der, cert, 2, "certificate");
  const tbs = children(der, tbsTlv!, 6, "tbsCertificate");
  let at = tbs[0]!.tag === 0xa0 ? 1 : 0; // [0] version
  at += 3; // serialNumber, signature, issuer
  if (tbs.length < at + 3) throw malformed("tbsCertificate");
  const [validity, , spki] = tbs.slice(at, at + 3);
  const [from, to] = children(der, validity!, 2, "validity");
  const extensions = tbs.slice(at + 3).find((t) => t.tag === 0xa3);
  const ext = extensions ? readExtensions(der, extensions) : new Map<string, Uint8Array>();
  const key = readKey(der, spki!);
  return {
    x509,
    subject: x509.subject.replaceAll("\n", ", "),
    notBefore: readTime(der, from!),
    notAfter: readTime(der, to!),
    signatureAlgorithm: oid(der, children(der, algorithm!, 1, "signatureAlgorithm")[0]!),
    keyError: key.error,
    keyUsable: key.usable,
    subjectKeyId: subjectKeyId(ext.get(EXT_SKI), key.bits),
    authorityKeyId: authorityKeyId(ext.get(EXT_AKI)),
    names: subjectAltNames(ext.get(EXT_SAN)),
  };
}

// ---------------------------------------------------------------------------
// DER: tag, length, contents; short tags, definite lengths, every length checked.

interface Tlv {
  readonly tag: number;
  /** Contents: start to end. */
  readonly start: number;
  readonly end: number;
}

function malformed(what: string): CertificateFormatError {
  return new CertificateFormatError("x509: malformed input", `malformed DER in the ${what}`);
}

function readTlv(der: Uint8Array, at: number, limit: number, what: string): Tlv {
  if (at + 2 > limit) throw malformed(what);
  const tag = der[at]!;
  if ((tag & 0x1f) === 0x1f) throw malformed(what);
  let length = der[at + 1]!;
  let start = at + 2;
  if (length & 0x80) {
    const octets = length & 0x7f;
    if (octets === 0 || octets > 3 || start + octets > limit) throw malformed(what);
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + der[start + i]!;
    start += octets;
  }
  if (start + length > limit) throw malformed(what);
  return { tag, start, end: start + length };
}

function children(der: Uint8Array, parent: Tlv, atLeast: number, what: string): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end;) {
    const tlv = readTlv(der, at, parent.end, what);
    out.push(tlv);
    at = tlv.end;
  }
  if (out.length < atLeast) throw malformed(what);
  return out;
}

function sequence(der: Uint8Array, within: { start: number; end: number }, what: string): Tlv {
  const tlv = readTlv(der, within.start, within.end, what);
  if (tlv.tag !== 0x30) throw malformed(what);
  return tlv;
}

function oid(der: Uint8Array, tlv: Tlv): string {
  if (tlv.tag !== 0x06 || tlv.end === tlv.start) throw malformed("object identifier");
  const first = der[tlv.start]!;
  const parts = [Math.floor(first / 40), first % 40];
  let value = 0;
  for (let i = tlv.start + 1; i < tlv.end; i++) {
    value = value * 128 + (der[i]! & 0x7f);
    if ((der[i]! & 0x80) === 0) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join(".");
}

/** UTCTime (13 characters, YY < 50 is 20YY) or GeneralizedTime (15), ending in Z: the only forms the device reads. */
function readTime(der: Uint8Array, tlv: Tlv): number {
  const text = Buffer.from(der.subarray(tlv.start, tlv.end)).toString("latin1");
  if (!text.endsWith("Z")) throw new CertificateFormatError("unexpected timezone", `validity time ${text} is not in UTC (Z)`);
  let digits: string;
  if (text.length === 13) digits = `${Number(text.slice(0, 2)) < 50 ? "20" : "19"}${text}`;
  else if (text.length === 15) digits = text;
  else throw new CertificateFormatError("unexpected date", `validity time ${text} has neither the 13- nor the 15-character form`);
  const n = (from: number, to: number) => Number(digits.slice(from, to));
  return Date.UTC(n(0, 4), n(4, 6) - 1, n(6, 8), n(8, 10), n(10, 12), n(12, 14));
}

function readExtensions(der: Uint8Array, explicit: Tlv): Map<string, Uint8Array> {
  const map = new Map<string, Uint8Array>();
  const list = sequence(der, explicit, "extensions");
  for (const extension of children(der, list, 0, "extensions")) {
    const parts = children(der, extension, 2, "extension");
    const value = parts.at(-1)!;
    if (value.tag !== 0x04) throw malformed("extension");
    map.set(oid(der, parts[0]!), der.subarray(value.start, value.end));
  }
  return map;
}

/** The key's type as the device reads it, and the subjectPublicKey bits (without the unused-bits octet). */
function readKey(der: Uint8Array, spki: Tlv): { usable: boolean; error: string | undefined; bits: Uint8Array } {
  const [algorithm, bitString] = children(der, spki, 2, "subjectPublicKeyInfo");
  if (bitString!.tag !== 0x03 || bitString!.end === bitString!.start) throw malformed("subjectPublicKeyInfo");
  const bits = der.subarray(bitString!.start + 1, bitString!.end);
  const [type, parameters] = children(der, algorithm!, 1, "subjectPublicKeyInfo");
  const name = oid(der, type!);
  if (RSA_KEYS.has(name)) return { usable: true, error: undefined, bits };
  if (name !== EC_KEY) return { usable: false, error: undefined, bits }; // read as an empty key
  if (parameters?.tag !== 0x06) return { usable: false, error: "x509: support named curves only for now", bits };
  if (!DEVICE_CURVES.has(oid(der, parameters))) return { usable: false, error: "x509: unsupported curve", bits };
  return { usable: true, error: undefined, bits };
}

function subjectKeyId(extension: Uint8Array | undefined, keyBits: Uint8Array): Uint8Array {
  if (extension !== undefined) {
    const id = readTlv(extension, 0, extension.length, "Subject Key Identifier");
    if (id.tag !== 0x04) throw malformed("Subject Key Identifier");
    return extension.subarray(id.start, id.end);
  }
  return new Uint8Array(createHash("sha1").update(keyBits).digest());
}

/** AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0], authorityCertIssuer [1], serial [2] }: the device wants [0]. */
function authorityKeyId(extension: Uint8Array | undefined): Uint8Array | undefined {
  if (extension === undefined) return undefined;
  const aki = sequence(extension, { start: 0, end: extension.length }, "Authority Key Identifier");
  const keyId = children(extension, aki, 0, "Authority Key Identifier").find((t) => (t.tag & 0x1f) === 0);
  return keyId && extension.subarray(keyId.start, keyId.end);
}

function subjectAltNames(extension: Uint8Array | undefined): SanEntry[] {
  if (extension === undefined) return [];
  const list = sequence(extension, { start: 0, end: extension.length }, "subjectAltName");
  const names: SanEntry[] = [];
  for (const entry of children(extension, list, 0, "subjectAltName")) {
    const value = extension.subarray(entry.start, entry.end);
    if ((entry.tag & 0x7f) === 2) names.push({ type: "dns", name: Buffer.from(value).toString("latin1") });
    else if ((entry.tag & 0x7f) === 7) names.push({ type: "ip", bytes: value });
  }
  return names;
}
