// fetch_policy: on the way to POLICY_VALID, a policy with a `fetch_policy`
// streamtype downloads its successor, compiled, into the slot not in force
// (streamed: only the header is kept aside). Once whole it is read back in
// place and checked (header, length, CRC, product, schema version and, when
// the policy in force names a signing key, the signature); only then does the
// store switch slots and new streams use it. Streams alive at the switch keep
// the policy they were made from. Unlike lws, a failed download neither
// holds the boot (it goes on with the policy in force after the first
// attempt) nor is final: it is retried with the streamtype's backoff.

import { Policy, PolicyError } from "../policy/reader.js";
import { MAGIC, FORMAT_VERSION, HEADER_SIZE, H_MAGIC, H_VERSION, H_LENGTH, H_SCHEMA_VERSION } from "../policy/format.js";
import type { SecureStreams } from "../ss/context.js";
import type { SecureStream } from "../ss/stream.js";
import { State, RxFlag, Ret, stateName, type HandlerReturn } from "../ss/states.js";
import { decideRetry } from "../ss/retry.js";
import { SystemState } from "./states.js";
import { FETCH_POLICY, type LwsSystem } from "./system.js";
import type { BootedPolicy, PolicyStore, PolicyWriter } from "./policy-store.js";
import { SIGNATURE_TRAILER_SIZE, signatureProblem, signingKeyOf } from "./policy-signature.js";

export type PolicyUpdateOutcome = "updated" | "refused" | "failed" | "gave-up";

export interface PolicyUpdateReport {
  readonly outcome: PolicyUpdateOutcome;
  readonly message: string;
  /** The release of the policy in force after this report. */
  readonly release: string | undefined;
}

export interface PolicyUpdaterOptions {
  readonly store: PolicyStore;
  /** The policy in force and where it came from (bootPolicy()); the SecureStreams context uses it. */
  readonly booted: BootedPolicy;
  /** Largest download taken, signature included (default and at most: the store's slot size). */
  readonly maxBytes?: number;
  readonly onReport?: (report: PolicyUpdateReport) => void;
}

interface Download {
  readonly slot: number;
  readonly writer: PolicyWriter;
  readonly header: Uint8Array;
  received: number;
  /** The policy's length from its header, once the header is in. */
  length: number | undefined;
  complete: boolean;
}

const u32 = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

export class PolicyUpdater {
  readonly #system: LwsSystem;
  readonly #ss: SecureStreams;
  readonly #store: PolicyStore;
  readonly #maxBytes: number;
  readonly #onReport: ((report: PolicyUpdateReport) => void) | undefined;
  #running: BootedPolicy;
  #stream: SecureStream | undefined;
  #download: Download | undefined;
  /** "idle" before POLICY_VALID, "first" while the first attempt runs (the boot waits), "retrying", "done". */
  #phase: "idle" | "first" | "retrying" | "done" = "idle";
  #failures = 0;
  #retryTimer: unknown;
  #last: PolicyUpdateReport | undefined;

  constructor(system: LwsSystem, ss: SecureStreams, options: PolicyUpdaterOptions) {
    this.#system = system;
    this.#ss = ss;
    this.#store = options.store;
    this.#maxBytes = Math.min(options.maxBytes ?? options.store.slotBytes, options.store.slotBytes);
    this.#onReport = options.onReport;
    this.#running = options.booted;
    system.register(FETCH_POLICY, (current, target) => {
      if (current === target || target !== SystemState.POLICY_VALID) return false;
      if (this.#phase === "idle") this.#start();
      return this.#phase === "first";
    });
  }

  /** The policy in force and its slot (undefined: the built-in one). */
  get running(): BootedPolicy { return this.#running; }
  /** The last report, if any. */
  get last(): PolicyUpdateReport | undefined { return this.#last; }

  #start(): void {
    if (!this.#ss.policy.streamtype(FETCH_POLICY)) {
      this.#phase = "done";
      return;
    }
    this.#phase = "first";
    this.#stream = this.#ss.create(FETCH_POLICY, {
      onState: (state, _ack, stream) => this.#onState(state, stream),
      onRx: (payload, flags) => this.#onRx(payload, flags),
    });
  }

