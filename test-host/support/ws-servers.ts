// WebSocket peers for the ws binding's tests and bench: the `ws` package's
// server (independent of our codec) on plain and TLS ports, and a raw TCP
// peer that answers the handshake correctly and then sends whatever bytes a
// malformed-peer case needs, reading back the close frame we answer with.
//
// Paths of the `ws` server:
//   /echo            echoes every message (text as text, binary as binary)
//   /echo1           echoes one message, then closes with 1000
//   /close/<code>    closes at once with <code> "bye"
//   /big/<n>         sends one binary message of n bytes
//   /frag            sends "abc" + "def" + "ghi" as three fragments, then "end"
//   /ping            pings "hb"; when our pong comes, sends "pong hb"
//   /quiet           accepts and waits
//   /hello-close     sends "hi", then closes with 1001
// Subprotocols: the first offered one, except /wrongproto (answers "other")
// and /noproto (answers none).

import http from "node:http";
import https from "node:https";
import net from "node:net";
import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import type { TestPki } from "./pki.js";

export interface WsSeen {
  url: string;
  headers: http.IncomingHttpHeaders;
  /** The close code and reason our client sent, once the connection closed. */
  closed?: { code: number; reason: string };
}

export interface WsServers {
  readonly ports: { plain: number; tls: number };
  /** Every connection accepted, in order; tests may empty it. */
  readonly seen: WsSeen[];
  /** The next close of a connection to `url` (tests run concurrently: each waits for its own path). */
  nextClose(url: string): Promise<WsSeen>;
  close(): void;
}

export async function startWsServers(pki?: TestPki, maxPayload = 1 << 21): Promise<WsServers> {
  const seen: WsSeen[] = [];
  let closeWaiters: { url: string; resolve: (s: WsSeen) => void }[] = [];
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload,
    handleProtocols: (protocols, req) => {
      if (req.url === "/wrongproto") return "other";
      if (req.url === "/noproto") return false;
      return protocols.values().next().value ?? false;
    },
  });
  wss.on("connection", (sock: WebSocket, req: http.IncomingMessage) => {
    const entry: WsSeen = { url: req.url ?? "", headers: req.headers };
    seen.push(entry);
    sock.on("close", (code, reason) => {
      entry.closed = { code, reason: reason.toString() };
      const waiters = closeWaiters.filter((w) => w.url === entry.url);
      closeWaiters = closeWaiters.filter((w) => w.url !== entry.url);
      for (const w of waiters) w.resolve(entry);
    });
    sock.on("error", () => {});
    const url = entry.url.replace(/\?.*$/, "");
    if (url === "/echo" || url === "/wrongproto" || url === "/noproto") {
      sock.on("message", (data, isBinary) => sock.send(data as Buffer, { binary: isBinary }));
    } else if (url === "/echo1") {
      sock.once("message", (data, isBinary) => sock.send(data as Buffer, { binary: isBinary }, () => sock.close(1000, "done")));
    } else if (url.startsWith("/close/")) {
      sock.close(Number(url.slice(7)), "bye");
    } else if (url.startsWith("/big/")) {
      sock.send(Buffer.alloc(Number(url.slice(5)), 0x61), { binary: true });
    } else if (url === "/frag") {
      sock.send("abc", { fin: false });
      sock.send("def", { fin: false });
      sock.send("ghi", { fin: true });
      sock.send("end");
    } else if (url === "/hello-close") {
      sock.send("hi", () => sock.close(1001, "going"));
    } else if (url === "/ping") {
      sock.on("pong", (data) => sock.send(`pong ${data.toString()}`));
      sock.ping("hb");
    }
  });
  const upgrade = (req: http.IncomingMessage, socket: import("node:stream").Duplex, head: Buffer) => {
    wss.handleUpgrade(req, socket, head, (sock) => wss.emit("connection", sock, req));
  };
  const servers: (http.Server | https.Server)[] = [];
  const listen = async (server: http.Server | https.Server): Promise<number> => {
    server.on("upgrade", upgrade);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    servers.push(server);
    return (server.address() as AddressInfo).port;
  };
  const plain = await listen(http.createServer((_, res) => res.writeHead(404).end()));
  const tls = pki ? await listen(https.createServer({ cert: pki.server.chainPem, key: pki.server.keyPem }, (_, res) => res.writeHead(404).end())) : 0;
  return {
    ports: { plain, tls },
    seen,
    nextClose: (url) => new Promise((resolve) => closeWaiters.push({ url, resolve })),
    close: () => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      for (const s of servers) {
        s.closeAllConnections();
        s.close();
      }
    },
  };
}

/** What a raw peer does once it has the upgrade request: the answer's bytes (head and frames), and whether to close after. */
export type RawScript = (key: string, accept: string) => { reply: Uint8Array; end?: boolean };

export interface RawPeer {
  readonly port: number;
  /** Everything each connection sent after its upgrade request, in order of connections. */
  readonly received: Buffer[];
  /** Resolves with what the connection sent once it closes. */
  nextClose(): Promise<Buffer>;
  close(): void;
}

export const acceptOf = (key: string) => createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");

/** The head of a correct 101 answer. */
export const switching = (accept: string, extra = "") =>
  `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${extra}\r\n`;

/** A raw TCP peer running `script` for every connection. */
export async function startRawPeer(script: RawScript): Promise<RawPeer> {
  const received: Buffer[] = [];
  let waiters: ((b: Buffer) => void)[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let head = Buffer.alloc(0);
    let after: Buffer[] | undefined;
    const index = received.length;
    received.push(Buffer.alloc(0));
    socket.on("data", (chunk) => {
      if (after) {
        after.push(chunk);
        received[index] = Buffer.concat(after);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      after = [head.subarray(end + 4)];
      const key = /sec-websocket-key: *(\S+)/i.exec(head.subarray(0, end).toString("latin1"))?.[1] ?? "";
      const { reply, end: close } = script(key, acceptOf(key));
      socket.write(reply);
      if (close) socket.end();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      sockets.delete(socket);
      const w = waiters;
      waiters = [];
      for (const f of w) f(received[index]!);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    nextClose: () => new Promise((resolve) => waiters.push(resolve)),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** The client frames in `bytes` (masked), unmasked: [opcode, fin, payload]. */
export function clientFrames(bytes: Uint8Array): [number, boolean, Buffer][] {
  const out: [number, boolean, Buffer][] = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    const b0 = bytes[at]!, b1 = bytes[at + 1]!;
    let len = b1 & 0x7f;
    let p = at + 2;
    if (len === 126) { len = (bytes[p]! << 8) | bytes[p + 1]!; p += 2; }
    else if (len === 127) { len = Number(Buffer.from(bytes.subarray(p, p + 8)).readBigUInt64BE()); p += 8; }
    if (!(b1 & 0x80)) throw new Error("an unmasked client frame");
    const key = bytes.subarray(p, p + 4);
    p += 4;
    if (p + len > bytes.length) break;
    const payload = Buffer.from(bytes.subarray(p, p + len)).map((b, i) => b ^ key[i & 3]!);
    out.push([b0 & 0x0f, (b0 & 0x80) !== 0, Buffer.from(payload)]);
    at = p + len;
  }
  return out;
}

/** The code of the close frame among `bytes`, if any. */
export function closeCodeIn(bytes: Uint8Array): number | undefined {
  const close = clientFrames(bytes).find(([op]) => op === 8);
  return close && close[2].length >= 2 ? close[2].readUInt16BE(0) : undefined;
}
