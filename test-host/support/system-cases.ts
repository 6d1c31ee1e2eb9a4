// Unit cases of the system state machine (src/system) and its gate on the
// streams, on a fake clock with a binding that only records connections.
// Portable: run on Node (test-host/system.test.ts) and on the XS engine,
// which must agree.

import { Policy } from "../../src/policy/reader.js";
import { SecureStreams } from "../../src/ss/context.js";
import { State, stateName } from "../../src/ss/states.js";
import type { ProtocolBinding, StreamLink } from "../../src/protocols/binding.js";
import type { ConnectOptions } from "../../src/host.js";
import { LwsSystem } from "../../src/system/system.js";
import { SystemState, BOOT_ORDER, systemStateName } from "../../src/system/states.js";
import { Blobs, BlobError, BLOB_KINDS } from "../../src/system/blobs.js";
import { SplitBlobStore } from "../../src/system/split-blobs.js";
import type { BlobStore } from "../../src/host.js";
import { FakeHost } from "./fake-host.js";

/** The policy these cases use (compiled by the caller, so XS gets the bytes). */
export const SYSTEM_CASES_POLICY = JSON.stringify({
  auth: [{ name: "lwa", type: "lwa", streamtype: "auth_refresh", blob: 0 }],
  s: [
    { app: { endpoint: "app.example", port: 80, protocol: "h1" } },
    { fetch_policy: { endpoint: "policy.example", port: 80, protocol: "h1" } },
    { auth_refresh: { endpoint: "auth.example", port: 80, protocol: "h1" } },
    { nailed: { endpoint: "nailed.example", port: 80, protocol: "h1", nailed_up: true } },
  ],
});

export interface CaseResult {
  name: string;
  ok: boolean;
  detail: string;
}

function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(message);
}

