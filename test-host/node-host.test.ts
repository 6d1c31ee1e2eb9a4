// The Node host (hosts/node) against real servers on 127.0.0.1: Node's own
// net and tls servers, and openssl s_server where a server must send the
// alerts Node's does not. Certificates come from support/pki.ts.

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { ByteStream, ConnectOptions, HostError, HostErrorKind, StreamHandlers, TlsOptions } from "../src/host.js";
import { BLOB } from "../src/host.js";
import { SplitBlobStore } from "../src/system/split-blobs.js";
import { BLOB_LIMITS, DEVICE_TLS, FileBlobStore, MemoryBlobStore, NodeHost, classifySocketError } from "../hosts/node/index.js";
import { requirePeer } from "./support/peers.js";
import { opensslAvailable, testPki, type TestPki } from "./support/pki.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const hostModule = pathToFileURL(path.join(here, "../hosts/node/index.js")).href;

/** No test may hang the run: connections left open would otherwise do just that. */
const limit = { timeout: 20_000 };

const logged: string[] = [];
const host = new NodeHost({ log: (line) => logged.push(line) });

// ---------------------------------------------------------------------------
// Helpers

type ConnectedInfo = Parameters<StreamHandlers["onConnected"]>[0];
type Event =
  | { type: "connected"; info: ConnectedInfo }
  | { type: "data"; bytes: Uint8Array }
  | { type: "writable" }
  | { type: "closed" }
  | { type: "error"; error: HostError };

/** Records every callback of one stream; `done` settles at onClosed or onError. */
class Recorder implements StreamHandlers {
  readonly events: Event[] = [];
  stream!: ByteStream;
  readonly done: Promise<Event>;
  #settle!: (event: Event) => void;

