// Secure Streams states, rx flags and handler return codes, with lws' names
// and numbers, and the table of legal state transitions (docs/states.md).

export const State = {
  CREATING: 1,
  DISCONNECTED: 2,
  UNREACHABLE: 3,
  AUTH_FAILED: 4,
  CONNECTED: 5,
  CONNECTING: 6,
  DESTROYING: 7,
  POLL: 8,
  ALL_RETRIES_FAILED: 9,
  QOS_ACK_REMOTE: 10,
  QOS_NACK_REMOTE: 11,
  QOS_ACK_LOCAL: 12,
  QOS_NACK_LOCAL: 13,
  TIMEOUT: 14,
  SERVER_TXN: 15,
  SERVER_UPGRADE: 16,
  EVENT_WAIT_CANCELLED: 17,
  UPSTREAM_LINK_RETRY: 18,
  SINK_JOIN: 19,
  SINK_PART: 20,
  /** Application-defined states (e.g. from http_resp_map) start here. */
  USER_BASE: 1000,
} as const;

const NAMES: readonly string[] = (() => {
  const out: string[] = [];
  for (const [name, n] of Object.entries(State)) if (n < State.USER_BASE) out[n] = name;
  return out;
})();

/** lws' name of a state ("QOS_ACK_REMOTE"), or "USER_BASE+n" for user states. */
export function stateName(state: number): string {
  if (state >= State.USER_BASE) return `USER_BASE+${state - State.USER_BASE}`;
  return NAMES[state] ?? `UNKNOWN(${state})`;
}

/** Flags on received payload. */
export const RxFlag = {
  SOM: 1,
  EOM: 2,
  POLL: 4,
  RELATED_START: 8,
  RELATED_END: 16,
  RIDESHARE: 32,
  PERF_JSON: 64,
} as const;

/** What handlers return. */
export const Ret = {
  OK: 0,
  /** From onTx: send nothing this time. */
  TX_DONT_SEND: 1,
  /** Close the connection (the stream stays). */
  DISCONNECT_ME: -1,
  /** Destroy the stream. */
  DESTROY_ME: -2,
} as const;

export type HandlerReturn = (typeof Ret)[keyof typeof Ret];

const S = State;

/**
 * Legal next states for each state (index: the last state; 0 is "none yet").
 * This is lws' direct table (secure-streams.c) with its gaps fixed; see
 * docs/states.md for the differences.
 */
const NEXT: readonly (readonly number[])[] = [
  /* none */ [S.CREATING, S.DESTROYING],
  /* CREATING */ [S.CONNECTING, S.TIMEOUT, S.POLL, S.SERVER_UPGRADE, S.DESTROYING],
  /* DISCONNECTED */ [S.CONNECTING, S.CONNECTED, S.TIMEOUT, S.POLL, S.DESTROYING, S.UNREACHABLE, S.ALL_RETRIES_FAILED],
  /* UNREACHABLE */ [S.ALL_RETRIES_FAILED, S.TIMEOUT, S.POLL, S.UNREACHABLE, S.CONNECTING, S.CONNECTED, S.DESTROYING],
  /* AUTH_FAILED */ [S.ALL_RETRIES_FAILED, S.TIMEOUT, S.POLL, S.CONNECTING, S.DISCONNECTED, S.QOS_ACK_REMOTE,
    S.QOS_NACK_REMOTE, S.AUTH_FAILED, S.DESTROYING],
  /* CONNECTED */ [S.SERVER_UPGRADE, S.SERVER_TXN, S.AUTH_FAILED, S.QOS_ACK_REMOTE, S.QOS_NACK_REMOTE, S.QOS_ACK_LOCAL,
    S.QOS_NACK_LOCAL, S.DISCONNECTED, S.TIMEOUT, S.CONNECTING, S.POLL, S.DESTROYING],
  /* CONNECTING */ [S.UNREACHABLE, S.AUTH_FAILED, S.CONNECTING, S.CONNECTED, S.QOS_ACK_REMOTE, S.QOS_NACK_REMOTE, S.TIMEOUT,
    S.POLL, S.ALL_RETRIES_FAILED, S.DISCONNECTED, S.DESTROYING],
  /* DESTROYING */ [],
  /* POLL */ [S.CONNECTING, S.TIMEOUT, S.ALL_RETRIES_FAILED, S.DESTROYING],
  /* ALL_RETRIES_FAILED */ [S.CONNECTING, S.POLL, S.TIMEOUT, S.UNREACHABLE, S.DESTROYING],
  /* QOS_ACK_REMOTE */ [S.DISCONNECTED, S.TIMEOUT, S.CONNECTING, S.POLL, S.DESTROYING, S.QOS_ACK_REMOTE, S.QOS_NACK_REMOTE,
    S.AUTH_FAILED, S.QOS_NACK_LOCAL],
  /* QOS_NACK_REMOTE */ [S.DISCONNECTED, S.TIMEOUT, S.CONNECTING, S.POLL, S.DESTROYING, S.QOS_ACK_REMOTE, S.QOS_NACK_REMOTE,
    S.AUTH_FAILED, S.QOS_NACK_LOCAL],
  /* QOS_ACK_LOCAL */ [S.DISCONNECTED, S.TIMEOUT, S.DESTROYING],
  /* QOS_NACK_LOCAL */ [S.DESTROYING, S.TIMEOUT, S.QOS_ACK_REMOTE, S.QOS_NACK_REMOTE, S.QOS_NACK_LOCAL, S.DISCONNECTED,
    S.CONNECTING, S.POLL],
  /* TIMEOUT */ [S.CONNECTING, S.CONNECTED, S.QOS_ACK_REMOTE, S.QOS_NACK_REMOTE, S.POLL, S.TIMEOUT, S.DISCONNECTED,
    S.UNREACHABLE, S.AUTH_FAILED, S.ALL_RETRIES_FAILED, S.DESTROYING],
  /* SERVER_TXN */ [S.DISCONNECTED, S.TIMEOUT, S.SERVER_TXN, S.DESTROYING],
  /* SERVER_UPGRADE */ [S.SERVER_UPGRADE, S.SERVER_TXN, S.TIMEOUT, S.DISCONNECTED, S.DESTROYING],
];

/** States that are reported without being checked, and leave the remembered state alone. */
export function isPassThrough(state: number): boolean {
  // EVENT_WAIT_CANCELLED, UPSTREAM_LINK_RETRY, SINK_JOIN, SINK_PART: 17 to 20, as lws numbers them
  return state >= S.USER_BASE || (state >= S.EVENT_WAIT_CANCELLED && state <= S.SINK_PART);
}

export function isLegalTransition(from: number, to: number): boolean {
  return isPassThrough(to) || isNextState(from, to);
}

/** Whether the table lets `to` follow `from` (pass-through states aside: see isLegalTransition). */
export function isNextState(from: number, to: number): boolean {
  const next = NEXT[from];
  return next !== undefined && next.includes(to);
}

// Frozen for the device, where these tables are preloaded into flash (manifest.json).
for (const table of [State, RxFlag, Ret, NAMES, NEXT, ...NEXT]) Object.freeze(table);
