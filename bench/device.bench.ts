// The runtime's footprint where it is real: inside Moddable's XS, in its
// Linux simulator (mcsim), with the runtime preloaded as manifest.json
// preloads it and the Moddable host's own sockets and TLS.
// Run: npm run bench:device (build + node dist/bench/device.bench.js); needs
// MODDABLE (a Moddable SDK with its Linux tools built) and Xvfb.
//
// It builds bench/device (an instrumented build, for the JS stack's
// high-water mark) with the XS sizes manifest.json gives the ESP32, so that
// the run itself shows they are enough: a fixed heap aborts XS when it runs
// out. The app reads the machine's counters (bench/device/counters.c) and
// traces the figures; this side serves the downloads (Node http/https on
// loopback, the test PKI) and prints the table and the BENCH lines.
//
// Slot counts are the same on the ESP32 (16-byte slots there, 32 here).
// Chunk bytes are larger here (64-bit pointers): an upper bound for the ESP32.
// Budgets (issue 8), as "peer":"budget" BENCH lines, ratio = budget/ours
// (>= 1 within budget; for a budget of 0, ratio 1 when met, 0 when not):
//   device-runtime          runtime modules + host + policy + context   <= 150 slots
//   device-idle-stream      per idle stream                              <= 64 slots
//   device-download-plain   high-water of a 1 MiB GET over the stream    <= 300 slots
//   device-download-tls     the same over TLS                            <= 600 slots
//   device-mqtt-stream      4 MQTT streams subscribed on one shared connection and a
//                           publisher, one QoS 1 message to all: high-water / 4  <= 200 slots
//                           (the connection and the publisher are shared out over the 4)
//                           (issue 10; needs mosquitto, started here)
//   device-retained         after the last stream is destroyed and h1's idle pool emptied: 0 slots
//   device-stack-tls        JS stack high-water of the TLS GET           <= creation.stack
//                           (XS's instrumented mark: JS frames only, not what native code pushes)
//   device-heap-top / device-chunk-top: the most in use, all of XS       <= creation heap / chunk
// With --stack-probe, it also finds the smallest creation.stack that runs
// the TLS GET at all (release builds, 8-slot steps between 384 and
// creation.stack: a few builds, ~20 s each): device-stack-min.

import { readFileSync } from "node:fs";
import path from "node:path";
import { testPki } from "../test-host/support/pki.js";
import { startH1Servers } from "../test-host/support/h1-servers.js";
import { moddableSdk, buildApp, runInMcsim, repoRoot, SDK_HINT } from "../test-host/support/mcsim.js";
import { compilePolicy } from "../tools/policy/compile.js";
import { base64Encode } from "../src/util/base64.js";
import { Broker, mosquittoPath } from "../test-host/support/mosquitto.js";

const DOWNLOAD = 1024 * 1024;

interface Creation {
  readonly stack: number;
  readonly heap: { readonly initial: number; readonly incremental: number };
  readonly chunk: { readonly initial: number; readonly incremental: number };
}

function bench(name: string, unit: string, ours: number, theirs: number): void {
  const ratio = theirs === 0 ? (ours === 0 ? 1 : 0) : Math.round((theirs / ours) * 1000) / 1000;
  console.log(`BENCH ${JSON.stringify({ name, unit, ours, peer: "budget", theirs, ratio })}`);
}

/** What differs between two censuses (counters.c): "Name +instances (+slots)". */
function censusDiff(from: (string | number)[], to: (string | number)[]): string[] {
  const tally = (census: (string | number)[]) => {
    const m = new Map<string, [number, number]>();
    for (let i = 0; i < census.length; i += 3) {
      const [n, s] = m.get(census[i] as string) ?? [0, 0];
      m.set(census[i] as string, [n + (census[i + 1] as number), s + (census[i + 2] as number)]);
    }
    return m;
  };
  const a = tally(from);
  const b = tally(to);
  const out: string[] = [];
  for (const name of new Set([...a.keys(), ...b.keys()])) {
    const [n0, s0] = a.get(name) ?? [0, 0];
    const [n1, s1] = b.get(name) ?? [0, 0];
    if (n1 !== n0 || s1 !== s0) out.push(`${name} ${n1 - n0 >= 0 ? "+" : ""}${n1 - n0} (${s1 - s0 >= 0 ? "+" : ""}${s1 - s0} slots)`);
  }
  return out;
}