  constructor(readonly hooks: { connected?(r: Recorder): void; data?(r: Recorder, bytes: Uint8Array): void; writable?(r: Recorder): void } = {}) {
    this.done = new Promise((resolve) => (this.#settle = resolve));
  }

  onConnected(info: ConnectedInfo): void {
    this.events.push({ type: "connected", info });
    this.hooks.connected?.(this);
  }
  onData(bytes: Uint8Array): void {
    this.events.push({ type: "data", bytes });
    this.hooks.data?.(this, bytes);
  }
  onWritable(): void {
    this.events.push({ type: "writable" });
    this.hooks.writable?.(this);
  }
  onClosed(): void {
    this.#end({ type: "closed" });
  }
  onError(error: HostError): void {
    this.#end({ type: "error", error });
  }
  #end(event: Event): void {
    this.events.push(event);
    this.#settle(event);
  }

  get connected(): ConnectedInfo | undefined {
    const event = this.events.find((e) => e.type === "connected");
    return event?.type === "connected" ? event.info : undefined;
  }
  get text(): string {
    return this.events.map((e) => (e.type === "data" ? Buffer.from(e.bytes).toString() : "")).join("");
  }
  /** The contract's order: connected (data|writable)* then closed|error; or error alone. */
  assertLegal(): void {
    const letters = this.events.map((e) => ({ connected: "C", data: "D", writable: "W", closed: "X", error: "E" })[e.type]).join("");
    assert.match(letters, /^(C[DW]*[XE]?|E)$/, `callback order ${letters}`);
  }
}

function connect(options: ConnectOptions, hooks?: Recorder["hooks"]): Recorder {
  const recorder = new Recorder(hooks);
  recorder.stream = host.connect(options, recorder);
  return recorder;
}

/** Connects and waits for the end; asserts the callback order. */
async function outcome(options: ConnectOptions, hooks?: Recorder["hooks"]): Promise<Recorder> {
  const recorder = connect(options, hooks);
  await recorder.done;
  recorder.assertLegal();
  return recorder;
}

async function expectError(options: ConnectOptions, kind: HostErrorKind, message?: RegExp): Promise<HostError> {
  const recorder = await outcome(options);
  const last = recorder.events.at(-1)!;
  assert.equal(last.type, "error", `expected ${kind}, got ${JSON.stringify(recorder.events.map((e) => e.type))}`);
  assert.equal(last.error.kind, kind, last.error.message);
  if (message) assert.match(last.error.message, message);
  return last.error;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Listens on 127.0.0.1:0; the server and every connection it took are gone after the test. */
async function listen(t: TestContext, server: net.Server): Promise<number> {
  const sockets = new Set<net.Socket>();
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  // A TLS server's client-facing sockets are TLSSockets over those.
  server.on("secureConnection", (socket: tls.TLSSocket) => socket.on("error", () => {}));
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as net.AddressInfo).port;
}

/** A port nothing listens on: bound by the OS, then released. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function pkiOrSkip(t: TestContext): TestPki | undefined {
  return requirePeer("openssl", opensslAvailable(), t) ? testPki() : undefined;
}

/** Node TLS server sending the good leaf + CA chain (options may override); `onSecure` gets each connection. */
function tlsServer(pki: TestPki, options: tls.TlsOptions = {}, onSecure: (socket: tls.TLSSocket) => void = echo): tls.Server {
  return tls.createServer({ cert: pki.server.chainPem, key: pki.server.keyPem, ...options }, onSecure);
}

function echo(socket: net.Socket): void {
  socket.on("data", (data) => {
    if (data.includes("bye")) socket.end(data);
    else socket.write(data);
  });
}

const tlsTo = (pki: TestPki, extra: Partial<TlsOptions> = {}): TlsOptions => ({ serverName: "localhost", ca: [pki.ca.certDer], ...extra });

// Send "hello", expect it back, then "bye", expect it back and the server's close.
const chat: Recorder["hooks"] = {
  connected: (r) => r.stream.write(new TextEncoder().encode("hello")),
  data: (r) => {
    if (r.text === "hello") r.stream.write(new TextEncoder().encode("bye"));
  },
};

// ---------------------------------------------------------------------------
// Plain TCP

test("plain TCP: connects, echoes both ways, reports the server's close", limit, async (t) => {
  const port = await listen(t, net.createServer(echo));
  const r = await outcome({ host: "127.0.0.1", port }, chat);
  assert.equal(r.text, "hellobye");
  assert.equal(r.events.at(-1)!.type, "closed");
  const info = r.connected!;
  assert.equal(info.peer, `127.0.0.1:${port}`);
  assert.equal(info.alpn, undefined);
  assert.equal(info.timings.dnsMs, 0, "an IP address needs no lookup");
  assert.ok(info.timings.tcpMs! >= 0);
  assert.equal(info.timings.tlsMs, undefined);
  for (const e of r.events) {
    if (e.type === "data") assert.equal(Object.getPrototypeOf(e.bytes), Uint8Array.prototype, "plain Uint8Array, not Buffer");
  }
});

test("plain TCP with lendReads: 4 MB arrive whole as views of the host's one buffer (no array per read), then the server's close", limit, async (t) => {
  const body = Buffer.alloc(4 << 20);
  for (let i = 0; i < body.length; i++) body[i] = (i * 31 + (i >> 12)) & 0xff;
  const port = await listen(t, net.createServer((socket) => socket.end(body)));
  const kept: Buffer[] = [];
  const memories = new Set<ArrayBufferLike>();
  const ended = await new Promise<string>((resolve) => {
    host.connect({ host: "127.0.0.1", port, lendReads: true }, {
      onConnected: () => undefined,
      // lent: what is kept is copied during the call
      onData: (bytes) => { memories.add(bytes.buffer); kept.push(Buffer.from(bytes)); },
      onWritable: () => undefined,
      onClosed: () => resolve("closed"),
      onError: (e) => resolve(`error ${e.kind}: ${e.message}`),
    });
  });
  assert.equal(ended, "closed");
  assert.ok(Buffer.concat(kept).equals(body), "the bytes arrive whole and in order");
  assert.ok(kept.length > 1, `${kept.length} reads`);
  assert.equal(memories.size, 1, "every read is a view of the same memory");
});

test("plain TCP by name: resolves localhost and times the lookup", limit, async (t) => {
  const port = await listen(t, net.createServer(echo));
  const r = await outcome({ host: "localhost", port }, chat);
  assert.equal(r.text, "hellobye");
  assert.equal(r.connected!.peer, `127.0.0.1:${port}`);
  assert.ok(r.connected!.timings.dnsMs! > 0);
});

test("refused: nothing listens on the port", limit, async () => {
  await expectError({ host: "127.0.0.1", port: await freePort() }, "refused", /ECONNREFUSED/);
});

test("dns: a name that cannot resolve", limit, async () => {
  await expectError({ host: "nothing.invalid", port: 80, timeoutMs: 10_000 }, "dns", /nothing\.invalid/);
});

test("timeout: a server that accepts but never answers the TLS hello", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, net.createServer(() => {}));
  const start = performance.now();
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki), timeoutMs: 300 }, "timeout", /300 ms/);
  const elapsed = performance.now() - start;
  assert.ok(elapsed >= 290 && elapsed < 2000, `took ${elapsed} ms`);
});

