// The durable side of the raft log, as the core sees it. The server implements Storage
// on the WAL; MemoryStorage is the reference implementation (tests, in-process bench).
//
// Layout of MemoryStorage (as in etcd-io/raft): ents[0] is a dummy entry standing for
// the last entry covered by the snapshot (its index and term), so term(snapshotIndex)
// is always answerable. Real entries follow contiguously.

import { assert, assertIndex } from './assert';
import { ErrCompacted, ErrSnapOutOfDate, ErrUnavailable } from './errors';
import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Snapshot,
  emptyBytes,
  emptyHardState,
} from './types';
import { limitSize } from './util';

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
  private ents: Entry[];

  /**
   * @param confState initial membership, recorded in the (empty) snapshot at index 0.
   * Tests use it to start a cluster without bootstrap entries. A node joining an
   * existing cluster starts with none.
   */
  constructor(confState: ConfState = { voters: [], learners: [] }) {
    this.snap = { data: emptyBytes, metadata: { index: 0, term: 0, confState: cloneConfState(confState) } };
    this.ents = [{ term: 0, index: 0, type: EntryType.Normal, data: emptyBytes }];
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
    const offset = this.ents[0].index;
    if (lo <= offset) throw ErrCompacted;
    assert(hi <= this.lastIndex() + 1, () => `entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    // Only the dummy entry: nothing to read.
    if (this.ents.length === 1) throw ErrUnavailable;
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSize);
  }

  term(i: number): number {
    const offset = this.ents[0].index;
    if (i < offset) throw ErrCompacted;
    if (i - offset >= this.ents.length) throw ErrUnavailable;
    return this.ents[i - offset].term;
  }

  lastIndex(): number {
    return this.ents[0].index + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.ents[0].index + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replace the whole log by a snapshot received from the leader. */
  applySnapshot(snap: Snapshot): void {
    const index = snap.metadata.index;
    if (this.snap.metadata.index >= index) throw ErrSnapOutOfDate;
    this.snap = snap;
    this.ents = [{ term: snap.metadata.term, index, type: EntryType.Normal, data: emptyBytes }];
  }

  /**
   * Record a snapshot of the application state as of applied index i (i must be
   * applied, hence within the log). The log is not compacted: call compact().
   */
  createSnapshot(i: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw ErrSnapOutOfDate;
    const offset = this.ents[0].index;
    assert(i <= this.lastIndex(), () => `snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    this.snap = { data, metadata: { index: i, term: this.ents[i - offset].term, confState: cloneConfState(confState) } };
    return this.snap;
  }

  /** Discard all entries before compactIndex; the entry at compactIndex becomes the dummy. */
  compact(compactIndex: number): void {
    const offset = this.ents[0].index;
    if (compactIndex <= offset) throw ErrCompacted;
    assert(compactIndex <= this.lastIndex(), () => `compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    const i = compactIndex - offset;
    const dummy: Entry = { term: this.ents[i].term, index: this.ents[i].index, type: EntryType.Normal, data: emptyBytes };
    this.ents = [dummy, ...this.ents.slice(i + 1)];
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
    const offset = entries[0].index - this.ents[0].index;
    assert(offset <= this.ents.length, () => `missing log entry [last: ${this.lastIndex()}, append at: ${entries[0].index}]`);
    // Truncate in place and push: appends are the hot path and must not copy the log.
    if (offset < this.ents.length) this.ents.length = offset;
    for (const e of entries) this.ents.push(e);
  }
}
