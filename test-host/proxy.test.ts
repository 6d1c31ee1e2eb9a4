// ss-proxy and SSPC on loopback: the h1 scenarios unchanged through the proxy
// (Unix socket and TCP), lws' own captured sessions against our proxy and our
// client, many streams at once with the proxy's memory measured, a proxy
// killed and restarted mid-stream, slow clients, and hostile frames.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { NodeHost } from "../hosts/node/host.js";
import { SsProxy } from "../hosts/node/proxy.js";
import { loadPolicy } from "../hosts/node/sim.js";
import { Ret, RxFlag, State, stateName } from "../src/ss/states.js";
import { SspcContext } from "../src/sspc/client.js";
import {
  ClientBoundDecoder, encodeMetadata, encodeOnwardConnect, encodeStreamtype, encodeTx, encodeTxCredit, type ClientBound,
} from "../src/wire/sss/index.js";
import { repoRoot } from "./support/corpus.js";
import { parseFixtures } from "./support/sss-cases.js";
import { prng } from "./support/prng.js";
import {
  bodyOf, proxyAt, sha, sspc, sspcDownload, startBodyServer, startProxyChild, writeProxyPolicy,
} from "./support/proxy-rig.js";

const tmp = mkdtempSync(path.join(tmpdir(), "ss-proxy-test-"));
const policyFile = path.join(tmp, "policy.json");
const fixtures = parseFixtures(readFileSync(path.join(repoRoot, "test-host/fixtures/sss-lws.txt"), "utf8"));
let body: Awaited<ReturnType<typeof startBodyServer>>;