test("reset: the server resets right after accepting", limit, async (t) => {
  const port = await listen(t, net.createServer((socket) => socket.resetAndDestroy()));
  // The kernel may complete the connect before the reset: onConnected then
  // onError, or onError alone. Either way it ends as a reset.
  await expectError({ host: "127.0.0.1", port }, "reset");
});

test("reset: the server resets mid-stream", limit, async (t) => {
  const port = await listen(t, net.createServer((socket) => {
    socket.write("partial", () => setTimeout(() => socket.resetAndDestroy(), 20));
  }));
  const r = await outcome({ host: "127.0.0.1", port });
  assert.equal(r.text, "partial");
  const last = r.events.at(-1)!;
  assert.equal(last.type === "error" && last.error.kind, "reset");
});

test("reset: the server closes during the TLS handshake", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, net.createServer((socket) => socket.destroy()));
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki), timeoutMs: 5000 }, "reset");
});

test("close(): no callbacks after it, whatever the peer does; write() after it returns false", limit, async (t) => {
  const port = await listen(t, net.createServer((socket) => socket.end("talking and closing")));
  const r = connect({ host: "127.0.0.1", port }, { connected: (rec) => rec.stream.close() });
  await sleep(150);
  assert.deepEqual(r.events.map((e) => e.type), ["connected"]);
  assert.equal(r.stream.write(new Uint8Array([1])), false);
  r.stream.close(); // twice is fine

  const early = connect({ host: "localhost", port });
  early.stream.close(); // while resolving
  await sleep(100);
  assert.deepEqual(early.events, []);
});

test("write() before onConnected is a programming error", limit, async (t) => {
  const port = await listen(t, net.createServer(echo));
  const r = connect({ host: "127.0.0.1", port });
  assert.throws(() => r.stream.write(new Uint8Array([1])), /before onConnected/);
  r.stream.close();
});

test("backpressure (TCP): write() returns false once buffers fill, onWritable follows, and bytes are copied", limit, async (t) => {
  await backpressure(t, undefined);
});

test("backpressure (TLS): the same through TLS", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  await backpressure(t, pki);
});

/**
 * The server does not read at first; the client writes 64 KiB chunks from one
 * reused array (refilled after each write, so a host that did not copy would
 * send the wrong bytes) until write() says stop, then the server drains.
 */
async function backpressure(t: TestContext, pki: TestPki | undefined): Promise<void> {
  const chunk = 64 * 1024;
  let expected = 0;
  let received = 0;
  let corrupt = -1;
  const reader = (socket: net.Socket) => {
    socket.pause();
    setTimeout(() => socket.resume(), 200);
    socket.on("data", (data: Buffer) => {
      for (let i = 0; i < data.length; i++, received++) {
        if (corrupt < 0 && data[i] !== (Math.floor(received / chunk) & 0xff)) corrupt = received;
      }
      if (received === expected) socket.end();
    });
  };
  const server = pki ? tlsServer(pki, {}, reader) : net.createServer(reader);
  const port = await listen(t, server);
  const bytes = new Uint8Array(chunk);
  let falseAt = -1;
  const r = await outcome({ host: "127.0.0.1", port, tls: pki ? tlsTo(pki) : undefined }, {
    connected: (rec) => {
      for (let n = 0; n < 1024 && falseAt < 0; n++) {
        bytes.fill(n & 0xff);
        if (!rec.stream.write(bytes)) falseAt = n;
        expected += chunk;
      }
    },
  });
  assert.ok(falseAt >= 0, "write() never returned false");
  assert.equal(r.events.filter((e) => e.type === "writable").length, 1);
  assert.equal(r.events.at(-1)!.type, "closed");
  assert.equal(received, expected);
  assert.equal(corrupt, -1, `wrong byte at ${corrupt}: the host did not copy`);
  t.diagnostic(`write() returned false after ${((falseAt + 1) * chunk) / 1024} KiB`);
}

// ---------------------------------------------------------------------------
// TLS: success

