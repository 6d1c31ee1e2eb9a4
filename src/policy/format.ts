// Layout constants of the compiled policy (docs/policy-format.md is the
// normative description). Shared by the host compiler and the device reader.

/** "SSPL" as bytes, read as a little-endian u32. */
export const MAGIC = 0x4c505353;
export const FORMAT_VERSION = 1;
export const HEADER_SIZE = 36;
/** An absent string reference. */
export const NONE = 0xffff;

export const H_MAGIC = 0; // u32
export const H_VERSION = 4; // u8
export const H_SCHEMA_VERSION = 5; // u8, 0xff: absent
export const H_RELEASE = 6; // u16 string
export const H_LENGTH = 8; // u32, the whole policy
export const H_CRC = 12; // u32, CRC-32 of every byte but these four
export const H_PRODUCT = 16; // u16 string
export const H_SOCKS5 = 18; // u16 string
export const H_TABLE_COUNTS = 20; // u8 entry counts of sections 0..4
export const H_INDEX_COUNT = 26; // u16 streamtype count
export const H_SECTION_LENGTHS = 28; // u16 byte lengths of sections 6..8

/**
 * Sections, in file order, right after the header and without padding: the
 * fixed-size tables first (their entries are multiples of 4 bytes, so they
 * stay 4-byte aligned), then the byte-addressed ones. DER runs to the end.
 */
export const S_RETRIES = 0;
export const S_CERTS = 1;
export const S_STORES = 2;
export const S_METRICS = 3;
export const S_AUTHS = 4;
export const S_INDEX = 5;
export const S_STRINGS = 6;
export const S_LISTS = 7;
export const S_RECORDS = 8;
export const S_DER = 9;
export const SECTION_COUNT = 10;

/** Entry size of each fixed-size table section (0: not a table). */
export const ENTRY_SIZE: readonly number[] = Object.freeze([4, 8, 4, 16, 8, 4, 0, 0, 0, 0]);

/** Sections addressed by u16 byte offsets (strings, lists, records) can be at most this long. */
export const MAX_U16_SECTION = 0xfffe;
/** Table sections count their entries in a u8. */
export const MAX_TABLE_ENTRIES = 255;

// retry entry (4 bytes): name, offset of its data in the list section. The
// data is [u8 present bits][LEB128 of each present RETRY_NUMBER_KEYS value, in that order]
// [u8 backoff count][count LEB128 delays in ms].
export const R_NAME = 0;
export const R_DATA = 2;

// cert entry (8 bytes)
export const C_NAME = 0;
export const C_LENGTH = 2;
export const C_OFFSET = 4;

// trust store entry (4 bytes): name, list offset of [u8 count][count u8 cert indices]
export const T_NAME = 0;
export const T_CERTS = 2;

// metrics entry (16 bytes)
export const M_NAME = 0;
export const M_REPORT = 2;
export const M_SCHEDULE = 4;
export const M_HALFLIFE = 8;
export const M_OUTLIER = 12;
export const M_PRESENT = 13; // bit i: METRIC_NUMBER_KEYS[i] is given

// auth entry (8 bytes)
export const A_NAME = 0;
export const A_TYPE = 2;
export const A_STREAMTYPE = 4;
export const A_BLOB = 6; // 0xff: absent

// index entry (4 bytes): name, record offset in the record section
export const I_NAME = 0;
export const I_RECORD = 2;
