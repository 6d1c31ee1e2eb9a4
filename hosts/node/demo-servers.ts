// The local servers the demo policy names: http on 127.0.0.1:7681 and https
// on 127.0.0.1:7682 (certificate from policies/demo-certs, served with its CA).
// GET answers with a line naming the scheme and the URL; POST counts the body.
// An MQTT broker (aedes, in-process) listens on 127.0.0.1:7683.

import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import path from "node:path";
import net from "node:net";
import { Aedes } from "aedes";

export const DEMO_HTTP_PORT = 7681;
export const DEMO_HTTPS_PORT = 7682;
export const DEMO_MQTT_PORT = 7683;

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

/** Stops the broker and its listener (and drops the connections still open). */
function closeBroker(broker: Aedes, server: net.Server): Promise<void> {
  return new Promise((resolve) => broker.close(() => server.close(() => resolve())));
}

/** Starts both servers; `root` is the package root (for policies/demo-certs). */
export async function startDemoServers(root: string): Promise<DemoServers> {
  const certs = path.join(root, "policies/demo-certs");
  const plain = http.createServer(handler);
  const secure = https.createServer({
    cert: readFileSync(path.join(certs, "server.pem"), "utf8") + readFileSync(path.join(certs, "ca.pem"), "utf8"),
    key: readFileSync(path.join(certs, "server.key")),
  }, handler);
  const broker = await Aedes.createBroker();
  const mqtt = net.createServer(broker.handle);
  const servers = { close: async () => { await Promise.all([close(plain), close(secure), closeBroker(broker, mqtt)]); } };
  try {
    await listen(plain, DEMO_HTTP_PORT);
    await listen(secure, DEMO_HTTPS_PORT);
    await listen(mqtt, DEMO_MQTT_PORT);
  } catch (e) {
    await servers.close();
    throw e;
  }
  return servers;
}