test("TLS: leaf + CA chain, ca = [CA] → connected, data both ways, ALPN", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const seen: tls.TLSSocket[] = [];
  const port = await listen(t, tlsServer(pki, { ALPNProtocols: ["h2", "http/1.1"] }, (s) => (seen.push(s), echo(s))));
  const r = await outcome({ host: "127.0.0.1", port, tls: tlsTo(pki, { alpn: ["http/1.1"] }) }, chat);
  assert.equal(r.text, "hellobye");
  assert.equal(r.events.at(-1)!.type, "closed");
  const info = r.connected!;
  assert.equal(info.alpn, "http/1.1");
  assert.equal(info.peer, `127.0.0.1:${port}`);
  assert.ok(info.timings.tlsMs! > 0 && info.timings.tcpMs! >= 0);
  // What the device would have negotiated: TLS 1.2 and one of its suites.
  assert.equal(seen[0]!.getProtocol(), "TLSv1.2");
  assert.ok(DEVICE_TLS.ciphers.split(":").includes(seen[0]!.getCipher().name), seen[0]!.getCipher().name);
  assert.ok(logged.some((line) => /device's TLS does not report/.test(line)), "the TLS close is flagged once");
});

test("TLS: no ALPN asked → none reported; serverName may be the IP (matched against the IP SAN)", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki, { ALPNProtocols: ["h2"] }));
  const r = await outcome({ host: "127.0.0.1", port, tls: tlsTo(pki, { serverName: "127.0.0.1" }) }, chat);
  assert.equal(r.text, "hellobye");
  assert.equal(r.connected!.alpn, undefined);
});

test("TLS by name: host localhost, serverName localhost", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki));
  const r = await outcome({ host: "localhost", port, tls: tlsTo(pki) }, chat);
  assert.equal(r.text, "hellobye");
});

test("TLS: leaf + intermediate + root, the root trusted → connected", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki, { cert: pki.viaIntermediate.chainPem }));
  assert.equal((await outcome({ host: "127.0.0.1", port, tls: tlsTo(pki) }, chat)).text, "hellobye");
});

test("TLS: the trust store's CAs are tried in turn, as on the device: [unrelated CA, CA] → connected", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki));
  const tls = tlsTo(pki, { ca: [pki.otherCa.certDer, pki.ca.certDer] });
  assert.equal((await outcome({ host: "127.0.0.1", port, tls }, chat)).text, "hellobye");
});

test("TLS: a server that insists on ECDHE-RSA-AES128-GCM-SHA256 (the device's AEAD suite) works", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki, { ciphers: "ECDHE-RSA-AES128-GCM-SHA256" }));
  assert.equal((await outcome({ host: "127.0.0.1", port, tls: tlsTo(pki) }, chat)).text, "hellobye");
});

// ---------------------------------------------------------------------------
// TLS: the server is not trusted

test("tls-untrusted: a self-signed server certificate", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki, { cert: pki.selfSigned.chainPem }));
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki) }, "tls-untrusted");
});

test("tls-untrusted: a server certificate from another CA", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki, { cert: pki.otherServer.chainPem }));
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki) }, "tls-untrusted");
});

test("tls-untrusted: an empty trust store trusts nothing (no fallback to Node's roots)", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki));
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki, { ca: [] }) }, "tls-untrusted");
});

test("tls-untrusted: a leaf-only chain, which the device cannot verify", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki, { cert: pki.server.certPem }));
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki) }, "tls-untrusted",
    /subjectAltName match failed for localhost.*sent 1 certificate, its leaf alone.*leaf \+ CA/);
});

// Node completes the chain from its `ca` list and ignores the stray CA; the
// device verifies the chain it is sent, which leads nowhere it trusts.
test("tls-untrusted: leaf + an unrelated CA, although the leaf's own CA is trusted", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki, { cert: pki.server.certPem + pki.otherCa.certPem }));
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki) }, "tls-untrusted",
    /CN=localhost → CN=Unrelated Test CA\) does not lead to CA CN=XS Secure Streams Test CA \("certificate: auth err"\)/);
});

test("tls: a CA without an Authority Key Identifier (the device fails with \"invalid buffer\")", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki, { cert: pki.noAkiServer.chainPem }));
  const tls = tlsTo(pki, { ca: [pki.noAkiCa.certDer] });
  await expectError({ host: "127.0.0.1", port, tls }, "tls",
    /"invalid buffer": certificate 2 the server sent \(CN=Test CA without AKI\) has no Authority Key Identifier/);
  // The device throws on the first CA it tries: no other CA is tried after it.
  await expectError({ host: "127.0.0.1", port, tls: { ...tls, ca: [pki.noAkiCa.certDer, pki.ca.certDer] } }, "tls", /invalid buffer/);
});

