// SOCKS5 (RFC 1928) for a client, with username/password authentication
// (RFC 1929): the proxy address syntax, and the handshake as a resumable
// state machine over whatever byte stream the host has. After the server's
// CONNECT reply the stream is a plain tunnel to the target.

import { utf8Encode } from "../../util/utf8.js";
import { ipv4Octets, isDigits } from "../../util/chars.js";

/** Where a SOCKS5 proxy is, and the credentials for it: lws' "[user:pass@]host:port". */
export interface Socks5Proxy {
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
}

export type Socks5ErrorCode =
  | "bad-address" // a proxy address that is not [user:pass@]host:port
  | "no-method" // the server accepts none of the methods offered (needs credentials we do not have)
  | "auth-failed" // the server refused the username and password
  | "refused" // the server could not or would not connect to the target (its reply code says which)
  | "unreachable" // the server could not reach the target's network or host
  | "bad-reply"; // bytes that are not SOCKS5

export class Socks5Error extends Error {
  readonly code: Socks5ErrorCode;
  constructor(code: Socks5ErrorCode, message: string) {
    super(`socks5: ${message}`);
    this.name = "Socks5Error";
    this.code = code;
  }
}

const VERSION = 5;
const NO_AUTH = 0;
const USERPASS = 2;
const NO_ACCEPTABLE = 0xff;
const CONNECT = 1;
const ATYP_IPV4 = 1;
const ATYP_DOMAIN = 3;
const ATYP_IPV6 = 4;

/** RFC 1928's reply codes, for the message. */
const REPLIES: readonly string[] = Object.freeze(["succeeded", "general SOCKS server failure", "connection not allowed by ruleset",
  "network unreachable", "host unreachable", "connection refused", "TTL expired", "command not supported", "address type not supported"]);

/** Parses "[user:pass@]host:port" (host may be [v6]); undefined if it is not that. */
export function parseSocks5Proxy(text: string): Socks5Proxy | undefined {
  const at = text.lastIndexOf("@");
  let username: string | undefined;
  let password: string | undefined;
  if (at >= 0) {
    const cred = text.slice(0, at);
    const colon = cred.indexOf(":");
    if (colon < 1) return undefined;
    username = cred.slice(0, colon);
    password = cred.slice(colon + 1);
    // RFC 1929: each is 1 to 255 bytes
    if (utf8Encode(username).length > 255 || utf8Encode(password).length < 1 || utf8Encode(password).length > 255) return undefined;
  }
  const hostPort = text.slice(at + 1);
  const colon = hostPort.lastIndexOf(":");
  if (colon < 1) return undefined;
  let host = hostPort.slice(0, colon);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  const port = Number(hostPort.slice(colon + 1));
  if (!host || !isDigits(hostPort.slice(colon + 1)) || port < 1 || port > 65535) return undefined;
  return username === undefined ? { host, port } : { host, port, username, password };
}

type Step = "method" | "auth" | "reply" | "done" | "failed";

/**
 * One client handshake. `hello()` is the first thing to send; each
 * `receive()` takes what the server sent and says what to send next, or
 * that the tunnel is open (with any bytes past the reply, already the
 * target's), or throws Socks5Error.
 */
export class Socks5Handshake {
  readonly #proxy: Socks5Proxy;
  readonly #target: { readonly host: string; readonly port: number };
  #step: Step = "method";
  #buffer = new Uint8Array(0);

  constructor(proxy: Socks5Proxy, target: { readonly host: string; readonly port: number }) {
    this.#proxy = proxy;
    this.#target = target;
  }

  hello(): Uint8Array {
    return this.#proxy.username === undefined ? Uint8Array.of(VERSION, 1, NO_AUTH) : Uint8Array.of(VERSION, 2, NO_AUTH, USERPASS);
  }

