// Runs one Secure Stream on the Node host and narrates it: each state by its
// lws name with a timestamp, a summary of payload, received bytes to a file.
// The engine behind the ss-sim command and the demo.

import { sendBytes } from "../../src/ss/send-bytes.js";
import { createWriteStream, readFileSync, type WriteStream } from "node:fs";
import { NodeHost } from "./host.js";
import { startDevice } from "../../src/system/boot.js";
import { FilePolicyStore } from "./policy-store.js";
import { State, RxFlag, Ret, stateName } from "../../src/ss/states.js";
import { Policy, PolicyError } from "../../src/policy/reader.js";
import { createH1Binding } from "../../src/protocols/h1.js";
import { ws } from "../../src/protocols/ws.js";
import { createH2Binding } from "../../src/protocols/h2.js";
import { createMqttBinding } from "../../src/protocols/mqtt.js";
import { compilePolicy } from "../../tools/policy/compile.js";
import { formatDiagnostic } from "../../tools/policy/diagnostics.js";
import { SspcContext } from "../../src/sspc/client.js";
import type { StreamApi, StreamHandlers } from "../../src/ss/stream.js";
import type { ConnectOptions } from "../../src/host.js";

export interface SimOptions {
  /** The compiled policy (not needed with `proxy`: the proxy has it). */
  readonly policy?: Policy;
  /** "[user:pass@]host:port" of a SOCKS5 proxy for every connection (default: the socks_proxy environment variable). */
  readonly socksProxy?: string;
  /** Run the stream through an ss-proxy listening here, instead of in-process. */
  readonly proxy?: ConnectOptions;
  readonly stream: string;
  readonly metadata?: ReadonlyMap<string, string>;
  /** Blob name → bytes, put in the host's blob store first. */
  readonly blobs?: ReadonlyMap<string, Uint8Array>;
  /** Keep blobs as files in this directory (atomic writes), instead of in memory. */
  readonly blobDir?: string;
  /**
   * Keep policy updates in this directory (A/B slots): boot on the one in
   * force, and fetch a new one when the policy has a fetch_policy streamtype.
   */
  readonly policyStore?: string;
  /** Payload to send. */
  readonly send?: Uint8Array;
  /** File for received payload. */
  readonly out?: string;
  /** Keep the stream up this long (ms) instead of ending at the first result. */
  readonly durationMs?: number;
  /** Where the narration goes. */
  readonly print?: (line: string) => void;
  /** Host log lines. */
  readonly log?: (line: string) => void;
}

/**
 * Opens a policy: JSON is compiled, anything else opened as a binary and
 * verified. Errors are printed, each naming `file`; undefined when there are any.
 */
export function openPolicy(file: string, bytes: Uint8Array, print: (line: string) => void): Policy | undefined {
  if (file.endsWith(".json") || bytes[0] === 0x7b /* { */) {
    const result = compilePolicy(new TextDecoder().decode(bytes));
    for (const d of result.diagnostics) print(formatDiagnostic(file, d));
    if (result.binary) return Policy.open(result.binary);
    const errors = result.diagnostics.filter((d) => !d.warning).length;
    print(`${file}: ${errors} error${errors === 1 ? "" : "s"}`);
    return undefined;
  }
  try {
    return Policy.open(bytes).verify();
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    print(`${file}: ${e.message} (${e.code})`);
    return undefined;
  }
}

/** openPolicy() of a file. */
export function loadPolicy(file: string, print: (line: string) => void): Policy | undefined {
  return openPolicy(file, new Uint8Array(readFileSync(file)), print);
}

/**
 * Runs the stream; resolves to the exit status: 0 success, 1 failure. A
 * stream that stops without a result (no connection, retry or timer left, so
 * that Node's event loop empties) is a failure, said so in the narration.
 */