test("tls: a server certificate signed with RSA-PSS, which the device cannot check", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki, { cert: pki.pssServer.chainPem }));
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki) }, "tls", /"Cert: unsupported algorithm: 1,2,840,113549,1,1,10"/);
});

// The device parses each handshake message from one record: a chain of
// about 20 KiB fails there, one of about 15 KiB still works.
test("tls: a Certificate message split across TLS records (a chain over 16 KiB)", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki, { cert: pki.server.chainPem + pki.otherCa.certPem.repeat(24) }));
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki) }, "tls",
    /Certificate message \(\d+ bytes\) does not fit in one TLS record.*empty Error/);
  const near = await listen(t, tlsServer(pki, { cert: pki.server.chainPem + pki.otherCa.certPem.repeat(16) }));
  assert.equal((await outcome({ host: "127.0.0.1", port: near, tls: tlsTo(pki) }, chat)).text, "hellobye");
});

// The probe reads the server's first flight and then only relays: the bytes
// it looks at are the flight's, not the response's.
test("TLS: the first-flight reader leaves the data path after ServerHelloDone (1 MiB through, ~2 KiB read)", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const big = Buffer.alloc(1 << 20, 7);
  const port = await listen(t, tlsServer(pki, {}, (s) => s.end(big)));
  const own = new NodeHost({ log: () => {} });
  const r = new Recorder();
  r.stream = own.connect({ host: "127.0.0.1", port, tls: tlsTo(pki) }, r);
  await r.done;
  const received = r.events.reduce((n, e) => n + (e.type === "data" ? e.bytes.length : 0), 0);
  assert.equal(received, big.length);
  const flight = pki.server.certDer.length + pki.ca.certDer.length;
  assert.ok(own.flightWork.scanned > flight && own.flightWork.scanned < flight + 2048,
    `${own.flightWork.scanned} bytes read for a ${flight}-byte chain`);
  assert.ok(own.flightWork.copied <= own.flightWork.scanned);
});

// Reading the first flight takes a relay under Node's TLS, which costs CPU
// on every byte: a server whose flight the device's rules accepted is not
// read again under the same trust context.
test("TLS: a server whose first flight was accepted is not read again; its next connection runs TLS on the TCP socket", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki));
  const own = new NodeHost({ log: () => {}, tlsResumption: false });
  const chatWith = async (): Promise<string> => {
    const r = new Recorder(chat);
    r.stream = own.connect({ host: "127.0.0.1", port, tls: tlsTo(pki) }, r);
    await r.done;
    r.assertLegal();
    return r.text;
  };
  assert.equal(await chatWith(), "hellobye");
  const read = own.flightWork.scanned;
  assert.ok(read > 0);
  assert.equal(await chatWith(), "hellobye");
  assert.equal(own.flightWork.scanned, read, "the second connection read no first flight");
  // another trust context (here: other ALPN) is another server to read
  const r = new Recorder(chat);
  r.stream = own.connect({ host: "127.0.0.1", port, tls: tlsTo(pki, { alpn: ["http/1.1"] }) }, r);
  await r.done;
  assert.ok(own.flightWork.scanned > read);
});

// Node's verified chain is compared with the one it verified when the flight
// was read: another chain means the connection is made again, reading the
// flight, and the stream sees one connection (or one refusal) only.
test("TLS: a known server that shows another chain is read again: the device's rules refuse a leaf sent alone", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const own = new NodeHost({ log: () => {}, tlsResumption: false });
  const port = await freePort();
  const serve = async (cert: string): Promise<() => Promise<void>> => {
    const server = tlsServer(pki, { cert });
    const sockets = new Set<net.Socket>();
    server.on("connection", (s: net.Socket) => (sockets.add(s), s.on("error", () => {})));
    server.on("tlsClientError", () => {});
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    return () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  };
  const attempt = async (): Promise<Recorder> => {
    const r = new Recorder(chat);
    r.stream = own.connect({ host: "127.0.0.1", port, tls: tlsTo(pki) }, r);
    await r.done;
    r.assertLegal();
    return r;
  };
  let stop = await serve(pki.server.chainPem);
  t.after(() => stop());
  assert.equal((await attempt()).text, "hellobye");
  await stop();
  // the same leaf, sent alone: Node completes it from the trust store, the device cannot
  stop = await serve(pki.server.certPem);
  const refused = (await attempt()).events.at(-1)!;
  assert.equal(refused.type, "error");
  assert.equal(refused.type === "error" && refused.error.kind, "tls-untrusted");
  assert.match(refused.type === "error" ? refused.error.message : "", /its leaf alone/);
  await stop();
  stop = await serve(pki.server.chainPem);
  assert.equal((await attempt()).text, "hellobye");
  // read again and accepted: known once more
  const read = own.flightWork.scanned;
  assert.equal((await attempt()).text, "hellobye");
  assert.equal(own.flightWork.scanned, read);
});

