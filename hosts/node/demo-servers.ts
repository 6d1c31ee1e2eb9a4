// The local servers the demo policy names: http on 127.0.0.1:7681 and https
// on 127.0.0.1:7682 (certificate from policies/demo-certs, served with its CA),
// and http/2 over TLS on 127.0.0.1:7690 (the same certificate).
// GET answers with a line naming the scheme and the URL; POST counts the body.
// A WebSocket upgrade to /echo (the `ws` package's server) echoes every message.
// An MQTT broker (aedes, in-process) listens on 127.0.0.1:7683.

import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import { readFileSync } from "node:fs";
import path from "node:path";
import { WebSocketServer } from "ws";
import net from "node:net";
import { Aedes } from "aedes";

export const DEMO_HTTP_PORT = 7681;
export const DEMO_HTTPS_PORT = 7682;
export const DEMO_MQTT_PORT = 7683;
export const DEMO_H2_PORT = 7690;

export interface DemoServers {
  close(): Promise<void>;
}

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method === "POST") {
    let n = 0;
    req.on("data", (d: Buffer) => (n += d.length));
    req.on("end", () => res.end(`received ${n} bytes\n`));
    return;
  }
  res.setHeader("content-type", "text/plain");
  res.end(`hello from ${req.socket.localPort === DEMO_HTTPS_PORT ? "https" : "http"}: you asked for ${req.url}\n`);
}

function listen(server: net.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(new Error(e.code === "EADDRINUSE" ? `port ${port} is taken; the demo policy needs it free` : e.message)));
    server.listen(port, "127.0.0.1", resolve);
  });
}

function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** The http/2 server: its sessions are closed with it, so close() does not wait on a client's idle connection. */
function h2Server(cert: string, key: Buffer): { server: http2.Http2SecureServer; close(): Promise<void> } {
  const server = http2.createSecureServer({ cert, key }, (req, res) => {
    if (req.method === "POST") {
      let n = 0;
      req.on("data", (d: Buffer) => (n += d.length));
      req.on("end", () => res.end(`received ${n} bytes over h2\n`));
      return;
    }
    res.setHeader("content-type", "text/plain");
    res.end(`hello from h2: you asked for ${req.url}\n`);
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  return {
    server,
    close: () => {
      for (const s of sessions) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Stops the broker and its listener (and drops the connections still open). */
function closeBroker(broker: Aedes, server: net.Server): Promise<void> {
  return new Promise((resolve) => broker.close(() => server.close(() => resolve())));
}

/** Starts both servers; `root` is the package root (for policies/demo-certs). */
export async function startDemoServers(root: string): Promise<DemoServers> {
  const certs = path.join(root, "policies/demo-certs");
  const plain = http.createServer(handler);
  const cert = readFileSync(path.join(certs, "server.pem"), "utf8") + readFileSync(path.join(certs, "ca.pem"), "utf8");
  const key = readFileSync(path.join(certs, "server.key"));
  const secure = https.createServer({ cert, key }, handler);
  const h2 = h2Server(cert, key);
  const echo = new WebSocketServer({ noServer: true, handleProtocols: (offered) => offered.values().next().value ?? false });
  echo.on("connection", (sock) => sock.on("message", (data, isBinary) => sock.send(data as Buffer, { binary: isBinary })));
  for (const server of [plain, secure]) {
    server.on("upgrade", (req, socket, head) => {
      if (req.url === "/echo") echo.handleUpgrade(req, socket, head, (sock) => echo.emit("connection", sock, req));
      else socket.destroy();
    });
  }
  const broker = await Aedes.createBroker();
  const mqtt = net.createServer(broker.handle);
  const servers = {
    close: async () => {
      for (const c of echo.clients) c.terminate();
      echo.close();
      await Promise.all([close(plain), close(secure), h2.close(), closeBroker(broker, mqtt)]);
    },
  };
  try {
    await listen(plain, DEMO_HTTP_PORT);
    await listen(secure, DEMO_HTTPS_PORT);
    await listen(h2.server as unknown as http.Server, DEMO_H2_PORT);
    await listen(mqtt, DEMO_MQTT_PORT);
  } catch (e) {
    await servers.close();
    throw e;
  }
  return servers;
}
