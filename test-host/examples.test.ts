// The ports of lws' minimal Secure Streams examples (examples/), each run as a
// reader runs it: `node dist/examples/<name>/main.js`, a process of its own,
// against the local server (http and https with the demo certificate) on
// ports of this test's own. What is checked: the exit status the C original
// would give, the lines it prints, and what the server saw.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { repoRoot } from "./support/corpus.js";
import { startLocalServer, DEVICE_TOKEN, BLOB_SIZE, type LocalServer, type SeenRequest } from "../examples/common/local-server.js";

let server: LocalServer;
test.before(async () => {
  server = await startLocalServer({ http: 0, https: 0 });
});
test.after(() => server.close());

interface Run {
  readonly status: number | null;
  readonly stderr: string;
  /** The requests the server saw during the run. */
  readonly seen: SeenRequest[];
  /** The app's myss_state lines, as state names. */
  readonly states: string[];
}

/** Runs an example pointed at the local server (by its options, or by the environment with `viaEnv`). */
function run(example: string, args: string[] = [], viaEnv = false): Promise<Run> {
  const servers = { http: `127.0.0.1:${server.httpPort}`, https: `localhost:${server.httpsPort}` };
  const from = server.seen.length;
  const argv = viaEnv ? args : [...args, "--server", servers.http, "--tls-server", servers.https];
  const env = viaEnv ? { ...process.env, SS_EXAMPLE_SERVER: servers.http, SS_EXAMPLE_TLS_SERVER: servers.https } : process.env;
  const main = path.join(repoRoot, "dist/examples", example, "main.js");
  return new Promise((resolve) => {
    execFile(process.execPath, [main, ...argv], { env, timeout: 30000 }, (error, _stdout, stderr) => {
      const status = error ? (typeof error.code === "number" ? error.code : null) : 0;
      const states = [...stderr.matchAll(/ U: myss_state: ([A-Z_]+)/g)].map((m) => m[1]!);
      resolve({ status, stderr, seen: server.seen.slice(from), states });
    });
  });
}

function check(r: Run, status: number): void {
  assert.equal(r.status, status, `exit status ${r.status}, expected ${status}; the example printed:\n${r.stderr}`);
}