test("tls-hostname: the certificate names another host", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki, { cert: pki.wrongHost.chainPem }));
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki) }, "tls-hostname", /wrong\.example/);
});

test("tls-hostname: serverName differs from the certificate's names", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki));
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki, { serverName: "example.com" }) }, "tls-hostname");
});

test("tls-expired: the server certificate expired in 2020", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki, { cert: pki.expired.chainPem }));
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki) }, "tls-expired");
});

test("the system store is never consulted: NODE_EXTRA_CA_CERTS trusts the CA, NodeHost still refuses", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki));
  const script = `
    import tls from "node:tls";
    const { NodeHost } = await import(process.env.XS_HOST_MODULE);
    const port = Number(process.env.XS_PORT);
    const host = new NodeHost({ log() {} });
    const kind = (ca) => new Promise((resolve) => {
      const stream = host.connect({ host: "127.0.0.1", port, timeoutMs: 5000, tls: { serverName: "localhost", ca } }, {
        onConnected() { stream.close(); resolve("connected"); },
        onData() {}, onWritable() {}, onClosed() { resolve("closed"); },
        onError(e) { resolve(e.kind); },
      });
    });
    const control = await new Promise((resolve) => {
      const s = tls.connect({ host: "127.0.0.1", port, servername: "localhost" }, () => { resolve(s.authorized ? "trusted" : "untrusted"); s.destroy(); });
      s.on("error", (e) => resolve(e.code));
    });
    const otherCa = await kind([new Uint8Array(Buffer.from(process.env.XS_OTHER_CA, "base64"))]);
    const noCa = await kind([]);
    process.stdout.write(JSON.stringify({ control, otherCa, noCa }));
    process.exit(0);
  `;
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ["--input-type=module", "-e", script], {
      env: {
        ...process.env,
        NODE_EXTRA_CA_CERTS: pki.ca.certFile,
        XS_HOST_MODULE: hostModule,
        XS_PORT: String(port),
        XS_OTHER_CA: Buffer.from(pki.otherCa.certDer).toString("base64"),
      },
      timeout: 15_000,
    }, (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve(out)));
  });
  assert.deepEqual(JSON.parse(stdout), { control: "trusted", otherCa: "tls-untrusted", noCa: "tls-untrusted" });
});

// ---------------------------------------------------------------------------
// TLS: our side is refused, or cannot speak the server's TLS

test("tls-auth: the server requires a client certificate and none is sent", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki, { requestCert: true, rejectUnauthorized: true, ca: pki.ca.certPem }));
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki) }, "tls-auth", /HANDSHAKE_FAILURE/);
});

test("client certificate: the good RSA one is accepted", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const peers: string[] = [];
  const port = await listen(t, tlsServer(pki, { requestCert: true, rejectUnauthorized: true, ca: pki.ca.certPem }, (s) => {
    peers.push(`${s.authorized} ${s.getPeerCertificate().subject.CN}`);
    echo(s);
  }));
  const r = await outcome({ host: "127.0.0.1", port, tls: tlsTo(pki, { clientCert: pki.client.certDer, clientKey: pki.client.keyDer }) }, chat);
  assert.equal(r.text, "hellobye");
  assert.deepEqual(peers, ["true xs-test-device"]);
});

test("tls-auth: an EC client key fails before connecting (the device signs with RSA only)", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  let connections = 0;
  const server = tlsServer(pki, { requestCert: true, rejectUnauthorized: true, ca: pki.ca.certPem });
  server.on("connection", () => connections++);
  const port = await listen(t, server);
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki, { clientCert: pki.ecClient.certDer, clientKey: pki.ecClient.keyDer }) },
    "tls-auth", /client key is ec, not RSA/);
  assert.equal(connections, 0);
});

