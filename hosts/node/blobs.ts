// Blob storage with the device's limits: in memory, or one file per blob.

import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { BlobStore } from "../../src/host.js";

/** ESP32 NVS, through Moddable's Preference: keys up to 15 characters, values up to 4000 bytes. */
export const BLOB_LIMITS = { nameLength: 15, valueBytes: 4000 } as const;

// No leading dot: that rules out "." and "..", and keeps FileBlobStore's
// temporary files (".name.tmp") out of the name space.
const blobName = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

function checkBlobName(name: string): void {
  if (!blobName.test(name) || name.length > BLOB_LIMITS.nameLength) {
    throw new RangeError(`bad blob name ${JSON.stringify(name)}: use 1-${BLOB_LIMITS.nameLength} of [A-Za-z0-9_.-], not starting with '.'`);
  }
}

function checkBlobValue(name: string, value: Uint8Array): void {
  if (value.byteLength > BLOB_LIMITS.valueBytes) {
    throw new RangeError(`blob ${name} is ${value.byteLength} bytes; the device stores at most ${BLOB_LIMITS.valueBytes}`);
  }
}

/** Blobs in memory; values are copied in and out, as the file store does. */
export class MemoryBlobStore implements BlobStore {
  readonly #values = new Map<string, Uint8Array>();

  get(name: string): Uint8Array | undefined {
    checkBlobName(name);
    return this.#values.get(name)?.slice();
  }

  set(name: string, value: Uint8Array): void {
    checkBlobName(name);
    checkBlobValue(name, value);
    this.#values.set(name, value.slice());
  }

  delete(name: string): void {
    checkBlobName(name);
    this.#values.delete(name);
  }
}

/** One file per blob in `dir`; a write goes to a temporary file and is renamed into place. */
export class FileBlobStore implements BlobStore {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
    mkdirSync(dir, { recursive: true });
  }

  get(name: string): Uint8Array | undefined {
    checkBlobName(name);
    try {
      return new Uint8Array(readFileSync(path.join(this.#dir, name)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }

  set(name: string, value: Uint8Array): void {
    checkBlobName(name);
    checkBlobValue(name, value);
    const temporary = path.join(this.#dir, `.${name}.tmp`);
    writeFileSync(temporary, value);
    renameSync(temporary, path.join(this.#dir, name));
  }

  delete(name: string): void {
    checkBlobName(name);
    rmSync(path.join(this.#dir, name), { force: true });
  }
}
