// A raw http/2 server over TLS (ALPN h2) for the faults and frame layouts
// no real server produces on demand: a header block split across
// CONTINUATION frames at chosen points, frames over the size limit, bad
// HPACK, flow-control violations. It reads the client's preface and frames
// with the project's own codec, and answers each request with what the test
// script says. A test peer, on purpose: Node's http2 server is correct and
// will not misbehave.

import tls from "node:tls";
import type { AddressInfo } from "node:net";
import type { ServerCredential } from "./pki.js";
import { FrameDecoder, FrameType, PREFACE, HpackDecoder, type Frame } from "../../src/wire/h2/index.js";

export interface RawPeerConnection {
  readonly socket: tls.TLSSocket;
  /** Frames the client sent, as [type, flags, stream, payload]. */
  readonly frames: [number, number, number, Uint8Array][];
  readonly hpack: HpackDecoder;
}

export interface RawPeer {
  readonly port: number;
  /** GOAWAY error codes the client sent, over all connections. */
  readonly goaways: number[];
  readonly connections: () => number;
  close(): void;
}

/**
 * Starts the peer. `onRequest` gets each request's stream id and headers
 * and writes whatever it likes to the socket; `onConnect` runs after the
 * client's preface (before its SETTINGS are answered: the script sends its own).
 */
export async function startRawPeer(cred: ServerCredential, script: {
  onConnect: (c: RawPeerConnection) => void;
  onRequest: (c: RawPeerConnection, streamId: number, headers: [string, string][]) => void;
}): Promise<RawPeer> {
  const goaways: number[] = [];
  let connections = 0;
  const server = tls.createServer({ cert: cred.chainPem, key: cred.keyPem, ALPNProtocols: ["h2"] }, (socket) => {
    connections++;
    const c: RawPeerConnection = { socket, frames: [], hpack: new HpackDecoder({ maxHeaderListSize: 65536 }) };
    let preface = Buffer.alloc(0);
    let started = false;
    const decoder = new FrameDecoder({
      maxFrameSize: 16384,
      onFrame: (f: Frame) => {
        c.frames.push([f.type, f.flags, f.streamId, f.payload.slice()]);
        if (f.type === FrameType.GOAWAY) goaways.push(new DataView(f.payload.buffer, f.payload.byteOffset).getUint32(4));
        if (f.type === FrameType.HEADERS) script.onRequest(c, f.streamId, c.hpack.decode(f.payload) as [string, string][]);
      },
    });
    socket.on("data", (d: Buffer) => {
      try {
        if (!started) {
          preface = Buffer.concat([preface, d]);
          if (preface.length < PREFACE.length) return;
          started = true;
          script.onConnect(c);
          decoder.push(preface.subarray(PREFACE.length));
          return;
        }
        decoder.push(d);
      } catch {
        socket.destroy();
      }
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    goaways,
    connections: () => connections,
    close: () => server.close(),
  };
}