before(async () => {
  body = await startBodyServer();
  writeProxyPolicy(policyFile, body.port, {
    s: [{ mintest: { endpoint: "127.0.0.1", port: body.port, protocol: "h1", http_url: "bytes/987",
      metadata: [{ ctype: "content-type:" }, { uptag: "x-upload-tag:" }, { srv: "x-served:" }] } }],
  });
});
after(async () => {
  await body.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** An in-process proxy on a fresh Unix socket, logging into `logs`. */
async function inProcessProxy(logs: string[] = [], options: Partial<ConstructorParameters<typeof SsProxy>[0]> = {}) {
  const policy = loadPolicy(policyFile, (l) => logs.push(l))!;
  const proxy = new SsProxy({ policy, host: new NodeHost({ log: (m) => logs.push(m) }), ...options });
  const where = await proxy.listen({ path: path.join(mkdtempSync(path.join(tmp, "p-")), "proxy.sock") });
  return { proxy, where, logs };
}

/** A raw client socket: write frames, read what the proxy answers. */
function rawClient(where: string) {
  const socket = net.connect({ path: where });
  const frames: ClientBound[] = [];
  const decoder = new ClientBoundDecoder();
  let closed = false;
  socket.on("data", (d) => decoder.push(new Uint8Array(d), (m) => void frames.push(m)));
  const ended = new Promise<void>((r) => socket.on("close", () => { closed = true; r(); }));
  socket.on("error", () => undefined);
  return { socket, frames, ended, get closed() { return closed; } };
}

const until = async (f: () => boolean, ms = 20000) => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
};

// ---- the scenario suites, unchanged, through the proxy ----

for (const via of ["unix", "tcp"] as const) {
  test(`the h1 and h2 scenario suites pass unchanged with the app on SSPC through ss-proxy (${via})`, async () => {
    const files = ["h1-testsfail.test.js", "h1-hostile.test.js", "h2-testsfail.test.js", "h2-peers.test.js", "h2-nghttpd.test.js"]
      .map((f) => path.join(repoRoot, "dist/test-host", f));
    // without NODE_TEST_CONTEXT the child reports as a runner of its own, in TAP on stdout
    const env: NodeJS.ProcessEnv = { ...process.env, SS_VIA_PROXY: via };
    delete env.NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, ["--test", "--test-reporter=tap", "--test-name-pattern=^(?!.*\\(XS\\)$)", ...files], {
      env, stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.resume();
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    const failed = out.split("\n").filter((l) => l.startsWith("not ok"));
    assert.equal(code, 0, `failed through the proxy:\n${failed.join("\n")}`);
    assert.match(out, /# pass [1-9]\d+/);
    assert.match(out, /# fail 0/);
  });
}

// ---- lws' captured sessions ----

test("lws' client bytes (the captured GET session) against our proxy: the create result is lws' byte for byte, the session completes", async () => {
  const { where, proxy } = await inProcessProxy();
  after(() => proxy.close());
  const c = rawClient(where);
  c.socket.write(fixtures.get("get-c2p-stream")!.bytes);
  await until(() => c.frames.some((f) => f.type === "state" && f.state === State.QOS_ACK_REMOTE));
  c.socket.destroy();
  const [first, second] = c.frames;
  // lws' proxy answered ",mintest" with client_buflen 0, then CREATING: so do we
  assert.deepEqual(first, { type: "create-result", result: 0, clientBuflen: 0, rideshares: ["mintest"] });
  assert.deepEqual(second, { type: "state", state: State.CREATING, ack: 0 });
  const states = c.frames.filter((f) => f.type === "state").map((f) => stateName((f as { state: number }).state));
  assert.deepEqual(states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"]);
  const rx = c.frames.filter((f): f is Extract<ClientBound, { type: "rx" }> => f.type === "rx");
  assert.equal(rx[0]!.flags & RxFlag.SOM, RxFlag.SOM);
  assert.equal(rx[rx.length - 1]!.flags & RxFlag.EOM, RxFlag.EOM);
  assert.equal(sha(Buffer.concat(rx.map((f) => f.payload))), sha(bodyOf(987)));
  // response-header metadata goes before the payload, as lws sends it
  const meta = c.frames.findIndex((f) => f.type === "metadata" && f.name === "srv");
  assert.ok(meta >= 0 && meta < c.frames.indexOf(rx[0]!), "srv metadata before the payload");
});

test("lws' proxy bytes (the captured GET session) against our client: states, payload and metadata as the app expects", async () => {
  // the capture elides the 987-byte payload: same header, our bytes
  const f = (id: string) => fixtures.get(id)!.bytes;
  const payload = new Uint8Array(987).fill(0x41);
  const som = new Uint8Array(19 + 987);
  som.set([0x55, 0x03, 0xeb, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xde, 0x6c, 0xb3, 0xd8]);
  som.set(payload, 19);
  const seen: number[] = [];
  const server = net.createServer((s) => {
    let stage = 0;
    s.on("data", (d) => {
      seen.push(...d);
      if (stage === 0 && seen[0] === 0xaa) {
        stage = 1;
        s.write(Buffer.concat([f("get-create-result"), f("get-creating")]));
      }
      if (stage === 1 && seen.includes(0xab)) {
        stage = 2;
        s.write(f("get-connecting"));
        s.write(Buffer.concat([f("get-meta-test"), f("get-connected"), som, f("get-rx-eom"), f("get-ack"), f("get-meta-srv"), f("get-disconnected")]));
      }
    });
  });
  const sock = path.join(tmp, "lws-proxy.sock");
  await new Promise<void>((r) => server.listen(sock, r));
  const states: string[] = [];
  let rx = 0;
  const flags: number[] = [];
  const ctx = new SspcContext(new NodeHost({ log: () => undefined }), { proxy: proxyAt(sock) });
  let meta: (string | undefined)[] = [];
  await new Promise<void>((resolve) => {
    const s = ctx.create("mintest", {
      onState: (state, _ack, stream) => {
        states.push(stateName(state));
        if (state === State.DISCONNECTED) {
          meta = [stream.getMetadata("test"), stream.getMetadata("srv")];
          setImmediate(() => stream.destroy());
          resolve();
        }
        return Ret.OK;
      },
      onRx: (p, fl) => { rx += p.length; flags.push(fl); return Ret.OK; },
    });
    s.setMetadata("ctype", "myctype");
    s.requestTx();
  });
  await new Promise<void>((r) => server.close(() => r()));
  assert.deepEqual(states, ["CREATING", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE", "DISCONNECTED", "DESTROYING"]);
  assert.equal(rx, 987);
  assert.deepEqual(flags, [RxFlag.SOM, RxFlag.EOM]);
  assert.deepEqual(meta, ["hello", "node-local"]);
  // what we sent: STREAMTYPE (version 1, "mintest"), our metadata, then ONWARD_CONNECT, as lws' client does
  assert.deepEqual(seen.slice(0, 4), [0xaa, 0x00, 0x10, 0x01]);
  assert.equal(Buffer.from(seen.slice(12, 19)).toString(), "mintest");
  assert.deepEqual(seen.slice(19, 35), Array.from(fixtures.get("get-meta-ctype")!.bytes));
  assert.deepEqual(seen.slice(35, 38), [0xab, 0, 0]);
});

// ---- refusals and hostile clients ----

test("a client naming a streamtype the policy lacks gets a failed create result, and the link closes", async () => {
  const { where, logs, proxy } = await inProcessProxy();
  const c = rawClient(where);
  c.socket.write(encodeStreamtype("no_such_type"));
  await c.ended;
  await proxy.close();
  assert.deepEqual(c.frames, [{ type: "create-result", result: 1, clientBuflen: 0, rideshares: [] }]);
  assert.ok(logs.some((l) => l.includes('streamtype "no_such_type" refused')), logs.join("\n"));
});

test("the Unix socket is created owner-only", async () => {
  const { where, proxy } = await inProcessProxy();
  assert.equal(statSync(where).mode & 0o777, 0o600);
  await proxy.close();
});

test("hostile frames close only their own link, with a logged reason; a stream alongside completes intact", async () => {
  const { where, logs, proxy } = await inProcessProxy();
  const good = sspcDownload(sspc(proxyAt(where)), "slow", 1 << 20);
  const next = prng(0xf00d);
  const bad: ReturnType<typeof rawClient>[] = [];
  for (let i = 0; i < 60; i++) {
    const c = rawClient(where);
    bad.push(c);
    const kind = i % 4;
    if (kind === 0) c.socket.write(Uint8Array.from({ length: 200 }, () => next() & 0xff)); // noise
    else if (kind === 1) c.socket.write(Buffer.concat([encodeStreamtype("get"), Uint8Array.of(0xb3, 0, 0)])); // a reserved type
    else if (kind === 2) c.socket.write(Buffer.concat([encodeOnwardConnect()])); // before STREAMTYPE
    else {
      // a valid start, then a frame cut and mangled at a random byte
      const frame = encodeTx(new Uint8Array(100), 3);
      frame[3 + (next() % 4)] ^= 0xff;
      frame[1] = 0; frame[2] = 5;
      c.socket.write(Buffer.concat([encodeStreamtype("get"), frame]));
    }
  }
  await Promise.all(bad.map((c) => c.ended));
  const d = await good;
  assert.equal(d.sha, sha(bodyOf(1 << 20)));
  assert.ok(logs.filter((l) => / closed: /.test(l)).length >= 45, logs.join("\n"));
  assert.ok(logs.some((l) => l.includes("bad frame from the client")));
  // and the proxy still serves
  const again = await sspcDownload(sspc(proxyAt(where)), "get", 1000);
  assert.equal(again.sha, sha(bodyOf(1000)));
  await proxy.close();
});

test("a client that stops reading does not make the proxy buffer: onward reads pause (lws' credit of 500000000, socket backpressure)", async () => {
  const { where, proxy } = await inProcessProxy();
  const c = rawClient(where);
  c.socket.write(Buffer.concat([encodeStreamtype("slow"), encodeMetadata(true, "n", "20000000"), encodeOnwardConnect()]));
  await until(() => c.frames.some((f) => f.type === "rx"));
  c.socket.pause();
  let peak = 0;
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const s = proxy.stats();
    peak = Math.max(peak, s.rxHeld + s.socketBuffered + s.txQueued);
  }
  // the server offers 20 MB at 1.6 MB/s: 3 MB could have come in these 2 s
  assert.ok(peak < 512 * 1024, `the proxy held ${peak} bytes for a client that does not read`);
  c.socket.destroy();
  await proxy.close();
});

test("a client that grants no more credit gets no more than it granted: the rest waits, bounded, at the proxy", async () => {
  const { where, proxy } = await inProcessProxy();
  const c = rawClient(where);
  c.socket.write(Buffer.concat([encodeStreamtype("slow", 100000), encodeMetadata(true, "n", "4000000"), encodeOnwardConnect()]));
  const received = () => c.frames.filter((f) => f.type === "rx").reduce((a, f) => a + (f as { payload: Uint8Array }).payload.length, 0);
  await new Promise((r) => setTimeout(r, 1500));
  const got = received();
  assert.ok(got > 0 && got <= 100000, `sent ${got} bytes on a credit of 100000`);
  assert.ok(proxy.stats().rxHeld < 256 * 1024, `held ${proxy.stats().rxHeld}`);
  // more credit (the client's TXCR_UPDATE), more payload, and still no more than granted
  c.socket.write(encodeTxCredit(200000));
  await until(() => received() > got);
  await new Promise((r) => setTimeout(r, 500));
  assert.ok(received() <= 300000, `sent ${received()} bytes on a credit of 300000`);
  c.socket.destroy();
  await proxy.close();
});

// ---- many streams; a proxy that dies ----

test("200 concurrent SSPC streams × 1 MB through one ss-proxy: all intact; the proxy's memory stays bounded", async () => {
  const p = await startProxyChild(policyFile, ["--unix", path.join(tmp, "many.sock")]);
  try {
    const ctx = sspc(proxyAt(p.addresses[0]!));
    const n = 200;
    const results = await Promise.all(Array.from({ length: n }, () => sspcDownload(ctx, "get", 1 << 20, 240000)));
    for (const r of results) assert.equal(r.sha, sha(bodyOf(1 << 20)));
    assert.ok(results.every((r) => r.served === "body-server"), "response-header metadata reaches the client");
    const peak = p.peakRssKiB();
    process.stderr.write(`proxy: ${n} streams x 1 MiB, proxy peak RSS ${(peak / 1024).toFixed(1)} MiB\n`);
    // 200 MB went through: a proxy that buffered would hold a good part of it
    // (idle, with a JSON policy and so the compiler loaded, ss-proxy is about 67 MiB)
    assert.ok(peak < 192 * 1024, `proxy peak RSS ${peak} KiB`);
  } finally {
    await p.stop();
  }
});

test("lent reads (SSPC lendRx, and the proxy's h1 connections): 8 concurrent downloads of 8 MiB and one of 1 byte arrive intact", async () => {
  const { where, proxy } = await inProcessProxy();
  // the app hashes each piece during onRx (lendRx's promise): a piece overwritten by a later read would change the hash
  const ctx = sspc(proxyAt(where), { lendRx: true });
  const sizes = [...Array.from({ length: 8 }, () => 8 << 20), 1];
  const results = await Promise.all(sizes.map((n) => sspcDownload(ctx, "get", n)));
  results.forEach((r, i) => {
    assert.equal(r.sha, sha(bodyOf(sizes[i]!)), `download ${i}`);
    assert.ok(r.states.includes("QOS_ACK_REMOTE"), r.states.join(" "));
  });
  await proxy.close();
});

test("killing the proxy mid-stream: the app sees DISCONNECTED, the client retries, and the transaction completes when the proxy is back", async () => {
  const sock = path.join(tmp, "restart.sock");
  let p = await startProxyChild(policyFile, ["--unix", sock]);
  const ctx = sspc(proxyAt(sock), { backoffMs: [50, 100, 200] });
  const size = 1 << 20;
  let killed = false;
  const done = sspcDownload(ctx, "slow", size, 60000, (_s, d) => {
    const check = setInterval(async () => {
      if (d.bytes > 200000 && !killed) {
        killed = true;
        clearInterval(check);
        await p.stop("SIGKILL");
        await until(() => d.states.includes("UPSTREAM_LINK_RETRY"));
        p = await startProxyChild(policyFile, ["--unix", sock]);
      }
    }, 5);
  });
  const d = await done;
  await p.stop();
  assert.ok(killed);
  const lost = d.states.indexOf("DISCONNECTED");
  assert.ok(lost > 0 && d.states[lost - 1] === "CONNECTED", d.states.join(" "));
  assert.equal(d.states[lost + 1], "UPSTREAM_LINK_RETRY");
  assert.ok(d.states.indexOf("QOS_ACK_REMOTE") > lost, d.states.join(" "));
  assert.equal(d.sha, sha(bodyOf(size)), "the message after the loss is whole");
});
