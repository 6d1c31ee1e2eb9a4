// The simulator's policy slots (src/system/policy-store.ts): a directory
// with `slot0.ssp`, `slot1.ssp` and `active` (the slot in force, one ASCII
// digit). A slot is written in blocks, as flash is, and flushed to the disk
// before the switch; `active` is replaced atomically (writeFileAtomic).

import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import path from "node:path";
import type { PolicyStore, PolicyWriter } from "../../src/system/policy-store.js";
import { syncDirectory, writeFileAtomic } from "./blobs.js";

export interface FilePolicyStoreOptions {
  /** Most bytes a slot holds (default 64 KiB). */
  readonly slotBytes?: number;
  /** Bytes per write (default 4096, a flash sector). */
  readonly blockBytes?: number;
  /**
   * Called after each step that changes the disk (a block written, a flush,
   * the switch), numbered from 1: the crash tests end the process there.
   */
  readonly onWriteStep?: (step: number, what: string) => void;
}

export class FilePolicyStore implements PolicyStore {
  readonly slotBytes: number;
  readonly #dir: string;
  readonly #blockBytes: number;
  readonly #onStep: ((step: number, what: string) => void) | undefined;
  #steps = 0;

  constructor(dir: string, options: FilePolicyStoreOptions = {}) {
    this.#dir = dir;
    this.slotBytes = options.slotBytes ?? 64 * 1024;
    this.#blockBytes = options.blockBytes ?? 4096;
    this.#onStep = options.onWriteStep;
    mkdirSync(dir, { recursive: true });
  }

  #slotFile(slot: number): string {
    if (slot !== 0 && slot !== 1) throw new RangeError(`no policy slot ${slot}`);
    return path.join(this.#dir, `slot${slot}.ssp`);
  }

  #step(what: string): void {
    this.#onStep?.(++this.#steps, what);
  }

  active(): number | undefined {
    let text: string;
    try {
      text = readFileSync(path.join(this.#dir, "active"), "latin1");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    return text === "0" ? 0 : text === "1" ? 1 : undefined;
  }

  read(slot: number): Uint8Array | undefined {
    try {
      return new Uint8Array(readFileSync(this.#slotFile(slot)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  open(slot: number): PolicyWriter {
    const fd = openSync(this.#slotFile(slot), "w");
    const block = new Uint8Array(this.#blockBytes);
    let filled = 0;
    let written = 0;
    let closed = false;
    const flush = () => {
      if (!filled) return;
      writeSync(fd, block, 0, filled);
      written += filled;
      filled = 0;
      this.#step(`slot ${slot}: ${written} bytes written`);
    };
    return {
      write: (bytes) => {
        if (closed) throw new Error("write after close");
        if (written + filled + bytes.length > this.slotBytes) throw new RangeError(`policy slot ${slot} holds at most ${this.slotBytes} bytes`);
        for (let at = 0; at < bytes.length; ) {
          const n = Math.min(bytes.length - at, block.length - filled);
          block.set(bytes.subarray(at, at + n), filled);
          filled += n;
          at += n;
          if (filled === block.length) flush();
        }
      },
      close: () => {
        if (closed) return;
        flush();
        fsyncSync(fd);
        closeSync(fd);
        closed = true;
        syncDirectory(this.#dir);
        this.#step(`slot ${slot}: flushed`);
      },
      abort: () => {
        if (closed) return;
        closed = true;
        closeSync(fd);
      },
    };
  }

  activate(slot: number): void {
    this.#slotFile(slot);
    writeFileAtomic(path.join(this.#dir, "active"), new Uint8Array([0x30 + slot]), () => this.#step(`slot ${slot}: switch record written aside`));
    this.#step(`slot ${slot} in force`);
  }
}
