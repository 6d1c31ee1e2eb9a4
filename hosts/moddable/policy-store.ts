// Policy slots on the device's file system (Moddable's `file` module: SPIFFS
// or littlefs on the ESP32, POSIX files in the simulator): `slot0.ssp`,
// `slot1.ssp` and `active`, in a directory. A slot is written as the
// download comes, and closed (committed) before the switch; the switch
// writes `active.tmp` and renames it over `active`, which the file system
// does atomically. The slot in force is read into one buffer at boot (the
// legacy file module cannot map a file; on a raw flash partition,
// Flash.map() would read it in place).

import { File } from "file";
import type { PolicyStore, PolicyWriter } from "../../src/system/policy-store.js";

export class FilePolicyStore implements PolicyStore {
  readonly slotBytes: number;
  readonly #dir: string;

  /** `dir` ends with "/" (e.g. config.file.root). */
  constructor(dir: string, slotBytes = 64 * 1024) {
    this.#dir = dir;
    this.slotBytes = slotBytes;
  }

  #slot(slot: number): string {
    if (slot !== 0 && slot !== 1) throw new RangeError(`no policy slot ${slot}`);
    return `${this.#dir}slot${slot}.ssp`;
  }

  active(): number | undefined {
    const path = `${this.#dir}active`;
    if (!File.exists(path)) return undefined;
    const f = new File(path);
    try {
      const text = f.read(String);
      return text === "0" ? 0 : text === "1" ? 1 : undefined;
    } finally {
      f.close();
    }
  }

  read(slot: number): Uint8Array | undefined {
    const path = this.#slot(slot);
    if (!File.exists(path)) return undefined;
    const f = new File(path);
    try {
      return new Uint8Array(f.read(ArrayBuffer));
    } finally {
      f.close();
    }
  }

  open(slot: number): PolicyWriter {
    const path = this.#slot(slot);
    // the file module opens for writing without truncating: start from nothing
    if (File.exists(path)) File.delete(path);
    const f = new File(path, true);
    let written = 0;
    let closed = false;
    return {
      write: (bytes) => {
        if (closed) throw new Error("write after close");
        if (written + bytes.length > this.slotBytes) throw new RangeError(`policy slot ${slot} holds at most ${this.slotBytes} bytes`);
        f.write(bytes.slice().buffer);
        written += bytes.length;
      },
      close: () => {
        if (closed) return;
        closed = true;
        f.close();
      },
      abort: () => {
        if (closed) return;
        closed = true;
        f.close();
      },
    };
  }

  activate(slot: number): void {
    this.#slot(slot);
    const temporary = `${this.#dir}active.tmp`;
    if (File.exists(temporary)) File.delete(temporary);
    const f = new File(temporary, true);
    f.write(String(slot));
    f.close();
    if (!File.rename(temporary, `${this.#dir}active`)) throw new Error(`cannot switch policy slots in ${this.#dir}`);
  }
}