async function main(): Promise<number> {
  const sdk = moddableSdk();
  if (!sdk) {
    console.error(`bench:device needs ${SDK_HINT}.`);
    return 1;
  }
  const manifest = JSON.parse(readFileSync(path.join(repoRoot, "manifest.json"), "utf8"));
  const creation = manifest.platforms.esp32.creation as Creation;

  const pki = testPki();
  const servers = await startH1Servers(pki);
  if (!mosquittoPath()) {
    console.error("bench:device needs mosquitto (Debian package mosquitto) for its MQTT figures.");
    return 1;
  }
  const broker = await Broker.start();
  try {
    const mqtt = { endpoint: "127.0.0.1", port: broker.port, protocol: "mqtt", retry: "quick", mqtt_qos: 1 };
    const get = (port: number, url: string, tls: boolean) => ({
      endpoint: "127.0.0.1", port, protocol: "h1", http_method: "GET", http_url: url, retry: "quick", timeout_ms: 120000,
      ...(tls ? { tls: true, tls_trust_store: "test" } : {}),
    });
    const compiled = compilePolicy(JSON.stringify({
      retry: [{ quick: { backoff: [100], conceal: 1, jitterpc: 10 } }],
      certs: [{ test_ca: base64Encode(pki.ca.certDer) }],
      trust_stores: [{ name: "test", stack: ["test_ca"] }],
      s: [
        { idle: get(servers.ports.plain, "/status/200", false) },
        { dl_plain: get(servers.ports.plain, `/bytes/${DOWNLOAD}`, false) },
        { dl_tls: get(servers.ports.tls, `/bytes/${DOWNLOAD}`, true) },
        { get_plain: get(servers.ports.plain, "/status/200", false) },
        { get_tls: get(servers.ports.tls, "/status/200", true) },
        { mqtt_sub: { ...mqtt, mqtt_subscribe: "bench/mqtt/#" } },
        { mqtt_pub: { ...mqtt, mqtt_topic: "bench/mqtt/all" } },
      ],
    }));
    if (!compiled.binary) throw new Error(`bench policy: ${JSON.stringify(compiled.diagnostics)}`);

    const dir = path.join(repoRoot, "bench/device");
    const modules = { main: path.join(dir, "main"), "bench/counters": path.join(dir, "counters") };
    process.stderr.write("building bench/device with mcconfig (instrumented, the ESP32's XS sizes)...\n");
    const app = await buildApp(sdk, {
      name: "device-bench",
      modules,
      policy: compiled.binary,
      instrument: true,
      creation,
    });
    process.stderr.write("running it in mcsim...\n");
    const run = await runInMcsim(sdk, app.so, {
      done: (line) => line === "bench done" || line.startsWith("bench failed"),
      limitMs: 600000,
    });
    const figures = new Map<string, any>();
    for (const line of run.lines) {
      const m = /^bench (\S+) (.*)$/.exec(line);
      if (m) figures.set(m[1]!, JSON.parse(m[2]!));
    }
    if (run.lines.some((l) => l.startsWith("bench failed")) || figures.has("cycle-failed")) {
      throw new Error(`the bench app failed:\n${run.lines.join("\n")}`);
    }
    const f = (key: string) => {
      if (!figures.has(key)) throw new Error(`no "${key}" in the app's trace:\n${run.lines.join("\n")}`);
      return figures.get(key);
    };
    for (const name of ["dl_plain", "dl_tls"]) {
      const d = f(`download-${name}`);
      if (!d.ok || d.rx !== DOWNLOAD) throw new Error(`${name}: ${JSON.stringify(d)}`);
    }

    const runtime = f("modules").slots + f("boot").slots;
    const cycles: number[] = [];
    for (let i = 0; figures.has(`cycle-${i}`); i++) cycles.push(f(`cycle-${i}`));
    const plain = f("download-dl_plain");
    const tls = f("download-dl_tls");
    const heapTop = Math.max(plain.heapTop.slots, tls.heapTop.slots);
    const chunkTop = Math.max(plain.heapTop.chunks, tls.heapTop.chunks);
    const rows: [string, string, string][] = [
      ["runtime modules imported (preloaded)", `${f("modules").slots}`, `${f("modules").chunks}`],
      ["host + Policy.open(Resource) + SecureStreams", `${f("boot").slots}`, `${f("boot").chunks}`],
      ["runtime + policy + context (budget 150)", `${runtime}`, ""],
      ["first idle stream", `${f("idle-first").slots}`, `${f("idle-first").chunks}`],
      ["idle stream, each of 32 more (budget 64)", `${f("idle").slots}`, `${Math.round(f("idle").chunks)}`],
      ["after destroying the idle streams", `${f("idle-retained").slots}`, `${f("idle-retained").chunks}`],
      ["1 MiB GET, plain: high-water over the stream (budget 300)", `${plain.highWater.slots}`, `${plain.highWater.chunks}`],
      ["1 MiB GET, TLS: high-water over the stream (budget 600)", `${tls.highWater.slots}`, `${tls.highWater.chunks}`],
      ["after the plain GET's stream is destroyed", `${f("retained-dl_plain").slots}`, `${f("retained-dl_plain").chunks}`],
      ["after the TLS GET's stream is destroyed", `${f("retained-dl_tls").slots}`, `${f("retained-dl_tls").chunks}`],
      ["8 GETs, plain and TLS in turn: growth after each", cycles.join(" "), ""],
      ["after the last stream is destroyed, its connections in h1's idle pool", `${f("pooled").slots}`, `${f("pooled").chunks}`],
      ["... and once the pool is emptied (budget 0)", `${f("retained").slots}`, `${f("retained").chunks}`],
      ["JS stack high-water, plain / TLS GET (slots)", `${plain.stackPeak} / ${tls.stackPeak}`, ""],
      ["all of XS at the high-water, plain / TLS", `${plain.heapTop.slots} / ${tls.heapTop.slots}`,
        `${plain.heapTop.chunks} / ${tls.heapTop.chunks}`],
      ["preloaded objects written at run time: at boot / at the end", `${f("aliased-at-boot")} / ${f("aliased-at-end")}`, ""],
      [`MQTT: ${f("mqtt").subscribers} subscribed streams + a publisher on one connection, one QoS 1 message: high-water`,
        `${f("mqtt").highWater.slots}`, `${f("mqtt").highWater.chunks}`],
      ["MQTT: high-water per subscribed stream, connection and publisher included (budget 200)", `${f("mqtt").perSubscriber}`, ""],
      ["MQTT: each subscribed stream more on the connection, once connected", `${f("mqtt").eachMore}`, ""],
    ];
    console.log(`\nXS in mcsim (${path.basename(sdk.root)} at ${sdk.root}), instrumented build, ESP32 creation: ` +
      `stack ${creation.stack}, heap ${creation.heap.initial} slots, chunks ${creation.chunk.initial} bytes\n`);
    const width = Math.max(...rows.map((r) => r[0].length));
    console.log(`${"".padEnd(width)}  ${"slots".padStart(11)}  ${"chunk bytes".padStart(13)}`);
    for (const [what, slots, chunks] of rows) console.log(`${what.padEnd(width)}  ${slots.padStart(11)}  ${chunks.padStart(13)}`);
    console.log("");

    for (const [label, key] of [["after the idle streams are destroyed", "census-idle"], ["after the last stream is destroyed", "census-end"]]) {
      const changes = censusDiff(f("census-boot"), f(key));
      console.log(`live in RAM ${label}, against boot, by constructor: ${changes.length ? changes.join(", ") : "nothing"}`);
    }
    console.log("");

    bench("device-runtime", "slots", runtime, 150);
    bench("device-idle-stream", "slots", f("idle").slots, 64);
    bench("device-download-plain", "slots", plain.highWater.slots, 300);
    bench("device-download-tls", "slots", tls.highWater.slots, 600);
    bench("device-retained", "slots", f("retained").slots, 0);
    bench("device-stack-tls", "slots", tls.stackPeak, creation.stack);
    bench("device-heap-top", "slots", heapTop, creation.heap.initial);
    bench("device-chunk-top", "bytes", chunkTop, creation.chunk.initial);
    bench("device-mqtt-stream", "slots", f("mqtt").perSubscriber, 200);

    if (process.argv.includes("--stack-probe")) {
      // Does the whole app (TLS GETs included) run with this JS stack?
      const runs = async (stack: number) => {
        const probe = await buildApp(sdk, { name: "device-bench-stack", modules, policy: compiled.binary!, creation: { ...creation, stack } });
        try {
          await runInMcsim(sdk, probe.so, { done: (line) => line === "bench done", limitMs: 600000 });
          return true;
        } catch (error) {
          if (/stack overflow/.test((error as Error).message)) return false;
          throw error;
        }
      };
      let low = 384; // mcconfig's default: known to overflow
      let high = creation.stack;
      if (!(await runs(high))) throw new Error(`the app overflows a ${high}-slot stack`);
      while (high - low > 8) {
        const mid = low + Math.floor((high - low) / 16) * 8;
        process.stderr.write(`stack probe: ${mid} slots...\n`);
        if (await runs(mid)) high = mid;
        else low = mid;
      }
      console.log(`\nsmallest JS stack that runs the app (TLS included): ${high} slots (${low} overflows)`);
      bench("device-stack-min", "slots", high, creation.stack);
    }
    return 0;
  } finally {
    servers.close();
    await broker.close();
  }
}

process.exitCode = await main();
