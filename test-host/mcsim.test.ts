// The firmware in Moddable's own simulator: the example app
// (hosts/moddable/example) is built with mcconfig for Linux, on the
// project's manifest.json (the runtime preloaded, the Moddable host), with
// this test's policy and stream list, and run in mcsim under Xvfb. Its
// sockets, TLS, DNS resolver and XS engine are Moddable's. It runs each
// scenario against loopback peers started here; the Node host runs the same
// scenarios against the same peers, and both must report the same states and
// the same payload (length and SHA-256).
//
// Needs the Moddable SDK (MODDABLE) and Xvfb; skipped without them, a
// failure under REQUIRE_PEERS=1. The DNS scenarios need port 53 (root).

import { describe, it, before, after, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { testPki, opensslAvailable } from "./support/pki.js";
import { requirePeer } from "./support/peers.js";
import { startH1Servers, h1Handler, type H1Servers } from "./support/h1-servers.js";
import { startH2Servers, type H2Servers } from "./support/h2-servers.js";
import { createH1Binding } from "../src/protocols/h1.js";
import { createH2Binding } from "../src/protocols/h2.js";
import { startDnsServer, type DnsServer } from "./support/dns-server.js";
import { runStream, compile, type StreamRecord } from "./support/run-stream.js";
import { startWsServers, type WsServers } from "./support/ws-servers.js";
import { runWs } from "./support/ws-run.js";
import { createHash } from "node:crypto";
import {
  moddableSdk, buildApp, runInMcsim, parseExampleTrace, repoRoot, SDK_HINT, type ExampleStreamResult,
} from "./support/mcsim.js";
import { compilePolicy } from "../tools/policy/compile.js";
import { base64Encode } from "../src/util/base64.js";

interface Scenario {
  readonly stream: string;
  readonly what: string;
  readonly send?: number;
  readonly metadata?: Record<string, string>;
  /** Resolves a name through the local DNS server. */
  readonly dns?: boolean;
  /** A ws stream: done at its first whole message (as ss-sim and the example app). */
  readonly ws?: boolean;
}

const DNS_NAME = "ss.mcsim.test";

const SCENARIOS: readonly Scenario[] = [
  { stream: "get_plain", what: "a GET over plain TCP" },
  { stream: "post_plain", what: "a POST of 64 KiB with a metadata header, echoed", send: 65536, metadata: { tag: "mcsim" } },
  { stream: "get_tls", what: "a GET over TLS, verified against the policy's CA" },
  { stream: "wrong_ca", what: "a TLS server whose chain leads to a CA the policy does not trust" },
  { stream: "dns_name", what: `a DNS name (${DNS_NAME}), resolved through the host's resolver`, dns: true },
  { stream: "nxdomain", what: "a name the DNS server does not know (NXDOMAIN)", dns: true },
  { stream: "download_1m", what: "a 1 MiB download" },
  { stream: "demo_certs", what: "TLS with policies/demo-certs, trusting the demo policy's CA" },
  { stream: "demo_untrusted", what: "the same server, trusting the demo policy's other CA" },
  { stream: "long_timeout", what: "a timeout_ms of 2^32 - 1 ms, past what one device Timer takes, while a response takes 1 s" },
  { stream: "ws_echo", what: "a 70 000-byte ws message to the ws package's echo server and back", send: 70000, ws: true },
  { stream: "ws_echo_tls", what: "the same over TLS (wss)", send: 5000, ws: true },
  { stream: "ws_wrongproto", what: "a ws server that picks another subprotocol: refused", send: 1, ws: true },
  // Moddable's TLS 1.2 offers ECDHE-RSA-AES128-GCM-SHA256 (what RFC 9113 asks of TLS 1.2) and sends ALPN "h2", though it does not report the server's choice
  { stream: "get_h2", what: "a GET over http/2 (TLS 1.2 ECDHE + AES-GCM, ALPN h2) from Node's http2 server" },
  { stream: "post_h2", what: "a POST of 64 KiB over http/2, echoed", send: 65536, metadata: { tag: "mcsim" } },
  { stream: "download_h2", what: "a 400 kB download over http/2, past the first stream window" },
];

/** The states that end a run, as in ss-sim and the example app. */
const END_STATES = ["QOS_ACK_REMOTE", "QOS_NACK_REMOTE", "ALL_RETRIES_FAILED", "AUTH_FAILED", "TIMEOUT"];
const ended = (states: string[]) => END_STATES.includes(states[states.length - 1]!);

/** The demo policy's CAs (base64 DER), by name. */
function demoCas(): Record<string, string> {
  const demo = JSON.parse(readFileSync(path.join(repoRoot, "policies/demo.json"), "utf8")) as { certs: Record<string, string>[] };
  return Object.assign({}, ...demo.certs);
}

/** An https server with the demo's certificate (and its CA), answering as the h1 test servers. */
async function startDemoCertServer(): Promise<{ port: number; close(): void }> {
  const certs = path.join(repoRoot, "policies/demo-certs");
  const server = https.createServer({
    cert: readFileSync(path.join(certs, "server.pem"), "utf8") + readFileSync(path.join(certs, "ca.pem"), "utf8"),
    key: readFileSync(path.join(certs, "server.key")),
  }, h1Handler([]));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

function scenarioPolicy(caDer: Uint8Array, servers: H1Servers, demoPort: number, wsPorts: WsServers["ports"], h2Port: number): object {
  const { ports } = servers;
  const cas = demoCas();
  const get = (port: number, url: string, extra: object = {}) => ({
    endpoint: "127.0.0.1", port, protocol: "h1", http_method: "GET", http_url: url, retry: "quick", timeout_ms: 20000, ...extra,
  });
  const tls = { tls: true, tls_trust_store: "test" };
  const wsSt = (port: number, url: string, extra: object = {}) => ({
    endpoint: "127.0.0.1", port, protocol: "ws", http_url: url, ws_subprotocol: "echo.v1", ws_binary: true, retry: "quick", timeout_ms: 20000, ...extra,
  });
  return {
    retry: [{ quick: { backoff: [50, 100, 200], conceal: 2, jitterpc: 10 } }],
    certs: [{ test_ca: base64Encode(caDer) }, { demo_ca: cas.demo_ca }, { isrg_root_x1: cas.isrg_root_x1 }],
    trust_stores: [{ name: "test", stack: ["test_ca"] }, { name: "demo", stack: ["demo_ca"] }, { name: "isrg", stack: ["isrg_root_x1"] }],
    s: [
      { get_plain: get(ports.plain, "/status/200") },
      { post_plain: get(ports.plain, "/echo", { http_method: "POST", metadata: [{ tag: "x-tag:" }] }) },
      { get_tls: get(ports.tls, "/status/200", tls) },
      { wrong_ca: get(ports.other, "/status/200", tls) },
      { dns_name: get(ports.plain, "/status/200", { endpoint: DNS_NAME }) },
      { nxdomain: get(ports.plain, "/status/200", { endpoint: "nothing.mcsim.test" }) },
      { download_1m: get(ports.plain, "/bytes/1048576", { timeout_ms: 60000 }) },
      { demo_certs: get(demoPort, "/status/200", { tls: true, tls_trust_store: "demo" }) },
      { demo_untrusted: get(demoPort, "/status/200", { tls: true, tls_trust_store: "isrg" }) },
      { long_timeout: get(ports.plain, "/delay/1", { timeout_ms: 4294967295 }) },
      { ws_echo: wsSt(wsPorts.plain, "/echo") },
      { ws_echo_tls: wsSt(wsPorts.tls, "/echo", tls) },
      { ws_wrongproto: wsSt(wsPorts.plain, "/wrongproto") },
      { get_h2: get(h2Port, "/status/200", { ...tls, protocol: "h2" }) },
      { post_h2: get(h2Port, "/echo", { ...tls, protocol: "h2", http_method: "POST", metadata: [{ tag: "x-tag:" }] }) },
      { download_h2: get(h2Port, "/bytes/400000", { ...tls, protocol: "h2", timeout_ms: 60000 }) },
    ],
  };
}

const sdk = moddableSdk();
let servers: H1Servers | undefined;
let wsServers: WsServers | undefined;
let h2Servers: H2Servers | undefined;
let demoServer: { port: number; close(): void } | undefined;
let dns: DnsServer | undefined;
let dnsError: string | undefined;
let buildLog = "";
let device: Map<string, ExampleStreamResult> | undefined;
let deviceLines: string[] = [];
const node = new Map<string, StreamRecord>();

before(async () => {
  if (!sdk || !opensslAvailable()) return;
  const pki = testPki();
  servers = await startH1Servers(pki);
  h2Servers = await startH2Servers(pki);
  demoServer = await startDemoCertServer();
  wsServers = await startWsServers(pki);
  try {
    dns = await startDnsServer({ [DNS_NAME]: "127.0.0.1" });
  } catch (error) {
    dnsError = (error as Error).message;
  }
  const json = scenarioPolicy(pki.ca.certDer, servers, demoServer.port, wsServers.ports, h2Servers.ports.tls);
  const compiled = compilePolicy(JSON.stringify(json));
  if (!compiled.binary) throw new Error(`scenario policy: ${JSON.stringify(compiled.diagnostics)}`);
  const scenarios = SCENARIOS.filter((s) => !s.dns || dns);

  const example = path.join(repoRoot, "hosts/moddable/example");
  const app = await buildApp(sdk, {
    name: "example",
    modules: { main: path.join(example, "main"), "example/dns-servers": path.join(example, "dns-sim") },
    policy: compiled.binary,
    config: {
      streams: scenarios.map(({ stream, send, metadata }) => ({ stream, send, metadata })),
      dns: dns ? [dns.address] : [],
    },
  });
  buildLog = app.log;
  const run = await runInMcsim(sdk, app.so, { done: (line) => line.startsWith("ss done"), limitMs: 180000 });
  deviceLines = run.lines;
  device = parseExampleTrace(run.lines);

  const policy = compile(json);
  for (const s of scenarios) {
    if (s.ws) {
      const r = await runWs(policy, s.stream, {
        messages: [new Uint8Array(s.send ?? 0).fill(0x61)],
        until: (r) => r.messages.length === 1 || ended(r.states),
      });
      const rx = Buffer.concat(r.messages);
      node.set(s.stream, { states: r.states, rxBytes: rx.length, sha256: createHash("sha256").update(rx).digest("hex") } as StreamRecord);
      continue;
    }
    node.set(s.stream, await runStream(policy, s.stream, {
      until: ended, startTimeout: true, limitMs: 70000, bindings: [createH1Binding(), createH2Binding()],
      ...(s.send !== undefined ? { send: new Uint8Array(s.send).fill(0x61) } : {}),
      ...(s.metadata ? { metadata: s.metadata } : {}),
      ...(dns ? { dnsServers: [dns.address] } : {}),
    }));
  }
});

after(() => {
  servers?.close();
  h2Servers?.close();
  demoServer?.close();
  wsServers?.close();
  dns?.close();
});

function guard(t: TestContext): boolean {
  return requirePeer(SDK_HINT, sdk !== undefined, t) && requirePeer("openssl", opensslAvailable(), t);
}

describe("the example app in mcsim, against the Node host", () => {
  it("builds with mcconfig: every module type-checks, and xsl finds no unfrozen object in the runtime", (t) => {
    if (!guard(t)) return;
    // xsl (the linker that preloads) warns of each preloaded object that is
    // not frozen and of each module variable that is written at run time.
    const ours = buildLog.split("\n").filter((l) => l.startsWith("### warning: xs-secure-streams/"));
    const unfrozen = ours.filter((l) => l.endsWith(": not frozen") && !l.includes("Preference.#cache"));
    assert.deepEqual(unfrozen, [], "module-level objects of the runtime must be frozen (they are in flash on the device)");
    // The reader's and CRC's module caches are written at run time on
    // purpose (docs/footprint.md): no other module variable may be.
    const written = ours.filter((l) => l.endsWith(": no const"))
      .filter((l) => !/^### warning: xs-secure-streams\/policy\/(reader|crc): .* (boundsOf|bounds|bytesOf|bytes|cursor|table): no const$/.test(l));
    assert.deepEqual(written, [], "module variables written at run time");
    assert.match(buildLog, /# xsl modules/, "the build linked (and preloaded) the modules");
  });

  for (const s of SCENARIOS) {
    it(`${s.stream}: ${s.what}: the same states and payload as on Node`, (t) => {
      if (!guard(t)) return;
      if (s.dns && !requirePeer(`a DNS server on 127.x.y.z:53 (${dnsError})`, dns !== undefined, t)) return;
      const d = device?.get(s.stream);
      const n = node.get(s.stream);
      assert.ok(d, `mcsim reported nothing for ${s.stream}; it traced:\n${deviceLines.join("\n")}`);
      assert.ok(n);
      assert.deepEqual(d.states, n.states, `states in mcsim vs on Node; mcsim traced:\n${deviceLines.join("\n")}`);
      assert.equal(d.rxBytes, n.rxBytes, "payload bytes");
      assert.equal(d.sha256, n.sha256, "payload SHA-256");
      t.diagnostic(`${n.states.join(" ")}; ${n.rxBytes} bytes`);
    });
  }

  it("the scenarios mean what they say", (t) => {
    if (!guard(t)) return;
    const states = (name: string) => node.get(name)?.states ?? [];
    assert.equal(states("get_plain").at(-1), "QOS_ACK_REMOTE");
    assert.equal(node.get("post_plain")?.rxBytes, 65536);
    assert.equal(states("get_tls").at(-1), "QOS_ACK_REMOTE");
    assert.equal(states("wrong_ca").at(-1), "ALL_RETRIES_FAILED");
    assert.ok(!states("wrong_ca").includes("CONNECTED"));
    assert.equal(node.get("download_1m")?.rxBytes, 1048576);
    assert.equal(states("demo_certs").at(-1), "QOS_ACK_REMOTE");
    assert.equal(states("demo_untrusted").at(-1), "ALL_RETRIES_FAILED");
    assert.equal(states("long_timeout").at(-1), "QOS_ACK_REMOTE");
    assert.deepEqual(states("ws_echo"), ["CREATING", "POLL", "CONNECTING", "CONNECTED"]);
    assert.equal(node.get("ws_echo")?.rxBytes, 70000);
    assert.equal(node.get("ws_echo_tls")?.rxBytes, 5000);
    assert.equal(states("ws_wrongproto").at(-1), "ALL_RETRIES_FAILED");
    assert.ok(!states("ws_wrongproto").includes("CONNECTED"));
    assert.equal(states("get_h2").at(-1), "QOS_ACK_REMOTE");
    assert.equal(node.get("post_h2")?.rxBytes, 65536);
    assert.equal(node.get("download_h2")?.rxBytes, 400000);
    // Refused for the right reason on the device: an untrusted chain, not a CA it cannot read.
    const untrusted = deviceLines.filter((l) => l.startsWith("demo_untrusted: "));
    assert.ok(untrusted.length > 0 && untrusted.every((l) => l.startsWith("demo_untrusted: tls-untrusted: ")), untrusted.join("\n"));
    if (dns) {
      assert.equal(states("dns_name").at(-1), "QOS_ACK_REMOTE");
      assert.equal(states("nxdomain").at(-1), "ALL_RETRIES_FAILED");
      assert.ok(dns.queries.includes(`${DNS_NAME} A?`), dns.queries.join(", "));
    }
  });
});
