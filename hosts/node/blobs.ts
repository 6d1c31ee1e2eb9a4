// Blob storage with the device's limits: in memory, or one file per blob.

import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
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

/**
 * Writes `bytes` to `file` so that a crash at any point leaves either the old
 * file or the new one: a temporary file, flushed to the disk, renamed over it,
 * and the directory flushed so that the rename itself is durable.
 * `beforeRename` runs once the temporary file is on the disk (crash tests).
 */
export function writeFileAtomic(file: string, bytes: Uint8Array, beforeRename?: () => void): void {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  const fd = openSync(temporary, "w");
  try {
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  beforeRename?.();
  renameSync(temporary, file);
  syncDirectory(path.dirname(file));
}

/** Flushes a directory's entries (a rename, a new file) to the disk. */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** One file per blob in `dir`; a write is atomic (writeFileAtomic). */
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
    writeFileAtomic(path.join(this.#dir, name), value);
  }

  delete(name: string): void {
    checkBlobName(name);
    rmSync(path.join(this.#dir, name), { force: true });
  }
}
