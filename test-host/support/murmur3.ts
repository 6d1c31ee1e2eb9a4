// MurmurHash3 x86_32, incremental: the payload check the XS scenario tests
// compute on both sides (XS has no crypto, and a byte-wise SHA-256 in the XS
// interpreter would cost seconds per 10 MB). Word-at-a-time through a
// DataView, ~110 ms per MB in XS; its mixing, unlike FNV-1a's, lets every
// input bit reach every output bit. PORTABLE.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

export class Murmur3 {
  #h: number;
  #length = 0;
  /** Bytes of an unfinished 4-byte word carried from one update to the next. */
  #carry = 0;
  #carried = 0;

  constructor(seed = 0) {
    this.#h = seed | 0;
  }

  update(bytes: Uint8Array): this {
    let at = 0;
    const n = bytes.length;
    this.#length += n;
    while (this.#carried > 0 && this.#carried < 4 && at < n) {
      this.#carry |= bytes[at++]! << (8 * this.#carried++);
    }
    if (this.#carried === 4) {
      this.#h = mixBlock(this.#h, this.#carry);
      this.#carry = 0;
      this.#carried = 0;
    }
    if (at < n) {
      let h = this.#h;
      const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const end = at + ((n - at) & ~3);
      for (; at < end; at += 4) {
        let k = Math.imul(v.getUint32(at, true), C1);
        k = (k << 15) | (k >>> 17);
        h ^= Math.imul(k, C2);
        h = (h << 13) | (h >>> 19);
        h = (Math.imul(h, 5) + 0xe6546b64) | 0;
      }
      this.#h = h;
      for (; at < n; at++) this.#carry |= bytes[at]! << (8 * this.#carried++);
    }
    return this;
  }

  /** The hash, as 8 lower-case hex digits. Does not change the state. */
  digest(): string {
    let h = this.#h;
    if (this.#carried > 0) {
      let k = Math.imul(this.#carry, C1);
      k = (k << 15) | (k >>> 17);
      h ^= Math.imul(k, C2);
    }
    h ^= this.#length;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return (h >>> 0).toString(16).padStart(8, "0");
  }
}

function mixBlock(h: number, word: number): number {
  let k = Math.imul(word, C1);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, C2);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** One-shot MurmurHash3 x86_32 of `bytes`, hex. */
export function murmur3(bytes: Uint8Array, seed = 0): string {
  return new Murmur3(seed).update(bytes).digest();
}
