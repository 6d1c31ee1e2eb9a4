// bench:device's app: the runtime's memory measured inside Moddable's XS, in
// mcsim, through the machine's own counters (./counters.c). Built by
// bench/device.bench.ts, which serves the downloads and reads the trace:
//   bench <key> <json>   one figure
//   bench done
//
// Slots are live slots after a garbage collection; chunks the chunk heap in
// use at the same moment. A download's high-water is the most that is live
// at any sample: each onRx and onState, and a 5 ms timer between events.
// The app keeps its own figures in numbers only, and traces anything larger
// at once, so that what it holds between two measurements does not change.

import Timer from "timer";
import Resource from "Resource";
import { counters, resetStackPeak, census } from "bench/counters";
import type { SecureStreams as Context } from "xs-secure-streams/ss/context";
import type { SecureStream, StreamHandlers } from "xs-secure-streams/ss/stream";
import type { State as StateTable, Ret as RetTable } from "xs-secure-streams/ss/states";

const IDLE_STREAMS = 32;
const DOWNLOADS = ["dl_plain", "dl_tls"];
const CYCLES = 8;

function report(key: string, value: unknown): void {
  trace(`bench ${key} ${JSON.stringify(value)}\n`);
}

/**
 * Live slots and chunk bytes, as of the last measure(). It collects twice:
 * XS frees some objects only at the second collection after they become
 * unreachable (33 idle streams just destroyed: 33 slots more after one
 * collection, none after two).
 */
let slots = 0;
let chunks = 0;
function measure(): void {
  counters(true);
  const c = counters(true);
  slots = c[0];
  chunks = c[1];
}

/** Resolves on the next turn of the event loop. */
function turn(): Promise<void> {
  return new Promise((resolve) => Timer.set(() => resolve(), 0));
}

/** The download high-water: the most live at any sample while `sampling`. */
let sampling = false;
let topSlots = 0;
let topChunks = 0;
function sample(): void {
  if (!sampling) return;
  const c = counters(true);
  if (c[0] > topSlots) topSlots = c[0];
  if (c[1] > topChunks) topChunks = c[1];
}
Timer.repeat(sample, 5);

// What run() needs of the runtime, set by main() before anything is measured.
let ss: Context | undefined;
let S: typeof StateTable;
let R: typeof RetTable;

/** Runs one stream to its end; when `measured`, samples the heap from requestTx() on and reports it. */
function run(name: string, measured: boolean): Promise<boolean> {
  return new Promise((resolve) => {
    let rx = 0;
    let done = false;
    let beforeSlots = 0, beforeChunks = 0;
    const finish = (ok: boolean) => {
      done = true;
      if (measured) {
        sampling = false;
        report(`download-${name}`, {
          ok, rx,
          highWater: { slots: topSlots - beforeSlots, chunks: topChunks - beforeChunks },
          heapTop: { slots: topSlots, chunks: topChunks },
          stackPeak: counters(false)[2],
        });
      }
      // Destroyed on the next turn, not from inside its own handler.
      Timer.set(() => {
        stream.destroy();
        resolve(ok);
      });
    };
    const stream = ss!.create(name, {
      onState(state) {
        if (measured) sample();
        if (done) return R.OK;
        if (state === S.QOS_ACK_REMOTE) finish(true);
        else if (state === S.QOS_NACK_REMOTE || state === S.ALL_RETRIES_FAILED || state === S.TIMEOUT) finish(false);
        return state === S.TIMEOUT ? R.DISCONNECT_ME : R.OK;
      },
      onRx(payload) {
        rx += payload.length;
        if (measured) sample();
        return R.OK;
      },
    });
    stream.startTimeout();
    if (measured) {
      // Measured over the stream as created: what connecting and the transaction add.
      measure();
      beforeSlots = topSlots = slots;
      beforeChunks = topChunks = chunks;
      resetStackPeak();
      sampling = true;
    }
    stream.requestTx();
  });
}

