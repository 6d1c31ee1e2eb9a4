// The WebSocket opening handshake, client side (RFC 6455, 4.1): the upgrade
// request, written by the HTTP/1.1 request encoder (so every field is
// checked as for any request), and the checks on the server's answer,
// whose head the HTTP/1.1 response parser reads.

import { encodeRequestHead, type Http1Head } from "../http1/index.js";
import { base64Encode } from "../../util/base64.js";
import { sha1 } from "../../util/sha1.js";
import { utf8Encode } from "../../util/utf8.js";
import { WsError } from "./frame.js";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** A fresh Sec-WebSocket-Key: 16 random bytes, base64. `random` gives [0, 1). */
export function makeKey(random: () => number): string {
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 16; i++) bytes[i] = Math.floor(random() * 256);
  return base64Encode(bytes);
}

/** The Sec-WebSocket-Accept a server must answer `key` with. */
export function acceptFor(key: string): string {
  return base64Encode(sha1(utf8Encode(key + GUID)));
}

export interface UpgradeRequest {
  /** Origin form, already percent-encoded. */
  readonly path: string;
  /** The Host header value. */
  readonly host: string;
  readonly key: string;
  /** Subprotocols offered, in order of preference; none: no Sec-WebSocket-Protocol. */
  readonly protocols: readonly string[];
  /** More header fields (from metadata and blobs). */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
}

/** The request head; Http1Error "bad-request" when a field cannot go into one. */
export function encodeUpgradeRequest(r: UpgradeRequest): Uint8Array {
  const headers: [string, string][] = [
    ["Upgrade", "websocket"],
    ["Connection", "Upgrade"],
    ["Sec-WebSocket-Key", r.key],
    ["Sec-WebSocket-Version", "13"],
  ];
  if (r.protocols.length) headers.push(["Sec-WebSocket-Protocol", r.protocols.join(", ")]);
  for (const [name, value] of r.headers ?? []) headers.push([name, value]);
  return encodeRequestHead({ method: "GET", path: r.path, host: r.host, headers });
}

/**
 * Checks the server's answer (4.1, the client's checks 1-6): 101, Upgrade
 * websocket, Connection upgrade, the right Accept, no extension (none was
 * offered), and a subprotocol that was offered, when some were, or none
 * when none was. Returns the subprotocol agreed ("" for none); throws
 * WsError "handshake".
 */
export function checkUpgradeResponse(head: Http1Head, key: string, protocols: readonly string[]): string {
  const fields = (name: string) => head.headers.filter(([n]) => n === name).map(([, v]) => v);
  const tokens = (name: string) => fields(name).join(",").split(",").map((t) => t.trim().toLowerCase()).filter(Boolean);
  if (head.status !== 101) throw refused(`HTTP ${head.status} ${head.reason} instead of 101 Switching Protocols`);
  if (!tokens("upgrade").includes("websocket")) throw refused(`Upgrade is ${JSON.stringify(fields("upgrade").join(", "))}, not websocket`);
  if (!tokens("connection").includes("upgrade")) throw refused(`Connection is ${JSON.stringify(fields("connection").join(", "))}, without upgrade`);
  const accept = fields("sec-websocket-accept");
  if (accept.length !== 1 || accept[0] !== acceptFor(key)) throw refused("Sec-WebSocket-Accept does not match the key sent");
  if (fields("sec-websocket-extensions").length) throw refused(`the server chose extension ${JSON.stringify(fields("sec-websocket-extensions").join(", "))}, and none was offered`);
  const chosen = fields("sec-websocket-protocol");
  if (chosen.length > 1) throw refused("more than one Sec-WebSocket-Protocol");
  const protocol = chosen[0] ?? "";
  if (protocols.length && !protocol) throw refused(`the server chose no subprotocol (offered ${protocols.join(", ")})`);
  if (protocol && !protocols.includes(protocol)) {
    throw refused(`the server chose subprotocol ${JSON.stringify(protocol)}, ${protocols.length ? `not one offered (${protocols.join(", ")})` : "and none was offered"}`);
  }
  return protocol;
}

function refused(why: string): WsError {
  return new WsError("handshake", `upgrade refused: ${why}`, 0);
}
