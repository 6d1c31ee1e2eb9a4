// lws_create_context() for the examples. Each example keeps its policy in
// policy.json beside its main.ts, written for the local server
// (`node dist/examples/run.js`): "localhost" port 7681 is its http
// side, port 7682 its https side (the demo certificate, whose CA the
// policies trust). --server and --tls-server (or SS_EXAMPLE_SERVER and
// SS_EXAMPLE_TLS_SERVER), as host:port, put another server there, as lws'
// policy-local.json.in templates are filled in for its tests.

import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { NodeHost } from "../../hosts/node/host.js";
import { SecureStreams } from "../../src/ss/context.js";
import { Policy } from "../../src/policy/reader.js";
import { createH1Binding } from "../../src/protocols/h1.js";
import { compilePolicy } from "../../tools/policy/compile.js";
import { formatDiagnostic } from "../../tools/policy/diagnostics.js";
import { cmdlineOption } from "./cmdline.js";
import { lwsl, setLogLevel } from "./log.js";

/** The local server's ports, as the example policies name them. */
export const LOCAL_HTTP_PORT = 7681;
export const LOCAL_HTTPS_PORT = 7682;

export interface ExampleContext {
  readonly host: NodeHost;
  readonly ss: SecureStreams;
  /** The C examples' `while (!interrupted) lws_service(context, 0);`. */
  service(interrupted: () => boolean): Promise<void>;
  /** lws_context_destroy(): every stream still there is destroyed (DISCONNECTED, DESTROYING), idle connections closed. */
  destroy(): void;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/**
 * The context for the example whose main module is `mainUrl` (its
 * import.meta.url), or undefined after printing why not (a bad policy, a bad
 * --server). Takes `-d <log bits>` as lws does.
 */
export function createContext(mainUrl: string, argv: readonly string[]): ExampleContext | undefined {
  const d = cmdlineOption(argv, "-d");
  if (d) setLogLevel(Number(d));
  const example = path.basename(path.dirname(fileURLToPath(mainUrl)));
  const file = path.join(root, "examples", example, "policy.json");
  const policy = loadPolicy(file, argv);
  if (!policy) return undefined;
  const host = new NodeHost({ log: (line) => lwsl.notice(line.trimEnd()) });
  const h1 = createH1Binding();
  const ss = new SecureStreams(host, policy, { bindings: [h1] });
  return {
    host,
    ss,
    service: (interrupted) => new Promise((resolve) => {
      const poll = setInterval(() => {
        if (!interrupted()) return;
        clearInterval(poll);
        resolve();
      }, 10);
    }),
    destroy: () => {
      ss.destroyAll();
      h1.closeIdle(); // and the connections kept for a next stream
    },
  };
}

type StreamTypeJson = { endpoint?: string; port?: number };

function loadPolicy(file: string, argv: readonly string[]): Policy | undefined {
  const text = readFileSync(file, "utf8");
  const checked = compilePolicy(text);
  for (const d of checked.diagnostics) lwsl.err(formatDiagnostic(file, d));
  if (!checked.binary) return undefined;
  const http = server(argv, "--server", "SS_EXAMPLE_SERVER");
  const https = server(argv, "--tls-server", "SS_EXAMPLE_TLS_SERVER");
  if (http === null || https === null) return undefined;
  if (!http && !https) return Policy.open(checked.binary);
  const json = JSON.parse(text) as { s?: Record<string, StreamTypeJson>[] };
  for (const entry of json.s ?? []) {
    for (const st of Object.values(entry)) {
      const to = st.port === LOCAL_HTTP_PORT ? http : st.port === LOCAL_HTTPS_PORT ? https : undefined;
      if (!to) continue;
      // an endpoint made of metadata (${servername}) stays the app's to set
      if (st.endpoint === "localhost") st.endpoint = to.host;
      st.port = to.port;
    }
  }
  const moved = compilePolicy(JSON.stringify(json));
  for (const d of moved.diagnostics) lwsl.err(formatDiagnostic(`${file} (with the servers given)`, d));
  return moved.binary && Policy.open(moved.binary);
}

/** host:port from the switch or the environment; undefined if neither, null (after an error) if malformed. */
function server(argv: readonly string[], sw: string, env: string): { host: string; port: number } | undefined | null {
  const given = cmdlineOption(argv, sw) ?? process.env[env];
  if (given === undefined || given === "") return undefined;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:]+)):(\d{1,5})$/.exec(given);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) {
    lwsl.err(`${sw} ${given}: expected host:port`);
    return null;
  }
  return { host: m[1] ?? m[2]!, port };
}
