// Reads the server's first TLS 1.2 flight (clear text) as it arrives, in
// chunks of any size, for facts Node's API does not give: the certificates
// as sent, whether a client certificate was asked for, and whether a
// handshake message was split across records. Linear in the bytes fed: each
// byte is looked at once and copied at most once (into the one record being
// assembled), however the network cuts the flight.

/** A TLS 1.2 record's largest body (2^14 plus expansion, RFC 5246 6.2.3). */
const MAX_RECORD_BODY = 16384 + 2048;
const RECORD_HEADER = 5;
const HANDSHAKE = 22;
const MESSAGE_NAMES: Record<number, string> = {
  2: "ServerHello", 11: "Certificate", 12: "ServerKeyExchange", 13: "CertificateRequest", 14: "ServerHelloDone",
};

export interface FlightWork {
  scanned: number;
  copied: number;
}

export class ServerFlightReader {
  /** The server's Certificate message, leaf first; undefined until one is seen. */
  serverChain: Uint8Array[] | undefined;
  /** The server sent a CertificateRequest. */
  certificateRequested = false;
  /** The first handshake message that did not end in the record it began in. */
  splitMessage: { readonly name: string; readonly size: number | undefined } | undefined;
  /** Reading is over: ServerHelloDone, a record that is not a handshake, or a split message. */
  done = false;
  /**
   * Bytes looked at, and bytes copied into a record buffer (a record that
   * arrives whole is read in place); a counter may be shared by many readers.
   */
  readonly work: FlightWork;
  readonly #header = new Uint8Array(RECORD_HEADER);
  #headerFill = 0;
  /** The record body being assembled, once its header is known. */
  #body: Uint8Array | undefined;
  #bodyFill = 0;

  constructor(work: FlightWork = { scanned: 0, copied: 0 }) {
    this.work = work;
  }

  /** Feeds the next bytes; returns false once reading is over (what follows is not looked at). */
  push(chunk: Uint8Array): boolean {
    for (let at = 0; at < chunk.length && !this.done;) {
      if (this.#body === undefined) {
        const n = Math.min(RECORD_HEADER - this.#headerFill, chunk.length - at);
        this.#header.set(chunk.subarray(at, at + n), this.#headerFill);
        this.#headerFill += n;
        at += n;
        this.work.scanned += n;
        if (this.#headerFill < RECORD_HEADER) break;
        this.#headerFill = 0;
        const length = (this.#header[3]! << 8) | this.#header[4]!;
        // Anything but a handshake record means the server's first flight is
        // over; an oversized record is Node's to refuse.
        if (this.#header[0] !== HANDSHAKE || length > MAX_RECORD_BODY) {
          this.done = true;
          break;
        }
        if (chunk.length - at >= length) {
          // the whole record is at hand: read it in place
          this.work.scanned += length;
          this.#record(chunk.subarray(at, at + length));
          at += length;
          continue;
        }
        this.#body = new Uint8Array(length);
        this.#bodyFill = 0;
      }
      const body = this.#body;
      const n = Math.min(body.length - this.#bodyFill, chunk.length - at);
      body.set(chunk.subarray(at, at + n), this.#bodyFill);
      this.#bodyFill += n;
      at += n;
      this.work.scanned += n;
      this.work.copied += n;
      if (this.#bodyFill === body.length) {
        this.#body = undefined;
        this.#record(body);
      }
    }
    return !this.done;
  }

  /** The handshake messages of one record. */
  #record(body: Uint8Array): void {
    for (let at = 0; at < body.length;) {
      const type = body[at]!;
      const size = at + 4 <= body.length ? uint24(body, at + 1) : undefined;
      if (size === undefined || at + 4 + size > body.length) {
        this.splitMessage = { name: MESSAGE_NAMES[type] ?? `handshake type ${type}`, size };
        this.done = true;
        return;
      }
      const message = body.subarray(at + 4, at + 4 + size);
      if (type === 11) this.serverChain = certificates(message);
      if (type === 13) this.certificateRequested = true;
      if (type === 14) {
        this.done = true; // ServerHelloDone
        return;
      }
      at += 4 + size;
    }
  }
}

function uint24(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 16) | (bytes[at + 1]! << 8) | bytes[at + 2]!;
}

/** A TLS 1.2 Certificate body: a 3-byte total, then 3-byte-length-prefixed DER, each copied out. */
function certificates(body: Uint8Array): Uint8Array[] {
  const list: Uint8Array[] = [];
  for (let at = 3; at + 3 <= body.length;) {
    const end = Math.min(body.length, at + 3 + uint24(body, at));
    list.push(new Uint8Array(body.subarray(at + 3, end))); // a copy: a Buffer's slice() is a view
    at = end;
  }
  return list;
}