test("tls-auth: client key bytes the device could not read, or that do not match the certificate", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await freePort(); // never reached: checked before any I/O
  const pkcs1 = new Uint8Array(await rsaPkcs1Der(pki.client.keyFile));
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki, { clientCert: pki.client.certDer, clientKey: pkcs1 }) },
    "tls-auth", /PKCS#8/);
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki, { clientCert: pki.server.certDer, clientKey: pki.client.keyDer }) },
    "tls-auth", /do not belong together/);
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki, { clientKey: pki.client.keyDer }) }, "tls-auth", /both/);
});

/** The key as traditional PKCS#1 DER, which the device does not accept. */
function rsaPkcs1Der(keyFile: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn("openssl", ["rsa", "-in", keyFile, "-outform", "DER", "-traditional"], { stdio: ["ignore", "pipe", "ignore"] });
    const parts: Buffer[] = [];
    child.stdout.on("data", (d: Buffer) => parts.push(d));
    child.on("close", (code) => (code === 0 ? resolve(Buffer.concat(parts)) : reject(new Error(`openssl rsa: ${code}`))));
  });
}

test("tls-auth: openssl s_server refuses a client certificate from a CA it does not trust (unknown_ca alert)", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  // -verify_return_error: without it s_server logs the failure and carries on.
  const port = await opensslServer(t, pki, ["-Verify", "1", "-verify_return_error", "-CAfile", pki.otherCa.certFile]);
  await expectError({ host: "127.0.0.1", port, timeoutMs: 5000, tls: tlsTo(pki, { clientCert: pki.client.certDer, clientKey: pki.client.keyDer }) },
    "tls-auth", /UNKNOWN_CA/);
});

test("tls: a TLS 1.3-only server is unreachable, as from the device", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki, { minVersion: "TLSv1.3" }));
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki) }, "tls", /PROTOCOL_VERSION/);
});

test("tls: a server with no cipher suite the device offers", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await listen(t, tlsServer(pki, { ciphers: "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384" }));
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki) }, "tls", /HANDSHAKE_FAILURE/);
});

test("bad arguments are reported as 'other': a trust store entry that is not DER, an ALPN name, a port", limit, async (t) => {
  const pki = pkiOrSkip(t);
  if (!pki) return;
  const port = await freePort();
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki, { ca: [new Uint8Array([1, 2, 3])] }) }, "other", /trust store certificate 0/);
  await expectError({ host: "127.0.0.1", port, tls: tlsTo(pki, { alpn: ["x".repeat(256)] }) }, "other", /ALPN/);
  await expectError({ host: "127.0.0.1", port: 70_000 }, "other", /port/i);
});

/** openssl s_server with the good chain on an OS-chosen port, for one connection; stopped after the test. */
async function opensslServer(t: TestContext, pki: TestPki, extra: string[]): Promise<number> {
  const child = spawn("openssl", ["s_server", "-accept", "127.0.0.1:0", "-cert", pki.server.certFile,
    "-key", pki.server.keyFile, "-cert_chain", pki.ca.certFile, "-naccept", "1", ...extra], { stdio: ["pipe", "pipe", "pipe"] });
  t.after(() => void child.kill());
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (data: Buffer) => {
      out += data;
      const port = /ACCEPT .*:(\d+)/.exec(out)?.[1];
      if (port) resolve(Number(port));
    });
    child.on("exit", (code) => reject(new Error(`openssl s_server exited ${code}: ${out}`)));
  });
}

// ---------------------------------------------------------------------------
// Error mapping the servers above cannot produce

