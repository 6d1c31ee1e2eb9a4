#!/usr/bin/env node
// ss-proxy: the Secure Streams proxy daemon. It holds the policy and the
// blobs; local apps reach it with SSPC (or lws' own clients) and name a
// streamtype, never an endpoint.

import { rmSync, writeFileSync } from "node:fs";
import { loadPolicy } from "./sim.js";
import { NodeHost } from "./host.js";
import { SsProxy, type ProxyListen } from "./proxy.js";

const USAGE = `usage: ss-proxy --policy <policy.json|policy.ssp> [--unix <path> | --abstract <name>] [--tcp <host:port>]

Serves the policy's streamtypes to Secure Streams clients, one link per stream.

  --unix <path>       listen on a Unix domain socket, created owner-only (0600)
  --abstract <name>   listen on a Linux abstract socket (@name; lws' default is proxy.ss.lws)
  --tcp <host:port>   listen on TCP too (port 0: any; the address is printed)
  --blob-dir <dir>    keep blobs (auth, client_cert.0, ...) as files in this directory
  --pid-file <file>   write the process id here once listening (removed at exit)

At least one of --unix, --abstract, --tcp. Prints "listening <address>" for each.
Onward connections go through the policy's via-socks5, else through the SOCKS5
proxy in the socks_proxy environment variable ([user:pass@]host:port), if set.
Stops on SIGINT or SIGTERM.`;

function fail(message: string): never {
  process.stderr.write(`ss-proxy: ${message}\n${USAGE}\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
let policyFile: string | undefined;
let blobDir: string | undefined;
let pidFile: string | undefined;
const listen: ProxyListen[] = [];
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i]!;
  const value = () => argv[++i] ?? fail(`${arg} needs a value`);
  switch (arg) {
    case "--policy": policyFile = value(); break;
    case "--unix": listen.push({ path: value() }); break;
    case "--abstract": listen.push({ abstract: value() }); break;
    case "--tcp": {
      const v = value();
      const colon = v.lastIndexOf(":");
      const port = Number(v.slice(colon + 1));
      if (colon < 1 || !Number.isInteger(port) || port < 0 || port > 65535) fail(`--tcp takes host:port, got "${v}"`);
      listen.push({ host: v.slice(0, colon), port });
      break;
    }
    case "--blob-dir": blobDir = value(); break;
    case "--pid-file": pidFile = value(); break;
    case "--help": case "-h": process.stdout.write(`${USAGE}\n`); process.exit(0);
    default: fail(`unknown option ${arg}`);
  }
}
if (!policyFile) fail("--policy is required");
if (listen.length === 0) fail("say where to listen: --unix, --abstract or --tcp");

const policy = loadPolicy(policyFile, (line) => process.stderr.write(`${line}\n`));
if (!policy) process.exit(3);
const host = new NodeHost({
  ...(blobDir ? { blobDir } : {}),
  log: (m) => process.stderr.write(`[ss-proxy] ${m}\n`),
  // lws' socks_proxy: onward connections the policy sends no other way go through this SOCKS5 proxy
  socksProxy: process.env.socks_proxy,
});
const proxy = new SsProxy({ policy, host });
try {
  for (const where of listen) process.stdout.write(`listening ${await proxy.listen(where)}\n`);
} catch (e) {
  process.stderr.write(`ss-proxy: cannot listen: ${(e as Error).message}\n`);
  await proxy.close();
  process.exit(1);
}
if (pidFile) writeFileSync(pidFile, `${process.pid}\n`);
const stop = () => void proxy.close().then(() => {
  if (pidFile) rmSync(pidFile, { force: true });
  process.exit(0);
});
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
