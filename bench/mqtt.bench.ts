// MQTT benchmark: our Secure Streams MQTT binding on the Node host against
// mqtt.js (npm `mqtt`), both publishing to the same mosquitto (Debian),
// started here on a free loopback port in its own process.
// Run: npm run bench:mqtt (build + node dist/bench/mqtt.bench.js).
//
//   mqtt-qos0-64B, mqtt-qos0-4KB  msg/s  N QoS 0 publishes, then one QoS 1
//                      publish on the same connection; the clock stops at
//                      that one's PUBACK, which the broker sends only after
//                      it has read everything before it
//   mqtt-qos1-64B, mqtt-qos1-4KB  msg/s  N QoS 1 publishes, the clock stops
//                      at the last PUBACK (ours: the outbox's default window
//                      of 32 unacknowledged; mqtt.js: no window)
//   mqtt-rtt-64B   ms  one QoS 1 message at a time to a topic the client
//                      itself subscribes to: publish to receipt (median)
//
// The broker runs with set_tcp_nodelay true: with mosquitto's default
// (Nagle on), a request/response pattern waits out the delayed-ACK timer
// (~20 ms) whenever the client's next bytes leave in one segment, which
// measures TCP timers rather than the clients (docs/mqtt.md); mqtt.js's
// socket gets TCP_NODELAY for the same reason (ours gathers each turn's
// packets into one write and needs none).
//
// Each round runs both clients once, in an order that alternates, each on a
// fresh connection; round 0 is a warm-up and not counted. Reported: the
// median of the rounds. Machine-readable: one `BENCH {json}` line per case;
// ratio >= 1 means we are better (ours/theirs for msg/s, theirs/ours for ms).
// Options (environment): MQTT_BENCH_ROUNDS (default 5), MQTT_BENCH_N (small
// messages per round, default 20000; 4 KB: a quarter), MQTT_BENCH_RTT_N
// (round trips per round, default 300).

import { performance } from "node:perf_hooks";
import mqtt from "mqtt";
import { NodeHost } from "../hosts/node/host.js";
import { SecureStreams } from "../src/ss/context.js";
import { State, Ret } from "../src/ss/states.js";
import { createMqttBinding } from "../src/protocols/mqtt.js";
import type { SecureStream } from "../src/ss/stream.js";
import { Broker, mosquittoPath } from "../test-host/support/mosquitto.js";
import { compileMqttPolicy } from "../test-host/support/mqtt-rig.js";
import { median, round3 } from "./stats.js";

const ROUNDS = Number(process.env.MQTT_BENCH_ROUNDS ?? 5);
const N = Number(process.env.MQTT_BENCH_N ?? 20000);
const RTT_N = Number(process.env.MQTT_BENCH_RTT_N ?? 300);

interface Case {
  readonly name: string;
  readonly unit: "msg/s" | "ms";
  readonly qos: 0 | 1;
  readonly size: number;
  readonly n: number;
  readonly rtt?: boolean;
}

const CASES: readonly Case[] = [
  { name: "mqtt-qos0-64B", unit: "msg/s", qos: 0, size: 64, n: N },
  { name: "mqtt-qos0-4KB", unit: "msg/s", qos: 0, size: 4096, n: N / 4 },
  { name: "mqtt-qos1-64B", unit: "msg/s", qos: 1, size: 64, n: N },
  { name: "mqtt-qos1-4KB", unit: "msg/s", qos: 1, size: 4096, n: N / 4 },
  { name: "mqtt-rtt-64B", unit: "ms", qos: 1, size: 64, n: RTT_N, rtt: true },
];

