// nghttpd (Debian nghttp2-server): the second, independent http/2 server of
// the h2 tests. Started on loopback with the tests' certificate (leaf and CA
// chain), serving a directory, echoing uploads; stopped by the test.

import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ServerCredential } from "./pki.js";
import { commandRuns } from "./peers.js";

export const nghttpdAvailable = (): boolean => commandRuns("nghttpd", ["--version"]);

export interface Nghttpd {
  readonly port: number;
  /** The served directory: files put here are served at /name. */
  readonly htdocs: string;
  readonly output: () => string;
  stop(): void;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** Starts nghttpd with `extra` arguments (e.g. ["-w", "14"] for 16 KiB stream windows). */
export async function startNghttpd(cred: ServerCredential, files: Record<string, Uint8Array>, extra: string[] = []): Promise<Nghttpd> {
  const dir = mkdtempSync(path.join(tmpdir(), "nghttpd-"));
  const htdocs = path.join(dir, "htdocs");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(htdocs);
  for (const [name, bytes] of Object.entries(files)) writeFileSync(path.join(htdocs, name), bytes);
  const chain = path.join(dir, "chain.pem");
  writeFileSync(chain, cred.chainPem);
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    let out = "";
    const child: ChildProcess = spawn("nghttpd", ["-a", "127.0.0.1", "-d", htdocs, "--echo-upload", ...extra, String(port), cred.keyFile, chain], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const up = await waitForPort(port, child);
    if (up) return { port, htdocs, output: () => out, stop: () => child.kill() };
    child.kill();
    if (attempt >= 2) throw new Error(`nghttpd did not start: ${out}`);
  }
}

async function waitForPort(port: number, child: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) return false;
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
