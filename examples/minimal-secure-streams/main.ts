// lws-minimal-secure-streams, ported: a minimal http client on the Secure
// Streams API. It reads index.html from the local server over TLS with the
// streamtype "mintest"; how to reach it (endpoint, TLS and its CA, headers,
// retries) is all in policy.json.
//
//   node dist/examples/minimal-secure-streams/main.js [-d <log bits>] [--timeout_ms <ms>] [--expected-exit <n>]

import { createContext } from "../common/context.js";
import { cmdlineOption } from "../common/cmdline.js";
import { lwsl, hexdumpInfo } from "../common/log.js";
import { State, Ret, RxFlag, stateName, type HandlerReturn } from "../../src/ss/states.js";
import type { SecureStream } from "../../src/ss/stream.js";
import { BLOB } from "../../src/host.js";

let interrupted = false;
let bad = 1;
let timeout_ms = 3000;

const canned_root_token_payload = "grant_type=refresh_token&refresh_token=Atzr|xs-ss-example&client_id=xs-ss-example-device";

/* secure streams payload interface */

function myss_rx(buf: Uint8Array, flags: number, ss: SecureStream): HandlerReturn {
  if (flags & RxFlag.PERF_JSON) return Ret.OK;

  // "srv" and "test" are response headers the policy captures into metadata
  const md_srv = ss.getMetadata("srv") ?? "not set";
  const md_test = ss.getMetadata("test") ?? "not set";
  lwsl.user(`myss_rx: len ${buf.length}, flags: ${flags}, srv: ${md_srv}, test: ${md_test}`);
  hexdumpInfo(buf);

  /* If we received the whole message, for our example it means we are done. */
  if (flags & RxFlag.EOM) {
    bad = 0;
    interrupted = true;
  }
  return Ret.OK;
}

function myss_tx(): HandlerReturn {
  /* in this example, we don't send stuff */
  return Ret.TX_DONT_SEND;
}

function myss_state(state: number, ack: number, ss: SecureStream): HandlerReturn {
  lwsl.user(`myss_state: ${stateName(state)} (${state}), ord 0x${ack.toString(16)}`);

  switch (state) {
    case State.CREATING:
      return ss.connect();

    case State.CONNECTING:
      ss.startTimeout(timeout_ms);
      ss.setMetadata("uptag", "myuptag123");
      ss.setMetadata("ctype", "myctype");
      break;

    case State.CONNECTED:
      // lws' h1 sends its GET as soon as it connects; here CONNECTED is the
      // connection alone, and the transaction is asked for
      return ss.requestTx();

    case State.ALL_RETRIES_FAILED:
      /* if we're out of retries, we want to close the app and FAIL */
      interrupted = true;
      bad = 2;
      break;

    case State.QOS_ACK_REMOTE:
      lwsl.notice("myss_state: QOS_ACK_REMOTE");
      break;

    case State.TIMEOUT:
      lwsl.notice("myss_state: TIMEOUT");
      /* if we're out of time */
      interrupted = true;
      bad = 3;
      break;
  }
  return Ret.OK;
}

function sigint_handler(): void {
  interrupted = true;
}

async function main(argv: readonly string[]): Promise<number> {
  process.on("SIGINT", sigint_handler);
  lwsl.user("LWS secure streams test client [-d<verb>]");

  const p = cmdlineOption(argv, "--timeout_ms");
  if (p) timeout_ms = Number(p);

  const context = createContext(import.meta.url, argv);
  if (!context) {
    lwsl.err("lws init failed");
    return 1;
  }

  /* Set the related lws_system blobs: the policy sends them as headers */
  const blobs = context.host.blobs;
  const enc = new TextEncoder();
  blobs.set(BLOB.deviceSerial, enc.encode("SN12345678"));
  blobs.set(BLOB.firmwareVersion, enc.encode("v0.01"));
  blobs.set(BLOB.deviceType, enc.encode("spacerocket"));
  blobs.set(BLOB.auth, enc.encode(canned_root_token_payload));

  // lws creates the stream once its system state reaches OPERATIONAL; there
  // is no system state here, so right away
  context.ss.create("mintest", { onRx: myss_rx, onTx: myss_tx, onState: myss_state });

  /* the event loop */
  await context.service(() => interrupted);
  context.destroy();

  const expected = Number(cmdlineOption(argv, "--expected-exit") || 0);
  if (bad === expected) {
    lwsl.user(`Completed: OK (seen expected ${expected})`);
    return 0;
  }
  lwsl.err(`Completed: failed: exit ${bad}, expected ${expected}`);
  return 1;
}

process.exitCode = await main(process.argv.slice(2));
