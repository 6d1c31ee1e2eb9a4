// TLS as the device offers it: Moddable's ClientHello (TLS 1.2, its suites,
// curve and signatures), trust in the policy's CAs only, client credentials
// the device could use (RSA, PKCS#8 DER), and a probe of the server's first
// flight for what Node hides (a leaf-only chain, a CertificateRequest).

import { createPrivateKey, X509Certificate } from "node:crypto";
import net from "node:net";
import { Duplex } from "node:stream";
import tls from "node:tls";
import type { HostErrorKind, TlsOptions } from "../../src/host.js";

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
 * Passes a TLS connection's bytes through unchanged, reading the server's
 * first flight on the way (clear text in TLS 1.2) for two facts Node's API
 * does not give: how many certificates the server sent (Node completes a
 * leaf-only chain from the trust store; the device cannot), and whether it
 * asked for a client certificate. Reading stops at ServerHelloDone.
 */
export class HandshakeProbe extends Duplex {
  /** Certificates the server sent; undefined if no Certificate message was seen. */
  serverCertificates: number | undefined;
  /** The server sent a CertificateRequest. */
  certificateRequested = false;
  readonly #tcp: net.Socket;
  /** Unparsed record bytes, then handshake bytes; undefined once done. */
  #records: Buffer | undefined = Buffer.alloc(0);
  #messages = Buffer.alloc(0);

  constructor(tcp: net.Socket) {
    super();
    this.#tcp = tcp;
    tcp.on("data", (chunk: Buffer) => {
      if (this.#records !== undefined) this.#scan(chunk);
      if (!this.push(chunk)) tcp.pause();
    });
    tcp.on("end", () => this.push(null));
    // The TCP socket's own error is reported by its listener in NodeStream.
    tcp.on("close", () => this.destroy());
  }

  override _read(): void {
    this.#tcp.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.#tcp.write(chunk, done);
  }

  override _final(done: () => void): void {
    this.#tcp.end();
    done();
  }

  override _destroy(error: Error | null, done: (error: Error | null) => void): void {
    this.#tcp.destroy();
    done(error);
  }

  #scan(chunk: Buffer): void {
    let records = Buffer.concat([this.#records!, chunk]);
    while (records.length >= 5) {
      const end = 5 + records.readUInt16BE(3);
      if (records.length < end) break;
      // Anything but a handshake record means the server's first flight is over.
      if (records[0] !== 22) return this.#stop();
      let messages = Buffer.concat([this.#messages, records.subarray(5, end)]);
      records = records.subarray(end);
      while (messages.length >= 4) {
        const type = messages[0]!;
        const next = 4 + messages.readUIntBE(1, 3);
        if (messages.length < next) break;
        if (type === 11) this.serverCertificates = countCertificates(messages.subarray(4, next));
        if (type === 13) this.certificateRequested = true;
        if (type === 14) return this.#stop(); // ServerHelloDone
        messages = messages.subarray(next);
      }
      this.#messages = messages;
    }
    this.#records = records;
    if (records.length + this.#messages.length > 256 * 1024) this.#stop();
  }

  #stop(): void {
    this.#records = undefined;
    this.#messages = Buffer.alloc(0);
  }
}

/** Entries in a TLS 1.2 Certificate body: a 3-byte total, then 3-byte-length-prefixed DER. */
function countCertificates(body: Buffer): number {
  let count = 0;
  for (let at = 3; at + 3 <= body.length; count++) at += 3 + body.readUIntBE(at, 3);
  return count;
}
