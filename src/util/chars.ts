// Character classes and scans over char codes, in place of regular
// expressions: no RegExp runs on the device. In the Moddable SDK (8.2.3), a
// RegExp preloaded in flash gets its match data from a malloc that is never
// freed and that a garbage collection during the match takes for a chunk
// (docs/footprint.md), and a RegExp literal in a function is compiled again
// on every evaluation. test-host/device-manifest.test.ts keeps src/ and
// hosts/moddable free of them; test-host/chars.test.ts holds each scan to the
// RegExp it replaced.
//
// XS caches where the last charCodeAt was in a string, so a scan from left
// to right is linear.

/** Bits of CLASS: what a char code (0-255) may be. */
const TOKEN = 1; // tchar (RFC 9110 5.6.2): field names, methods
const FIELD = 2; // field value: HTAB, SP, visible ASCII, obs-text (0x80-0xff); no other control, no DEL
const VISIBLE = 4; // visible ASCII, 0x21-0x7e
const DIGIT = 8;
const HOST = 16; // host name: letters, digits, '.', '-'

/**
 * The classes of every Latin-1 char code, as the code of the char at that
 * index (a string: a module-level typed array could not be frozen in flash).
 * charCodeAt past the end gives NaN, in no class.
 */
const CLASS = /* @__PURE__ */ (() => {
  const table: number[] = [];
  const token = "!#$%&'*+-.^_`|~";
  for (let c = 0; c < 256; c++) {
    const alnum = (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a);
    let bits = c === 0x09 || (c >= 0x20 && c !== 0x7f) ? FIELD : 0;
    if (c > 0x20 && c < 0x7f) bits |= VISIBLE;
    if (alnum || token.includes(String.fromCharCode(c))) bits |= TOKEN;
    if (c >= 0x30 && c <= 0x39) bits |= DIGIT;
    if (alnum || c === 0x2d || c === 0x2e) bits |= HOST;
    table.push(bits);
  }
  return String.fromCharCode.apply(null, table);
})();

/** The index of the first char of s[from, to) not in `cls`, or -1. */
function findNot(cls: number, s: string, from: number, to: number): number {
  for (let k = from; k < to; k++) if ((CLASS.charCodeAt(s.charCodeAt(k)) & cls) === 0) return k;
  return -1;
}

// A loop costs some 25 computrons a char on XS, a native call some 10 in all:
// the usual strings are answered by natives first. Each of these may say no
// to a string that is fine (it is then scanned char by char), never yes to
// one that is not.

/** Only A-Z a-z 0-9 - _ . ! ~ * ' ( ): what encodeURIComponent leaves as it is. */
function uriUnreserved(s: string): boolean {
  try {
    return encodeURIComponent(s) === s;
  } catch {
    return false; // a lone surrogate
  }
}

/** Only visible ASCII: encodeURI leaves unreserved chars and ; / ? : @ & = + $ , # as they are. */
function uriPlain(s: string): boolean {
  try {
    return encodeURI(s) === s;
  } catch {
    return false;
  }
}

/** Only tchars: URI-unreserved ones, '(' and ')' excepted. */
export function isPlainToken(s: string): boolean {
  return uriUnreserved(s) && !s.includes("(") && !s.includes(")");
}

/**
 * Whether the Latin-1 text `s`, which holds `breaks` CRLFs, holds no other
 * control char, no '"' or '\' and no DEL. JSON.stringify escapes each char
 * below 0x20 (CR and LF as two chars each), '"' and '\', and nothing else
 * in Latin-1: any of them but the CRLFs makes the result longer.
 */
export function isPlainText(s: string, breaks: number): boolean {
  return JSON.stringify(s).length === s.length + 2 + 2 * breaks && !s.includes("\x7f");
}

/** The first char of s that is not a tchar, or -1. */
export function findNotToken(s: string): number {
  return isPlainToken(s) ? -1 : findNot(TOKEN, s, 0, s.length);
}
/**
 * The first char of s that a field value cannot hold, or -1.
 * Natively first: plain text, and escape() (Annex B, in XS) writes "%u" for
 * each char above 0xff and for nothing else.
 */
export function findNotField(s: string): number {
  return isPlainText(s, 0) && !escape(s).includes("%u") ? -1 : findNot(FIELD, s, 0, s.length);
}
/** The first char of s that is not visible ASCII (0x21-0x7e), or -1. */
export const findNotVisible = (s: string): number => (uriPlain(s) ? -1 : findNot(VISIBLE, s, 0, s.length));
/** Whether s has a char other than a letter, digit, '.' or '-'. */
export const hasNotHostName = (s: string): boolean => findNot(HOST, s, 0, s.length) >= 0;
/** Whether s is one or more ASCII digits, nothing else. */
export function isDigits(s: string): boolean {
  const n = Number(s);
  // "4096" is its number written back; "04096", "+1", " 1", "1e3", "0x1f", "-0" are not
  if (Number.isSafeInteger(n) && n >= 0 && String(n) === s) return true;
  return s.length > 0 && findNot(DIGIT, s, 0, s.length) < 0;
}

/** Whether s holds CR, LF or NUL. */
export function hasCrLfNul(s: string): boolean {
  return s.indexOf("\r") >= 0 || s.indexOf("\n") >= 0 || s.indexOf("\0") >= 0;
}

/** Whether s holds a char code in 0x80-0xff. */
export function hasHighLatin1(s: string): boolean {
  if (uriPlain(s)) return false;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c >= 0x80 && c <= 0xff) return true;
  }
  return false;
}

/** Whether s holds a high surrogate not followed by a low one, or a low one not after a high one. */
export function hasLoneSurrogate(s: string): boolean {
  if (uriPlain(s)) return false;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c >= 0xdc00) return true; // a low surrogate no high one took
    const next = s.charCodeAt(k + 1); // NaN past the end
    if (!(next >= 0xdc00 && next <= 0xdfff)) return true;
    k++; // the pair
  }
  return false;
}

/** The four numbers of a dotted-quad IPv4 address ("192.0.2.1": each 1 to 3 digits, at most 255), or undefined. */
export function ipv4Octets(s: string): number[] | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const octets: number[] = [];
  for (const part of parts) {
    if (part.length > 3 || !isDigits(part) || Number(part) > 255) return undefined;
    octets.push(Number(part));
  }
  return octets;
}

/** Whether s holds an ASCII capital letter. */
export function hasAsciiUpper(s: string): boolean {
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c >= 0x41 && c <= 0x5a) return true;
  }
  return false;
}
