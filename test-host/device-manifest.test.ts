// What the device runs is preloaded, and nothing preloaded breaks in flash.
//
// The runtime's modules are found the way XS finds them: from the example
// app (hosts/moddable/example) and the Moddable host, import by import, each
// resolved against the importing module's *name* through the manifests'
// module maps, counting only the imports left after TypeScript drops the
// type-only ones. Every module found must be in manifest.json's "modules"
// and "preload" (mcconfig's preload wildcards match .js modules only, so they
// are listed by name), under a name that mirrors its path, and no entry may
// name a module that nothing imports. A module added to src/ and imported by
// the runtime fails here until it is listed.
//
// No RegExp at all in what the device runs (src/, hosts/moddable): in the
// Moddable SDK a preloaded RegExp's exec mallocs match data that a garbage
// collection can take for a chunk, and a RegExp in flash with the g or y
// flag aborts XS (its lastIndex cannot be written); docs/footprint.md.
// mcsim.test.ts checks the rest in the real linker (xsl): no unfrozen
// module-level object, no module variable written at run time.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import ts from "typescript";
import { repoRoot } from "./support/mcsim.js";

interface Manifest {
  readonly modules?: Record<string, string | string[]>;
  readonly preload?: string | string[];
}

const RUNTIME = "xs-secure-streams/";

function readManifest(file: string): Manifest {
  return JSON.parse(readFileSync(path.join(repoRoot, file), "utf8")) as Manifest;
}

/** Module name → source file (absolute, .ts), from a manifest's "modules" (no wildcards in ours). */
function moduleMap(file: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const [name, source] of Object.entries(readManifest(file).modules ?? {})) {
    assert.equal(typeof source, "string", `${file}: "${name}" maps to one file`);
    assert.ok(!name.includes("*"), `${file}: "${name}": list modules by name (preload wildcards match .js modules only)`);
    map.set(name, path.resolve(repoRoot, path.dirname(file), `${source as string}.ts`));
  }
  return map;
}

/** The specifiers a module imports at run time: what is left once TypeScript has dropped type-only imports. */
function runtimeImports(file: string): string[] {
  const js = ts.transpileModule(readFileSync(file, "utf8"), {
    compilerOptions: { module: ts.ModuleKind.Preserve, target: ts.ScriptTarget.ES2022 },
    fileName: file,
  }).outputText;
  return ts.preProcessFile(js, true, true).importedFiles.map((f) => f.fileName);
}

/** XS resolves a relative specifier against the importing module's name, and drops ".js". */
function resolveName(referrer: string, specifier: string): string {
  if (!specifier.startsWith(".")) return specifier;
  return path.posix.join(path.posix.dirname(referrer), specifier).replace(/\.js$/, "");
}

const runtime = moduleMap("manifest.json");
const hostModules = moduleMap("hosts/moddable/manifest.json");
const known = new Map([...runtime, ...hostModules]);
const entries = [
  path.join(repoRoot, "hosts/moddable/example/main.ts"),
  path.join(repoRoot, "hosts/moddable/example/dns-sim.ts"),
  path.join(repoRoot, "hosts/moddable/example/dns-device.ts"),
];

/** Every runtime module the device loads: name → file. */
function reachable(): Map<string, string> {
  const found = new Map<string, string>();
  const visit = (name: string | undefined, file: string) => {
    for (const specifier of runtimeImports(file)) {
      if (name === undefined && specifier.startsWith(".")) continue; // the example's own modules
      const target = resolveName(name ?? "", specifier);
      // Other bare names are the SDK's modules; a relative import always names one of ours.
      if ((!target.startsWith(RUNTIME) && !specifier.startsWith(".")) || found.has(target)) continue;
      const source = known.get(target);
      assert.ok(source, `${path.relative(repoRoot, file)} imports "${specifier}" = module "${target}", which no manifest maps`);
      if (specifier.startsWith(".")) {
        // The same file by path (TypeScript, Node) and by name (XS).
        const byPath = path.resolve(path.dirname(file), specifier.replace(/\.js$/, ".ts"));
        assert.equal(source, byPath, `"${target}" must map to ${path.relative(repoRoot, byPath)}: ` +
          `a module's name mirrors its path, or its relative imports resolve elsewhere on XS`);
      }
      found.set(target, source);
      visit(target, source);
    }
  };
  for (const file of entries) visit(undefined, file);
  return found;
}

test("every runtime module the device imports is in manifest.json's modules and preload, and nothing else is", () => {
  const found = reachable();
  assert.ok(found.has("xs-secure-streams/ss/context") && found.has("xs-secure-streams/protocols/h1"), [...found.keys()].join(", "));
  const preload = new Set([readManifest("manifest.json").preload ?? []].flat());
  const hostPreload = new Set([readManifest("hosts/moddable/manifest.json").preload ?? []].flat());
  for (const [name, file] of found) {
    const listed = runtime.has(name) || hostModules.has(name);
    assert.ok(listed, `${name} (${path.relative(repoRoot, file)}) is not in manifest.json's "modules"`);
    assert.ok(preload.has(name) || hostPreload.has(name), `${name} is not in manifest.json's "preload": it would be loaded into RAM`);
  }
  for (const name of [...runtime.keys(), ...preload]) {
    assert.ok(found.has(name), `manifest.json lists ${name}, which the device never imports`);
  }
});

/** Every .ts file under `dir` (relative to the repository). */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(repoRoot, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(rel));
    else if (entry.name.endsWith(".ts")) out.push(rel);
  }
  return out;
}

/** file:line of each RegExp literal and each use of the name RegExp in `file`. */
function regExpUses(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(path.join(repoRoot, file), "utf8"), ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isRegularExpressionLiteral(node) || (ts.isIdentifier(node) && node.text === "RegExp")) {
      found.push(`${file}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}: ${node.getText()}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

test("no RegExp in src/ or hosts/moddable: the device never runs one", () => {
  const offenders = [...tsFiles("src"), ...tsFiles("hosts/moddable")].flatMap(regExpUses);
  assert.deepEqual(offenders, [], "scan the chars (src/util/chars.ts) instead: on XS a preloaded RegExp's exec mallocs match data the collector can take for a chunk (docs/footprint.md)");
});

test("the RegExp scan finds literals and the RegExp name, not regular-expression look-alikes", () => {
  const file = "test-host/fixtures/regexp-scan.ts";
  assert.deepEqual(regExpUses(file).map((l) => l.slice(file.length + 1)), [
    "3: /[\\r\\n]/",
    "4: /^\\d+$/g",
    "5: RegExp",
    "6: RegExp",
  ]);
});
