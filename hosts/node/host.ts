// The Node host: the Host contract (src/host.ts) over node:dns, node:net and
// node:tls, for the desktop simulator and the tests.
//
// It must not be kinder than the device: TLS is offered exactly as Moddable's
// own TLS stack offers it (TLS 1.2 only, its cipher suites, curve and
// signature algorithms), the server is verified against the policy's CAs only
// (never Node's or the system's root store, even when the list is empty), and
// a client key the device could not use (not RSA PKCS#8 DER) fails here as it
// would there. Blob names and sizes are held to the device's NVS limits. The
// chain the server sends is also checked by the device's own rules
// (device-chain.ts), after Node's checks. There is no option that relaxes any
// of this.

import { getRandomValues } from "node:crypto";
import dns from "node:dns";
import net from "node:net";
import { performance } from "node:perf_hooks";
import tls from "node:tls";
import type {
  BlobStore,
  ByteStream,
  ConnectOptions,
  ConnectTimings,
  ConnectVia,
  Host,
  HostError,
  HostErrorKind,
  StreamHandlers,
  TimerId,
} from "../../src/host.js";
import { BLOB_LIMITS, FileBlobStore, MemoryBlobStore } from "./blobs.js";
import { SplitBlobStore } from "../../src/system/split-blobs.js";
import { classifySocketError } from "./errors.js";
import { deviceRefusal, HandshakeProbe, HostFailure, peerChainDigest, tlsConnectOptions } from "./tls.js";
import { TlsSessionCache, trustContextKey } from "./sessions.js";
import { TlsContextCache, type KnownServer } from "./tls-contexts.js";
import { parseSocks5Proxy, Socks5Error, Socks5Handshake } from "../../src/wire/socks5/index.js";

export interface NodeHostOptions {
  /** Keep blobs as files in this directory (created if missing); default: in memory. */
  readonly blobDir?: string;
  /** Where host.log() goes; default: stderr. */
  readonly log?: (message: string) => void;
  /**
   * DNS servers to ask for A records ("address" or "address:port"), as the
   * device host's `dnsServers`; "localhost" is 127.0.0.1 without asking, as
   * there. Default: the system's resolver.
   */
  readonly dnsServers?: readonly string[];
  /**
   * Resume TLS sessions, each only under the trust context that made it
   * (sessions.ts). Default true. (The device host does not resume: see docs/h1.md.)
   */
  readonly tlsResumption?: boolean;
  /**
   * A SOCKS5 proxy, "[user:pass@]host:port", for every TCP connection that
   * names none itself (ConnectOptions.via): lws' `socks_proxy` environment
   * variable.
   */
  readonly socksProxy?: string;
}

export class NodeHost implements Host {
  readonly blobs: BlobStore;
  readonly #log: (message: string) => void;
  /** @internal */
  readonly resolver: dns.Resolver | undefined;
  /** @internal */
  readonly via: ConnectVia | undefined;
  #warnedTlsClose = false;
  /** Random words drawn ahead (see random()). */
  readonly #random = new Uint32Array(256);
  #randomNext = 256;
  /** @internal TLS sessions to resume, each under its whole trust context (sessions.ts); undefined: none resumed. */
  readonly sessions: TlsSessionCache | undefined;
  /** @internal TLS options and accepted chains, per trust context (tls-contexts.ts). */
  readonly tlsContexts = new TlsContextCache();
  /** @internal What the TLS first-flight readers of this host's connections did, summed (a test reads it). */
  readonly flightWork = { scanned: 0, copied: 0 };
  #readBuffer: Buffer | undefined;

