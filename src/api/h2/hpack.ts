// HPACK (RFC 7541): the header compression of HTTP/2, for the hand-written gRPC server.
//
// Decoding keeps the connection's dynamic table, as the peer's encoder built it. A gRPC client
// indexes the headers it repeats, so most fields of a request are one byte pointing into a table;
// those come back as the very string objects the table holds, and the only allocation per block
// is the output array. Strings are latin1 (one char per byte): header bytes are not UTF-8 text,
// and a latin1 string is the cheapest faithful copy.
//
// Encoding is stateless (literal without indexing, no Huffman), so a block can be encoded once
// and sent on any connection: it never touches the peer's table.

import { HpackError, huffmanDecode } from './huffman';

export { HpackError } from './huffman';

/** SETTINGS_HEADER_TABLE_SIZE's default (RFC 7540 6.5.2), the size we announce. */
export const DEFAULT_TABLE_SIZE_BYTES = 4096;
/** The largest table a decoder may be given; its slots are allocated up front. */
export const TABLE_SIZE_LIMIT_BYTES = 1 << 20;
/** What an entry costs beyond its name and value (RFC 7541 4.1). */
const ENTRY_OVERHEAD_BYTES = 32;
/** Integers past this are refused rather than risk losing precision (every real one is far smaller). */
const INTEGER_MAX = 2 ** 31 - 1;
/** 2^31 needs 31 bits past the prefix: at most 5 continuation bytes of 7 bits. */
const INTEGER_SHIFT_MAX = 28;

/** RFC 7541 Appendix A; index 1 is the first entry. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];
export const STATIC_TABLE_LENGTH = STATIC_TABLE.length;
// Indexed by HPACK index (slot 0 unused), so a lookup is one array read.
const STATIC_NAMES: readonly string[] = ['', ...STATIC_TABLE.map(([name]) => name)];
const STATIC_VALUES: readonly string[] = ['', ...STATIC_TABLE.map(([, value]) => value)];

interface Latin1Sliceable {
  // Buffer.prototype.latin1Slice is what toString('latin1') ends in; @types/node does not declare it.
  latin1Slice(start: number, end: number): string;
}

/** The decoding side of one connection's HPACK state (the peer encodes, we decode). */
export class HpackDecoder {
  /** The SETTINGS_HEADER_TABLE_SIZE we announced: the encoder may not ask for more. */
  private readonly tableSizeMaxBytes: number;
  /** The table size the encoder chose (a size update), at most tableSizeMaxBytes. */
  private tableCapacityBytes: number;
  private tableSizeBytes = 0;
  // The dynamic table, a ring: entry 1 (the newest) is at slot head - 1, entry count at head - count.
  // Every entry costs at least 32 bytes, so tableSizeMaxBytes / 32 slots always suffice.
  private readonly names: string[];
  private readonly values: string[];
  private readonly slotMask: number;
  private head = 0;
  private count = 0;
  /** Read position in the block being decoded. */
  private pos = 0;
  private failed = false;

  constructor(maxTableSize: number = DEFAULT_TABLE_SIZE_BYTES) {
    if (!Number.isInteger(maxTableSize) || maxTableSize < 0 || maxTableSize > TABLE_SIZE_LIMIT_BYTES) {
      throw new RangeError(`HpackDecoder: table size ${maxTableSize} is not an integer in 0..${TABLE_SIZE_LIMIT_BYTES}`);
    }
    this.tableSizeMaxBytes = maxTableSize;
    this.tableCapacityBytes = maxTableSize;
    let slots = 1;
    while (slots < maxTableSize / ENTRY_OVERHEAD_BYTES) slots *= 2;
    this.names = new Array<string>(slots).fill('');
    this.values = new Array<string>(slots).fill('');
    this.slotMask = slots - 1;
  }

  /** Bytes the dynamic table holds (RFC 7541 4.1: name + value + 32 per entry). */
  get dynamicTableSize(): number {
    return this.tableSizeBytes;
  }

  /** The dynamic table, newest entry first (for tests and diagnostics; allocates). */
  dynamicTable(): Array<[string, string]> {
    const entries: Array<[string, string]> = [];
    for (let i = 1; i <= this.count; i++) {
      const slot = (this.head - i) & this.slotMask;
      entries.push([this.names[slot], this.values[slot]]);
    }
    return entries;
  }

