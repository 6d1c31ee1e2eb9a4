// The Moddable host: the Host contract (src/host.ts) on the device (ESP32)
// and in Moddable's simulator, over the ECMA-419 TCP and TLS sockets, the
// ECMA-419 UDP DNS resolver, Timer, Time and Preference. mcconfig builds it
// from ./manifest.json; the simulator tests run it in mcsim
// (test-host/mcsim.test.ts). README.md lists what the device can't do.
//
// One module on purpose. It imports nothing but types from src/, so its
// module name in the manifest is free: XS resolves a relative import against
// the importing module's *name*, not its file.
//
// What the code relies on, read in the Moddable SDK source (8.2.3):
// - TCP (modules/io/socket/lwip/tcp.c) takes an IP `address` only. Its first
//   onWritable means connected. onError carries no reason: a refused
//   connect, a reset and a clean close look the same, and the error waits
//   until the received bytes have been read. write() throws "would block"
//   when the bytes exceed the send buffer, and otherwise returns what is
//   left of it.
// - An exception that escapes a socket callback aborts the XS machine
//   (xsEndHost → fxAbort), and TLSSocket (examples/io/tcp/tlssocket) throws
//   its handshake failures from inside its TCP callbacks. So the TLS socket
//   gets a TCP class of ours (GuardedTCP, through its `TCP.io` option). That
//   class catches those failures and fails the stream instead. It also
//   times the TCP connect.

import TCP, { type Options as TCPOptions } from "embedded:io/socket/tcp";
import TLSSocket from "embedded:io/socket/tcp/tls";
import UDP from "embedded:io/socket/udp";
import Resolver from "embedded:network/dns/resolver/udp";
import Preference from "preference";
import Time from "time";
import Timer from "timer";
import type {
  BlobStore,
  ByteStream,
  ConnectOptions,
  Host,
  HostErrorKind,
  StreamHandlers,
  TimerId,
  TlsOptions,
} from "../../src/host.js";

export interface ModdableHostOptions {
  /**
   * DNS servers (IPv4), e.g. Net.get("DNS") on the device. Without them only
   * IPv4 literals and "localhost" connect; a name fails with "dns".
   */
  readonly dnsServers?: readonly string[];
  /** Preference domain of the blobs (at most 15 characters); default "ss". */
  readonly blobDomain?: string;
  /**
   * The blob store to use instead of Preference alone: e.g. the runtime's
   * SplitBlobStore over a PreferenceBlobStore, for values over Preference's
   * limit (src/system/split-blobs.ts).
   */
  readonly blobs?: BlobStore;
}

/**
 * 2026-01-01T00:00:00Z, earlier than any build of this code: a Date.now()
 * before it means that the clock was never set. The ESP32 boots near 1970
 * until SNTP (setup/network) or xsbug sets it.
 */
const CLOCK_SET_AFTER = 1767225600000;

/**
 * Longest delay given to one Timer. Timer.set takes a C int (a delay of 2^32
 * - 1 ms is -1: at once), and the ESP32's timer list (modules/base/timer/mc)
 * compares due times modulo 2^32 ms: a step of 2^30 ms (12.4 days) stays
 * well clear of both.
 */
const MAX_TIMER_STEP = 2 ** 30;

/** A delay of any u32 (the host contract's), set in steps a Timer takes. */
class LongTimer {
  #left: number;
  #timer: Timer | undefined;
  readonly #callback: () => void;

  constructor(ms: number, callback: () => void) {
    this.#left = ms;
    this.#callback = callback;
    this.#step();
  }

  #step(): void {
    const wait = Math.min(this.#left, MAX_TIMER_STEP);
    this.#left -= wait;
    this.#timer = Timer.set(() => (this.#left > 0 ? this.#step() : this.#callback()), wait);
  }

  clear(): void {
    Timer.clear(this.#timer!);
  }
}

export class ModdableHost implements Host {
  readonly blobs: BlobStore;
  /** @internal */
  readonly dnsServers: readonly string[];
  #ticks = Time.ticks;
  #elapsed = 0;

  constructor(options: ModdableHostOptions = {}) {
    this.dnsServers = options.dnsServers ?? [];
    this.blobs = options.blobs ?? new PreferenceBlobStore(options.blobDomain);
  }

