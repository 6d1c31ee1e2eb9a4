// The h2 binding against nghttpd (Debian nghttp2-server), an http/2 server
// independent of Node's: GET of files, POST echoed back, many streams on one
// connection, and uploads through nghttpd's small windows. lws' own h2
// client works with nghttpd; ours must too.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { testPki, opensslAvailable, type TestPki } from "./support/pki.js";
import { requirePeer } from "./support/peers.js";
import { compile, runStream, patternBytes } from "./support/run-stream.js";
import { startNghttpd, nghttpdAvailable, type Nghttpd } from "./support/nghttpd.js";
import { NodeHost } from "../hosts/node/host.js";
import { SecureStreams } from "../src/ss/context.js";
import { State, Ret, stateName } from "../src/ss/states.js";
import { createH2Binding } from "../src/protocols/h2.js";
import type { Policy } from "../src/policy/reader.js";
import { base64Encode } from "../src/util/base64.js";

const file = patternBytes(2 * 1024 * 1024, 5);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
let pki: TestPki;
let server: Nghttpd | undefined;
let small: Nghttpd | undefined;
const available = opensslAvailable() && nghttpdAvailable();

before(async () => {
  if (!available) return;
  pki = testPki();
  const files: Record<string, Uint8Array> = { "file.bin": file };
  for (let i = 0; i < 50; i++) files[`f${i}`] = file.subarray(0, 1000 + i * 13);
  server = await startNghttpd(pki.server, files);
  // 2^14-byte stream windows, 2^16 for the connection: a 1 MB upload waits on WINDOW_UPDATEs
  small = await startNghttpd(pki.server, files, ["-w", "14", "-W", "16"]);
});

after(() => {
  server?.stop();
  small?.stop();
});

function guard(t: import("node:test").TestContext): boolean {
  return requirePeer("nghttpd", available, t);
}

function policyFor(port: number): Policy {
  const st = (url: string, extra: object = {}) => ({
    endpoint: "127.0.0.1", port, protocol: "h2", http_method: "GET", http_url: url, tls: true,
    tls_trust_store: "local_test", retry: "default", ...extra,
  });
  return compile({
    retry: [{ default: { backoff: [50, 100, 200], conceal: 2, jitterpc: 10 } }],
    certs: [{ test_ca: base64Encode(pki.ca.certDer) }],
    trust_stores: [{ name: "local_test", stack: ["test_ca"] }],
    s: [
      { get: st("/${f}", { metadata: [{ f: "" }] }) },
      { post: st("/file.bin", { http_method: "POST" }) },
      { missing: st("/nothing-here") },
    ],
  });
}

test("nghttpd: GET of a 2 MB file", async (t) => {
  if (!guard(t)) return;
  const r = await runStream(policyFor(server!.port), "get", {
    bindings: [createH2Binding()], metadata: { f: "file.bin" }, limitMs: 30000,
    until: (s) => s.includes("QOS_ACK_REMOTE") || s.includes("ALL_RETRIES_FAILED"),
  });
  assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"], r.logs.join("\n"));
  assert.equal(r.sha256, sha(file));
});

test("nghttpd: a missing file is QOS_NACK_REMOTE", async (t) => {
  if (!guard(t)) return;
  const r = await runStream(policyFor(server!.port), "missing", {
    bindings: [createH2Binding()], until: (s) => s.includes("QOS_NACK_REMOTE") || s.includes("QOS_ACK_REMOTE"),
  });
  assert.equal(r.states.at(-1), "QOS_NACK_REMOTE");
});

for (const which of ["default windows", "small windows"]) {
  test(`nghttpd (${which}): POST of 1 MB echoed back intact`, async (t) => {
    if (!guard(t)) return;
    const body = patternBytes(1 << 20, 9);
    const r = await runStream(policyFor((which === "small windows" ? small : server)!.port), "post", {
      bindings: [createH2Binding()], send: body, limitMs: 30000,
      until: (s) => s.includes("QOS_ACK_REMOTE") || s.includes("ALL_RETRIES_FAILED"),
    });
    assert.equal(r.states.at(-1), "QOS_ACK_REMOTE", r.logs.join("\n"));
    assert.equal(r.sha256, sha(body));
  });
}

test("nghttpd: 50 streams at once on one connection", async (t) => {
  if (!guard(t)) return;
  const logs: string[] = [];
  let connects = 0;
  const host = new (class extends NodeHost {
    override connect(...a: Parameters<NodeHost["connect"]>) {
      connects++;
      return super.connect(...a);
    }
  })({ log: (m) => logs.push(m) });
  const ss = new SecureStreams(host, policyFor(server!.port), { bindings: [createH2Binding()], strict: true });
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => new Promise<{ states: string[]; hash: string }>((resolve) => {
    const hash = createHash("sha256");
    const states: string[] = [];
    let done = false;
    ss.create("get", {
      onState: (state, _ack, s) => {
        if (done) return Ret.OK; // the test's own destroy() is not part of the record
        states.push(stateName(state));
        if (state === State.CREATING) {
          s.setMetadata("f", `f${i}`);
          return s.requestTx();
        }
        if (state === State.QOS_ACK_REMOTE || state === State.QOS_NACK_REMOTE || state === State.ALL_RETRIES_FAILED) {
          done = true;
          resolve({ states, hash: hash.digest("hex") });
          setImmediate(() => s.destroy());
        }
        return Ret.OK;
      },
      onRx: (p) => {
        hash.update(p);
        return Ret.OK;
      },
    });
  })));
  for (const [i, r] of results.entries()) {
    assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE"], `${i}: ${logs.join("\n")}`);
    assert.equal(r.hash, sha(file.subarray(0, 1000 + i * 13)));
  }
  assert.equal(connects, 1, "one connection");
});
