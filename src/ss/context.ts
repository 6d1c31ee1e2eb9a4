// The Secure Streams runtime: a host, a policy and the protocol bindings.
// Streams are created here by streamtype name; the policy decides the rest.

import type { Host } from "../host.js";
import type { Policy } from "../policy/reader.js";
import type { ProtocolBinding } from "../protocols/binding.js";
import { SecureStream, type StreamHandlers, type StreamEnvironment } from "./stream.js";
import { SSError } from "./errors.js";

export interface SecureStreamsOptions {
  readonly bindings: readonly ProtocolBinding[];
  /** Throw on an illegal state transition instead of logging it and destroying the stream (tests). */
  readonly strict?: boolean;
}

export class SecureStreams {
  readonly host: Host;
  readonly policy: Policy;
  readonly #bindings = new Map<string, ProtocolBinding>();
  readonly #streams = new Set<SecureStream>();
  readonly #strict: boolean;
  readonly #env: StreamEnvironment;

  constructor(host: Host, policy: Policy, options: SecureStreamsOptions) {
    this.host = host;
    this.policy = policy;
    for (const b of options.bindings) this.#bindings.set(b.name, b);
    this.#strict = options.strict ?? false;
    // One environment for all the streams: nothing in it is per stream, and
    // its object and three closures cost ~35 XS slots (560 bytes on the
    // ESP32) when made for each stream (docs/footprint.md).
    this.#env = {
      host,
      policy,
      binding: (name) => this.#bindings.get(name),
      bug: (message) => {
        this.host.log(`BUG: ${message}`);
        if (this.#strict) throw new Error(message);
      },
      forget: (s) => this.#streams.delete(s),
    };
  }

  /** Creates a stream of a streamtype the policy defines; CREATING is reported before this returns. */
  create(streamtype: string, handlers: StreamHandlers, user?: unknown): SecureStream {
    const st = this.policy.streamtype(streamtype);
    if (!st) throw new SSError("unknown-streamtype", `the policy has no streamtype "${streamtype}"`);
    const stream = new SecureStream(this.#env, st, handlers, user);
    this.#streams.add(stream);
    stream.start();
    return stream;
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
