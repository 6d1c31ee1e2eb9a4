// lws-minimal-secure-streams-client-tx, ported: mass tx on one stream. It
// connects, then sends 100 (-c to change) messages of 80 random bytes at
// 20 Hz, and exits. The original sends them as websocket messages through
// the Secure Streams proxy; here each one is an http POST (streamtype
// "spam"), one after the other on the one kept-alive connection.
//
//   node dist/examples/minimal-secure-streams-client-tx/main.js [-c <count>] [-d <log bits>]

import { getRandomValues } from "node:crypto";
import { createContext } from "../common/context.js";
import { cmdlineOption } from "../common/cmdline.js";
import { lwsl } from "../common/log.js";
import { State, Ret, RxFlag, stateName, type HandlerReturn } from "../../src/ss/states.js";
import type { SecureStream } from "../../src/ss/stream.js";

const PKT_SIZE = 80;
const RATE_MS = 50;

let interrupted = false;
let bad = 1;
let reads = 100;

/** myss_t: the app's state for its stream, handed to create() and back as stream.user. */
interface myss_t {
  sul: ReturnType<typeof setTimeout> | undefined;
  count: number;
  /** Messages the server has answered: each POST has a response. */
  acked: number;
  due: boolean;
}

/** lws_sul_schedule(): (re)arms the one timer of this stream. */
function sul_schedule(m: myss_t, cb: (ss: SecureStream) => void, ss: SecureStream, ms: number): void {
  clearTimeout(m.sul);
  m.sul = setTimeout(() => cb(ss), ms);
}

/* secure streams payload interface */

function myss_rx(): HandlerReturn {
  /* this example isn't interested in rx */
  return Ret.OK;
}

function txcb(ss: SecureStream): void {
  const m = ss.user as myss_t;

  /* We want to do 100 of these messages, and then exit, so we can run this as a pass / fail test. */
  if (m.count === reads) {
    // and, each being a POST, see the last of them answered
    if (m.acked === reads) {
      interrupted = true;
      bad = 0;
    }
  } else {
    m.due = true;
    ss.requestTxLength(PKT_SIZE);
  }

  sul_schedule(m, txcb, ss, RATE_MS);
}

function myss_tx(_len: number, _flags: number, ss: SecureStream): { payload: Uint8Array; flags: number } | HandlerReturn {
  const m = ss.user as myss_t;

  if (!m.due) return Ret.TX_DONT_SEND;

  m.due = false;

  const buf = getRandomValues(new Uint8Array(PKT_SIZE));

  m.count++;

  sul_schedule(m, txcb, ss, RATE_MS);

  lwsl.user(`myss_tx: sending pkt ${m.count} (${Buffer.from(buf.subarray(0, 8)).toString("hex")}...)`);

  return { payload: buf, flags: RxFlag.SOM | RxFlag.EOM };
}

function myss_state(state: number, ack: number, ss: SecureStream): HandlerReturn {
  const m = ss.user as myss_t;

  lwsl.user(`myss_state: ${stateName(state)}, ord 0x${ack.toString(16)}`);

  switch (state) {
    case State.CREATING:
      return ss.connect();

    case State.CONNECTED:
      sul_schedule(m, txcb, ss, RATE_MS);
      break;

    case State.QOS_ACK_REMOTE:
      // one POST answered; a message that fell due meanwhile goes next on the same connection
      m.acked++;
      if (m.due) return ss.requestTxLength(PKT_SIZE);
      break;

    case State.DISCONNECTED:
      clearTimeout(m.sul);
      break;

    case State.ALL_RETRIES_FAILED:
      /* if we're out of retries, we want to close the app and FAIL */
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

  const p = cmdlineOption(argv, "-c");
  if (p) reads = Number(p);

  lwsl.user("LWS secure streams client TX [-d<verb>]");

  const context = createContext(import.meta.url, argv);
  if (!context) {
    lwsl.err("lws init failed");
    return 1;
  }

  const m: myss_t = { sul: undefined, count: 0, acked: 0, due: false };
  context.ss.create("spam", { onRx: myss_rx, onTx: myss_tx, onState: myss_state }, m);

  /* the event loop */
  await context.service(() => interrupted);
  context.destroy();
  clearTimeout(m.sul);

  lwsl.user(`Completed: ${bad ? "failed" : "OK"}`);
  return bad;
}

process.exitCode = await main(process.argv.slice(2));
