// Runs an example against the local server:
//
//   node dist/examples/run.js <example> [its options]
//
// starts the local server on free ports, runs dist/examples/<example>/main.js
// pointed at it (--server, --tls-server), stops the server and exits with the
// example's status. Without an example, it is the local server alone, on the
// ports the policies name (127.0.0.1:7681 http, :7682 https) until ctrl-c, for
// running examples by hand.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startLocalServer, type SeenRequest } from "./common/local-server.js";
import { LOCAL_HTTP_PORT, LOCAL_HTTPS_PORT } from "./common/context.js";

const [example, ...args] = process.argv.slice(2);

function report(r: SeenRequest): void {
  const url = r.url.length > 80 ? `${r.url.slice(0, 80)}... (${r.url.length} characters)` : r.url;
  process.stderr.write(`local server: ${r.secure ? "https" : "http"} connection ${r.connection}: ${r.method} ${url} -> ${r.status}\n`);
}

if (example === undefined) {
  const server = await startLocalServer({ http: LOCAL_HTTP_PORT, https: LOCAL_HTTPS_PORT }, report);
  process.stderr.write(`local server: http on 127.0.0.1:${server.httpPort}, https on 127.0.0.1:${server.httpsPort}; ctrl-c to stop\n`);
  process.on("SIGINT", () => void server.close());
} else {
  const main = path.join(path.dirname(fileURLToPath(import.meta.url)), example, "main.js");
  if (!/^[\w-]+$/.test(example) || !existsSync(main)) {
    process.stderr.write(`run: no example "${example}" (the folders of examples/ are the examples)\n`);
    process.exit(2);
  }
  const server = await startLocalServer({ http: 0, https: 0 }, report);
  const child = spawn(process.execPath,
    [main, ...args, "--server", `127.0.0.1:${server.httpPort}`, "--tls-server", `localhost:${server.httpsPort}`], { stdio: "inherit" });
  child.on("exit", (code, signal) => {
    void server.close().then(() => {
      process.exitCode = code ?? (signal ? 1 : 0);
    });
  });
}
