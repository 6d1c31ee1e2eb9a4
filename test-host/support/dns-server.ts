// A tiny authoritative DNS server on loopback UDP, for the tests that resolve
// names through a host's own resolver (the Moddable host's UDP resolver, the
// Node host's `dnsServers`): A records for the names it is given, NXDOMAIN
// for every other name. Port 53, because Moddable's resolver asks no other
// port; on a random 127.x.y.z address, so that concurrent runs don't collide.

import dgram from "node:dgram";

export interface DnsServer {
  /** The address it listens on (port 53). */
  readonly address: string;
  /** "name A?" of every query, in order. */
  readonly queries: string[];
  close(): void;
}

const TYPE_A = 1;
const CLASS_IN = 1;
const RCODE_NXDOMAIN = 3;

/**
 * Starts the server; `records` maps a name (lower case, no trailing dot) to
 * its IPv4 address. Rejects when port 53 cannot be bound (not root, no
 * CAP_NET_BIND_SERVICE).
 */
export async function startDnsServer(records: Readonly<Record<string, string>>): Promise<DnsServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 8; attempt++) {
    const address = `127.${1 + rand(250)}.${rand(256)}.${1 + rand(250)}`;
    const socket = dgram.createSocket("udp4");
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("error", reject);
        socket.bind(53, address, () => {
          socket.off("error", reject);
          resolve();
        });
      });
    } catch (error) {
      socket.close();
      lastError = error;
      if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") continue;
      break;
    }
    const queries: string[] = [];
    socket.on("message", (message, peer) => {
      const reply = answer(message, records, queries);
      if (reply) socket.send(reply, peer.port, peer.address);
    });
    return { address, queries, close: () => socket.close() };
  }
  throw new Error(`cannot bind a DNS server to port 53: ${(lastError as Error).message}`);
}

function rand(n: number): number {
  return Math.floor(Math.random() * n);
}

/** The reply to one query, or undefined for a packet that is not one. */
function answer(query: Buffer, records: Readonly<Record<string, string>>, log: string[]): Buffer | undefined {
  if (query.length < 12 || (query[2]! & 0x80) !== 0 || query.readUInt16BE(4) !== 1) return undefined;
  // The question: length-prefixed labels, a zero byte, then type and class.
  const labels: string[] = [];
  let at = 12;
  while (at < query.length && query[at] !== 0) {
    const length = query[at]!;
    if (length > 63 || at + 1 + length > query.length) return undefined;
    labels.push(query.toString("latin1", at + 1, at + 1 + length));
    at += 1 + length;
  }
  const end = at + 5;
  if (end > query.length) return undefined;
  const type = query.readUInt16BE(at + 1);
  const name = labels.join(".").toLowerCase();
  log.push(`${name} ${type === TYPE_A ? "A" : `type ${type}`}?`);
  const address = records[name];
  const found = address !== undefined && type === TYPE_A && query.readUInt16BE(at + 3) === CLASS_IN;

  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // id
  // QR, the query's opcode and RD, AA; RA; NXDOMAIN for an unknown name.
  header[2] = 0x80 | (query[2]! & 0x79) | 0x04;
  header[3] = 0x80 | (address === undefined ? RCODE_NXDOMAIN : 0);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(found ? 1 : 0, 6);
  const question = query.subarray(12, end);
  if (!found) return Buffer.concat([header, question]);
  const record = Buffer.alloc(16);
  record.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
  record.writeUInt16BE(TYPE_A, 2);
  record.writeUInt16BE(CLASS_IN, 4);
  record.writeUInt32BE(60, 6); // TTL
  record.writeUInt16BE(4, 10);
  address.split(".").forEach((part, i) => (record[12 + i] = Number(part)));
  return Buffer.concat([header, question, record]);
}
