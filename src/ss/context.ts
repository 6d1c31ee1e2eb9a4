// The Secure Streams runtime: a host, a policy and the protocol bindings.
// Streams are created here by streamtype name; the policy decides the rest.

import type { Host } from "../host.js";
import type { Policy, StreamType } from "../policy/reader.js";
import type { ProtocolBinding } from "../protocols/binding.js";
import { SecureStream, type StreamHandlers, type StreamEnvironment } from "./stream.js";
import { SSError } from "./errors.js";
import type { ConnectGate } from "../system/system.js";

export interface SecureStreamsOptions {
  readonly bindings: readonly ProtocolBinding[];
  /** Throw on an illegal state transition instead of logging it and destroying the stream (tests). */
  readonly strict?: boolean;
  /**
   * How long a request may wait for the start of its response before the
   * attempt fails (lws' context timeout_secs, PENDING_TIMEOUT_AWAITING_SERVER_RESPONSE).
   */
  readonly responseTimeoutMs?: number;
  /**
   * Asked before each connection (the system state machine, src/system):
   * a stream it refuses waits, and connects when the gate opens.
   */
  readonly gate?: ConnectGate;
}

/** lws' default for its context's timeout_secs. */
export const RESPONSE_TIMEOUT_MS = 15000;

export class SecureStreams {
  readonly host: Host;
  #policy: Policy;
  readonly #bindings = new Map<string, ProtocolBinding>();
  readonly #streams = new Set<SecureStream>();
  /** Streams the gate holds back, with what connects them when it opens. */
  readonly #waiting = new Map<SecureStream, () => void>();
  /**
   * One StreamType per streamtype, shared by its streams: it keeps what was
   * read of the policy, and bindings key what they make once per streamtype
   * on it (h1's request plan, the connect options). Held weakly: the streams
   * hold the map (see SecureStream), and so do the connections a binding
   * keeps for later streams (through their last stream), so it goes, with
   * all those caches, once no stream and no pooled connection is left.
   */
  #types = new WeakRef(new Map<string, StreamType>());
  readonly #strict: boolean;
  readonly #env: StreamEnvironment;
  /** While create() runs: the stream it makes, and the error one of its handlers threw. */
  #creating: { stream: SecureStream; error?: { thrown: unknown } } | undefined;

  constructor(host: Host, policy: Policy, options: SecureStreamsOptions) {
    this.host = host;
    this.#policy = policy;
    for (const b of options.bindings) this.#bindings.set(b.name, b);
    this.#strict = options.strict ?? false;
    const gate = options.gate;
    gate?.subscribe(() => {
      for (const [s, connect] of [...this.#waiting]) {
        if (this.#waiting.get(s) === connect && gate.mayConnect(s.streamtype, this.policy)) {
          this.#waiting.delete(s);
          connect();
        }
      }
    });
    // One environment for all the streams: nothing in it is per stream, and
    // its object and three closures cost ~35 XS slots (560 bytes on the
    // ESP32) when made for each stream (docs/footprint.md).
    this.#env = {
      host,
      responseTimeoutMs: options.responseTimeoutMs ?? RESPONSE_TIMEOUT_MS,
      connectOptions: new WeakMap(),
      binding: (name) => this.#bindings.get(name),
      bug: (message) => {
        this.host.log(`BUG: ${message}`);
        if (this.#strict) throw new Error(message);
      },
      threw: (stream, error) => {
        const e = error as { name?: unknown; message?: unknown } | undefined;
        this.host.log(`${stream.streamtype}: a handler threw ${String(e?.name ?? "")}: ${String(e?.message ?? error)}; the stream is destroyed`);
        if (this.#creating?.stream === stream) this.#creating.error ??= { thrown: error };
      },
      forget: (s) => {
        this.#streams.delete(s);
        this.#waiting.delete(s);
      },
      mayConnect: (s) => !gate || gate.mayConnect(s.streamtype, this.policy),
      wait: (s, connect) => void this.#waiting.set(s, connect),
    };
  }

  /**
   * Creates a stream of a streamtype the policy defines; CREATING is
   * reported before this returns. A handler that throws while create() runs
   * leaves no stream behind: it is destroyed, and create() throws that error.
   */
  create(streamtype: string, handlers: StreamHandlers, user?: unknown): SecureStream {
    let types = this.#types.deref();
    if (!types) this.#types = new WeakRef((types = new Map()));
    let st = types.get(streamtype);
    if (!st && (st = this.policy.streamtype(streamtype))) types.set(streamtype, st);
    if (!st) throw new SSError("unknown-streamtype", `the policy has no streamtype "${streamtype}"`);
    const stream = new SecureStream(this.#env, st, handlers, user, types);
    this.#streams.add(stream);
    const creating: { stream: SecureStream; error?: { thrown: unknown } } = { stream };
    const outer = this.#creating; // a handler may create streams too
    this.#creating = creating;
    try {
      stream.start();
    } finally {
      this.#creating = outer;
    }
    if (creating.error) throw creating.error.thrown;
    return stream;
  }

  /**
   * Makes `policy` the one new streams are created from. Streams alive keep
   * the policy they were made from until they are destroyed.
   */
  usePolicy(policy: Policy): void {
    this.#policy = policy;
    this.#types = new WeakRef(new Map());
  }

  /** The policy new streams are made from; streams keep the one they were made from. */
  get policy(): Policy {
    return this.#policy;
  }

  /** Streams waiting for the gate to let them connect. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** Streams not yet destroyed. */
  get streams(): number {
    return this.#streams.size;
  }

  /** Destroys every stream. */
  destroyAll(): void {
    for (const s of [...this.#streams]) s.destroy();
  }
}
