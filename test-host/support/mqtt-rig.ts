// Runs Secure Streams with the MQTT binding on the Node host, for the MQTT
// tests and benchmark: a policy for a broker, streams that record their
// states and what they receive, and a wait for a condition.

import { NodeHost } from "../../hosts/node/host.js";
import { SecureStreams } from "../../src/ss/context.js";
import { State, Ret, stateName } from "../../src/ss/states.js";
import { Policy } from "../../src/policy/reader.js";
import { createMqttBinding, type MqttBindingOptions } from "../../src/protocols/mqtt.js";
import { compilePolicy } from "../../tools/policy/compile.js";
import type { SecureStream, StreamHandlers } from "../../src/ss/stream.js";
import type { ConnectOptions, StreamHandlers as HostHandlers, ByteStream } from "../../src/host.js";

export function compileMqttPolicy(port: number, streams: Record<string, object>, extra: { certs?: object[]; trust_stores?: object[] } = {}): Policy {
  const s = Object.entries(streams).map(([name, st]) => ({
    [name]: { endpoint: "127.0.0.1", port, protocol: "mqtt", retry: "quick", ...st },
  }));
  const json = {
    release: "1", product: "mqtt-test", "schema-version": 1,
    retry: [{ quick: { backoff: [100, 200, 300], conceal: 1000, jitterpc: 0 } }],
    ...extra,
    s,
  };
  const r = compilePolicy(JSON.stringify(json));
  if (!r.binary) throw new Error(`test policy: ${JSON.stringify(r.diagnostics)}`);
  return Policy.open(r.binary);
}

/** A NodeHost that counts its connections. */
export class CountingHost extends NodeHost {
  connects = 0;
  override connect(options: ConnectOptions, handlers: HostHandlers): ByteStream {
    this.connects++;
    return super.connect(options, handlers);
  }
}

export interface Recorder {
  readonly stream: SecureStream;
  readonly states: string[];
  readonly rx: Uint8Array[];
  acks: number;
  nacks: number;
}

export class Rig {
  readonly logs: string[] = [];
  readonly host: CountingHost;
  readonly ss: SecureStreams;

  constructor(policy: Policy, binding: MqttBindingOptions = {}, blobs: Record<string, Uint8Array> = {}, responseTimeoutMs?: number) {
    this.host = new CountingHost({ log: (m) => this.logs.push(m) });
    for (const [k, v] of Object.entries(blobs)) this.host.blobs.set(k, v);
    this.ss = new SecureStreams(this.host, policy, { bindings: [createMqttBinding(binding)], strict: true, responseTimeoutMs });
  }

  /** A stream that records; `send` is what onTx gives, one message per requestTx(). */
  open(streamtype: string, o: { send?: () => Uint8Array | undefined; onState?: (state: number, r: Recorder) => void; metadata?: Record<string, string> } = {}): Recorder {
    const r = { states: [] as string[], rx: [] as Uint8Array[], acks: 0, nacks: 0 } as { -readonly [K in keyof Recorder]: Recorder[K] };
    const handlers: StreamHandlers = {
      onState: (state) => {
        r.states.push(stateName(state));
        if (state === State.QOS_ACK_REMOTE) r.acks++;
        if (state === State.QOS_NACK_REMOTE) r.nacks++;
        o.onState?.(state, r);
        return Ret.OK;
      },
      onRx: (payload) => {
        r.rx.push(payload.slice());
        return Ret.OK;
      },
      onTx: () => {
        const p = o.send?.();
        return p ? { payload: p, flags: 3 } : Ret.TX_DONT_SEND;
      },
    };
    r.stream = this.ss.create(streamtype, handlers);
    for (const [k, v] of Object.entries(o.metadata ?? {})) r.stream.setMetadata(k, v);
    return r;
  }

  close(): void {
    this.ss.destroyAll();
  }
}

/** Resolves when `f` holds (polled), rejects after `ms` with `what` and the state of things. */
export async function waitFor(f: () => boolean, what: () => string, ms = 20000): Promise<void> {
  const until = Date.now() + ms;
  while (!f()) {
    if (Date.now() > until) throw new Error(`timed out waiting: ${what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
