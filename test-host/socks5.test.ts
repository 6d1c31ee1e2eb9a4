// SOCKS5 (src/wire/socks5, ConnectOptions.via, the policy's via-socks5 and
// the socks_proxy environment variable) through real SOCKS5 servers on
// loopback: microsocks and dante, with and without credentials (dante's are a
// system account's, see DANTE_USER); TLS runs end to end through the tunnel;
// an SSPC client reaches ss-proxy through SOCKS5; h2 and MQTT keep a proxied
// connection apart from a direct one.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { NodeHost } from "../hosts/node/host.js";
import { SsProxy } from "../hosts/node/proxy.js";
import { loadPolicy } from "../hosts/node/sim.js";
import { SecureStreams } from "../src/ss/context.js";
import { createH1Binding } from "../src/protocols/h1.js";
import { createH2Binding } from "../src/protocols/h2.js";
import { startH2Servers } from "./support/h2-servers.js";
import { Ret, State, stateName } from "../src/ss/states.js";
import { base64Encode } from "../src/util/base64.js";
import { parseSocks5Proxy, Socks5Error, Socks5Handshake } from "../src/wire/socks5/index.js";
import { repoRoot } from "./support/corpus.js";
import { commandRuns, requirePeer } from "./support/peers.js";
import { opensslAvailable, testPki } from "./support/pki.js";
import { bodyOf, sha, sspc, sspcDownload, startBodyServer, writeProxyPolicy } from "./support/proxy-rig.js";
import { Broker, mosquittoPath } from "./support/mosquitto.js";
import { compileMqttPolicy, Rig, waitFor, type Recorder } from "./support/mqtt-rig.js";

const tmp = mkdtempSync(path.join(tmpdir(), "socks5-test-"));
let body: Awaited<ReturnType<typeof startBodyServer>>;
let tlsServer: https.Server | undefined;
const children: ChildProcess[] = [];

const haveMicrosocks = commandRuns("sh", ["-c", "command -v microsocks"]);
const haveDante = commandRuns("sh", ["-c", "command -v danted"]);
// dante checks RFC 1929 credentials against the system's users (and their
// shadow entries, so it must run as root): .ci/run makes this account, which
// has no home and no login shell, with this fixed password. A test fixture.
const DANTE_USER = "ss-socks-test";
const DANTE_PASSWORD = "ss-socks-test-pw";
const haveDanteUser = haveDante && process.getuid?.() === 0 && commandRuns("getent", ["passwd", DANTE_USER]);

before(async () => {
  body = await startBodyServer();
  if (opensslAvailable()) {
    const pki = testPki();
    tlsServer = https.createServer({ cert: pki.server.chainPem, key: pki.server.keyPem }, (_req, res) => res.end("secret"));
    await new Promise<void>((r) => tlsServer!.listen(0, "127.0.0.1", r));
  }
});
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill();
  await body.close();
  tlsServer?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Waits until something accepts on the port. */