/** Runs one case with our binding; resolves to msg/s or the median round trip in ms. */
function ours(port: number, c: Case): Promise<number> {
  const policy = compileMqttPolicy(port, {
    pub: { mqtt_topic: "bench/ours", mqtt_qos: c.qos, mqtt_keep_alive: 60 },
    mark: { mqtt_topic: "bench/mark", mqtt_qos: 1 },
    rtt: { mqtt_topic: "bench/rtt/ours", mqtt_subscribe: "bench/rtt/ours", mqtt_qos: 1 },
  });
  const host = new NodeHost({ log: (m) => console.error(`  log: ${m}`) });
  const ss = new SecureStreams(host, policy, { bindings: [createMqttBinding()] });
  const payload = new Uint8Array(c.size).fill(0x61);
  return new Promise((resolve, reject) => {
    const finish = (v: number) => {
      ss.destroyAll();
      resolve(v);
    };
    const fail = (state: number) => {
      if (state === State.QOS_NACK_REMOTE || state === State.ALL_RETRIES_FAILED || state === State.UNREACHABLE) {
        ss.destroyAll();
        reject(new Error(`ours: state ${state}`));
      }
    };
    if (c.rtt) {
      const times: number[] = [];
      let sentAt = 0;
      let done = 0;
      const s = ss.create("rtt", {
        onState: (state, _a, st) => {
          fail(state);
          if (state === State.CONNECTED) {
            sentAt = performance.now();
            st.requestTx();
          }
          return Ret.OK;
        },
        onRx: (_p, _f, st) => {
          times.push(performance.now() - sentAt);
          if (++done === c.n) {
            finish(median(times));
            return Ret.OK;
          }
          sentAt = performance.now();
          st.requestTx();
          return Ret.OK;
        },
        onTx: () => ({ payload, flags: 3 }),
      });
      s.connect();
      return;
    }
    let pulled = 0;
    let acks = 0;
    let start = 0;
    let mark: SecureStream | undefined;
    const pub = ss.create("pub", {
      onState: (state, _a, st) => {
        fail(state);
        if (state === State.CONNECTED) {
          start = performance.now();
          for (let i = 0; i < c.n; i++) st.requestTx();
        }
        if (state === State.QOS_ACK_REMOTE && ++acks === c.n) finish(c.n / ((performance.now() - start) / 1000));
        return Ret.OK;
      },
      onTx: () => {
        if (pulled >= c.n) return Ret.TX_DONT_SEND;
        if (++pulled === c.n && c.qos === 0) mark!.requestTx();
        return { payload, flags: 3 };
      },
    });
    if (c.qos === 0) {
      mark = ss.create("mark", {
        onState: (state) => {
          fail(state);
          if (state === State.QOS_ACK_REMOTE) finish(c.n / ((performance.now() - start) / 1000));
          return Ret.OK;
        },
        onTx: () => ({ payload, flags: 3 }),
      });
      mark.connect();
    }
    pub.connect();
  });
}

/** The same case with mqtt.js. */
async function theirs(port: number, c: Case): Promise<number> {
  const client = mqtt.connect({ host: "127.0.0.1", port, protocolVersion: 4, reconnectPeriod: 0, keepalive: 60 });
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", reject);
  });
  // mqtt.js writes a packet's parts apart: without this its round trips wait for delayed ACKs too
  (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  const payload = Buffer.alloc(c.size, 0x61);
  try {
    if (c.rtt) {
      await client.subscribeAsync("bench/rtt/theirs", { qos: 1 });
      const times: number[] = [];
      for (let i = 0; i < c.n; i++) {
        const start = performance.now();
        await new Promise<void>((resolve) => {
          client.once("message", () => resolve());
          client.publish("bench/rtt/theirs", payload, { qos: 1 });
        });
        times.push(performance.now() - start);
      }
      return median(times);
    }
    const start = performance.now();
    await new Promise<void>((resolve, reject) => {
      let acks = 0;
      const acked = (e?: Error) => {
        if (e) reject(e);
        else if (++acks === c.n) resolve();
      };
      for (let i = 0; i < c.n; i++) {
        if (c.qos === 1) client.publish("bench/theirs", payload, { qos: 1 }, acked);
        else client.publish("bench/theirs", payload, { qos: 0 });
      }
      if (c.qos === 0) client.publish("bench/mark", payload, { qos: 1 }, (e) => (e ? reject(e) : resolve()));
    });
    return c.n / ((performance.now() - start) / 1000);
  } finally {
    await client.endAsync();
  }
}


async function main(): Promise<void> {
  if (!mosquittoPath()) {
    console.error("bench:mqtt needs mosquitto (Debian package mosquitto)");
    process.exitCode = 1;
    return;
  }
  const broker = await Broker.start({ extra: ["set_tcp_nodelay true"] });
  console.log(`mosquitto on 127.0.0.1:${broker.port}; ${ROUNDS} rounds (+1 warm-up), median reported; N=${N}, RTT_N=${RTT_N}`);
  const results: Record<string, { ours: number[]; theirs: number[] }> = {};
  try {
    for (let round = 0; round <= ROUNDS; round++) {
      for (const c of CASES) {
        const r = (results[c.name] ??= { ours: [], theirs: [] });
        const order = round % 2 ? ["theirs", "ours"] : ["ours", "theirs"];
        for (const who of order) {
          const v = who === "ours" ? await ours(broker.port, c) : await theirs(broker.port, c);
          if (round > 0) r[who as "ours" | "theirs"].push(v);
        }
      }
    }
  } finally {
    await broker.close();
  }
  console.log(`\n${"case".padEnd(16)}${"ours".padStart(14)}${"mqtt.js".padStart(14)}  unit   ratio`);
  const lines: string[] = [];
  for (const c of CASES) {
    const o = median(results[c.name]!.ours);
    const t = median(results[c.name]!.theirs);
    const ratio = c.unit === "ms" ? t / o : o / t;
    console.log(`${c.name.padEnd(16)}${o.toFixed(c.unit === "ms" ? 3 : 0).padStart(14)}${t.toFixed(c.unit === "ms" ? 3 : 0).padStart(14)}  ${c.unit.padEnd(6)} ${ratio.toFixed(2)}`);
    lines.push(`BENCH ${JSON.stringify({ name: c.name, unit: c.unit, ours: round3(o), peer: "mqtt.js", theirs: round3(t), ratio: round3(ratio) })}`);
  }
  console.log("");
  for (const l of lines) console.log(l);
}

await main();
