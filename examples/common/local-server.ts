// The local server the examples talk to, standing in for the public ones the
// lws originals use (warmcat.com, libwebsockets.org, httpbin.org): http and
// https (the demo certificate from policies/demo-certs, sent with its CA) on
// 127.0.0.1. It answers what each example asks and keeps a record of every
// request, for the examples' test.

import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The auth blob the blob example's device holds; /blob wants it as a bearer token. */
export const DEVICE_TOKEN = "grant_type=refresh_token&refresh_token=Atzr|xs-ss-example&client_id=xs-ss-example-device";
/** Size of the /blob download (the lws original fetches 50 MiB from warmcat.com). */
export const BLOB_SIZE = 50 * 1024 * 1024;

export interface SeenRequest {
  /** Which connection carried it, numbered from 1 per server. */
  readonly connection: number;
  readonly secure: boolean;
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  /** What it was answered. */
  status: number;
}

export interface LocalServer {
  readonly httpPort: number;
  readonly httpsPort: number;
  /** Every request, in the order they arrived. */
  readonly seen: SeenRequest[];
  close(): Promise<void>;
}

const certs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../policies/demo-certs");

/** Starts both servers (port 0: any free port); onRequest hears of each request once it is answered. */
export async function startLocalServer(ports: { http: number; https: number }, onRequest?: (r: SeenRequest) => void): Promise<LocalServer> {
  const seen: SeenRequest[] = [];
  const handler = (secure: boolean): http.RequestListener => (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      const record: SeenRequest = {
        connection: connectionIds.get(req.socket) ?? 0, secure, method: req.method ?? "", url: req.url ?? "",
        headers: req.headers, body: Buffer.concat(chunks), status: 0,
      };
      seen.push(record);
      record.status = answer(record, res);
      onRequest?.(record);
    });
  };
  const plain = http.createServer(handler(false));
  const secure = https.createServer({
    cert: readFileSync(path.join(certs, "server.pem"), "utf8") + readFileSync(path.join(certs, "ca.pem"), "utf8"),
    key: readFileSync(path.join(certs, "server.key")),
  }, handler(true));
  for (const s of [plain, secure]) numberConnections(s);
  const httpPort = await listen(plain, ports.http);
  const httpsPort = await listen(secure, ports.https);
  return {
    httpPort,
    httpsPort,
    seen,
    close: async () => {
      for (const s of [plain, secure]) s.closeAllConnections();
      await Promise.all([plain, secure].map((s) => new Promise((resolve) => s.close(resolve))));
    },
  };
}

const connectionIds = new WeakMap<object, number>();

function numberConnections(server: http.Server): void {
  let n = 0;
  // "secureConnection" for https: "connection" sees the TCP socket, requests the TLS one
  server.on(server instanceof https.Server ? "secureConnection" : "connection", (socket: object) => connectionIds.set(socket, ++n));
}

function listen(server: http.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
  });
}

/** Answers one request; returns the status. */
function answer(req: SeenRequest, res: http.ServerResponse): number {
  const url = new URL(req.url, "http://local");
  // the examples capture these into metadata (their policies map "srv" and "test" to them)
  res.setHeader("server", "xs-ss-example-server");
  res.setHeader("test-custom-header", "hello-from-local-server");
  if (req.method === "GET" && url.pathname === "/urlarg/") {
    // libwebsockets.org/urlarg/ answers with the value of its x argument
    return send(res, 200, "text/plain", url.searchParams.get("x") ?? "");
  }
  if (req.method === "GET" && url.pathname === "/blob") {
    if (req.headers.authorization !== `Bearer ${DEVICE_TOKEN}`) return send(res, 401, "text/plain", "no valid token\n");
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": BLOB_SIZE });
    streamBlob(res);
    return 200;
  }
  if (req.method === "POST") {
    // httpbin's /post, short: what arrived
    return send(res, 200, "application/json", JSON.stringify({
      url: req.url, "content-type": req.headers["content-type"] ?? null, length: req.body.length,
      sha256: createHash("sha256").update(req.body).digest("hex"),
    }) + "\n");
  }
  if (req.method === "GET" && (url.pathname === "/" || url.pathname === "/index.html")) return send(res, 200, "text/html", page(req));
  return send(res, 404, "text/plain", "not here\n");
}

function send(res: http.ServerResponse, status: number, type: string, body: string): number {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(body);
  return status;
}

/** An index.html of about 10 KB, saying which headers the request carried. */
function page(req: SeenRequest): string {
  const rows = Object.entries(req.headers).map(([k, v]) => `<tr><td>${k}</td><td>${String(v).replace(/[<&]/g, "_")}</td></tr>`).join("\n");
  let filler = "";
  for (let i = 0; filler.length < 9000; i++) filler += `<p>line ${i}: the quick brown fox jumps over the lazy dog</p>\n`;
  return `<!doctype html>\n<title>local server</title>\n<h1>you asked for ${req.url.replace(/[<&]/g, "_")}</h1>\n<table>\n${rows}\n</table>\n${filler}`;
}

/**
 * The blob: BLOB_SIZE bytes of a fixed pseudo-random sequence (xorshift32
 * from seed 1), written as fast as the client takes it.
 */
function streamBlob(res: http.ServerResponse): void {
  let state = 1;
  let sent = 0;
  const piece = 64 * 1024;
  const more = (): void => {
    while (sent < BLOB_SIZE) {
      const buf = Buffer.allocUnsafe(Math.min(piece, BLOB_SIZE - sent));
      for (let i = 0; i < buf.length; i += 4) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        buf.writeInt32LE(state | 0, i);
      }
      sent += buf.length;
      if (sent === BLOB_SIZE) {
        res.end(buf);
        return;
      }
      if (!res.write(buf)) {
        res.once("drain", more);
        return;
      }
    }
  };
  more();
}
