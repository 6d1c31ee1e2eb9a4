// The host contract: the only way src/ reaches the platform. Each host
// (hosts/node, hosts/xsnap, hosts/moddable) implements it; everything above
// it is written once. Shapes follow ECMA-419: options objects, on* callbacks.

/**
 * Why a connection failed or broke, so the Secure Streams layer can map it
 * to a state: UNREACHABLE for most, AUTH_FAILED for "tls-auth".
 */
export type HostErrorKind =
  | "dns" // the name does not resolve
  | "refused" // nothing listens there
  | "timeout" // connect (or TLS handshake) took too long
  | "reset" // the peer or the network broke the connection
  | "tls-untrusted" // the server's chain does not lead to a CA in the trust store
  | "tls-hostname" // the certificate does not name the server
  | "tls-expired" // a certificate is outside its validity dates
  | "tls-auth" // the server refused our client certificate
  | "tls" // any other TLS failure (protocol, cipher, handshake)
  | "proxy-auth" // the SOCKS5 proxy (ConnectOptions.via) refused our credentials, or wants some we lack
  | "other";

export interface HostError {
  readonly kind: HostErrorKind;
  /** A human-readable detail, for logs. */
  readonly message: string;
}

export interface TlsOptions {
  /** Name to verify the certificate against, and to send as SNI. */
  readonly serverName: string;
  /** Trusted CAs, DER. Only these: never the platform's own store. */
  readonly ca: readonly Uint8Array[];
  /** Client certificate (DER) and its PKCS#8 DER key, when the policy asks for one. */
  readonly clientCert?: Uint8Array;
  readonly clientKey?: Uint8Array;
  readonly alpn?: readonly string[];
}

export interface ConnectOptions {
  /** A DNS name or an IP address; the host resolves names. */
  readonly host: string;
  readonly port: number;
  /**
   * A local (Unix domain) socket to connect to instead of host:port, on
   * hosts that have them (a leading '@' names a Linux abstract socket).
   * Hosts without local sockets fail the connect with kind "refused".
   */
  readonly path?: string;
  /**
   * Reach host:port through this proxy rather than directly (TLS, if any,
   * then runs through the tunnel, end to end with the server).
   */
  readonly via?: ConnectVia;
  readonly tls?: TlsOptions;
  /** Give up (kind "timeout") if not connected, TLS included, within this many ms. */
  readonly timeoutMs?: number;
  /**
   * The receiver reads each onData array during the call only, and copies
   * what it keeps: the host may read into the same memory again, sparing an
   * allocation per read (on Node, most of a fast download's garbage).
   * A host may ignore it.
   */
  readonly lendReads?: boolean;
}

/** A proxy on the way to the server: a SOCKS5 proxy (RFC 1928), with RFC 1929 credentials if given. */
export interface ConnectVia {
  readonly socks5: {
    readonly host: string;
    readonly port: number;
    readonly username?: string;
    readonly password?: string;
  };
}

/** Milliseconds each connect phase took, when the host can tell. */
export interface ConnectTimings {
  readonly dnsMs?: number;
  readonly tcpMs?: number;
  readonly tlsMs?: number;
}

export interface StreamHandlers {
  /** Connected, and for TLS the handshake is done and the peer verified. */
  onConnected(info: { readonly alpn?: string; readonly timings: ConnectTimings; readonly peer?: string }): void;
  /** Bytes from the peer. The array is the receiver's to keep. */
  onData(bytes: Uint8Array): void;
  /** The write buffer drained after write() returned false. */
  onWritable(): void;
  /** The peer ended the stream cleanly. No more callbacks follow. */
  onClosed(): void;
  /** Connecting failed, or the connection broke. No more callbacks follow. */
  onError(error: HostError): void;
}

export interface ByteStream {
  /**
   * Queues bytes (the host copies or sends them before returning). Returns
   * false when the host's buffer is full: wait for onWritable before more.
   */
  write(bytes: Uint8Array): boolean;
  /** Closes the stream; no callbacks follow. Safe to call twice. */
  close(): void;
}

export type TimerId = unknown;

export interface BlobStore {
  get(name: string): Uint8Array | undefined;
  set(name: string, value: Uint8Array): void;
  delete(name: string): void;
}

/** Names of the blobs the runtime reads (lws' lws_system blobs). */
export const BLOB = Object.freeze({
  auth: "auth",
  deviceSerial: "device_serial",
  firmwareVersion: "fw_version",
  deviceType: "device_type",
  ntpServer: "ntp_server",
  mqttClientId: "mqtt_client_id",
  mqttUsername: "mqtt_username",
  mqttPassword: "mqtt_password",
  /** Client certificate pair N: `client_cert.N` and `client_key.N`. */
  clientCert: (n: number) => `client_cert.${n}`,
  clientKey: (n: number) => `client_key.${n}`,
} as const);

export interface Host {
  connect(options: ConnectOptions, handlers: StreamHandlers): ByteStream;
  setTimer(ms: number, callback: () => void): TimerId;
  clearTimer(id: TimerId): void;
  /** Monotonic milliseconds. */
  now(): number;
  /** Whether the wall clock is set: TLS needs it to check certificate dates. */
  timeValid(): boolean;
  /** A uniformly distributed number in [0, 1). */
  random(): number;
  readonly blobs: BlobStore;
  /** Diagnostics; hosts route it to their console or trace. */
  log(message: string): void;
}
