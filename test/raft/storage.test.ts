// MemoryStorage keeps its entries packed (src/raft/packed-entries.ts). These tests hold it
// to the plain model it replaces: an array of Entry objects behind a dummy entry. Random
// operation sequences are seeded: STORAGE_SEED=<n> replays a run.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ErrCompacted, ErrUnavailable } from '../../src/raft/errors';
import { ENTRY_CHUNK_BYTES, PackedEntries } from '../../src/raft/packed-entries';
import { MemoryStorage } from '../../src/raft/storage';
import { type Entry, EntryType } from '../../src/raft/types';
import { entryOverheadBytes, noLimit } from '../../src/raft/util';
import { Rand, seedFromEnv } from '../support/rand';

const seed = seedFromEnv('STORAGE_SEED');
const seedNote = `STORAGE_SEED=${seed}`;

function entry(index: number, term: number, bytes: number, fill = index): Entry {
  return { index, term, type: bytes % 3 === 0 ? EntryType.ConfChange : EntryType.Normal, data: new Uint8Array(bytes).fill(fill & 0xff) };
}

/** The reference: etcd-io/raft's MemoryStorage layout, ents[0] the dummy. */
class ModelLog {
  ents: Entry[] = [{ index: 0, term: 0, type: EntryType.Normal, data: new Uint8Array(0) }];
  get last(): number {
    return this.ents[0].index + this.ents.length - 1;
  }
  append(es: Entry[]): void {
    const first = this.ents[0].index + 1;
    if (es.length === 0 || es[0].index + es.length - 1 < first) return;
    if (first > es[0].index) es = es.slice(first - es[0].index);
    this.ents.length = es[0].index - this.ents[0].index;
    this.ents.push(...es);
  }
  compact(i: number): void {
    const at = i - this.ents[0].index;
    this.ents = [{ ...this.ents[at], data: new Uint8Array(0) }, ...this.ents.slice(at + 1)];
  }
}

/** Entries as comparable values, the data as its length and digest. */
function plain(es: Entry[]): Array<{ index: number; term: number; type: EntryType; data: string }> {
  return es.map((e) => ({ index: e.index, term: e.term, type: e.type, data: `${e.data.length}:${createHash('sha1').update(e.data).digest('hex')}` }));
}

