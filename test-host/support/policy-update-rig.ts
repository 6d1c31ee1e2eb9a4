// What the policy update tests share: two HTTPS servers (A and B: each
// answers /who with its letter, A also serves the policy download), the
// policies (a boot policy whose `data` streamtype goes to A, an update that
// sends it to B), and a device on the Node host.

import https from "node:https";
import type { AddressInfo } from "node:net";
import { compilePolicy } from "../../tools/policy/compile.js";
import { base64Encode } from "../../src/util/base64.js";
import { Policy } from "../../src/policy/reader.js";
import { NodeHost } from "../../hosts/node/host.js";
import { createH1Binding } from "../../src/protocols/h1.js";
import { startDevice, type Device } from "../../src/system/boot.js";
import type { PolicyStore } from "../../src/system/policy-store.js";
import type { PolicyUpdateReport } from "../../src/system/policy-update.js";
import { State, RxFlag, Ret } from "../../src/ss/states.js";
import type { TestPki } from "./pki.js";

export interface PolicyServers {
  readonly ports: { readonly a: number; readonly b: number };
  /** What GET /policy answers (200 with these bytes). */
  download: Uint8Array;
  /** GET /policy requests so far. */
  fetches: number;
  close(): void;
}

export async function startPolicyServers(pki: TestPki): Promise<PolicyServers> {
  const servers: https.Server[] = [];
  const state = { download: new Uint8Array(0), fetches: 0 };
  const make = async (letter: string): Promise<number> => {
    const server = https.createServer({ cert: pki.server.chainPem, key: pki.server.keyPem }, (req, res) => {
      if (req.url === "/policy") {
        state.fetches++;
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": state.download.length });
        res.end(state.download);
      } else if (req.url === "/who") {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(letter);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    servers.push(server);
    return (server.address() as AddressInfo).port;
  };
  const ports = { a: await make("A"), b: await make("B") };
  return Object.assign(state, {
    ports,
    close: () => {
      for (const s of servers) {
        s.closeAllConnections();
        s.close();
      }
    },
  });
}

export interface PolicyShape {
  readonly release: string;
  /** Port of the `data` streamtype's server. */
  readonly dataPort: number;
  readonly policyPort: number;
  readonly product?: string;
  /** SubjectPublicKeyInfo DER of the key updates must be signed with. */
  readonly signingKey?: Uint8Array;
  /** Extra certs, to make a policy bigger. */
  readonly padding?: number;
}

/** A compiled test policy. */
export function testPolicy(pki: TestPki, shape: PolicyShape): Uint8Array {
  const certs: Record<string, string>[] = [{ test_ca: base64Encode(pki.ca.certDer) }];
  if (shape.signingKey) certs.push({ policy_signing_key: base64Encode(shape.signingKey) });
  for (let i = 0; i < (shape.padding ?? 0); i++) certs.push({ [`pad${i}`]: base64Encode(pki.ca.certDer) });
  const tls = { protocol: "h1", endpoint: "localhost", tls: true, tls_trust_store: "test", http_method: "GET", retry: "quick" };
  const json = {
    release: shape.release,
    product: shape.product ?? "update-test",
    "schema-version": 1,
    retry: [{ quick: { backoff: [100, 200], conceal: 4, jitterpc: 0 } }],
    certs,
    trust_stores: [{ name: "test", stack: ["test_ca"] }],
    s: [
      { fetch_policy: { ...tls, port: shape.policyPort, http_url: "/policy", timeout_ms: 10000 } },
      { data: { ...tls, port: shape.dataPort, http_url: "/who" } },
    ],
  };
  const r = compilePolicy(JSON.stringify(json));
  if (!r.binary) throw new Error(JSON.stringify(r.diagnostics));
  return r.binary;
}

export interface TestDevice extends Device {
  readonly host: NodeHost;
  readonly logs: string[];
  readonly reports: PolicyUpdateReport[];
  /** Resolves when the system is OPERATIONAL and the updater has reported (or has nothing to do). */
  operational(): Promise<void>;
  /** Resolves to the next report not yet returned (reports are queued, none is missed). */
  nextReport(): Promise<PolicyUpdateReport>;
  /** Runs a `data` transaction; resolves to the body ("A" or "B"). */
  fetchData(): Promise<string>;
}

export function testDevice(builtIn: Uint8Array, store: PolicyStore | undefined, maxPolicyBytes?: number): TestDevice {
  const logs: string[] = [];
  const reports: PolicyUpdateReport[] = [];
  let taken = 0;
  const host = new NodeHost({ log: (line) => logs.push(line) });
  const device = startDevice(host, {
    bindings: [createH1Binding()],
    builtIn: Policy.open(builtIn),
    store,
    maxPolicyBytes,
    onPolicyReport: (r) => void reports.push(r),
  });
  const nextReport = async () => {
    await until(() => reports.length > taken);
    return reports[taken++]!;
  };
  return {
    ...device, host, logs, reports, nextReport,
    async operational() {
      await until(() => device.system.stateName === "OPERATIONAL");
    },
    fetchData: () => dataRequest(device),
  };
}

/** Creates a `data` stream now and resolves to its body (it may wait for OPERATIONAL first). */
export function dataRequest(device: Device): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = "";
    device.ss.create("data", {
      onState(state, _ack, stream) {
        if (state === State.CREATING) return stream.requestTx();
        if (state === State.QOS_ACK_REMOTE) {
          resolve(body);
          return Ret.DESTROY_ME;
        }
        if (state === State.QOS_NACK_REMOTE || state === State.ALL_RETRIES_FAILED) reject(new Error(`data: state ${state}`));
        return Ret.OK;
      },
      onRx(payload, flags) {
        body += new TextDecoder().decode(payload, { stream: !(flags & RxFlag.EOM) });
        return Ret.OK;
      },
    });
  });
}

/** Polls `cond` every 10 ms (no wall-clock assertion: the test's own timeout bounds it). */
export async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}
