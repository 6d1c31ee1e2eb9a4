// The Node host: the Host contract (src/host.ts) over node:dns, node:net and
// node:tls, for the desktop simulator and the tests.
//
// It must not be kinder than the device (../shared/ARCHITECTURE.md, "Device
// facts"): TLS is offered exactly as Moddable's own TLS stack offers it (TLS
// 1.2 only, its cipher suites, curve and signature algorithms), the server is
// verified against the policy's CAs only (never Node's or the system's root
// store, even when the list is empty), and a client key the device could not
// use (not RSA PKCS#8 DER) fails here as it would there. Blob names and sizes
// are held to the device's NVS limits. There is no option that relaxes any of
// this.

import { createPrivateKey, getRandomValues, X509Certificate } from "node:crypto";
import dns from "node:dns";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { Duplex } from "node:stream";
import tls from "node:tls";
import type {
  BlobStore,
  ByteStream,
  ConnectOptions,
  ConnectTimings,
  Host,
  HostError,
  HostErrorKind,
  StreamHandlers,
  TimerId,
  TlsOptions,
} from "../../src/host.js";

export interface NodeHostOptions {
  /** Keep blobs as files in this directory (created if missing); default: in memory. */
  readonly blobDir?: string;
  /** Where host.log() goes; default: stderr. */
  readonly log?: (message: string) => void;
}

export class NodeHost implements Host {
  readonly blobs: BlobStore;
  readonly #log: (message: string) => void;
  #warnedTlsClose = false;

  constructor(options: NodeHostOptions = {}) {
    this.blobs = options.blobDir === undefined ? new MemoryBlobStore() : new FileBlobStore(options.blobDir);
    this.#log = options.log ?? ((message) => process.stderr.write(`[node-host] ${message}\n`));
  }

  connect(options: ConnectOptions, handlers: StreamHandlers): ByteStream {
    return new NodeStream(options, handlers, this);
  }

  setTimer(ms: number, callback: () => void): TimerId {
    return setTimeout(callback, ms);
  }

  clearTimer(id: TimerId): void {
    clearTimeout(id as ReturnType<typeof setTimeout>);
  }

  now(): number {
    return performance.now();
  }

  timeValid(): boolean {
    return true;
  }

  random(): number {
    return getRandomValues(randomWord)[0]! / 2 ** 32;
  }

  log(message: string): void {
    this.#log(message);
  }

  /** @internal Said once per host: the device would not report this close. */
  noteTlsClose(where: string): void {
    if (this.#warnedTlsClose) return;
    this.#warnedTlsClose = true;
    this.log(`${where}: the peer closed the TLS stream. The device's TLS does not report a peer's close; ` +
      `protocols must detect the end of data themselves (length, keep-alive, close frames).`);
  }
}

const randomWord = new Uint32Array(1);

// ---------------------------------------------------------------------------
// TLS as the device offers it

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
class HostFailure extends Error {
  constructor(readonly kind: HostErrorKind, message: string) {
    super(message);
  }
}

/** Everything but the address; throws HostFailure for unusable certificate or key bytes. */
function tlsConnectOptions(t: TlsOptions, host: string): tls.ConnectionOptions {
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

// ---------------------------------------------------------------------------
// Error classification

const expiredCodes = new Set([
  "CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID", "ERROR_IN_CERT_NOT_BEFORE_FIELD", "ERROR_IN_CERT_NOT_AFTER_FIELD",
]);
const hostnameCodes = new Set(["ERR_TLS_CERT_ALTNAME_INVALID", "HOSTNAME_MISMATCH"]);
/** OpenSSL's X509_V_ERR names as Node reports them: a chain that leads nowhere trusted. */
const untrustedCodes = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT", "CERT_UNTRUSTED", "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE", "UNABLE_TO_DECRYPT_CERT_SIGNATURE", "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
  "INVALID_CA", "INVALID_PURPOSE", "PATH_LENGTH_EXCEEDED", "CERT_CHAIN_TOO_LONG", "CERT_REVOKED",
]);
/** Alerts a server sends about the client's certificate. */
const clientCertAlerts = new Set([
  "CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "UNSUPPORTED_CERTIFICATE", "CERTIFICATE_REVOKED",
  "CERTIFICATE_EXPIRED", "CERTIFICATE_UNKNOWN", "UNKNOWN_CA", "ACCESS_DENIED",
]);
const resetCodes = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED", "ENETRESET", "ERR_STREAM_PREMATURE_CLOSE"]);

/**
 * Maps a Node socket error to the contract's kinds. `certificateRequested`
 * says whether the server asked for a client certificate (CertificateRequest
 * in its first flight): a handshake_failure alert after that is the server
 * turning our client authentication down (TLS 1.2 has no
 * certificate_required alert); without it, a protocol or cipher mismatch.
 */