describe('MemoryStorage (packed entries)', () => {
  it('returns the entries appended, with their terms, types and data', () => {
    const s = new MemoryStorage();
    const es = [entry(1, 1, 0), entry(2, 1, 5), entry(3, 2, 300)];
    s.append(es);
    expect(s.firstIndex()).toBe(1);
    expect(s.lastIndex()).toBe(3);
    expect(plain(s.entries(1, 4, noLimit))).toEqual(plain(es));
    expect(s.term(0)).toBe(0);
    expect(s.term(3)).toBe(2);
    expect(() => s.term(4)).toThrow(ErrUnavailable);
  });

  it('copies the data: changing the appended bytes afterwards changes nothing stored', () => {
    const s = new MemoryStorage();
    const e = entry(1, 1, 4, 7);
    s.append([e]);
    e.data.fill(9);
    expect([...s.entries(1, 2, noLimit)[0].data]).toEqual([7, 7, 7, 7]);
  });

  it('limits by size but always returns at least one entry', () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1, 100), entry(2, 1, 100), entry(3, 1, 100)]);
    const one = 100 + entryOverheadBytes;
    expect(s.entries(1, 4, 0).map((e) => e.index)).toEqual([1]);
    expect(s.entries(1, 4, 2 * one).map((e) => e.index)).toEqual([1, 2]);
    expect(s.entries(1, 4, 2 * one - 1).map((e) => e.index)).toEqual([1]);
    expect(s.entries(2, 2, noLimit)).toEqual([]);
  });

  it('a conflicting append replaces the suffix; views handed out before stay intact', () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1, 8, 1), entry(2, 1, 8, 2), entry(3, 1, 8, 3)]);
    const before = s.entries(2, 4, noLimit);
    s.append([entry(2, 2, 8, 0xaa)]);
    expect(s.lastIndex()).toBe(2);
    expect(s.term(2)).toBe(2);
    expect([...s.entries(2, 3, noLimit)[0].data]).toEqual(new Array(8).fill(0xaa));
    expect([...before[0].data]).toEqual(new Array(8).fill(2));
    expect([...before[1].data]).toEqual(new Array(8).fill(3));
  });

  it('compaction keeps the compacted entry as the dummy and refuses older reads', () => {
    const s = new MemoryStorage();
    s.append([entry(1, 1, 10), entry(2, 2, 10), entry(3, 3, 10)]);
    s.compact(2);
    expect(s.firstIndex()).toBe(3);
    expect(s.term(2)).toBe(2);
    expect(() => s.term(1)).toThrow(ErrCompacted);
    expect(() => s.entries(2, 4, noLimit)).toThrow(ErrCompacted);
    expect(() => s.compact(2)).toThrow(ErrCompacted);
    s.compact(3);
    expect(() => s.entries(4, 4, noLimit)).toThrow(ErrUnavailable);
    expect(s.lastIndex()).toBe(3);
  });

  it(`matches the plain model over random appends, truncations and compactions (${seedNote})`, () => {
    const r = new Rand(seed);
    const s = new MemoryStorage();
    const m = new ModelLog();
    let term = 1;
    for (let step = 0; step < 3000; step++) {
      const op = r.int(10);
      if (op < 7) {
        // An append at or before the end, possibly over entries already held (a leader's overwrite).
        const first = m.ents[0].index + 1;
        const at = Math.max(first, m.last + 1 - (r.chance(0.2) ? r.int(5) : 0));
        if (r.chance(0.1)) term++;
        const big = r.chance(0.01);
        const n = big ? 1 : 1 + r.int(20);
        const es = Array.from({ length: n }, (_, k) => entry(at + k, term, big ? ENTRY_CHUNK_BYTES + r.int(100) : r.int(2000), r.int(256)));
        s.append(es);
        m.append(es);
      } else if (op < 9 && m.ents.length > 1) {
        const i = m.ents[0].index + 1 + r.int(m.ents.length - 1);
        s.compact(i);
        m.compact(i);
      } else if (m.ents.length > 1) {
        const lo = m.ents[0].index + 1 + r.int(m.ents.length - 1);
        const hi = lo + r.int(m.last + 2 - lo);
        expect(plain(s.entries(lo, hi, noLimit)), seedNote).toEqual(plain(m.ents.slice(lo - m.ents[0].index, hi - m.ents[0].index)));
      }
      expect(s.lastIndex(), seedNote).toBe(m.last);
      expect(s.firstIndex(), seedNote).toBe(m.ents[0].index + 1);
      const probe = m.ents[0].index + r.int(m.ents.length);
      expect(s.term(probe), seedNote).toBe(m.ents[probe - m.ents[0].index].term);
    }
    expect(plain(s.entries(m.ents[0].index + 1, m.last + 1, noLimit)), seedNote).toEqual(plain(m.ents.slice(1)));
  });
});

describe('PackedEntries', () => {
  it('drops the chunks only dropped entries used', () => {
    const p = new PackedEntries();
    const half = ENTRY_CHUNK_BYTES / 2;
    for (let i = 0; i < 6; i++) p.push(entry(i + 1, 1, half, i));
    // Two entries per chunk: three chunks.
    const chunksOf = (): number => p.chunkCount;
    expect(chunksOf()).toBe(3);
    p.dropFront(3);
    expect(chunksOf()).toBe(2);
    expect(p.get(0, 4).data[0]).toBe(3);
    p.clear();
    expect(chunksOf()).toBe(1);
    p.push(entry(7, 1, 10, 9));
    expect(p.get(0, 7).data.length).toBe(10);
  });
});
