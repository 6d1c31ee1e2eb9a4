// Child process for the h1 memory test (h1-features.test.ts): downloads one
// body from http://127.0.0.1:<port><path> through SecureStreams + the h1
// binding on the Node host, dropping the payload as it arrives, then prints
// one JSON line with the byte count and the process' peak resident memory.
//
//   node [--expose-gc] dist/test-host/support/h1-rss-child.js <port> <path>
//
// With --expose-gc, a full collection runs after every MiB received, so the
// peak measures what is kept alive, not how long V8 lets garbage (Node's
// 64 KiB socket read buffers, external memory) pile up before collecting it.

import { readFileSync } from "node:fs";
import { NodeHost } from "../../hosts/node/host.js";
import { SecureStreams } from "../../src/ss/context.js";
import { State, Ret, stateName } from "../../src/ss/states.js";
import { createH1Binding } from "../../src/protocols/h1.js";
import { compile } from "./run-stream.js";

const [port, url] = process.argv.slice(2);
if (!port || !url) {
  process.stderr.write("usage: h1-rss-child <port> <path>\n");
  process.exit(2);
}

/** VmHWM from /proc (Linux): the peak resident set, in KiB. */
function vmHwmKb(): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

const policy = compile({
  s: [{ bulk: { endpoint: "127.0.0.1", port: Number(port), protocol: "h1", http_method: "GET", http_url: url } }],
});
const logs: string[] = [];
const host = new NodeHost({ log: (m) => logs.push(m) });
const ss = new SecureStreams(host, policy, { bindings: [createH1Binding()], strict: true });
let rxBytes = 0;
let nextGc = 1 << 20;
const gc = (globalThis as { gc?: () => void }).gc;
const states: string[] = [];
const stream = ss.create("bulk", {
  onRx: (payload) => {
    rxBytes += payload.length;
    if (gc && rxBytes >= nextGc) {
      nextGc += 1 << 20;
      gc();
    }
    return Ret.OK;
  },
  onState: (state) => {
    states.push(stateName(state));
    if (state === State.QOS_ACK_REMOTE || state === State.QOS_NACK_REMOTE || state === State.ALL_RETRIES_FAILED ||
      state === State.UNREACHABLE) {
      const ok = state === State.QOS_ACK_REMOTE;
      process.stdout.write(`${JSON.stringify({ ok, rxBytes, maxRssKb: process.resourceUsage().maxRSS, vmHwmKb: vmHwmKb(), states, logs })}\n`);
      setImmediate(() => {
        stream.destroy();
        process.exit(ok ? 0 : 1);
      });
    }
    return Ret.OK;
  },
});
stream.requestTx();
