// Builds device apps with the Moddable SDK's mcconfig for its Linux simulator
// and runs them in mcsim, headless (Xvfb), collecting what they trace(). For
// the simulator tests (mcsim.test.ts) and bench:device.
//
// The SDK comes from MODDABLE, with its Linux tools built (mcconfig, mcsim).
// Builds go to build/mcsim/<app> in the repository, so a second run is
// incremental: a new policy or config relinks in seconds.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { commandRuns } from "./peers.js";

/** This file runs from dist/test-host/support/. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/** How to enable what needs the SDK, for skip messages. */
export const SDK_HINT =
  "the Moddable SDK: set MODDABLE to an SDK whose Linux tools are built (mcconfig, mcsim), with Xvfb installed";

export interface ModdableSdk {
  /** $MODDABLE */
  readonly root: string;
  /** Its host tools: mcconfig, mcsim. */
  readonly bin: string;
}

/** The SDK of MODDABLE, if it is there with its Linux tools built, and Xvfb runs. */
export function moddableSdk(): ModdableSdk | undefined {
  const root = process.env.MODDABLE;
  if (!root) return undefined;
  const bin = path.join(root, "build/bin/lin/release");
  if (!existsSync(path.join(bin, "mcconfig")) || !existsSync(path.join(bin, "mcsim"))) return undefined;
  if (!commandRuns("Xvfb", ["-help"])) return undefined;
  return { root, bin };
}

export interface AppSpec {
  /** The app's name: its build directory is build/mcsim/<name>. */
  readonly name: string;
  /** Module name → path (absolute, without extension), "main" among them. */
  readonly modules: Readonly<Record<string, string>>;
  /** Preloaded modules, beyond the runtime's (manifest.json). */
  readonly preload?: readonly string[];
  /** The compiled policy, as the resource "policy.dat". */
  readonly policy: Uint8Array;
  /** The app's mc/config. */
  readonly config?: object;
  /** An instrumented build (mcconfig -i): XS keeps its stack high-water mark. */
  readonly instrument?: boolean;
  /** XS machine sizes (the manifest's "creation"), over the project's. */
  readonly creation?: object;
  /** More manifests to include (e.g. an SDK module's). */
  readonly include?: readonly string[];
}

export interface BuiltApp {
  /** The mc.so to give mcsim. */
  readonly so: string;
  /** mcconfig's and make's output. */
  readonly log: string;
}

/** Builds the app on the project's manifest.json (the runtime, preloaded, and the Moddable host). */
export async function buildApp(sdk: ModdableSdk, spec: AppSpec): Promise<BuiltApp> {
  const dir = path.join(repoRoot, "build/mcsim", spec.name);
  const out = path.join(dir, "out");
  mkdirSync(out, { recursive: true });
  writeIfChanged(path.join(dir, "policy.dat"), spec.policy);
  const manifest = {
    include: [path.join(repoRoot, "manifest.json"), ...(spec.include ?? [])],
    modules: spec.modules,
    preload: spec.preload ?? [],
    data: { "*": path.join(dir, "policy") },
    config: spec.config ?? {},
    ...(spec.creation ? { creation: spec.creation } : {}),
  };
  writeIfChanged(path.join(dir, "manifest.json"), new TextEncoder().encode(JSON.stringify(manifest, null, 2)));
  const args = ["-m", "-p", "lin", ...(spec.instrument ? ["-i"] : []), "-o", out, path.join(dir, "manifest.json")];
  // mcconfig compiles .ts modules with the first tsc on PATH: the project's.
  const env = {
    ...process.env,
    PATH: [path.join(repoRoot, "node_modules/.bin"), sdk.bin, process.env.PATH].join(path.delimiter),
  };
  const kind = spec.instrument ? "instrument" : "release";
  // Always link again, so that xsl's report on the preloaded modules is in the log.
  rmSync(path.join(out, "tmp/lin/mc", kind, spec.name, "mc.xs.c"), { force: true });
  const { code, output } = await run(path.join(sdk.bin, "mcconfig"), args, { cwd: dir, env });
  const so = path.join(out, "bin/lin/mc", kind, spec.name, "mc.so");
  if (code !== 0 || !existsSync(so)) {
    // tsc writes its output even when the check fails, so that make would
    // take a failed module as built next time: start again from nothing.
    rmSync(out, { recursive: true, force: true });
    throw new Error(`mcconfig ${args.join(" ")} failed (exit ${code}):\n${output.slice(-6000)}`);
  }
  return { so, log: output };
}

/** Writes the file unless it already holds these bytes, so that make sees no change. */
function writeIfChanged(file: string, bytes: Uint8Array): void {
  if (existsSync(file) && Buffer.from(bytes).equals(readFileSync(file))) return;
  writeFileSync(file, bytes);
}

