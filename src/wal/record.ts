import { crc32 } from 'node:zlib';

// WAL record framing, format version 1.
//
// A segment file starts with a 16-byte header: the magic "CAIRNWAL", u32le format version,
// u32le crc32 of those 12 bytes. Records follow back to back:
//
//   u32le payload length | u32le crc32(type byte + payload) | u8 type | payload
//
// The rest of a segment is preallocated zeros; a zero length marks the end. A record whose
// crc fails, or that runs past the end of the file, is a torn write if nothing but zeros
// follows it in the last segment (the tail is cut off at start-up), and corruption
// otherwise (the member refuses to start, naming the file and offset).
//
// Payloads (all integers big-endian):
//   METADATA   opaque bytes owned by the server (cluster and member identity)
//   ENTRY      u64 term | u64 index | u8 entry type | data
//   HARD_STATE u64 term | u64 vote (uint64 member id) | u64 commit
//   SNAPSHOT   u64 index | u64 term | opaque bytes of the server's (the Raft snapshot
//              metadata, membership included)   (a snapshot at this point is durable; older
//              entries may be gone)

export const WAL_FORMAT_VERSION = 1;
export const SEGMENT_MAGIC = Buffer.from('CAIRNWAL', 'latin1');
export const SEGMENT_HEADER_BYTES = 16;
export const RECORD_HEADER_BYTES = 9;
/** Where a framed record keeps its type (after its length and CRC). */
export const RECORD_TYPE_OFFSET = 8;
/** No single record may exceed this; a longer length field means corruption. */
export const RECORD_PAYLOAD_MAX_BYTES = 64 * 1024 * 1024;

export const enum RecordType {
  Metadata = 1,
  Entry = 2,
  HardState = 3,
  Snapshot = 4,
}

export function segmentHeader(): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(b, 0);
  b.writeUInt32LE(WAL_FORMAT_VERSION, 8);
  b.writeUInt32LE(crc32(b.subarray(0, 12)), 12);
  return b;
}

export function checkSegmentHeader(b: Buffer): string | undefined {
  if (b.length < SEGMENT_HEADER_BYTES) return 'segment shorter than its header';
  if (!b.subarray(0, 8).equals(SEGMENT_MAGIC)) return 'not a cairn WAL segment (bad magic)';
  if (b.readUInt32LE(12) !== crc32(b.subarray(0, 12))) return 'segment header checksum mismatch';
  const version = b.readUInt32LE(8);
  if (version !== WAL_FORMAT_VERSION) return `unsupported WAL format version ${version}`;
  return undefined;
}

/** Frames one record into `out` at `offset`; returns the new offset. */
export function frameRecord(type: RecordType, payload: Buffer): Buffer {
  const b = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  b.writeUInt32LE(payload.length, 0);
  b[RECORD_TYPE_OFFSET] = type;
  payload.copy(b, RECORD_HEADER_BYTES);
  b.writeUInt32LE(crc32(b.subarray(RECORD_TYPE_OFFSET)), 4);
  return b;
}

/** Frames an ENTRY record (u64 term | u64 index | u8 type | data) in one allocation and one copy of `data`. */
export function frameEntry(term: number, index: number, entryType: number, data: Uint8Array): Buffer {
  const length = 17 + data.length;
  const b = Buffer.allocUnsafe(RECORD_HEADER_BYTES + length);
  b.writeUInt32LE(length, 0);
  b[RECORD_TYPE_OFFSET] = RecordType.Entry;
  writeU64(b, RECORD_HEADER_BYTES, term);
  writeU64(b, RECORD_HEADER_BYTES + 8, index);
  b[RECORD_HEADER_BYTES + 16] = entryType;
  b.set(data, RECORD_HEADER_BYTES + 17);
  b.writeUInt32LE(crc32(b.subarray(RECORD_TYPE_OFFSET)), 4);
  return b;
}

export type ParsedRecord = { type: RecordType; payload: Buffer; offset: number; end: number };
export type ParseOutcome =
  | { kind: 'record'; record: ParsedRecord }
  | { kind: 'end' }
  | { kind: 'bad'; offset: number; reason: string; claimedEnd: number };

/** Parses the record at `offset` of a segment's bytes. */
export function parseRecord(b: Buffer, offset: number): ParseOutcome {
  if (offset + RECORD_HEADER_BYTES > b.length) {
    return allZero(b, offset, b.length) ? { kind: 'end' } : { kind: 'bad', offset, reason: 'truncated record header', claimedEnd: b.length };
  }
  const length = b.readUInt32LE(offset);
  const crc = b.readUInt32LE(offset + 4);
  if (length === 0 && crc === 0 && b[offset + RECORD_TYPE_OFFSET] === 0) return { kind: 'end' };
  const end = offset + RECORD_HEADER_BYTES + length;
  if (length > RECORD_PAYLOAD_MAX_BYTES || end > b.length) {
    return { kind: 'bad', offset, reason: `record length ${length} runs past the end of the segment`, claimedEnd: b.length };
  }
  if (crc32(b.subarray(offset + RECORD_TYPE_OFFSET, end)) !== crc) return { kind: 'bad', offset, reason: 'record checksum mismatch', claimedEnd: end };
  const type = b[offset + RECORD_TYPE_OFFSET] as RecordType;
  if (type < RecordType.Metadata || type > RecordType.Snapshot) return { kind: 'bad', offset, reason: `unknown record type ${type}`, claimedEnd: end };
  return { kind: 'record', record: { type, payload: b.subarray(offset + RECORD_HEADER_BYTES, end), offset, end } };
}

export function allZero(b: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

export function writeU64(b: Buffer, offset: number, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`wal: cannot encode ${n} as u64`);
  b.writeUInt32BE(Math.floor(n / 0x1_0000_0000), offset);
  b.writeUInt32BE(n >>> 0, offset + 4);
}

export function readU64(b: Buffer, offset: number): number {
  const n = b.readUInt32BE(offset) * 0x1_0000_0000 + b.readUInt32BE(offset + 4);
  if (!Number.isSafeInteger(n)) throw new Error(`wal: u64 at offset ${offset} exceeds 2^53`);
  return n;
}
