// h2, ws and MQTT streams with the app on SSPC through ss-proxy (Unix socket
// and TCP), each beside the same stream in-process: the same states, the
// payload intact. h2 moves 1 MiB each way (lws' own proxy fails that); ws
// echoes messages from 0 B to 1 MiB with SOM/EOM; MQTT subscribes and
// publishes at QoS 1 against mosquitto, QOS_ACK_REMOTE relayed.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import mqtt from "mqtt";
import { NodeHost } from "../hosts/node/host.js";
import { createH1Binding } from "../src/protocols/h1.js";
import { createH2Binding } from "../src/protocols/h2.js";
import { createMqttBinding } from "../src/protocols/mqtt.js";
import { ws } from "../src/protocols/ws.js";
import type { Policy } from "../src/policy/reader.js";
import { SecureStreams } from "../src/ss/context.js";
import { Ret, RxFlag, State, stateName } from "../src/ss/states.js";
import type { StreamApi, StreamHandlers } from "../src/ss/stream.js";
import { base64Encode } from "../src/util/base64.js";
import { startH2Servers, h2TestPolicy, type H2Servers } from "./support/h2-servers.js";
import { bulkBody } from "./support/h1-servers.js";
import { Broker, mosquittoPath } from "./support/mosquitto.js";
import { compileMqttPolicy, waitFor } from "./support/mqtt-rig.js";
import { requirePeer } from "./support/peers.js";
import { opensslAvailable, testPki } from "./support/pki.js";
import { proxyLink, type Via } from "./support/proxy-link.js";
import { compile, patternBytes, runStream } from "./support/run-stream.js";
import { startWsServers, type WsServers } from "./support/ws-servers.js";
import { runWs } from "./support/ws-run.js";

const MIB = 1 << 20;
const WAYS = ["in-process", "unix", "tcp"] as const;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let h2: H2Servers | undefined;
let h2Policy: Policy;
let wsServers: WsServers;
let wsPolicy: Policy;
const haveMosquitto = mosquittoPath() !== undefined;
let broker: Broker | undefined;

before(async () => {
  if (opensslAvailable()) {
    const pki = testPki();
    h2 = await startH2Servers(pki);
    h2Policy = compile(h2TestPolicy(pki, h2));
  }
  wsServers = await startWsServers();
  wsPolicy = compile({
    s: [{ echo: { endpoint: "127.0.0.1", port: wsServers.ports.plain, protocol: "ws", http_url: "/echo", ws_subprotocol: "echo.v1", ws_binary: true } }],
  });
  if (haveMosquitto) broker = await Broker.start();
});
after(async () => {
  h2?.close();
  wsServers?.close();
  await broker?.close();
});

const guardTls = (t: import("node:test").TestContext) => requirePeer("openssl", opensslAvailable(), t);
const ended = (s: string[]) => s.includes("QOS_ACK_REMOTE") || s.includes("QOS_NACK_REMOTE") || s.includes("ALL_RETRIES_FAILED");