  /**
   * Decodes one complete header block (HEADERS + CONTINUATION payloads already joined).
   * Returns names and values alternating: [name0, value0, name1, value1, ...], latin1, in the
   * order sent. Throws HpackError on anything malformed; after a throw the decoder is unusable
   * (the connection ends: its table may be half updated).
   */
  decode(block: Buffer): string[] {
    if (this.failed) throw new HpackError('hpack: the decoder failed on an earlier block');
    // Marked failed until the block is through, so any throw below leaves it failed.
    this.failed = true;
    const fields = this.decodeBlock(block);
    this.failed = false;
    return fields;
  }

  private decodeBlock(block: Buffer): string[] {
    const fields: string[] = [];
    const end = block.length;
    this.pos = 0;
    while (this.pos < end) {
      const first = block[this.pos];
      if (first >= 0x80) {
        // 1xxxxxxx: indexed header field (6.1). The common case is one byte, read inline.
        let index = first & 0x7f;
        if (index !== 0x7f) this.pos++;
        else index = this.readInteger(block, 7);
        if (index === 0) throw new HpackError('hpack: indexed field with index 0');
        if (index <= STATIC_TABLE_LENGTH) {
          fields.push(STATIC_NAMES[index], STATIC_VALUES[index]);
        } else {
          const slot = this.dynamicSlot(index);
          fields.push(this.names[slot], this.values[slot]);
        }
      } else if (first >= 0x40) {
        // 01xxxxxx: literal with incremental indexing (6.2.1).
        const name = this.readName(block, 6);
        const value = this.readString(block);
        fields.push(name, value);
        this.insert(name, value);
      } else if (first >= 0x20) {
        // 001xxxxx: dynamic table size update (6.3), only before the block's first field (4.2).
        if (fields.length > 0) throw new HpackError('hpack: table size update after a header field');
        const size = this.readInteger(block, 5);
        if (size > this.tableSizeMaxBytes) {
          throw new HpackError(`hpack: table size update to ${size} above SETTINGS_HEADER_TABLE_SIZE ${this.tableSizeMaxBytes}`);
        }
        this.tableCapacityBytes = size;
        while (this.tableSizeBytes > size) this.evictOldest();
      } else {
        // 0000xxxx without indexing (6.2.2), 0001xxxx never indexed (6.2.3): the same to a decoder
        // that forwards nothing (never-indexed matters to intermediaries re-encoding the field).
        const name = this.readName(block, 4);
        const value = this.readString(block);
        fields.push(name, value);
      }
    }
    return fields;
  }

  /** The slot of dynamic-table entry `index` (HPACK numbering: STATIC_TABLE_LENGTH + 1 is the newest). */
  private dynamicSlot(index: number): number {
    const age = index - STATIC_TABLE_LENGTH;
    if (age > this.count) {
      throw new HpackError(`hpack: index ${index} past the tables (${STATIC_TABLE_LENGTH} static + ${this.count} dynamic)`);
    }
    return (this.head - age) & this.slotMask;
  }

  /** A literal's name: index 0 means a string follows, any other index names a table entry. */
  private readName(block: Buffer, prefixBits: number): string {
    const index = this.readInteger(block, prefixBits);
    if (index === 0) return this.readString(block);
    if (index <= STATIC_TABLE_LENGTH) return STATIC_NAMES[index];
    return this.names[this.dynamicSlot(index)];
  }

  /** A string literal (5.2): H bit, 7-bit prefixed length, then the octets. */
  private readString(block: Buffer): string {
    if (this.pos >= block.length) throw new HpackError('hpack: block ends before a string');
    const huffman = block[this.pos] >= 0x80;
    const length = this.readInteger(block, 7);
    const start = this.pos;
    const end = start + length;
    if (end > block.length) throw new HpackError(`hpack: string of ${length} bytes runs past the block`);
    this.pos = end;
    if (huffman) return huffmanDecode(block, start, end);
    return (block as unknown as Latin1Sliceable).latin1Slice(start, end);
  }