  connect(options: ConnectOptions, handlers: StreamHandlers): ByteStream {
    return new ModdableStream(options, handlers, this);
  }

  setTimer(ms: number, callback: () => void): TimerId {
    const wait = ms > 0 ? Math.ceil(ms) : 0;
    return wait > MAX_TIMER_STEP ? new LongTimer(wait, callback) : Timer.set(() => callback(), wait);
  }

  clearTimer(id: TimerId): void {
    if (id instanceof LongTimer) id.clear();
    // Timer.clear ignores a timer that fired or was cleared, and non-timers.
    else Timer.clear(id as Timer);
  }

  /**
   * Time.ticks summed as deltas, so the result never goes back. On the
   * device, ticks are a 32-bit count that wraps. In the simulator they are
   * wall-clock milliseconds, which can step. Time.delta spans a wrap, but
   * only if now() is called at least once every 2^31 ms (24.8 days).
   */
  now(): number {
    const ticks = Time.ticks;
    const delta = Time.delta(this.#ticks, ticks);
    this.#ticks = ticks;
    if (delta > 0) this.#elapsed += delta;
    return this.#elapsed;
  }

  timeValid(): boolean {
    return Date.now() > CLOCK_SET_AFTER;
  }

  /**
   * XS's Math.random is esp_random() on the ESP32: the hardware RNG, which
   * is truly random while Wi-Fi runs. That is ample for jitter.
   */
  random(): number {
    return Math.random();
  }

  log(message: string): void {
    trace(`${message}\n`);
  }
}

// ---------------------------------------------------------------------------
// Blobs

/** The same limits as hosts/node/blobs.ts: ESP32 NVS, through Preference. */
export const BLOB_LIMITS = Object.freeze({ nameLength: 15, valueBytes: 4000 } as const);

/** A blob name: letters, digits, '_', '-' and '.', not first. (No RegExp on the device: docs/footprint.md.) */
function isBlobName(name: string): boolean {
  for (let k = 0; k < name.length; k++) {
    const c = name.charCodeAt(k);
    const ok = isDigitCode(c) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a) || c === 0x5f || c === 0x2d || (c === 0x2e && k > 0);
    if (!ok) return false;
  }
  return name.length > 0;
}

/**
 * One Preference key per blob. Values are stored as ArrayBuffers, except the
 * empty blob, which is stored as "": the simulator's Preference would
 * return an empty ArrayBuffer as one zero byte.
 */
export class PreferenceBlobStore implements BlobStore {
  readonly #domain: string;

  constructor(domain = "ss") {
    if (domain.length === 0 || domain.length > BLOB_LIMITS.nameLength) {
      throw new RangeError(`blob domain ${JSON.stringify(domain)}: use 1-${BLOB_LIMITS.nameLength} characters`);
    }
    this.#domain = domain;
  }