async function main(): Promise<void> {
  await turn(); // measured from a resumed frame, as after the imports
  measure();
  const startSlots = slots, startChunks = chunks;
  // The runtime's modules are preloaded: importing them should cost no RAM.
  const [{ ModdableHost }, { Policy }, { SecureStreams }, { createH1Binding }, { State, Ret }] = await Promise.all([
    import("xs-secure-streams/moddable/host"),
    import("xs-secure-streams/policy/reader"),
    import("xs-secure-streams/ss/context"),
    import("xs-secure-streams/protocols/h1"),
    import("xs-secure-streams/ss/states"),
  ]);
  await turn();
  measure();
  report("modules", { slots: slots - startSlots, chunks: chunks - startChunks });
  const importedSlots = slots, importedChunks = chunks;

  S = State;
  R = Ret;
  const h1 = createH1Binding();
  ss = new SecureStreams(new ModdableHost(), Policy.open(new Resource("policy.dat")), { bindings: [h1] });
  // One handlers object for the idle streams, so that what is counted is the stream itself.
  const quiet: StreamHandlers = {};
  const idle: SecureStream[] = [];
  await turn();
  measure();
  report("boot", { slots: slots - importedSlots, chunks: chunks - importedChunks });
  const bootSlots = slots, bootChunks = chunks;
  report("aliased-at-boot", counters(false)[3]);
  // What is live by class, traced at once so that nothing of it is kept.
  report("census-boot", census());

  // Idle streams: created, never asked to connect.
  idle.push(ss.create("idle", quiet));
  await turn();
  measure();
  report("idle-first", { slots: slots - bootSlots, chunks: chunks - bootChunks });
  const firstSlots = slots, firstChunks = chunks;
  for (let i = 0; i < IDLE_STREAMS; i++) idle.push(ss.create("idle", quiet));
  await turn();
  measure();
  report("idle", { slots: (slots - firstSlots) / IDLE_STREAMS, chunks: (chunks - firstChunks) / IDLE_STREAMS });
  for (let i = 0; i < idle.length; i++) idle[i]!.destroy();
  idle.length = 0;
  await turn();
  measure();
  report("idle-retained", { slots: slots - bootSlots, chunks: chunks - bootChunks });
  report("census-idle", census());

  for (let i = 0; i < DOWNLOADS.length; i++) {
    const name = DOWNLOADS[i]!;
    measure();
    const fromSlots = slots, fromChunks = chunks;
    await run(name, true);
    await turn();
    measure();
    report(`retained-${name}`, { slots: slots - fromSlots, chunks: chunks - fromChunks });
  }

  // Streams one after another, plain and TLS in turn: what stays after each.
  measure();
  const cyclesSlots = slots;
  for (let i = 0; i < CYCLES; i++) {
    if (!(await run(i % 2 ? "get_tls" : "get_plain", false))) report("cycle-failed", i);
    await turn();
    measure();
    report(`cycle-${i}`, slots - cyclesSlots);
  }
  await turn();
  measure();
  // the last connections wait in h1's pool for a next stream (idleMs): kept on purpose, not retained
  report("pooled", { slots: slots - bootSlots, chunks: chunks - bootChunks });
  h1.closeIdle();
  await turn();
  measure();
  report("retained", { slots: slots - bootSlots, chunks: chunks - bootChunks });
  report("aliased-at-end", counters(false)[3]);
  report("census-end", census());
  await mqtt();
  trace("bench done\n");
}

const MQTT_SUBSCRIBERS = 4;

/**
 * MQTT, in a context of its own (its binding keeps a client id per broker,
 * which the "retained" figure above must not count): MQTT_SUBSCRIBERS
 * streams subscribed to one topic and a publisher, all on one shared
 * connection; the publisher sends one QoS 1 message that each subscriber
 * receives. The high-water over the streams as created covers connecting,
 * subscribing and the message; reported in all and per subscribed stream.
 */
async function mqtt(): Promise<void> {
  const [{ ModdableHost }, { Policy }, { SecureStreams }, { createMqttBinding }] = await Promise.all([
    import("xs-secure-streams/moddable/host"),
    import("xs-secure-streams/policy/reader"),
    import("xs-secure-streams/ss/context"),
    import("xs-secure-streams/protocols/mqtt"),
  ]);
  const ctx = new SecureStreams(new ModdableHost(), Policy.open(new Resource("policy.dat")), { bindings: [createMqttBinding()] });
  let connected = 0;
  let received = 0;
  let acked = false;
  let failed = "";
  // One handlers object for all the streams, as for the idle ones: what is counted is the streams and the connection.
  const watch: StreamHandlers = {
    onState(state, _ack, stream) {
      sample();
      if (state === S.CONNECTED) connected++;
      if (state === S.QOS_ACK_REMOTE) acked = true;
      if (state === S.UNREACHABLE || state === S.ALL_RETRIES_FAILED || state === S.AUTH_FAILED || state === S.QOS_NACK_REMOTE) failed ||= `${stream.streamtype} state ${state}`;
      return R.OK;
    },
    onRx() {
      sample();
      received++;
      return R.OK;
    },
    onTx() {
      return { payload: new Uint8Array(64), flags: 3 };
    },
  };
  const until = async (f: () => boolean) => {
    for (let i = 0; i < 2000 && !f() && !failed; i++) await new Promise<void>((resolve) => Timer.set(() => resolve(), 5));
    if (!f()) throw new Error(`mqtt: ${failed || "timed out"} (connected ${connected}, received ${received}, acked ${acked})`);
  };
  const streams: SecureStream[] = [];
  await turn();
  measure();
  const fromSlots = slots, fromChunks = chunks;
  topSlots = slots;
  topChunks = chunks;
  sampling = true;
  // the publisher and one subscriber, then the others: what each one more costs once connected
  const pub = ctx.create("mqtt_pub", watch);
  streams.push(pub, ctx.create("mqtt_sub", watch));
  for (const s of streams) s.connect();
  await until(() => connected === 2);
  sampling = false;
  measure();
  const oneSlots = slots;
  sampling = true;
  for (let i = 1; i < MQTT_SUBSCRIBERS; i++) {
    const s = ctx.create("mqtt_sub", watch);
    streams.push(s);
    s.connect();
  }
  await until(() => connected === MQTT_SUBSCRIBERS + 1);
  sampling = false;
  measure();
  const allSlots = slots;
  sampling = true;
  pub.requestTx();
  await until(() => acked && received === MQTT_SUBSCRIBERS);
  sampling = false;
  report("mqtt", {
    subscribers: MQTT_SUBSCRIBERS,
    highWater: { slots: topSlots - fromSlots, chunks: topChunks - fromChunks },
    perSubscriber: Math.round((topSlots - fromSlots) / MQTT_SUBSCRIBERS),
    eachMore: Math.round((allSlots - oneSlots) / (MQTT_SUBSCRIBERS - 1)),
  });
  ctx.destroyAll();
  await turn();
}

main().catch((e: unknown) => trace(`bench failed ${String(e)}\n`));