  /** A prefixed integer (5.1) whose first byte is at this.pos (the caller checked it is in the block). */
  private readInteger(block: Buffer, prefixBits: number): number {
    const prefixMax = (1 << prefixBits) - 1;
    let value = block[this.pos++] & prefixMax;
    if (value < prefixMax) return value;
    for (let shift = 0; ; shift += 7) {
      if (shift > INTEGER_SHIFT_MAX) throw new HpackError('hpack: integer has more than 5 continuation bytes');
      if (this.pos >= block.length) throw new HpackError('hpack: integer runs past the block');
      const byte = block[this.pos++];
      value += (byte & 0x7f) * (1 << shift);
      if (value > INTEGER_MAX) throw new HpackError('hpack: integer above 2^31 - 1');
      if (byte < 0x80) return value;
    }
  }

  /** Adds an entry (4.4): evicts from the oldest end until it fits; an entry larger than the table empties it. */
  private insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD_BYTES;
    while (this.count > 0 && this.tableSizeBytes + size > this.tableCapacityBytes) this.evictOldest();
    if (size > this.tableCapacityBytes) return;
    if (this.count > this.slotMask) throw new Error(`hpack: ${this.count} entries fill every slot (table size ${this.tableSizeBytes})`);
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.head = (this.head + 1) & this.slotMask;
    this.count++;
    this.tableSizeBytes += size;
  }

  private evictOldest(): void {
    const slot = (this.head - this.count) & this.slotMask;
    this.tableSizeBytes -= this.names[slot].length + this.values[slot].length + ENTRY_OVERHEAD_BYTES;
    this.names[slot] = ''; // let the strings go
    this.values[slot] = '';
    this.count--;
  }
}

/**
 * Encodes header pairs as "literal header field without indexing - new name" (6.2.2), no Huffman:
 * stateless, so blocks can be encoded once and reused on any connection. Names must be lowercase
 * (RFC 7540 8.1.2) and non-empty; names and values latin1 (every char code 0-255).
 */
export function encodeHeaders(pairs: ReadonlyArray<readonly [string, string]>): Buffer {
  let bytes = 0;
  for (const [name, value] of pairs) {
    checkName(name);
    checkLatin1(name, value);
    bytes += 1 + integerBytes(name.length, 7) + name.length + integerBytes(value.length, 7) + value.length;
  }
  const out = Buffer.allocUnsafe(bytes);
  let pos = 0;
  for (const [name, value] of pairs) {
    out[pos++] = 0x00; // 0000 and name index 0: a new name follows
    pos = writeInteger(out, pos, name.length, 7);
    pos += out.write(name, pos, 'latin1');
    pos = writeInteger(out, pos, value.length, 7);
    pos += out.write(value, pos, 'latin1');
  }
  if (pos !== bytes) throw new Error(`encodeHeaders: wrote ${pos} bytes, sized ${bytes}`);
  return out;
}

function checkName(name: string): void {
  if (name.length === 0) throw new RangeError('encodeHeaders: empty header name');
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) throw new RangeError(`encodeHeaders: header name ${JSON.stringify(name)} is not lowercase`);
  }
}

function checkLatin1(name: string, value: string): void {
  for (const s of [name, value]) {
    for (let i = 0; i < s.length; i++) {
      if (s.charCodeAt(i) > 0xff) throw new RangeError(`encodeHeaders: header ${JSON.stringify(name)} has a char above 0xff`);
    }
  }
}

/** Bytes a prefixed integer takes (5.1), the prefix byte included. */
function integerBytes(value: number, prefixBits: number): number {
  const prefixMax = (1 << prefixBits) - 1;
  if (value < prefixMax) return 1;
  let bytes = 2;
  for (let rest = value - prefixMax; rest >= 0x80; rest = Math.floor(rest / 0x80)) bytes++;
  return bytes;
}