export function classifySocketError(error: NodeJS.ErrnoException, certificateRequested = false): HostErrorKind {
  const code = error.code ?? "";
  if (code === "ECONNREFUSED") return "refused";
  if (code === "ETIMEDOUT") return "timeout";
  if (resetCodes.has(code)) return "reset";
  if (expiredCodes.has(code)) return "tls-expired";
  if (hostnameCodes.has(code)) return "tls-hostname";
  if (untrustedCodes.has(code)) return "tls-untrusted";
  const alert = /^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_ALERT_(\w+)$/.exec(code)?.[1];
  if (alert !== undefined) {
    if (clientCertAlerts.has(alert)) return "tls-auth";
    if (alert === "HANDSHAKE_FAILURE" && certificateRequested) return "tls-auth";
    return "tls";
  }
  if (code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_") || code === "EPROTO") return "tls";
  return "other";
}

// ---------------------------------------------------------------------------
// One connection

type Phase = "dns" | "tcp" | "tls" | "open" | "ended";

/**
 * Connects (DNS, TCP, TLS), then relays events. Callbacks follow the
 * contract: onConnected, then onData/onWritable, then onClosed or onError; or
 * onError alone; nothing after close().
 */
class NodeStream implements ByteStream {
  readonly #options: ConnectOptions;
  readonly #handlers: StreamHandlers;
  readonly #host: NodeHost;
  #phase: Phase = "dns";
  #tls: tls.ConnectionOptions | undefined;
  /** The TCP socket, and the TLS socket over it when secure. */
  #tcp: net.Socket | undefined;
  #socket: net.Socket | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #probe: HandshakeProbe | undefined;

  constructor(options: ConnectOptions, handlers: StreamHandlers, host: NodeHost) {
    this.#options = options;
    this.#handlers = handlers;
    this.#host = host;
    if (options.timeoutMs !== undefined) {
      this.#timer = setTimeout(() => this.#fail("timeout", `${this.#where}: not connected within ${options.timeoutMs} ms`),
        options.timeoutMs);
    }
    try {
      // Checked before any I/O: a key the device cannot use fails even when
      // the server is down or would not ask for it.
      if (options.tls !== undefined) this.#tls = tlsConnectOptions(options.tls, options.host);
    } catch (error) {
      const kind = error instanceof HostFailure ? error.kind : "other";
      queueMicrotask(() => this.#fail(kind, (error as Error).message));
      return;
    }
    this.#resolve();
  }

  write(bytes: Uint8Array): boolean {
    if (this.#phase === "ended") return false;
    if (this.#phase !== "open") throw new Error("write() before onConnected");
    // Buffer.from copies: the caller may reuse `bytes` as soon as we return,
    // and Node would otherwise send from the caller's memory later.
    return this.#socket!.write(Buffer.from(bytes));
  }

  close(): void {
    this.#end();
  }

  get #where(): string {
    return `${this.#options.host}:${this.#options.port}`;
  }

  #resolve(): void {
    const { host } = this.#options;
    if (net.isIP(host) !== 0) {
      queueMicrotask(() => this.#connect(host, 0));
      return;
    }
    const start = performance.now();
    dns.lookup(host, { all: true }, (error, addresses) => {
      if (this.#phase !== "dns") return;
      if (error) return this.#fail("dns", `${host}: ${error.code ?? error.message}`);
      // The device's stack is IPv4, and test servers listen on 127.0.0.1.
      const address = addresses.find((a) => a.family === 4) ?? addresses[0];
      if (address === undefined) return this.#fail("dns", `${host}: no address`);
      this.#connect(address.address, performance.now() - start);
    });
  }

  #connect(address: string, dnsMs: number): void {
    if (this.#phase !== "dns") return;
    const start = performance.now();
    let tcp: net.Socket;
    try {
      tcp = net.connect({ host: address, port: this.#options.port });
    } catch (error) {
      // Bad arguments, such as a port out of range.
      return this.#fail("other", `${this.#where}: ${(error as Error).message}`);
    }
    this.#tcp = tcp;
    this.#phase = "tcp";
    this.#watch(tcp);
    tcp.once("connect", () => {
      const timings = { dnsMs, tcpMs: performance.now() - start };
      if (this.#tls === undefined) this.#opened(tcp, timings);
      else this.#handshake(tcp, this.#tls, timings);
    });
  }

  #handshake(tcp: net.Socket, options: tls.ConnectionOptions, timings: { dnsMs: number; tcpMs: number }): void {
    this.#phase = "tls";
    const start = performance.now();
    const probe = (this.#probe = new HandshakeProbe(tcp));
    let socket: tls.TLSSocket;
    try {
      socket = tls.connect({ ...options, socket: probe });
    } catch (error) {
      return this.#fail("tls", `${this.#where}: ${(error as Error).message}`);
    }
    this.#watch(socket);
    socket.once("secureConnect", () => {
      // rejectUnauthorized already refused an unverified peer; this guards
      // the promise that nothing ever connects unverified.
      if (!socket.authorized) return this.#fail("tls-untrusted", `${this.#where}: ${socket.authorizationError}`);
      const sent = probe.serverCertificates;
      if (sent !== undefined && sent < 2) {
        return this.#fail("tls-untrusted", `${this.#where}: the server sent ${sent} certificate${sent === 1 ? "" : "s"}; ` +
          `the device's TLS verifies only a chain the server sends (leaf + CA), so it would refuse this server`);
      }
      this.#opened(socket, { ...timings, tlsMs: performance.now() - start }, socket.alpnProtocol || undefined);
    });
  }

  /** Errors and closes from either layer; the first one ends the stream. */
  #watch(socket: net.Socket): void {
    socket.on("error", (error: NodeJS.ErrnoException) => {
      const kind = classifySocketError(error, this.#probe?.certificateRequested);
      this.#fail(kind, `${this.#where}: ${error.code ? `${error.code}: ` : ""}${error.message}`);
    });
    socket.on("close", () => this.#fail("reset", `${this.#where}: connection closed`));
  }

  #opened(socket: net.Socket, timings: ConnectTimings, alpn?: string): void {
    if (this.#phase === "ended") return;
    this.#phase = "open";
    this.#socket = socket;
    clearTimeout(this.#timer);
    socket.on("data", (data: Buffer) => {
      // The receiver keeps the array: Node gives each read its own memory.
      if (this.#phase === "open") this.#handlers.onData(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    });
    socket.on("drain", () => {
      if (this.#phase === "open") this.#handlers.onWritable();
    });
    socket.on("end", () => this.#peerEnded());
    const tcp = this.#tcp!;
    const peer = tcp.remoteFamily === "IPv6" ? `[${tcp.remoteAddress}]:${tcp.remotePort}` : `${tcp.remoteAddress}:${tcp.remotePort}`;
    this.#handlers.onConnected({ alpn, timings, peer });
  }

  #peerEnded(): void {
    if (this.#phase !== "open") return;
    this.#phase = "ended";
    // allowHalfOpen is off: Node ends our side once pending writes are sent.
    if (this.#options.tls !== undefined) this.#host.noteTlsClose(this.#where);
    this.#handlers.onClosed();
  }

  #fail(kind: HostErrorKind, message: string): void {
    if (this.#phase === "ended") return;
    this.#end();
    this.#handlers.onError({ kind, message } satisfies HostError);
  }

  #end(): void {
    this.#phase = "ended";
    clearTimeout(this.#timer);
    this.#socket?.destroy();
    this.#tcp?.destroy();
  }
}

/**
 * Passes a TLS connection's bytes through unchanged, reading the server's
 * first flight on the way (clear text in TLS 1.2) for two facts Node's API
 * does not give: how many certificates the server sent (Node completes a
 * leaf-only chain from the trust store; the device cannot), and whether it
 * asked for a client certificate. Reading stops at ServerHelloDone.
 */
class HandshakeProbe extends Duplex {
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

// ---------------------------------------------------------------------------
// Blobs

/** ESP32 NVS, through Moddable's Preference: keys up to 15 characters, values up to 4000 bytes. */
export const BLOB_LIMITS = { nameLength: 15, valueBytes: 4000 } as const;

// No leading dot: that rules out "." and "..", and keeps FileBlobStore's
// temporary files (".name.tmp") out of the name space.
const blobName = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

function checkBlobName(name: string): void {
  if (!blobName.test(name) || name.length > BLOB_LIMITS.nameLength) {
    throw new RangeError(`bad blob name ${JSON.stringify(name)}: use 1-${BLOB_LIMITS.nameLength} of [A-Za-z0-9_.-], not starting with '.'`);
  }
}

function checkBlobValue(name: string, value: Uint8Array): void {
  if (value.byteLength > BLOB_LIMITS.valueBytes) {
    throw new RangeError(`blob ${name} is ${value.byteLength} bytes; the device stores at most ${BLOB_LIMITS.valueBytes}`);
  }
}

/** Blobs in memory; values are copied in and out, as the file store does. */
export class MemoryBlobStore implements BlobStore {
  readonly #values = new Map<string, Uint8Array>();

  get(name: string): Uint8Array | undefined {
    checkBlobName(name);
    return this.#values.get(name)?.slice();
  }

  set(name: string, value: Uint8Array): void {
    checkBlobName(name);
    checkBlobValue(name, value);
    this.#values.set(name, value.slice());
  }

  delete(name: string): void {
    checkBlobName(name);
    this.#values.delete(name);
  }
}

/** One file per blob in `dir`; a write goes to a temporary file and is renamed into place. */
export class FileBlobStore implements BlobStore {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
    mkdirSync(dir, { recursive: true });
  }

  get(name: string): Uint8Array | undefined {
    checkBlobName(name);
    try {
      return new Uint8Array(readFileSync(path.join(this.#dir, name)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }

  set(name: string, value: Uint8Array): void {
    checkBlobName(name);
    checkBlobValue(name, value);
    const temporary = path.join(this.#dir, `.${name}.tmp`);
    writeFileSync(temporary, value);
    renameSync(temporary, path.join(this.#dir, name));
  }

  delete(name: string): void {
    checkBlobName(name);
    rmSync(path.join(this.#dir, name), { force: true });
  }
}
