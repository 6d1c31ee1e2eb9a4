// Bundle entry for the connection-reuse scenarios inside XS
// (test-host/h1-reuse-xs.test.ts): bundleForXS(<this>.js, { globalName: "xsReuse" }).
// PORTABLE: everything here runs inside the XS engine, on XSBridgeHost.
//
// serve() takes one message, pack(head, [policy]) with head
// {streamtypes, options?}: in one SecureStreams context with
// createH1Binding(options), it runs one stream per streamtype, in turn, each
// to its result and destroyed (the next one starts from the timer queue),
// then closes the pool's idle connections and reports, as JSON through
// XSBridgeHost.message(): {states: string[][], idle} (idle: the pool's size
// before it was closed).

import { XSBridgeHost } from "../../hosts/xsnap/xs-host.js";
import { SecureStreams } from "../../src/ss/context.js";
import { Policy } from "../../src/policy/reader.js";
import { createH1Binding, type H1BindingOptions } from "../../src/protocols/h1.js";
import { State, Ret, stateName } from "../../src/ss/states.js";
import { utf8Encode } from "../../src/util/utf8.js";
import { unpack } from "../../hosts/xsnap/bridge-protocol.js";

export interface XSReuseHead {
  readonly streamtypes: readonly string[];
  readonly options?: H1BindingOptions;
}

export interface XSReuseReport {
  readonly states: string[][];
  readonly idle: number;
}

export function serve(): void {
  const host = new XSBridgeHost().install();
  host.onMessage = (bytes) => {
    const { head, sections } = unpack<XSReuseHead>(bytes);
    const h1 = createH1Binding(head.options);
    const ss = new SecureStreams(host, Policy.open(sections[0]!), { bindings: [h1], strict: true });
    const states: string[][] = [];
    const next = (): void => {
      const streamtype = head.streamtypes[states.length];
      if (streamtype === undefined) {
        const report: XSReuseReport = { states, idle: h1.idle };
        h1.closeIdle();
        host.message(utf8Encode(JSON.stringify(report)));
        return;
      }
      const mine: string[] = [];
      states.push(mine);
      ss.create(streamtype, {
        onState(state, _ack, stream) {
          mine.push(stateName(state));
          if (state === State.CREATING) return stream.requestTx();
          if (state === State.QOS_ACK_REMOTE || state === State.QOS_NACK_REMOTE || state === State.ALL_RETRIES_FAILED) return Ret.DESTROY_ME;
          if (state === State.DESTROYING) host.setTimer(0, next);
          return Ret.OK;
        },
      });
    };
    next();
  };
}