/** Writes a prefixed integer with the prefix byte's high bits 0 (H = 0: not Huffman); returns the next position. */
function writeInteger(out: Buffer, pos: number, value: number, prefixBits: number): number {
  const prefixMax = (1 << prefixBits) - 1;
  if (value < prefixMax) {
    out[pos++] = value;
    return pos;
  }
  out[pos++] = prefixMax;
  let rest = value - prefixMax;
  while (rest >= 0x80) {
    out[pos++] = (rest & 0x7f) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  out[pos++] = rest;
  return pos;
}

/** Where the static table holds a field (name and value), by "name\0value"; 0 when it does not. */
const STATIC_FIELD_INDEX = new Map<string, number>(STATIC_TABLE.map(([name, value], i) => [`${name}\0${value}`, i + 1]));

/**
 * The few header blocks a server sends on every call of a connection (response headers,
 * OK trailers), encoded against the peer's dynamic table: the first time each block goes
 * out its fields are added to the table (literal with incremental indexing), afterwards the
 * block is one byte per field. Nothing else a connection sends is indexed (encodeHeaders),
 * so these entries are the only ones in the peer's table and stay put; 300-odd bytes fit
 * the 4096 the peer's table starts with. A peer that announces a smaller table gets a
 * dynamic table size update to 0 (at the start of the next block the connection sends,
 * takeSizeUpdate) and plain literals from then on.
 */
export class HpackConstants {
  /** The peer's table, newest first, as "name\0value". */
  private readonly table: string[] = [];
  private tableBytes = 0;
  private peerTableBytes = DEFAULT_TABLE_SIZE_BYTES;
  private indexing = true;
  private sizeUpdatePending = false;
  /** Each block's bytes while the table stays as it is. */
  private readonly cache: Array<Buffer | undefined> = [];

  constructor(private readonly blocks: ReadonlyArray<ReadonlyArray<readonly [string, string]>>) {}

  /** True once after the peer made its table smaller: the next block sent, whatever it is, must start with a size update to 0 (0x20). */
  takeSizeUpdate(): boolean {
    if (!this.sizeUpdatePending) return false;
    this.sizeUpdatePending = false;
    return true;
  }

  /** The peer's SETTINGS_HEADER_TABLE_SIZE. */
  setPeerTableSize(bytes: number): void {
    if (bytes === this.peerTableBytes) return;
    this.peerTableBytes = bytes;
    if (this.indexing && bytes < DEFAULT_TABLE_SIZE_BYTES) {
      this.indexing = false;
      this.sizeUpdatePending = true;
      this.table.length = 0;
      this.tableBytes = 0;
      this.cache.length = 0;
    }
  }

  /**
   * Block `i` of the constructor's list, for the HEADERS frame about to be written: the
   * encoding depends on what went before it on the wire, so it is made at write time.
   */
  block(i: number): Buffer {
    const cached = this.cache[i];
    if (cached !== undefined) return cached;
    const fields = this.blocks[i];
    if (!this.indexing) return (this.cache[i] = encodeHeaders(fields));
    const out: number[] = [];
    let changed = false;
    for (const [name, value] of fields) {
      const key = `${name}\0${value}`;
      const staticIndex = STATIC_FIELD_INDEX.get(key);
      const pos = this.table.indexOf(key);
      if (staticIndex !== undefined) out.push(...integerBytesOf(staticIndex, 7, 0x80));
      else if (pos >= 0) out.push(...integerBytesOf(STATIC_TABLE_LENGTH + 1 + pos, 7, 0x80));
      else {
        // Literal with incremental indexing, new name (6.2.1): the peer adds it as it
        // decodes, so a later field of this block already sees it in the table.
        const size = name.length + value.length + ENTRY_OVERHEAD_BYTES;
        if (this.tableBytes + size > this.peerTableBytes) throw new Error('HpackConstants: the constant blocks do not fit the peer table');
        out.push(0x40, ...integerBytesOf(name.length, 7, 0), ...Buffer.from(name, 'latin1'), ...integerBytesOf(value.length, 7, 0), ...Buffer.from(value, 'latin1'));
        this.table.unshift(key);
        this.tableBytes += size;
        changed = true;
      }
    }
    const b = Buffer.from(out);
    if (changed) this.cache.length = 0; // every index moved
    else this.cache[i] = b;
    return b;
  }
}

/** A prefixed integer's bytes (5.1), the first carrying `high` in the bits above the prefix. */
function integerBytesOf(value: number, prefixBits: number, high: number): number[] {
  const out = Buffer.alloc(integerBytes(value, prefixBits));
  writeInteger(out, 0, value, prefixBits);
  out[0] |= high;
  return [...out];
}