export function runSim(o: SimOptions): Promise<number> {
  const print = o.print ?? ((line) => process.stdout.write(`${line}\n`));
  // lws' socks_proxy: every connection, to servers or to an ss-proxy over TCP, through that SOCKS5 proxy
  const host = new NodeHost({
    log: o.log ?? ((line) => process.stderr.write(`  log: ${line}\n`)),
    blobDir: o.blobDir,
    socksProxy: o.socksProxy ?? process.env.socks_proxy,
  });
  for (const [name, value] of o.blobs ?? []) host.blobs.set(name, value);
  // a ws message has no result state: the first whole message received is the stream's success
  const messages = o.policy?.streamtype(o.stream)?.protocol === "ws";
  const h1 = createH1Binding();
  const started = host.now();
  const stamp = () => `[${((host.now() - started) / 1000).toFixed(3).padStart(7)}s]`;
  // Through an ss-proxy, the proxy holds the policy. In-process, the
  // device's boot: the stream connects once the system is OPERATIONAL.
  const device = o.proxy ? undefined : startDevice(host, {
    bindings: [h1, createH2Binding(), ws, createMqttBinding()],
    builtIn: o.policy!,
    store: o.policyStore === undefined ? undefined : new FilePolicyStore(o.policyStore),
    onPolicyReport: (r) => print(`${stamp()} policy ${r.outcome}: ${r.message}`),
  });
  const ss: { create(streamtype: string, handlers: StreamHandlers<StreamApi>): StreamApi } = device?.ss ?? new SspcContext(host, { proxy: o.proxy! });
  const out: WriteStream | undefined = o.out ? createWriteStream(o.out) : undefined;
  let received = 0;
  let sent = 0;
  const send = sendBytes(o.send ?? new Uint8Array(0));
  let status: number | undefined;
  let last: number | undefined;

  return new Promise((resolve) => {
    let finished = false;
    // 'beforeExit' comes only when nothing at all is pending: without this,
    // Node would end the process with 13 (an await that never settled).
    const idle = () => {
      print(`${stamp()} no result: the stream stopped at ${last === undefined ? "creation" : stateName(last)} with nothing left to wait for`);
      finish(1);
    };
    process.once("beforeExit", idle);
    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      process.off("beforeExit", idle);
      host.setTimer(0, () => {
        stream.destroy();
        h1.closeIdle(); // one stream per run: no connection waits for a next one
        print(`${stamp()} ${code === 0 ? "ok" : "failed"}: received ${received} bytes, sent ${sent}`);
        if (out) out.end(() => resolve(code));
        else resolve(code);
      });
    };
    if (o.durationMs !== undefined) host.setTimer(o.durationMs, () => finish(status ?? 0));

    const stream = ss.create(o.stream, {
      onState: (state, ack) => {
        last = state;
        print(`${stamp()} ${stateName(state)}${ack ? ` (${ack})` : ""}`);
        if (state === State.QOS_ACK_REMOTE) {
          status = 0;
          if (o.durationMs === undefined) finish(0);
        } else if (state === State.QOS_NACK_REMOTE || state === State.ALL_RETRIES_FAILED || state === State.AUTH_FAILED) {
          status = 1;
          if (o.durationMs === undefined) finish(1);
        } else if (state === State.TIMEOUT) {
          status = 1;
          if (o.durationMs === undefined) finish(1);
          return Ret.DISCONNECT_ME;
        } else if (state === State.DISCONNECTED && o.durationMs === undefined && status !== undefined) {
          finish(status);
        } else if (state === State.DESTROYING) {
          // the proxy refused the streamtype (in-process, create() throws instead)
          finish(1);
        } else if (state === State.UPSTREAM_LINK_RETRY && o.durationMs === undefined && ack >= PROXY_PATIENCE_MS) {
          print(`${stamp()} the proxy is not there: gave up after ${ack} ms`);
          finish(1);
        }
        return Ret.OK;
      },
      onRx: (payload, flags) => {
        if (flags & RxFlag.PERF_JSON) {
          print(`${stamp()} perf ${new TextDecoder().decode(payload)}`);
          return Ret.OK;
        }
        received += payload.length;
        out?.write(payload.slice());
        if (flags & (RxFlag.SOM | RxFlag.EOM)) {
          const marks = [flags & RxFlag.SOM ? "SOM" : "", flags & RxFlag.EOM ? "EOM" : ""].filter(Boolean).join("|");
          print(`${stamp()} rx ${payload.length} bytes ${marks}${flags & RxFlag.EOM ? `, ${received} in all` : ""}${preview(payload)}`);
        }
        if (messages && flags & RxFlag.EOM) {
          status = 0;
          if (o.durationMs === undefined) finish(0);
        }
        return Ret.OK;
      },
      onTx: (max) => {
        const piece = send(max);
        sent += piece.payload.length;
        return piece;
      },
    });
    if (stream.destroyed) {
      finish(1);
      return;
    }
    try {
      for (const [k, v] of o.metadata ?? []) stream.setMetadata(k, v);
    } catch (e) {
      print(`${stamp()} ${(e as Error).message}`);
      finish(1);
      return;
    }
    stream.startTimeout();
    if (o.send) stream.requestTxLength(o.send.length);
    else stream.requestTx();
    device?.system.boot();
  });
}

/** Without --duration, how long ss-sim --proxy waits for a proxy that is not there. */
const PROXY_PATIENCE_MS = 10000;

/** The start of a payload when it is text, for the narration. */
function preview(payload: Uint8Array): string {
  if (!payload.length || payload.subarray(0, 60).some((b) => b < 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09)) return "";
  const text = new TextDecoder().decode(payload.subarray(0, 60)).trim();
  return `: ${JSON.stringify(text)}${payload.length > 60 ? "..." : ""}`;
}
