// The stored entries of MemoryStorage, packed. A member keeps up to a snapshot's worth of
// entries (100k by default) in memory for followers that fall behind; as one object per
// entry (plus its data's view and buffer, plus boxed numbers) they were half of a busy
// leader's heap objects, and every major GC walks them. Here they are five typed arrays
// (term, type, and where the data is) and the data bytes copied into large append-only
// chunks: a handful of objects whatever the count. `get` builds an Entry on demand; what
// it returns is short-lived (a message to send, an entry to apply).
//
// Chunks are never written twice: a view handed out stays valid after a truncation or a
// compaction (it keeps its chunk alive until it is dropped).

import { assert } from './assert';
import { type Entry, type EntryType, emptyBytes } from './types';

/** Size of a data chunk; an entry larger than this gets a chunk of its own size. */
export const ENTRY_CHUNK_BYTES = 1 << 20;
const INITIAL_CAPACITY = 1024;

export class PackedEntries {
  /** Entries held; position p (0 <= p < count) is at array slot head + p. */
  count = 0;
  private head = 0;
  private terms = new Float64Array(INITIAL_CAPACITY);
  private types = new Uint8Array(INITIAL_CAPACITY);
  private chunkIds = new Uint32Array(INITIAL_CAPACITY);
  private offsets = new Uint32Array(INITIAL_CAPACITY);
  private lengths = new Uint32Array(INITIAL_CAPACITY);
  /** chunks[k] has id chunkBase + k; the last one is written to. */
  private chunks: Uint8Array[] = [];
  private chunkBase = 0;
  private chunkUsedBytes = 0;

  /** Data chunks held (what dropFront releases). */
  get chunkCount(): number {
    return this.chunks.length;
  }

  term(p: number): number {
    assert(p >= 0 && p < this.count, () => `packed entries: position ${p} outside [0, ${this.count})`);
    return this.terms[this.head + p];
  }

  /** Bytes of the entry's data. */
  dataBytes(p: number): number {
    return this.lengths[this.head + p];
  }

  /** The entry at position p, with the given index (the caller knows the offset). */
  get(p: number, index: number): Entry {
    assert(p >= 0 && p < this.count, () => `packed entries: position ${p} outside [0, ${this.count})`);
    const s = this.head + p;
    const length = this.lengths[s];
    let data = emptyBytes;
    if (length > 0) {
      const offset = this.offsets[s];
      data = this.chunks[this.chunkIds[s] - this.chunkBase].subarray(offset, offset + length);
    }
    return { term: this.terms[s], index, type: this.types[s] as EntryType, data };
  }

  push(e: Entry): void {
    if (this.head + this.count === this.terms.length) this.makeRoom();
    const s = this.head + this.count;
    this.terms[s] = e.term;
    this.types[s] = e.type;
    const length = e.data.byteLength;
    this.lengths[s] = length;
    if (length > 0) {
      const chunk = this.chunkFor(length);
      chunk.set(e.data, this.chunkUsedBytes);
      this.chunkIds[s] = this.chunkBase + this.chunks.length - 1;
      this.offsets[s] = this.chunkUsedBytes;
      this.chunkUsedBytes += length;
    } else {
      this.chunkIds[s] = this.chunkBase + Math.max(0, this.chunks.length - 1);
      this.offsets[s] = 0;
    }
    this.count++;
  }

  /** Keeps the first n entries. Their bytes stay where they are; new ones go after. */
  truncate(n: number): void {
    assert(n >= 0 && n <= this.count, () => `packed entries: truncate to ${n} of ${this.count}`);
    this.count = n;
  }

  /** Drops the first n entries, and the chunks only they used. */
  dropFront(n: number): void {
    assert(n >= 0 && n <= this.count, () => `packed entries: drop ${n} of ${this.count}`);
    this.head += n;
    this.count -= n;
    if (this.count === 0) this.head = 0;
    // The oldest chunk still read: the first entry's, or (none left) the one written to.
    const keepFrom = this.count > 0 ? this.chunkIds[this.head] : this.chunkBase + Math.max(0, this.chunks.length - 1);
    if (keepFrom > this.chunkBase) {
      this.chunks.splice(0, keepFrom - this.chunkBase);
      this.chunkBase = keepFrom;
    }
  }

  clear(): void {
    this.dropFront(this.count);
  }

  private chunkFor(length: number): Uint8Array {
    const last = this.chunks[this.chunks.length - 1];
    if (last !== undefined && this.chunkUsedBytes + length <= last.byteLength) return last;
    const chunk = new Uint8Array(Math.max(ENTRY_CHUNK_BYTES, length));
    this.chunks.push(chunk);
    this.chunkUsedBytes = 0;
    return chunk;
  }

  /** Slides the live slots to the front when over half the arrays is dropped space, else doubles them. */
  private makeRoom(): void {
    const from = this.head;
    const to = from + this.count;
    if (from >= this.terms.length / 2) {
      this.terms.copyWithin(0, from, to);
      this.types.copyWithin(0, from, to);
      this.chunkIds.copyWithin(0, from, to);
      this.offsets.copyWithin(0, from, to);
      this.lengths.copyWithin(0, from, to);
    } else {
      const capacity = this.terms.length * 2;
      this.terms = grow(new Float64Array(capacity), this.terms, from, to);
      this.types = grow(new Uint8Array(capacity), this.types, from, to);
      this.chunkIds = grow(new Uint32Array(capacity), this.chunkIds, from, to);
      this.offsets = grow(new Uint32Array(capacity), this.offsets, from, to);
      this.lengths = grow(new Uint32Array(capacity), this.lengths, from, to);
    }
    this.head = 0;
  }
}

function grow<T extends Float64Array | Uint8Array | Uint32Array>(into: T, from: T, start: number, end: number): T {
  into.set(from.subarray(start, end) as never);
  return into;
}
