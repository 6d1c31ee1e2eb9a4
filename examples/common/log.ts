// lws-style logging for the examples: `lwsl.user(...)` prints
// "[2026/01/02 03:04:05:6789] U: ..." on stderr, as lwsl_user() does, and
// `-d <bits>` picks the levels with lws' bits (ERR 1, WARN 2, NOTICE 4,
// INFO 8, USER 1024; the default 1031 is lws' too).

export const LLL = { ERR: 1, WARN: 2, NOTICE: 4, INFO: 8, USER: 1024 } as const;

let levels: number = LLL.USER | LLL.NOTICE | LLL.WARN | LLL.ERR;

/** lws_set_log_level(). */
export function setLogLevel(bits: number): void {
  levels = bits;
}

function stamp(): string {
  const d = new Date();
  const two = (n: number) => String(n).padStart(2, "0");
  return `[${d.getFullYear()}/${two(d.getMonth() + 1)}/${two(d.getDate())} ` +
    `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}:${String(d.getMilliseconds() * 10).padStart(4, "0")}]`;
}

function emit(bit: number, tag: string, message: string): void {
  if (levels & bit) process.stderr.write(`${stamp()} ${tag}: ${message}\n`);
}

export const lwsl = {
  err: (message: string) => emit(LLL.ERR, "E", message),
  warn: (message: string) => emit(LLL.WARN, "W", message),
  notice: (message: string) => emit(LLL.NOTICE, "N", message),
  info: (message: string) => emit(LLL.INFO, "I", message),
  user: (message: string) => emit(LLL.USER, "U", message),
};

/** lwsl_hexdump_info(): up to 32 bytes of payload, as hex and text, at INFO level. */
export function hexdumpInfo(bytes: Uint8Array): void {
  if (!(levels & LLL.INFO) || !bytes.length) return;
  const head = bytes.subarray(0, 32);
  const hex = Array.from(head, (b) => b.toString(16).padStart(2, "0")).join(" ");
  const text = Array.from(head, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
  emit(LLL.INFO, "I", `${hex}  ${text}${bytes.length > head.length ? ` ... (${bytes.length} bytes)` : ""}`);
}