test("classifySocketError: codes Node reports, mapped to the contract's kinds", limit, () => {
  // The third column: the server had sent a CertificateRequest.
  const cases: [string, HostErrorKind, boolean?][] = [
    ["ECONNREFUSED", "refused"],
    ["ETIMEDOUT", "timeout"],
    ["ECONNRESET", "reset"],
    ["EPIPE", "reset"],
    ["ECONNABORTED", "reset"],
    ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", "tls-untrusted"],
    ["UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "tls-untrusted"],
    ["CERT_UNTRUSTED", "tls-untrusted"],
    ["CERT_NOT_YET_VALID", "tls-expired"],
    ["ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED", "tls-auth"],
    ["ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE", "tls-auth"],
    ["ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE", "tls", false],
    ["ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE", "tls-auth", true],
    ["ERR_SSL_WRONG_VERSION_NUMBER", "tls"],
    ["EHOSTUNREACH", "other"],
  ];
  for (const [code, kind, certificateRequested] of cases) {
    const error = Object.assign(new Error(code), { code });
    assert.equal(classifySocketError(error, certificateRequested), kind, code);
  }
});

// ---------------------------------------------------------------------------
// The rest of the host

test("timers, clock, random", limit, async () => {
  const start = host.now();
  let fired = 0;
  host.setTimer(20, () => fired++);
  host.clearTimer(host.setTimer(10, () => (fired += 100)));
  await sleep(60);
  assert.equal(fired, 1);
  assert.ok(host.now() - start >= 20);
  assert.equal(host.timeValid(), true);
  for (let i = 0; i < 1000; i++) {
    const x = host.random();
    assert.ok(x >= 0 && x < 1);
  }
});

test("blobs in memory: set/get/delete, values copied in and out", limit, () => {
  blobContract(new MemoryBlobStore());
  // the host's store splits what one stored value cannot hold, as the device does
  const host = new NodeHost();
  assert.ok(host.blobs instanceof SplitBlobStore);
  const cert = new Uint8Array(BLOB_LIMITS.valueBytes * 2 + 1).fill(7);
  host.blobs.set(BLOB.clientCert(0), cert);
  assert.deepEqual(host.blobs.get(BLOB.clientCert(0)), cert);
});

test("blobs in a directory: one file per blob, kept across hosts", limit, (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), "xs-ss-blobs-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  blobContract(new FileBlobStore(dir));
  const first = new NodeHost({ blobDir: path.join(dir, "nested") });
  first.blobs.set(BLOB.clientCert(0), new Uint8Array([9, 8, 7]));
  const second = new NodeHost({ blobDir: path.join(dir, "nested") });
  assert.deepEqual(second.blobs.get(BLOB.clientCert(0)), new Uint8Array([9, 8, 7]));
});

function blobContract(store: MemoryBlobStore | FileBlobStore): void {
  assert.equal(store.get(BLOB.auth), undefined);
  const value = new Uint8Array([1, 2, 3]);
  store.set(BLOB.auth, value);
  value[0] = 99;
  const got = store.get(BLOB.auth)!;
  assert.deepEqual(got, new Uint8Array([1, 2, 3]));
  got[1] = 99;
  assert.deepEqual(store.get(BLOB.auth), new Uint8Array([1, 2, 3]));
  store.set(BLOB.auth, new Uint8Array([4]));
  assert.deepEqual(store.get(BLOB.auth), new Uint8Array([4]));
  store.delete(BLOB.auth);
  store.delete(BLOB.auth);
  assert.equal(store.get(BLOB.auth), undefined);
  for (const name of Object.values(BLOB)) {
    if (typeof name === "string") store.set(name, new Uint8Array(1));
  }
  store.set(BLOB.clientKey(99), new Uint8Array(BLOB_LIMITS.valueBytes));
  for (const bad of ["", ".", "..", "../auth", "a/b", "a\\b", ".hidden", "with space", "ünïcode", "x".repeat(16)]) {
    assert.throws(() => store.set(bad, new Uint8Array(1)), RangeError, JSON.stringify(bad));
    assert.throws(() => store.get(bad), RangeError, JSON.stringify(bad));
    assert.throws(() => store.delete(bad), RangeError, JSON.stringify(bad));
  }
  assert.throws(() => store.set(BLOB.auth, new Uint8Array(BLOB_LIMITS.valueBytes + 1)), /at most 4000/);
}

test("timers take any u32 delay: one past setTimeout's 2^31 - 1 ms limit does not fire early, and clears", async () => {
  const host = new NodeHost({ log: () => {} });
  const fired: string[] = [];
  const long = host.setTimer(2 ** 32 - 1, () => fired.push("long"));
  const past = host.setTimer(2 ** 31 + 10, () => fired.push("past 2^31"));
  await new Promise<void>((resolve) => host.setTimer(30, () => resolve()));
  assert.deepEqual(fired, [], "nothing of days fired before a 30 ms timer");
  host.clearTimer(long);
  host.clearTimer(past);
});