test("h2 through ss-proxy: a 1 MiB download and a 1 MiB POST body, the same states as in-process (Unix socket and TCP)", async (t) => {
  if (!guardTls(t)) return;
  const body = patternBytes(MIB, 11);
  for (const via of WAYS) {
    const bindings = () => [createH1Binding(), createH2Binding()];
    const get = await runStream(h2Policy, "multi_h2", { via, bindings: bindings(), metadata: { n: String(MIB) }, until: ended });
    assert.deepEqual(get.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"], `${via}: ${get.logs.join("\n")}`);
    assert.equal(get.rxBytes, MIB, via);
    assert.equal(get.sha256, sha(bulkBody.subarray(0, MIB)), `${via}: the download intact`);
    const post = await runStream(h2Policy, "post_h2", { via, bindings: bindings(), send: body, metadata: { tag: "v1" }, until: ended });
    assert.deepEqual(post.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"], `${via}: ${post.logs.join("\n")}`);
    assert.equal(post.sha256, sha(body), `${via}: the 1 MiB body reached the server and came back intact`);
  }
});

test("ws through ss-proxy: messages of 0 B to 1 MiB echoed whole (SOM/EOM), the same states as in-process (Unix socket and TCP)", async () => {
  const sizes = [0, 1, 125, 126, 4096, 65536, 65537, 300_000, MIB];
  const sent = sizes.map((n, i) => patternBytes(n, i + 1));
  for (const via of WAYS) {
    const r = await runWs(wsPolicy, "echo", { via: via === "in-process" ? undefined : via, messages: sent, until: (r) => r.messages.length === sent.length, limitMs: 60000 }).catch((e: Error) => { throw new Error(`${via}: ${e.message}`); });
    assert.deepEqual(r.badMarks, [], via);
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED"], `${via}: ${r.logs.join("\n")}`);
    assert.equal(r.messages.length, sent.length, via);
    for (let i = 0; i < sent.length; i++) assert.ok(r.messages[i]!.equals(sent[i]!), `${via}: message ${i} (${sizes[i]} bytes) echoed intact`);
  }
});

/** An MQTT stream that records states and what it receives; onTx gives the queued messages, one per requestTx(). */
function mqttStream(ss: { create(n: string, h: StreamHandlers<StreamApi>): StreamApi }, streamtype: string, queue: Uint8Array[] = []) {
  const r = { states: [] as string[], rx: [] as Buffer[], acks: 0, stream: undefined as unknown as StreamApi };
  let parts: Buffer[] = [];
  r.stream = ss.create(streamtype, {
    onState: (state) => {
      r.states.push(stateName(state));
      if (state === State.QOS_ACK_REMOTE) r.acks++;
      return Ret.OK;
    },
    // whole messages, joined by SOM/EOM (SSPC hands a large one in pieces)
    onRx: (p, flags) => {
      if (flags & RxFlag.SOM) parts = [];
      parts.push(Buffer.from(p));
      if (flags & RxFlag.EOM) r.rx.push(Buffer.concat(parts));
      return Ret.OK;
    },
    onTx: () => {
      const p = queue.shift();
      return p ? { payload: p, flags: 3 } : Ret.TX_DONT_SEND;
    },
  });
  return r;
}

test("MQTT through ss-proxy: subscribe, and QoS 1 publishes with QOS_ACK_REMOTE relayed, the same states as in-process (Unix socket and TCP)", { timeout: 120_000 }, async (t) => {
  if (!requirePeer("mosquitto", haveMosquitto, t)) return;
  const port = broker!.port;
  const other = mqtt.connect({ host: "127.0.0.1", port, protocolVersion: 4 });
  await new Promise<void>((resolve, reject) => { other.once("connect", () => resolve()); other.once("error", reject); });
  try {
    const got: { topic: string; payload: Buffer }[] = [];
    other.on("message", (topic, payload) => got.push({ topic, payload }));
    await other.subscribeAsync("px/ss/#", { qos: 1 });
    const results: Record<string, { pub: string[]; sub: string[] }> = {};
    for (const via of WAYS) {
      const policy = compileMqttPolicy(port, {
        pub: { mqtt_topic: `px/ss/${via}`, mqtt_qos: 1 },
        sub: { mqtt_subscribe: `px/peer/${via}`, mqtt_qos: 1 },
      });
      const logs: string[] = [];
      const host = new NodeHost({ log: (m) => logs.push(m) });
      const rig = via === "in-process"
        ? { ctx: new SecureStreams(host, policy, { bindings: [createMqttBinding()], strict: true }), close: async () => undefined }
        : await proxyLink(policy, host, new NodeHost({ log: (m) => logs.push(m) }), via as Via);
      const ss = rig.ctx as { create(n: string, h: StreamHandlers<StreamApi>): StreamApi; destroyAll(): void };
      try {
        const sizes = [0, 1, 4096, 60_000];
        const queue: Uint8Array[] = [];
        const pub = mqttStream(ss, "pub", queue);
        const sub = mqttStream(ss, "sub");
        sub.stream.connect();
        await waitFor(() => sub.states.includes("CONNECTED"), () => `${via}: ${sub.states.join(" ")} ${logs.join(" | ")}`);
        const before = got.length;
        for (const [i, n] of sizes.entries()) {
          queue.push(patternBytes(n, i + 1));
          pub.stream.requestTx();
          await waitFor(() => pub.acks === i + 1, () => `${via}: ${pub.states.join(" ")} ${logs.join(" | ")}`);
        }
        await waitFor(() => got.length === before + sizes.length, () => `${via}: the peer got ${got.length - before}`);
        assert.deepEqual(got.slice(before).map((g) => [g.topic, sha(g.payload)]), sizes.map((n, i) => [`px/ss/${via}`, sha(patternBytes(n, i + 1))]), `${via}: publishes arrive whole, in order`);
        for (const [i, n] of sizes.entries()) await other.publishAsync(`px/peer/${via}`, Buffer.from(patternBytes(n, 100 + i)), { qos: 1 });
        await waitFor(() => sub.rx.length === sizes.length, () => `${via}: the subscriber got ${sub.rx.length}`);
        assert.deepEqual(sub.rx.map(sha), sizes.map((n, i) => sha(patternBytes(n, 100 + i))), `${via}: the subscriber gets the peer's messages whole`);
        results[via] = { pub: pub.states, sub: sub.states };
      } finally {
        ss.destroyAll();
        await rig.close();
      }
    }
    for (const via of ["unix", "tcp"]) assert.deepEqual(results[via], results["in-process"], `${via}: the states are the in-process ones`);
    assert.ok(results["in-process"]!.pub.filter((s) => s === "QOS_ACK_REMOTE").length === 4);
  } finally {
    await other.endAsync();
  }
});