function run(command: string, args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv }):
  Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, output }));
  });
}

export interface McsimRun {
  /** Every line the app traced (and mcsim printed), in order. */
  readonly lines: string[];
}

/**
 * Runs the app in mcsim on a private Xvfb display until `done` accepts a
 * line, then stops both. Fails after `limitMs` with the lines so far.
 */
export async function runInMcsim(sdk: ModdableSdk, so: string, o: { done: (line: string) => boolean; limitMs: number }):
  Promise<McsimRun> {
  const x = await startXvfb();
  const lines: string[] = [];
  let sim: ChildProcess | undefined;
  try {
    // stdbuf: trace() goes to stdout, which is block-buffered into a pipe.
    sim = spawn("stdbuf", ["-oL", path.join(sdk.bin, "mcsim"), so], {
      env: { ...process.env, DISPLAY: `:${x.display}` },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const child = sim;
    await new Promise<void>((resolve, reject) => {
      let partial = "";
      const limit = setTimeout(() => reject(new Error(`mcsim: not done within ${o.limitMs} ms; it traced:\n${lines.join("\n")}`)), o.limitMs);
      const take = (d: Buffer) => {
        partial += d.toString();
        let nl: number;
        while ((nl = partial.indexOf("\n")) >= 0) {
          const line = partial.slice(0, nl);
          partial = partial.slice(nl + 1);
          lines.push(line);
          // XS stops, but mcsim stays up.
          if (line.startsWith("XS abort")) {
            clearTimeout(limit);
            reject(new Error(`mcsim: ${line}; it traced:\n${lines.join("\n")}`));
          }
          if (o.done(line)) {
            clearTimeout(limit);
            resolve();
          }
        }
      };
      child.stdout!.on("data", take);
      child.stderr!.on("data", take);
      child.on("error", (e) => {
        clearTimeout(limit);
        reject(e);
      });
      child.on("exit", (code, signal) => {
        clearTimeout(limit);
        reject(new Error(`mcsim exited (${signal ?? code}) before it was done; it traced:\n${lines.join("\n")}`));
      });
    });
  } finally {
    await stop(sim);
    await stop(x.process);
  }
  return { lines };
}

/** An Xvfb server on the first free display (it picks and reports it: -displayfd). */
async function startXvfb(): Promise<{ process: ChildProcess; display: number }> {
  const xvfb = spawn("Xvfb", ["-displayfd", "3", "-nolisten", "tcp", "-screen", "0", "800x600x24"], {
    stdio: ["ignore", "ignore", "pipe", "pipe"],
  });
  let errors = "";
  xvfb.stderr!.on("data", (d: Buffer) => (errors += d.toString()));
  const display = await new Promise<number>((resolve, reject) => {
    let text = "";
    const fd3 = xvfb.stdio[3] as NodeJS.ReadableStream;
    fd3.on("data", (d: Buffer) => {
      text += d.toString();
      if (text.includes("\n")) resolve(Number(text.trim()));
    });
    xvfb.on("error", reject);
    xvfb.on("exit", (code) => reject(new Error(`Xvfb exited (${code}): ${errors}`)));
  });
  return { process: xvfb, display };
}

/** Ends a child we started, and waits for it. */
async function stop(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const late = setTimeout(() => child.kill("SIGKILL"), 3000);
  await exited;
  clearTimeout(late);
}

/** The trace lines of one stream run by the example app (hosts/moddable/example/main.ts). */
export interface ExampleStreamResult {
  readonly states: string[];
  readonly perf: string[];
  readonly ok: boolean;
  readonly rxBytes: number;
  readonly sha256: string;
}

/** Parses the example app's trace: "ss <stream> state|perf|end ...". */
export function parseExampleTrace(lines: readonly string[]): Map<string, ExampleStreamResult> {
  const results = new Map<string, { states: string[]; perf: string[]; ok: boolean; rxBytes: number; sha256: string }>();
  const of = (name: string) => {
    let r = results.get(name);
    if (r === undefined) results.set(name, (r = { states: [], perf: [], ok: false, rxBytes: -1, sha256: "" }));
    return r;
  };
  for (const line of lines) {
    let m: RegExpExecArray | null;
    if ((m = /^ss (\S+) state (\S+)$/.exec(line))) of(m[1]!).states.push(m[2]!);
    else if ((m = /^ss (\S+) perf (.*)$/.exec(line))) of(m[1]!).perf.push(m[2]!);
    else if ((m = /^ss (\S+) end (ok|failed) rx (\d+) sha256 ([0-9a-f]{64})$/.exec(line))) {
      const r = of(m[1]!);
      r.ok = m[2] === "ok";
      r.rxBytes = Number(m[3]);
      r.sha256 = m[4]!;
    }
  }
  return results;
}
