// MQTT through the firmware: the example app (hosts/moddable/example), built
// with mcconfig with this test's policy, runs in mcsim against a mosquitto
// started here: a stream that subscribes to dev/# and publishes 1 KiB at
// QoS 1 to a topic under it (done once its PUBACK and its own message are
// in), and a publish-only stream. The Node host runs the same streams
// against the same broker; both must report the same states and payload.
//
// Needs the Moddable SDK (MODDABLE), Xvfb and mosquitto; skipped without
// them, a failure under REQUIRE_PEERS=1.

import { describe, it, before, after, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import path from "node:path";
import { requirePeer } from "./support/peers.js";
import { Broker, mosquittoPath } from "./support/mosquitto.js";
import { moddableSdk, buildApp, runInMcsim, parseExampleTrace, repoRoot, SDK_HINT, type ExampleStreamResult } from "./support/mcsim.js";
import { compileMqttPolicy, Rig, waitFor } from "./support/mqtt-rig.js";
import { compilePolicy } from "../tools/policy/compile.js";
import { State } from "../src/ss/states.js";

interface Scenario {
  readonly stream: string;
  readonly what: string;
  readonly send: number;
  readonly rx?: number;
  readonly metadata?: Record<string, string>;
}

const SCENARIOS: readonly Scenario[] = [
  { stream: "mqtt_pubsub", what: "subscribe to dev/#, publish 1 KiB at QoS 1 under it, receive it back", send: 1024, rx: 1024, metadata: { device: "mcsim" } },
  { stream: "mqtt_pub", what: "publish 100 bytes at QoS 1", send: 100 },
];

function streams(): Record<string, object> {
  return {
    mqtt_pubsub: { mqtt_topic: "dev/${device}/echo", mqtt_subscribe: "dev/#", mqtt_qos: 1, mqtt_keep_alive: 30, metadata: [{ device: "" }], timeout_ms: 20000 },
    mqtt_pub: { mqtt_topic: "dev/pub", mqtt_qos: 1, timeout_ms: 20000 },
  };
}

interface Result { states: string[]; rxBytes: number; sha256: string }

/** The same run on the Node host: the example app's end rule. */
async function onNode(port: number, s: Scenario): Promise<Result> {
  const rig = new Rig(compileMqttPolicy(port, streams()));
  const hash = createHash("sha256");
  const states: string[] = [];
  let rxBytes = 0;
  let acked = false;
  let done = false;
  const check = () => { if (acked && rxBytes >= (s.rx ?? 0)) done = true; };
  let sent = false;
  const r = rig.open(s.stream, {
    metadata: s.metadata,
    send: () => (sent ? undefined : ((sent = true), new Uint8Array(s.send).fill(0x61))),
    onState: (state, rec) => {
      if (done) return;
      states.push(rec.states[rec.states.length - 1]!);
      if (state === State.QOS_ACK_REMOTE) {
        acked = true;
        check();
      }
    },
  });
  const origRx = r.rx;
  r.stream.startTimeout();
  r.stream.requestTxLength(s.send);
  try {
    await waitFor(() => {
      for (const p of origRx.splice(0)) {
        if (done) break;
        rxBytes += p.length;
        hash.update(p);
        check();
      }
      return done || states.includes("ALL_RETRIES_FAILED");
    }, () => `${s.stream}: ${states.join(" ")} ${rig.logs.join("|")}`);
  } finally {
    rig.close();
  }
  return { states, rxBytes, sha256: hash.digest("hex") };
}

const sdk = moddableSdk();
const haveBroker = mosquittoPath() !== undefined;
let broker: Broker | undefined;
let device: Map<string, ExampleStreamResult> | undefined;
let deviceLines: string[] = [];
const node = new Map<string, Result>();

before(async () => {
  if (!sdk || !haveBroker) return;
  broker = await Broker.start();
  const compiled = compilePolicy(JSON.stringify({
    retry: [{ quick: { backoff: [100, 200, 300], conceal: 3, jitterpc: 0 } }],
    s: Object.entries(streams()).map(([name, st]) => ({ [name]: { endpoint: "127.0.0.1", port: broker!.port, protocol: "mqtt", retry: "quick", ...st } })),
  }));
  if (!compiled.binary) throw new Error(`policy: ${JSON.stringify(compiled.diagnostics)}`);
  const example = path.join(repoRoot, "hosts/moddable/example");
  const app = await buildApp(sdk, {
    name: "example-mqtt",
    modules: { main: path.join(example, "main"), "example/dns-servers": path.join(example, "dns-sim") },
    policy: compiled.binary,
    config: { streams: SCENARIOS.map(({ stream, send, rx, metadata }) => ({ stream, send, rx, metadata })), dns: [] },
  });
  const run = await runInMcsim(sdk, app.so, { done: (line) => line.startsWith("ss done"), limitMs: 120000 });
  deviceLines = run.lines;
  device = parseExampleTrace(run.lines);
  for (const s of SCENARIOS) node.set(s.stream, await onNode(broker.port, s));
});

after(async () => {
  await broker?.close();
});

function guard(t: TestContext): boolean {
  return requirePeer(SDK_HINT, sdk !== undefined, t) && requirePeer("mosquitto", haveBroker, t);
}

describe("MQTT in mcsim, against the Node host", () => {
  for (const s of SCENARIOS) {
    it(`${s.stream}: ${s.what}: the same states and payload as on Node`, (t) => {
      if (!guard(t)) return;
      const d = device?.get(s.stream);
      const n = node.get(s.stream);
      assert.ok(d, `mcsim reported nothing for ${s.stream}; it traced:\n${deviceLines.join("\n")}`);
      assert.ok(n);
      assert.deepEqual(d.states, n.states, `states in mcsim vs on Node; mcsim traced:\n${deviceLines.join("\n")}`);
      assert.equal(d.rxBytes, n.rxBytes, "payload bytes");
      assert.equal(d.sha256, n.sha256, "payload SHA-256");
      assert.equal(n.states.at(-1), "QOS_ACK_REMOTE");
      assert.equal(n.rxBytes, s.rx ?? 0);
      t.diagnostic(`${n.states.join(" ")}; ${n.rxBytes} bytes`);
    });
  }
});
