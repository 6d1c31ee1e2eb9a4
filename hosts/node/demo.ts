// `npm start`: the simulator demo, offline. Starts the local servers the demo
// policy names (demo-servers.ts), runs each demo stream as the device would
// and narrates it, then stops them.
//
// `npm run demo:up` starts the same servers in the background, to try ss-sim
// on the demo policy by hand; `npm run demo:down` stops them. (`serve` is what
// demo:up runs: the servers in the foreground until SIGINT or SIGTERM.)

import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { loadPolicy, runSim } from "./sim.js";
import { DEMO_HTTP_PORT, DEMO_HTTPS_PORT, DEMO_H2_PORT, DEMO_MQTT_PORT, startDemoServers } from "./demo-servers.js";

const self = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(self), "../../..");
const pidFile = path.join(root, "build/demo-servers.pid");
const where = `http on 127.0.0.1:${DEMO_HTTP_PORT}, https on 127.0.0.1:${DEMO_HTTPS_PORT}, h2 on 127.0.0.1:${DEMO_H2_PORT}, mqtt on 127.0.0.1:${DEMO_MQTT_PORT}`;

const STEPS: { stream: string; expect: number; what: string; metadata?: Map<string, string>; send?: Uint8Array; durationMs?: number }[] = [
  { stream: "demo_get", expect: 0, what: "GET with ${device} metadata in the URL", metadata: new Map([["device", "sim 1"]]) },
  { stream: "demo_post", expect: 0, what: "POST of 64 KiB from onTx", send: new Uint8Array(65536).fill(0x61) },
  { stream: "demo_tls", expect: 0, what: "GET over TLS, verified against the policy's own CA, with perf timings" },
  { stream: "demo_h2", expect: 0, what: "GET over http/2 (TLS with ALPN h2), ${device} in the URL", metadata: new Map([["device", "sim 1"]]) },
  { stream: "demo_untrusted", expect: 1, what: "the same server, but the policy trusts another CA: refused" },
  { stream: "demo_ws", expect: 0, what: "WebSocket over TLS: a text message to the echo server and back", send: new TextEncoder().encode("hello over ws \u2708") },
  {
    stream: "demo_mqtt", expect: 0, what: "MQTT: subscribe to demo/${device}/#, publish at QoS 1 to demo/${device}/hello, receive it back",
    metadata: new Map([["device", "sim1"]]), send: new TextEncoder().encode("hello over MQTT"), durationMs: 1500,
  },
];

async function demo(): Promise<number> {
  const policy = loadPolicy(path.join(root, "policies/demo.json"), (line) => process.stderr.write(`${line}\n`));
  if (!policy) return 1;
  const servers = await startDemoServers(root);
  try {
    let failures = 0;
    for (const step of STEPS) {
      process.stdout.write(`\n== ${step.stream}: ${step.what}\n`);
      const code = await runSim({
        policy, stream: step.stream, metadata: step.metadata, send: step.send, durationMs: step.durationMs,
        log: (line) => process.stdout.write(`           log: ${line}\n`),
      });
      if (code !== step.expect) {
        failures++;
        process.stdout.write(`   !! expected ${step.expect === 0 ? "success" : "failure"}\n`);
      }
    }
    process.stdout.write(`\n${failures ? `${failures} step(s) did not go as expected` : "demo done: every stream behaved as its policy says"}\n`);
    return failures ? 1 : 0;
  } finally {
    await servers.close();
  }
}

/** The servers in the foreground; tells a parent (demo:up) through IPC when they listen. */
async function serve(): Promise<number> {
  let servers;
  try {
    servers = await startDemoServers(root);
  } catch (e) {
    process.send?.((e as Error).message);
    throw e;
  }
  const stop = () => void servers.close();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  if (process.send) process.send("ready");
  else process.stdout.write(`demo servers: ${where}; Ctrl-C stops them\n`);
  return 0;
}

/** The pid in the pid file when that process is still a demo server. */
function runningPid(): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, "utf8"));
  try {
    process.kill(pid, 0);
  } catch {
    return undefined;
  }
  // where the system says what a process runs, make sure the pid was not reused
  const cmdline = `/proc/${pid}/cmdline`;
  if (existsSync(cmdline) && !readFileSync(cmdline, "utf8").includes(self)) return undefined;
  return pid;
}

async function up(): Promise<number> {
  const running = runningPid();
  if (running !== undefined) {
    process.stdout.write(`demo servers already up (pid ${running}): ${where}\n`);
    return 0;
  }
  const child = spawn(process.execPath, [self, "serve"], { detached: true, stdio: ["ignore", "ignore", "ignore", "ipc"] });
  const said = await new Promise<string>((resolve) => {
    child.once("message", (m) => resolve(String(m)));
    child.once("exit", (code) => resolve(`the servers exited with status ${code}`));
  });
  if (said !== "ready") {
    process.stderr.write(`demo: ${said}\n`);
    return 1;
  }
  mkdirSync(path.dirname(pidFile), { recursive: true });
  writeFileSync(pidFile, String(child.pid));
  child.disconnect();
  child.unref();
  process.stdout.write(`demo servers up (pid ${child.pid}): ${where}; npm run demo:down stops them\n`);
  return 0;
}

async function down(): Promise<number> {
  const pid = runningPid();
  rmSync(pidFile, { force: true });
  if (pid === undefined) {
    process.stdout.write("demo servers: none running\n");
    return 0;
  }
  process.kill(pid, "SIGTERM");
  // wait for it to be gone, so that the ports are free when this returns
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      process.stdout.write(`demo servers down (pid ${pid})\n`);
      return 0;
    }
    await sleep(50);
  }
  process.kill(pid, "SIGKILL");
  process.stdout.write(`demo servers killed (pid ${pid})\n`);
  return 0;
}

const MODES: Record<string, () => Promise<number>> = { up, down, serve };

async function main(mode: string | undefined): Promise<number> {
  const run = mode === undefined ? demo : MODES[mode];
  if (!run) {
    process.stderr.write(`usage: demo.js [up | down | serve]\n`);
    return 2;
  }
  try {
    return await run();
  } catch (e) {
    process.stderr.write(`demo: ${(e as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv[2]);
