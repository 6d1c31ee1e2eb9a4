// Incremental UTF-8 validation (RFC 3629): a text message may arrive in any
// number of frames and reads, and a character may be split between them.
// State is three small numbers; nothing is buffered.

export class Utf8Check {
  /** Continuation bytes still expected for the current character. */
  #need = 0;
  /** Range of the next continuation byte (narrower after E0, ED, F0, F4: no overlongs, surrogates or > U+10FFFF). */
  #lo = 0x80;
  #hi = 0xbf;

  /** Checks bytes[start, end); false at the first byte that cannot continue well-formed UTF-8. */
  push(bytes: Uint8Array, start = 0, end = bytes.length): boolean {
    let need = this.#need;
    let lo = this.#lo;
    let hi = this.#hi;
    for (let i = start; i < end; i++) {
      const b = bytes[i]!;
      if (need) {
        if (b < lo || b > hi) return false;
        need--;
        lo = 0x80;
        hi = 0xbf;
      } else if (b < 0x80) {
        continue;
      } else if (b >= 0xc2 && b <= 0xdf) {
        need = 1;
      } else if (b >= 0xe0 && b <= 0xef) {
        need = 2;
        if (b === 0xe0) lo = 0xa0;
        else if (b === 0xed) hi = 0x9f;
      } else if (b >= 0xf0 && b <= 0xf4) {
        need = 3;
        if (b === 0xf0) lo = 0x90;
        else if (b === 0xf4) hi = 0x8f;
      } else {
        return false;
      }
    }
    this.#need = need;
    this.#lo = lo;
    this.#hi = hi;
    return true;
  }

  /** No character is left half done. */
  get complete(): boolean {
    return this.#need === 0;
  }

  reset(): void {
    this.#need = 0;
    this.#lo = 0x80;
    this.#hi = 0xbf;
  }
}
