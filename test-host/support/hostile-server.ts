// A raw TCP server that speaks just enough HTTP/1.1 to misbehave on purpose:
// the faults a well-behaved server (Node's http) never produces: a byte too
// many after a response, a body on a 204, two responses to one request, a
// reset of an idle connection, a head that never ends. It reads each request
// (head, then a Content-Length or chunked body) and hands it to the test's
// behaviour, which writes whatever bytes it likes. It records every
// connection and every complete request.

import net from "node:net";
import type { AddressInfo } from "node:net";

export interface HostileRequest {
  readonly method: string;
  readonly url: string;
  /** Header lines as sent, "Name: value". */
  readonly headers: readonly string[];
  readonly body: Buffer;
  /** Which accepted connection carried it (1, 2, ...). */
  readonly connection: number;
}

/** What the server does with a complete request. */
export type Behaviour = (request: HostileRequest, socket: net.Socket, server: HostileServer) => void;

export class HostileServer {
  readonly requests: HostileRequest[] = [];
  connections = 0;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();

  private constructor(behaviour: Behaviour) {
    this.#server = net.createServer((socket) => {
      const id = ++this.connections;
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
      socket.on("error", () => {});
      let buffered = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        for (;;) {
          const parsed = parseRequest(buffered, id);
          if (!parsed) return;
          buffered = buffered.subarray(parsed.used);
          this.requests.push(parsed.request);
          behaviour(parsed.request, socket, this);
        }
      });
    });
  }

  static async start(behaviour: Behaviour, host = "127.0.0.1"): Promise<HostileServer> {
    const s = new HostileServer(behaviour);
    await new Promise<void>((resolve) => s.#server.listen(0, host, resolve));
    return s;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** The value of header `name` in request `i` (case-insensitive), if sent. */
  header(i: number, name: string): string | undefined {
    const line = this.requests[i]?.headers.find((h) => h.toLowerCase().startsWith(`${name.toLowerCase()}:`));
    return line?.slice(line.indexOf(":") + 1).trim();
  }

  close(): void {
    for (const s of this.#sockets) s.destroy();
    this.#server.close();
  }
}

/** One request off the front of `bytes`, or undefined if it is not all there yet. */
function parseRequest(bytes: Buffer, connection: number): { request: HostileRequest; used: number } | undefined {
  const end = bytes.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const lines = bytes.subarray(0, end).toString("latin1").split("\r\n");
  const [method = "", url = ""] = lines[0]!.split(" ");
  const headers = lines.slice(1);
  const value = (name: string) => headers.find((h) => h.toLowerCase().startsWith(`${name}:`))?.split(":")[1]?.trim();
  let at = end + 4;
  let body: Buffer = Buffer.alloc(0);
  const length = value("content-length");
  if (length !== undefined) {
    if (bytes.length < at + Number(length)) return undefined;
    body = bytes.subarray(at, at + Number(length));
    at += Number(length);
  } else if (value("transfer-encoding") === "chunked") {
    const parts: Buffer[] = [];
    for (;;) {
      const eol = bytes.indexOf("\r\n", at);
      if (eol < 0) return undefined;
      const size = parseInt(bytes.subarray(at, eol).toString("latin1"), 16);
      if (bytes.length < eol + 2 + size + 2) return undefined;
      parts.push(bytes.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
      if (size === 0) break;
    }
    body = Buffer.concat(parts);
  }
  return { request: { method, url, headers, body: Buffer.from(body), connection }, used: at };
}

/** A complete response with a body, as bytes (latin1). */
export function response(status: string, body: string, headers: string[] = []): string {
  return `HTTP/1.1 ${status}\r\n${[...headers, `Content-Length: ${Buffer.byteLength(body)}`].join("\r\n")}\r\n\r\n${body}`;
}
