// The http/2 peers of lws' failure-path suite and of the h2 binding's tests:
// Node's own http2 secure servers on loopback (ALPN h2), one per certificate
// case, plus a cleartext one (prior knowledge), answering as the h1 servers
// do (h1-servers.ts), and the policy whose streamtypes point at them.

import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { TestPki, ServerCredential } from "./pki.js";
import { h1Handler } from "./h1-servers.js";
import { base64Encode } from "../../src/util/base64.js";

export interface H2Servers {
  readonly ports: Readonly<Record<"plain" | "tls" | "expired" | "wronghost" | "selfsigned" | "other", number>>;
  /** "METHOD url" of every request any server received, in order; tests may empty it. */
  readonly seen: string[];
  /** HTTP/2 sessions the servers accepted (connections). */
  readonly sessions: () => number;
  /** The servers' live sessions, e.g. to send GOAWAY. */
  readonly live: Set<http2.ServerHttp2Session>;
  close(): void;
}

export interface H2ServerOptions {
  /** Server settings (e.g. a small initialWindowSize, maxConcurrentStreams). */
  readonly settings?: http2.Settings;
}

/** Starts the servers on 127.0.0.1, ephemeral ports. */
export async function startH2Servers(pki: TestPki, o: H2ServerOptions = {}): Promise<H2Servers> {
  const seen: string[] = [];
  const handler = h1Handler(seen) as unknown as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
  const servers: (http2.Http2SecureServer | http2.Http2Server)[] = [];
  const live = new Set<http2.ServerHttp2Session>();
  let sessions = 0;
  const listen = async (server: http2.Http2SecureServer | http2.Http2Server): Promise<number> => {
    server.on("session", (s) => {
      sessions++;
      live.add(s);
      s.on("close", () => live.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    servers.push(server);
    return (server.address() as AddressInfo).port;
  };
  const tlsServer = (cred: ServerCredential) => http2.createSecureServer({ cert: cred.chainPem, key: cred.keyPem, settings: o.settings }, handler);
  const ports = {
    plain: await listen(http2.createServer({ settings: o.settings }, handler)),
    tls: await listen(tlsServer(pki.server)),
    expired: await listen(tlsServer(pki.expired)),
    wronghost: await listen(tlsServer(pki.wrongHost)),
    selfsigned: await listen(tlsServer(pki.selfSigned)),
    other: await listen(tlsServer(pki.otherServer)),
  };
  return {
    ports,
    seen,
    sessions: () => sessions,
    live,
    close: () => {
      for (const s of live) s.destroy();
      for (const s of servers) s.close();
    },
  };
}

/** lws' testsfail h2 streamtypes (and a few more), pointed at `servers`. */
export function h2TestPolicy(pki: TestPki, servers: H2Servers): object {
  const { ports } = servers;
  const retry = "default";
  const tls = (port: number, url: string, extra: object = {}) => ({
    endpoint: "127.0.0.1", port, protocol: "h2", http_method: "GET", http_url: url, tls: true,
    tls_trust_store: "local_test", retry, nghttp2_quirk_end_stream: true, h2q_oflow_txcr: true, ...extra,
  });
  const plain = (url: string, extra: object = {}) => ({
    endpoint: "127.0.0.1", port: ports.plain, protocol: "h2", http_method: "GET", http_url: url, retry, ...extra,
  });
  return {
    retry: [{ default: { backoff: [50, 100, 200], conceal: 2, jitterpc: 10 } }],
    certs: [{ test_ca: base64Encode(pki.ca.certDer) }],
    trust_stores: [{ name: "local_test", stack: ["test_ca"] }],
    s: [
      { t_h2_tls: tls(ports.tls, "/status/200", { timeout_ms: 10000, perf: true }) },
      { d_h2_tls: tls(ports.tls, "/delay/5", { timeout_ms: 3000 }) },
      { nxd_h2_tls: tls(ports.tls, "/status/200", { endpoint: "nothing.invalid" }) },
      { bulk_h2_tls: tls(ports.tls, "/bulk") },
      { badcert_hostname: tls(ports.wronghost, "/status/200") },
      { badcert_expired: tls(ports.expired, "/status/200") },
      { badcert_selfsigned: tls(ports.selfsigned, "/status/200") },
      { badcert_otherca: tls(ports.other, "/status/200") },
      { t_h2: plain("/status/200") },
      { nack_h2: tls(ports.tls, "/status/404") },
      { resp_map_h2: tls(ports.tls, "/status/530", { http_resp_map: [{ 530: 1530 }] }) },
      { post_h2: tls(ports.tls, "/echo", { http_method: "POST", metadata: [{ tag: "x-tag:" }] }) },
      { meta_h2: tls(ports.tls, "/status/200?q=${q}", { metadata: [{ q: "" }, { tag: "x-tag:" }] }) },
      { busy_h2: tls(ports.tls, "/busy", { opportunistic: true }) },
      { multi_h2: tls(ports.tls, "/bytes/${n}", { metadata: [{ n: "" }] }) },
      { nailed_h2: tls(ports.tls, "/status/200", { nailed_up: true }) },
    ],
  };
}
