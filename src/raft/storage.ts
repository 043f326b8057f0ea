// The durable side of the raft log, as the core sees it. The server implements Storage
// on the WAL; MemoryStorage is the reference implementation (tests, in-process bench).
//
// Layout of MemoryStorage (as in etcd-io/raft): a dummy entry stands for the last entry
// covered by the snapshot or a compaction (its index and term), so term(dummyIndex) is
// always answerable. Real entries follow contiguously, packed (packed-entries.ts).

import { assert, assertIndex } from './assert';
import { ErrCompacted, ErrSnapOutOfDate, ErrUnavailable } from './errors';
import {
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
  emptyBytes,
  emptyHardState,
} from './types';
import { PackedEntries } from './packed-entries';
import { entryOverheadBytes } from './util';

export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

export interface Storage {
  /** The persisted HardState and the ConfState of the latest snapshot. */
  initialState(): InitialState;
  /** Entries in [lo, hi), at most maxSize bytes but at least one. Throws ErrCompacted if lo <= snapshot index. */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /** Term of entry i, for i in [firstIndex-1, lastIndex]. Throws ErrCompacted / ErrUnavailable outside. */
  term(i: number): number;
  lastIndex(): number;
  /** Index of the first entry still available (snapshot index + 1). */
  firstIndex(): number;
  /** The latest snapshot. May throw ErrSnapshotTemporarilyUnavailable while one is being made. */
  snapshot(): Snapshot;
}

function cloneConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}

export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private snap: Snapshot;
  /** The dummy entry: the last one covered by the snapshot or a compaction. */
  private dummyIndex: number;
  private dummyTerm: number;
  /** Entries dummyIndex + 1 .. lastIndex(), packed (the entry at index i is at position i - dummyIndex - 1). */
  private readonly ents = new PackedEntries();

  /**
   * @param confState initial membership, recorded in the (empty) snapshot at index 0.
   * Tests use it to start a cluster without bootstrap entries. A node joining an
   * existing cluster starts with none.
   */
  constructor(confState: ConfState = { voters: [], learners: [] }) {
    this.snap = { data: emptyBytes, metadata: { index: 0, term: 0, confState: cloneConfState(confState) } };
    this.dummyIndex = 0;
    this.dummyTerm = 0;
  }

  initialState(): InitialState {
    return { hardState: { ...this.hardState }, confState: cloneConfState(this.snap.metadata.confState) };
  }

  setHardState(hs: HardState): void {
    assertIndex(hs.term, 'hardState.term');
    assertIndex(hs.commit, 'hardState.commit');
    this.hardState = { ...hs };
  }

  hardStateSnapshot(): HardState {
    return { ...this.hardState };
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    if (lo <= this.dummyIndex) throw ErrCompacted;
    assert(hi <= this.lastIndex() + 1, () => `entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    // Only the dummy entry: nothing to read.
    if (this.ents.count === 0) throw ErrUnavailable;
    // limitSize's rule, counted before any entry is built: at least one, then while within maxSize.
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const p = i - this.dummyIndex - 1;
      size += this.ents.dataBytes(p) + entryOverheadBytes;
      if (out.length > 0 && size > maxSize) break;
      out.push(this.ents.get(p, i));
    }
    return out;
  }

  term(i: number): number {
    if (i < this.dummyIndex) throw ErrCompacted;
    if (i === this.dummyIndex) return this.dummyTerm;
    if (i - this.dummyIndex > this.ents.count) throw ErrUnavailable;
    return this.ents.term(i - this.dummyIndex - 1);
  }

  lastIndex(): number {
    return this.dummyIndex + this.ents.count;
  }

  firstIndex(): number {
    return this.dummyIndex + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replace the whole log by a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    const index = snap.metadata.index;
    if (this.snap.metadata.index >= index) throw ErrSnapOutOfDate;
    this.snap = snap;
    this.dummyIndex = index;
    this.dummyTerm = snap.metadata.term;
    this.ents.clear();
  }

  /**
   * Record a snapshot of the application state as of applied index i (i must be
   * applied, hence within the log). The log is not compacted: call compact().
   */
  createSnapshot(i: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw ErrSnapOutOfDate;
    assert(i <= this.lastIndex(), () => `snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    this.snap = { data, metadata: { index: i, term: this.term(i), confState: cloneConfState(confState) } };
    return this.snap;
  }

  /** Discard all entries before compactIndex; the entry at compactIndex becomes the dummy. */
  compact(compactIndex: number): void {
    if (compactIndex <= this.dummyIndex) throw ErrCompacted;
    assert(compactIndex <= this.lastIndex(), () => `compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    this.dummyTerm = this.term(compactIndex);
    this.ents.dropFront(compactIndex - this.dummyIndex);
    this.dummyIndex = compactIndex;
  }

  /**
   * Persist new entries. They must be contiguous; entries already present from the
   * first new index on are replaced (a conflicting suffix is truncated).
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0].index + entries.length - 1;
    // Everything is already compacted away.
    if (last < first) return;
    // Drop the part of `entries` already covered by the snapshot.
    if (first > entries[0].index) entries = entries.slice(first - entries[0].index);
    const at = entries[0].index - first; // position of the first new entry
    assert(at <= this.ents.count, () => `missing log entry [last: ${this.lastIndex()}, append at: ${entries[0].index}]`);
    if (at < this.ents.count) this.ents.truncate(at);
    for (const e of entries) this.ents.push(e);
  }
}
