// lws-minimal-secure-streams-hugeurl, ported: a GET whose URL carries a huge
// argument, ?x= and 4000 random hex characters by default (-h to change),
// set as metadata and expanded into the policy's http_url. The server
// (libwebsockets.org/urlarg/ in the original, the local server here) answers
// with the argument, and the app checks it came back whole.
//
//   node dist/examples/minimal-secure-streams-hugeurl/main.js [-h <argument length>] [-d <log bits>]
//
// The lws original goes over h2 unless given --h1; only h1 is here so far.

import { randomBytes } from "node:crypto";
import { createContext } from "../common/context.js";
import { cmdlineOption } from "../common/cmdline.js";
import { lwsl } from "../common/log.js";
import { State, Ret, RxFlag, stateName, type HandlerReturn } from "../../src/ss/states.js";
import { MAX_METADATA_LENGTH, type SecureStream } from "../../src/ss/stream.js";

let interrupted = false;
let bad = 1;
let hugeurl_size = 4000;

/** myss_t: the app's state for its stream, handed to create() and back as stream.user. */
interface myss_t {
  /** received so far */
  cr: number;
  expected_hugeurl: string;
  check: Uint8Array;
}

/* secure streams payload interface */

function myss_rx(buf: Uint8Array, flags: number, ss: SecureStream): HandlerReturn {
  const m = ss.user as myss_t;

  if (m.cr + buf.length > m.check.length) {
    lwsl.err("myss_rx: oversize receive");
    return Ret.DISCONNECT_ME;
  }

  m.check.set(buf, m.cr);
  m.cr += buf.length;

  if (flags & RxFlag.EOM) {
    interrupted = true;

    /* confirm that what we collected is the expected size */
    if (m.cr !== hugeurl_size) {
      lwsl.err(`myss_rx: wrong urlarg size recovered ${m.cr} ${hugeurl_size}`);
      return Ret.OK;
    }

    /* confirm what we sent is the same as what we collected */
    const got = new TextDecoder().decode(m.check.subarray(0, m.cr));
    if (got !== m.expected_hugeurl) {
      let n = 0;
      while (got[n] === m.expected_hugeurl[n]) n++;
      lwsl.err(`myss_rx: huge url content mismatch at offset ${n}`);
      return Ret.OK;
    }

    lwsl.user(`myss_rx: return hugeurl len ${hugeurl_size} matches OK`);
    bad = 0;
  }
  return Ret.OK;
}

function myss_state(state: number, ack: number, ss: SecureStream): HandlerReturn {
  const m = ss.user as myss_t;

  lwsl.user(`myss_state: ${stateName(state)} (${state}), ord 0x${ack.toString(16)}`);

  switch (state) {
    case State.CREATING:
      ss.startTimeout(); // the policy's timeout_ms

      /* Create the big, random, urlarg */
      m.expected_hugeurl = randomBytes(Math.ceil(hugeurl_size / 2)).toString("hex").slice(0, hugeurl_size);
      ss.setMetadata("hugearg", m.expected_hugeurl);
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

    case State.QOS_NACK_REMOTE:
      lwsl.notice("myss_state: QOS_NACK_REMOTE");
      break;

    case State.TIMEOUT:
      lwsl.notice("myss_state: TIMEOUT");
      interrupted = true;
      break;
  }
  return Ret.OK;
}

function sigint_handler(): void {
  interrupted = true;
}

async function main(argv: readonly string[]): Promise<number> {
  process.on("SIGINT", sigint_handler);
  lwsl.user("LWS secure streams hugeurl test client [-d<verb>][-h <urlarg len>]");

  const p = cmdlineOption(argv, "-h");
  if (p) hugeurl_size = Number(p);
  // lws takes up to 16384; a metadata value here holds at most MAX_METADATA_LENGTH characters
  if (!Number.isInteger(hugeurl_size) || hugeurl_size < 1 || hugeurl_size > MAX_METADATA_LENGTH) {
    lwsl.err(`main: -h should be between 1 and ${MAX_METADATA_LENGTH}`);
    return 1;
  }
  lwsl.user(`main: huge argument size: ${hugeurl_size} bytes`);

  const context = createContext(import.meta.url, argv);
  if (!context) {
    lwsl.err("lws init failed");
    return 1;
  }

  const m: myss_t = { cr: 0, expected_hugeurl: "", check: new Uint8Array(16384) };
  context.ss.create("lws_anything_h1", { onRx: myss_rx, onState: myss_state }, m);

  /* the event loop */
  await context.service(() => interrupted);
  context.destroy();

  lwsl.user(`Completed: ${bad ? "failed" : "OK"}`);
  return bad;
}

process.exitCode = await main(process.argv.slice(2));