  #onState(state: number, stream: SecureStream): HandlerReturn {
    switch (state) {
      case State.CREATING: return stream.requestTx();
      case State.QOS_ACK_REMOTE: {
        const d = this.#download;
        this.#download = undefined;
        if (!d?.complete) return this.#refuse(d, "the server answered without a policy");
        return this.#install(d);
      }
      case State.QOS_NACK_REMOTE: case State.AUTH_FAILED:
        return this.#refuse(this.#take(), `the server refused the request (${stateName(state)})`);
      case State.UNREACHABLE: case State.DISCONNECTED:
        // the stream tries again by itself, with the streamtype's backoff
        if (state === State.DISCONNECTED && !this.#download) return Ret.OK;
        this.#take()?.writer.abort();
        this.#report("failed", state === State.UNREACHABLE ? "the policy server cannot be reached" : "the download was cut off");
        return Ret.OK;
      case State.ALL_RETRIES_FAILED:
        this.#take()?.writer.abort();
        this.#giveUp("the streamtype's retries are used up");
        return Ret.OK;
    }
    return Ret.OK;
  }

  #onRx(payload: Uint8Array, flags: number): HandlerReturn {
    if (this.#phase === "done") return Ret.OK;
    if (flags & RxFlag.SOM) {
      this.#take()?.writer.abort();
      const slot = this.#running.slot === 0 ? 1 : 0;
      this.#download = { slot, writer: this.#store.open(slot), header: new Uint8Array(HEADER_SIZE), received: 0, length: undefined, complete: false };
    }
    const d = this.#download;
    if (!d) return Ret.OK;
    if (d.received < HEADER_SIZE) {
      // the header first: its length says at once whether the rest can be taken
      const part = payload.subarray(0, HEADER_SIZE - d.received);
      d.header.set(part, d.received);
      if (d.received + part.length === HEADER_SIZE) {
        const problem = this.#headerProblem(d);
        if (problem) return this.#refuseNow(problem);
      }
    }
    const total = d.received + payload.length;
    const limit = d.length === undefined ? this.#maxBytes : Math.min(this.#maxBytes, d.length + SIGNATURE_TRAILER_SIZE);
    if (total > limit) {
      const why = d.length !== undefined && total > d.length + SIGNATURE_TRAILER_SIZE
        ? `it runs past its own length (${d.length} bytes, and a signature)`
        : `it is over the ${this.#maxBytes}-byte limit`;
      return this.#refuseNow(`too large: ${why}`);
    }
    d.writer.write(payload);
    d.received = total;
    if (flags & RxFlag.EOM) d.complete = true;
    return Ret.OK;
  }

  /** What is wrong with a downloaded header, checked before the rest is taken. */
  #headerProblem(d: Download): string | undefined {
    const h = d.header;
    if (u32(h, H_MAGIC) !== MAGIC) return "not a compiled policy (bad magic)";
    if (h[H_VERSION] !== FORMAT_VERSION) return `format version ${h[H_VERSION]}, this device reads ${FORMAT_VERSION}`;
    const length = u32(h, H_LENGTH);
    if (length < HEADER_SIZE) return `bad length ${length}`;
    if (length > this.#maxBytes) return `too large: ${length} bytes, over the ${this.#maxBytes}-byte limit`;
    const schema = h[H_SCHEMA_VERSION]!;
    const want = this.#running.policy.schemaVersion ?? 0xff;
    if (schema !== want) return `schema version ${schema === 0xff ? "(none)" : schema}, the policy in force has ${want === 0xff ? "(none)" : want}`;
    d.length = length;
    return undefined;
  }

