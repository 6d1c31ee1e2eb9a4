// A device's start in one call: the policy to boot on (the slot in force or
// the built-in one), the system state machine, the Secure Streams context
// behind its gate, and fetch_policy when there is somewhere to keep updates.

import type { Host } from "../host.js";
import type { Policy } from "../policy/reader.js";
import type { ProtocolBinding } from "../protocols/binding.js";
import { SecureStreams } from "../ss/context.js";
import { LwsSystem } from "./system.js";
import { bootPolicy, type BootedPolicy, type PolicyStore } from "./policy-store.js";
import { PolicyUpdater, type PolicyUpdateReport } from "./policy-update.js";

export interface StartOptions {
  readonly bindings: readonly ProtocolBinding[];
  /** The policy built into the firmware: used when no update is in force, or the one in force is damaged. */
  readonly builtIn: Policy;
  /** Where updates are kept; without it there is no fetch_policy. */
  readonly store?: PolicyStore;
  /** Largest policy download taken (default: the store's slot size). */
  readonly maxPolicyBytes?: number;
  readonly onPolicyReport?: (report: PolicyUpdateReport) => void;
  /** While the clock is not set, look again this often (ms). */
  readonly timePollMs?: number;
}

export interface Device {
  readonly system: LwsSystem;
  readonly ss: SecureStreams;
  /** The policy booted on, and its slot (undefined: built in). */
  readonly booted: BootedPolicy;
  readonly updater: PolicyUpdater | undefined;
}

/** Makes the device's objects; call device.system.boot() to walk it to OPERATIONAL. */
export function startDevice(host: Host, options: StartOptions): Device {
  const booted = bootPolicy(options.store, options.builtIn, (m) => host.log(m));
  host.log(`system: booting on policy ${booted.policy.release ?? "(no release)"} (${booted.slot === undefined ? "built in" : `slot ${booted.slot}`})`);
  const system = new LwsSystem(host, { timePollMs: options.timePollMs });
  const ss = new SecureStreams(host, booted.policy, { bindings: options.bindings, gate: system });
  const updater = options.store
    ? new PolicyUpdater(system, ss, { store: options.store, booted, maxBytes: options.maxPolicyBytes, onReport: options.onPolicyReport })
    : undefined;
  return { system, ss, booted, updater };
}
