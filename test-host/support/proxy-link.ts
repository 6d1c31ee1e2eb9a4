// An in-process ss-proxy for one test run, and the SSPC context that reaches
// it over a Unix socket or TCP: the app's side of a scenario run "through the
// proxy" (run-stream.ts, ws-run.ts, the proxy protocol tests).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { NodeHost } from "../../hosts/node/host.js";
import { SsProxy } from "../../hosts/node/proxy.js";
import type { Policy } from "../../src/policy/reader.js";
import type { ProtocolBinding } from "../../src/protocols/binding.js";
import type { Host } from "../../src/host.js";
import { SspcContext } from "../../src/sspc/client.js";

export type Via = "unix" | "tcp";

export interface ProxyLinkRig {
  readonly proxy: SsProxy;
  readonly ctx: SspcContext;
  close(): Promise<void>;
}

/**
 * Starts a proxy on `policy` with `host` for its onward connections (and
 * `bindings`, the same instances for every link, when given: a test's binding
 * options reach the proxy's streams), and an SSPC context on `client`.
 */
export async function proxyLink(policy: Policy, host: NodeHost, client: Host, via: Via, o: {
  bindings?: readonly ProtocolBinding[]; responseTimeoutMs?: number; strict?: boolean;
} = {}): Promise<ProxyLinkRig> {
  const bindings = o.bindings;
  const proxy = new SsProxy({
    policy, host, strict: o.strict ?? true, responseTimeoutMs: o.responseTimeoutMs,
    ...(bindings ? { bindings: () => bindings } : {}),
  });
  const dir = via === "unix" ? mkdtempSync(path.join(tmpdir(), "ssp-")) : undefined;
  const where = dir ? await proxy.listen({ path: path.join(dir, "proxy.sock") }) : await proxy.listen({ host: "127.0.0.1", port: 0 });
  const colon = where.lastIndexOf(":");
  const ctx = new SspcContext(client, { proxy: dir ? { host: "localhost", port: 0, path: where } : { host: where.slice(0, colon), port: Number(where.slice(colon + 1)) } });
  return {
    proxy, ctx,
    close: async () => {
      ctx.destroyAll();
      await proxy.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
