// Peers and policies of the connection-reuse tests, shared by the Node run
// (h1-reuse.test.ts) and the XS run (h1-reuse-xs.test.ts): Node http and
// https servers that count the connections they accept, and raw servers for
// the faults an http server does not make on demand.

import type { TestContext } from "node:test";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type tls from "node:tls";
import { h1Handler } from "./h1-servers.js";
import { base64Encode } from "../../src/util/base64.js";
import type { TestPki } from "./pki.js";

export interface Peer {
  readonly port: number;
  /** Connections accepted so far. */
  connections: number;
  /** Connections that are still open. */
  readonly open: Set<net.Socket>;
  readonly seen: string[];
  /** TLS only: how each accepted TLS connection began ("new" or "resumed"). */
  readonly handshakes: string[];
}

/** An http (or, with credentials, https) server on 127.0.0.1 counting connections; closed after the test. */
export async function peer(t: TestContext, options: { tls?: https.ServerOptions; handler?: http.RequestListener } = {}): Promise<Peer> {
  const seen: string[] = [];
  const server = options.tls ? https.createServer(options.tls, options.handler ?? h1Handler(seen)) : http.createServer(options.handler ?? h1Handler(seen));
  const p: Peer = { port: 0, connections: 0, open: new Set(), seen, handshakes: [] };
  server.on("connection", (socket: net.Socket) => {
    p.connections++;
    p.open.add(socket);
    socket.on("close", () => p.open.delete(socket));
  });
  server.on("secureConnection", (socket: tls.TLSSocket) => p.handshakes.push(socket.isSessionReused() ? "resumed" : "new"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  (p as { port: number }).port = (server.address() as net.AddressInfo).port;
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return p;
}

/** What a stream of one transaction reports, destroyed at its result. */
export const ONE_TXN = ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE", "DISCONNECTED", "DESTROYING"];

/** Streamtypes to 127.0.0.1:port (JSON, to compile): get, get2, close, big, post; `extra` adds GET /status/200 ones. */
export function plainPolicy(port: number, extra: Record<string, object> = {}): object {
  const st = (url: string, more: object = {}) => ({ endpoint: "127.0.0.1", port, protocol: "h1", http_method: "GET", http_url: url, ...more });
  return {
    retry: [{ quick: { backoff: [50], conceal: 1, jitterpc: 0 } }],
    s: [
      { get: st("/status/200", { retry: "quick" }) },
      { get2: st("/bytes/100", { retry: "quick" }) },
      { close: st("/close") },
      { big: st("/bytes/1000000") },
      { post: st("/echo", { http_method: "POST" }) },
      ...Object.entries(extra).map(([name, more]) => ({ [name]: st("/status/200", more) })),
    ],
  };
}

// A raw server, because the race needs it on demand: it answers the first
// request of a connection and closes the connection when the second one
// arrives, unanswered (as a server whose keep-alive timer fired while the
// request was on its way).
export async function closingServer(t: TestContext): Promise<Peer> {
  return rawServer(t, (socket, n) => {
    if (n === 1) socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    else socket.destroy();
  });
}

/** A raw server calling `answer` for the n-th request head of each connection. */
export async function rawServer(t: TestContext, answer: (socket: net.Socket, n: number) => void): Promise<Peer> {
  const p: Peer = { port: 0, connections: 0, open: new Set(), seen: [], handshakes: [] };
  const server = net.createServer((socket) => {
    p.connections++;
    p.open.add(socket);
    socket.on("close", () => p.open.delete(socket));
    socket.on("error", () => {});
    let requests = 0;
    let buffered = "";
    socket.on("data", (d) => {
      buffered += d.toString("latin1");
      for (let end; (end = buffered.indexOf("\r\n\r\n")) >= 0;) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        p.seen.push(head.split("\r\n")[0]!);
        answer(socket, ++requests);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  (p as { port: number }).port = (server.address() as net.AddressInfo).port;
  t.after(() => {
    for (const s of p.open) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return p;
}

/** tls_a, tls_a2 (trust store a: the CA), tls_b (store b: another CA, then the CA), to the same port (JSON, to compile). */
export function tlsPolicy(pki: TestPki, port: number): object {
  const st = (store: string, more: object = {}) => ({
    endpoint: "127.0.0.1", port, protocol: "h1", http_method: "GET", http_url: "/status/200", tls: true, tls_trust_store: store, ...more,
  });
  return {
    certs: [{ ca: base64Encode(pki.ca.certDer) }, { other: base64Encode(pki.otherCa.certDer) }],
    trust_stores: [{ name: "a", stack: ["ca"] }, { name: "b", stack: ["other", "ca"] }],
    s: [{ tls_a: st("a") }, { tls_a2: st("a", { http_url: "/bytes/10" }) }, { tls_b: st("b") }, { plain_same_port: { endpoint: "127.0.0.1", port, protocol: "h1", http_url: "/" } }],
  };
}

