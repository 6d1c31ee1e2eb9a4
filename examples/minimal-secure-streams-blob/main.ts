// lws-minimal-secure-streams-blob, ported: with --blob, a bulk download
// ("bulkproxflow", 50 MiB, from the local server here and from warmcat.com
// in the original), hashed with SHA-256 piece by piece as it arrives and
// checked against the hash it should have: nothing is kept but the hash
// state. Without --blob it is the minimal "mintest" GET.
//
// The device's lws_system blobs are set first; the policy sends the auth blob
// as a bearer token (http_auth_header) and the server refuses the download
// without it, and "mintest" sends serial, firmware version and device type.
//
//   node dist/examples/minimal-secure-streams-blob/main.js --blob [--timeout_ms <ms>] [--expected-exit <n>] [-d <log bits>]
//
// The original slows down every 100 KiB to make the Secure Streams proxy
// apply flow control; there is no proxy here yet, so it reads at full speed.

import { createHash, type Hash } from "node:crypto";
import { createContext } from "../common/context.js";
import { cmdlineOption } from "../common/cmdline.js";
import { lwsl, hexdumpInfo } from "../common/log.js";
import { State, Ret, RxFlag, stateName, type HandlerReturn } from "../../src/ss/states.js";
import type { SecureStream } from "../../src/ss/stream.js";
import { BLOB } from "../../src/host.js";

let interrupted = false;
let bad = 1;
let test_blob = false;
let timeout_ms = 3000;

const canned_root_token_payload = "grant_type=refresh_token&refresh_token=Atzr|xs-ss-example&client_id=xs-ss-example-device";

const expected_blob_hash = "b8767a6be968d9e78f4a736f04fc41a71fac150f5f5a29d1f2d993fb729070e5";

/** myss_t: the app's state for its stream, handed to create() and back as stream.user. */
interface myss_t {
  amt: number;
  hash_ctx: Hash | undefined;
}

/* secure streams payload interface */

function myss_rx(buf: Uint8Array, flags: number, ss: SecureStream): HandlerReturn {
  const m = ss.user as myss_t;

  if (flags & RxFlag.PERF_JSON) return Ret.OK;

  if (test_blob) {
    if (flags & RxFlag.SOM) {
      m.hash_ctx = createHash("sha256");
      m.amt = 0;
    }

    m.hash_ctx?.update(buf);

    if (Math.floor((m.amt + buf.length) / 1048576) !== Math.floor(m.amt / 1048576)) {
      lwsl.user(`myss_rx: blob test: rx ${Math.floor((m.amt + buf.length) / 1024)} KiB`);
    }

    m.amt += buf.length;

    if (flags & RxFlag.EOM) {
      const digest = m.hash_ctx?.digest("hex");
      m.hash_ctx = undefined;
      if (digest === expected_blob_hash) {
        lwsl.user(`myss_rx: SHA256 match (${m.amt} bytes)`);
        bad = 0;
      } else {
        lwsl.err(`myss_rx: SHA256 mismatch over ${m.amt} bytes: ${digest}`);
      }
      interrupted = true;
    }
    return Ret.OK;
  }

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
      if (!test_blob) {
        ss.setMetadata("uptag", "myuptag123");
        ss.setMetadata("ctype", "myctype");
      }
      break;

    case State.CONNECTED:
      // lws' h1 sends its GET as soon as it connects; here the transaction is asked for
      return ss.requestTx();

    case State.ALL_RETRIES_FAILED:
      /* if we're out of retries, we want to close the app and FAIL */
      interrupted = true;
      bad = 2;
      break;

    case State.AUTH_FAILED:
      // the server refused our token: nothing more will come
      interrupted = true;
      bad = 4;
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

  let p = cmdlineOption(argv, "--timeout_ms");
  if (p) timeout_ms = Number(p);

  if (cmdlineOption(argv, "--blob") !== undefined) {
    test_blob = true;
    /* Don't use default 3s, we're going to be a lot slower */
    if (!p) timeout_ms = 60000;
  }

  const context = createContext(import.meta.url, argv);
  if (!context) {
    lwsl.err("lws init failed");
    return 1;
  }

  /* Set the related lws_system blobs */
  const blobs = context.host.blobs;
  const enc = new TextEncoder();
  blobs.set(BLOB.deviceSerial, enc.encode("SN12345678"));
  blobs.set(BLOB.firmwareVersion, enc.encode("v0.01"));
  blobs.set(BLOB.deviceType, enc.encode("spacerocket"));
  blobs.set(BLOB.auth, enc.encode(canned_root_token_payload));

  const m: myss_t = { amt: 0, hash_ctx: undefined };
  context.ss.create(test_blob ? "bulkproxflow" : "mintest", { onRx: myss_rx, onTx: myss_tx, onState: myss_state }, m);

  /* the event loop */
  await context.service(() => interrupted);
  context.destroy();

  p = cmdlineOption(argv, "--expected-exit");
  const expected = Number(p || 0);
  if (bad === expected) {
    lwsl.user(`Completed: OK (seen expected ${expected})`);
    return 0;
  }
  lwsl.err(`Completed: failed: exit ${bad}, expected ${expected}`);
  return 1;
}

process.exitCode = await main(process.argv.slice(2));
