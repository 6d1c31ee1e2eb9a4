// lws_system's blobs (the device's identity and secrets) over the host's
// BlobStore: each kind has its name in the store (src/host.ts BLOB), the
// indices it takes and a size limit, so that a wrong value is refused when
// it is set, with a message that says why, not when a stream needs it.

import type { BlobStore } from "../host.js";
import { utf8Decode, utf8Encode } from "../util/utf8.js";
import { hasCrLfNul } from "../util/chars.js";

export interface BlobKind {
  /** How many values the kind has (index 0..count-1). */
  readonly count: number;
  readonly maxBytes: number;
  /** Text that ends up in a header or a protocol field: no NUL, CR or LF. */
  readonly text: boolean;
}

/** lws' blob kinds (lws_system_blob_item_t), by the name they have in the store. */
export const BLOB_KINDS = {
  /** 0: the access token (http_auth_header), 1: the refresh token the auth stream sends. */
  auth: { count: 2, maxBytes: 8192, text: true },
  /** DER, for policies with client_cert N. */
  client_cert: { count: 4, maxBytes: 8192, text: false },
  /** PKCS#8 DER. */
  client_key: { count: 4, maxBytes: 8192, text: false },
  device_serial: { count: 1, maxBytes: 64, text: true },
  fw_version: { count: 1, maxBytes: 64, text: true },
  device_type: { count: 1, maxBytes: 64, text: true },
  /** A DNS name. */
  ntp_server: { count: 1, maxBytes: 253, text: true },
  /** lws refuses a longer one. */
  mqtt_client_id: { count: 1, maxBytes: 128, text: true },
  mqtt_username: { count: 1, maxBytes: 512, text: true },
  mqtt_password: { count: 1, maxBytes: 4000, text: false },
} as const satisfies Record<string, BlobKind>;
for (const k of Object.values(BLOB_KINDS)) Object.freeze(k);
Object.freeze(BLOB_KINDS);

export type BlobKindName = keyof typeof BLOB_KINDS;

export type BlobErrorCode = "unknown-kind" | "bad-index" | "too-large" | "bad-text" | "store";

export class BlobError extends Error {
  // A field, defined on the instance: assigning this.name throws on the
  // device, where Error.prototype is frozen in flash.
  override readonly name = "BlobError";
  readonly code: BlobErrorCode;
  constructor(code: BlobErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** The store name of blob `kind` number `index`: `device_serial`, `auth` and `auth.1`, `client_cert.0`... */
export function blobName(kind: BlobKindName, index = 0): string {
  const k = kindOf(kind);
  if (!(Number.isInteger(index) && index >= 0 && index < k.count)) {
    throw new BlobError("bad-index", `blob ${kind} has no index ${index} (0..${k.count - 1})`);
  }
  // src/host.ts BLOB: the cert pairs always carry their index, the others only beyond 0
  if (kind === "client_cert" || kind === "client_key") return `${kind}.${index}`;
  return index ? `${kind}.${index}` : kind;
}

function kindOf(kind: string): BlobKind {
  const k = Object.prototype.hasOwnProperty.call(BLOB_KINDS, kind) ? (BLOB_KINDS as Record<string, BlobKind>)[kind] : undefined;
  if (!k) throw new BlobError("unknown-kind", `no blob kind ${JSON.stringify(kind)}`);
  return k;
}

export class Blobs {
  readonly #store: BlobStore;

  constructor(store: BlobStore) {
    this.#store = store;
  }

  get(kind: BlobKindName, index = 0): Uint8Array | undefined {
    const name = blobName(kind, index);
    return this.#call(name, () => this.#store.get(name));
  }

  set(kind: BlobKindName, value: Uint8Array, index = 0): void {
    const name = blobName(kind, index);
    const k = kindOf(kind);
    if (value.byteLength > k.maxBytes) throw new BlobError("too-large", `blob ${name} is ${value.byteLength} bytes; at most ${k.maxBytes}`);
    this.#call(name, () => this.#store.set(name, value));
  }

  getText(kind: BlobKindName, index = 0): string | undefined {
    const bytes = this.get(kind, index);
    if (!bytes) return undefined;
    const text = utf8Decode(bytes, 0, bytes.length);
    if (text === undefined) throw new BlobError("bad-text", `blob ${blobName(kind, index)} is not UTF-8`);
    return text;
  }

  setText(kind: BlobKindName, text: string, index = 0): void {
    if (kindOf(kind).text && hasCrLfNul(text)) throw new BlobError("bad-text", `blob ${kind} must be text without NUL, CR or LF`);
    this.set(kind, utf8Encode(text), index);
  }

  delete(kind: BlobKindName, index = 0): void {
    const name = blobName(kind, index);
    this.#call(name, () => this.#store.delete(name));
  }

  /** The store's own failures (a full flash, a broken file) as BlobError "store". */
  #call<T>(name: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw new BlobError("store", `blob ${name}: the store failed: ${String((e as Error)?.message ?? e)}`);
    }
  }
}
