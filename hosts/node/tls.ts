// TLS as the device offers it: Moddable's ClientHello (TLS 1.2, its suites,
// curve and signatures), trust in the policy's CAs only, client credentials
// the device could use (RSA, PKCS#8 DER), and a probe of the server's first
// flight for what Node hides (the chain as sent, a CertificateRequest).

import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import net from "node:net";
import { Duplex } from "node:stream";
import tls from "node:tls";
import type { HostErrorKind, TlsOptions } from "../../src/host.js";
import { deviceChainRefusal, type ChainRefusal } from "./device-chain.js";
import { ServerFlightReader, type FlightWork } from "./server-flight.js";

/**
 * What Moddable's TLS (modules/crypt/ssl) puts in its ClientHello, with the
 * default manifest config (DHE_RSA and ECDHE_RSA on): TLS 1.2, these suites in
 * this order, curve secp256r1 only, SHA-256 signatures only. A server that
 * insists on anything else is unreachable from the device, so it is here too.
 */
export const DEVICE_TLS = {
  minVersion: "TLSv1.2",
  maxVersion: "TLSv1.2",
  ciphers: [
    "AES128-SHA",
    "AES256-SHA",
    "AES128-SHA256",
    "AES256-SHA256",
    "DHE-RSA-AES128-SHA256",
    "DHE-RSA-AES256-SHA256",
    "DHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
  ].join(":"),
  ecdhCurve: "prime256v1",
  sigalgs: "ECDSA+SHA256:RSA+SHA256",
} as const satisfies tls.ConnectionOptions;

/** A connect failure found before any I/O (bad certificate or key bytes). */
export class HostFailure extends Error {
  constructor(readonly kind: HostErrorKind, message: string) {
    super(message);
  }
}

/** Everything but the address; throws HostFailure for unusable certificate or key bytes. */
export function tlsConnectOptions(t: TlsOptions, host: string): tls.ConnectionOptions {
  const serverName = t.serverName || host;
  const options: tls.ConnectionOptions = {
    ...DEVICE_TLS,
    // Node falls back to its bundled root store only when `ca` is absent, so
    // an empty array trusts nothing, as the contract wants.
    ca: t.ca.map((der, i) => certificatePem(der, `trust store certificate ${i}`, "other")),
    rejectUnauthorized: true,
    checkServerIdentity: (_name, cert) => tls.checkServerIdentity(serverName, cert),
  };
  // SNI carries DNS names only (RFC 6066; Node warns on an IP). An IP
  // serverName is still checked against the certificate's IP SANs above.
  if (!net.isIP(serverName)) options.servername = serverName;
  if (t.alpn !== undefined && t.alpn.length > 0) {
    const bad = t.alpn.find((name) => name.length === 0 || Buffer.byteLength(name) > 255);
    if (bad !== undefined) throw new HostFailure("other", `ALPN protocol name ${JSON.stringify(bad)} is not 1-255 bytes`);
    options.ALPNProtocols = [...t.alpn];
  }
  if (t.clientCert !== undefined || t.clientKey !== undefined) Object.assign(options, clientCredentials(t));
  return options;
}

/**
 * The device signs CertificateVerify with RSA only and parses the key as
 * PKCS#8 ("RSA only", modules/crypt/ssl), so any other key is a credential it
 * can never use. That is reported as "tls-auth" (AUTH_FAILED above us): the
 * credential is wrong, and retrying the connection cannot fix it.
 */
function clientCredentials(t: TlsOptions): { cert: string; key: string } {
  if (t.clientCert === undefined || t.clientKey === undefined) {
    throw new HostFailure("tls-auth", "a client certificate needs both clientCert and clientKey");
  }
  let key;
  try {
    key = createPrivateKey({ key: Buffer.from(t.clientKey), format: "der", type: "pkcs8" });
  } catch {
    throw new HostFailure("tls-auth", "client key is not an unencrypted PKCS#8 DER private key, the only form the device reads");
  }
  if (key.asymmetricKeyType !== "rsa") {
    throw new HostFailure("tls-auth",
      `client key is ${key.asymmetricKeyType}, not RSA: the device's TLS can only sign with an RSA client key`);
  }
  const cert = certificatePem(t.clientCert, "client certificate", "tls-auth");
  if (!new X509Certificate(cert).checkPrivateKey(key)) {
    throw new HostFailure("tls-auth", "client certificate and client key do not belong together");
  }
  return { cert, key: key.export({ format: "pem", type: "pkcs8" }) as string };
}

