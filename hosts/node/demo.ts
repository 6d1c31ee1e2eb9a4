// `npm start`: the simulator demo, offline. Starts the local servers the demo
// policy names (http on 127.0.0.1:7681, https on :7682 with the demo CA),
// then runs each demo stream as the device would and narrates it.
// `npm start -- --serve`: only the servers, until Ctrl-C, for the device
// example in Moddable's simulator (hosts/moddable/README.md).

import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadPolicy, runSim } from "./sim.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const certs = path.join(root, "policies/demo-certs");

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method === "POST") {
    let n = 0;
    req.on("data", (d: Buffer) => (n += d.length));
    req.on("end", () => res.end(`received ${n} bytes\n`));
    return;
  }
  res.setHeader("content-type", "text/plain");
  res.end(`hello from ${req.socket.localPort === 7682 ? "https" : "http"}: you asked for ${req.url}\n`);
}

function listen(server: http.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(new Error(e.code === "EADDRINUSE" ? `port ${port} is taken; the demo policy needs it free` : e.message)));
    server.listen(port, "127.0.0.1", resolve);
  });
}

const STEPS: { stream: string; expect: number; what: string; metadata?: Map<string, string>; send?: Uint8Array }[] = [
  { stream: "demo_get", expect: 0, what: "GET with ${device} metadata in the URL", metadata: new Map([["device", "sim 1"]]) },
  { stream: "demo_post", expect: 0, what: "POST of 64 KiB from onTx", send: new Uint8Array(65536).fill(0x61) },
  { stream: "demo_tls", expect: 0, what: "GET over TLS, verified against the policy's own CA, with perf timings" },
  { stream: "demo_untrusted", expect: 1, what: "the same server, but the policy trusts another CA: refused" },
];

async function main(): Promise<number> {
  const policy = loadPolicy(path.join(root, "policies/demo.json"), (line) => process.stderr.write(`${line}\n`));
  if (!policy) return 1;
  const plain = http.createServer(handler);
  const secure = https.createServer({
    cert: readFileSync(path.join(certs, "server.pem"), "utf8") + readFileSync(path.join(certs, "ca.pem"), "utf8"),
    key: readFileSync(path.join(certs, "server.key")),
  }, handler);
  try {
    await listen(plain, 7681);
    await listen(secure, 7682);
    if (process.argv.includes("--serve")) {
      process.stdout.write("demo servers on http://127.0.0.1:7681 and https://127.0.0.1:7682; Ctrl-C to stop\n");
      await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
      return 0;
    }
    let failures = 0;
    for (const step of STEPS) {
      process.stdout.write(`\n== ${step.stream}: ${step.what}\n`);
      const code = await runSim({
        policy, stream: step.stream, metadata: step.metadata, send: step.send,
        log: (line) => process.stdout.write(`           log: ${line}\n`),
      });
      if (code !== step.expect) {
        failures++;
        process.stdout.write(`   !! expected ${step.expect === 0 ? "success" : "failure"}\n`);
      }
    }
    process.stdout.write(`\n${failures ? `${failures} step(s) did not go as expected` : "demo done: every stream behaved as its policy says"}\n`);
    return failures ? 1 : 0;
  } catch (e) {
    process.stderr.write(`demo: ${(e as Error).message}\n`);
    return 1;
  } finally {
    plain.closeAllConnections();
    secure.closeAllConnections();
    plain.close();
    secure.close();
  }
}

process.exitCode = await main();
