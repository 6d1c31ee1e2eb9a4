// lws-minimal-secure-streams-metadata, ported: the endpoint comes from
// metadata. The policy's "mintest" has "endpoint": "${servername}", and the
// app sets servername (from -u) when the stream is created; the TLS
// certificate is checked against that name.
//
//   node dist/examples/minimal-secure-streams-metadata/main.js [-u <server name>] [-d <log bits>]

import { createContext } from "../common/context.js";
import { cmdlineOption } from "../common/cmdline.js";
import { lwsl, hexdumpInfo } from "../common/log.js";
import { State, Ret, RxFlag, stateName, type HandlerReturn } from "../../src/ss/states.js";
import type { SecureStream } from "../../src/ss/stream.js";

let interrupted = false;
let bad = 1;
let server_name_or_url = "localhost";

/* secure streams payload interface */

function myss_rx(buf: Uint8Array, flags: number): HandlerReturn {
  lwsl.user(`myss_rx: len ${buf.length}, flags: ${flags}`);
  hexdumpInfo(buf);

  /* If we received the whole message, for our example it means we are done. */
  if (flags & RxFlag.EOM) {
    bad = 0;
    interrupted = true;
  }
  return Ret.OK;
}

function myss_tx(): HandlerReturn {
  return Ret.TX_DONT_SEND;
}

function myss_state(state: number, ack: number, ss: SecureStream): HandlerReturn {
  lwsl.user(`myss_state: ${stateName(state)}, ord 0x${ack.toString(16)}`);

  switch (state) {
    case State.CREATING:
      lwsl.notice(`myss_state: CREATING: setting servername metadata to ${server_name_or_url}`);
      try {
        ss.setMetadata("servername", server_name_or_url);
      } catch (e) {
        // metadata used in an endpoint may hold host name characters only
        lwsl.err(`myss_state: ${(e as Error).message}`);
        interrupted = true;
        return Ret.DESTROY_ME;
      }
      return ss.connect();

    case State.CONNECTED:
      // lws' h1 sends its GET as soon as it connects; here the transaction is asked for
      return ss.requestTx();

    case State.ALL_RETRIES_FAILED:
      /* if we're out of retries, we want to close the app and FAIL */
      interrupted = true;
      break;

    case State.QOS_ACK_REMOTE:
      lwsl.notice("myss_state: QOS_ACK_REMOTE");
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

  const p = cmdlineOption(argv, "-u");
  if (p) server_name_or_url = p;

  const context = createContext(import.meta.url, argv);
  if (!context) {
    lwsl.err("lws init failed");
    return 1;
  }

  context.ss.create("mintest", { onRx: myss_rx, onTx: myss_tx, onState: myss_state });

  /* the event loop */
  await context.service(() => interrupted);
  context.destroy();

  lwsl.user(`Completed: ${bad ? "failed" : "OK"}`);
  return bad;
}

process.exitCode = await main(process.argv.slice(2));