  /**
   * @internal The memory every lendReads connection reads into: one for the
   * host, since each read is handed on and done with before the next.
   */
  get readBuffer(): Buffer {
    return (this.#readBuffer ??= Buffer.allocUnsafeSlow(LENT_READ_BYTES));
  }

  constructor(options: NodeHostOptions = {}) {
    // as on the device: a value over one stored value's limit goes in pieces
    this.blobs = new SplitBlobStore(options.blobDir === undefined ? new MemoryBlobStore() : new FileBlobStore(options.blobDir), BLOB_LIMITS.valueBytes);
    this.sessions = options.tlsResumption === false ? undefined : new TlsSessionCache();
    this.#log = options.log ?? ((message) => process.stderr.write(`[node-host] ${message}\n`));
    if (options.socksProxy !== undefined && options.socksProxy !== "") {
      const socks5 = parseSocks5Proxy(options.socksProxy);
      if (!socks5) throw new RangeError(`socks proxy "${options.socksProxy}" is not [user:pass@]host:port`);
      this.via = { socks5 };
    }
    if (options.dnsServers !== undefined) {
      this.resolver = new dns.Resolver();
      this.resolver.setServers(options.dnsServers);
    }
  }

  connect(options: ConnectOptions, handlers: StreamHandlers): ByteStream {
    return new NodeStream(options, handlers, this);
  }

  setTimer(ms: number, callback: () => void): TimerId {
    return new LongTimer(ms, callback);
  }

  clearTimer(id: TimerId): void {
    if (id instanceof LongTimer) id.clear();
  }

  now(): number {
    return performance.now();
  }

  timeValid(): boolean {
    return true;
  }

  random(): number {
    // drawn from the system's source 256 words at a time: one call each costs microseconds
    if (this.#randomNext === this.#random.length) {
      getRandomValues(this.#random);
      this.#randomNext = 0;
    }
    return this.#random[this.#randomNext++]! / 2 ** 32;
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


/** The most one lent read takes: larger than Node's 64 KiB, so that a fast stream needs fewer reads. */
const LENT_READ_BYTES = 256 * 1024;

/** Longest delay setTimeout takes; a longer one fires after 1 ms (Node's TimeoutOverflowWarning). */
const MAX_SET_TIMEOUT = 2 ** 31 - 1;

/** A timer of any u32 delay (the host contract's): longer ones are set in steps setTimeout takes. */
class LongTimer {
  #timeout: ReturnType<typeof setTimeout> | undefined;

  constructor(ms: number, callback: () => void) {
    const due = performance.now() + Math.max(0, ms);
    const arm = () => {
      const left = due - performance.now();
      if (left > MAX_SET_TIMEOUT) this.#timeout = setTimeout(arm, MAX_SET_TIMEOUT);
      else this.#timeout = setTimeout(callback, Math.max(0, left));
    };
    arm();
  }

  clear(): void {
    clearTimeout(this.#timeout);
  }
}

// ---------------------------------------------------------------------------
// One connection

type Phase = "dns" | "tcp" | "tls" | "open" | "ended";
/** How long a closed connection waits for the peer to close its side before it is destroyed. */
const CLOSE_LINGER_MS = 2000;
/**
 * How far a known server's first flight may differ in size: an ECDSA
 * signature (DER) varies by a byte or two from one handshake to the next.
 * A certificate more or less, or a message split in two records (5 bytes
 * of record header), is more.
 */
const FLIGHT_SLACK = 2;

function sameFlight(known: KnownServer, peerChain: string, flightBytes: number): boolean {
  return peerChain === known.peerChain && flightBytes >= 0 && Math.abs(flightBytes - known.flightBytes) <= FLIGHT_SLACK;
}

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
  /** The trust context's key (sessions.ts), for TLS connections. */
  #key = "";
  /** The TCP socket, and the TLS socket over it when secure. */
  #tcp: net.Socket | undefined;
  #socket: net.Socket | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #probe: HandshakeProbe | undefined;
  /** The server as known from an earlier first flight, when this connection does not read its own. */
  #known: KnownServer | undefined;
  /** Counts the connections made for this stream (a second when a known server showed another chain): events of an earlier one are ignored. */
  #attempt = 0;
  /** The SOCKS5 proxy on the way, if any (never for a local socket). */
  readonly #via: ConnectVia | undefined;

  constructor(options: ConnectOptions, handlers: StreamHandlers, host: NodeHost) {
    this.#options = options;
    this.#via = options.path === undefined ? options.via ?? host.via : undefined;
    this.#handlers = handlers;
    this.#host = host;
    if (options.timeoutMs !== undefined) {
      this.#timer = setTimeout(() => this.#fail("timeout", `${this.#where}: not connected within ${options.timeoutMs} ms`),
        options.timeoutMs);
    }
    try {
      // Checked before any I/O: a key the device cannot use fails even when
      // the server is down or would not ask for it.
      if (options.tls !== undefined) {
        this.#key = trustContextKey(options);
        this.#tls = host.tlsContexts.options(this.#key, options.tls, options.host);
      }
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

  /**
   * An open connection ends in order: what was written (an h2 GOAWAY, a ws
   * close frame) still goes out, then TLS close_notify and FIN; the sockets
   * go when the peer closes too, or after CLOSE_LINGER_MS. Nothing is
   * reported after this, whatever comes.
   */
  close(): void {
    const socket = this.#socket;
    if (this.#phase !== "open" || socket === undefined) return this.#end();
    this.#phase = "ended";
    clearTimeout(this.#timer);
    const linger = setTimeout(() => this.#end(), CLOSE_LINGER_MS);
    linger.unref();
    socket.once("close", () => {
      clearTimeout(linger);
      this.#end();
    });
    socket.end();
  }

  /**
   * Stops (and resumes) reading from the peer: TCP's own flow control then
   * holds the sender back. Node host only, for the proxy, which must not read
   * faster than its client takes.
   */
  pause(): void {
    this.#socket?.pause();
  }

  resume(): void {
    this.#socket?.resume();
  }

  get #where(): string {
    return this.#options.path ?? `${this.#options.host}:${this.#options.port}`;
  }

  #resolve(): void {
    const { path } = this.#options;
    // through a proxy, the name to resolve here is the proxy's; the proxy resolves the server's
    const host = this.#via?.socks5.host ?? this.#options.host;
    if (path !== undefined) {
      // '@name' is Linux's abstract namespace, which Node spells with a leading NUL
      queueMicrotask(() => this.#connect(path.startsWith("@") ? `\0${path.slice(1)}` : path, 0, true));
      return;
    }
    if (net.isIP(host) !== 0) {
      queueMicrotask(() => this.#connect(host, 0));
      return;
    }
    const start = performance.now();
    const resolver = this.#host.resolver;
    if (resolver !== undefined) {
      if (host === "localhost") return void queueMicrotask(() => this.#connect("127.0.0.1", 0));
      resolver.resolve4(host, (error, addresses) => {
        if (this.#phase !== "dns") return;
        if (error) return this.#fail("dns", `${host}: ${error.code ?? error.message}`);
        this.#connect(addresses[0]!, performance.now() - start);
      });
      return;
    }
    dns.lookup(host, { all: true }, (error, addresses) => {
      if (this.#phase !== "dns") return;
      if (error) return this.#fail("dns", `${host}: ${error.code ?? error.message}`);
      // The device's stack is IPv4, and test servers listen on 127.0.0.1.
      const address = addresses.find((a) => a.family === 4) ?? addresses[0];
      if (address === undefined) return this.#fail("dns", `${host}: no address`);
      this.#connect(address.address, performance.now() - start);
    });
  }

  #connect(address: string, dnsMs: number, local = false): void {
    if (this.#phase !== "dns") return;
    const start = performance.now();
    let tcp: net.Socket;
    // lent reads (ConnectOptions.lendReads) go into the host's one buffer: plain connections only
    // (TLS and a SOCKS5 handshake read the socket themselves)
    const lent = this.#options.lendReads && this.#tls === undefined && this.#via === undefined ? {
      onread: {
        buffer: this.#host.readBuffer,
        callback: (n: number, buffer: Buffer) => {
          if (this.#phase === "open") this.#handlers.onData(new Uint8Array(buffer.buffer, buffer.byteOffset, n));
          return true;
        },
      },
    } : {};
    try {
      tcp = net.connect(local ? { path: address, ...lent } : { host: address, port: this.#via?.socks5.port ?? this.#options.port, noDelay: true, ...lent });
    } catch (error) {
      // Bad arguments, such as a port out of range.
      return this.#fail("other", `${this.#where}: ${(error as Error).message}`);
    }
    this.#tcp = tcp;
    this.#phase = "tcp";
    this.#watch(tcp);
    tcp.once("connect", () => {
      if (this.#via) return this.#tunnel(tcp, this.#via, dnsMs, start);
      const timings = { dnsMs, tcpMs: performance.now() - start };
      if (this.#tls === undefined) this.#opened(tcp, timings);
      else this.#handshake(tcp, this.#tls, timings);
    });
  }

  /** The SOCKS5 handshake (src/wire/socks5); then TLS, if any, runs through the tunnel. */
  #tunnel(tcp: net.Socket, via: ConnectVia, dnsMs: number, start: number): void {
    const handshake = new Socks5Handshake(via.socks5, { host: this.#options.host, port: this.#options.port });
    const onData = (data: Buffer) => {
      let step: ReturnType<Socks5Handshake["receive"]>;
      try {
        step = handshake.receive(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      } catch (error) {
        if (!(error instanceof Socks5Error)) throw error;
        const kind: HostErrorKind = error.code === "auth-failed" || error.code === "no-method" ? "proxy-auth"
          : error.code === "refused" || error.code === "unreachable" ? "refused" : "other";
        return this.#fail(kind, `${this.#where} via ${via.socks5.host}:${via.socks5.port}: ${error.message}`);
      }
      if (step === "wait") return;
      if ("send" in step) return void tcp.write(step.send);
      tcp.off("data", onData);
      // anything past the reply is already the server's
      if (step.open.length > 0) tcp.unshift(Buffer.from(step.open));
      const timings = { dnsMs, tcpMs: performance.now() - start };
      if (this.#tls === undefined) this.#opened(tcp, timings);
      else this.#handshake(tcp, this.#tls, timings);
    };
    tcp.on("data", onData);
    tcp.write(handshake.hello());
  }

  /**
   * TLS, then the device's rules on what the server sent. Reading the
   * server's first flight takes a relay under Node's TLS (HandshakeProbe)
   * that costs CPU on every byte of the connection. So a server whose flight
   * was read and accepted before under this trust context is not read again:
   * TLS runs on the TCP socket itself, and the flight must be the one read
   * then, as far as Node lets us see it: the chain Node verified, and the
   * flight's size. If it is not, this connection is dropped and made again
   * with the relay, unseen by the stream. The same certificates sent in
   * another order are not noticed: that is the one way this is kinder than
   * the device, and only to a server that changes its order between
   * connections.
   */
  #handshake(tcp: net.Socket, options: tls.ConnectionOptions, timings: { dnsMs: number; tcpMs: number }): void {
    this.#phase = "tls";
    const start = performance.now();
    const contexts = this.#host.tlsContexts;
    const sessions = this.#host.sessions;
    const key = this.#key;
    const known = this.#attempt === 0 ? contexts.known(key) : undefined;
    this.#known = known;
    const probe = (this.#probe = known === undefined ? new HandshakeProbe(tcp, this.#host.flightWork) : undefined);
    let socket: tls.TLSSocket;
    try {
      socket = tls.connect({ ...options, socket: probe ?? tcp, session: sessions?.get(key) });
    } catch (error) {
      return this.#fail("tls", `${this.#where}: ${(error as Error).message}`);
    }
    this.#watch(socket);
    // TLS 1.2: the key is made once the first flight is read, and the server
    // sends nothing more until it has our answer, so the TCP bytes read by
    // then are that flight's (after a SOCKS5 reply, hence the difference).
    const before = tcp.bytesRead;
    let flightBytes = -1;
    socket.once("keylog", () => (flightBytes = tcp.bytesRead - before));
    // A session is kept only from a connection that passed every check below.
    let checked = false;
    let offered: Buffer | undefined;
    socket.on("session", (session: Buffer) => {
      if (checked) sessions?.keep(key, session);
      else offered = session;
    });
    socket.once("secureConnect", () => {
      // rejectUnauthorized already refused an unverified peer; this guards
      // the promise that nothing ever connects unverified.
      if (!socket.authorized) {
        sessions?.forget(key);
        return this.#fail("tls-untrusted", `${this.#where}: ${socket.authorizationError}`);
      }
      // Node completes the chain from the trust store; the device verifies
      // only what the server sent, by its own rules. A resumed session sends
      // no chain: it was checked when the session was made, under this same
      // trust context (the cache's key).
      if (!socket.isSessionReused()) {
        if (probe === undefined) {
          if (!sameFlight(known!, peerChainDigest(socket), flightBytes)) return this.#again(socket);
        } else {
          const refusal = this.#deviceRefusal(probe, socket, flightBytes);
          if (refusal !== undefined) {
            sessions?.forget(key);
            return this.#fail(refusal.kind, `${this.#where}: ${refusal.message}`);
          }
        }
      }
      checked = true;
      if (offered !== undefined) sessions?.keep(key, offered);
      this.#opened(socket, { ...timings, tlsMs: performance.now() - start }, socket.alpnProtocol || undefined);
    });
  }

  /** A known server showed another chain: forget it, and connect again reading its first flight. */
  #again(socket: tls.TLSSocket): void {
    this.#host.tlsContexts.forget(this.#key);
    this.#host.sessions?.forget(this.#key);
    this.#attempt++;
    socket.destroy();
    this.#tcp!.destroy();
    this.#phase = "dns";
    this.#resolve();
  }

  /** The device's rules on the chain the server sent; a chain they accepted before under this trust context is not read again. */
  #deviceRefusal(probe: HandshakeProbe, socket: tls.TLSSocket, flightBytes: number): ReturnType<typeof deviceRefusal> {
    const t = this.#options.tls!;
    const chain = probe.serverChain;
    const cache = this.#host.tlsContexts;
    const refusal = chain !== undefined && probe.splitMessage === undefined && cache.accepted(this.#key, chain)
      ? undefined
      : deviceRefusal(probe, t, this.#options.host);
    if (refusal === undefined && chain !== undefined) {
      cache.accept(this.#key, chain, t, { peerChain: peerChainDigest(socket), flightBytes, certificateRequested: probe.certificateRequested });
    }
    return refusal;
  }

  /** Errors and closes from either layer; the first one ends the stream. */
  #watch(socket: net.Socket): void {
    const attempt = this.#attempt;
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (attempt !== this.#attempt) return;
      const kind = classifySocketError(error, this.#probe?.certificateRequested ?? this.#known?.certificateRequested);
      this.#fail(kind, `${this.#where}: ${error.code ? `${error.code}: ` : ""}${error.message}`);
    });
    socket.on("close", () => {
      if (attempt === this.#attempt) this.#fail("reset", `${this.#where}: connection closed`);
    });
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
    const peer = this.#options.path ?? (tcp.remoteFamily === "IPv6" ? `[${tcp.remoteAddress}]:${tcp.remotePort}` : `${tcp.remoteAddress}:${tcp.remotePort}`);
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