function same(got: unknown, want: unknown, what: string): void {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`);
}

/** A binding that records where each stream connects, and never answers. */
class RecordBinding implements ProtocolBinding {
  readonly name = "h1" as const;
  readonly opened: string[] = [];
  open(link: StreamLink, connect: ConnectOptions) {
    this.opened.push(`${link.streamtype}@${connect.host}`);
    return { requestTx() {}, close() {} };
  }
}

interface Rig {
  host: FakeHost;
  system: LwsSystem;
  ss: SecureStreams;
  binding: RecordBinding;
  /** Every stream state, as "streamtype:STATE". */
  states: string[];
  create(streamtype: string, how?: "tx" | "connect" | "none"): void;
}

function rig(policy: Uint8Array): Rig {
  const host = new FakeHost();
  const system = new LwsSystem(host);
  const binding = new RecordBinding();
  const ss = new SecureStreams(host, Policy.open(policy), { bindings: [binding], gate: system });
  const states: string[] = [];
  return {
    host, system, ss, binding, states,
    create(streamtype, how = "tx") {
      ss.create(streamtype, {
        onState(state, _ack, stream) {
          states.push(`${streamtype}:${stateName(state)}`);
          if (state === State.CREATING && how === "tx") return stream.requestTx();
          if (state === State.CREATING && how === "connect") return stream.connect();
          return 0;
        },
      });
    },
  };
}

type Case = [string, (policy: Uint8Array) => void];

const CASES: Case[] = [
  ["boot walks every state in lws' order, telling notifiers before and after", (policy) => {
    const r = rig(policy);
    const heard: string[] = [];
    r.system.register("spy", (current, target) => void heard.push(current === target ? `at ${systemStateName(target)}` : `to ${systemStateName(target)}`));
    r.system.boot();
    same(r.system.stateName, "OPERATIONAL", "state");
    const want: string[] = [];
    for (const s of BOOT_ORDER) want.push(`to ${systemStateName(s)}`, `at ${systemStateName(s)}`);
    same(heard, want, "notifications");
    same(BOOT_ORDER.map((s) => s), [1, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15], "lws numbers");
  }],

  ["a notifier holds TIME_VALID until its work is done; streams made early wait, then connect", (policy) => {
    const r = rig(policy);
    let timeSet = false;
    r.system.register("ntp", (current, target) => current !== target && target === SystemState.TIME_VALID && !timeSet);
    r.create("app");
    r.create("nailed", "none");
    r.host.advance(10);
    r.system.boot();
    same(r.system.stateName, "CPD_PRE_TIME", "held before TIME_VALID");
    same(r.system.held, { target: SystemState.TIME_VALID, by: "ntp" }, "held");
    r.host.advance(5000);
    same(r.binding.opened, [], "nothing connects before OPERATIONAL");
    same(r.states, ["app:CREATING", "app:POLL", "nailed:CREATING"], "states while waiting");
    same(r.ss.waiting, 2, "waiting streams");
    timeSet = true;
    r.system.resume();
    same(r.system.stateName, "OPERATIONAL", "state after resume");
    same(r.binding.opened, ["app@app.example", "nailed@nailed.example"], "connected at OPERATIONAL");
    same(r.ss.waiting, 0, "none waits");
    check(r.host.logs.includes("system: TIME_VALID held by ntp"), `the hold is logged: ${r.host.logs.join(" | ")}`);
  }],

  ["the clock notifier holds TIME_VALID until host.timeValid(), checking on a timer", (policy) => {
    const r = rig(policy);
    let valid = false;
    r.host.timeValid = () => valid;
    r.system.boot();
    same(r.system.held?.by, "clock", "held by the clock");
    r.host.advance(3000);
    same(r.system.stateName, "CPD_PRE_TIME", "still held");
    valid = true;
    r.host.advance(1000);
    same(r.system.stateName, "OPERATIONAL", "the poll saw the clock set");
    same(r.host.nextTimer(), undefined, "no timer left");
  }],

  ["fetch_policy connects from CPD_POST_TIME, auth streamtypes from REGISTERED, others at OPERATIONAL", (policy) => {
    const r = rig(policy);
    const at = new Map<number, string[]>();
    let holdAt = 0;
    r.system.register("stop", (current, target) => current !== target && target === holdAt);
    r.create("fetch_policy");
    r.create("auth_refresh");
    r.create("app");
    for (const s of [SystemState.POLICY_VALID, SystemState.AUTH1, SystemState.OPERATIONAL, 99]) {
      holdAt = s;
      r.system.resume();
      if (s === SystemState.POLICY_VALID) r.system.boot();
      at.set(s, [...r.binding.opened]);
    }
    same(at.get(SystemState.POLICY_VALID), ["fetch_policy@policy.example"], "while moving to POLICY_VALID");
    same(at.get(SystemState.AUTH1), ["fetch_policy@policy.example", "auth_refresh@auth.example"], "while moving to AUTH1");
    same(at.get(99), ["fetch_policy@policy.example", "auth_refresh@auth.example", "app@app.example"], "at OPERATIONAL");
  }],

  ["a notifier may resume from inside a transition; one that throws holds it, logged", (policy) => {
    const r = rig(policy);
    let first = true;
    r.system.register("quick", (current, target, system) => {
      if (current !== target && target === SystemState.DHCP && first) {
        first = false;
        system.resume(); // done at once: the walk goes on after this returns
        return true;
      }
      return false;
    });
    r.system.boot();
    same(r.system.stateName, "OPERATIONAL", "resumed from inside");
    const r2 = rig(policy);
    r2.system.register("buggy", (current, target) => {
      if (current !== target && target === SystemState.REGISTERED) throw new TypeError("oops");
    });
    r2.system.boot();
    same(r2.system.stateName, "POLICY_VALID", "held by the throw");
    check(r2.host.logs.some((l) => l.includes("notifier buggy threw oops before REGISTERED")), r2.host.logs.join(" | "));
  }],

  ["POLICY_INVALID closes the gate until boot() reaches OPERATIONAL again", (policy) => {
    const r = rig(policy);
    r.system.boot();
    r.system.invalidatePolicy();
    same(r.system.stateName, "POLICY_INVALID", "state");
    r.create("app");
    same(r.binding.opened, [], "waits");
    r.system.boot();
    same(r.system.stateName, "OPERATIONAL", "back");
    same(r.binding.opened, ["app@app.example"], "connected");
  }],

  ["a stream destroyed while it waits never connects", (policy) => {
    const r = rig(policy);
    const s = r.ss.create("app", { onState: (st, _a, stream) => (st === State.CREATING ? stream.requestTx() : 0) });
    s.destroy();
    r.system.boot();
    same(r.binding.opened, [], "nothing opened");
    same(r.ss.waiting, 0, "forgotten");
  }],

  ["blobs: lws kinds by name and index, size limits, clear errors", () => {
    const host = new FakeHost();
    const blobs = new Blobs(host.blobs);
    blobs.setText("device_serial", "SN-0001");
    same(blobs.getText("device_serial"), "SN-0001", "serial");
    same(host.blobs.get("device_serial")?.length, 7, "stored under the host's name");
    blobs.set("client_cert", new Uint8Array([0x30, 1, 2]), 0);
    same(Array.from(host.blobs.get("client_cert.0") ?? []), [0x30, 1, 2], "client_cert.0");
    blobs.setText("auth", "refresh", 1);
    same(blobs.getText("auth", 1), "refresh", "auth 1");
    same(blobs.get("mqtt_password"), undefined, "absent");
    const refused = (f: () => void): string => {
      try {
        f();
      } catch (e) {
        check(e instanceof BlobError, `a BlobError, not ${String(e)}`);
        return `${e.code}: ${e.message}`;
      }
      throw new Error("not refused");
    };
    same(refused(() => blobs.setText("mqtt_client_id", "x".repeat(BLOB_KINDS.mqtt_client_id.maxBytes + 1))),
      `too-large: blob mqtt_client_id is ${BLOB_KINDS.mqtt_client_id.maxBytes + 1} bytes; at most ${BLOB_KINDS.mqtt_client_id.maxBytes}`, "too large");
    same(refused(() => blobs.get("nonsense" as never)), "unknown-kind: no blob kind \"nonsense\"", "unknown");
    same(refused(() => blobs.set("device_serial", new Uint8Array(1), 1)), "bad-index: blob device_serial has no index 1 (0..0)", "index");
    same(refused(() => blobs.setText("device_type", "a\u0000b")), "bad-text: blob device_type must be text without NUL, CR or LF", "nul");
    blobs.delete("device_serial");
    same(blobs.get("device_serial"), undefined, "deleted");
  }],

  ["split blobs: values over the store's limit in pieces, put back together; the old pieces go; a damaged piece is an error", () => {
    const values = new Map<string, Uint8Array>();
    let powerCut: string | undefined;
    const limited: BlobStore = {
      get: (n) => values.get(n)?.slice(),
      set: (n, v) => {
        if (n === powerCut) throw new Error("power cut");
        check(v.length <= 100, `the store got ${v.length} bytes for ${n}`);
        check(n.length <= 15, `name ${n}`);
        values.set(n, v.slice());
      },
      delete: (n) => void values.delete(n),
    };
    const store = new SplitBlobStore(limited, 100);
    const big = new Uint8Array(250).map((_, i) => i * 7);
    store.set("client_cert.0", big);
    same([...values.keys()].sort(), ["client_cert.0", "client_cert.0-0", "client_cert.0-1", "client_cert.0-2"], "pieces");
    same(Array.from(store.get("client_cert.0")!), Array.from(big), "reassembled");
    const bigger = new Uint8Array(150).fill(9);
    store.set("client_cert.0", bigger);
    same([...values.keys()].sort(), ["client_cert.0", "client_cert.0_0", "client_cert.0_1"], "the other generation; the old pieces gone");
    same(Array.from(store.get("client_cert.0")!), Array.from(bigger), "second value");
    store.set("client_cert.0", new Uint8Array([1, 2, 3]));
    same([...values.keys()], ["client_cert.0"], "small again: one value");
    const magic = new Uint8Array([0x53, 0x53, 0x70, 0x63, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    store.set("auth", magic);
    same(Array.from(store.get("auth")!), Array.from(magic), "a value that looks like a head");
    store.set("client_cert.0", big);
    values.get("client_cert.0-1")![3]! ^= 1;
    let error = "";
    try {
      store.get("client_cert.0");
    } catch (e) {
      error = (e as Error).message;
    }
    same(error, "blob client_cert.0: its pieces do not add up to what its head says (damaged store)", "damaged");
    store.delete("client_cert.0");
    same([...values.keys()].sort(), ["auth", "auth-0"], "deleted with its pieces");
    // power lost after the new pieces, before the head: the old value is still whole
    store.set("auth", big);
    powerCut = "auth";
    let cut = false;
    try {
      store.set("auth", bigger);
    } catch {
      cut = true;
    }
    powerCut = undefined;
    check(cut, "the cut happened");
    same(Array.from(store.get("auth")!), Array.from(big), "the old value after a cut before the head");
  }],
];

export function runSystemCases(policy: Uint8Array): CaseResult[] {
  return CASES.map(([name, f]) => {
    try {
      f(policy);
      return { name, ok: true, detail: "" };
    } catch (e) {
      return { name, ok: false, detail: String((e as Error)?.message ?? e) };
    }
  });
}
