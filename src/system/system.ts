// The system state machine (lws_system): the device boots through the
// states of BOOT_ORDER, one at a time. Notifiers hear of each transition
// before it happens, and any of them can hold it until its work is done (the
// network is up, the clock is set, a new policy is fetched); it calls
// resume() then. It is also the gate of the Secure Streams: a stream
// connects only once the system is OPERATIONAL, or, for the streams the boot
// itself needs, from the state that needs them (docs/system.md).

import type { Host } from "../host.js";
import type { Policy } from "../policy/reader.js";
import { SystemState as S, BOOT_ORDER, systemStateName } from "./states.js";

/**
 * Hears of each transition twice: before it (current !== target), when
 * returning true holds it until someone calls resume(); and after it
 * (current === target), when the return is ignored.
 */
export type SystemNotifier = (current: number, target: number, system: LwsSystem) => boolean | void;

/** What a SecureStreams context asks before a stream connects (SecureStreamsOptions.gate). */
export interface ConnectGate {
  mayConnect(streamtype: string, policy: Policy): boolean;
  /** `changed` is called whenever mayConnect's answers may have changed. */
  subscribe(changed: () => void): void;
}

export interface LwsSystemOptions {
  /** While the clock is not set, check host.timeValid() this often (ms). */
  readonly timePollMs?: number;
}

/** The streamtype that fetches a new policy: it may connect while the system moves to POLICY_VALID. */
export const FETCH_POLICY = "fetch_policy";
/** lws' captive portal detection: it may connect once the network is up (CPD_PRE_TIME). */
export const CAPTIVE_PORTAL_DETECT = "captive_portal_detect";

const orderOf = (state: number): number =>
  // POLICY_INVALID goes on to POLICY_VALID again
  state === S.POLICY_INVALID ? BOOT_ORDER.indexOf(S.CPD_POST_TIME) : BOOT_ORDER.indexOf(state);

export class LwsSystem implements ConnectGate {
  readonly host: Host;
  readonly #notifiers: { name: string; notify: SystemNotifier }[] = [];
  readonly #listeners: (() => void)[] = [];
  readonly #timePollMs: number;
  #state: number = S.UNKNOWN;
  #target: number = S.UNKNOWN;
  /** The transition being held, and by whom. */
  #held: { target: number; by: string } | undefined;
  #stepping = false;
  #again = false;
  #clockTimer: unknown;

  constructor(host: Host, options: LwsSystemOptions = {}) {
    this.host = host;
    this.#timePollMs = options.timePollMs ?? 1000;
    // the clock: TLS checks certificate dates, so nothing goes past TIME_VALID before it is set
    this.register("clock", (current, target) => {
      if (current === target || target !== S.TIME_VALID || host.timeValid()) return false;
      if (this.#clockTimer === undefined) {
        this.#clockTimer = host.setTimer(this.#timePollMs, () => {
          this.#clockTimer = undefined;
          this.resume();
        });
      }
      return true;
    });
  }

  get state(): number { return this.#state; }
  get stateName(): string { return systemStateName(this.#state); }
  /** The transition a notifier holds, if any: its target state and the notifier's name. */
  get held(): { readonly target: number; readonly by: string } | undefined { return this.#held; }

  /** Adds a notifier, told of every later transition; returns its removal. */
  register(name: string, notify: SystemNotifier): () => void {
    const entry = { name, notify };
    this.#notifiers.push(entry);
    return () => {
      const i = this.#notifiers.indexOf(entry);
      if (i >= 0) this.#notifiers.splice(i, 1);
    };
  }

  /** Walks the boot states towards `target` (OPERATIONAL), as far as the notifiers let it. */
  boot(target: number = S.OPERATIONAL): void {
    if (orderOf(target) < 0) throw new RangeError(`${systemStateName(target)} is not a boot state`);
    this.#target = target;
    this.#step();
  }

  /** A notifier that held a transition has done its work: try the transition again. */
  resume(): void {
    this.#step();
  }

  /** The policy is no longer good (POLICY_INVALID): new connections wait until boot() reaches OPERATIONAL again. */
  invalidatePolicy(): void {
    this.#held = undefined;
    this.#enter(S.POLICY_INVALID);
  }

  // ---- ConnectGate ----

  mayConnect(streamtype: string, policy: Policy): boolean {
    const s = this.#state;
    if (s === S.OPERATIONAL) return true;
    if (streamtype === FETCH_POLICY) return s >= S.CPD_POST_TIME;
    if (streamtype === CAPTIVE_PORTAL_DETECT) return s >= S.DHCP && s !== S.POLICY_INVALID;
    if (s < S.REGISTERED || s === S.POLICY_INVALID) return false;
    for (let i = 0; i < policy.authCount; i++) if (policy.auth(i).streamtype === streamtype) return true;
    return false;
  }

  subscribe(changed: () => void): void {
    this.#listeners.push(changed);
  }

  // ---- the walk ----

  #step(): void {
    if (this.#stepping) {
      // a notifier resumed from inside a transition: go on when it returns
      this.#again = true;
      return;
    }
    this.#stepping = true;
    try {
      do {
        this.#again = false;
        while (orderOf(this.#state) < orderOf(this.#target)) {
          const next = BOOT_ORDER[orderOf(this.#state) + 1]!;
          const by = this.#holder(next);
          if (by !== undefined) {
            if (this.#held?.target !== next || this.#held.by !== by) this.host.log(`system: ${systemStateName(next)} held by ${by}`);
            this.#held = { target: next, by };
            break;
          }
          this.#held = undefined;
          this.#enter(next);
        }
      } while (this.#again);
    } finally {
      this.#stepping = false;
    }
  }

  /** The name of the first notifier that holds the move to `next`, if any. */
  #holder(next: number): string | undefined {
    for (const n of [...this.#notifiers]) {
      let hold: boolean | void;
      try {
        hold = n.notify(this.#state, next, this);
      } catch (e) {
        // holding is the safe side: going on could reach a state the work was needed for
        this.host.log(`system: BUG: notifier ${n.name} threw ${String((e as Error)?.message ?? e)} before ${systemStateName(next)}; held`);
        hold = true;
      }
      if (hold === true) return n.name;
    }
    return undefined;
  }

  #enter(state: number): void {
    this.#state = state;
    if (state === S.OPERATIONAL || state === S.POLICY_INVALID) this.host.log(`system: ${systemStateName(state)}`);
    for (const n of [...this.#notifiers]) {
      try {
        n.notify(state, state, this);
      } catch (e) {
        this.host.log(`system: BUG: notifier ${n.name} threw ${String((e as Error)?.message ?? e)} at ${systemStateName(state)}`);
      }
    }
    for (const changed of this.#listeners) changed();
  }
}