  /** Checks the stored download in place; switches to it when it is good. */
  #install(d: Download): HandlerReturn {
    d.writer.close();
    const bytes = this.#store.read(d.slot);
    const length = d.length;
    if (!bytes || length === undefined || d.received < length) {
      return this.#refuse(undefined, `truncated: ${d.received} bytes of ${length ?? "a policy of unknown length"}`);
    }
    if (bytes.length < d.received) return this.#refuse(undefined, `the slot holds ${bytes.length} of the ${d.received} bytes written`);
    const download = bytes.subarray(0, d.received);
    const running = this.#running.policy;
    let policy: Policy;
    try {
      policy = Policy.open(download.subarray(0, length)).verify();
      // every streamtype record opens: a policy that cannot be read must not be in force
      for (let i = 0; i < policy.streamtypeCount; i++) void policy.streamtypeAt(i).protocol;
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      return this.#refuse(undefined, `${e.message} (${e.code})`);
    }
    if (policy.product !== running.product) {
      return this.#refuse(undefined, `it is for product ${JSON.stringify(policy.product ?? null)}, this device is ${JSON.stringify(running.product ?? null)}`);
    }
    const key = signingKeyOf(running);
    if (key) {
      const problem = signatureProblem(download, length, key);
      if (problem) return this.#refuse(undefined, `signature: ${problem}`);
    } else if (d.received !== length && d.received !== length + SIGNATURE_TRAILER_SIZE) {
      return this.#refuse(undefined, `${d.received - length} bytes follow the policy`);
    }
    this.#store.activate(d.slot);
    this.#running = { policy, slot: d.slot };
    this.#ss.usePolicy(policy);
    this.#phase = "done";
    this.#report("updated", `policy ${policy.release ?? "(no release)"} is in force from slot ${d.slot}; streams alive keep the one they were made with`);
    this.#finish();
    return Ret.OK;
  }

  #take(): Download | undefined {
    const d = this.#download;
    this.#download = undefined;
    return d;
  }

  /** Refused while it comes in: stop taking it. */
  #refuseNow(message: string): HandlerReturn {
    this.#refuse(this.#take(), message);
    return Ret.DISCONNECT_ME;
  }

  /** A download that will not do: the policy in force stays; tried again after the streamtype's backoff. */
  #refuse(d: Download | undefined, message: string): HandlerReturn {
    d?.writer.abort();
    this.#report("refused", message);
    const retry = this.#ss.policy.streamtype(FETCH_POLICY)?.retry;
    const decision = decideRetry(retry, ++this.#failures, () => this.#system.host.random());
    if (!decision.retry) {
      this.#giveUp("no retries left");
      return Ret.OK;
    }
    this.#phase = "retrying";
    this.#retryTimer = this.#system.host.setTimer(decision.delayMs, () => {
      this.#retryTimer = undefined;
      this.#stream?.requestTx();
    });
    this.#resumeSoon();
    return Ret.OK;
  }

  #giveUp(why: string): void {
    this.#phase = "done";
    this.#report("gave-up", `no new policy: ${why}`);
    this.#finish();
  }

  #finish(): void {
    if (this.#retryTimer !== undefined) this.#system.host.clearTimer(this.#retryTimer);
    this.#retryTimer = undefined;
    const s = this.#stream;
    this.#stream = undefined;
    s?.destroy();
    this.#resumeSoon();
  }

  /**
   * The boot goes on from a timer, not from inside the fetch stream's
   * handler (as lws does): the walk to OPERATIONAL connects every waiting
   * stream, and doing that on top of the fetch's own stack overflows the
   * device's (512 slots).
   */
  #resumeSoon(): void {
    this.#system.host.setTimer(0, () => this.#system.resume());
  }

  #report(outcome: PolicyUpdateOutcome, message: string): void {
    if (this.#phase === "first" && outcome !== "updated") this.#phase = "retrying";
    const release = this.#running.policy.release;
    this.#last = { outcome, message, release };
    const kept = outcome === "updated" ? "" : `; policy ${release ?? "(no release)"} stays in force`;
    this.#system.host.log(`${FETCH_POLICY}: ${outcome}: ${message}${kept}`);
    this.#onReport?.(this.#last);
    // the boot waited for the first attempt only
    this.#resumeSoon();
  }
}
