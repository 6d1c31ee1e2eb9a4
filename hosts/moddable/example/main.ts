// The example app: boots, opens the compiled policy from flash (a Resource),
// and runs Secure Streams one after the other, tracing every state, the
// payload's length and SHA-256, and perf reports. Without a `streams` config
// it runs the streams of policies/demo.json, as `npm start` does.
//
// Config (mc/config; the manifest's "config", or name=value on mcconfig's
// command line):
// - streams: [{ stream, metadata?, send?, rx? }]: what to run; `send` is a body
//   length (bytes of "a"), sent with its length announced; with `rx`, the
//   stream is done once that many bytes came in as well as its QOS_ACK_REMOTE.
// - dns: DNS servers (IPv4). Without it, the device's DHCP servers; the
//   simulator has none.
//
// Trace lines, one per event, for people and for the simulator tests:
//   ss <stream> state <STATE>
//   ss <stream> perf <json>
//   ss <stream> end <ok|failed> rx <bytes> sha256 <hex>
//   ss done <n> failed

import Resource from "Resource";
import Timer from "timer";
import config from "mc/config";
import { Digest } from "crypt";
import dnsServers from "example/dns-servers";
import { ModdableHost } from "xs-secure-streams/moddable/host";
import { Policy } from "xs-secure-streams/policy/reader";
import { SecureStreams } from "xs-secure-streams/ss/context";
import { State, RxFlag, Ret, stateName } from "xs-secure-streams/ss/states";
import { sendBytes } from "xs-secure-streams/ss/send-bytes";
import { createH1Binding } from "xs-secure-streams/protocols/h1";
import { ws } from "xs-secure-streams/protocols/ws";
import { createH2Binding } from "xs-secure-streams/protocols/h2";
import { createMqttBinding } from "xs-secure-streams/protocols/mqtt";

interface Step {
  readonly stream: string;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly send?: number;
  /** Done only once this many bytes came in too (an MQTT stream subscribed to what it publishes). */
  readonly rx?: number;
}

/** policies/demo.json's streams, as hosts/node/demo.ts runs them. */
const DEMO: readonly Step[] = [
  { stream: "demo_get", metadata: { device: "sim 1" } },
  { stream: "demo_post", send: 65536 },
  { stream: "demo_tls" },
  { stream: "demo_h2", metadata: { device: "sim 1" } },
  { stream: "demo_untrusted" },
  { stream: "demo_ws", send: 64 },
];

const steps: readonly Step[] = config.streams ?? DEMO;
const host = new ModdableHost({ dnsServers: config.dns ?? dnsServers() });
const ss = new SecureStreams(host, Policy.open(new Resource("policy.dat")), { bindings: [createH1Binding(), createH2Binding(), ws, createMqttBinding()] });
let failed = 0;
run(0);

function run(index: number): void {
  const step = steps[index];
  if (step === undefined) {
    trace(`ss done ${failed} failed\n`);
    return;
  }
  const name = step.stream;
  const digest = new Digest("SHA256");
  // a ws message has no result state: the first whole message received is the success (as ss-sim)
  const messages = ss.policy.streamtype(name)?.protocol === "ws";
  let received = 0;
  let acked = false;
  let ended = false;
  // The end of a stream's run: the same rule as ss-sim (hosts/node/sim.ts).
  const end = (ok: boolean) => {
    if (ended) return;
    ended = true;
    if (!ok) failed++;
    // Destroyed on the next turn, not from inside its own handler.
    Timer.set(() => {
      stream.destroy();
      trace(`ss ${name} end ${ok ? "ok" : "failed"} rx ${received} sha256 ${hex(digest.close())}\n`);
      run(index + 1);
    });
  };
  const stream = ss.create(name, {
    onState(state) {
      if (ended) return Ret.OK;
      trace(`ss ${name} state ${stateName(state)}\n`);
      if (state === State.QOS_ACK_REMOTE) {
        acked = true;
        if (received >= (step.rx ?? 0)) end(true);
      }
      else if (state === State.QOS_NACK_REMOTE || state === State.ALL_RETRIES_FAILED || state === State.AUTH_FAILED) end(false);
      else if (state === State.TIMEOUT) {
        end(false);
        return Ret.DISCONNECT_ME;
      }
      return Ret.OK;
    },
    onRx(payload, flags) {
      if (flags & RxFlag.PERF_JSON) {
        trace(`ss ${name} perf ${String.fromArrayBuffer(payload.slice().buffer)}\n`);
        return Ret.OK;
      }
      received += payload.length;
      // Digest.write reads any byte buffer or view; its typings say ArrayBuffer.
      digest.write(payload as unknown as ArrayBuffer);
      if (messages && flags & RxFlag.EOM) end(true);
      if (acked && step.rx !== undefined && received >= step.rx) end(true);
      return Ret.OK;
    },
    onTx: sendBytes(new Uint8Array(step.send ?? 0).fill(0x61)),
  });
  for (const [key, value] of Object.entries(step.metadata ?? {})) stream.setMetadata(key, value);
  stream.startTimeout();
  if (step.send !== undefined) stream.requestTxLength(step.send);
  else stream.requestTx();
}

function hex(bytes: ArrayBuffer): string {
  let out = "";
  for (const b of new Uint8Array(bytes)) out += (b < 16 ? "0" : "") + b.toString(16);
  return out;
}
