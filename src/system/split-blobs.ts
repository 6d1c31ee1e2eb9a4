// Blobs bigger than one stored value (Preference on the ESP32 takes about
// 4000 bytes a value): split into pieces, put back together when read. The
// head value under the blob's own name says how many pieces, their
// generation, the length and a CRC-32; the pieces of a new value are written
// under the other generation's names before the head is replaced, so a
// power cut leaves the old value or the new one, never a mix.

import type { BlobStore } from "../host.js";
import { crc32 } from "../util/crc32.js";

/** "SSpc": a head. A value that starts with it is stored as a head too, so that nothing is ambiguous. */
const MAGIC: readonly number[] = Object.freeze([0x53, 0x53, 0x70, 0x63]);
const HEAD_SIZE = 4 + 1 + 1 + 4 + 4; // magic, generation, count, length, CRC
/** Piece names: the blob's name, a generation mark, an index mark. */
const GENERATION = "-_";
const INDEX = "0123456789abcdefghijklmnopqrstuvwxyz";
/** Store names are at most this long (ESP32 NVS keys). */
const NAME_LENGTH = 15;

const u32 = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;

function putU32(b: Uint8Array, at: number, n: number): void {
  for (let i = 0; i < 4; i++) b[at + i] = (n >>> (8 * i)) & 0xff;
}

const isHead = (v: Uint8Array | undefined): v is Uint8Array =>
  v !== undefined && v.length === HEAD_SIZE && MAGIC.every((b, i) => v[i] === b);

const startsWithMagic = (v: Uint8Array): boolean => v.length >= 4 && MAGIC.every((b, i) => v[i] === b);

export class SplitBlobStore implements BlobStore {
  readonly #store: BlobStore;
  readonly #pieceBytes: number;

  /** `pieceBytes`: the most one value of `store` holds. */
  constructor(store: BlobStore, pieceBytes: number) {
    this.#store = store;
    this.#pieceBytes = pieceBytes;
  }

  get(name: string): Uint8Array | undefined {
    const head = this.#store.get(name);
    if (!isHead(head)) return head;
    const generation = head[4]!;
    const count = head[5]!;
    const length = u32(head, 6);
    const out = new Uint8Array(length);
    let at = 0;
    for (let i = 0; i < count; i++) {
      const piece = this.#store.get(pieceName(name, generation, i));
      if (!piece || at + piece.length > length) throw new Error(`blob ${name}: piece ${i} of ${count} is missing or too long (damaged store)`);
      out.set(piece, at);
      at += piece.length;
    }
    if (at !== length || crc32(out) !== u32(head, 10)) throw new Error(`blob ${name}: its pieces do not add up to what its head says (damaged store)`);
    return out;
  }

  set(name: string, value: Uint8Array): void {
    const old = this.#store.get(name);
    if (value.length <= this.#pieceBytes && !startsWithMagic(value)) {
      this.#store.set(name, value);
    } else {
      const generation = isHead(old) ? old[4]! ^ 1 : 0;
      const count = Math.max(1, Math.ceil(value.length / this.#pieceBytes));
      if (count > INDEX.length) throw new RangeError(`blob ${name} is ${value.length} bytes: more than ${INDEX.length} pieces of ${this.#pieceBytes}`);
      if (name.length + 2 > NAME_LENGTH) throw new RangeError(`blob ${name} is over ${this.#pieceBytes} bytes, and its name is too long for its pieces' (${NAME_LENGTH - 2} characters at most)`);
      for (let i = 0; i < count; i++) {
        this.#store.set(pieceName(name, generation, i), value.subarray(i * this.#pieceBytes, (i + 1) * this.#pieceBytes));
      }
      const head = new Uint8Array(HEAD_SIZE);
      head.set(MAGIC);
      head[4] = generation;
      head[5] = count;
      putU32(head, 6, value.length);
      putU32(head, 10, crc32(value));
      this.#store.set(name, head);
    }
    // the old value's pieces (the other generation's names), now that nothing points at them
    if (isHead(old)) this.#dropPieces(name, old);
  }

  delete(name: string): void {
    const old = this.#store.get(name);
    this.#store.delete(name);
    if (isHead(old)) this.#dropPieces(name, old);
  }

  #dropPieces(name: string, head: Uint8Array): void {
    for (let i = 0; i < head[5]!; i++) this.#store.delete(pieceName(name, head[4]!, i));
  }
}

function pieceName(name: string, generation: number, i: number): string {
  return `${name}${GENERATION[generation & 1]}${INDEX[i]}`;
}
