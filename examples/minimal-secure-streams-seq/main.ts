// lws-minimal-secure-streams-seq, ported: the minimal "mintest" GET, driven
// by a sequencer. The sequencer creates the stream and is told its states;
// the layering is
//
//     app               process
//     sequencer         process
//     secure stream     process
//     connection        each attempt
//
// -f uses "mintest-fail" instead, whose policy points TLS at the local
// server's plain http port, as the original points it at warmcat.com's ssh
// port: every attempt fails, and the retry policy's backoff runs until
// ALL_RETRIES_FAILED. ("mintest-fail" is not "opportunistic": here that
// would mean no retries at all, see docs/states.md.)
//
//   node dist/examples/minimal-secure-streams-seq/main.js [-f] [-d <log bits>]

import { createContext } from "../common/context.js";
import { cmdlineOption } from "../common/cmdline.js";
import { lwsl, hexdumpInfo } from "../common/log.js";
import { State, Ret, RxFlag, stateName, type HandlerReturn } from "../../src/ss/states.js";
import type { SecureStream } from "../../src/ss/stream.js";
import type { SecureStreams } from "../../src/ss/context.js";
import { Sequencer, SEQ, SeqRet, type SeqReturn } from "./sequencer.js";

let interrupted = false;
let bad = 1;
let flag_conn_fail = false;

/** myss_t: the stream's user object: the sequencer it reports to. */
interface myss_t {
  seq: Sequencer<myseq_t>;
}

/* secure streams payload interface */

function myss_rx(buf: Uint8Array, flags: number, ss: SecureStream): HandlerReturn {
  const m = ss.user as myss_t;

  lwsl.user(`myss_rx: len ${buf.length}, flags: ${flags}`);
  hexdumpInfo(buf);

  /* If we received the whole message, we let the sequencer know it was a success */
  if (flags & RxFlag.EOM) m.seq.queue(SEQ.USER_BASE);

  return Ret.OK;
}

function myss_tx(): HandlerReturn {
  /* in this example, we don't send any payload */
  return Ret.TX_DONT_SEND;
}

function myss_state(state: number, ack: number, ss: SecureStream): HandlerReturn {
  const m = ss.user as myss_t;

  lwsl.user(`myss_state: ${stateName(state)}, ord 0x${ack.toString(16)}`);

  // the sequencer follows the states of the stream it drives
  m.seq.queue(SEQ.SS_STATE_BASE + state, ss);

  switch (state) {
    case State.CREATING:
      return ss.requestTx();

    case State.ALL_RETRIES_FAILED:
      /* if we're out of retries, we want to close the app and FAIL */
      interrupted = true;
      break;
  }
  return Ret.OK;
}

/** myseq_t: the sequencer's own state. */
interface myseq_t {
  context: SecureStreams;
  ss: SecureStream | undefined;
}

/* This defines the sequence of things the test app does. */

function min_sec_str_sequencer_cb(seq: Sequencer<myseq_t>, s: myseq_t, event: number): SeqReturn {
  switch (event) {
    /* these messages are created just by virtue of being a sequencer */

    case SEQ.CREATED: /* our sequencer just got started */
      lwsl.notice("min_sec_str_sequencer_cb: LWSSEQ_CREATED");

      /* We're making an outgoing secure stream ourselves */
      try {
        /* requested to fail (to check backoff)? else default to h1 GET */
        s.ss = s.context.create(flag_conn_fail ? "mintest-fail" : "mintest",
          { onRx: myss_rx, onTx: myss_tx, onState: myss_state }, { seq } satisfies myss_t);
      } catch (e) {
        lwsl.err(`min_sec_str_sequencer_cb: failed to create secure stream: ${(e as Error).message}`);
        interrupted = true;
        return SeqRet.DESTROY;
      }
      break;

    case SEQ.DESTROYED:
      lwsl.notice("min_sec_str_sequencer_cb: LWSSEQ_DESTROYED");
      break;

    /*
     * These come from the secure stream this sequencer drives: myss_state
     * passes each of its states on.
     */

    case SEQ.SS_STATE_BASE + State.CREATING:
      lwsl.info("min_sec_str_sequencer_cb: seq CREATING");
      s.ss?.requestTx();
      break;

    case SEQ.SS_STATE_BASE + State.DISCONNECTED:
    case SEQ.SS_STATE_BASE + State.UNREACHABLE:
    case SEQ.SS_STATE_BASE + State.AUTH_FAILED:
    case SEQ.SS_STATE_BASE + State.CONNECTED:
    case SEQ.SS_STATE_BASE + State.CONNECTING:
    case SEQ.SS_STATE_BASE + State.DESTROYING:
    case SEQ.SS_STATE_BASE + State.POLL:
    case SEQ.SS_STATE_BASE + State.QOS_ACK_REMOTE:
      lwsl.info(`min_sec_str_sequencer_cb: seq ${stateName(event - SEQ.SS_STATE_BASE)}`);
      break;

    case SEQ.SS_STATE_BASE + State.ALL_RETRIES_FAILED:
      lwsl.info("min_sec_str_sequencer_cb: seq ALL_RETRIES_FAILED");
      interrupted = true;
      break;

    /* This is the message we send from the ss handler to inform the sequencer we had the payload properly */

    case SEQ.USER_BASE:
      bad = 0;
      interrupted = true;
      break;
  }
  return SeqRet.CONTINUE;
}

function sigint_handler(): void {
  interrupted = true;
}

async function main(argv: readonly string[]): Promise<number> {
  process.on("SIGINT", sigint_handler);
  lwsl.user("LWS minimal secure streams [-d<verbosity>][-f]");

  flag_conn_fail = cmdlineOption(argv, "-f") !== undefined;

  const context = createContext(import.meta.url, argv);
  if (!context) {
    lwsl.err("lws init failed");
    return 1;
  }

  /* Create the sequencer that performs the steps of the test action from inside the event loop. */
  const seq = new Sequencer<myseq_t>("min-sec-stream-seq", { context: context.ss, ss: undefined }, min_sec_str_sequencer_cb);

  /* the event loop */
  await context.service(() => interrupted);
  context.destroy();
  seq.destroy();

  lwsl.user(`Completed: ${bad ? "failed" : "OK"}`);
  return bad;
}

process.exitCode = await main(process.argv.slice(2));
