// The package as a user installs it: `npm pack`, then an offline install of
// the tarball into an empty folder. Its entry points import and type-check
// (every import the README shows among them), a stream runs through the
// installed API, and both bins work.
//
// Offline: `npm install <tarball>` would ask the registry which ajv versions
// exist, so the folder gets a lockfile instead, pinning the tarball and the
// versions this repository's own lockfile has; `npm ci --offline` then takes
// them from npm's cache, which `npm ci` / `npm install` here filled.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { repoRoot } from "./support/corpus.js";
import { readmeImports } from "./support/readme.js";

const tmp = mkdtempSync(path.join(tmpdir(), "ss-package-"));
test.after(() => rmSync(tmp, { recursive: true, force: true }));
const app = path.join(tmp, "app");

interface Run { status: number | null; stdout: string; stderr: string }

/** Runs a command without blocking this process (a test peer may live here). The kill only guards against a hang. */
function run(file: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: 120_000, killSignal: "SIGKILL", maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = (error as { code?: unknown } | null)?.code;
      resolve({ status: error ? (typeof code === "number" ? code : null) : 0, stdout, stderr });
    });
  });
}

interface LockEntry { version?: string; dependencies?: Record<string, string>; dev?: boolean; [key: string]: unknown }

/** A lockfile for a folder that depends on this package's tarball only: its dependencies as this repository's lockfile has them. */
function offlineLock(dependencies: Record<string, string>): object {
  const ours = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as LockEntry;
  const locked = (JSON.parse(readFileSync(path.join(repoRoot, "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> }).packages;
  const packages: Record<string, LockEntry> = {
    "": { name: "app", dependencies },
    "node_modules/xs-secure-streams": {
      version: ours.version, resolved: dependencies["xs-secure-streams"], license: ours.license,
      dependencies: ours.dependencies, bin: ours.bin, engines: ours.engines,
    },
  };
  const todo = Object.keys(ours.dependencies ?? {});
  for (let name; (name = todo.pop()) !== undefined;) {
    const key = `node_modules/${name}`;
    if (packages[key]) continue;
    const { dev: _, ...entry } = locked[key] ?? assert.fail(`${name} is not in package-lock.json`);
    packages[key] = entry;
    todo.push(...Object.keys(entry.dependencies ?? {}));
  }
  return { name: "app", lockfileVersion: 3, requires: true, packages };
}

const show = (r: Run): string => `exit ${r.status}\n${r.stdout}${r.stderr}`;

/** What a user of the package writes: every entry point, and one stream through the installed API. */
const CONSUMER = `
import http from "node:http";
import { SecureStreams, SecureStream, State, RxFlag, Ret, stateName, sendBytes, Policy, PolicyError, SSError, createH1Binding, type StreamHandlers } from "xs-secure-streams";
import type { Host } from "xs-secure-streams/host";
import { Policy as ReaderPolicy } from "xs-secure-streams/policy/reader";
import { NodeHost, MemoryBlobStore } from "xs-secure-streams/node";
import { compilePolicy, formatDiagnostic, policySchema, policyToJson } from "xs-secure-streams/policy-tools";

if (ReaderPolicy !== Policy) throw new Error("xs-secure-streams/policy/reader is another copy of Policy");
for (const v of [SecureStream, PolicyError, SSError, MemoryBlobStore, policySchema]) if (typeof v !== "function") throw new Error("missing export");

const server = http.createServer((req, res) => {
  let n = 0;
  req.on("data", (d: Uint8Array) => (n += d.length));
  req.on("end", () => res.end(\`got \${n} bytes\`));
});
server.listen(0, "127.0.0.1", () => {
  const port = (server.address() as { port: number }).port;
  const result = compilePolicy(JSON.stringify({ s: [{ up: { endpoint: "127.0.0.1", port, protocol: "h1", http_method: "POST", http_url: "/" } }] }));
  for (const d of result.diagnostics) console.error(formatDiagnostic("policy", d));
  const policy = Policy.open(result.binary!);
  if (policyToJson(policy).s?.length !== 1) throw new Error("policyToJson");
  const host: Host = new NodeHost({ log: (line) => console.error(line) });
  const ss = new SecureStreams(host, policy, { bindings: [createH1Binding()] });
  const body = new TextEncoder().encode("hello");
  let text = "";
  const handlers: StreamHandlers = {
    onState(state) {
      if (state === State.QOS_ACK_REMOTE || state === State.QOS_NACK_REMOTE || state === State.ALL_RETRIES_FAILED) {
        console.log(\`\${stateName(state)} \${text}\`);
        server.close();
      }
      return Ret.OK;
    },
    onRx(payload, flags) {
      if (flags & RxFlag.SOM) text = "";
      text += new TextDecoder().decode(payload);
      return Ret.OK;
    },
    onTx: sendBytes(body),
  };
  const stream = ss.create("up", handlers);
  stream.requestTxLength(body.length);
});
`;

test("npm pack, offline install into an empty folder: imports, types, a stream, both bins", async (t) => {
  // pack what is built (npm test built it; --ignore-scripts: no rebuild under the other tests' feet)
  const pack = await run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", tmp], repoRoot);
  assert.equal(pack.status, 0, show(pack));
  const tarball = path.join(tmp, (JSON.parse(pack.stdout) as { filename: string }[])[0]!.filename);

  mkdirSync(app);
  const dependencies = { "xs-secure-streams": `file:../${path.basename(tarball)}` };
  writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module", dependencies }));
  writeFileSync(path.join(app, "package-lock.json"), JSON.stringify(offlineLock(dependencies)));
  const install = await run("npm", ["ci", "--offline", "--no-audit", "--no-fund"], app);
  assert.equal(install.status, 0, `offline install failed (is ajv in npm's cache? run npm ci here first)\n${show(install)}`);
  const installed = path.join(app, "node_modules/xs-secure-streams");
  const manifest = JSON.parse(readFileSync(path.join(installed, "package.json"), "utf8")) as { version: string };
  t.diagnostic(`installed ${path.basename(tarball)} (version ${manifest.version})`);

  // the consumer, and each import the README shows, compiled by tsc against the installed types, then run
  writeFileSync(path.join(app, "consumer.ts"), CONSUMER);
  const fromReadme = readmeImports().filter((i) => i.includes('"xs-secure-streams'));
  assert.ok(fromReadme.length >= 2, `the README shows imports from the package: ${fromReadme.join("; ")}`);
  fromReadme.forEach((line, i) => {
    const names = /\{([^}]*)\}/.exec(line)![1]!.split(",").map((n) => n.trim().replace(/^type\s+/, "").split(/\s+as\s+/).at(-1)!).filter(Boolean);
    writeFileSync(path.join(app, `readme-${i}.ts`), `${line}\nexport const names = [${names.map((n) => `typeof ${n}`).join(", ")}];\n`);
  });
  const tsc = path.join(repoRoot, "node_modules/typescript/bin/tsc");
  const compiled = await run(process.execPath, [tsc, "--strict", "--target", "es2022", "--module", "nodenext", "--moduleResolution", "nodenext",
    "--skipLibCheck", "false", "--typeRoots", path.join(repoRoot, "node_modules/@types"), "--types", "node", "--outDir", "out",
    "consumer.ts", ...fromReadme.map((_, i) => `readme-${i}.ts`)], app);
  assert.equal(compiled.status, 0, `the installed types do not check:\n${show(compiled)}`);
  const consumer = await run(process.execPath, ["out/consumer.js"], app);
  assert.equal(consumer.status, 0, show(consumer));
  assert.equal(consumer.stdout, "QOS_ACK_REMOTE got 5 bytes\n");
  for (let i = 0; i < fromReadme.length; i++) {
    const r = await run(process.execPath, ["-e", `import(${JSON.stringify(`./out/readme-${i}.js`)}).then((m) => { if (m.names.includes("undefined")) process.exit(1); })`], app);
    assert.equal(r.status, 0, `README import resolves to undefined: ${fromReadme[i]}\n${show(r)}`);
  }

  // the bins
  const bin = (name: string) => path.join(app, "node_modules/.bin", name);
  const compile = await run(bin("ss-policy"), ["compile", path.join(installed, "policies/demo.json"), "-o", "demo.ssp"], app);
  assert.equal(compile.status, 0, show(compile));
  const inspect = await run(bin("ss-policy"), ["inspect", "demo.ssp"], app);
  assert.equal(inspect.status, 0, show(inspect));
  assert.equal((JSON.parse(inspect.stdout) as { product: string }).product, "xs-secure-streams-demo");

  const server = http.createServer((_req, res) => res.end("hi"));
  t.after(() => server.close());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  writeFileSync(path.join(app, "p.json"), JSON.stringify({ s: [{ get: { endpoint: "127.0.0.1", port, protocol: "h1", http_method: "GET", http_url: "/" } }] }));
  const sim = await run(bin("ss-sim"), ["--policy", "p.json", "--stream", "get"], app);
  assert.equal(sim.status, 0, show(sim));
  assert.match(sim.stdout, /\] QOS_ACK_REMOTE\n.*ok: received 2 bytes, sent 0\n$/s);
});
