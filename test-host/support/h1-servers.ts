// The http/1.1 peers of lws' failure-path suite ("minimal-secure-streams-
// testsfail"): Node's own http and https servers on loopback, one per
// certificate case, and the policy whose streamtypes point at them. Shared by
// the Node run (h1-testsfail.test.ts) and the XS run (h1-xs.test.ts), so both
// face the same servers and the same policy.

import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { TestPki, ServerCredential } from "./pki.js";
import { patternBytes } from "./run-stream.js";
import { base64Encode } from "../../src/util/base64.js";

/** Size of the /bulk response. */
export const BULK = 10 * 1024 * 1024;
/** The /bulk response body. */
export const bulkBody = patternBytes(BULK);

/**
 * GET /status/NNN   answers with status NNN, body "status NNN"
 * GET /delay/N      answers "late" after N seconds
 * GET /bulk         BULK bytes of bulkBody, 64 KiB writes, chunked
 * GET /bytes/N      the first N bytes of bulkBody, with Content-Length
 * POST /echo        echoes the request body
 * GET /close        "bye" with Connection: close
 * GET /busy         503 with Retry-After: 0 every other time, else 200
 * anything else     404
 */
export function h1Handler(seen: string[]): http.RequestListener {
  let busy = 0;
  return (req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const url = req.url ?? "/";
    let m: RegExpExecArray | null;
    if ((m = /^\/status\/(\d{3})$/.exec(url))) {
      res.statusCode = Number(m[1]);
      res.end(`status ${m[1]}`);
    } else if ((m = /^\/delay\/(\d+)$/.exec(url))) {
      const t = setTimeout(() => res.end("late"), Number(m[1]) * 1000);
      res.on("close", () => clearTimeout(t));
    } else if (url === "/bulk") {
      res.setHeader("content-type", "application/octet-stream");
      let at = 0;
      const pump = () => {
        while (at < BULK) {
          const piece = bulkBody.subarray(at, at + 65536);
          at += piece.length;
          if (!res.write(piece)) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    } else if ((m = /^\/bytes\/(\d+)$/.exec(url)) && Number(m[1]) <= BULK) {
      res.setHeader("content-type", "application/octet-stream");
      res.end(bulkBody.subarray(0, Number(m[1])));
    } else if (url === "/echo" && req.method === "POST") {
      const parts: Buffer[] = [];
      req.on("data", (d: Buffer) => parts.push(d));
      req.on("end", () => res.end(Buffer.concat(parts)));
    } else if (url === "/busy") {
      if (busy++ % 2 === 0) {
        res.statusCode = 503;
        res.setHeader("retry-after", "0");
      }
      res.end(res.statusCode === 503 ? "busy" : "ok");
    } else if (url === "/close") {
      res.setHeader("connection", "close");
      res.end("bye");
    } else {
      res.statusCode = 404;
      res.end();
    }
  };
}

export interface H1Servers {
  /** Port of each server: plain, tls, expired, wronghost, selfsigned, other. */
  readonly ports: Readonly<Record<"plain" | "tls" | "expired" | "wronghost" | "selfsigned" | "other", number>>;
  /** "METHOD url" of every request any server received, in order; tests may empty it. */
  readonly seen: string[];
  close(): void;
}

/** Starts the servers on 127.0.0.1, ephemeral ports. */
export async function startH1Servers(pki: TestPki): Promise<H1Servers> {
  const seen: string[] = [];
  const handler = h1Handler(seen);
  const servers: http.Server[] = [];
  const listen = async (server: http.Server): Promise<number> => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    servers.push(server);
    return (server.address() as AddressInfo).port;
  };
  const tlsServer = (cred: ServerCredential) => https.createServer({ cert: cred.chainPem, key: cred.keyPem }, handler);
  const ports = {
    plain: await listen(http.createServer(handler)),
    tls: await listen(tlsServer(pki.server)),
    expired: await listen(tlsServer(pki.expired)),
    wronghost: await listen(tlsServer(pki.wrongHost)),
    selfsigned: await listen(tlsServer(pki.selfSigned)),
    other: await listen(tlsServer(pki.otherServer)),
  };
  return {
    ports,
    seen,
    close: () => {
      for (const s of servers) {
        s.closeAllConnections();
        s.close();
      }
    },
  };
}

/** The suite's policy (JSON, to compile): lws' testsfail streamtypes, pointed at `servers`. */
export function h1TestPolicy(pki: TestPki, servers: H1Servers): object {
  const { ports } = servers;
  const retry = "default";
  const plain = (url: string, extra: object = {}) => ({
    endpoint: "127.0.0.1", port: ports.plain, protocol: "h1", http_method: "GET", http_url: url, retry, ...extra,
  });
  const tls = (port: number, url: string, extra: object = {}) => ({
    endpoint: "127.0.0.1", port, protocol: "h1", http_method: "GET", http_url: url, tls: true,
    tls_trust_store: "local_test", retry, ...extra,
  });
  return {
    retry: [{ default: { backoff: [50, 100, 200], conceal: 2, jitterpc: 10 } }],
    certs: [{ test_ca: base64Encode(pki.ca.certDer) }],
    trust_stores: [{ name: "local_test", stack: ["test_ca"] }],
    s: [
      { t_h1: plain("/status/200", { timeout_ms: 10000, perf: true }) },
      { t_h1_tls: tls(ports.tls, "/status/200", { timeout_ms: 10000 }) },
      { d_h1: plain("/delay/5", { timeout_ms: 3000 }) },
      { d_h1_tls: tls(ports.tls, "/delay/5", { timeout_ms: 3000 }) },
      { nxd_h1: plain("/status/200", { endpoint: "nothing.invalid" }) },
      { nxd_h1_tls: tls(ports.tls, "/status/200", { endpoint: "nothing.invalid" }) },
      { bulk_h1: plain("/bulk") },
      { bulk_h1_tls: tls(ports.tls, "/bulk") },
      { badcert_hostname: tls(ports.wronghost, "/status/200") },
      { badcert_expired: tls(ports.expired, "/status/200") },
      { badcert_selfsigned: tls(ports.selfsigned, "/status/200") },
      { badcert_otherca: tls(ports.other, "/status/200") },
      { nack_h1: plain("/status/404") },
      { post_h1: plain("/echo", { http_method: "POST", metadata: [{ tag: "x-tag:" }] }) },
      { meta_h1: plain("/status/200?q=${q}", { metadata: [{ q: "" }, { tag: "x-tag:" }] }) },
      { nailed_h1: plain("/close", { nailed_up: true }) },
      { resp_map_h1: plain("/status/530", { http_resp_map: [{ 530: 1530 }] }) },
      { busy_h1: plain("/busy", { opportunistic: true }) },
    ],
  };
}