function certificatePem(der: Uint8Array, what: string, kind: HostErrorKind): string {
  try {
    return new X509Certificate(Buffer.from(der.buffer, der.byteOffset, der.byteLength)).toString();
  } catch {
    throw new HostFailure(kind, `${what} is not a DER X.509 certificate`);
  }
}


/**
 * What the device would still refuse once Node has verified the server: a
 * handshake message it cannot parse, or the chain as sent, by the device's
 * rules (device-chain.ts). Call after the handshake, with its probe.
 */
export function deviceRefusal(probe: HandshakeProbe, t: TlsOptions, host: string): ChainRefusal | undefined {
  const split = probe.splitMessage;
  if (split !== undefined) {
    return { kind: "tls", message: `the server's ${split.name} message${split.size === undefined ? "" : ` (${split.size} bytes)`} ` +
      "does not fit in one TLS record. The device's TLS reads each handshake message from a single record (at most " +
      "16 KiB: a long certificate chain does not fit) and fails with an empty Error" };
  }
  if (probe.serverChain === undefined) {
    return { kind: "tls", message: "the server's Certificate message was not seen, so the device's chain rules could not be checked" };
  }
  return deviceChainRefusal(probe.serverChain, t.ca, t.serverName || host);
}

/**
 * The chain Node's TLS reports once it has verified the server: the leaf,
 * then each issuer it found among the certificates sent or in the trust
 * store. The same chain sent in another order, or with extra certificates,
 * gives the same digest: that is what NodeStream's handshake accepts when it
 * does not read the first flight itself.
 */
export function peerChainDigest(socket: tls.TLSSocket): string {
  const hash = createHash("sha256");
  // an empty object when there is no certificate; a root is its own issuer
  let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  for (let depth = 0; cert?.raw !== undefined && depth < 16; depth++) {
    hash.update(`${cert.raw.length}:`).update(cert.raw);
    cert = cert.issuerCertificate === cert ? undefined : cert.issuerCertificate;
  }
  return hash.digest("base64");
}

/**
 * Passes a TLS connection's bytes through unchanged, reading the server's
 * first flight on the way (server-flight.ts). Once that flight is read
 * (ServerHelloDone, or anything that ends it) the probe only relays: it
 * looks at no more bytes and copies none. Node has no way to move a TLS
 * session from this stream onto the TCP socket itself, so the relay stays
 * for the connection's life, and costs CPU on every byte (a JS stream under
 * Node's TLS): that is why a known server goes without one.
 */
export class HandshakeProbe extends Duplex {
  readonly flight: ServerFlightReader;
  readonly #tcp: net.Socket;

  constructor(tcp: net.Socket, work?: FlightWork) {
    super();
    this.#tcp = tcp;
    this.flight = new ServerFlightReader(work);
    const relay = (chunk: Buffer) => {
      if (!this.push(chunk)) tcp.pause();
    };
    const read = (chunk: Buffer) => {
      if (!this.flight.push(chunk)) {
        // the first flight is over: from now on, bytes only pass through
        tcp.off("data", read);
        tcp.on("data", relay);
      }
      relay(chunk);
    };
    tcp.on("data", read);
    tcp.on("end", () => this.push(null));
    // The TCP socket's own error is reported by its listener in NodeStream.
    tcp.on("close", () => this.destroy());
  }

  get serverChain(): Uint8Array[] | undefined { return this.flight.serverChain; }
  get certificateRequested(): boolean { return this.flight.certificateRequested; }
  get splitMessage(): ServerFlightReader["splitMessage"] { return this.flight.splitMessage; }

  override _read(): void {
    this.#tcp.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    // Done as soon as TCP takes the bytes (or drains), not when the kernel
    // has them: TLS waits for each write to finish before its next one (a
    // WINDOW_UPDATE, say). A write error is the TCP socket's, reported by
    // its own listener.
    if (this.#tcp.write(chunk)) done();
    else this.#tcp.once("drain", () => done());
  }

  override _final(done: () => void): void {
    this.#tcp.end();
    done();
  }

  override _destroy(error: Error | null, done: (error: Error | null) => void): void {
    this.#tcp.destroy();
    done(error);
  }
}