test("minimal-secure-streams: a GET over TLS, with metadata and system blobs as headers, response headers into metadata", async () => {
  const r = await run("minimal-secure-streams");
  check(r, 0);
  assert.deepEqual(r.states, ["CREATING", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE", "DISCONNECTED", "DESTROYING"]);
  assert.match(r.stderr, /U: myss_rx: len \d+, flags: 1, srv: xs-ss-example-server, test: hello-from-local-server\n/);
  assert.match(r.stderr, /U: myss_rx: len 0, flags: 2, /);
  assert.match(r.stderr, /U: Completed: OK \(seen expected 0\)\n$/);
  assert.equal(r.seen.length, 1);
  const [get] = r.seen;
  assert.equal(get!.secure, true);
  assert.equal(`${get!.method} ${get!.url}`, "GET /index.html?uptag=myuptag123");
  const h = get!.headers;
  assert.deepEqual([h["x-upload-tag"], h["content-type"], h["x-dsn"], h["x-fw-version"], h["x-devtype"]],
    ["myuptag123", "myctype", "SN12345678", "v0.01", "spacerocket"]);
});

test("minimal-secure-streams-post: the multipart body in pieces from myss_tx, with its length announced", async () => {
  const r = await run("minimal-secure-streams-post");
  check(r, 0);
  assert.match(r.stderr, /N: myss_tx: write 4096 flags 1\n.*N: myss_tx: write 1598 flags 2\n/s);
  assert.match(r.stderr, /U: Completed: OK\n$/);
  const post = r.seen[0]!;
  assert.equal(`${post.method} ${post.url}`, "POST /testserver/formtest");
  assert.equal(post.headers["content-type"], "multipart/form-data;boundary=\"boundary\"");
  assert.equal(post.headers["content-length"], "5694");
  assert.equal(post.headers["transfer-encoding"], undefined);
  const body = post.body.toString("latin1");
  assert.equal(body.length, 5694);
  assert.match(body, /^--boundary\r\nContent-Disposition: form-data; name="text"\r\n\r\nvalue1\r\n--boundary\r\n/);
  assert.match(body, /filename="example.txt"\r\n\r\nvalue2\r\n00-0123456789abcdef/);
  assert.match(body, /\r\n4f-(0123456789abcdef){4}\r\n--boundary--\r\n$/);
});

test("minimal-secure-streams-post: the POST goes once (requestTxLength() in CREATING, requestTx() again in CONNECTED)", async () => {
  const r = await run("minimal-secure-streams-post");
  check(r, 0);
  assert.equal(r.seen.filter((s) => s.method === "POST").length, 1);
});

test("minimal-secure-streams-metadata: the endpoint is the servername metadata, and TLS checks that name", async () => {
  for (const name of ["localhost", "127.0.0.1"]) {
    const r = await run("minimal-secure-streams-metadata", ["-u", name]);
    check(r, 0);
    assert.match(r.stderr, new RegExp(`N: myss_state: CREATING: setting servername metadata to ${name.replace(/\./g, "\\.")}\n`));
    assert.equal(r.seen.length, 1);
    assert.equal(r.seen[0]!.headers.host, `${name}:${server.httpsPort}`);
  }
  // metadata may name a host, never a path
  const r = await run("minimal-secure-streams-metadata", ["-u", "localhost/x"]);
  check(r, 1);
  assert.match(r.stderr, /E: myss_state: mintest: metadata "servername" is used in the endpoint and holds more than host name characters/);
  assert.deepEqual(r.states, ["CREATING", "DESTROYING"]);
  assert.equal(r.seen.length, 0);
});

test("minimal-secure-streams-hugeurl: 4000 characters of URL argument go out and come back whole", async () => {
  const r = await run("minimal-secure-streams-hugeurl");
  check(r, 0);
  assert.match(r.stderr, /U: myss_rx: return hugeurl len 4000 matches OK\n/);
  assert.equal(r.seen.length, 1);
  assert.match(r.seen[0]!.url, /^\/urlarg\/\?x=[0-9a-f]{4000}$/);

  const tooBig = await run("minimal-secure-streams-hugeurl", ["-h", "5000"]);
  check(tooBig, 1);
  assert.match(tooBig.stderr, /E: main: -h should be between 1 and 4096\n/);
});

test("minimal-secure-streams-blob: 50 MiB hashed as it streams in, fetched with the auth blob as bearer token", async () => {
  const r = await run("minimal-secure-streams-blob", ["--blob"]);
  check(r, 0);
  assert.match(r.stderr, new RegExp(`U: myss_rx: SHA256 match \\(${BLOB_SIZE} bytes\\)\n`));
  assert.match(r.stderr, /U: Completed: OK \(seen expected 0\)\n$/);
  assert.equal(r.seen.length, 1);
  assert.equal(`${r.seen[0]!.method} ${r.seen[0]!.url} ${r.seen[0]!.status}`, "GET /blob 200");
  assert.equal(r.seen[0]!.headers.authorization, `Bearer ${DEVICE_TOKEN}`);
});

test("minimal-secure-streams-seq: the sequencer drives a GET to success", async () => {
  const r = await run("minimal-secure-streams-seq");
  check(r, 0);
  assert.match(r.stderr, /N: min_sec_str_sequencer_cb: LWSSEQ_CREATED\n/);
  assert.match(r.stderr, /N: min_sec_str_sequencer_cb: LWSSEQ_DESTROYED\n.*U: Completed: OK\n$/s);
  assert.deepEqual(r.states, ["CREATING", "POLL", "CONNECTING", "CONNECTED", "QOS_ACK_REMOTE", "DISCONNECTED", "DESTROYING"]);
  assert.deepEqual(r.seen.map((s) => `${s.method} ${s.url}`), ["GET /index.html"]);
});

test("minimal-secure-streams-seq -f: the wrong endpoint, retried with backoff until the retry policy gives up", async () => {
  const r = await run("minimal-secure-streams-seq", ["-f"]);
  check(r, 1);
  // conceal 3: four attempts, each failing in TLS against the plain http port
  const attempt = ["CONNECTING", "UNREACHABLE"];
  assert.deepEqual(r.states, ["CREATING", "POLL", ...attempt, ...attempt, ...attempt, ...attempt, "ALL_RETRIES_FAILED", "DESTROYING"]);
  assert.equal(r.stderr.match(/N: mintest-fail: tls: /g)?.length, 4);
  assert.match(r.stderr, /U: Completed: failed\n$/);
  assert.equal(r.seen.length, 0);
});

test("minimal-secure-streams-client-tx: N messages, one POST each, in order on one kept-alive connection", async () => {
  const n = 10;
  const r = await run("minimal-secure-streams-client-tx", ["-c", String(n)], true);
  check(r, 0);
  const sent = [...r.stderr.matchAll(/U: myss_tx: sending pkt (\d+) \(([0-9a-f]{16})\.\.\.\)/g)];
  assert.deepEqual(sent.map((m) => Number(m[1])), Array.from({ length: n }, (_, i) => i + 1));
  assert.equal(r.seen.length, n);
  assert.ok(r.seen.every((s) => s.method === "POST" && s.url === "/spam" && !s.secure && s.body.length === 80));
  assert.deepEqual(r.seen.map((s) => s.body.subarray(0, 8).toString("hex")), sent.map((m) => m[2]));
  assert.equal(new Set(r.seen.map((s) => s.connection)).size, 1, "one connection for all of them");
  assert.match(r.stderr, /U: Completed: OK\n$/);
});

test("run.js: the local server, an example against it, and the example's exit status", async () => {
  const runner = path.join(repoRoot, "dist/examples/run.js");
  const go = (...args: string[]) => new Promise<{ status: number | null; stderr: string }>((resolve) => {
    execFile(process.execPath, [runner, ...args], { timeout: 30000 }, (error, _stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === "number" ? error.code : null) : 0, stderr });
    });
  });
  const ok = await go("minimal-secure-streams-hugeurl", "-h", "50");
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stderr, /U: myss_rx: return hugeurl len 50 matches OK\n/);
  assert.match(ok.stderr, /local server: https connection 1: GET \/urlarg\/\?x=[0-9a-f]{50} -> 200\n/);
  const none = await go("no-such-example");
  assert.equal(none.status, 2);
  assert.match(none.stderr, /run: no example "no-such-example"/);
});
