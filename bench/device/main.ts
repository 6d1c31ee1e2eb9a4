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
  ss = new SecureStreams(new ModdableHost(), Policy.open(new Resource("policy.dat")), { bindings: [createH1Binding()] });
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
  report("retained", { slots: slots - bootSlots, chunks: chunks - bootChunks });
  report("aliased-at-end", counters(false)[3]);
  report("census-end", census());
  trace("bench done\n");
}

main().catch((e: unknown) => trace(`bench failed ${String(e)}\n`));
