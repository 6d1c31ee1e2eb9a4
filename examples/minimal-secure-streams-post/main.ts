// lws-minimal-secure-streams-post, ported: a minimal http POST on the Secure
// Streams API. It sends a multipart form of about 5.6 KB to the local server
// over TLS with the streamtype "minpost", announcing its length first so that
// it goes with a Content-Length, and handing it out in pieces from myss_tx.
//
//   node dist/examples/minimal-secure-streams-post/main.js [-d <log bits>]

import { createContext } from "../common/context.js";
import { lwsl, hexdumpInfo } from "../common/log.js";
import { State, Ret, RxFlag, stateName, type HandlerReturn } from "../../src/ss/states.js";
import type { SecureStream } from "../../src/ss/stream.js";

let interrupted = false;
let bad = 1;

const postbody = new TextEncoder().encode(
  "--boundary\r\n" +
  "Content-Disposition: form-data; name=\"text\"\r\n" +
  "\r\n" +
  "value1\r\n" +
  "--boundary\r\n" +
  "Content-Disposition: form-data; name=\"field2\"; filename=\"example.txt\"\r\n" +
  "\r\n" +
  "value2\r\n" +
  Array.from({ length: 0x50 }, (_, i) => `${i.toString(16).padStart(2, "0")}-${"0123456789abcdef".repeat(4)}\r\n`).join("") +
  "--boundary--\r\n");

/** myss_t: the app's state for its stream, handed to create() and back as stream.user. */
interface myss_t {
  pos: number;
  len: number;
}

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

function myss_tx(len: number, flags: number, ss: SecureStream): { payload: Uint8Array; flags: number } | HandlerReturn {
  const m = ss.user as myss_t;

  // a body that is sent again (a retry) starts from its first byte
  if (flags & RxFlag.SOM) m.pos = 0;

  if (m.pos === m.len) return Ret.TX_DONT_SEND;

  if (m.len - m.pos < len) len = m.len - m.pos;

  let out = 0;
  if (!m.pos) out |= RxFlag.SOM;

  const payload = postbody.subarray(m.pos, m.pos + len);
  m.pos += len;

  if (m.pos === m.len) out |= RxFlag.EOM;

  lwsl.notice(`myss_tx: write ${len} flags ${out}`);

  if (m.pos !== m.len) ss.requestTx();

  return { payload, flags: out };
}

function myss_state(state: number, ack: number, ss: SecureStream): HandlerReturn {
  const m = ss.user as myss_t;

  lwsl.user(`myss_state: ${stateName(state)}, ord 0x${ack.toString(16)}`);

  switch (state) {
    case State.CREATING:
      ss.setMetadata("ctype", "multipart/form-data;boundary=\"boundary\"");

      /* provide a hint about the payload size */
      m.pos = 0;
      m.len = postbody.length;

      return ss.requestTxLength(postbody.length);

    case State.CONNECTED:
      return ss.requestTx();

    case State.ALL_RETRIES_FAILED:
      /* if we're out of retries, we want to close the app and FAIL */
      interrupted = true;
      break;

    case State.QOS_ACK_REMOTE:
      lwsl.notice("myss_state: QOS_ACK_REMOTE");
      break;

    case State.TIMEOUT:
      lwsl.notice("myss_state: TIMEOUT");
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

  const context = createContext(import.meta.url, argv);
  if (!context) {
    lwsl.err("lws init failed");
    return 1;
  }

  const m: myss_t = { pos: 0, len: 0 };
  context.ss.create("minpost", { onRx: myss_rx, onTx: myss_tx, onState: myss_state }, m);

  /* the event loop */
  await context.service(() => interrupted);
  context.destroy();

  lwsl.user(`Completed: ${bad ? "failed" : "OK"}`);
  return bad;
}

process.exitCode = await main(process.argv.slice(2));
