import { KeyValue, Revision } from './types';

// LevelDB layout of the store, format version 1.
//
//   "r" | main u64be | sub u64be          -> revision record (one change of one write txn)
//   "m" | name                             -> store metadata (see META_* below)
//
// A revision record:
//   u8  format version (1)
//   u8  flags: bit 0 = tombstone (the key was deleted at this revision)
//   u64be create_revision
//   u64be version
//   i64be lease
//   u32be key length, key bytes, then the value bytes to the end of the record.
// The mod_revision of the record is the main revision in its LevelDB key. Records are never
// rewritten; compaction deletes whole records.

export const RECORD_FORMAT_VERSION = 1;
const FLAG_TOMBSTONE = 1;
const HEADER_BYTES = 2 + 8 + 8 + 8 + 4;

export const REV_PREFIX = 0x72; // 'r'
export const META_PREFIX = 0x6d; // 'm'

export const META_APPLIED_INDEX = metaKey('applied_index');
export const META_COMPACT_SCHEDULED = metaKey('compact_scheduled');
export const META_COMPACT_FINISHED = metaKey('compact_finished');

export function metaKey(name: string): Buffer {
  return Buffer.concat([Buffer.of(META_PREFIX), Buffer.from(name, 'utf8')]);
}

export function revKey(rev: Revision): Buffer {
  const b = Buffer.allocUnsafe(17);
  b[0] = REV_PREFIX;
  writeU64(b, 1, rev.main);
  writeU64(b, 9, rev.sub);
  return b;
}

export function parseRevKey(b: Buffer): Revision {
  if (b.length !== 17 || b[0] !== REV_PREFIX) throw new Error(`mvcc: not a revision key: ${b.toString('hex')}`);
  return { main: readU64(b, 1), sub: readU64(b, 9) };
}

export interface DecodedRecord {
  kv: KeyValue;
  tombstone: boolean;
}

/** The bytes of `kv`'s record. */
export function recordSize(kv: KeyValue): number {
  return HEADER_BYTES + kv.key.length + kv.value.length;
}

/** Encodes a revision record. */
export function encodeRecord(kv: KeyValue, tombstone: boolean): Buffer {
  const b = Buffer.allocUnsafe(recordSize(kv));
  encodeRecordInto(b, 0, kv, tombstone);
  return b;
}

/** Throws what encodeRecordInto would, before anything is written or reserved for the record. */
export function checkRecordFields(kv: KeyValue): void {
  checkU64(kv.createRevision);
  checkU64(kv.version);
  if (kv.lease < INT64_MIN || kv.lease > INT64_MAX) throw new Error(`mvcc: lease ${kv.lease} is not a 64-bit integer`);
}

/**
 * Encodes a revision record into `b` at `off` (recordSize(kv) bytes). A field it cannot
 * encode throws part way through: a caller writing into memory others read (the store's
 * arena) calls checkRecordFields first.
 */
export function encodeRecordInto(b: Buffer, off: number, kv: KeyValue, tombstone: boolean): void {
  b[off] = RECORD_FORMAT_VERSION;
  b[off + 1] = tombstone ? FLAG_TOMBSTONE : 0;
  writeU64(b, off + 2, kv.createRevision);
  writeU64(b, off + 10, kv.version);
  b.writeBigInt64BE(kv.lease, off + 18);
  b.writeUInt32BE(kv.key.length, off + 26);
  kv.key.copy(b, off + HEADER_BYTES);
  kv.value.copy(b, off + HEADER_BYTES + kv.key.length);
}

/** The key-value a live record holds at `modRevision`, its key and value viewing the record's bytes (no copy). */
export function recordToKeyValue(b: Buffer, modRevision: number): KeyValue {
  const keyEnd = HEADER_BYTES + b.readUInt32BE(26);
  return {
    key: b.subarray(HEADER_BYTES, keyEnd),
    value: b.subarray(keyEnd),
    createRevision: readU64(b, 2),
    modRevision,
    version: readU64(b, 10),
    lease: recordLease(b),
  };
}

/** A record's lease (most keys have none: no BigInt made for them). */
export function recordLease(b: Buffer): bigint {
  return b.readUInt32BE(18) === 0 && b.readUInt32BE(22) === 0 ? 0n : b.readBigInt64BE(18);
}

export function recordVersion(b: Buffer): number {
  return readU64(b, 10);
}

export function recordCreateRevision(b: Buffer): number {
  return readU64(b, 2);
}

export function isTombstoneRecord(b: Buffer): boolean {
  return (b[1] & FLAG_TOMBSTONE) !== 0;
}

/** The record's key as the store's index string (latin1: one UTF-16 unit per byte), checked against the record's length. */
export function recordIndexKey(rev: Revision, b: Buffer): string {
  if (b.length < HEADER_BYTES || b[0] !== RECORD_FORMAT_VERSION) {
    throw new Error(`mvcc: unreadable record at revision ${rev.main}.${rev.sub} (format ${b[0]})`);
  }
  const keyEnd = HEADER_BYTES + b.readUInt32BE(26);
  if (keyEnd > b.length) throw new Error(`mvcc: truncated record at revision ${rev.main}.${rev.sub}`);
  return b.toString('latin1', HEADER_BYTES, keyEnd);
}

/** The key and value bytes inside an encoded record (views, no copy). */
export function recordKeyValue(b: Buffer): { key: Buffer; value: Buffer } {
  const keyLength = b.readUInt32BE(26);
  return { key: b.subarray(HEADER_BYTES, HEADER_BYTES + keyLength), value: b.subarray(HEADER_BYTES + keyLength) };
}

export function decodeRecord(rev: Revision, b: Buffer): DecodedRecord {
  if (b.length < HEADER_BYTES || b[0] !== RECORD_FORMAT_VERSION) {
    throw new Error(`mvcc: unreadable record at revision ${rev.main}.${rev.sub} (format ${b[0]})`);
  }
  const keyLength = b.readUInt32BE(26);
  if (HEADER_BYTES + keyLength > b.length) throw new Error(`mvcc: truncated record at revision ${rev.main}.${rev.sub}`);
  const key = Buffer.from(b.subarray(HEADER_BYTES, HEADER_BYTES + keyLength));
  const value = Buffer.from(b.subarray(HEADER_BYTES + keyLength));
  return {
    tombstone: (b[1] & FLAG_TOMBSTONE) !== 0,
    kv: {
      key,
      value,
      createRevision: readU64(b, 2),
      modRevision: rev.main,
      version: readU64(b, 10),
      lease: b.readBigInt64BE(18),
    },
  };
}

export function encodeU64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  writeU64(b, 0, n);
  return b;
}

export function decodeU64(b: Buffer): number {
  return readU64(b, 0);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function checkU64(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`mvcc: cannot encode ${n} as u64`);
}

function writeU64(b: Buffer, offset: number, n: number): void {
  checkU64(n);
  b.writeUInt32BE(Math.floor(n / 0x1_0000_0000), offset);
  b.writeUInt32BE(n >>> 0, offset + 4);
}

function readU64(b: Buffer, offset: number): number {
  const n = b.readUInt32BE(offset) * 0x1_0000_0000 + b.readUInt32BE(offset + 4);
  if (!Number.isSafeInteger(n)) throw new Error(`mvcc: u64 at offset ${offset} exceeds 2^53`);
  return n;
}
