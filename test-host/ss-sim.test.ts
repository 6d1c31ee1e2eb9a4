// ss-sim as a user runs it: each exit status its usage text documents, against
// real loopback peers (node:http, and a raw net.Server for a response cut off
// mid-body).

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { repoRoot } from "./support/corpus.js";

const simJs = path.join(repoRoot, "dist/hosts/node/ss-sim.js");
const policyCli = path.join(repoRoot, "dist/tools/policy/cli.js");
const tmp = mkdtempSync(path.join(tmpdir(), "ss-sim-"));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

interface Run { status: number | null; signal: string | null; stdout: string; stderr: string }

/** Runs ss-sim without blocking this process (its peers live here). The kill is a guard against a hang, not a time limit under test. */
function sim(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [simJs, ...args], { cwd: tmp, timeout: 60_000, killSignal: "SIGKILL" }, (error, stdout, stderr) => {
      const e = error as (NodeJS.ErrnoException & { code?: number | string; signal?: string }) | null;
      resolve({ status: e ? (typeof e.code === "number" ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

/** A policy file with one h1 GET streamtype "t" to 127.0.0.1:port; `extra` adds streamtype keys. */
function policyFile(name: string, port: number, extra: Record<string, unknown> = {}): string {
  const file = path.join(tmp, name);
  writeFileSync(file, JSON.stringify({
    release: "1", product: "ss-sim-test", "schema-version": 1,
    retry: [{ once: { backoff: [100], conceal: 1, jitterpc: 0 } }],
    s: [{ t: { endpoint: "127.0.0.1", port, protocol: "h1", http_method: "GET", http_url: "/x", retry: "once", ...extra } }],
  }));
  return file;
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)));
}

const lastLine = (text: string): string => text.trimEnd().split("\n").at(-1)!;

test("exit 0 on QOS_ACK_REMOTE, 1 on QOS_NACK_REMOTE", async (t) => {
  const server = http.createServer((req, res) => {
    res.statusCode = req.url === "/x" ? 200 : 404;
    res.end("hello");
  });
  t.after(() => server.close());
  const port = await listen(server);
  const ok = await sim("--policy", policyFile("ok.json", port), "--stream", "t");
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /\] QOS_ACK_REMOTE\n/);
  assert.match(lastLine(ok.stdout), /ok: received 5 bytes, sent 0$/);

  const nack = await sim("--policy", policyFile("nack.json", port, { http_url: "/missing" }), "--stream", "t");
  assert.equal(nack.status, 1, nack.stdout + nack.stderr);
  assert.match(nack.stdout, /\] QOS_NACK_REMOTE\n/);
  assert.match(lastLine(nack.stdout), /failed: received \d+ bytes, sent 0$/);
});

test("a response cut off mid-body ends with a failure and exit 1, never 13 or a hang", async (t) => {
  // A raw server: an http/1.1 head announcing 100 bytes, 10 of them, then FIN.
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    socket.once("data", () => socket.end("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"));
  });
  t.after(() => server.close());
  const port = await listen(server);
  // opportunistic: not retried; otherwise retried until the policy gives up (conceal 1: two connections)
  for (const [name, extra, expected] of [["cut.json", { opportunistic: true }, 1], ["cut-retried.json", {}, 2]] as const) {
    connections = 0;
    const r = await sim("--policy", policyFile(name, port, extra), "--stream", "t");
    assert.equal(r.signal, null, `ss-sim hung\n${r.stdout}`);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /\] ALL_RETRIES_FAILED\n/);
    assert.doesNotMatch(r.stdout, /QOS_ACK_REMOTE/);
    assert.match(lastLine(r.stdout), new RegExp(`failed: received ${10 * expected} bytes, sent 0$`));
    assert.equal(connections, expected);
  }
});

test("a damaged compiled policy: its file name and the reason, exit 3, no usage text", async () => {
  const good = path.join(tmp, "demo.ssp");
  assert.equal(spawnSync(process.execPath, [policyCli, "compile", path.join(repoRoot, "policies/demo.json"), "-o", good]).status, 0);
  const bytes = readFileSync(good);
  const flipped = path.join(tmp, "flipped.ssp");
  const copy = Buffer.from(bytes);
  copy[copy.length - 1]! ^= 1;
  writeFileSync(flipped, copy);
  const truncated = path.join(tmp, "truncated.ssp");
  writeFileSync(truncated, bytes.subarray(0, 100));

  const f = await sim("--policy", flipped, "--stream", "demo_get");
  assert.equal(f.status, 3);
  assert.equal(f.stdout, "");
  assert.match(f.stderr, new RegExp(`^${escape(flipped)}: policy: checksum \\w+ does not match \\w+ \\(bad-checksum\\)\n$`));
  const tr = await sim("--policy", truncated, "--stream", "demo_get");
  assert.equal(tr.status, 3);
  assert.match(tr.stderr, new RegExp(`^${escape(truncated)}: policy: .+ \\((truncated|bad-length)\\)\n$`));
});

test("a policy with errors, or without the streamtype: exit 3", async () => {
  const bad = path.join(tmp, "bad.json");
  writeFileSync(bad, `{"s": [{"t": {"port": "80x"}}]}`);
  const r = await sim("--policy", bad, "--stream", "t");
  assert.equal(r.status, 3);
  assert.equal(r.stderr, `${bad}:1:23: /s/0/t/port: expected an integer 1..65535, got "80x"\n${bad}: 1 error\n`);
  const none = await sim("--policy", path.join(repoRoot, "policies/demo.json"), "--stream", "nope");
  assert.equal(none.status, 3);
  assert.match(none.stderr, /has no streamtype "nope" \(it has demo_get, demo_h2, demo_mqtt, demo_post, demo_tls, demo_untrusted, demo_ws\)\n$/);
});

test("usage errors: exit 2; --help documents every exit status", async () => {
  const demo = path.join(repoRoot, "policies/demo.json");
  for (const args of [[], ["--policy", demo], ["--stream", "demo_get"], ["--policy", demo, "--stream", "demo_get", "--frob"],
    ["--policy", demo, "--stream", "demo_get", "--meta", "novalue"], ["--policy", demo, "--stream", "demo_get", "--duration", "soon"],
    ["--policy"]]) {
    const r = await sim(...args);
    assert.equal(r.status, 2, args.join(" "));
    assert.match(r.stderr, /^ss-sim: .+\nusage: ss-sim /, args.join(" "));
  }
  const missing = await sim("--policy", "no/such.ssp", "--stream", "t");
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /^ss-sim: cannot read no\/such\.ssp: .+\n$/);
  const help = await sim("--help");
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: ss-sim /);
  for (const code of [0, 1, 2, 3]) assert.match(help.stdout, new RegExp(`\\n {2}${code} {2}\\S`), `exit ${code} is documented`);
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
