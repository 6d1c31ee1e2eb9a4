// The MQTT binding against mosquitto (Debian), started here with generated
// configs on free loopback ports, and mqtt.js as the independent client on
// the other side; raw TCP peers for a silent and a malformed broker.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import mqtt from "mqtt";
import { Broker, mosquittoPath } from "./support/mosquitto.js";
import { requirePeer } from "./support/peers.js";
import { testPki, opensslAvailable } from "./support/pki.js";
import { compileMqttPolicy, Rig, waitFor, type Recorder } from "./support/mqtt-rig.js";
import { patternBytes } from "./support/run-stream.js";
import { prng } from "./support/prng.js";
import { BLOB } from "../src/host.js";
import { MqttDecoder, Packet, encodePacket } from "../src/wire/mqtt/index.js";
import { outboxBlobName } from "../src/protocols/mqtt-outbox.js";

const have = mosquittoPath() !== undefined;
let broker: Broker | undefined;

before(async () => {
  if (have) broker = await Broker.start();
});
after(async () => {
  await broker?.close();
});

/** An mqtt.js client on the broker, connected. */
async function peer(port: number, o: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  const c = mqtt.connect({ host: "127.0.0.1", port, protocolVersion: 4, reconnectPeriod: 100, ...o });
  await new Promise<void>((resolve, reject) => {
    c.once("connect", () => resolve());
    c.once("error", reject);
  });
  return c;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const connected = (r: Recorder) => r.states.includes("CONNECTED");

test("publish and subscribe round trips at QoS 0, 1 and 2, 0 B to 256 KiB, on one shared connection", { timeout: 120_000 }, async (t) => {
  if (!requirePeer("mosquitto", have, t)) return;
  const port = broker!.port;
  const policy = compileMqttPolicy(port, {
    pub0: { mqtt_topic: "rt/ss/0", mqtt_qos: 0 },
    pub1: { mqtt_topic: "rt/ss/1", mqtt_qos: 1 },
    pub2: { mqtt_topic: "rt/ss/2", mqtt_qos: 2 },
    sub: { mqtt_subscribe: "rt/peer/+", mqtt_qos: 2 },
  });
  const other = await peer(port);
  const got: { topic: string; payload: Buffer }[] = [];
  other.on("message", (topic, payload) => got.push({ topic, payload }));
  await other.subscribeAsync("rt/ss/#", { qos: 2 });
  const rig = new Rig(policy, { outboxBytes: 1 << 20 });
  try {
    const sizes = [0, 1, 4096, 65536, 256 * 1024];
    const queues: Uint8Array[][] = [[], [], []];
    const pubs = [0, 1, 2].map((q) => rig.open(`pub${q}`, { send: () => queues[q]!.shift() }));
    const sub = rig.open("sub");
    for (const r of [...pubs, sub]) r.stream.connect();
    await waitFor(() => [...pubs, sub].every(connected), () => JSON.stringify([...pubs, sub].map((r) => r.states)) + rig.logs.join("|"));
    assert.equal(rig.host.connects, 1, "the four streams share one connection");
    for (const q of [0, 1, 2]) {
      for (const [i, n] of sizes.entries()) {
        queues[q]!.push(patternBytes(n, q * 100 + i + 1));
        pubs[q]!.stream.requestTx();
      }
    }
    await waitFor(() => got.length === 15 && pubs[1]!.acks === 5 && pubs[2]!.acks === 5,
      () => `peer got ${got.length}, acks ${pubs.map((p) => p.acks)}; ${rig.logs.join("|")}`);
    for (const q of [0, 1, 2]) {
      const mine = got.filter((g) => g.topic === `rt/ss/${q}`).map((g) => hex(g.payload));
      assert.deepEqual(mine, sizes.map((n, i) => hex(patternBytes(n, q * 100 + i + 1))), `QoS ${q} payloads arrive whole, in order`);
    }
    assert.equal(pubs[0]!.acks, 0, "QoS 0 has no acknowledgement");
    // the other way: the peer publishes, the SS subscriber receives
    for (const q of [0, 1, 2] as const) {
      for (const [i, n] of sizes.entries()) await other.publishAsync(`rt/peer/${q}`, Buffer.from(patternBytes(n, 1000 + q * 10 + i)), { qos: q });
    }
    await waitFor(() => sub.rx.length === 15, () => `SS got ${sub.rx.length}`);
    const expected = [0, 1, 2].flatMap((q) => sizes.map((n, i) => hex(patternBytes(n, 1000 + q * 10 + i))));
    assert.deepEqual(sub.rx.map(hex).sort(), expected.sort());
    assert.equal(rig.logs.filter((l) => /BUG/.test(l)).length, 0);
  } finally {
    rig.close();
    await other.endAsync();
  }
});

test("retained messages: the broker keeps the SS publish, and a late SS subscriber gets the peer's", { timeout: 60_000 }, async (t) => {
  if (!requirePeer("mosquitto", have, t)) return;
  const port = broker!.port;
  const policy = compileMqttPolicy(port, {
    pub: { mqtt_topic: "ret/ss", mqtt_qos: 1, mqtt_retain: true },
    sub: { mqtt_subscribe: "ret/peer", mqtt_qos: 1 },
  });
  const other = await peer(port);
  await other.publishAsync("ret/peer", "kept", { qos: 1, retain: true });
  const rig = new Rig(policy);
  try {
    let sent = false;
    const pub = rig.open("pub", { send: () => (sent ? undefined : ((sent = true), new TextEncoder().encode("ss-kept"))) });
    pub.stream.requestTx();
    await waitFor(() => pub.acks === 1, () => pub.states.join(" "));
    const sub = rig.open("sub");
    sub.stream.connect();
    await waitFor(() => sub.rx.length === 1, () => sub.states.join(" "));
    assert.equal(Buffer.from(sub.rx[0]!).toString(), "kept");
    // a new peer subscription gets the retained SS publish
    const late = await peer(port);
    const retained = new Promise<string>((r) => late.on("message", (_t, p, packet) => packet.retain && r(p.toString())));
    await late.subscribeAsync("ret/ss", { qos: 1 });
    assert.equal(await retained, "ss-kept");
    await late.endAsync();
  } finally {
    rig.close();
    await other.endAsync();
  }
});

test("a will is published when the client's link is cut; DISCONNECT when the last stream leaves sends none", { timeout: 60_000 }, async (t) => {
  if (!requirePeer("mosquitto", have, t)) return;
  // a TCP relay to the broker whose sockets the test can cut
  const sockets: net.Socket[] = [];
  const relay = net.createServer((c) => {
    const up = net.connect(broker!.port, "127.0.0.1");
    sockets.push(c, up);
    c.pipe(up).pipe(c);
    c.on("error", () => up.destroy());
    up.on("error", () => c.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
  const relayPort = (relay.address() as net.AddressInfo).port;
  const policy = compileMqttPolicy(relayPort, {
    w: { mqtt_subscribe: "will/none", mqtt_will_topic: "will/${who}", mqtt_will_message: "${who} is gone", mqtt_will_qos: 1, metadata: [{ who: "" }], mqtt_keep_alive: 30 },
  });
  const other = await peer(broker!.port);
  const wills: string[] = [];
  other.on("message", (topic, p) => wills.push(`${topic}: ${p.toString()}`));
  await other.subscribeAsync("will/#", { qos: 1 });
  const rig = new Rig(policy);
  try {
    const a = rig.open("w", { metadata: { who: "dev7" } });
    a.stream.connect();
    await waitFor(() => connected(a), () => a.states.join(" ") + rig.logs.join("|"));
    for (const s of sockets) s.destroy();
    await waitFor(() => wills.length === 1, () => `wills ${wills}`);
    assert.deepEqual(wills, ["will/dev7: dev7 is gone"]);
    await waitFor(() => a.states.filter((s) => s === "CONNECTED").length === 2, () => a.states.join(" "));
    // an orderly end: no will
    a.stream.destroy();
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(wills.length, 1);
  } finally {
    rig.close();
    relay.close();
    await other.endAsync();
  }
});

/** A raw TCP "broker": answers CONNECT with CONNACK (and SUBSCRIBE with SUBACK) when told to, then does `then`. */
async function rawBroker(then: (socket: net.Socket) => void, o: { connack?: number[] } = {}): Promise<{ port: number; close: () => void; accepted: () => number }> {
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    s.on("error", () => undefined);
    s.once("data", () => {
      s.write(Buffer.from(o.connack ?? [0x20, 2, 0, 0]));
      then(s);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close(), accepted: () => accepted };
}

test("keep-alive: a broker that goes silent after CONNACK is detected and the link closed with a reason", { timeout: 60_000 }, async () => {
  const silent = await rawBroker(() => undefined);
  const policy = compileMqttPolicy(silent.port, { k: { mqtt_topic: "x", mqtt_keep_alive: 1 } });
  const rig = new Rig(policy);
  try {
    const k = rig.open("k");
    k.stream.connect();
    await waitFor(() => k.states.includes("DISCONNECTED"), () => k.states.join(" ") + rig.logs.join("|"));
    assert.ok(rig.logs.some((l) => /silent: no PINGRESP/.test(l)), rig.logs.join("\n"));
  } finally {
    rig.close();
    silent.close();
  }
});

test("CONNACK not authorized is AUTH_FAILED, once: the broker is not hammered", { timeout: 60_000 }, async () => {
  const refusing = await rawBroker((s) => s.end(), { connack: [0x20, 2, 0, 5] });
  const policy = compileMqttPolicy(refusing.port, { a: { mqtt_subscribe: "x/#", nailed_up: true } });
  const rig = new Rig(policy);
  try {
    const a = rig.open("a");
    await waitFor(() => a.states.includes("AUTH_FAILED"), () => a.states.join(" ") + rig.logs.join("|"));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(refusing.accepted(), 1);
    assert.ok(rig.logs.some((l) => /not authorized/.test(l)), rig.logs.join("\n"));
  } finally {
    rig.close();
    refusing.close();
  }
});

test("malformed broker packets (fuzzed byte streams) close the link with a reason, never an uncaught exception", { timeout: 120_000 }, async () => {
  const rnd = prng(0x6d717474);
  const valid = [[0x30, 5, 0, 1, 0x78, 0x68, 0x69], [0x40, 2, 0, 1], [0x90, 3, 0, 1, 0], [0xd0, 0], [0x32, 6, 0, 1, 0x78, 0, 9, 0x41]];
  for (let round = 0; round < 12; round++) {
    let bytes: number[] = [];
    for (let k = 0; k < 1 + (rnd() % 5); k++) bytes.push(...valid[rnd() % valid.length]!);
    for (let e = 0; e < 1 + (rnd() % 3); e++) bytes[rnd() % bytes.length] = rnd() & 255;
    if (round % 4 === 0) bytes = Array.from({ length: 1 + (rnd() % 40) }, () => rnd() & 255);
    const fuzzing = await rawBroker((s) => s.write(Buffer.from(bytes)));
    const policy = compileMqttPolicy(fuzzing.port, { f: { mqtt_subscribe: "x/#", mqtt_qos: 1, retry: "quick" } });
    const rig = new Rig(policy, {}, {}, 1000);
    try {
      const f = rig.open("f");
      f.stream.connect();
      // whatever the bytes, the link ends (bad packet, or no SUBACK/PINGRESP in time) or stands with a good SUBACK
      await waitFor(() => f.states.some((s) => s === "DISCONNECTED" || s === "UNREACHABLE" || s === "ALL_RETRIES_FAILED" || s === "AUTH_FAILED") ||
        (connected(f) && rig.logs.length === 0), () => `${Buffer.from(bytes).toString("hex")}: ${f.states.join(" ")} ${rig.logs.join("|")}`, 30_000);
      assert.ok(!rig.logs.some((l) => /BUG|internal error/.test(l)), rig.logs.join("\n"));
      const ended = f.states.some((s) => s === "DISCONNECTED" || s === "UNREACHABLE");
      if (ended) assert.ok(rig.logs.length > 0 && rig.logs.every((l) => l.length > 10), `a reason is logged: ${rig.logs.join("|")}`);
    } finally {
      rig.close();
      fuzzing.close();
    }
  }
});

/** A client certificate signed by a CA the broker does not trust: [cert DER, PKCS#8 key DER]. */
function foreignClient(dir: string, ca: { certFile: string; keyFile: string }): [Uint8Array, Uint8Array] {
  const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const key = path.join(dir, "foreign-client.key");
  const csr = path.join(dir, "foreign-client.csr");
  const crt = path.join(dir, "foreign-client.crt");
  run(["genrsa", "-out", key, "2048"]);
  run(["req", "-new", "-key", key, "-subj", "/CN=foreign client", "-out", csr]);
  run(["x509", "-req", "-in", csr, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-CAcreateserial", "-days", "30", "-out", crt]);
  const certDer = run(["x509", "-in", crt, "-outform", "DER"]);
  const keyDer = run(["pkcs8", "-topk8", "-nocrypt", "-in", key, "-outform", "DER"]);
  return [new Uint8Array(certDer), new Uint8Array(keyDer)];
}

test("TLS with require_certificate: the blob-stored client cert connects, a wrong one is AUTH_FAILED, an untrusted broker is refused", { timeout: 90_000 }, async (t) => {
  if (!requirePeer("mosquitto", have, t) || !requirePeer("openssl", opensslAvailable(), t)) return;
  const pki = testPki();
  const tlsBroker = await Broker.start({ tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, caFile: pki.ca.certFile, requireCertificate: true } });
  const untrusted = await Broker.start({ tls: { certFile: pki.otherServer.certFile, keyFile: pki.otherServer.keyFile, caFile: pki.ca.certFile, requireCertificate: true } });
  const certs = [{ test_ca: Buffer.from(pki.ca.certDer).toString("base64") }];
  const trust_stores = [{ name: "test_trust", stack: ["test_ca"] }];
  const st = { endpoint: "localhost", tls: true, tls_trust_store: "test_trust", client_cert: 0, mqtt_subscribe: "tls/#", mqtt_qos: 1 };
  const good = { [BLOB.clientCert(0)]: pki.client.certDer, [BLOB.clientKey(0)]: pki.client.keyDer };
  try {
    {
      const rig = new Rig(compileMqttPolicy(tlsBroker.port, { s: st }, { certs, trust_stores }), {}, good);
      const s = rig.open("s");
      s.stream.connect();
      await waitFor(() => connected(s), () => s.states.join(" ") + rig.logs.join("|"));
      rig.close();
    }
    {
      const [cert, key] = foreignClient(pki.dir, pki.otherCa);
      const rig = new Rig(compileMqttPolicy(tlsBroker.port, { s: st }, { certs, trust_stores }), {}, { [BLOB.clientCert(0)]: cert, [BLOB.clientKey(0)]: key });
      const s = rig.open("s");
      s.stream.connect();
      await waitFor(() => s.states.includes("AUTH_FAILED"), () => s.states.join(" ") + rig.logs.join("|"));
      assert.ok(!connected(s));
      rig.close();
    }
    {
      const rig = new Rig(compileMqttPolicy(untrusted.port, { s: { ...st, retry: undefined } }, { certs, trust_stores }), {}, good);
      const s = rig.open("s");
      s.stream.connect();
      await waitFor(() => s.states.includes("UNREACHABLE"), () => s.states.join(" ") + rig.logs.join("|"));
      assert.ok(!connected(s));
      assert.ok(rig.logs.some((l) => /tls-untrusted/.test(l)), rig.logs.join("\n"));
      rig.close();
    }
  } finally {
    await tlsBroker.close();
    await untrusted.close();
  }
});

test("broker restart with persistence during 10,000 QoS 1 publishes: every one acked, every one delivered at least once", { timeout: 180_000 }, async (t) => {
  if (!requirePeer("mosquitto", have, t)) return;
  const b = await Broker.start({ persistence: true });
  const N = 10_000;
  const policy = compileMqttPolicy(b.port, { p: { mqtt_topic: "many/ss", mqtt_qos: 1, mqtt_clean_start: false, mqtt_keep_alive: 5 } });
  // a subscriber whose session the broker keeps across the restart
  const other = await peer(b.port, { clientId: "restart-sub", clean: false });
  const seen = new Set<number>();
  let deliveries = 0;
  other.on("message", (_t, p) => {
    deliveries++;
    seen.add(p.readUInt32BE(0));
  });
  await other.subscribeAsync("many/ss", { qos: 1 });
  const rig = new Rig(policy, {}, { [BLOB.mqttClientId]: new TextEncoder().encode("restart-pub") });
  let next = 0;
  let restarted = false;
  try {
    const p = rig.open("p", {
      send: () => {
        if (next >= N) return undefined;
        const m = new Uint8Array(64);
        new DataView(m.buffer).setUint32(0, next++);
        return m;
      },
      onState: (state, r) => {
        // keep asking: one requestTx() per message, again after each reconnect
        if (state === 5 /* CONNECTED */ && next < N) for (let i = 0; i < 64; i++) r.stream.requestTx();
        if (state === 10 /* QOS_ACK_REMOTE */ && next < N) r.stream.requestTx();
      },
    });
    p.stream.connect();
    await waitFor(() => p.acks >= 3000, () => `acks ${p.acks} ${p.states.slice(-5).join(" ")} ${rig.logs.join("|")}`, 60_000);
    await b.stop();
    restarted = true;
    await new Promise((r) => setTimeout(r, 300));
    await b.run();
    await waitFor(() => p.acks >= N, () => `acks ${p.acks}, sent ${next}, ${p.states.slice(-8).join(" ")} ${rig.logs.slice(-5).join("|")}`, 120_000);
    await waitFor(() => seen.size === N, () => `subscriber has ${seen.size} of ${N}`, 60_000);
    assert.equal(p.acks, N, "each publish acknowledged exactly once");
    assert.equal(p.nacks, 0);
    assert.ok(p.states.includes("DISCONNECTED"), "the restart was seen");
    t.diagnostic(`restart: ${deliveries} deliveries for ${N} messages, ${rig.host.connects} connections`);
  } finally {
    rig.close();
    await other.endAsync(true);
    if (restarted) await b.close();
    else await b.close();
  }
});

test("outbox: unacknowledged publishes go again with DUP, then QOS_NACK_REMOTE; a full outbox takes no more, an oversized publish is QOS_NACK_LOCAL", { timeout: 60_000 }, async () => {
  // a broker that accepts everything and acknowledges nothing; it records the PUBLISHes
  const publishes: { dup: boolean; id: number; bytes: number }[] = [];
  const server = net.createServer((s) => {
    s.on("error", () => undefined);
    const d = new MqttDecoder({
      maxPacketBytes: 1 << 20,
      onPacket: (p) => {
        if (p.type === Packet.CONNECT) s.write(Buffer.from([0x20, 2, 0, 0]));
        if (p.type === Packet.PUBLISH) publishes.push({ dup: p.dup, id: p.packetId ?? 0, bytes: p.payload.length });
      },
    });
    s.on("data", (b) => d.push(new Uint8Array(b)));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const rig = new Rig(compileMqttPolicy(port, { p: { mqtt_topic: "o/p", mqtt_qos: 1, mqtt_keep_alive: 0, mqtt_outbox_bytes: 1000 } }), { ackTimeoutMs: 300 });
  const queue = [400, 400, 400, 400].map((n) => new Uint8Array(n));
  try {
    const p = rig.open("p", { send: () => queue.shift() });
    p.stream.connect();
    await waitFor(() => connected(p), () => p.states.join(" "));
    for (let i = 0; i < 4; i++) p.stream.requestTx();
    // three fit (1200 bytes reach the 1000-byte cap); the fourth waits
    await waitFor(() => p.nacks === 3, () => `${p.states.join(" ")} ${JSON.stringify(publishes)}`, 30_000);
    await waitFor(() => publishes.filter((x) => !x.dup).length === 4, () => JSON.stringify(publishes));
    const first = publishes.filter((x) => !x.dup);
    assert.equal(publishes.filter((x) => x.dup).length, 9, "the fourth went out only once the first three were given up");
    for (const id of first.slice(0, 3).map((x) => x.id)) {
      assert.equal(publishes.filter((x) => x.id === id && x.dup).length, 3, `publish ${id} resent 3 times with DUP`);
    }
    // a publish bigger than the whole outbox is refused at once
    queue.push(new Uint8Array(1500));
    p.stream.requestTx();
    await waitFor(() => p.states.includes("QOS_NACK_LOCAL"), () => p.states.join(" "));
    assert.ok(rig.logs.some((l) => /cannot fit the 1000-byte outbox/.test(l)), rig.logs.join("\n"));
  } finally {
    rig.close();
    server.close();
  }
});

test("streams come and go on a shared connection: one leaves (UNSUBSCRIBE), the other goes on receiving on the same connection", { timeout: 60_000 }, async (t) => {
  if (!requirePeer("mosquitto", have, t)) return;
  const port = broker!.port;
  const policy = compileMqttPolicy(port, {
    a: { mqtt_subscribe: "cg/a", mqtt_qos: 1 },
    b: { mqtt_subscribe: "cg/${room}/+", mqtt_qos: 1, metadata: [{ room: "" }] },
  });
  const rig = new Rig(policy);
  const other = await peer(port);
  try {
    const a = rig.open("a");
    const b = rig.open("b", { metadata: { room: "kitchen" } });
    a.stream.connect();
    b.stream.connect();
    await waitFor(() => connected(a) && connected(b), () => `${a.states} ${b.states}`);
    await other.publishAsync("cg/kitchen/t", "21", { qos: 1 });
    await waitFor(() => b.rx.length === 1, () => `b got ${b.rx.length}`);
    b.stream.destroy();
    await other.publishAsync("cg/kitchen/t", "22", { qos: 1 });
    await other.publishAsync("cg/a", "for a", { qos: 1 });
    await waitFor(() => a.rx.length === 1, () => `a got ${a.rx.length}`);
    assert.equal(Buffer.from(a.rx[0]!).toString(), "for a");
    assert.equal(rig.host.connects, 1);
    a.stream.destroy();
  } finally {
    rig.close();
    await other.endAsync();
  }
});

test("outbox in blob storage: QoS 1 publishes unacknowledged at a reboot go out after it, and are acknowledged then", { timeout: 60_000 }, async (t) => {
  if (!requirePeer("mosquitto", have, t)) return;
  // a relay to the broker that, while `deaf`, passes the CONNACK and nothing more back: the PUBACKs are lost
  let deaf = true;
  const sockets: net.Socket[] = [];
  const relay = net.createServer((c) => {
    const up = net.connect(broker!.port, "127.0.0.1");
    sockets.push(c, up);
    let back = 0;
    c.pipe(up);
    up.on("data", (d: Buffer) => {
      if (!deaf) return void c.write(d);
      const pass = d.subarray(0, Math.max(0, 4 - back));
      back += d.length;
      if (pass.length) c.write(pass);
    });
    c.on("error", () => up.destroy());
    up.on("error", () => c.destroy());
    c.on("close", () => up.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, "127.0.0.1", r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    relay.close();
  });
  const port = (relay.address() as net.AddressInfo).port;
  const policy = compileMqttPolicy(port, { p: { mqtt_topic: "persist/ss", mqtt_qos: 1, mqtt_keep_alive: 0 } });
  const other = await peer(broker!.port);
  const got: string[] = [];
  other.on("message", (_t, p) => got.push(p.toString()));
  t.after(() => other.endAsync());
  await other.subscribeAsync("persist/ss", { qos: 1 });
  const first = new Rig(policy, { persistBytes: 4000, ackTimeoutMs: 60_000 });
  const queue = ["one", "two", "three"].map((s) => new TextEncoder().encode(s));
  // the broker key of a plain connection to 127.0.0.1:port without trust store or client cert
  const blobName = outboxBlobName(`tcp|127.0.0.1|${port}||`);
  let stored: Uint8Array | undefined;
  try {
    const p = first.open("p", { send: () => queue.shift() });
    p.stream.connect();
    await waitFor(() => connected(p), () => p.states.join(" "));
    for (let i = 0; i < 3; i++) p.stream.requestTx();
    await waitFor(() => got.length === 3, () => `peer got ${got}`);
    assert.equal(p.acks, 0, "no PUBACK came through");
    // the "reboot": everything of the first run goes, but its blob storage
    stored = first.host.blobs.get(blobName);
  } finally {
    first.close();
    for (const s of sockets) s.destroy();
  }
  assert.ok(stored, `the outbox is in blob ${blobName}`);
  deaf = false;
  const second = new Rig(policy, { persistBytes: 4000 }, { [blobName]: stored });
  try {
    const p = second.open("p");
    p.stream.connect();
    await waitFor(() => p.acks === 3, () => `${p.states.join(" ")} ${second.logs.join("|")}`);
    await waitFor(() => got.length === 6, () => `peer got ${got}`);
    assert.deepEqual(got.slice(3), ["one", "two", "three"], "sent again after the reboot, in order");
    assert.ok(second.logs.some((l) => /3 unacknowledged publishes read back/.test(l)), second.logs.join("\n"));
    assert.equal(second.host.blobs.get(blobName), undefined, "an empty outbox leaves no blob");
  } finally {
    second.close();
  }
});

test("a scripted broker sees UNSUBSCRIBE when a stream leaves and DISCONNECT after the last; an inbound QoS 2 DUP is delivered once", { timeout: 60_000 }, async () => {
  const seen: string[] = [];
  let client: net.Socket | undefined;
  const server = net.createServer((s) => {
    client = s;
    s.on("error", () => undefined);
    const d = new MqttDecoder({
      maxPacketBytes: 1 << 16,
      onPacket: (p) => {
        if (p.type === Packet.CONNECT) return void s.write(encodePacket({ type: Packet.CONNACK, sessionPresent: false, returnCode: 0 }));
        if (p.type === Packet.SUBSCRIBE) {
          seen.push(`SUBSCRIBE ${p.subscriptions[0]!.filter}`);
          return void s.write(encodePacket({ type: Packet.SUBACK, packetId: p.packetId, returnCodes: [2] }));
        }
        if (p.type === Packet.UNSUBSCRIBE) seen.push(`UNSUBSCRIBE ${p.filters.join()}`);
        else if (p.type === Packet.PUBREC || p.type === Packet.PUBCOMP) seen.push(`${p.type === Packet.PUBREC ? "PUBREC" : "PUBCOMP"} ${p.packetId}`);
        else if (p.type === Packet.DISCONNECT) seen.push("DISCONNECT");
      },
    });
    s.on("data", (b) => d.push(new Uint8Array(b)));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const rig = new Rig(compileMqttPolicy(port, { a: { mqtt_subscribe: "s/a", mqtt_qos: 2 }, b: { mqtt_subscribe: "s/b", mqtt_qos: 2 } }));
  try {
    const a = rig.open("a");
    const b = rig.open("b");
    a.stream.connect();
    b.stream.connect();
    await waitFor(() => connected(a) && connected(b), () => `${a.states} ${b.states} ${seen}`);
    const publish = (dup: boolean) => encodePacket({ type: Packet.PUBLISH, topic: "s/a", payload: new TextEncoder().encode("q2"), qos: 2, retain: false, dup, packetId: 7 });
    client!.write(publish(false));
    client!.write(publish(true));
    await waitFor(() => seen.filter((x) => x === "PUBREC 7").length === 2, () => `${seen}`);
    client!.write(encodePacket({ type: Packet.PUBREL, packetId: 7 }));
    await waitFor(() => seen.includes("PUBCOMP 7"), () => `${seen}`);
    assert.equal(a.rx.length, 1, "delivered once");
    assert.equal(b.rx.length, 0);
    a.stream.destroy();
    await waitFor(() => seen.includes("UNSUBSCRIBE s/a"), () => `${seen}`);
    assert.ok(!seen.includes("DISCONNECT"), "b still uses the connection");
    b.stream.destroy();
    await waitFor(() => seen.includes("DISCONNECT"), () => `${seen}`);
    assert.deepEqual(seen.slice(-2), ["UNSUBSCRIBE s/b", "DISCONNECT"]);
    assert.equal(rig.host.connects, 1);
  } finally {
    rig.close();
    server.close();
  }
});

test("birth: one message per connection after the first SUBACK; CONNECTED only after its PUBACK", { timeout: 60_000 }, async (t) => {
  if (!requirePeer("mosquitto", have, t)) return;
  const port = broker!.port;
  const birth = { mqtt_birth_topic: "birth/${dev}", mqtt_birth_message: "${dev} is up", mqtt_birth_qos: 1, metadata: [{ dev: "" }] };
  const policy = compileMqttPolicy(port, { a: { mqtt_subscribe: "birth/a", mqtt_qos: 1, ...birth }, b: { mqtt_subscribe: "birth/b", mqtt_qos: 1, ...birth } });
  const other = await peer(port);
  const births: string[] = [];
  other.on("message", (topic, p) => births.push(`${topic}: ${p.toString()}`));
  await other.subscribeAsync("birth/+", { qos: 1 });
  const rig = new Rig(policy);
  try {
    const a = rig.open("a", { metadata: { dev: "d1" } });
    a.stream.connect();
    await waitFor(() => connected(a), () => a.states.join(" "));
    const b = rig.open("b", { metadata: { dev: "d1" } });
    b.stream.connect();
    await waitFor(() => connected(b), () => b.states.join(" "));
    await waitFor(() => births.length >= 1, () => `${births}`);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(births, ["birth/d1: d1 is up"], "one birth for the shared connection");
    assert.equal(a.acks, 0, "the birth's PUBACK is CONNECTED, not QOS_ACK_REMOTE");
  } finally {
    rig.close();
    await other.endAsync();
  }
});
