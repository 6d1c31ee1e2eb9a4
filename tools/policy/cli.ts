#!/usr/bin/env node
// ss-policy: check, compile and inspect Secure Streams policies on the host.

import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { compilePolicy } from "./compile.js";
import { signPolicy, signingKeySpki } from "./sign.js";
import { formatDiagnostic } from "./diagnostics.js";
import { policySchema } from "./schema.js";
import { Policy, PolicyError } from "../../src/policy/reader.js";
import { policyToJson } from "../../src/policy/to-json.js";
import { base64Encode } from "../../src/util/base64.js";

const HELP: Record<string, string> = {
  main: `usage: ss-policy <command> [options]

Commands:
  check <in.json>                 validate a policy; report every error
  compile <in.json> -o <out.ssp> [--sign <key.pem>]
                                  validate and compile to the binary table
  inspect <file.ssp>              verify a compiled policy, print its canonical JSON
  schema                          print the policy's JSON Schema

Run "ss-policy <command> --help" for details. Exit status: 0 ok, 1 invalid input, 2 usage.`,
  check: `usage: ss-policy check <in.json>

Validates a policy against the schema and the semantic rules (forward
references, ${"${metadata}"} names, certificates...). Prints every error as
file:line:col: /json/pointer: message, and warnings the same way.`,
  compile: `usage: ss-policy compile <in.json> -o <out.ssp> [--sign <key.pem>]

Validates like "check", then writes the compiled binary policy (making its
folder if need be) and prints its streamtypes, certificates and sizes.
Nothing is written if there is an error.

--sign appends an Ed25519 signature made with the private key (PKCS#8 PEM,
e.g. "openssl genpkey -algorithm ed25519"): what a device whose policy names
a policy_signing_key cert requires of an update. The key's public half, to
put in that cert, is printed.`,
  inspect: `usage: ss-policy inspect <file.ssp>

Checks a compiled policy (header, every offset, checksum) and prints its
canonical JSON, which compiles back to the same bytes.`,
  schema: `usage: ss-policy schema

Prints the JSON Schema of the policy language (policies/policy.schema.json).`,
};

class UsageError extends Error {}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

/** Compiles, printing diagnostics; undefined when there are errors. */
function compileFile(file: string): ReturnType<typeof compilePolicy> | undefined {
  const result = compilePolicy(readText(file));
  for (const d of result.diagnostics) process.stderr.write(`${formatDiagnostic(file, d)}\n`);
  if (!result.binary) {
    const errors = result.diagnostics.filter((d) => !d.warning).length;
    process.stderr.write(`${file}: ${errors} error${errors === 1 ? "" : "s"}\n`);
    return undefined;
  }
  return result;
}

function check(args: string[]): number {
  const [file] = positional(args, 1, "check");
  const result = compileFile(file!);
  if (!result) return 1;
  process.stdout.write(`${file}: ok, ${result.canonical!.s?.length ?? 0} streamtypes\n`);
  return 0;
}

function compile(args: string[]): number {
  const o = args.indexOf("-o");
  if (o < 0 || !args[o + 1]) throw new UsageError("compile needs -o <out.ssp>");
  const out = args[o + 1]!;
  const s = args.indexOf("--sign");
  if (s >= 0 && !args[s + 1]) throw new UsageError("--sign needs <key.pem>");
  const keyPem = s >= 0 ? readText(args[s + 1]!) : undefined;
  const [file] = positional(args.filter((_, i) => i !== o && i !== o + 1 && (s < 0 || (i !== s && i !== s + 1))), 1, "compile");
  const result = compileFile(file!);
  if (!result) return 1;
  let binary = result.binary!;
  let signed = "";
  if (keyPem !== undefined) {
    try {
      binary = signPolicy(binary, keyPem);
      signed = `  signed       Ed25519; policy_signing_key cert: ${base64Encode(signingKeySpki(keyPem))}\n`;
    } catch (e) {
      process.stderr.write(`${args[s + 1]}: ${(e as Error).message}\n`);
      return 1;
    }
  }
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, binary);
  const p = Policy.open(binary);
  const names = [];
  for (let i = 0; i < p.streamtypeCount; i++) names.push(p.streamtypeAt(i).name);
  const certs = [];
  for (let i = 0; i < p.certCount; i++) certs.push(`${p.cert(i).name} (${p.cert(i).der.length} bytes DER)`);
  const json = JSON.stringify(JSON.parse(readText(file!))).length;
  process.stdout.write(
    `${file} -> ${out}\n` +
    `  streamtypes  ${names.length}: ${names.join(", ")}\n` +
    `  certs        ${certs.length}${certs.length ? `: ${certs.join(", ")}` : ""}\n` +
    `  trust stores ${p.trustStoreCount}, retry policies ${p.retryCount}\n` +
    `  size         ${json} bytes of minified JSON -> ${binary.length} bytes binary (${((100 * binary.length) / json).toFixed(1)}%)\n` +
    signed,
  );
  return 0;
}

function inspect(args: string[]): number {
  const [file] = positional(args, 1, "inspect");
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file!));
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const policy = Policy.open(bytes).verify();
    process.stdout.write(`${JSON.stringify(policyToJson(policy), null, 2)}\n`);
    return 0;
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    process.stderr.write(`${file}: ${e.message} (${e.code})\n`);
    return 1;
  }
}

function positional(args: string[], count: number, command: string): string[] {
  const rest = args.filter((a) => !a.startsWith("-") || a === "-");
  const unknown = args.find((a) => a.startsWith("-") && a !== "-");
  if (unknown) throw new UsageError(`${command}: unknown option ${unknown}`);
  if (rest.length !== count) throw new UsageError(`${command}: expected ${count} file argument${count === 1 ? "" : "s"}`);
  return rest;
}

function main(argv: string[]): number {
  const [command, ...args] = argv;
  if (!command || command === "--help" || command === "-h") {
    process.stdout.write(`${HELP.main}\n`);
    return command ? 0 : 2;
  }
  if (!(command in HELP) || command === "main") {
    process.stderr.write(`ss-policy: unknown command ${JSON.stringify(command)}\n${HELP.main}\n`);
    return 2;
  }
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(`${HELP[command]}\n`);
    return 0;
  }
  try {
    switch (command) {
      case "check": return check(args);
      case "compile": return compile(args);
      case "inspect": return inspect(args);
      default: // schema
        process.stdout.write(`${JSON.stringify(policySchema(), null, 2)}\n`);
        return 0;
    }
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`ss-policy: ${e.message}\n`);
    return 2;
  }
}

process.exitCode = main(process.argv.slice(2));