  get(name: string): Uint8Array | undefined {
    checkBlobName(name);
    const value = Preference.get(this.#domain, name);
    if (value instanceof ArrayBuffer) return new Uint8Array(value);
    return value === "" ? new Uint8Array(0) : undefined;
  }

  set(name: string, value: Uint8Array): void {
    checkBlobName(name);
    if (value.byteLength > BLOB_LIMITS.valueBytes) {
      throw new RangeError(`blob ${name} is ${value.byteLength} bytes; the device stores at most ${BLOB_LIMITS.valueBytes}`);
    }
    // Preference takes a whole ArrayBuffer, not a view: slice() copies exactly the bytes.
    Preference.set(this.#domain, name, value.byteLength === 0 ? "" : value.slice().buffer);
  }

  delete(name: string): void {
    checkBlobName(name);
    Preference.delete(this.#domain, name);
  }
}

function checkBlobName(name: string): void {
  if (!isBlobName(name) || name.length > BLOB_LIMITS.nameLength) {
    throw new RangeError(`bad blob name ${JSON.stringify(name)}: use 1-${BLOB_LIMITS.nameLength} of [A-Za-z0-9_.-], not starting with '.'`);
  }
}

// ---------------------------------------------------------------------------
// Sockets

/**
 * The part of an ECMA-419 stream socket (TCP or TLSSocket) that this host
 * uses. The published typings are looser, or wrong, here: TCP.write is typed
 * void but returns the bytes still writable; TLSSocket.write is typed to take
 * only ArrayBufferLike but takes views too; TLSSocket's `TCP` option is not
 * declared at all.
 */
interface StreamSocket {
  read(count: number): ArrayBuffer | undefined;
  write(bytes: Uint8Array): number | undefined;
  close(): void;
}

/** The resolver as examples/io/udp/dns/dns.js implements it. */
interface DnsResolver {
  resolve(request: { host: string; onResolved(host: string, address: string): void; onError(host: string): void }): void;
  close(): void;
}

/** A TLS attempt's hooks into the GuardedTCP under it. */
interface Guard {
  /** Each TCP onWritable (the first one means TCP connected). */
  tcpWritable(): void;
  /** Each TLS record TLSSocket writes, for its header. */
  sent(packet: unknown): void;
  /** Runs a TLSSocket callback, turning a TLS exception into a stream failure. */
  run(step: () => void): void;
}

/**
 * The TCP class that TLSSocket gets through its `TCP.io` option.
 * TLSSocket passes its own options on to this constructor, so `guard` arrives
 * here with them.
 */
class GuardedTCP extends TCP {
  readonly #guard: Guard;

  constructor(options: TCPOptions & { readonly guard: Guard }) {
    const { guard, onReadable, onWritable, onError } = options;
    super({
      ...options,
      onReadable(count) {
        guard.run(() => onReadable?.call(this, count));
      },
      onWritable(count) {
        guard.tcpWritable();
        guard.run(() => onWritable?.call(this, count));
      },
      onError() {
        guard.run(() => onError?.call(this));
      },
    });
    this.#guard = guard;
  }

  override write(value: Parameters<TCP["write"]>[0]): void {
    this.#guard.sent(value);
    return super.write(value);
  }
}

/** Largest single write: TLS seals at most 16 KiB of plaintext in one record. */
const MAX_WRITE = 16384;
/**
 * Bytes the caller may write after write() returned false (h1 writes a
 * chunk's header, body and CRLF before it stops). Past this the caller is
 * ignoring backpressure, and the stream fails rather than buffer without
 * bound in a few hundred KB of RAM.
 */
const MAX_LATE = 16384;
/**
 * TLSSocket reports its writable space as the TCP space less 32 bytes after
 * a write, but less 96 in onWritable. A record costs up to 69 bytes (5-byte
 * header, 16-byte CBC IV, 32-byte SHA-256 MAC, 16 bytes of padding). So this
 * host keeps to TCP space less 96: 64 more than write() reports. A record
 * that does not fit makes TCP throw after TLS has already sealed it, which
 * breaks the TLS stream.
 */
const TLS_WRITE_SLACK = 64;
/** Fewer bytes than this are not worth a TLS record's overhead unless they are all there is. */
const MIN_TLS_WRITE = 256;

const TLS_CHANGE_CIPHER_SPEC = 20;
const TLS_ALERT = 21;

type Phase = "dns" | "tcp" | "tls" | "open" | "ended";

/**
 * One connection: DNS, TCP, then TLS when asked, then the byte stream.
 * Handlers are called as the contract says: onConnected, then onData and
 * onWritable, then onClosed or onError; or onError alone; nothing after
 * close(), and nothing from inside connect().
 */
class ModdableStream implements ByteStream {
  readonly #options: ConnectOptions;
  readonly #handlers: StreamHandlers;
  readonly #host: ModdableHost;
  #phase: Phase = "dns";
  #resolver: DnsResolver | undefined;
  #socket: StreamSocket | undefined;
  /** Counts sockets. A callback from a socket that is not the current one is dropped. */
  #attempt = 0;
  /** The trust store CA that this TLS attempt uses (the device's TLS takes one per connection). */
  #ca = 0;
  #address = "";
  #timeout: Timer | undefined;
  /** A deferred start, retry or failure. */
  #soon: Timer | undefined;
  /** When the current phase began, for the timings. */
  #mark = 0;
  readonly #timings: { dnsMs?: number; tcpMs?: number; tlsMs?: number } = {};
  /** Bytes the socket can take now, by its last report. */
  #room = 0;
  /**
   * Bytes taken by write() that the socket could not take yet, in one
   * buffer: the rest of the write that returned false, plus at most
   * MAX_LATE bytes written after it.
   */
  #pending: Uint8Array | undefined;
  #late = 0;
  /** write() returned false, so onWritable is owed once pending drains. */
  #owed = false;
  /** The last exception thrown by a handler. The TLS guard rethrows it rather than call it a TLS failure. */
  #handlerError: unknown;

  constructor(options: ConnectOptions, handlers: StreamHandlers, host: ModdableHost) {
    this.#options = options;
    this.#handlers = handlers;
    this.#host = host;
    const ms = options.timeoutMs;
    if (ms !== undefined) {
      this.#timeout = Timer.set(() => this.#fail("timeout", `${this.#where}: not connected within ${ms} ms`), ms > 0 ? Math.ceil(ms) : 0);
    }
    this.#soon = Timer.set(() => {
      this.#soon = undefined;
      // neither is built for the device yet: fail rather than connect some other way than asked
      if (options.path !== undefined) return this.#fail("refused", `${options.path}: this host has no local sockets`);
      if (options.via !== undefined) return this.#fail("other", `${this.#where}: this host cannot connect through a SOCKS5 proxy`);
      this.#start();
    });
  }

  write(bytes: Uint8Array): boolean {
    if (this.#phase === "ended") return false;
    if (this.#phase !== "open") throw new Error("write() before onConnected");
    if (this.#pending) return this.#queue(bytes);
    const sent = this.#send(bytes);
    if (this.#phase !== "open") return false;
    if (sent === bytes.byteLength) return true;
    this.#pending = bytes.slice(sent);
    this.#late = 0;
    this.#owed = true;
    return false;
  }

  close(): void {
    this.#end();
  }

  get #where(): string {
    return `${this.#options.host}:${this.#options.port}`;
  }

  // ---- connecting ----

  #start(): void {
    const tls = this.#options.tls;
    if (tls !== undefined) {
      // Without `certificate`, Moddable's TLS would check only its built-in store.
      if (tls.ca.length === 0) return this.#fail("tls-untrusted", `${this.#where}: the trust store is empty`);
      if ((tls.clientCert === undefined) !== (tls.clientKey === undefined)) {
        return this.#fail("tls-auth", `${this.#where}: a client certificate needs both clientCert and clientKey`);
      }
    }
    const host = this.#options.host === "localhost" ? "127.0.0.1" : this.#options.host;
    if (isIPv4(host)) return this.#connect(host);
    const servers = this.#host.dnsServers;
    if (servers.length === 0) return this.#fail("dns", `${host}: no DNS servers (ModdableHostOptions.dnsServers)`);
    // One resolver per connection, so that close() can cancel its lookup
    // (the resolver can only cancel all of them). It asks each server up to
    // 5 times, 1 s apart, for an A record.
    this.#mark = this.#host.now();
    try {
      const resolver: DnsResolver = new Resolver({ servers: [...servers], socket: { io: UDP } });
      this.#resolver = resolver;
      resolver.resolve({
        host,
        onResolved: (_name, address) => {
          if (this.#resolver !== resolver) return;
          this.#timings.dnsMs = this.#host.now() - this.#mark;
          this.#dropResolver();
          this.#connect(address);
        },
        onError: () => {
          if (this.#resolver === resolver) this.#fail("dns", `${host}: no address from ${servers.join(", ")}`);
        },
      });
    } catch (error) {
      this.#fail("dns", `${host}: ${errorText(error)}`);
    }
  }

  #connect(address: string): void {
    this.#address = address;
    this.#phase = "tcp";
    this.#mark = this.#host.now();
    const attempt = ++this.#attempt;
    const live = () => attempt === this.#attempt;
    const callbacks = {
      onReadable: (count: number) => {
        if (live()) this.#readable(count);
      },
      onWritable: (count: number) => {
        if (live()) this.#writable(count);
      },
      onError: () => {
        if (live()) this.#socketError();
      },
    };
    const { port, tls } = this.#options;
    try {
      if (tls === undefined) {
        this.#socket = new TCP({ address, port, ...callbacks }) as unknown as StreamSocket;
        return;
      }
      // Moddable's TLS can end a handshake without keys, on an alert (a
      // server version below TLS 1.2) or on the server's close_notify, and
      // still report it as done. What follows would then go out in clear
      // text. A completed handshake always includes the client's
      // ChangeCipherSpec, so it counts as connected only once one went out.
      let cipherChanged = false;
      let alert: number | undefined;
      const guard: Guard = {
        tcpWritable: () => {
          if (!live() || this.#phase !== "tcp") return;
          const now = this.#host.now();
          this.#timings.tcpMs = now - this.#mark;
          this.#mark = now;
          this.#phase = "tls";
        },
        sent: (packet) => {
          if (!live() || this.#phase !== "tls") return;
          const header = recordHeader(packet);
          if (header?.[0] === TLS_CHANGE_CIPHER_SPEC) cipherChanged = true;
          else if (header?.[0] === TLS_ALERT && !cipherChanged) alert = header[6];
        },
        run: (step) => {
          if (!live()) return;
          try {
            step();
          } catch (error) {
            if (error === this.#handlerError) throw error;
            this.#tlsFailed(error, "tls");
          }
        },
      };
      const options = {
        address,
        port,
        host: tls.serverName || this.#options.host, // SNI, and the name the certificate must carry
        TCP: { io: GuardedTCP },
        guard,
        secure: secureOptions(tls, this.#ca),
        ...callbacks,
        onWritable: (count: number) => {
          if (!live()) return;
          if (this.#phase === "tls" && !cipherChanged) {
            return this.#fail("tls", `${this.#where}: the TLS handshake ended without keys` +
              (alert === undefined ? " (the server closed it)" : ` (alert ${alert}${alert === 70 ? ": the server does not speak TLS 1.2" : ""})`));
          }
          this.#writable(count);
        },
      };
      this.#socket = new TLSSocket(options) as unknown as StreamSocket;
    } catch (error) {
      // Thrown by the constructors: a bad address or port, no socket or
      // memory, the network down, or (TLS) a trust store CA out of its dates.
      if (tls === undefined) this.#fail("other", `${this.#where}: ${errorText(error)}`);
      else this.#tlsFailed(error, "other");
    }
  }

  /** A TLS failure. An untrusted chain is tried again with the trust store's next CA, if it has one. */
  #tlsFailed(error: unknown, otherwise: HostErrorKind): void {
    if (this.#phase === "ended") return;
    const tls = this.#options.tls!;
    const text = errorText(error);
    const kind = tlsErrorKind(text) ?? otherwise;
    const caRelated = kind === "tls-untrusted" || kind === "tls-expired";
    if (caRelated && this.#phase !== "open" && this.#ca + 1 < tls.ca.length) {
      this.#closeSocket();
      this.#ca++;
      this.#host.log(`${this.#where}: ${text}; trying the trust store's CA ${this.#ca + 1} of ${tls.ca.length}`);
      this.#soon = Timer.set(() => {
        this.#soon = undefined;
        this.#connect(this.#address);
      });
      return;
    }
    let hint = "";
    if (caRelated && !this.#host.timeValid()) hint = " (the clock is not set)";
    else if (kind === "tls-untrusted") {
      hint = ` (with each of the trust store's ${tls.ca.length} CA(s): the chain leads to none of them, names another host, ` +
        `or is out of its dates; Moddable's trace says which. The server must send leaf + CA.)`;
    }
    this.#fail(kind, `${this.#where}: ${text}${hint}`);
  }

  // ---- socket events ----

  #writable(count: number): void {
    if (this.#phase === "open") return this.#drain(count);
    if (this.#phase !== "tcp" && this.#phase !== "tls") return;
    const elapsed = this.#host.now() - this.#mark;
    if (this.#phase === "tcp") this.#timings.tcpMs = elapsed;
    else this.#timings.tlsMs = elapsed;
    this.#phase = "open";
    Timer.clear(this.#timeout);
    this.#timeout = undefined;
    this.#room = count;
    this.#call(() => this.#handlers.onConnected({ timings: this.#timings, peer: `${this.#address}:${this.#options.port}` }));
  }

  #readable(count: number): void {
    // Plain TCP can deliver data with its connect, before the first
    // onWritable. (Under TLS this phase never sees data: TLSSocket reads
    // the handshake itself.)
    if (this.#phase === "tcp") this.#writable(0);
    if (this.#phase !== "open") return;
    const buffer = this.#socket!.read(count);
    if (buffer !== undefined) this.#call(() => this.#handlers.onData(new Uint8Array(buffer)));
  }

  #socketError(): void {
    switch (this.#phase) {
      case "tcp":
        return this.#fail("refused", `${this.#where}: could not connect to ${this.#address} (refused or unreachable: ECMA-419 gives no reason)`);
      case "tls":
        return this.#fail("reset", `${this.#where}: the connection closed during the TLS handshake`);
      case "open":
        // A clean close and a reset look the same here. The protocol above
        // knows from its framing whether the data was complete.
        this.#end();
        this.#call(() => this.#handlers.onClosed());
    }
  }

  // ---- writing ----

  /** Writes what the socket has room for; returns how many bytes it took. */
  #send(bytes: Uint8Array): number {
    const socket = this.#socket!;
    const tls = this.#options.tls !== undefined;
    let at = 0;
    while (at < bytes.byteLength) {
      const left = bytes.byteLength - at;
      const n = Math.min(left, this.#room, MAX_WRITE);
      if (n <= 0 || (tls && n < MIN_TLS_WRITE && n < left)) break;
      let room: number | undefined;
      try {
        room = socket.write(bytes.subarray(at, at + n));
      } catch (error) {
        const text = errorText(error);
        // TCP refuses whole writes, so nothing is lost: wait for onWritable.
        if (!tls && text === "would block") {
          this.#room = 0;
          break;
        }
        this.#failSoon(tls ? "tls" : "other", `${this.#where}: write: ${text}`);
        return at;
      }
      at += n;
      // undefined: the socket already failed, and its onError is on the way.
      this.#room = room === undefined ? 0 : tls ? Math.max(0, room - TLS_WRITE_SLACK) : room;
    }
    return at;
  }

  #queue(bytes: Uint8Array): boolean {
    const pending = this.#pending!;
    this.#late += bytes.byteLength;
    if (this.#late > MAX_LATE) {
      this.#failSoon("other", `${this.#where}: ${this.#late} bytes written after write() returned false ` +
        `(at most ${MAX_LATE}): wait for onWritable`);
      return false;
    }
    const joined = new Uint8Array(pending.byteLength + bytes.byteLength);
    joined.set(pending);
    joined.set(bytes, pending.byteLength);
    this.#pending = joined;
    return false;
  }

  #drain(room: number): void {
    this.#room = room;
    const pending = this.#pending;
    if (pending !== undefined) {
      const sent = this.#send(pending);
      if (this.#phase !== "open") return;
      this.#pending = sent < pending.byteLength ? pending.subarray(sent) : undefined;
    }
    if (this.#pending === undefined && this.#owed) {
      this.#owed = false;
      this.#call(() => this.#handlers.onWritable());
    }
  }

  // ---- ending ----

  /** Runs a handler, and remembers its exception (see #handlerError). */
  #call(handler: () => void): void {
    try {
      handler();
    } catch (error) {
      this.#handlerError = error;
      throw error;
    }
  }

  #fail(kind: HostErrorKind, message: string): void {
    if (this.#phase === "ended") return;
    this.#end();
    this.#call(() => this.#handlers.onError({ kind, message }));
  }

  /** Fails from inside write(): the stream ends now, and onError comes on the next turn. */
  #failSoon(kind: HostErrorKind, message: string): void {
    this.#end();
    this.#soon = Timer.set(() => {
      this.#soon = undefined;
      this.#call(() => this.#handlers.onError({ kind, message }));
    });
  }

  #end(): void {
    this.#phase = "ended";
    Timer.clear(this.#timeout);
    Timer.clear(this.#soon);
    this.#timeout = this.#soon = undefined;
    this.#dropResolver();
    this.#closeSocket();
    this.#pending = undefined;
  }

  #dropResolver(): void {
    const resolver = this.#resolver;
    this.#resolver = undefined;
    resolver?.close();
  }

  #closeSocket(): void {
    this.#attempt++;
    const socket = this.#socket;
    this.#socket = undefined;
    // Closing stops the socket's callbacks (tcp.c doClose); it is safe twice.
    socket?.close();
  }
}

/**
 * The `secure` options of one TLS attempt.
 * - certificate: exactly one DER CA. Moddable's CertificateManager registers
 *   `certificate` as a single certificate, so an array is not a list of CAs.
 *   Hence #ca and the retry in #tlsFailed.
 * - The built-in store (the ca.ski index plus caNNN.der resources) is still
 *   consulted after the registered CA. It can vouch for a server only with
 *   the matching caNNN.der in the build, and this host's manifest adds none.
 *   An index hit without its file throws "Resource not found", which is
 *   classified as untrusted.
 * - cache: false. A resumed session skips certificate verification, and the
 *   session cache is keyed by host name alone, shared with every other TLS
 *   user in the app. A session verified against another trust store (or
 *   Moddable's own) must not stand in for this one.
 */
function secureOptions(tls: TlsOptions, ca: number): Record<string, unknown> {
  const secure: Record<string, unknown> = { certificate: tls.ca[ca], verify: true, protocolVersion: 0x303, cache: false };
  if (tls.alpn !== undefined && tls.alpn.length > 0) secure.applicationLayerProtocolNegotiation = [...tls.alpn];
  if (tls.clientCert !== undefined && tls.clientKey !== undefined) {
    secure.clientCertificates = [tls.clientCert];
    secure.clientKey = tls.clientKey;
  }
  return secure;
}

/**
 * Server alerts about our client certificate (RFC 5246): bad_certificate,
 * unsupported_certificate, certificate_revoked, certificate_expired,
 * certificate_unknown, unknown_ca, access_denied. handshake_failure (40) is
 * not on the list: without knowing whether the server asked for a
 * certificate, it can just as well mean no common cipher suite.
 */
const clientCertAlerts = new Set([42, 43, 44, 45, 46, 48, 49]);

/**
 * Maps what Moddable's TLS throws (modules/crypt/ssl) to the contract's
 * kinds. Returns undefined for text it does not know.
 * - "certificate: auth err": verification failed. The chain may be
 *   untrusted, or name another host, or be out of its dates. Only trace()
 *   tells which, so it is reported as "tls-untrusted". "tls-hostname"
 *   cannot be told apart on the device.
 * - "Resource not found: caN.der": the chain leads to a CA of the built-in
 *   store, which is not in the build. That is untrusted here.
 * - "date validation failed": a trust store CA is outside its dates, or the
 *   clock is not set.
 * - "alert: <level>, <description>": the server's fatal alert.
 * - "certificateVerify: unimplemented": our client key is not RSA.
 */
function tlsErrorKind(text: string): HostErrorKind | undefined {
  if (text.startsWith("certificate: auth err") || text.startsWith("Resource not found")) return "tls-untrusted";
  if (text.startsWith("date validation failed")) return "tls-expired";
  if (text.startsWith("certificateVerify: unimplemented")) return "tls-auth";
  const alert = alertDescription(text);
  if (alert !== undefined) return clientCertAlerts.has(alert) ? "tls-auth" : "tls";
  return undefined;
}

/** The first 7 bytes of a record TLSSocket writes (header, then an alert's level and description). */
function recordHeader(packet: unknown): Uint8Array | undefined {
  if (packet instanceof ArrayBuffer) return new Uint8Array(packet, 0, Math.min(7, packet.byteLength));
  if (ArrayBuffer.isView(packet)) return new Uint8Array(packet.buffer, packet.byteOffset, Math.min(7, packet.byteLength));
  return undefined;
}

/** The description of "alert: <level>, <description>..." (both decimal), or undefined. */
function alertDescription(text: string): number | undefined {
  if (!text.startsWith("alert: ")) return undefined;
  const level = digitsEnd(text, 7);
  if (level === 7 || !text.startsWith(", ", level)) return undefined;
  const end = digitsEnd(text, level + 2);
  return end === level + 2 ? undefined : Number(text.slice(level + 2, end));
}

function isIPv4(host: string): boolean {
  const parts = host.split(".");
  return parts.length === 4 && parts.every((p) => p.length > 0 && p.length <= 3 && digitsEnd(p, 0) === p.length && Number(p) <= 255);
}

/** The index after the ASCII digits of s from `from`. */
function digitsEnd(s: string, from: number): number {
  let k = from;
  while (k < s.length && isDigitCode(s.charCodeAt(k))) k++;
  return k;
}

function isDigitCode(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
