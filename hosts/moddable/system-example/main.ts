// The boot sequence on the device, with a policy update: blobs in Preference
// (a client certificate over Preference's value limit, split and put back
// together), the system states with the clock held at TIME_VALID until it
// is set, fetch_policy into the file system's policy slots, and a `data`
// stream made before the boot (it keeps the policy it was made with) and one
// made after the update. Run by test-host/mcsim-system.test.ts.
//
// Config (mc/config): dir (policy slots, ending in "/"), domain (Preference
// domain of the blobs), certBytes (size of the test certificate blob),
// clockAfterMs (when the app "sets" the clock).
//
// Trace lines: "sys <what>", ending with "sys done".

import Resource from "Resource";
import Timer from "timer";
import config from "mc/config";
import { ModdableHost, PreferenceBlobStore, BLOB_LIMITS } from "xs-secure-streams/moddable/host";
import { FilePolicyStore } from "xs-secure-streams/moddable/policy-store";
import { Policy } from "xs-secure-streams/policy/reader";
import { createH1Binding } from "xs-secure-streams/protocols/h1";
import { State, Ret, stateName } from "xs-secure-streams/ss/states";
import { startDevice } from "xs-secure-streams/system/boot";
import { systemStateName } from "xs-secure-streams/system/states";
import { Blobs } from "xs-secure-streams/system/blobs";
import { SplitBlobStore } from "xs-secure-streams/system/split-blobs";
import type { SecureStreams } from "xs-secure-streams/ss/context";

const cfg = config as unknown as { dir: string; domain: string; certBytes: number; clockAfterMs: number };
const say = (line: string) => trace(`sys ${line}\n`);

// ---- blobs: one over Preference's limit ----
const store = new SplitBlobStore(new PreferenceBlobStore(cfg.domain), BLOB_LIMITS.valueBytes);
const blobs = new Blobs(store);
const cert = new Uint8Array(cfg.certBytes);
for (let i = 0; i < cert.length; i++) cert[i] = (i * 31 + 7) & 0xff;
const before = blobs.get("client_cert", 1);
say(`blob before ${before ? before.length : "none"}`);
try {
  blobs.set("client_cert", cert, 1);
} catch (e) {
  say(`blob error ${(e as Error).message}`);
  throw e;
}
const back = blobs.get("client_cert", 1)!;
let same = back.length === cert.length;
for (let i = 0; same && i < cert.length; i++) same = back[i] === cert[i];
say(`blob client_cert.1 ${back.length} ${same ? "same" : "DIFFERENT"}`);
blobs.setText("device_serial", "mcsim-0001");
say(`blob device_serial ${blobs.getText("device_serial")}`);

// ---- the boot ----
const host = new ModdableHost({ blobs: store });
// the clock counts as unset until the app sets it (as SNTP would)
let clockSet = false;
const deviceTimeValid = host.timeValid.bind(host);
// defined, not assigned: the host's class is preloaded, its prototype frozen
Object.defineProperty(host, "timeValid", { value: () => clockSet && deviceTimeValid() });
Timer.set(() => {
  clockSet = true;
  say("clock set");
}, cfg.clockAfterMs);

const device = startDevice(host, {
  bindings: [createH1Binding()],
  builtIn: Policy.open(new Resource("policy.dat")),
  store: new FilePolicyStore(cfg.dir),
  onPolicyReport: (r) => {
    say(`policy ${r.outcome}: ${r.message}`);
    if (r.outcome !== "refused" && r.outcome !== "failed") Timer.set(() => data("late", device.ss));
  },
  timePollMs: 100,
});
say(`booted ${String(device.booted.policy.release)} ${device.booted.slot === undefined ? "built-in" : `slot ${device.booted.slot}`}`);
device.system.register("trace", (current, target) => {
  if (current === target) say(`state ${systemStateName(current)}`);
});

let pending = 2;
function data(name: string, ss: SecureStreams): void {
  let body = "";
  ss.create("data", {
    onState(state, _ack, stream) {
      if (state === State.CREATING) return stream.requestTx();
      if (state === State.CONNECTING) say(`${name} connecting`);
      if (state === State.QOS_ACK_REMOTE || state === State.QOS_NACK_REMOTE || state === State.ALL_RETRIES_FAILED) {
        say(`${name} ${stateName(state)} ${body}`);
        if (--pending === 0) say("done");
        return Ret.DESTROY_ME;
      }
      return Ret.OK;
    },
    onRx(payload) {
      for (let i = 0; i < payload.length; i++) body += String.fromCharCode(payload[i]!);
      return Ret.OK;
    },
  });
}

try {
  data("early", device.ss);
  say(`early waits: ${device.ss.waiting}`);
  device.system.boot();
} catch (e) {
  say(`error ${(e as Error).message}`);
  throw e;
}