async function listening(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, "127.0.0.1", () => { s.destroy(); r(true); });
      s.on("error", () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

async function microsocks(auth?: [string, string]): Promise<number> {
  const port = await freePort();
  const c = spawn("microsocks", ["-i", "127.0.0.1", "-p", String(port), ...(auth ? ["-u", auth[0], "-P", auth[1]] : [])], { stdio: "ignore" });
  children.push(c);
  await listening(port);
  return port;
}

/** dante without authentication, or demanding RFC 1929 (checked against the system's users, as root). */
async function dante(method: "none" | "username"): Promise<number> {
  const port = await freePort();
  const conf = path.join(tmp, `danted-${port}.conf`);
  writeFileSync(conf, [
    "logoutput: stderr",
    `internal: 127.0.0.1 port = ${port}`,
    "external: 127.0.0.1",
    `socksmethod: ${method}`,
    "clientmethod: none",
    "user.privileged: root",
    "user.unprivileged: nobody",
    "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }",
    "socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect }",
    "",
  ].join("\n"));
  const c = spawn("danted", ["-f", conf, "-N", "1", "-p", path.join(tmp, `danted-${port}.pid`)], { stdio: "ignore" });
  children.push(c);
  await listening(port);
  return port;
}

/** The proxy-rig policy plus a TLS streamtype "secure", all through the policy's (top-level) via-socks5. */
function policyVia(via: string): SecureStreams {
  const file = path.join(tmp, `p-${Math.random().toString(36).slice(2)}.json`);
  const pki = tlsServer ? testPki() : undefined;
  writeProxyPolicy(file, body.port, pki ? {
    s: [{ secure: { endpoint: "localhost", port: (tlsServer!.address() as AddressInfo).port, protocol: "h1", http_url: "x", tls: true, tls_trust_store: "test" } }],
  } : {});
  const json = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  // certs and trust stores come before the streamtypes that name them
  const trust = pki ? { certs: [{ test_ca: base64Encode(pki.ca.certDer) }], trust_stores: [{ name: "test", stack: ["test_ca"] }] } : {};
  writeFileSync(file, JSON.stringify({ "via-socks5": via, ...trust, ...json }));
  const policy = loadPolicy(file, (l) => { throw new Error(l); })!;
  return new SecureStreams(new NodeHost({ log: () => undefined }), policy, { bindings: [createH1Binding()] });
}

/** Runs a GET of `n` body bytes (or the TLS one); resolves to states and the body's hash. */
function run(ss: SecureStreams, streamtype: string, n = 100000): Promise<{ states: string[]; sha: string; bytes: number }> {
  return new Promise((resolve) => {
    const states: string[] = [];
    const parts: Uint8Array[] = [];
    const s = ss.create(streamtype, {
      onState: (state, _a, st) => {
        states.push(stateName(state));
        if ([State.QOS_ACK_REMOTE, State.QOS_NACK_REMOTE, State.AUTH_FAILED, State.ALL_RETRIES_FAILED].includes(state as never)) {
          setImmediate(() => st.destroy());
          const all = Buffer.concat(parts);
          resolve({ states, sha: sha(all), bytes: all.length });
        }
        return Ret.OK;
      },
      onRx: (p) => { parts.push(p.slice()); return Ret.OK; },
    });
    if (streamtype !== "secure") s.setMetadata("n", String(n));
    s.requestTx();
  });
}

// ---- the codec ----

test("socks5: proxy addresses parse as lws writes them", () => {
  assert.deepEqual(parseSocks5Proxy("127.0.0.1:1080"), { host: "127.0.0.1", port: 1080 });
  assert.deepEqual(parseSocks5Proxy("u:p@h.example:9"), { host: "h.example", port: 9, username: "u", password: "p" });
  assert.deepEqual(parseSocks5Proxy("u:p:q@[::1]:9"), { host: "::1", port: 9, username: "u", password: "p:q" });
  for (const bad of ["", "h", "h:", "h:0", "h:65536", ":1", "u@h:1", "u:@h:1", "h:1x"]) assert.equal(parseSocks5Proxy(bad), undefined, bad);
});

test("socks5: the handshake's bytes (RFC 1928 and 1929), replies split anywhere", () => {
  const h = new Socks5Handshake({ host: "p", port: 1, username: "ab", password: "xyz" }, { host: "example.com", port: 443 });
  assert.deepEqual([...h.hello()], [5, 2, 0, 2]);
  const auth = h.receive(Uint8Array.of(5));
  assert.equal(auth, "wait");
  const a = h.receive(Uint8Array.of(2));
  assert.deepEqual(a, { send: Uint8Array.of(1, 2, 0x61, 0x62, 3, 0x78, 0x79, 0x7a) });
  const c = h.receive(Uint8Array.of(1, 0));
  assert.deepEqual(c, { send: Uint8Array.of(5, 1, 0, 3, 11, ...Buffer.from("example.com"), 1, 187) });
  assert.equal(h.receive(Uint8Array.of(5, 0, 0, 1, 127, 0)), "wait");
  assert.deepEqual(h.receive(Uint8Array.of(0, 1, 0x1f, 0x90, 0x41)), { open: Uint8Array.of(0x41) });
  const v4 = new Socks5Handshake({ host: "p", port: 1 }, { host: "10.1.2.3", port: 80 });
  assert.deepEqual([...v4.hello()], [5, 1, 0]);
  assert.deepEqual(v4.receive(Uint8Array.of(5, 0)), { send: Uint8Array.of(5, 1, 0, 1, 10, 1, 2, 3, 0, 80) });
});

test("socks5: refusals have their codes", () => {
  const cases: [Uint8Array[], string][] = [
    [[Uint8Array.of(5, 0xff)], "no-method"],
    [[Uint8Array.of(4, 0)], "bad-reply"],
    [[Uint8Array.of(5, 2), Uint8Array.of(1, 1)], "auth-failed"],
    [[Uint8Array.of(5, 0), Uint8Array.of(5, 5, 0, 1, 0, 0, 0, 0, 0, 0)], "refused"],
    [[Uint8Array.of(5, 0), Uint8Array.of(5, 4, 0, 1, 0, 0, 0, 0, 0, 0)], "unreachable"],
    [[Uint8Array.of(5, 0), Uint8Array.of(5, 0, 0, 9, 0, 0, 0, 0, 0, 0)], "bad-reply"],
  ];
  for (const [replies, code] of cases) {
    const h = new Socks5Handshake({ host: "p", port: 1, username: "u", password: "p" }, { host: "t", port: 1 });
    assert.throws(() => { for (const r of replies) h.receive(r); }, (e: unknown) => e instanceof Socks5Error && e.code === code, code);
  }
});

// ---- through real SOCKS5 servers ----

for (const [name, start, available] of [
  ["microsocks", () => microsocks(), haveMicrosocks],
  ["dante", () => dante("none"), haveDante],
] as const) {
  test(`${name}, no credentials: the policy's via-socks5 carries h1, and TLS end to end through the tunnel`, async (t) => {
    if (!requirePeer(name, available, t)) return;
    const port = await start();
    const ss = policyVia(`127.0.0.1:${port}`);
    const r = await run(ss, "get");
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"]);
    assert.equal(r.sha, sha(bodyOf(100000)));
    if (tlsServer) {
      const s = await run(ss, "secure");
      assert.equal(s.states[s.states.length - 1], "QOS_ACK_REMOTE", s.states.join(" "));
      assert.equal(s.sha, sha(Buffer.from("secret")));
    }
  });
}

test("microsocks with credentials: right ones connect, wrong ones are AUTH_FAILED (not retried), none are AUTH_FAILED", async (t) => {
  if (!requirePeer("microsocks", haveMicrosocks, t)) return;
  const port = await microsocks(["alice", "s3cret"]);
  const ok = await run(policyVia(`alice:s3cret@127.0.0.1:${port}`), "get");
  assert.equal(ok.states[ok.states.length - 1], "QOS_ACK_REMOTE");
  assert.equal(ok.sha, sha(bodyOf(100000)));
  const wrong = await run(policyVia(`alice:wrong@127.0.0.1:${port}`), "get");
  assert.deepEqual(wrong.states, ["CREATING", "POLL", "CONNECTING", "AUTH_FAILED"]);
  const none = await run(policyVia(`127.0.0.1:${port}`), "get");
  assert.deepEqual(none.states, ["CREATING", "POLL", "CONNECTING", "AUTH_FAILED"]);
});

test("dante demanding credentials: none, or a user it does not know, are AUTH_FAILED", async (t) => {
  if (!requirePeer("danted", haveDante, t)) return;
  const port = await dante("username");
  const none = await run(policyVia(`127.0.0.1:${port}`), "get");
  assert.deepEqual(none.states, ["CREATING", "POLL", "CONNECTING", "AUTH_FAILED"]);
  const wrong = await run(policyVia(`nosuchuser:nopassword@127.0.0.1:${port}`), "get");
  assert.deepEqual(wrong.states, ["CREATING", "POLL", "CONNECTING", "AUTH_FAILED"]);
});

test(`dante demanding credentials: the system user ${DANTE_USER} with its password connects (h1, and TLS end to end), a wrong password is AUTH_FAILED (not retried)`, async (t) => {
  if (!requirePeer(`danted and the system account ${DANTE_USER} (made by .ci/run, as root)`, haveDanteUser, t)) return;
  const port = await dante("username");
  const ss = policyVia(`${DANTE_USER}:${DANTE_PASSWORD}@127.0.0.1:${port}`);
  const ok = await run(ss, "get");
  assert.deepEqual(ok.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"]);
  assert.equal(ok.sha, sha(bodyOf(100000)));
  if (tlsServer) {
    const s = await run(ss, "secure");
    assert.equal(s.states[s.states.length - 1], "QOS_ACK_REMOTE", s.states.join(" "));
    assert.equal(s.sha, sha(Buffer.from("secret")));
  }
  const wrong = await run(policyVia(`${DANTE_USER}:not-${DANTE_PASSWORD}@127.0.0.1:${port}`), "get");
  assert.deepEqual(wrong.states, ["CREATING", "POLL", "CONNECTING", "AUTH_FAILED"]);
});

test("an SSPC client reaches ss-proxy over TCP through SOCKS5 (app → socks5 → proxy → server)", async (t) => {
  if (!requirePeer("microsocks", haveMicrosocks, t)) return;
  const port = await microsocks(["bob", "pw"]);
  const file = path.join(tmp, "proxy-policy.json");
  writeProxyPolicy(file, body.port);
  const proxy = new SsProxy({ policy: loadPolicy(file, console.error)!, host: new NodeHost({ log: () => undefined }) });
  const where = await proxy.listen({ host: "127.0.0.1", port: 0 });
  const [h, p] = where.split(":");
  const ctx = sspc({ host: h!, port: Number(p), via: { socks5: { host: "127.0.0.1", port, username: "bob", password: "pw" } } });
  const d = await sspcDownload(ctx, "get", 300000);
  assert.equal(d.sha, sha(bodyOf(300000)));
  await proxy.close();
});

test("ss-sim: the socks_proxy environment variable sends the stream through SOCKS5 (wrong credentials: AUTH_FAILED, exit 1)", async (t) => {
  if (!requirePeer("microsocks", haveMicrosocks, t)) return;
  const port = await microsocks(["carol", "pw"]);
  const file = path.join(tmp, "sim-policy.json");
  writeProxyPolicy(file, body.port);
  const sim = (socks: string) => new Promise<{ code: number | null; out: string }>((resolve) => {
    const c = spawn(process.execPath, [path.join(repoRoot, "dist/hosts/node/ss-sim.js"), "--policy", file, "--stream", "get", "--meta", "n=5000"], {
      env: { ...process.env, socks_proxy: socks }, stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    c.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    c.stderr.resume();
    c.once("exit", (code) => resolve({ code, out }));
  });
  const good = await sim(`carol:pw@127.0.0.1:${port}`);
  assert.equal(good.code, 0, good.out);
  assert.match(good.out, /ok: received 5000 bytes/);
  const bad = await sim(`carol:nope@127.0.0.1:${port}`);
  assert.equal(bad.code, 1, bad.out);
  assert.match(bad.out, /AUTH_FAILED/);
});

test("h2: a stream through the streamtype's via-socks5 never shares a connection with a direct one to the same server", async (t) => {
  if (!requirePeer("microsocks", haveMicrosocks, t) || !requirePeer("openssl", opensslAvailable(), t)) return;
  const pki = testPki();
  const servers = await startH2Servers(pki);
  try {
    const port = await microsocks();
    const st = (extra: object) => ({
      endpoint: "127.0.0.1", port: servers.ports.tls, protocol: "h2", http_method: "GET", http_url: "/status/200",
      tls: true, tls_trust_store: "test", retry: "default", ...extra,
    });
    const file = path.join(tmp, "h2-via.json");
    writeFileSync(file, JSON.stringify({
      retry: [{ default: { backoff: [50, 100], conceal: 2, jitterpc: 10 } }],
      certs: [{ test_ca: base64Encode(pki.ca.certDer) }],
      trust_stores: [{ name: "test", stack: ["test_ca"] }],
      s: [{ direct: st({}) }, { proxied: st({ "via-socks5": `127.0.0.1:${port}` }) }],
    }));
    const ss = new SecureStreams(new NodeHost({ log: () => undefined }), loadPolicy(file, (l) => { throw new Error(l); })!, { bindings: [createH2Binding()] });
    // both at once: a second stream to the same origin would join the first one's connection if it could
    const results = await Promise.all(["direct", "proxied"].map((name) => new Promise<string[]>((resolve) => {
      const states: string[] = [];
      const s = ss.create(name, {
        onState: (state) => {
          states.push(stateName(state));
          if ([State.QOS_ACK_REMOTE, State.QOS_NACK_REMOTE, State.ALL_RETRIES_FAILED].includes(state as never)) resolve(states);
          return Ret.OK;
        },
      });
      s.requestTx();
    })));
    for (const states of results) assert.equal(states.at(-1), "QOS_ACK_REMOTE", states.join(" "));
    assert.equal(servers.sessions(), 2, "one connection each");
    ss.destroyAll();
  } finally {
    servers.close();
  }
});

test("mqtt: a streamtype through via-socks5 gets its own broker connection; direct ones share theirs, and both carry messages", { timeout: 60_000 }, async (t) => {
  if (!requirePeer("microsocks", haveMicrosocks, t) || !requirePeer("mosquitto", mosquittoPath() !== undefined, t)) return;
  const broker = await Broker.start();
  try {
    const socks = await microsocks();
    const rig = new Rig(compileMqttPolicy(broker.port, {
      direct_a: { mqtt_subscribe: "route/a", mqtt_qos: 1 },
      direct_b: { mqtt_subscribe: "route/b", mqtt_qos: 1 },
      proxied: { mqtt_subscribe: "route/p", mqtt_qos: 1, mqtt_topic: "route/a", "via-socks5": `127.0.0.1:${socks}` },
    }));
    try {
      const streams = ["direct_a", "direct_b"].map((name) => rig.open(name));
      let sent = false;
      const proxied = rig.open("proxied", { send: () => (sent ? undefined : ((sent = true), new TextEncoder().encode("via socks5"))) });
      for (const r of [...streams, proxied]) r.stream.connect();
      const connected = (r: Recorder) => r.states.includes("CONNECTED");
      await waitFor(() => [...streams, proxied].every(connected), () => [...streams, proxied].map((r) => r.states.join(" ")).join(" | "));
      assert.equal(rig.host.connects, 2, "one connection for the direct streamtypes, one through SOCKS5");
      proxied.stream.requestTx();
      await waitFor(() => streams[0]!.rx.length === 1, () => `direct_a got ${streams[0]!.rx.length}; proxied: ${proxied.states.join(" ")}`);
      assert.equal(Buffer.from(streams[0]!.rx[0]!).toString(), "via socks5");
    } finally {
      rig.close();
    }
  } finally {
    await broker.close();
  }
});