  /** What to send next, or the tunnel's first bytes (`open`), or nothing yet (`wait`). */
  receive(bytes: Uint8Array): { send: Uint8Array } | { open: Uint8Array } | "wait" {
    if (this.#step === "done" || this.#step === "failed") throw new Socks5Error("bad-reply", "bytes after the handshake ended");
    const joined = new Uint8Array(this.#buffer.length + bytes.length);
    joined.set(this.#buffer);
    joined.set(bytes, this.#buffer.length);
    this.#buffer = joined;
    try {
      return this.#advance();
    } catch (e) {
      this.#step = "failed";
      throw e;
    }
  }

  #advance(): { send: Uint8Array } | { open: Uint8Array } | "wait" {
    const b = this.#buffer;
    switch (this.#step) {
      case "method": {
        if (b.length < 2) return "wait";
        if (b[0] !== VERSION) throw new Socks5Error("bad-reply", `the server speaks SOCKS version ${b[0]}, not 5`);
        this.#buffer = b.subarray(2);
        if (b[1] === NO_AUTH) return this.#connect();
        if (b[1] === USERPASS && this.#proxy.username !== undefined) {
          this.#step = "auth";
          const u = utf8Encode(this.#proxy.username);
          const p = utf8Encode(this.#proxy.password ?? "");
          const out = new Uint8Array(3 + u.length + p.length);
          out[0] = 1;
          out[1] = u.length;
          out.set(u, 2);
          out[2 + u.length] = p.length;
          out.set(p, 3 + u.length);
          return { send: out };
        }
        if (b[1] === NO_ACCEPTABLE) {
          throw new Socks5Error("no-method", this.#proxy.username === undefined
            ? "the server wants authentication and no username:password was given"
            : "the server accepts neither no authentication nor username/password");
        }
        throw new Socks5Error("bad-reply", `the server chose method ${b[1]}, which was not offered`);
      }
      case "auth": {
        if (b.length < 2) return "wait";
        if (b[0] !== 1) throw new Socks5Error("bad-reply", `username/password reply version ${b[0]}`);
        if (b[1] !== 0) throw new Socks5Error("auth-failed", `the server refused user "${this.#proxy.username}" (status ${b[1]})`);
        this.#buffer = b.subarray(2);
        return this.#connect();
      }
      case "reply": {
        if (b.length < 5) return "wait";
        if (b[0] !== VERSION || b[2] !== 0) throw new Socks5Error("bad-reply", "a malformed CONNECT reply");
        const rep = b[1]!;
        if (rep !== 0) {
          const what = REPLIES[rep] ?? `reply ${rep}`;
          throw new Socks5Error(rep === 3 || rep === 4 ? "unreachable" : "refused", `${this.#target.host}:${this.#target.port}: ${what}`);
        }
        const atyp = b[3];
        const addr = atyp === ATYP_IPV4 ? 4 : atyp === ATYP_IPV6 ? 16 : atyp === ATYP_DOMAIN ? 1 + b[4]! : -1;
        if (addr < 0) throw new Socks5Error("bad-reply", `address type ${atyp} in the reply`);
        const length = 4 + addr + 2;
        if (b.length < length) return "wait";
        this.#step = "done";
        const rest = b.subarray(length);
        this.#buffer = new Uint8Array(0);
        return { open: rest };
      }
      default:
        throw new Socks5Error("bad-reply", "unexpected bytes");
    }
  }

  #connect(): { send: Uint8Array } | "wait" {
    if (this.#buffer.length > 0) throw new Socks5Error("bad-reply", "bytes past the server's answer");
    this.#step = "reply";
    const { host, port } = this.#target;
    const v4 = ipv4Octets(host);
    let addr: number[];
    if (v4) {
      addr = [ATYP_IPV4, ...v4];
    } else {
      const name = utf8Encode(host);
      if (name.length < 1 || name.length > 255) throw new Socks5Error("bad-address", `target name "${host}" is not 1 to 255 bytes`);
      addr = [ATYP_DOMAIN, name.length, ...name];
    }
    return { send: Uint8Array.of(VERSION, CONNECT, 0, ...addr, port >> 8, port & 0xff) };
  }
}
