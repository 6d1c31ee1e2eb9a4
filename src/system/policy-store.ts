// Where updated policies live: two slots (A/B) and a record of which one is
// in force. A download goes to the slot not in force; only when it is whole
// and checked does the record switch, in one atomic write. A power cut at
// any point leaves the record naming a slot that was whole when it was
// named, so the device always boots on a checked policy (bootPolicy).

import { Policy, PolicyError } from "../policy/reader.js";

/** What a host gives for policy updates (hosts/node/policy-store.ts, the Moddable host's flash). */
export interface PolicyStore {
  /** Most bytes one slot holds. */
  readonly slotBytes: number;
  /** The slot in force (0 or 1), or undefined when none was ever switched to. */
  active(): number | undefined;
  /** A slot's bytes, read in place where the host can (flash); undefined when empty. */
  read(slot: number): Uint8Array | undefined;
  /** Starts writing `slot` afresh. */
  open(slot: number): PolicyWriter;
  /** Makes `slot` the one in force, atomically: after a crash the record names the old slot or the new one. */
  activate(slot: number): void;
}

export interface PolicyWriter {
  /** Appends bytes (the writer may copy them into a block buffer). */
  write(bytes: Uint8Array): void;
  /** Writes out what is buffered and makes it durable. */
  close(): void;
  /** Gives up on this write: the slot's content is garbage until written again. */
  abort(): void;
}

export interface BootedPolicy {
  readonly policy: Policy;
  /** The slot it came from, or undefined for the built-in (firmware) policy. */
  readonly slot: number | undefined;
}

/**
 * The policy to boot on: the slot in force if its policy opens, checks
 * (CRC) and is for the same product as the built-in one; else the built-in
 * policy, saying why in the log.
 */
export function bootPolicy(store: PolicyStore | undefined, builtIn: Policy, log: (message: string) => void): BootedPolicy {
  const slot = store?.active();
  if (store === undefined || slot === undefined) return { policy: builtIn, slot: undefined };
  const bytes = store.read(slot);
  try {
    if (!bytes) throw new PolicyError("truncated", "the slot is empty");
    const policy = Policy.open(bytes).verify();
    if (policy.product !== builtIn.product) throw new PolicyError("bad-record", `it is for product ${String(policy.product)}, not ${String(builtIn.product)}`);
    return { policy, slot };
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    log(`system: the policy in slot ${slot} cannot be used (${e.message}); booting on the built-in policy`);
    return { policy: builtIn, slot: undefined };
  }
}
