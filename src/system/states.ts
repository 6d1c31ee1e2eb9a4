// lws_system's states, with lws' numbers so that logs read the same. The
// boot walks the ones in BOOT_ORDER; lws' optional states (PRE_PRIV_DROP,
// COLLECTING_STDIN, ONE_TIME_UPDATES) keep their numbers but are not visited.

export const SystemState = {
  UNKNOWN: 0,
  CONTEXT_CREATED: 1,
  PRE_PRIV_DROP: 2,
  INITIALIZED: 3,
  COLLECTING_STDIN: 4,
  IFACE_COLDPLUG: 5,
  DHCP: 6,
  CPD_PRE_TIME: 7,
  TIME_VALID: 8,
  CPD_POST_TIME: 9,
  POLICY_VALID: 10,
  REGISTERED: 11,
  AUTH1: 12,
  AUTH2: 13,
  ONE_TIME_UPDATES: 14,
  OPERATIONAL: 15,
  POLICY_INVALID: 16,
} as const;

const S = SystemState;

/** The states a boot goes through, in order. */
export const BOOT_ORDER: readonly number[] = [
  S.CONTEXT_CREATED, S.INITIALIZED, S.IFACE_COLDPLUG, S.DHCP, S.CPD_PRE_TIME, S.TIME_VALID,
  S.CPD_POST_TIME, S.POLICY_VALID, S.REGISTERED, S.AUTH1, S.AUTH2, S.OPERATIONAL,
];

const NAMES: readonly string[] = [
  "UNKNOWN", "CONTEXT_CREATED", "PRE_PRIV_DROP", "INITIALIZED", "COLLECTING_STDIN", "IFACE_COLDPLUG", "DHCP",
  "CPD_PRE_TIME", "TIME_VALID", "CPD_POST_TIME", "POLICY_VALID", "REGISTERED", "AUTH1", "AUTH2",
  "ONE_TIME_UPDATES", "OPERATIONAL", "POLICY_INVALID",
];

export function systemStateName(state: number): string {
  return NAMES[state] ?? `SYSTEM_STATE_${state}`;
}

// Frozen for the device, where these tables are preloaded into flash.
for (const table of [SystemState, BOOT_ORDER, NAMES]) Object.freeze(table);
